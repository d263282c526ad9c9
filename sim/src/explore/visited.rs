//! The visited set: state fingerprints, and (when edges are kept) each state's id.
//!
//! An ordered linear-probing table. A fingerprint's home slot is its rank in the table's
//! range (`fp * homes / 2⁶⁴`), so homes rise with fingerprints, and the table keeps its
//! entries sorted by fingerprint: each at its home, or right after the entry before it
//! (the layout is a function of the set, whatever the order of insertion). Three things
//! follow:
//! - A lookup stops at the first larger fingerprint, so a miss costs about what a hit
//!   costs, even at a load of 0.9. Most lookups miss the cache; here one usually touches
//!   one cache line.
//! - Growing the table moves every entry up, never down, so it grows in place: one
//!   `realloc` and a pass from the top, with no second table alongside. A search's peak
//!   memory is the table itself.
//! - No wraparound: entries pushed past the last home go into a small tail.
//!
//! Slots hold the 64-bit fingerprint alone when nothing needs state ids (8 bytes), or the
//! fingerprint and the id (12 bytes) when edges between states are kept (liveness,
//! message bounds, the state graph). The fingerprint 0 marks an empty slot, so a state
//! whose fingerprint is 0 is stored as 1 (one more way to collide, among 2⁶⁴).

/// The id [`Visited::get`] reports for a state whose id is not kept.
pub(crate) const NO_ID: u32 = u32::MAX;

/// Grow when more than this share of the homes is taken...
const MAX_LOAD: (usize, usize) = (9, 10);
/// ... by this factor.
const GROWTH: (usize, usize) = (5, 4);
/// Slots after the last home, for the entries pushed past it.
const TAIL: usize = 64;
const FIRST_HOMES: usize = 1024;

/// A table slot: a fingerprint (0: empty), with or without an id.
pub(crate) trait Slot: Copy + Default {
    fn new(fp: u64, id: u32) -> Self;
    fn fp(&self) -> u64;
    fn id(&self) -> u32;
}

impl Slot for u64 {
    fn new(fp: u64, _: u32) -> Self {
        fp
    }
    fn fp(&self) -> u64 {
        *self
    }
    fn id(&self) -> u32 {
        NO_ID
    }
}

/// Fingerprint low half, high half, id: 12 bytes, 4-aligned.
impl Slot for [u32; 3] {
    fn new(fp: u64, id: u32) -> Self {
        [fp as u32, (fp >> 32) as u32, id]
    }
    fn fp(&self) -> u64 {
        u64::from(self[0]) | (u64::from(self[1]) << 32)
    }
    fn id(&self) -> u32 {
        self[2]
    }
}

fn key(fp: u64) -> u64 {
    fp.max(1)
}

pub(crate) struct Table<S> {
    slots: Vec<S>,
    homes: usize,
    len: usize,
}

impl<S: Slot> Table<S> {
    fn new() -> Self {
        Table {
            slots: vec![S::default(); FIRST_HOMES + TAIL],
            homes: FIRST_HOMES,
            len: 0,
        }
    }

    fn home(&self, fp: u64) -> usize {
        ((u128::from(fp) * self.homes as u128) >> 64) as usize
    }

    /// `Ok(slot)` of `fp`, or `Err(slot)` where it would go (maybe the end of the slots).
    #[inline]
    fn find(&self, fp: u64) -> Result<usize, usize> {
        let mut i = self.home(fp);
        while let Some(s) = self.slots.get(i) {
            let f = s.fp();
            if f == fp {
                return Ok(i);
            }
            if f == 0 || f > fp {
                return Err(i);
            }
            i += 1;
        }
        Err(i)
    }

    #[inline]
    fn get(&self, fp: u64) -> Option<u32> {
        self.find(key(fp)).ok().map(|i| self.slots[i].id())
    }

    fn insert(&mut self, fp: u64, id: u32) {
        let fp = key(fp);
        if (self.len + 1) * MAX_LOAD.1 > self.homes * MAX_LOAD.0 {
            self.grow();
        }
        loop {
            let at = match self.find(fp) {
                Ok(_) => {
                    debug_assert!(false, "fingerprint inserted twice");
                    return;
                }
                Err(at) => at,
            };
            // The run from `at` moves up one slot, into the first empty one (most runs
            // are a few slots long).
            let Some(gap) = self
                .slots
                .get(at..)
                .and_then(|r| r.iter().position(|s| s.fp() == 0))
            else {
                self.grow();
                continue;
            };
            if gap > 0 {
                self.slots.copy_within(at..at + gap, at + 1);
            }
            self.slots[at] = S::new(fp, id);
            self.len += 1;
            return;
        }
    }

    /// The bytes the next insertion would allocate: the grown table (the allocator may
    /// copy it, the old one held meanwhile) and where its blocks start; 0 if it does not
    /// grow.
    #[inline]
    fn growth(&self) -> u64 {
        if (self.len + 1) * MAX_LOAD.1 <= self.homes * MAX_LOAD.0 {
            return 0;
        }
        let homes = self.homes * GROWTH.0 / GROWTH.1;
        let slots = (homes + TAIL) * std::mem::size_of::<S>();
        (slots + (self.len / 64 + 1) * 2 * std::mem::size_of::<usize>()) as u64
    }

    /// Grows the homes by [`GROWTH`], in place.
    fn grow(&mut self) {
        let homes = self.homes * GROWTH.0 / GROWTH.1;
        let home = |fp: u64| ((u128::from(fp) * homes as u128) >> 64) as usize;
        // Each entry's new slot is its new home or the slot after the entry before it.
        // Homes only rise, so new slots are at or above old ones: moving entries from the
        // top down never lands on one not yet moved. The new slots are computed forward,
        // so keep where each block of 64 entries starts (old slot, new slot).
        const BLOCK: usize = 64;
        let mut blocks: Vec<(usize, usize)> = Vec::with_capacity(self.len / BLOCK + 1);
        let mut next = 0usize;
        let mut count = 0usize;
        for (i, s) in self.slots.iter().enumerate() {
            if s.fp() == 0 {
                continue;
            }
            let to = home(s.fp()).max(next);
            if count.is_multiple_of(BLOCK) {
                blocks.push((i, to));
            }
            count += 1;
            next = to + 1;
        }
        let len = homes.max(next) + TAIL;
        self.slots.reserve_exact(len - self.slots.len());
        self.slots.resize(len, S::default());
        self.homes = homes;
        let mut old = [0usize; BLOCK];
        let mut new = [0usize; BLOCK];
        for &(first, to) in blocks.iter().rev() {
            let mut k = 0;
            let mut next = to;
            let mut i = first;
            while k < BLOCK && i < self.slots.len() {
                let fp = self.slots[i].fp();
                if fp != 0 {
                    let t = home(fp).max(next);
                    (old[k], new[k]) = (i, t);
                    next = t + 1;
                    k += 1;
                }
                i += 1;
            }
            for j in (0..k).rev() {
                let s = std::mem::take(&mut self.slots[old[j]]);
                self.slots[new[j]] = s;
            }
        }
    }
}

/// The visited set, with or without state ids.
pub(crate) enum Visited {
    Fingerprints(Table<u64>),
    WithIds(Table<[u32; 3]>),
}

impl Visited {
    /// A set that keeps each state's id only if `ids`.
    pub fn new(ids: bool) -> Self {
        if ids {
            Visited::WithIds(Table::new())
        } else {
            Visited::Fingerprints(Table::new())
        }
    }

    /// The id of the state whose fingerprint is `fp` ([`NO_ID`] if ids are not kept), if
    /// it was visited.
    #[inline]
    pub fn get(&self, fp: u64) -> Option<u32> {
        match self {
            Visited::Fingerprints(t) => t.get(fp),
            Visited::WithIds(t) => t.get(fp),
        }
    }

    /// The bytes the next [`Visited::insert`] would allocate at once (0 most of the time).
    #[inline]
    pub fn growth(&self) -> u64 {
        match self {
            Visited::Fingerprints(t) => t.growth(),
            Visited::WithIds(t) => t.growth(),
        }
    }

    /// Records `fp` as state `id` (`fp` must not be present).
    pub fn insert(&mut self, fp: u64, id: u32) {
        match self {
            Visited::Fingerprints(t) => t.insert(fp, id),
            Visited::WithIds(t) => t.insert(fp, id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted_and_placed<S: Slot>(t: &Table<S>) {
        let mut last = 0u64;
        let mut next = 0usize;
        for (i, s) in t.slots.iter().enumerate() {
            if s.fp() != 0 {
                assert!(s.fp() > last, "slot {i} out of order");
                assert_eq!(i, t.home(s.fp()).max(next), "slot {i} not where it belongs");
                last = s.fp();
                next = i + 1;
            }
        }
    }

    fn finds_what_was_inserted<S: Slot>(ids: bool) {
        let mut t = Table::<S>::new();
        // Includes 0 (stored as 1), equal homes, runs at the very top (into the tail),
        // and enough to grow many times.
        let mut fps: Vec<u64> = (0..20_000u64)
            .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (i << 20))
            .collect();
        fps.extend((0..200).map(|i| u64::MAX - i));
        fps.extend((0..200).map(|i| 1u64 << 40 | i));
        for (id, &fp) in fps.iter().enumerate() {
            assert_eq!(t.get(fp), None, "{fp:#x} before its insertion");
            t.insert(fp, id as u32);
        }
        sorted_and_placed(&t);
        for (id, &fp) in fps.iter().enumerate() {
            let want = if ids { id as u32 } else { NO_ID };
            assert_eq!(t.get(fp), Some(want), "{fp:#x}");
        }
        assert_eq!(t.get(0xdead_beef_0000_0001), None);
        assert_eq!(t.len, fps.len());
        assert!(t.len * MAX_LOAD.1 <= t.homes * MAX_LOAD.0);
    }

    #[test]
    fn finds_what_was_inserted_through_growth_with_ids() {
        finds_what_was_inserted::<[u32; 3]>(true);
    }

    #[test]
    fn finds_what_was_inserted_through_growth_without_ids() {
        finds_what_was_inserted::<u64>(false);
    }

    #[test]
    fn the_layout_does_not_depend_on_the_order_of_insertion() {
        let fps: Vec<u64> = (1..5000u64)
            .map(|i| i.wrapping_mul(0xD6E8_FEB8_6659_FD93))
            .collect();
        let mut a = Table::<u64>::new();
        let mut b = Table::<u64>::new();
        for &fp in &fps {
            a.insert(fp, 0);
        }
        for &fp in fps.iter().rev() {
            b.insert(fp, 0);
        }
        assert_eq!(a.slots, b.slots);
    }
}
