//! The visited set: state fingerprint to state id.
//!
//! An open-addressing table with linear probing over 12-byte slots (fingerprint, id). Most
//! lookups in a large search miss the cache, and a general-purpose map touches two places
//! per lookup (its control bytes, then the entry); here a lookup usually touches one. The
//! fingerprint 0 marks an empty slot, so a state whose fingerprint is 0 is stored as 1
//! (one more way to collide, among 2⁶⁴).

#[derive(Clone)]
pub(crate) struct Visited {
    /// Fingerprint low half, high half, id.
    slots: Vec<[u32; 3]>,
    len: usize,
}

impl Default for Visited {
    fn default() -> Self {
        Visited {
            slots: vec![[0; 3]; 1024],
            len: 0,
        }
    }
}

fn key(fp: u64) -> u64 {
    fp.max(1)
}

impl Visited {
    fn find(&self, fp: u64) -> (usize, Option<u32>) {
        let mask = self.slots.len() - 1;
        let (lo, hi) = (fp as u32, (fp >> 32) as u32);
        let mut i = (fp >> 20) as usize & mask;
        loop {
            let s = self.slots[i];
            if s[0] == lo && s[1] == hi {
                return (i, Some(s[2]));
            }
            if s[0] == 0 && s[1] == 0 {
                return (i, None);
            }
            i = (i + 1) & mask;
        }
    }

    pub fn get(&self, fp: u64) -> Option<u32> {
        self.find(key(fp)).1
    }

    /// Records `fp` as state `id` (`fp` must not be present).
    pub fn insert(&mut self, fp: u64, id: u32) {
        // Grow at half full: probe sequences stay short.
        if (self.len + 1) * 2 > self.slots.len() {
            let bigger = vec![[0; 3]; self.slots.len() * 2];
            let old = std::mem::replace(&mut self.slots, bigger);
            for s in old {
                if s[0] != 0 || s[1] != 0 {
                    let fp = u64::from(s[0]) | (u64::from(s[1]) << 32);
                    let (i, _) = self.find(fp);
                    self.slots[i] = s;
                }
            }
        }
        let fp = key(fp);
        let (i, found) = self.find(fp);
        debug_assert!(found.is_none(), "fingerprint inserted twice");
        self.slots[i] = [fp as u32, (fp >> 32) as u32, id];
        self.len += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_what_was_inserted_through_growth() {
        let mut v = Visited::default();
        // Includes 0 (stored as 1) and values sharing their probe start.
        let fps: Vec<u64> = (0..5000u64)
            .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (i << 20))
            .collect();
        for (id, &fp) in fps.iter().enumerate() {
            assert_eq!(v.get(fp), None);
            v.insert(fp, id as u32);
        }
        for (id, &fp) in fps.iter().enumerate() {
            assert_eq!(v.get(fp), Some(id as u32));
        }
        assert_eq!(v.get(0xdead_beef_0000_0001), None);
        assert!(v.slots.len() >= 5000 * 2);
    }
}
