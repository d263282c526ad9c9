//! The trace of a run: every event with its virtual time, and a hash over a canonical
//! encoding of them.
//!
//! The hash is always computed (it is cheap); the readable events are kept only when asked,
//! since a big run makes millions of them. The canonical encoding is fixed by this module:
//! little-endian integers, node indices as `u32`, messages and timers in `postcard`'s
//! encoding. It never depends on addresses, hash-map order or the machine's word size.
//!
//! ```
//! use conclave_sim::trace::TraceHasher;
//! let mut a = TraceHasher::default();
//! let mut b = TraceHasher::default();
//! a.u64(7); b.u64(7);
//! assert_eq!(a.finish(), b.finish());
//! ```

use conclave_algorithms::{Pid, Role, Time};
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::{xxh3_64, Xxh3Default};

/// Why a message was not delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    /// The network lost it (the `loss` probability).
    Lost,
    /// A partition or blocked link stood between sender and receiver.
    Partitioned,
    /// The receiver was crashed or not yet started.
    Down,
    /// The receiver was paused (feigning failure).
    Paused,
}

impl DropReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Lost => "lost",
            DropReason::Partitioned => "partitioned",
            DropReason::Down => "down",
            DropReason::Paused => "paused",
        }
    }
}

/// One readable trace event. Node references are names.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TraceEvent {
    pub time_us: u64,
    pub node: String,
    #[serde(flatten)]
    pub what: What,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum What {
    Start,
    Restart,
    Crash,
    Pause,
    Resume,
    Send {
        to: String,
        msg: String,
    },
    Deliver {
        from: String,
        msg: String,
    },
    Drop {
        from: String,
        to: String,
        msg: String,
        reason: DropReason,
    },
    Duplicate {
        from: String,
        to: String,
        msg: String,
    },
    Timer {
        timer: String,
    },
    Role {
        role: Role,
        leader: Option<String>,
        status: String,
        group: u64,
    },
    Partition {
        groups: Vec<Vec<String>>,
    },
    Leave,
    /// The failure detector tells this node that `who` is suspected (or trusted again).
    Suspect {
        who: String,
        suspected: bool,
    },
    Block {
        a: String,
        b: String,
    },
    Unblock {
        a: String,
        b: String,
    },
    Heal,
}

/// Tags of the canonical encoding, one per event kind. Never renumber: hashes depend on them.
pub mod tag {
    pub const START: u8 = 1;
    pub const RESTART: u8 = 2;
    pub const CRASH: u8 = 3;
    pub const PAUSE: u8 = 4;
    pub const RESUME: u8 = 5;
    pub const SEND: u8 = 6;
    pub const DELIVER: u8 = 7;
    pub const DROP: u8 = 8;
    pub const DUPLICATE: u8 = 9;
    pub const TIMER: u8 = 10;
    pub const ROLE: u8 = 11;
    pub const PARTITION: u8 = 12;
    pub const BLOCK: u8 = 13;
    pub const UNBLOCK: u8 = 14;
    pub const HEAL: u8 = 15;
    pub const LEAVE: u8 = 16;
    pub const SUSPECT: u8 = 17;
    pub const REPORT: u8 = 18;
}

/// Streaming hash over the canonical encoding, buffered so that small writes stay cheap.
///
/// The hash is XXH3-64 (seed 0) of every byte written, however the bytes are split: a
/// trace that fits the buffer (most runs') is hashed in one call at the end, and a longer
/// one goes through the streaming state 8 KiB at a time. Both give the same hash.
pub struct TraceHasher {
    buf: Vec<u8>,
    /// The bytes before `buf`, once some were written out (boxed: it is 350 bytes, and a
    /// world is moved around whole).
    state: Option<Box<Xxh3Default>>,
}

impl Default for TraceHasher {
    fn default() -> Self {
        TraceHasher {
            buf: Vec::with_capacity(16 * 1024),
            state: None,
        }
    }
}

/// Lets postcard write straight into the hasher's buffer.
struct Append<'a>(&'a mut Vec<u8>);

impl postcard::ser_flavors::Flavor for Append<'_> {
    type Output = ();

    #[inline]
    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        self.0.push(byte);
        Ok(())
    }

    #[inline]
    fn try_extend(&mut self, bytes: &[u8]) -> postcard::Result<()> {
        // Mostly varints of one to five bytes: copied in a loop, which costs less than the
        // call to `memcpy` that `extend_from_slice` makes for a length not known in advance.
        if bytes.len() <= 8 {
            self.0.extend(bytes.iter().copied());
        } else {
            self.0.extend_from_slice(bytes);
        }
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

impl TraceHasher {
    /// Starts one event: its time, kind and node.
    #[inline]
    pub fn event(&mut self, time: Time, tag: u8, node: Pid) {
        if self.buf.len() > 8 * 1024 {
            self.spill();
        }
        // The time, the tag and the node as `u64`, `u8` and `pid` write them, in one copy.
        let mut head = [0u8; 13];
        head[..8].copy_from_slice(&time.as_micros().to_le_bytes());
        head[8] = tag;
        head[9..].copy_from_slice(&node.0.to_le_bytes());
        self.buf.extend_from_slice(&head);
    }
    /// As new: nothing written (the buffer's room is kept).
    pub fn reset(&mut self) {
        self.buf.clear();
        self.state = None;
    }
    /// Hashes the buffer into the streaming state and empties it (apart, so that the
    /// common path of `event` stays short).
    #[cold]
    #[inline(never)]
    fn spill(&mut self) {
        self.state
            .get_or_insert_with(|| Box::new(Xxh3Default::new()))
            .update(&self.buf);
        self.buf.clear();
    }
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub fn pid(&mut self, p: Pid) {
        self.buf.extend_from_slice(&p.0.to_le_bytes());
    }
    pub fn opt_pid(&mut self, p: Option<Pid>) {
        self.pid(p.unwrap_or(Pid(u32::MAX)));
    }
    pub fn bytes(&mut self, b: &[u8]) {
        self.u64(b.len() as u64);
        self.buf.extend_from_slice(b);
    }
    /// A value in postcard's encoding (self-delimiting, platform independent).
    pub fn value<T: Serialize + ?Sized>(&mut self, v: &T) {
        // Serializing into a Vec cannot fail: postcard fails only when its output is full
        // or a type asks it to (our message and timer types never do).
        let _ = postcard::serialize_with_flavor(v, Append(&mut self.buf));
    }
    /// The 64-bit hash of everything written so far.
    pub fn finish(&mut self) -> u64 {
        match &mut self.state {
            None => xxh3_64(&self.buf),
            Some(state) => {
                state.update(&self.buf);
                self.buf.clear();
                state.digest()
            }
        }
    }
}

/// The trace hash as users see it: 16 hex digits (lowercase, as `{:016x}` writes them;
/// written by hand, at a fifth of the formatter's cost, as every run of a sweep makes one).
pub fn hash_hex(h: u64) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(16);
    for i in (0..16).rev() {
        out.push(DIGITS[(h >> (4 * i)) as usize & 0xf] as char);
    }
    out
}

/// A message or timer as a trace shows it: its `Debug` form, with every process written as
/// its node's name (`Pid(3)` is the fourth node, which a reader would not guess). Only a
/// whole `Pid(k)` outside quoted text is replaced (not `ByPid(3)`, not `"Pid(3)"`), and only
/// when a node has that index.
///
/// ```
/// use conclave_algorithms::Pid;
/// let names = ["a".to_string(), "b".to_string()];
/// assert_eq!(conclave_sim::trace::show(&Some(Pid(1)), &names), "Some(b)");
/// ```
pub fn show(value: &impl std::fmt::Debug, names: &[String]) -> String {
    let text = format!("{value:?}");
    if !text.contains("Pid(") {
        return text;
    }
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let (mut copied, mut i, mut quoted) = (0, 0, false);
    while i < bytes.len() {
        match bytes[i] {
            // Debug escapes quotes and backslashes inside strings.
            b'\\' if quoted => i += 2,
            b'"' => {
                quoted = !quoted;
                i += 1;
            }
            // A char literal (`'"'`, `'\''`): skipped whole, so a quote in it opens nothing.
            b'\'' if !quoted => {
                let from = i + if bytes.get(i + 1) == Some(&b'\\') {
                    3
                } else {
                    2
                };
                i = bytes
                    .get(from..)
                    .and_then(|rest| rest.iter().position(|&b| b == b'\''))
                    .map_or(i + 1, |k| from + k + 1);
            }
            b'P' if !quoted
                && text[i..].starts_with("Pid(")
                && !(i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_')) =>
            {
                let digits = bytes[i + 4..]
                    .iter()
                    .take_while(|b| b.is_ascii_digit())
                    .count();
                let end = i + 4 + digits;
                let name = text[i + 4..end]
                    .parse::<usize>()
                    .ok()
                    .filter(|_| bytes.get(end) == Some(&b')'))
                    .and_then(|k| names.get(k));
                match name {
                    Some(name) => {
                        out.push_str(&text[copied..i]);
                        out.push_str(name);
                        i = end + 1;
                        copied = i;
                    }
                    None => i += 4,
                }
            }
            _ => i += 1,
        }
    }
    out.push_str(&text[copied.min(text.len())..]);
    out
}

#[cfg(test)]
mod tests {
    use super::{show, TraceHasher};
    use conclave_algorithms::{Pid, Time};
    use serde::Serialize;
    use xxhash_rust::xxh3::Xxh3;

    /// What the hasher wrote before it hashed short traces in one call and took postcard's
    /// output in place: every byte through a streaming XXH3 (seed 0), values through
    /// `postcard::to_extend`.
    struct Reference {
        buf: Vec<u8>,
        state: Xxh3,
    }

    impl Reference {
        fn event(&mut self, time: Time, tag: u8, node: Pid) {
            if self.buf.len() > 8 * 1024 {
                self.state.update(&self.buf);
                self.buf.clear();
            }
            self.buf.extend_from_slice(&time.as_micros().to_le_bytes());
            self.buf.push(tag);
            self.buf.extend_from_slice(&node.0.to_le_bytes());
        }
        fn value<T: Serialize>(&mut self, v: &T) {
            let buf = std::mem::take(&mut self.buf);
            self.buf = postcard::to_extend(v, buf).unwrap_or_default();
        }
        fn finish(&mut self) -> u64 {
            self.state.update(&self.buf);
            self.buf.clear();
            self.state.digest()
        }
    }

    #[derive(Serialize)]
    enum Msg {
        Unit,
        Ids { ids: Vec<Pid>, leader: Option<Pid> },
        Pair(u64, i32),
        Text(String, bool, char),
    }

    /// The same bytes and the same hash as before, for traces shorter and longer than the
    /// buffer, and when the hash is asked for again midway.
    #[test]
    fn hash_hex_is_the_formatter_s_16_hex_digits() {
        for h in [
            0,
            1,
            0xf,
            0xdead_beef,
            u64::MAX,
            0x0123_4567_89ab_cdef,
            1 << 63,
        ] {
            assert_eq!(super::hash_hex(h), format!("{h:016x}"));
        }
    }

    #[test]
    fn hashes_as_the_streaming_hasher_did() {
        for events in [0u64, 1, 5, 100, 700, 3_000] {
            let mut new = TraceHasher::default();
            let mut old = Reference {
                buf: Vec::new(),
                state: Xxh3::new(),
            };
            for i in 0..events {
                let (t, tag, p) = (Time(i * 977), (i % 18) as u8, Pid(i as u32 % 5));
                new.event(t, tag, p);
                old.event(t, tag, p);
                let msg = match i % 4 {
                    0 => Msg::Unit,
                    1 => Msg::Ids {
                        ids: (0..i as u32 % 70).map(Pid).collect(),
                        leader: (i % 3 == 0).then_some(Pid(7)),
                    },
                    2 => Msg::Pair(i.wrapping_mul(0x9E37_79B9_7F4A_7C15), -(i as i32)),
                    _ => Msg::Text("é".repeat(i as usize % 300), i % 2 == 0, 'ß'),
                };
                new.value(&msg);
                old.value(&msg);
                new.u64(i);
                old.buf.extend_from_slice(&i.to_le_bytes());
                if i == events / 2 {
                    assert_eq!(new.finish(), old.finish(), "{events} events, midway");
                }
            }
            assert_eq!(new.finish(), old.finish(), "{events} events");
            assert_eq!(new.finish(), old.finish(), "{events} events, asked twice");
        }
    }

    #[derive(Debug)]
    #[allow(dead_code)]
    struct Ack {
        processes: Vec<Pid>,
        leader: Option<Pid>,
        note: &'static str,
    }

    #[test]
    fn processes_are_shown_by_name() {
        let names: Vec<String> = ["n1", "n2", "n3"].map(String::from).to_vec();
        let ack = Ack {
            processes: vec![Pid(0), Pid(2)],
            leader: Some(Pid(1)),
            note: "Pid(",
        };
        assert_eq!(
            show(&ack, &names),
            r#"Ack { processes: [n1, n3], leader: Some(n2), note: "Pid(" }"#
        );
        // A process with no name (none here has index 7) keeps its number.
        assert_eq!(show(&Pid(7), &names), "Pid(7)");
        assert_eq!(show(&"no process", &names), r#""no process""#);
        // Only whole process ids outside strings.
        #[derive(Debug)]
        #[allow(dead_code)]
        struct ByPid(u32);
        assert_eq!(show(&(ByPid(2), Pid(2)), &names), "(ByPid(2), n3)");
        assert_eq!(
            show(&("say \"Pid(1)\"", Pid(1)), &names),
            r#"("say \"Pid(1)\"", n2)"#
        );
        // A quote in a char literal opens no string.
        assert_eq!(show(&('"', Pid(1)), &names), r#"('"', n2)"#);
        assert_eq!(show(&('\'', 'é', Pid(0)), &names), r#"('\'', 'é', n1)"#);
    }
}
