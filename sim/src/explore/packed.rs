//! Packed states: how the explorer stores the states it has yet to expand.
//!
//! Every part of a global state (a node's state, an armed timer, a message in flight) is
//! interned once in a [`Tables`] and named by a `u32`; a state is then a short row of
//! words: the clock, the partition, the faults spent, one id per node, the timer ids and the
//! message ids. A successor differs from its parent in one node and a few messages, so a
//! step hashes only what changed, copies no other node, and a stored state costs a few dozen
//! bytes, whatever the size of the nodes' own states.
//!
//! The fingerprint of a state is xxh3 over its header and the content hashes of its parts,
//! never over the ids: ids are handed out in discovery order, which with several jobs
//! depends on thread timing, and thread timing must not reach a fingerprint.
//!
//! While jobs expand states in parallel, the shared tables are read-only; each job interns
//! the parts it makes anew in its own overlay (ids from the tables' length up). The merge,
//! one state at a time in a fixed order, moves the parts of new states into the tables.

use super::model::{fingerprint, Armed, MemoKey, Packet, Recall, Store};
use conclave_algorithms::{Algorithm, Effect};
use hashbrown::HashTable;
use std::hash::Hash;

/// Values by id, and ids by value.
pub(crate) struct Interner<T> {
    items: Vec<T>,
    hashes: Vec<u64>,
    index: HashTable<u32>,
}

impl<T: Hash + Eq + Clone> Interner<T> {
    fn new() -> Self {
        Interner {
            items: Vec::new(),
            hashes: Vec::new(),
            index: HashTable::new(),
        }
    }

    fn len(&self) -> u32 {
        self.items.len() as u32
    }

    fn find(&self, hash: u64, value: &T) -> Option<u32> {
        self.index
            .find(hash, |&i| self.items[i as usize] == *value)
            .copied()
    }

    /// The id of `value` (whose content hash is `hash`), interning it if it is new.
    fn intern(&mut self, hash: u64, value: T) -> u32 {
        if let Some(id) = self.find(hash, &value) {
            return id;
        }
        let id = self.len();
        self.items.push(value);
        self.hashes.push(hash);
        let hashes = &self.hashes;
        self.index.insert_unique(hash, id, |&i| hashes[i as usize]);
        id
    }

    fn clear(&mut self) {
        self.items.clear();
        self.hashes.clear();
        self.index.clear();
    }

    /// The bytes interning `extra` new values would allocate at once (the vectors double,
    /// the index is rebuilt at twice its size); 0 if they fit.
    #[inline]
    fn growth(&self, extra: usize) -> u64 {
        let len = self.items.len() + extra;
        let mut bytes = 0;
        if len > self.items.capacity() {
            let cap = len.max(2 * self.items.capacity());
            bytes += cap * (std::mem::size_of::<T>() + std::mem::size_of::<u64>());
        }
        if len > self.index.capacity() {
            let buckets = (len.max(2 * self.index.capacity()) * 8 / 7).next_power_of_two();
            bytes += buckets * (std::mem::size_of::<u32>() + 1);
        }
        bytes as u64
    }
}

/// The interned parts of every stored state.
pub(crate) struct Tables<A: Algorithm> {
    nodes: Interner<A>,
    timers: Interner<Armed<A::Timer>>,
    packets: Interner<Packet<A::Msg>>,
}

impl<A: Algorithm> Tables<A> {
    pub fn new() -> Self {
        Tables {
            nodes: Interner::new(),
            timers: Interner::new(),
            packets: Interner::new(),
        }
    }

    fn clear(&mut self) {
        self.nodes.clear();
        self.timers.clear();
        self.packets.clear();
    }

    /// The bytes interning `extra` new node states, timers and messages would allocate at
    /// once.
    pub fn growth(&self, extra: [usize; 3]) -> u64 {
        self.nodes.growth(extra[0]) + self.timers.growth(extra[1]) + self.packets.growth(extra[2])
    }

    /// Distinct node states, timers and messages interned so far.
    pub fn sizes(&self) -> [u32; 3] {
        [self.nodes.len(), self.timers.len(), self.packets.len()]
    }
}

/// Node id of a process that is down.
const DOWN: u32 = u32::MAX;
/// Words before the node ids: time (2), partition, faults spent (2), the failure
/// detector's verdicts as told (2).
const HEADER: usize = 7;

/// A job's reusable buffers and its overlay of new parts.
pub(crate) struct Scratch<A: Algorithm> {
    over: Tables<A>,
    /// Per table, the shared id each overlay id was moved to (`DOWN`: not yet).
    moved: [Vec<u32>; 3],
    now: u64,
    topo: u32,
    spent: [u8; 5],
    told: u64,
    nodes: Vec<u32>,
    timers: Vec<u32>,
    net: Vec<u32>,
    /// A handler's effects, kept to reuse.
    effects: Vec<Effect<A::Msg, A::Timer>>,
    /// Handler outcomes met before: the node's new state (a shared id) and its effects
    /// (a range of `memo_effects`). Both the state before and after are shared ids, which
    /// never change, so the memo outlives the overlay.
    memo: hashbrown::HashMap<MemoKey, (u32, u32, u32)>,
    memo_effects: Vec<Effect<A::Msg, A::Timer>>,
}

/// The most handler outcomes a job remembers; past that it starts afresh.
const MEMO_MAX: usize = 1 << 16;
/// The most effects those outcomes hold (a node of a large cluster may send to every other
/// in one handler).
const MEMO_EFFECTS_MAX: usize = 1 << 18;

impl<A: Algorithm> Scratch<A> {
    pub fn new() -> Self {
        Scratch {
            over: Tables::new(),
            moved: Default::default(),
            now: 0,
            topo: 0,
            spent: [0; 5],
            told: 0,
            nodes: Vec::new(),
            timers: Vec::new(),
            net: Vec::new(),
            effects: Vec::new(),
            memo: hashbrown::HashMap::new(),
            memo_effects: Vec::new(),
        }
    }

    /// A blank state of `n` processes, all down.
    pub fn blank(&mut self, n: usize) {
        self.now = 0;
        self.topo = 0;
        self.spent = [0; 5];
        self.told = 0;
        self.nodes.clear();
        self.nodes.resize(n, DOWN);
        self.timers.clear();
        self.net.clear();
    }

    /// Loads a packed state of `n` processes.
    pub fn load(&mut self, words: &[u32], n: usize) {
        self.now = u64::from(words[0]) | (u64::from(words[1]) << 32);
        self.topo = words[2];
        let s = words[3].to_le_bytes();
        self.spent = [s[0], s[1], s[2], s[3], words[4] as u8];
        self.told = u64::from(words[5]) | (u64::from(words[6]) << 32);
        self.nodes.clear();
        self.nodes.extend_from_slice(&words[HEADER..HEADER + n]);
        let t = words[HEADER + n] as usize;
        let rest = &words[HEADER + n + 1..];
        self.timers.clear();
        self.timers.extend_from_slice(&rest[..t]);
        self.net.clear();
        self.net.extend_from_slice(&rest[t..]);
    }

    /// Appends the loaded state, packed, to `out`.
    pub fn save(&self, out: &mut Vec<u32>) {
        let s = self.spent;
        out.extend_from_slice(&[
            self.now as u32,
            (self.now >> 32) as u32,
            self.topo,
            u32::from_le_bytes([s[0], s[1], s[2], s[3]]),
            u32::from(s[4]),
            self.told as u32,
            (self.told >> 32) as u32,
        ]);
        out.extend_from_slice(&self.nodes);
        out.push(self.timers.len() as u32);
        out.extend_from_slice(&self.timers);
        out.extend_from_slice(&self.net);
    }

    /// The words [`Scratch::save`] appends.
    pub fn packed_len(&self) -> usize {
        HEADER + self.nodes.len() + 1 + self.timers.len() + self.net.len()
    }

    /// The node states, timers and messages in the overlay.
    pub fn overlay_sizes(&self) -> [usize; 3] {
        let o = &self.over;
        [
            o.nodes.items.len(),
            o.timers.items.len(),
            o.packets.items.len(),
        ]
    }

    /// The bytes `extra` more node states, timers and messages each would allocate at
    /// once, in the overlay and in the loaded state.
    pub fn overlay_growth(&self, extra: usize) -> u64 {
        let v = |v: &Vec<u32>| super::vec_growth(v, extra);
        self.over.growth([extra; 3]) + v(&self.nodes) + v(&self.timers) + v(&self.net)
    }

    /// Forgets the overlay (after a merge has taken what it needed).
    pub fn reset_overlay(&mut self) {
        self.over.clear();
        for m in &mut self.moved {
            m.clear();
        }
    }
}

/// A state being stepped: the scratch's buffers, read through the shared tables and the
/// job's overlay.
pub(crate) struct Work<'a, A: Algorithm> {
    pub tables: &'a Tables<A>,
    pub s: &'a mut Scratch<A>,
}

/// Looks up an id in the shared tables, or in the overlay above them.
fn get<'t, T: Hash + Eq + Clone>(base: &'t Interner<T>, over: &'t Interner<T>, id: u32) -> &'t T {
    match id.checked_sub(base.len()) {
        None => &base.items[id as usize],
        Some(o) => &over.items[o as usize],
    }
}

fn hash_of<T: Hash + Eq + Clone>(base: &Interner<T>, over: &Interner<T>, id: u32) -> u64 {
    match id.checked_sub(base.len()) {
        None => base.hashes[id as usize],
        Some(o) => over.hashes[o as usize],
    }
}

/// The id of `value`, whose content hash is `h`: from the shared tables if they have it,
/// else from the overlay.
fn intern<T: Hash + Eq + Clone>(
    base: &Interner<T>,
    over: &mut Interner<T>,
    h: u64,
    value: T,
) -> u32 {
    match base.find(h, &value) {
        Some(id) => id,
        None => base.len() + over.intern(h, value),
    }
}

impl<A: Algorithm> Work<'_, A> {
    /// The fingerprint of the loaded state (see [`state_fingerprint`]).
    pub fn fingerprint(&self) -> u64 {
        let t = self.tables;
        let s = &*self.s;
        let o = &s.over;
        state_fingerprint(
            (s.now, s.topo, s.spent, s.told),
            s.nodes
                .iter()
                .map(|&id| (id != DOWN).then(|| hash_of(&t.nodes, &o.nodes, id))),
            s.timers.iter().map(|&id| hash_of(&t.timers, &o.timers, id)),
            s.net.iter().map(|&id| hash_of(&t.packets, &o.packets, id)),
        )
    }
}

/// A global state's fingerprint: its header (time, topology, faults spent, what the
/// detector told) and the content hashes of its parts, in order (`None`: a node that is
/// down), folded by a step that is a bijection for each next value (so two states that
/// differ in one part never collide), then avalanched. The packed states and the plain ones
/// (`model::State`) both use it, so a plain state can be found in the visited set.
pub(crate) fn state_fingerprint(
    (now, topo, spent, told): (u64, u32, [u8; 5], u64),
    nodes: impl Iterator<Item = Option<u64>>,
    timers: impl ExactSizeIterator<Item = u64>,
    net: impl ExactSizeIterator<Item = u64>,
) -> u64 {
    let mut h = Fold(0x243F_6A88_85A3_08D3);
    h.add(now);
    let spent = u64::from_le_bytes([spent[0], spent[1], spent[2], spent[3], spent[4], 0, 0, 0]);
    h.add(u64::from(topo) | spent << 24);
    h.add(told);
    for node in nodes {
        h.add(node.unwrap_or(0));
    }
    h.add(timers.len() as u64);
    for t in timers {
        h.add(t);
    }
    let len = net.len() as u64;
    for m in net {
        h.add(m);
    }
    h.finish(len)
}

/// A packet's content hash. The message's own fingerprint is in the packet: no need to
/// hash the message again.
pub(crate) fn packet_hash<M>(m: &Packet<M>) -> u64 {
    let mut f = Fold(u64::from(m.from) << 32 | u64::from(m.to));
    f.add(m.deadline);
    f.finish(m.key)
}

/// Folds 64-bit hashes in order.
struct Fold(u64);

impl Fold {
    fn add(&mut self, x: u64) {
        self.0 = (self.0 ^ x)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(31);
    }
    /// murmur3's 64-bit finalizer over the fold and the length.
    fn finish(mut self, len: u64) -> u64 {
        self.add(len);
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

/// Moves the overlay parts that a packed state names into the shared tables, rewriting its
/// ids (`base`: the tables' sizes when the overlay was started).
pub(crate) fn settle<A: Algorithm>(
    words: &mut [u32],
    n: usize,
    tables: &mut Tables<A>,
    scratch: &mut Scratch<A>,
    base: [u32; 3],
) {
    fn fix<T: Hash + Eq + Clone>(
        id: &mut u32,
        base: u32,
        table: &mut Interner<T>,
        over: &Interner<T>,
        map: &mut Vec<u32>,
    ) {
        if *id == DOWN || *id < base {
            return;
        }
        let o = (*id - base) as usize;
        if map.len() <= o {
            map.resize(o + 1, DOWN);
        }
        if map[o] == DOWN {
            map[o] = table.intern(over.hashes[o], over.items[o].clone());
        }
        *id = map[o];
    }
    let (over, map) = (&scratch.over, &mut scratch.moved);
    let (nodes, rest) = words[HEADER..].split_at_mut(n);
    for id in nodes {
        fix(id, base[0], &mut tables.nodes, &over.nodes, &mut map[0]);
    }
    let t = rest[0] as usize;
    let (timers, net) = rest[1..].split_at_mut(t);
    for id in timers {
        fix(id, base[1], &mut tables.timers, &over.timers, &mut map[1]);
    }
    for id in net {
        fix(id, base[2], &mut tables.packets, &over.packets, &mut map[2]);
    }
}

/// At most the bytes [`settle`] of these arguments would allocate at once: the shared
/// tables growing for the overlay parts the state names that are not moved yet. Bounded
/// first by the whole overlay (a few comparisons); counted when that bound is a large
/// allocation.
pub(crate) fn settle_growth<A: Algorithm>(
    words: &[u32],
    n: usize,
    tables: &Tables<A>,
    scratch: &Scratch<A>,
    base: [u32; 3],
) -> u64 {
    let bound = tables.growth(scratch.overlay_sizes());
    if bound < super::LARGE {
        return bound;
    }
    let unmoved = |ids: &[u32], base: u32, map: &[u32]| {
        ids.iter()
            .filter(|&&id| {
                id != DOWN && id >= base && map.get((id - base) as usize).is_none_or(|&m| m == DOWN)
            })
            .count()
    };
    let (nodes, rest) = words[HEADER..].split_at(n);
    let t = rest[0] as usize;
    let (timers, net) = rest[1..].split_at(t);
    let map = &scratch.moved;
    tables.growth([
        unmoved(nodes, base[0], &map[0]),
        unmoved(timers, base[1], &map[1]),
        unmoved(net, base[2], &map[2]),
    ])
}

impl<A: Algorithm> Store<A> for Work<'_, A> {
    fn now(&self) -> u64 {
        self.s.now
    }
    fn set_now(&mut self, now: u64) {
        self.s.now = now;
    }
    fn topo(&self) -> u32 {
        self.s.topo
    }
    fn set_topo(&mut self, topo: u32) {
        self.s.topo = topo;
    }
    fn spent(&self, k: usize) -> u8 {
        self.s.spent[k]
    }
    fn spend(&mut self, k: usize) {
        self.s.spent[k] += 1;
    }
    fn node(&self, p: usize) -> Option<&A> {
        let id = self.s.nodes[p];
        (id != DOWN).then(|| get(&self.tables.nodes, &self.s.over.nodes, id))
    }
    fn set_node(&mut self, p: usize, node: Option<A>) {
        self.s.nodes[p] = match node {
            None => DOWN,
            Some(v) => intern(
                &self.tables.nodes,
                &mut self.s.over.nodes,
                fingerprint(&v),
                v,
            ),
        };
    }
    fn update<R>(&mut self, p: usize, f: impl FnOnce(&mut A) -> R) -> Option<R> {
        let mut node = self.node(p)?.clone();
        let r = f(&mut node);
        self.s.nodes[p] = intern(
            &self.tables.nodes,
            &mut self.s.over.nodes,
            fingerprint(&node),
            node,
        );
        Some(r)
    }
    fn timers(&self) -> usize {
        self.s.timers.len()
    }
    fn timer(&self, i: usize) -> &Armed<A::Timer> {
        get(&self.tables.timers, &self.s.over.timers, self.s.timers[i])
    }
    fn remove_timer(&mut self, i: usize) -> Armed<A::Timer> {
        let t = self.timer(i).clone();
        self.s.timers.remove(i);
        t
    }
    fn insert_timer(&mut self, at: usize, t: Armed<A::Timer>) {
        let id = intern(
            &self.tables.timers,
            &mut self.s.over.timers,
            fingerprint(&t),
            t,
        );
        self.s.timers.insert(at, id);
    }
    fn retain_timers(&mut self, keep: impl Fn(&Armed<A::Timer>) -> bool) {
        let (base, over) = (&self.tables.timers, &self.s.over.timers);
        self.s.timers.retain(|&id| keep(get(base, over, id)));
    }
    fn packets(&self) -> usize {
        self.s.net.len()
    }
    fn packet(&self, i: usize) -> &Packet<A::Msg> {
        get(&self.tables.packets, &self.s.over.packets, self.s.net[i])
    }
    fn remove_packet(&mut self, i: usize) -> Packet<A::Msg> {
        let m = self.packet(i).clone();
        self.s.net.remove(i);
        m
    }
    fn take_effects(&mut self) -> Vec<Effect<A::Msg, A::Timer>> {
        std::mem::take(&mut self.s.effects)
    }
    fn give_effects(&mut self, effects: Vec<Effect<A::Msg, A::Timer>>) {
        self.s.effects = effects;
    }
    fn packet_id(&self, i: usize) -> Option<u32> {
        Some(self.s.net[i])
    }
    fn timer_id(&self, i: usize) -> Option<u32> {
        Some(self.s.timers[i])
    }
    fn recall(
        &mut self,
        p: usize,
        input: u64,
        effects: &mut Vec<Effect<A::Msg, A::Timer>>,
    ) -> Recall {
        let node = self.s.nodes[p];
        // Only shared ids name the same thing from one chunk to the next (`DOWN` is not one).
        let shared = self.tables.sizes();
        if node >= shared[0]
            || (input >> 62 == 0 && input as u32 >= shared[2])
            || (input >> 62 == 1 && input as u32 >= shared[1])
        {
            return Recall::Off;
        }
        let key = MemoKey {
            node,
            process: p as u32,
            input,
            now: self.s.now,
        };
        match self.s.memo.get(&key) {
            Some(&(to, a, b)) => {
                self.s.nodes[p] = to;
                effects.extend_from_slice(&self.s.memo_effects[a as usize..b as usize]);
                Recall::Hit
            }
            None => Recall::Miss(key),
        }
    }
    fn keep(&mut self, key: MemoKey, p: usize, effects: &[Effect<A::Msg, A::Timer>]) {
        let to = self.s.nodes[p];
        if to >= self.tables.sizes()[0] {
            return;
        }
        if self.s.memo.len() >= MEMO_MAX || self.s.memo_effects.len() >= MEMO_EFFECTS_MAX {
            self.s.memo.clear();
            self.s.memo_effects.clear();
        }
        let a = self.s.memo_effects.len() as u32;
        self.s.memo_effects.extend_from_slice(effects);
        let b = self.s.memo_effects.len() as u32;
        self.s.memo.insert(key, (to, a, b));
    }
    fn told(&self) -> u64 {
        self.s.told
    }
    fn set_told(&mut self, told: u64) {
        self.s.told = told;
    }
    fn insert_packet(&mut self, at: usize, m: Packet<A::Msg>) {
        let id = intern(
            &self.tables.packets,
            &mut self.s.over.packets,
            packet_hash(&m),
            m,
        );
        self.s.net.insert(at, id);
    }
    fn retain_packets(&mut self, keep: impl Fn(&Packet<A::Msg>) -> bool) {
        let (base, over) = (&self.tables.packets, &self.s.over.packets);
        self.s.net.retain(|&id| keep(get(base, over, id)));
    }
}
