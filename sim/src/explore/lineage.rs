//! Each state's parent and the choice that led to it, in about two bytes a state.
//!
//! A counterexample is the path from the initial state to a state, so every state keeps
//! its parent and its choice. Breadth-first, states are numbered in the order they are
//! found and parents in the order they are expanded, so a state's parent is its
//! predecessor's parent or a little after it: one byte holds the difference. The choice is
//! its index among the parent's enabled choices (in the order [`super::Model::choices`]
//! lists them), which is small: one byte again. What does not fit a byte (a parent
//! further on, as depth-first search makes when it backs up; a 255th choice) goes to a
//! side list. Every 256th state also keeps its parent in full, so finding a parent reads
//! at most 256 bytes.

use super::reserve;

const ESCAPE: u8 = u8::MAX;
const MARK: usize = 256;

#[derive(Default)]
pub(crate) struct Lineage {
    /// Per state: its parent minus its predecessor's parent, or `ESCAPE` (see `far`).
    step: Vec<u8>,
    /// Per state: its choice's index, or `ESCAPE` (see `wide`).
    choice: Vec<u8>,
    /// (state, parent) for each `ESCAPE` in `step`, by state.
    far: Vec<(u32, u32)>,
    /// (state, index) for each `ESCAPE` in `choice`, by state.
    wide: Vec<(u32, u32)>,
    /// The parent of every `MARK`-th state.
    marks: Vec<u32>,
    last_parent: u32,
}

fn side(list: &[(u32, u32)], state: u32) -> u32 {
    let i = list
        .binary_search_by_key(&state, |&(s, _)| s)
        .expect("an escaped entry has its side entry");
    list[i].1
}

impl Lineage {
    /// The number of states.
    pub fn len(&self) -> usize {
        self.step.len()
    }

    /// Records the next state: reached from `parent` by its choice number `index`.
    pub fn push(&mut self, parent: u32, index: u32) {
        let id = self.step.len() as u32;
        reserve(&mut self.step, 1);
        reserve(&mut self.choice, 1);
        let delta = parent.wrapping_sub(self.last_parent);
        if parent >= self.last_parent && delta < u32::from(ESCAPE) {
            self.step.push(delta as u8);
        } else {
            self.step.push(ESCAPE);
            self.far.push((id, parent));
        }
        if (id as usize).is_multiple_of(MARK) {
            self.marks.push(parent);
        }
        self.last_parent = parent;
        if index < u32::from(ESCAPE) {
            self.choice.push(index as u8);
        } else {
            self.choice.push(ESCAPE);
            self.wide.push((id, index));
        }
    }

    /// The parent of state `id`.
    pub fn parent(&self, id: u32) -> u32 {
        let m = id as usize / MARK;
        let mut p = self.marks[m];
        for j in m * MARK + 1..=id as usize {
            p = match self.step[j] {
                ESCAPE => side(&self.far, j as u32),
                d => p + u32::from(d),
            };
        }
        p
    }

    /// The index of the choice that led to state `id`.
    pub fn choice(&self, id: u32) -> u32 {
        match self.choice[id as usize] {
            ESCAPE => side(&self.wide, id),
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
            let parent = match id % 7 {
                0 => id - 1,
                3 => id / 3,
                _ => want.last().unwrap().0 + (id % 4),
            }
            .min(id - 1);
            let index = if id % 11 == 0 { 300 + id } else { id % 255 };
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
}
