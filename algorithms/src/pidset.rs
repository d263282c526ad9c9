//! A set of process ids as a bitset: O(1) membership, ascending iteration, compact to store
//! and hash (the explorer keeps millions of node states).
//!
//! ```
//! use conclave_algorithms::{Pid, pidset::PidSet};
//! let mut s: PidSet = [Pid(3), Pid(70)].into_iter().collect();
//! assert!(s.contains(Pid(70)) && !s.contains(Pid(4)));
//! s.insert(Pid(1));
//! assert_eq!(s.iter().collect::<Vec<_>>(), vec![Pid(1), Pid(3), Pid(70)]);
//! s.remove(Pid(70));
//! assert_eq!(s, [Pid(1), Pid(3)].into_iter().collect());
//! s.clear();
//! assert_eq!(s, PidSet::new());
//! ```

use crate::Pid;

/// A set of [`Pid`]s. Equal sets compare and hash equal (no trailing empty words are kept).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PidSet {
    words: Vec<u64>,
}

impl PidSet {
    pub fn new() -> Self {
        PidSet::default()
    }
    #[inline]
    pub fn contains(&self, p: Pid) -> bool {
        let (w, b) = (p.index() / 64, p.index() % 64);
        self.words.get(w).is_some_and(|x| x & (1 << b) != 0)
    }
    /// Adds `p`; returns whether it was new.
    pub fn insert(&mut self, p: Pid) -> bool {
        let (w, b) = (p.index() / 64, p.index() % 64);
        if self.words.len() <= w {
            self.words.resize(w + 1, 0);
        }
        let new = self.words[w] & (1 << b) == 0;
        self.words[w] |= 1 << b;
        new
    }
    /// Removes `p`; returns whether it was there.
    pub fn remove(&mut self, p: Pid) -> bool {
        let was = self.contains(p);
        if was {
            self.words[p.index() / 64] &= !(1 << (p.index() % 64));
            while self.words.last() == Some(&0) {
                self.words.pop();
            }
        }
        was
    }
    /// Removes every member, keeping the storage for the next ones.
    pub fn clear(&mut self) {
        self.words.clear();
    }
    pub fn len(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }
    /// The members in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = Pid> + '_ {
        self.words.iter().enumerate().flat_map(|(i, &w)| {
            let mut bits = w;
            std::iter::from_fn(move || {
                if bits == 0 {
                    return None;
                }
                let b = bits.trailing_zeros();
                bits &= bits - 1;
                Some(Pid(i as u32 * 64 + b))
            })
        })
    }
}

impl FromIterator<Pid> for PidSet {
    fn from_iter<I: IntoIterator<Item = Pid>>(iter: I) -> Self {
        let mut s = PidSet::new();
        for p in iter {
            s.insert(p);
        }
        s
    }
}
