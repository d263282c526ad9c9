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
use xxhash_rust::xxh3::Xxh3;

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
pub struct TraceHasher {
    buf: Vec<u8>,
    state: Xxh3,
}

impl Default for TraceHasher {
    fn default() -> Self {
        TraceHasher {
            buf: Vec::with_capacity(16 * 1024),
            state: Xxh3::new(),
        }
    }
}

impl TraceHasher {
    /// Starts one event: its time, kind and node.
    pub fn event(&mut self, time: Time, tag: u8, node: Pid) {
        if self.buf.len() > 8 * 1024 {
            self.state.update(&self.buf);
            self.buf.clear();
        }
        self.u64(time.as_micros());
        self.buf.push(tag);
        self.pid(node);
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
        let buf = std::mem::take(&mut self.buf);
        // Serializing our own message types into a Vec cannot fail.
        self.buf = postcard::to_extend(v, buf).unwrap_or_default();
    }
    /// The 64-bit hash of everything written so far.
    pub fn finish(&mut self) -> u64 {
        self.state.update(&self.buf);
        self.buf.clear();
        self.state.digest()
    }
}

/// The trace hash as users see it: 16 hex digits.
pub fn hash_hex(h: u64) -> String {
    format!("{h:016x}")
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
    use super::show;
    use conclave_algorithms::Pid;

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
