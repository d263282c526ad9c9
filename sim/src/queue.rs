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
//! A small queue is a sorted list of the same keys instead: a four-node run keeps a dozen
//! or two events waiting, each of which the radix heap moved from bucket to bucket as the
//! clock closed in on it (about 360 instructions an event with the allocation of its 64
//! buckets in every run). A sorted list of a few cache lines takes a binary search and a
//! short move to insert, and nothing to pop; a binary heap took 130 instructions a pop.
//! Past [`SMALL`] events the list's keys move to the buckets, and the buckets serve until
//! the queue is empty again. Both order by (time, sequence), a total order, so which one
//! holds the events never changes the order they come out in.
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

/// The most events the sorted list holds before they move to the radix buckets (an
/// insertion moves up to this many keys).
pub const SMALL: usize = 64;

/// A monotone priority queue: every pushed time must be at least the last time popped.
///
/// Events live in a slab; the list and the buckets move only keys around ((time, slot) in
/// the list, (time, sequence, slot) in the buckets), so a redistribution costs the same
/// however big an event is.
pub struct EventQueue<E> {
    /// The time of the current batch (or of the list's first event, once looked at); every
    /// queued event is at this time or later.
    last: u64,
    /// Small queues: every key, while the radix part is empty.
    sorted: Sorted,
    /// Events at time `last`, as (sequence, slot), in insertion order.
    batch: VecDeque<(u64, u32)>,
    /// `buckets[i]` holds events whose time first differs from `last` at bit `i` (64
    /// buckets once the radix part is first used, none before).
    buckets: Vec<Vec<(u64, u64, u32)>>,
    /// Events in the batch and the buckets.
    radix_len: usize,
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
            // Room for the events a small world keeps waiting, made once rather than
            // doubled up to it.
            sorted: Sorted(Vec::with_capacity(SMALL / 2)),
            batch: VecDeque::new(),
            buckets: Vec::new(),
            radix_len: 0,
            slab: Vec::with_capacity(SMALL / 2),
            free: Vec::with_capacity(SMALL / 2),
            nonempty: 0,
            seq: 0,
            len: 0,
        }
    }

    /// Empty, as new (the room is kept): the events waiting are dropped.
    pub fn clear(&mut self) {
        let EventQueue {
            last,
            sorted,
            batch,
            buckets,
            radix_len,
            slab,
            free,
            nonempty,
            seq,
            len,
        } = self;
        *last = 0;
        sorted.0.clear();
        batch.clear();
        buckets.iter_mut().for_each(Vec::clear);
        *radix_len = 0;
        slab.clear();
        free.clear();
        *nonempty = 0;
        *seq = 0;
        *len = 0;
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
        if self.radix_len == 0 && self.sorted.len() < SMALL {
            self.sorted.push(Key { time, slot });
            return;
        }
        if !self.sorted.is_empty() {
            self.move_to_buckets(seq);
        }
        self.radix_len += 1;
        self.place(time, seq, slot);
    }

    /// Moves every key of the sorted list to the radix part, in order (so the batch stays in
    /// sequence order).
    #[cold]
    fn move_to_buckets(&mut self, below: u64) {
        if self.buckets.is_empty() {
            self.buckets = (0..64).map(|_| Vec::new()).collect();
        }
        // The list keeps no sequence numbers (its order is theirs): its keys get the ones
        // just below `below` (the event being pushed), in the order they come off it. They
        // were all pushed before it, so there are that many numbers free below it; the radix
        // part is empty, so no other key has one.
        let mut seq = below - self.sorted.len() as u64;
        while let Some(Key { time, slot }) = self.sorted.pop() {
            self.radix_len += 1;
            self.place(time, seq, slot);
            seq += 1;
        }
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

    /// Makes the batch hold the earliest events of the radix part, if it has any.
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
        if self.radix_len == 0 {
            let time = self.sorted.peek()?.time;
            // As the radix part does when it settles: nothing earlier may be queued now.
            self.last = time;
            return Some(time);
        }
        self.settle();
        (!self.batch.is_empty()).then_some(self.last)
    }

    /// The next event and its time.
    ///
    /// Always inlined: returned through memory, the event was written in pieces and read
    /// back whole at every pop, a store-forwarding stall; inlined, the simulator's loop
    /// also takes 3,700 instructions fewer a four-node run (callgrind).
    #[inline(always)]
    pub fn pop(&mut self) -> Option<(u64, E)> {
        let slot = if self.radix_len == 0 {
            let key = self.sorted.pop()?;
            self.last = key.time;
            key.slot
        } else {
            self.settle();
            let (_, slot) = self.batch.pop_front()?;
            self.radix_len -= 1;
            slot
        };
        self.len -= 1;
        self.free.push(slot);
        let event = self.slab[slot as usize].take()?;
        Some((self.last, event))
    }
}

/// An event's time and slot. The list needs no sequence number: its order is theirs.
#[derive(Clone, Copy, Debug)]
struct Key {
    time: u64,
    slot: u32,
}

/// Keys sorted latest first, so that the next event is popped off the end.
///
/// A new event is later than every queued one of its instant (its sequence number is the
/// highest yet), so it goes just before the last event later than it: a binary search on
/// time alone. Most are messages due within milliseconds, which land near the end and move
/// few keys (walking from the end instead, moving each key passed, took more instructions).
#[derive(Default)]
struct Sorted(Vec<Key>);

impl Sorted {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn peek(&self) -> Option<&Key> {
        self.0.last()
    }

    fn push(&mut self, key: Key) {
        let at = self.0.partition_point(|k| k.time > key.time);
        self.0.insert(at, key);
    }

    fn pop(&mut self) -> Option<Key> {
        self.0.pop()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;

    /// Interleaved pushes and pops, checked against a binary heap on (time, seq); in
    /// phases that fill the queue past [`SMALL`] and drain it again when `phases` is set.
    fn check_random_schedules(phases: bool) {
        for seed in 0..50 {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let mut q = EventQueue::new();
            let mut reference = BinaryHeap::new();
            let mut now = 0u64;
            let mut seq = 0u64;
            let (mut list_after_radix, mut radix) = (false, false);
            for step in 0..4_000 {
                let p = match (phases, step / 600 % 2) {
                    (false, _) => 0.55,
                    (true, 0) => 0.7,
                    (true, _) => 0.1,
                };
                if rng.random_bool(p) {
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
                radix |= q.radix_len > 0;
                list_after_radix |= radix && !q.sorted.is_empty();
            }
            if phases {
                assert!(list_after_radix, "seed {seed}: both parts used, in turn");
            }
        }
    }

    #[test]
    fn matches_a_binary_heap_on_random_schedules() {
        check_random_schedules(false);
    }

    #[test]
    fn matches_a_binary_heap_across_the_small_limit() {
        check_random_schedules(true);
    }

    /// Events pushed at the current instant after the list's keys moved to the buckets
    /// still come out after the earlier ones of that instant.
    #[test]
    fn ties_keep_their_order_when_keys_move() {
        let mut q = EventQueue::new();
        for i in 0..SMALL as u64 {
            q.push(i % 3, i);
        }
        assert_eq!(q.pop(), Some((0, 0)));
        q.push(0, 1_000);
        q.push(0, 1_001);
        let order: Vec<(u64, u64)> = std::iter::from_fn(|| q.pop()).collect();
        let zeros: Vec<u64> = order.iter().filter(|e| e.0 == 0).map(|e| e.1).collect();
        assert_eq!(zeros.last(), Some(&1_001));
        assert_eq!(zeros[zeros.len() - 2], 1_000);
        assert!(order.windows(2).all(|w| w[0].0 <= w[1].0));
    }
}
