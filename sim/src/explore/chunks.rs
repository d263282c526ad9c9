//! An append-only list kept in fixed-size chunks, for what a search keeps per transition.
//!
//! A `Vec` that grows by doubling holds up to twice what it needs, and each reallocation
//! briefly holds the old buffer and the new one. Transitions outnumber states ten to one in
//! the spaces that keep their edges, so that slack was the largest part of such a search's
//! memory. Here growing adds a chunk and moves nothing: the memory is the length plus at
//! most one chunk.

use std::ops::Index;

/// Items a chunk holds (the first chunk grows to this; later ones are made whole).
const BITS: u32 = 16;
const SIZE: usize = 1 << BITS;
const MASK: usize = SIZE - 1;

pub(crate) struct Chunks<T> {
    chunks: Vec<Vec<T>>,
    len: usize,
}

impl<T> Default for Chunks<T> {
    fn default() -> Self {
        Chunks {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Chunks<T> {
    #[inline]
    pub fn push(&mut self, item: T) {
        if self.len & MASK == 0 {
            // The first chunk grows as a `Vec` does, so a small search stays small.
            self.chunks.push(if self.len == 0 {
                Vec::new()
            } else {
                Vec::with_capacity(SIZE)
            });
        }
        if let Some(last) = self.chunks.last_mut() {
            last.push(item);
        }
        self.len += 1;
    }

    /// The bytes the next [`Chunks::push`] would allocate at once (a new chunk).
    #[inline]
    pub fn growth(&self) -> u64 {
        if self.len & MASK == 0 && self.len > 0 {
            (SIZE * std::mem::size_of::<T>()) as u64
        } else {
            0
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn iter(&self) -> impl Iterator<Item = &T> + Clone {
        self.chunks.iter().flatten()
    }
}

impl<T> Index<usize> for Chunks<T> {
    type Output = T;
    fn index(&self, i: usize) -> &T {
        &self.chunks[i >> BITS][i & MASK]
    }
}

impl<T> FromIterator<T> for Chunks<T> {
    fn from_iter<I: IntoIterator<Item = T>>(items: I) -> Self {
        let mut c = Chunks::default();
        for item in items {
            c.push(item);
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::{Chunks, SIZE};

    #[test]
    fn items_stay_where_they_were_pushed_across_chunks() {
        let n = 2 * SIZE + 5;
        let c: Chunks<u32> = (0..n as u32).collect();
        assert_eq!(c.len(), n);
        for i in [0, 1, SIZE - 1, SIZE, SIZE + 1, 2 * SIZE, n - 1] {
            assert_eq!(c[i], i as u32);
        }
        assert!(c.iter().copied().eq(0..n as u32));
        // Full chunks are made at their size: nothing beyond the last chunk is held.
        assert_eq!(c.chunks.len(), 3);
        assert!(c.chunks.iter().all(|k| k.capacity() == SIZE));
    }

    #[test]
    fn an_empty_list_holds_nothing() {
        let c: Chunks<u64> = Chunks::default();
        assert_eq!(c.len(), 0);
        assert_eq!(c.iter().count(), 0);
        assert!(c.chunks.is_empty());
    }
}
