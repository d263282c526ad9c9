//! The event queue: events ordered by (virtual time, insertion sequence).
//!
//! Virtual time never goes back, so a monotone radix heap fits: keys are kept in buckets by
//! the highest bit in which they differ from the last time taken out, and only the first
//! non-empty bucket (found with one bitmask instruction) is ever sorted out again. Events of
//! the current instant wait in a batch in insertion order, which is what makes ties
//! deterministic. A binary heap spent most of a 1024-node election in cache misses; the
//! `radix-heap` crate keys on the (time, sequence) pair and rescans its 129 buckets on
//! nearly every pop of a small queue. This one is fast at both ends (see the benchmark).
//!
//! ```
//! use conclave_sim::queue::EventQueue;
//! let mut q = EventQueue::new();
//! q.push(5, 'b');
//! q.push(3, 'a');
//! q.push(5, 'c');
//! assert_eq!(q.peek_time(), Some(3));
//! let order: Vec<char> = std::iter::from_fn(|| q.pop().map(|(_, e)| e)).collect();
//! assert_eq!(order, ['a', 'b', 'c']);
//! ```

use std::collections::VecDeque;

/// A monotone priority queue: every pushed time must be at least the last time popped.
///
/// Events live in a slab; the buckets move only (time, sequence, slot) keys around, so a
/// redistribution costs the same however big an event is.
pub struct EventQueue<E> {
    /// The time of the current batch; every queued event is at this time or later.
    last: u64,
    /// Events at time `last`, as (sequence, slot), in insertion order.
    batch: VecDeque<(u64, u32)>,
    /// `buckets[i]` holds events whose time first differs from `last` at bit `i`.
    buckets: Vec<Vec<(u64, u64, u32)>>,
    slab: Vec<Option<E>>,
    free: Vec<u32>,
    /// Bit `i` set when `buckets[i]` is not empty.
    nonempty: u64,
    seq: u64,
    len: usize,
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E> EventQueue<E> {
    pub fn new() -> Self {
        EventQueue {
            last: 0,
            batch: VecDeque::new(),
            buckets: (0..64).map(|_| Vec::new()).collect(),
            slab: Vec::new(),
            free: Vec::new(),
            nonempty: 0,
            seq: 0,
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The sequence number the next pushed event will get.
    pub fn next_seq(&self) -> u64 {
        self.seq
    }

    /// Queues `event` at `time`. A time before the last one popped is queued at that last
    /// time instead (the simulator never does this: it schedules at now + delay).
    pub fn push(&mut self, time: u64, event: E) {
        let time = time.max(self.last);
        let seq = self.seq;
        self.seq += 1;
        self.len += 1;
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slab[slot as usize] = Some(event);
                slot
            }
            None => {
                self.slab.push(Some(event));
                self.slab.len() as u32 - 1
            }
        };
        self.place(time, seq, slot);
    }

    #[inline]
    fn place(&mut self, time: u64, seq: u64, slot: u32) {
        if time == self.last {
            self.batch.push_back((seq, slot));
        } else {
            let i = 63 - (time ^ self.last).leading_zeros() as usize;
            self.buckets[i].push((time, seq, slot));
            self.nonempty |= 1 << i;
        }
    }

    /// Makes the batch hold the earliest events, if there are any.
    fn settle(&mut self) {
        if !self.batch.is_empty() || self.nonempty == 0 {
            return;
        }
        let i = self.nonempty.trailing_zeros() as usize;
        self.nonempty &= !(1 << i);
        let bucket = std::mem::take(&mut self.buckets[i]);
        self.last = bucket.iter().map(|e| e.0).min().unwrap_or(self.last);
        let mut spare = bucket;
        for (time, seq, slot) in spare.drain(..) {
            // Every event of bucket i lands in a lower bucket or in the batch.
            self.place(time, seq, slot);
        }
        self.buckets[i] = spare;
        self.batch.make_contiguous().sort_unstable_by_key(|e| e.0);
    }

    /// The time of the next event.
    pub fn peek_time(&mut self) -> Option<u64> {
        self.settle();
        (!self.batch.is_empty()).then_some(self.last)
    }

    /// The next event and its time.
    pub fn pop(&mut self) -> Option<(u64, E)> {
        self.settle();
        let (_, slot) = self.batch.pop_front()?;
        self.len -= 1;
        self.free.push(slot);
        let event = self.slab[slot as usize].take()?;
        Some((self.last, event))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;

    /// Interleaved pushes and pops, checked against a binary heap on (time, seq).
    #[test]
    fn matches_a_binary_heap_on_random_schedules() {
        for seed in 0..50 {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let mut q = EventQueue::new();
            let mut reference = BinaryHeap::new();
            let mut now = 0u64;
            let mut seq = 0u64;
            for _ in 0..2_000 {
                if rng.random_bool(0.55) {
                    let spread = [0, 1, 10, 1_000, 1 << 40][rng.random_range(0..5)];
                    let t = now + rng.random_range(0..=spread);
                    q.push(t, seq);
                    reference.push(Reverse((t, seq)));
                    seq += 1;
                } else {
                    let want = reference.pop().map(|Reverse(x)| x);
                    assert_eq!(q.peek_time(), want.map(|w| w.0), "seed {seed}");
                    let got = q.pop();
                    assert_eq!(got, want, "seed {seed}");
                    if let Some((t, _)) = got {
                        now = t;
                    }
                }
                assert_eq!(q.len(), reference.len());
            }
        }
    }
}
