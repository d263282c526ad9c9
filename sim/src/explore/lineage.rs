//! Each state's parent and the choice that led to it, in about one byte a state.
//!
//! A counterexample is the path from the initial state to a state, so every state keeps
//! its parent and its choice. Breadth-first, states are numbered in the order they are
//! found and parents in the order they are expanded, so a state's parent is its
//! predecessor's parent or a little after it: three bits hold the difference (0 to 6).
//! The choice is its index among the parent's enabled choices (in the order
//! [`super::Model::choices`] lists them), which is small: five bits (0 to 30). What does
//! not fit (a parent further on, as depth-first search makes when it backs up, or when
//! many parents in a row find nothing new; a 31st choice) goes to a side list. On the
//! anchor model 99 % of the states fit their byte; the 3-node asynchronous Bully, 98.8 %.
//! Every 256th state also keeps its parent in full, so finding a parent reads at most 256
//! bytes.
//!
//! Depth-first, a new state's parent is the state just before it or, once the search has
//! backed up, an ancestor of that state: there the three bits count back from the state
//! before (0 to 6), and a parent is read from its state's byte alone. Counted the
//! breadth-first way, 54 % of the 8,200,393 states of `quorum4_partitions.ron` went to the
//! side list; counted back, 30 %.

use super::{growth, reserve};

/// Bits of a state's byte for its choice; the rest hold its parent's step.
const CHOICE_BITS: u32 = 5;
/// The step and the choice that do not fit: see the side lists.
const FAR: u8 = u8::MAX >> CHOICE_BITS;
const WIDE: u8 = (1 << CHOICE_BITS) - 1;
const MARK: usize = 256;

#[derive(Default)]
pub(crate) struct Lineage {
    /// Per state: its parent minus its predecessor's parent (or `FAR`: see `far`) in the
    /// high bits, its choice's index (or `WIDE`: see `wide`) in the low `CHOICE_BITS`.
    code: Vec<u8>,
    /// (state, parent) for each `FAR` step, by state.
    far: Vec<(u32, u32)>,
    /// (state, index) for each `WIDE` choice, by state.
    wide: Vec<(u32, u32)>,
    /// The parent of every `MARK`-th state (breadth-first).
    marks: Vec<u32>,
    last_parent: u32,
    /// Steps count back from the state before (depth-first search).
    depth_first: bool,
}

fn side(list: &[(u32, u32)], state: u32) -> u32 {
    let i = list
        .binary_search_by_key(&state, |&(s, _)| s)
        .expect("an escaped entry has its side entry");
    list[i].1
}

impl Lineage {
    /// A lineage for a depth-first search (see the module's documentation).
    pub fn depth_first() -> Self {
        Lineage {
            depth_first: true,
            ..Lineage::default()
        }
    }

    /// The step that puts `parent` in the byte of state `id`, if it fits.
    #[inline]
    fn step(&self, id: u32, parent: u32) -> Option<u8> {
        let delta = if self.depth_first {
            match id.checked_sub(1) {
                Some(before) => before.checked_sub(parent)?,
                None => 0,
            }
        } else {
            parent.checked_sub(self.last_parent)?
        };
        (delta < u32::from(FAR)).then_some(delta as u8)
    }

    /// The number of states.
    pub fn len(&self) -> usize {
        self.code.len()
    }

    /// Records the next state: reached from `parent` by its choice number `index`.
    pub fn push(&mut self, parent: u32, index: u32) {
        let id = self.code.len() as u32;
        reserve(&mut self.code, 1);
        let step = self.step(id, parent).unwrap_or_else(|| {
            reserve(&mut self.far, 1);
            self.far.push((id, parent));
            FAR
        });
        let choice = if index < u32::from(WIDE) {
            index as u8
        } else {
            reserve(&mut self.wide, 1);
            self.wide.push((id, index));
            WIDE
        };
        self.code.push(step << CHOICE_BITS | choice);
        if !self.depth_first && (id as usize).is_multiple_of(MARK) {
            reserve(&mut self.marks, 1);
            self.marks.push(parent);
        }
        self.last_parent = parent;
    }

    /// The bytes [`Lineage::push`] of the same arguments would allocate at once.
    #[inline]
    pub fn growth(&self, parent: u32, index: u32) -> u64 {
        let id = self.code.len();
        let mut bytes = growth(&self.code, 1);
        if self.step(id as u32, parent).is_none() {
            bytes += growth(&self.far, 1);
        }
        if index >= u32::from(WIDE) {
            bytes += growth(&self.wide, 1);
        }
        if !self.depth_first && id.is_multiple_of(MARK) {
            bytes += growth(&self.marks, 1);
        }
        bytes
    }

    /// The parent of state `id`.
    pub fn parent(&self, id: u32) -> u32 {
        if self.depth_first {
            return match self.code[id as usize] >> CHOICE_BITS {
                FAR => side(&self.far, id),
                d => id.saturating_sub(1) - u32::from(d),
            };
        }
        let m = id as usize / MARK;
        let mut p = self.marks[m];
        for j in m * MARK + 1..=id as usize {
            p = match self.code[j] >> CHOICE_BITS {
                FAR => side(&self.far, j as u32),
                d => p + u32::from(d),
            };
        }
        p
    }

    /// The index of the choice that led to state `id`.
    pub fn choice(&self, id: u32) -> u32 {
        match self.code[id as usize] & WIDE {
            WIDE => side(&self.wide, id),
            i => u32::from(i),
        }
    }

    /// The choice indexes from the initial state (state 0) to state `id`.
    pub fn path(&self, mut id: u32) -> Vec<u32> {
        let mut out = Vec::new();
        while id != 0 {
            out.push(self.choice(id));
            id = self.parent(id);
        }
        out.reverse();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gives_back_every_parent_and_choice() {
        // Breadth-first-like runs, parents that jump ahead and back, and wide choices.
        let mut want = vec![(0u32, 0u32)];
        let mut l = Lineage::default();
        l.push(0, 0);
        for id in 1..3000u32 {
            // Steps of 0 to 3, and 6 and 7 (the last that fits, the first that does not).
            let last = want.last().unwrap().0;
            let parent = match id % 7 {
                0 => id - 1,
                3 => id / 3,
                5 => last + 6,
                6 => last + 7,
                _ => last + (id % 4),
            }
            .min(id - 1);
            // Choices of every size, 30 (the last that fits) and 31 (the first that does not).
            let index = match id % 11 {
                0 => 300 + id,
                1 => 30,
                2 => 31,
                _ => id % 40,
            };
            l.push(parent, index);
            want.push((parent, index));
        }
        for (id, &(parent, index)) in want.iter().enumerate().skip(1) {
            assert_eq!(l.parent(id as u32), parent, "parent of {id}");
            assert_eq!(l.choice(id as u32), index, "choice of {id}");
        }
        assert_eq!(l.len(), want.len());
        // A path: from 2999 up to 0.
        let mut id = 2999u32;
        let mut back = Vec::new();
        while id != 0 {
            back.push(want[id as usize].1);
            id = want[id as usize].0;
        }
        back.reverse();
        assert_eq!(l.path(2999), back);
    }

    #[test]
    fn depth_first_gives_back_every_parent_and_choice() {
        // A depth-first walk of a tree: each state's parent is the state before it or an
        // ancestor of it, near (a leaf's sibling) or far (after a deep subtree).
        let mut want = vec![(0u32, 0u32)];
        let mut l = Lineage::depth_first();
        l.push(0, 0);
        let mut stack = vec![0u32];
        let mut x = 0x2545_F491u32;
        for id in 1..5000u32 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            // Down from the state before, or back up 1 to 3 levels, now and then 40.
            let up = if x.is_multiple_of(50) {
                40
            } else {
                [0, 0, 0, 1, 1, 2, 3][x as usize % 7]
            };
            stack.truncate(stack.len().saturating_sub(up).max(1));
            let parent = *stack.last().unwrap();
            let index = x >> 8 & 63;
            l.push(parent, index);
            want.push((parent, index));
            stack.push(id);
        }
        // Both kinds of step were taken, and fewer escaped than counted breadth-first.
        let mut bfs = Lineage::default();
        for &(parent, index) in &want {
            bfs.push(parent, index);
        }
        assert!(!l.far.is_empty() && l.marks.is_empty());
        assert!(
            l.far.len() < bfs.far.len(),
            "{} {}",
            l.far.len(),
            bfs.far.len()
        );
        for (id, &(parent, index)) in want.iter().enumerate().skip(1) {
            assert_eq!(l.parent(id as u32), parent, "parent of {id}");
            assert_eq!(l.choice(id as u32), index, "choice of {id}");
        }
    }

    #[test]
    fn breadth_first_runs_take_a_byte_a_state() {
        // Each parent has 0 to 3 new children, by choices 0 to 9.
        let mut l = Lineage::default();
        l.push(0, 0);
        let mut parents = vec![0u32];
        let mut parent = 0u32;
        while parents.len() < 10_000 {
            for c in 0..parent % 4 {
                l.push(parent, c * 3);
                parents.push(parent);
            }
            parent += 1;
        }
        assert!(l.far.is_empty() && l.wide.is_empty());
        assert_eq!(l.code.len(), l.len());
        for id in [1, 255, 256, 257, 9_999] {
            assert_eq!(l.parent(id), parents[id as usize], "parent of {id}");
        }
    }
}
