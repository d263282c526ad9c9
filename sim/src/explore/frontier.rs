//! The states of one breadth-first level, stored small: each as its difference from the
//! state before it.
//!
//! A level lists its states in the order they were found, so neighbours are mostly
//! siblings (successors of one parent) and differ in a few words: the node that took a
//! step, the message it was handed, the timer it armed. A state is stored as a bit per
//! word, set where it differs from the state before it, and the words that differ, in
//! LEB128 (ids and counts are small). Every `KEY`-th state is stored whole, and only
//! those are indexed, so a reader starts at any state by decoding at most `KEY - 1` states
//! before it.
//!
//! On the anchor model (`scenarios/explore/async_bully5_crash2_bounded.ron`) a level's
//! state takes about 13 bytes this way, index included, where plain LEB128 and an index
//! entry per state took about 33.

use super::{growth, reserve};

/// Every `KEY`-th state is stored whole and indexed.
pub(crate) const KEY: usize = 32;

/// Packed states of one level, in order, with consecutive ids.
#[derive(Default)]
pub(crate) struct Packs {
    bytes: Vec<u8>,
    /// The byte offset of every `KEY`-th state.
    keys: Vec<usize>,
    len: usize,
    /// The id of the first state.
    first: u32,
    /// The last state pushed: the next one is stored as its difference from it.
    last: Vec<u32>,
}

/// Appends `w` in LEB128, shifted by one so that `u32::MAX` (a process that is down) takes
/// one byte, not five.
fn put(out: &mut Vec<u8>, w: u32) {
    let mut w = w.wrapping_add(1);
    while w >= 0x80 {
        out.push(w as u8 | 0x80);
        w >>= 7;
    }
    out.push(w as u8);
}

fn take(bytes: &[u8], pos: &mut usize) -> u32 {
    let mut w = 0u32;
    let mut shift = 0;
    loop {
        let b = bytes[*pos];
        *pos += 1;
        w |= u32::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return w.wrapping_sub(1);
        }
        shift += 7;
    }
}

/// The most bytes [`encode`] writes for `len` words: the length, the bits, five bytes a
/// word.
pub(crate) fn encoded_max(len: usize) -> usize {
    5 + len.div_ceil(8) + 5 * len
}

/// Appends `words` as their difference from `prev`: the length, a bit per word (set: the
/// word differs from `prev`'s), then the words that differ.
#[inline]
pub(crate) fn encode(prev: &[u32], words: &[u32], out: &mut Vec<u8>) {
    put(out, words.len() as u32);
    let masks = out.len();
    out.resize(masks + words.len().div_ceil(8), 0);
    for (j, &w) in words.iter().enumerate() {
        if prev.get(j) != Some(&w) {
            out[masks + j / 8] |= 1 << (j % 8);
            put(out, w);
        }
    }
}

/// Turns `cur` (the state before) into the state encoded at `pos`, and moves `pos` past
/// it.
#[inline]
pub(crate) fn decode(bytes: &[u8], pos: &mut usize, cur: &mut Vec<u32>) {
    let len = take(bytes, pos) as usize;
    cur.resize(len, 0);
    let masks = *pos;
    *pos += len.div_ceil(8);
    for (bits, &m) in bytes[masks..*pos].iter().enumerate() {
        let mut m = m;
        while m != 0 {
            let j = bits * 8 + m.trailing_zeros() as usize;
            cur[j] = take(bytes, pos);
            m &= m - 1;
        }
    }
}

impl Packs {
    /// Appends state `id` (ids must be consecutive).
    pub fn push(&mut self, id: u32, words: &[u32]) {
        if self.len == 0 {
            self.first = id;
        }
        debug_assert_eq!(id as usize, self.first as usize + self.len);
        if self.len.is_multiple_of(KEY) {
            reserve(&mut self.keys, 1);
            self.keys.push(self.bytes.len());
            self.last.clear();
        }
        reserve(&mut self.bytes, encoded_max(words.len()));
        encode(&self.last, words, &mut self.bytes);
        self.last.clear();
        self.last.extend_from_slice(words);
        self.len += 1;
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// The bytes [`Packs::push`] of a state of `len` words would allocate at once (0 when
    /// it fits in what the level holds).
    #[inline]
    pub fn growth(&self, len: usize) -> u64 {
        let keys = if self.len.is_multiple_of(KEY) {
            growth(&self.keys, 1)
        } else {
            0
        };
        let last = if len > self.last.capacity() {
            4 * len as u64
        } else {
            0
        };
        keys + last + growth(&self.bytes, encoded_max(len))
    }

    /// The id of the state at index `k`.
    pub fn id(&self, k: usize) -> u32 {
        self.first + k as u32
    }

    /// A reader whose first state is the one at index `k`; `cur` is left holding the
    /// state before it, as [`Reader::read`] needs.
    pub fn read_from(&self, k: usize, cur: &mut Vec<u32>) -> Reader<'_> {
        let key = k / KEY;
        let mut r = Reader {
            packs: self,
            pos: self.keys.get(key).copied().unwrap_or(self.bytes.len()),
            next: key * KEY,
        };
        while r.next < k && r.read(cur).is_some() {}
        r
    }

    /// The bytes this level keeps.
    #[cfg(test)]
    fn stored(&self) -> usize {
        self.bytes.len() + self.keys.len() * std::mem::size_of::<usize>()
    }
}

/// Reads a level's states in order.
pub(crate) struct Reader<'p> {
    packs: &'p Packs,
    pos: usize,
    /// The index of the state the next read gives.
    next: usize,
}

impl Reader<'_> {
    /// Puts the next state's words in `cur`, which must hold the state before it (the one
    /// this reader gave last, or what [`Packs::read_from`] left there); `None` at the end
    /// of the level.
    pub fn read(&mut self, cur: &mut Vec<u32>) -> Option<()> {
        if self.next >= self.packs.len {
            return None;
        }
        if self.next.is_multiple_of(KEY) {
            cur.clear();
        }
        decode(&self.packs.bytes, &mut self.pos, cur);
        self.next += 1;
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// States like a level's: runs of siblings that share most words, lengths that vary,
    /// and words of every size.
    fn level() -> Vec<Vec<u32>> {
        let mut out = Vec::new();
        let mut x = 0x9E37_79B9u32;
        let mut rand = || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        };
        let mut parent: Vec<u32> = (0..20).collect();
        for _ in 0..1000 {
            if rand() % 5 == 0 {
                let len = 8 + rand() as usize % 24;
                parent = (0..len).map(|_| rand() >> (rand() % 32)).collect();
            }
            let mut s = parent.clone();
            for _ in 0..rand() % 4 {
                let j = rand() as usize % s.len();
                s[j] = rand() >> (rand() % 32);
            }
            match rand() % 6 {
                0 => s.push(rand() % 300),
                1 => {
                    s.pop();
                }
                _ => {}
            }
            out.push(s);
        }
        out
    }

    #[test]
    fn reads_back_every_state_from_any_start() {
        let states = level();
        let mut p = Packs::default();
        for (k, s) in states.iter().enumerate() {
            p.push(500 + k as u32, s);
        }
        assert_eq!(p.len(), states.len());
        assert_eq!(p.id(7), 507);
        for start in [0, 1, KEY - 1, KEY, KEY + 5, 3 * KEY, states.len() - 1] {
            let mut cur = vec![0xdead; 3];
            let mut r = p.read_from(start, &mut cur);
            for (k, want) in states.iter().enumerate().skip(start) {
                r.read(&mut cur).expect("a state");
                assert_eq!(&cur, want, "state {k} read from {start}");
            }
            assert!(r.read(&mut cur).is_none());
        }
        let mut cur = Vec::new();
        assert!(p.read_from(states.len(), &mut cur).read(&mut cur).is_none());
    }

    #[test]
    fn siblings_take_a_few_bytes() {
        // Twenty words, each sibling changing two of them: about 4 bytes of pairs and 2
        // new words, against 20 or more bytes stored whole.
        let parent: Vec<u32> = (100..120).collect();
        let mut p = Packs::default();
        for k in 0..KEY as u32 * 4 {
            let mut s = parent.clone();
            s[3] = k;
            s[15] = 1000 + k;
            p.push(k, &s);
        }
        let per = p.stored() as f64 / p.len() as f64;
        assert!(per < 10.0, "{per} bytes a state");
    }

    #[test]
    fn an_empty_level_reads_nothing() {
        let p = Packs::default();
        assert_eq!(p.len(), 0);
        let mut cur = Vec::new();
        assert!(p.read_from(0, &mut cur).read(&mut cur).is_none());
    }
}
