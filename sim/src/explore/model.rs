//! The explored model: what a global state is and what each choice does to it.
//!
//! The semantics are written once, over the [`Store`] trait, and run on two storages: the
//! plain [`State`] (values, as stateright's actor model keeps them; what `replay` and other
//! checkers walk) and the explorer's packed states (interned parts, see `packed.rs`). The
//! explorer's tests and the stateright benchmark check that both storages give the same
//! unique-state counts.

use super::Choice;
use crate::properties::{self, NodeStatus, Topology};
use crate::scenario::{Scenario, Timing};
use crate::schedule::{self, Step, Timed};
use crate::trace::{show, DropReason, TraceEvent, What};
use conclave_algorithms::driver::{carry_out, same_view, Host};
use conclave_algorithms::{
    Algorithm, Cluster, Context, Duration, Effect, MemberKind, Pid, Time, View,
};
use std::cell::RefCell;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A timer armed at a node, with its due time (0 under `Asynchronous`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Armed<T> {
    pub(crate) pid: u32,
    pub(crate) timer: T,
    pub(crate) due: u64,
}

/// A message in flight, or a failure detector's notice on its way.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Packet<M> {
    pub(crate) from: u32,
    pub(crate) to: u32,
    /// `None`: the failure detector will tell `to` its verdict on `from` (whatever the
    /// truth is when the notice arrives, as the simulator's detector does).
    pub(crate) msg: Option<M>,
    pub(crate) deadline: u64,
    /// The message's own fingerprint, for ordering when links are not FIFO.
    pub(crate) key: u64,
}

impl<M> Packet<M> {
    fn order(&self) -> (u32, u32, u64, u64) {
        (self.from, self.to, self.deadline, self.key)
    }
}

/// Where a global state's parts live. Every method is what a `Vec` would do.
pub(crate) trait Store<A: Algorithm> {
    fn now(&self) -> u64;
    fn set_now(&mut self, now: u64);
    fn topo(&self) -> u32;
    fn set_topo(&mut self, topo: u32);
    fn spent(&self, k: usize) -> u8;
    fn spend(&mut self, k: usize);
    fn node(&self, p: usize) -> Option<&A>;
    fn set_node(&mut self, p: usize, node: Option<A>);
    /// Runs `f` on node `p` (if it is up) and keeps the changed node.
    fn update<R>(&mut self, p: usize, f: impl FnOnce(&mut A) -> R) -> Option<R>;
    fn timers(&self) -> usize;
    fn timer(&self, i: usize) -> &Armed<A::Timer>;
    fn remove_timer(&mut self, i: usize) -> Armed<A::Timer>;
    fn insert_timer(&mut self, at: usize, t: Armed<A::Timer>);
    fn retain_timers(&mut self, keep: impl Fn(&Armed<A::Timer>) -> bool);
    fn packets(&self) -> usize;
    fn packet(&self, i: usize) -> &Packet<A::Msg>;
    fn remove_packet(&mut self, i: usize) -> Packet<A::Msg>;
    fn insert_packet(&mut self, at: usize, m: Packet<A::Msg>);
    fn retain_packets(&mut self, keep: impl Fn(&Packet<A::Msg>) -> bool);
    /// What the failure detector has announced to each observer: bit `o * 8 + t` set when
    /// the last verdict on `t` sent to `o` (told, or still on its way) is "suspected".
    fn told(&self) -> u64;
    fn set_told(&mut self, told: u64);
    /// An empty buffer for a handler's effects (a store may keep one to reuse).
    fn take_effects(&mut self) -> Vec<Effect<A::Msg, A::Timer>> {
        Vec::new()
    }
    /// Gives back the buffer [`Store::take_effects`] lent, emptied.
    fn give_effects(&mut self, _effects: Vec<Effect<A::Msg, A::Timer>>) {}
    /// The stable id of packet `i` or timer `i`, to name an input in a [`MemoKey`] (`None`:
    /// this store remembers no handler outcomes).
    fn packet_id(&self, _i: usize) -> Option<u32> {
        None
    }
    fn timer_id(&self, _i: usize) -> Option<u32> {
        None
    }
    /// If `p`'s handler has met `input` before in the same node state at the same time,
    /// sets `p`'s new state and appends the effects it had.
    fn recall(
        &mut self,
        _p: usize,
        _input: u64,
        _effects: &mut Vec<Effect<A::Msg, A::Timer>>,
    ) -> Recall {
        Recall::Off
    }
    /// Remembers the outcome of the handler that [`Store::recall`] missed.
    fn keep(&mut self, _key: MemoKey, _p: usize, _effects: &[Effect<A::Msg, A::Timer>]) {}
}

/// A handler's input, in a node state, at a time, at a process: what its outcome depends
/// on. Handlers are deterministic functions of their node's state, the input and the
/// context (the time, the process's id, the static cluster; no randomness in the
/// explorer), so the same key always gives the same new state and effects. The process is
/// in the key even though every algorithm here keeps its own id in its state: a state that
/// did not would otherwise be answered with another process's outcome.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct MemoKey {
    pub node: u32,
    pub process: u32,
    pub input: u64,
    pub now: u64,
}

/// What [`Store::recall`] found.
pub(crate) enum Recall {
    /// Applied: the node's new state is set and its effects appended.
    Hit,
    /// Not remembered: run the handler, then [`Store::keep`] its outcome under this key.
    Miss(MemoKey),
    /// Not to be remembered.
    Off,
}

/// The inputs a handler can be given, as [`MemoKey::input`]s.
fn input_message(packet: Option<u32>) -> Option<u64> {
    packet.map(u64::from)
}
fn input_timer(timer: Option<u32>) -> Option<u64> {
    timer.map(|t| 1 << 62 | u64::from(t))
}
fn input_suspect(t: Pid, suspected: bool, restarts: u64) -> Option<u64> {
    Some(2 << 62 | restarts << 33 | u64::from(t.0) << 1 | u64::from(suspected))
}
const SUSPECT: u64 = 2 << 62;
const START: u64 = 3 << 62;
const INPUT_START: Option<u64> = Some(START);

/// One global state, as plain values (opaque outside this module; see [`Model::next`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct State<A: Algorithm> {
    now: u64,
    /// Shared until a step changes them: a successor copies only the node that acted.
    nodes: Vec<Option<Arc<A>>>,
    timers: Vec<Armed<A::Timer>>,
    net: Vec<Packet<A::Msg>>,
    /// 0: whole; k: the scenario's split k-1.
    topo: u32,
    /// Spent: crashes, restarts, drops, duplicates, partition changes.
    spent: [u8; 5],
    /// The failure detector's verdicts as told (see [`Store::told`]).
    told: u64,
}

impl<A: Algorithm> State<A> {
    /// The explorer's fingerprint of this state: the one its packed form has.
    pub(crate) fn fingerprint(&self) -> u64 {
        super::packed::state_fingerprint(
            (self.now, self.topo, self.spent, self.told),
            self.nodes
                .iter()
                .map(|n| n.as_deref().map(fingerprint::<A>)),
            self.timers.iter().map(fingerprint),
            self.net.iter().map(super::packed::packet_hash),
        )
    }
}

impl<A: Algorithm> Store<A> for State<A> {
    fn now(&self) -> u64 {
        self.now
    }
    fn set_now(&mut self, now: u64) {
        self.now = now;
    }
    fn topo(&self) -> u32 {
        self.topo
    }
    fn set_topo(&mut self, topo: u32) {
        self.topo = topo;
    }
    fn spent(&self, k: usize) -> u8 {
        self.spent[k]
    }
    fn spend(&mut self, k: usize) {
        self.spent[k] += 1;
    }
    fn node(&self, p: usize) -> Option<&A> {
        self.nodes[p].as_deref()
    }
    fn set_node(&mut self, p: usize, node: Option<A>) {
        self.nodes[p] = node.map(Arc::new);
    }
    fn update<R>(&mut self, p: usize, f: impl FnOnce(&mut A) -> R) -> Option<R> {
        self.nodes[p].as_mut().map(|n| f(Arc::make_mut(n)))
    }
    fn timers(&self) -> usize {
        self.timers.len()
    }
    fn timer(&self, i: usize) -> &Armed<A::Timer> {
        &self.timers[i]
    }
    fn remove_timer(&mut self, i: usize) -> Armed<A::Timer> {
        self.timers.remove(i)
    }
    fn insert_timer(&mut self, at: usize, t: Armed<A::Timer>) {
        self.timers.insert(at, t);
    }
    fn retain_timers(&mut self, keep: impl Fn(&Armed<A::Timer>) -> bool) {
        self.timers.retain(keep);
    }
    fn packets(&self) -> usize {
        self.net.len()
    }
    fn packet(&self, i: usize) -> &Packet<A::Msg> {
        &self.net[i]
    }
    fn remove_packet(&mut self, i: usize) -> Packet<A::Msg> {
        self.net.remove(i)
    }
    fn insert_packet(&mut self, at: usize, m: Packet<A::Msg>) {
        self.net.insert(at, m);
    }
    fn retain_packets(&mut self, keep: impl Fn(&Packet<A::Msg>) -> bool) {
        self.net.retain(keep);
    }
    fn told(&self) -> u64 {
        self.told
    }
    fn set_told(&mut self, told: u64) {
        self.told = told;
    }
}

impl<A: Algorithm> State<A> {
    fn blank(n: usize) -> Self {
        State {
            now: 0,
            nodes: (0..n).map(|_| None).collect(),
            timers: Vec::new(),
            net: Vec::new(),
            topo: 0,
            spent: [0; 5],
            told: 0,
        }
    }
}

/// Collects a value's `Hash` writes in a buffer, hashed once with xxh3 at the end (many
/// small streaming updates cost more than one pass).
struct Buffered<'a>(&'a mut Vec<u8>);

impl Hasher for Buffered<'_> {
    fn write(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }
    fn finish(&self) -> u64 {
        xxhash_rust::xxh3::xxh3_64(self.0)
    }
}

thread_local! {
    static FINGERPRINT_BUFFER: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(4096));
    /// The nodes' statuses of the state being checked (one buffer per thread, reused).
    static STATUSES: RefCell<Vec<NodeStatus>> = const { RefCell::new(Vec::new()) };
}

/// xxh3 over a value's `Hash` writes: the same value gives the same fingerprint in every
/// run and on every thread.
pub(crate) fn fingerprint<T: Hash>(t: &T) -> u64 {
    FINGERPRINT_BUFFER.with(|b| {
        let mut buf = b.borrow_mut();
        buf.clear();
        let mut h = Buffered(&mut buf);
        t.hash(&mut h);
        h.finish()
    })
}

/// Which safety properties a state violates, and whether it is settled.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Checked {
    /// AtMostOneLeader, OneLeaderPerComponent.
    pub violates: [bool; 2],
    /// Every component agrees on one running leader.
    pub settled: bool,
    pub now: u64,
}

/// What a recording step keeps: the trace, and the schedule of timed steps that the
/// simulator can play (see [`crate::schedule`]).
#[derive(Default)]
pub struct Rec {
    pub trace: Vec<TraceEvent>,
    pub steps: Vec<Timed>,
}

/// What holds in the last state of a replay.
#[derive(Clone, Debug)]
pub struct ReplayEnd {
    pub at_most_one: Option<String>,
    pub per_component: Option<String>,
    pub settled: bool,
    /// The virtual time of the last state (µs).
    pub now_us: u64,
    /// The path as a timed schedule the simulator can play (`Bounded` timing; under
    /// `Asynchronous` the times mean nothing).
    pub steps: Vec<Timed>,
}

/// The explored model of one scenario.
pub struct Model<A: Algorithm> {
    cluster: Cluster,
    params: A::Params,
    pub(crate) names: Vec<String>,
    voters: Vec<Pid>,
    max_delay: Option<u64>,
    /// `Bounded`: the clock's step (µs), dividing every time constant of the scenario.
    quantum: u64,
    /// The first timer duration found off the clock's steps (`u64::MAX`: none).
    off_grid: AtomicU64,
    fifo: bool,
    pub(crate) horizon: u64,
    budget: [u32; 5],
    faults_from: u64,
    faults_until: u64,
    topologies: Vec<Topology>,
    splits: Vec<Vec<Vec<Pid>>>,
    /// The failure detector's delay (µs), for algorithms that assume one.
    detector: Option<u64>,
}

/// Where a notice's key keeps the restarts counted at its change (below: its place among
/// its link's notices with the same deadline, and its verdict).
const NOTICE_RESTARTS: u32 = 32;
const NOTICE_COUNT: u64 = (1 << NOTICE_RESTARTS) - 1;

/// The most processes a failure detector's verdicts can be kept for (one bit per pair).
pub const MAX_DETECTED: usize = 8;

impl<A: Algorithm> Model<A> {
    pub fn new(scenario: &Scenario, params: A::Params) -> Self {
        let spec = scenario
            .explore
            .clone()
            .unwrap_or(crate::scenario::ExploreSpec {
                timing: Timing::Asynchronous,
                crashes: 0,
                restarts: 0,
                drops: 0,
                duplicates: 0,
                partitions: Vec::new(),
                partition_changes: 0,
                horizon: None,
                faults_from: None,
                faults_until: None,
                max_states: None,
                expect: Vec::new(),
                expect_violated: Vec::new(),
            });
        let cluster = crate::run::cluster_of(scenario, scenario.seeds[0]);
        let idx = scenario.node_index();
        let splits: Vec<Vec<Vec<Pid>>> = spec
            .partitions
            .iter()
            .map(|split| {
                split
                    .iter()
                    .map(|g| g.iter().map(|n| Pid(idx[n] as u32)).collect())
                    .collect()
            })
            .collect();
        let joins: Vec<bool> = cluster
            .members
            .iter()
            .map(|m| m.kind == MemberKind::Voter)
            .collect();
        let mut topologies = vec![Topology::joining(joins.clone())];
        for split in &splits {
            let mut t = Topology::joining(joins.clone());
            t.partition(split);
            topologies.push(t);
        }
        Model {
            names: cluster.members.iter().map(|m| m.name.clone()).collect(),
            voters: cluster.voters().collect(),
            cluster,
            max_delay: match spec.timing {
                Timing::Asynchronous => None,
                Timing::Bounded { max_delay } => Some(max_delay.as_micros()),
            },
            quantum: scenario.quantum().map_or(1, |q| q.as_micros()),
            off_grid: AtomicU64::new(u64::MAX),
            fifo: scenario.network.fifo,
            horizon: spec.horizon.unwrap_or(scenario.run_for).as_micros(),
            budget: [
                spec.crashes,
                spec.restarts,
                spec.drops,
                spec.duplicates,
                spec.partition_changes,
            ],
            faults_from: spec.faults_from.map_or(0, |d| d.as_micros()),
            faults_until: spec.faults_until.map_or(u64::MAX, |d| d.as_micros()),
            topologies,
            splits,
            detector: A::detector(&params).map(|d| d.delay().as_micros()),
            params,
        }
    }

    /// `Bounded` timing: the clock's step (µs).
    pub fn quantum(&self) -> Option<u64> {
        self.max_delay.map(|_| self.quantum)
    }

    /// How many processes the cluster has.
    pub(crate) fn len(&self) -> usize {
        self.cluster.len()
    }

    /// Starts every process in a blank store `s`; returns the messages they sent.
    pub(crate) fn start<S: Store<A>>(&self, s: &mut S, rec: &mut Option<Rec>) -> u32 {
        self.start_while(s, rec, &mut |_| true).unwrap_or(0)
    }

    /// [`Model::start`], asking `go` before each process is made and before each starts
    /// (a cluster of thousands of processes can start with millions of messages in
    /// flight): `None` as soon as it says no, the store then holding part of the start.
    pub(crate) fn start_while<S: Store<A>>(
        &self,
        s: &mut S,
        rec: &mut Option<Rec>,
        go: &mut dyn FnMut(&S) -> bool,
    ) -> Option<u32> {
        // Every process exists before any starts (all start at time 0: a message one sends
        // on start reaches the others); services start first, as in the simulator.
        for i in 0..self.len() {
            if !go(s) {
                return None;
            }
            s.set_node(i, Some(A::new(Pid(i as u32), &self.cluster, &self.params)));
        }
        let mut order: Vec<usize> = (0..self.len()).collect();
        order.sort_by_key(|&i| self.cluster.members[i].kind == MemberKind::Voter);
        let mut sent = 0;
        for i in order {
            if !go(s) {
                return None;
            }
            self.note(rec, 0, Pid(i as u32), || What::Start);
            sent += self.run(s, Pid(i as u32), rec, INPUT_START, |node, ctx| {
                node.on_start(ctx)
            });
        }
        Some(sent)
    }

    /// Records an event when recording (`what` is only made then: exploring records nothing).
    fn note(&self, rec: &mut Option<Rec>, now: u64, p: Pid, what: impl FnOnce() -> What) {
        if let Some(r) = rec {
            let node = self
                .names
                .get(p.index())
                .cloned()
                .unwrap_or_else(|| "network".into());
            r.trace.push(TraceEvent {
                time_us: now,
                node,
                what: what(),
            });
        }
    }

    fn view<S: Store<A>>(&self, s: &S, p: Pid) -> View {
        s.node(p.index())
            .map_or(NodeStatus::DOWN_VIEW, |n| n.view())
    }

    /// Runs one handler of node `p` and applies its effects; returns the messages sent.
    fn run<S: Store<A>>(
        &self,
        s: &mut S,
        p: Pid,
        rec: &mut Option<Rec>,
        input: Option<u64>,
        f: impl FnOnce(&mut A, &mut conclave_algorithms::Ctx<'_, A>),
    ) -> u32 {
        // Role changes are only looked for when recording, and outcomes only remembered
        // when not.
        let recording = rec.is_some();
        // A process that starts was down before (as the simulator sees it).
        let before = recording.then(|| {
            if input.is_some_and(|i| i & START == START) {
                NodeStatus::DOWN_VIEW
            } else {
                self.view(s, p)
            }
        });
        let mut effects = s.take_effects();
        let now = s.now();
        // The restarts so far (this one counted): a starting node's incarnation, which its
        // start handler may read, so it is part of that input.
        // For a notice, the restarts counted at the change it announces.
        let incarnation = match input {
            Some(i) if i & START == SUSPECT => i << 2 >> 35,
            _ => u64::from(s.spent(1)),
        };
        let input = input.map(|i| if i == START { i | incarnation } else { i });
        let recalled = match input.filter(|_| !recording) {
            Some(input) => s.recall(p.index(), input, &mut effects),
            None => Recall::Off,
        };
        let after = if let Recall::Hit = recalled {
            None
        } else {
            let Some(after) = s.update(p.index(), |node| {
                f(
                    node,
                    &mut Context::new(Time(now), p, &self.cluster, &mut effects)
                        .with_incarnation(incarnation),
                );
                recording.then(|| node.view())
            }) else {
                s.give_effects(effects);
                return 0;
            };
            if let Recall::Miss(key) = recalled {
                s.keep(key, p.index(), &effects);
            }
            after
        };
        if let Some(after) = after.filter(|a| !before.is_some_and(|b| same_view(a, &b))) {
            self.note(rec, now, p, || What::Role {
                role: after.role,
                leader: after.leader.map(|l| self.names[l.index()].clone()),
                status: after.status.to_string(),
                group: after.group,
            });
        }
        let mut host = Carry {
            model: self,
            s,
            p,
            rec,
            now,
            sent: 0,
        };
        carry_out(effects.drain(..), p, &self.voters, &mut host);
        let sent = host.sent;
        s.give_effects(effects);
        sent
    }

    fn send<S: Store<A>>(&self, s: &mut S, from: Pid, to: Pid, msg: A::Msg, rec: &mut Option<Rec>) {
        self.note(rec, s.now(), from, || What::Send {
            to: self.names[to.index()].clone(),
            msg: show(&msg, &self.names),
        });
        let topo = &self.topologies[s.topo() as usize];
        let down = s.node(to.index()).is_none();
        if !topo.connected(from, to) || down {
            self.note(rec, s.now(), to, || What::Drop {
                from: self.names[from.index()].clone(),
                to: self.names[to.index()].clone(),
                msg: show(&msg, &self.names),
                reason: if down {
                    DropReason::Down
                } else {
                    DropReason::Partitioned
                },
            });
            return;
        }
        let deadline = self.max_delay.map_or(u64::MAX, |d| s.now() + d);
        let key = fingerprint(&msg);
        let packet = Packet {
            from: from.0,
            to: to.0,
            msg: Some(msg),
            deadline,
            key,
        };
        self.enqueue(s, packet);
    }

    /// Puts a packet in flight, in the network's order.
    fn enqueue<S: Store<A>>(&self, s: &mut S, packet: Packet<A::Msg>) {
        if self.fifo && self.max_delay.is_some() {
            s.insert_packet(link_end(s, &packet), packet);
        } else {
            // The list is sorted by `order`: equal packets have equal orders, next to each
            // other (a search of the whole list made a start with a million messages in
            // flight quadratic).
            let key = packet.order();
            let at = partition_point(s.packets(), |i| s.packet(i).order() <= key);
            if self.max_delay.is_none()
                && (0..at)
                    .rev()
                    .take_while(|&i| s.packet(i).order() == key)
                    .any(|i| *s.packet(i) == packet)
            {
                return; // asynchronous: the in-flight messages are a set
            }
            s.insert_packet(at, packet);
        }
    }

    /// Whether the failure detector's truth is that running voter `o` should suspect `t`
    /// (down, or cut off from `o`).
    fn suspects<S: Store<A>>(&self, s: &S, o: usize, t: usize) -> bool {
        let topo = &self.topologies[s.topo() as usize];
        s.node(t).is_none() || !topo.connected(Pid(o as u32), Pid(t as u32))
    }

    /// The failure detector's truth for every pair of voters (see [`Store::told`]).
    fn truth<S: Store<A>>(&self, s: &S) -> u64 {
        let mut bits = 0;
        for &o in &self.voters {
            if s.node(o.index()).is_none() {
                continue;
            }
            for &t in &self.voters {
                if t != o && self.suspects(s, o.index(), t.index()) {
                    bits |= 1 << (o.index() * MAX_DETECTED + t.index());
                }
            }
        }
        bits
    }

    /// After a change: a notice on its way to every up observer whose truth about a voter
    /// now differs from the last verdict announced to it, carrying the new verdict. Under
    /// `Bounded` it must arrive within the detector's delay, as in the simulator. A
    /// notice's key is its verdict (bit 0) above a count that puts it after the notices on
    /// its link with the same deadline, so that each link's notices keep their order, and
    /// above both the restarts counted at the change (what the observer's
    /// `ctx.incarnation()` says when it is told).
    fn detect<S: Store<A>>(&self, s: &mut S) {
        let Some(delay) = self.detector else {
            return;
        };
        let truth = self.truth(s);
        let mut news = truth ^ s.told();
        s.set_told(truth);
        while news != 0 {
            let bit = news.trailing_zeros() as usize;
            news &= news - 1;
            let (from, to) = ((bit % MAX_DETECTED) as u32, (bit / MAX_DETECTED) as u32);
            let deadline = self.max_delay.map_or(u64::MAX, |_| s.now() + delay);
            // After the notices with the same deadline still on the link.
            let before = (0..s.packets())
                .map(|i| s.packet(i))
                .filter(|p| p.msg.is_none() && (p.from, p.to, p.deadline) == (from, to, deadline))
                .map(|p| ((p.key & NOTICE_COUNT) >> 1) + 1)
                .max()
                .unwrap_or(0);
            let packet = Packet {
                from,
                to,
                msg: None,
                deadline,
                key: u64::from(s.spent(1)) << NOTICE_RESTARTS | before << 1 | (truth >> bit & 1),
            };
            self.enqueue(s, packet);
        }
    }

    /// Which timers may fire now: all (`Asynchronous`), or those due at this time
    /// (`Bounded`: the earliest due, within the horizon, with no message in flight whose
    /// deadline is earlier), or none.
    fn firing<S: Store<A>>(&self, s: &S) -> Firing {
        if self.max_delay.is_none() {
            return Firing::Any;
        }
        Firing::Due(s.now())
    }

    /// A timer's duration on the clock's steps: itself, or (if a handler computed a
    /// duration the scenario's constants do not divide) the next step up, remembered so
    /// that the report says the search was not exact.
    fn on_grid(&self, after: u64) -> u64 {
        let q = self.quantum;
        if after.is_multiple_of(q) {
            return after;
        }
        let _ =
            self.off_grid
                .compare_exchange(u64::MAX, after, Ordering::Relaxed, Ordering::Relaxed);
        after.div_ceil(q) * q
    }

    /// A timer duration set during the search that the clock's steps do not divide, if any:
    /// the search then did not follow that timer's exact time.
    pub(crate) fn off_grid(&self) -> Option<(u64, u64)> {
        let after = self.off_grid.load(Ordering::Relaxed);
        (after != u64::MAX).then_some((after, self.quantum))
    }

    /// `Bounded`: the time a [`Choice::Tick`] moves the clock to, if time may pass. It may
    /// not while a timer is due or a message or notice has reached its deadline (they
    /// must happen first), nor past the horizon. While anything is in flight or a fault
    /// may strike, time moves by one step, since a delivery or a fault may happen at any
    /// step; otherwise nothing but a timer can happen, and time moves straight to it.
    pub(crate) fn next_time<S: Store<A>>(&self, s: &S) -> Option<u64> {
        self.max_delay?;
        let now = s.now();
        if now >= self.horizon {
            return None;
        }
        let mut due = u64::MAX;
        for i in 0..s.timers() {
            let d = s.timer(i).due;
            if d <= now {
                return None;
            }
            due = due.min(d);
        }
        if (0..s.packets()).any(|i| s.packet(i).deadline <= now) {
            return None;
        }
        let next = if s.packets() > 0 {
            now + self.quantum
        } else if self.faults_left(s) {
            if now < self.faults_from {
                due.min(self.faults_from)
            } else {
                now + self.quantum
            }
        } else {
            due
        };
        (next <= self.horizon).then_some(next)
    }

    /// Whether a crash, restart or change of partition may still be chosen, now or later
    /// (drops and duplicates need a message in flight).
    fn faults_left<S: Store<A>>(&self, s: &S) -> bool {
        if s.now() >= self.faults_until {
            return false;
        }
        let left = |k: usize| u32::from(s.spent(k)) < self.budget[k];
        let n = self.len();
        (left(0) && (0..n).any(|p| s.node(p).is_some()))
            || (left(1) && (0..n).any(|p| s.node(p).is_none()))
            || (left(4) && !self.splits.is_empty())
    }

    /// Whether message `i` may be delivered now (FIFO: it is the oldest on its link). FIFO
    /// packets are kept in [`link_end`] order, each link's messages first, so a message is
    /// the oldest on its link when the packet before it is not a message on the same link.
    fn deliverable<S: Store<A>>(&self, s: &S, i: usize) -> bool {
        let m = s.packet(i);
        if m.msg.is_none() {
            // A notice: the first of its link's (each link's notices are in order).
            return (0..i)
                .rev()
                .map(|j| s.packet(j))
                .take_while(|o| o.from == m.from && o.to == m.to)
                .all(|o| o.msg.is_some());
        }
        let ordered = self.fifo && self.max_delay.is_some();
        if !ordered || i == 0 {
            return true;
        }
        let o = s.packet(i - 1);
        o.msg.is_none() || o.from != m.from || o.to != m.to
    }

    /// Every choice enabled in `s`, in a fixed order, into `out`.
    pub(crate) fn choices<S: Store<A>>(&self, s: &S, out: &mut Vec<Choice>) {
        out.clear();
        for i in 0..s.packets() {
            if self.deliverable(s, i) {
                out.push(Choice::Deliver(i as u32));
            }
        }
        let firing = self.firing(s);
        out.extend(
            (0..s.timers())
                .filter(|&i| firing.allows(s.timer(i).due))
                .map(|i| Choice::Timer(i as u32)),
        );
        let window = (self.faults_from..=self.faults_until).contains(&s.now());
        let can = |k: usize| u32::from(s.spent(k)) < self.budget[k] && window;
        let n = self.len();
        if can(0) {
            out.extend(
                (0..n)
                    .filter(|&p| s.node(p).is_some())
                    .map(|p| Choice::Crash(p as u32)),
            );
        }
        if can(1) {
            out.extend(
                (0..n)
                    .filter(|&p| s.node(p).is_none())
                    .map(|p| Choice::Restart(p as u32)),
            );
        }
        // Faults of the network, not of the failure detector.
        let messages = || (0..s.packets()).filter(|&i| s.packet(i).msg.is_some());
        if can(2) {
            out.extend(messages().map(|i| Choice::Drop(i as u32)));
        }
        if can(3) && self.max_delay.is_some() {
            out.extend(messages().map(|i| Choice::Duplicate(i as u32)));
        }
        if can(4) {
            for k in 0..self.splits.len() {
                if s.topo() != k as u32 + 1 {
                    out.push(Choice::Partition(k as u32));
                }
            }
            if s.topo() != 0 {
                out.push(Choice::Heal);
            }
        }
        if self.next_time(s).is_some() {
            out.push(Choice::Tick);
        }
    }

    /// Applies `choice` to `s` in place; returns the messages the algorithm sent, or `None`
    /// (and `s` unchanged) if the choice is not enabled in `s`.
    pub(crate) fn step<S: Store<A>>(
        &self,
        s: &mut S,
        choice: Choice,
        rec: &mut Option<Rec>,
    ) -> Option<u32> {
        let mut sent = 0;
        match choice {
            Choice::Deliver(i) => {
                let i = i as usize;
                if i >= s.packets() || !self.deliverable(s, i) {
                    return None;
                }
                let input = input_message(s.packet_id(i));
                let m = s.remove_packet(i);
                self.log(rec, s.now(), || match &m.msg {
                    Some(_) => Step::Deliver(self.packet_step(&m)),
                    None => Step::Notice {
                        observer: self.names[m.to as usize].clone(),
                        about: self.names[m.from as usize].clone(),
                        suspected: m.key & 1 == 1,
                        changed_us: m.deadline - self.detector.unwrap_or(0),
                    },
                });
                let (from, to) = (Pid(m.from), Pid(m.to));
                let Some(msg) = m.msg else {
                    let restarts = m.key >> NOTICE_RESTARTS;
                    return Some(self.tell(s, to, from, m.key & 1 == 1, restarts, rec));
                };
                self.note(rec, s.now(), to, || What::Deliver {
                    from: self.names[from.index()].clone(),
                    msg: show(&msg, &self.names),
                });
                sent = self.run(s, to, rec, input, |node, ctx| {
                    node.on_message(from, msg, ctx)
                });
            }
            Choice::Timer(i) => {
                let i = i as usize;
                if i >= s.timers() || !self.firing(s).allows(s.timer(i).due) {
                    return None;
                }
                let input = input_timer(s.timer_id(i));
                let t = s.remove_timer(i);
                s.set_now(s.now().max(t.due));
                self.log(rec, s.now(), || Step::Timer {
                    node: self.names[t.pid as usize].clone(),
                    timer: show(&t.timer, &self.names),
                });
                self.note(rec, s.now(), Pid(t.pid), || What::Timer {
                    timer: show(&t.timer, &self.names),
                });
                sent = self.run(s, Pid(t.pid), rec, input, |node, ctx| {
                    node.on_timer(t.timer, ctx)
                });
            }
            Choice::Crash(p) => {
                if p as usize >= self.len()
                    || s.node(p as usize).is_none()
                    || u32::from(s.spent(0)) >= self.budget[0]
                {
                    return None;
                }
                s.spend(0);
                self.log(rec, s.now(), || Step::Crash {
                    node: self.names[p as usize].clone(),
                });
                self.note(rec, s.now(), Pid(p), || What::Crash);
                s.set_node(p as usize, None);
                s.retain_timers(|t| t.pid != p);
                // Its connections break: what was on its way to it is lost (and so are its
                // failure detector's notices, silently: they are not messages).
                self.note_drops(s, rec, DropReason::Down, |m| m.to == p);
                s.retain_packets(|m| m.to != p);
                // A process that starts again knows nothing: the detector tells it afresh.
                if self.detector.is_some() {
                    let row = 0xFF << (p as usize * MAX_DETECTED);
                    s.set_told(s.told() & !row);
                }
                self.detect(s);
            }
            Choice::Restart(p) => {
                if p as usize >= self.len()
                    || s.node(p as usize).is_some()
                    || u32::from(s.spent(1)) >= self.budget[1]
                {
                    return None;
                }
                s.spend(1);
                let pid = Pid(p);
                self.log(rec, s.now(), || Step::Restart {
                    node: self.names[p as usize].clone(),
                });
                self.note(rec, s.now(), pid, || What::Restart);
                s.set_node(p as usize, Some(A::new(pid, &self.cluster, &self.params)));
                sent = self.run(s, pid, rec, INPUT_START, |node, ctx| node.on_start(ctx));
                self.detect(s);
            }
            Choice::Drop(i) | Choice::Duplicate(i) => {
                let k = if matches!(choice, Choice::Drop(_)) {
                    2
                } else {
                    3
                };
                // Asynchronous: the in-flight messages are a set, without duplicates.
                if i as usize >= s.packets()
                    || s.packet(i as usize).msg.is_none()
                    || u32::from(s.spent(k)) >= self.budget[k]
                    || (k == 3 && self.max_delay.is_none())
                {
                    return None;
                }
                s.spend(k);
                let m = s.packet(i as usize).clone();
                self.log(rec, s.now(), || {
                    if k == 2 {
                        Step::Lose(self.packet_step(&m))
                    } else {
                        Step::Duplicate(self.packet_step(&m))
                    }
                });
                if rec.is_some() {
                    let (from, to) = (
                        self.names[m.from as usize].clone(),
                        self.names[m.to as usize].clone(),
                    );
                    let msg = m
                        .msg
                        .as_ref()
                        .map(|m| show(m, &self.names))
                        .unwrap_or_default();
                    let (at, what) = if k == 2 {
                        let reason = DropReason::Lost;
                        (
                            m.to,
                            What::Drop {
                                from,
                                to,
                                msg,
                                reason,
                            },
                        )
                    } else {
                        (m.from, What::Duplicate { from, to, msg })
                    };
                    self.note(rec, s.now(), Pid(at), || what);
                }
                if k == 2 {
                    s.remove_packet(i as usize);
                } else {
                    // The copy follows its original on the link.
                    s.insert_packet(i as usize + 1, m);
                }
            }
            Choice::Partition(k) => {
                let split = self.splits.get(k as usize)?;
                if s.topo() == k + 1 || u32::from(s.spent(4)) >= self.budget[4] {
                    return None;
                }
                s.spend(4);
                s.set_topo(k + 1);
                let groups = || -> Vec<Vec<String>> {
                    split
                        .iter()
                        .map(|g| g.iter().map(|p| self.names[p.index()].clone()).collect())
                        .collect()
                };
                self.log(rec, s.now(), || Step::Partition { groups: groups() });
                self.note(rec, s.now(), Pid(u32::MAX), || What::Partition {
                    groups: groups(),
                });
                let topo = &self.topologies[s.topo() as usize];
                // What is in flight over a cut link is lost; the detector's notices are not
                // carried by the network.
                let cut = |m: &Packet<A::Msg>| !topo.connected(Pid(m.from), Pid(m.to));
                self.note_drops(s, rec, DropReason::Partitioned, cut);
                s.retain_packets(|m| m.msg.is_none() || !cut(m));
                self.detect(s);
            }
            Choice::Heal => {
                if s.topo() == 0 || u32::from(s.spent(4)) >= self.budget[4] {
                    return None;
                }
                s.spend(4);
                s.set_topo(0);
                self.log(rec, s.now(), || Step::Heal);
                self.note(rec, s.now(), Pid(u32::MAX), || What::Heal);
                self.detect(s);
            }
            Choice::Tick => {
                let next = self.next_time(s)?;
                s.set_now(next);
            }
        }
        Some(sent)
    }

    /// Records a step of the schedule, when recording.
    fn log(&self, rec: &mut Option<Rec>, now: u64, step: impl FnOnce() -> Step) {
        if let Some(r) = rec {
            r.steps.push(Timed {
                at_us: now,
                step: step(),
            });
        }
    }

    /// A message in flight, as a schedule names it.
    fn packet_step(&self, m: &Packet<A::Msg>) -> schedule::Packet {
        schedule::Packet {
            from: self.names[m.from as usize].clone(),
            to: self.names[m.to as usize].clone(),
            msg: m
                .msg
                .as_ref()
                .map(|msg| show(msg, &self.names))
                .unwrap_or_default(),
            sent_us: m.deadline - self.max_delay.unwrap_or(0),
        }
    }

    /// Records a drop for every message in flight that `pick` selects (when recording).
    fn note_drops<S: Store<A>>(
        &self,
        s: &S,
        rec: &mut Option<Rec>,
        reason: DropReason,
        pick: impl Fn(&Packet<A::Msg>) -> bool,
    ) {
        if rec.is_none() {
            return;
        }
        for i in 0..s.packets() {
            let m = s.packet(i);
            if let (Some(msg), true) = (&m.msg, pick(m)) {
                self.note(rec, s.now(), Pid(m.to), || What::Drop {
                    from: self.names[m.from as usize].clone(),
                    to: self.names[m.to as usize].clone(),
                    msg: show(msg, &self.names),
                    reason,
                });
            }
        }
    }

    /// A notice of the failure detector reaches `o`: it is told the verdict on `t` the
    /// notice carries (news, always: the verdicts on one process reach an observer in
    /// order, and each differs from the one before). Returns the messages `o` sent in
    /// answer.
    fn tell<S: Store<A>>(
        &self,
        s: &mut S,
        o: Pid,
        t: Pid,
        suspected: bool,
        restarts: u64,
        rec: &mut Option<Rec>,
    ) -> u32 {
        self.note(rec, s.now(), o, || What::Suspect {
            who: self.names[t.index()].clone(),
            suspected,
        });
        self.run(
            s,
            o,
            rec,
            input_suspect(t, suspected, restarts),
            |node, ctx| node.on_suspect(t, suspected, ctx),
        )
    }

    fn statuses<S: Store<A>>(&self, s: &S) -> Vec<NodeStatus> {
        let mut out = Vec::new();
        self.statuses_into(s, &mut out);
        out
    }

    fn statuses_into<S: Store<A>>(&self, s: &S, out: &mut Vec<NodeStatus>) {
        out.clear();
        out.extend(
            self.cluster
                .members
                .iter()
                .enumerate()
                .map(|(i, m)| NodeStatus {
                    up: s.node(i).is_some(),
                    paused: false,
                    voter: m.kind == MemberKind::Voter,
                    priority: m.priority,
                    view: self.view(s, Pid(i as u32)),
                }),
        );
    }

    /// Which safety properties `s` violates, and whether it is settled. Cheap: no text; the
    /// explanation of a violation comes from replaying its counterexample.
    pub(crate) fn check<S: Store<A>>(&self, s: &S) -> Checked {
        STATUSES.with(|buf| {
            let mut st = buf.borrow_mut();
            self.statuses_into(s, &mut st);
            let topo = &self.topologies[s.topo() as usize];
            let (leaders, shared) = properties::leader_counts(&st, topo);
            Checked {
                violates: [leaders > 1, shared],
                settled: properties::agreement_holds(&st, topo),
                now: s.now(),
            }
        })
    }

    /// The initial state: every process started at time 0.
    pub fn init(&self) -> State<A> {
        let mut s = State::blank(self.len());
        self.start(&mut s, &mut None);
        s
    }

    /// Every choice enabled in `s` (the model's actions, for other checkers).
    pub fn actions(&self, s: &State<A>) -> Vec<Choice> {
        let mut out = Vec::new();
        self.choices(s, &mut out);
        out
    }

    /// The state after `choice`, or `None` if it is not enabled.
    pub fn next(&self, s: &State<A>, choice: Choice) -> Option<State<A>> {
        let mut s = s.clone();
        self.step(&mut s, choice, &mut None)?;
        Some(s)
    }

    /// Whether `s` satisfies `AtMostOneLeader`.
    pub fn safe(&self, s: &State<A>) -> bool {
        !self.check(s).violates[0]
    }

    /// The choices a path takes, from their indexes among each state's choices (as the
    /// search keeps them): the path is walked again from the initial state.
    pub(crate) fn resolve(&self, indexes: &[u32]) -> Vec<Choice> {
        self.reach(indexes).0
    }

    /// The choices a path of choice indexes stands for, and the state it ends in.
    pub(crate) fn reach(&self, indexes: &[u32]) -> (Vec<Choice>, State<A>) {
        let mut s = self.init();
        let mut enabled = Vec::new();
        let mut out = Vec::with_capacity(indexes.len());
        for &i in indexes {
            self.choices(&s, &mut enabled);
            let c = enabled[i as usize];
            self.step(&mut s, c, &mut None)
                .expect("a path the search took can be taken again");
            out.push(c);
        }
        (out, s)
    }

    /// The first choice enabled in `s` that sends `sent` messages and leads to a state whose
    /// fingerprint `is_to` accepts, with that state.
    pub(crate) fn hop(
        &self,
        s: &State<A>,
        sent: u32,
        is_to: impl Fn(u64) -> bool,
    ) -> Option<(Choice, State<A>)> {
        let mut enabled = Vec::new();
        self.choices(s, &mut enabled);
        enabled.into_iter().find_map(|c| {
            let mut t = s.clone();
            (self.step(&mut t, c, &mut None) == Some(sent) && is_to(t.fingerprint()))
                .then_some((c, t))
        })
    }

    /// Follows a schedule of timed steps through the model (see [`super::follow`]).
    pub(crate) fn follow(&self, steps: &[Timed]) -> Result<Vec<super::Followed>, String> {
        if self.max_delay.is_none() {
            return Err("only Bounded timing has a clock to follow a run with".into());
        }
        let q = self.quantum;
        let mut s = self.init();
        let seen = |s: &State<A>| super::Followed {
            fingerprint: s.fingerprint(),
            now_us: s.now,
            two_leaders: self.check(s).violates[0],
        };
        let mut out = vec![seen(&s)];
        let mut enabled = Vec::new();
        for (k, t) in steps.iter().enumerate() {
            let fail = |why: String| format!("step {} ({t}): {why}", k + 1);
            let at = t.at_us.div_ceil(q) * q;
            while s.now < at {
                let from = s.now;
                self.step(&mut s, Choice::Tick, &mut None)
                    .ok_or_else(|| fail(format!("time cannot pass at t={}", Time(from))))?;
                out.push(seen(&s));
            }
            if s.now != at {
                return Err(fail(format!("time passed to t={}", Time(s.now))));
            }
            self.choices(&s, &mut enabled);
            let c = enabled
                .iter()
                .copied()
                .find(|&c| self.takes(&s, c, &t.step))
                .ok_or_else(|| fail("no choice of the model takes this step".into()))?;
            self.step(&mut s, c, &mut None)
                .ok_or_else(|| fail(format!("{c:?} is not possible")))?;
            out.push(seen(&s));
        }
        Ok(out)
    }

    /// Whether `choice` in `s` is the step `step` of a followed run.
    fn takes(&self, s: &State<A>, choice: Choice, step: &Step) -> bool {
        let q = self.quantum;
        let name = |p: u32| self.names[p as usize].as_str();
        let packet = |i: u32, p: &schedule::Packet| {
            let m = &s.net[i as usize];
            m.msg
                .as_ref()
                .is_some_and(|msg| show(msg, &self.names) == p.msg)
                && name(m.from) == p.from
                && name(m.to) == p.to
                && m.deadline == p.sent_us.div_ceil(q) * q + self.max_delay.unwrap_or(0)
        };
        match (choice, step) {
            (Choice::Deliver(i), Step::Deliver(p))
            | (Choice::Drop(i), Step::Lose(p))
            | (Choice::Duplicate(i), Step::Duplicate(p)) => packet(i, p),
            (
                Choice::Deliver(i),
                Step::Notice {
                    observer,
                    about,
                    suspected,
                    changed_us,
                },
            ) => {
                let m = &s.net[i as usize];
                m.msg.is_none()
                    && (m.key & 1 == 1) == *suspected
                    && name(m.to) == observer
                    && name(m.from) == about
                    && m.deadline == changed_us.div_ceil(q) * q + self.detector.unwrap_or(0)
            }
            (Choice::Timer(i), Step::Timer { node, timer }) => {
                let t = &s.timers[i as usize];
                name(t.pid) == node && show(&t.timer, &self.names) == *timer
            }
            (Choice::Crash(p), Step::Crash { node })
            | (Choice::Restart(p), Step::Restart { node }) => name(p) == node,
            (Choice::Partition(k), Step::Partition { groups }) => {
                let sorted = |gs: Vec<Vec<String>>| {
                    let mut gs: Vec<Vec<String>> = gs
                        .into_iter()
                        .map(|mut g| {
                            g.sort();
                            g
                        })
                        .collect();
                    gs.sort();
                    gs
                };
                let split = self.splits[k as usize]
                    .iter()
                    .map(|g| g.iter().map(|p| self.names[p.index()].clone()).collect())
                    .collect();
                sorted(split) == sorted(groups.clone())
            }
            (Choice::Heal, Step::Heal) => true,
            _ => false,
        }
    }

    /// Replays `choices` from the initial state, recording the trace. Fails at the first
    /// choice that is not enabled.
    pub fn replay(&self, choices: &[Choice]) -> Result<(Vec<TraceEvent>, ReplayEnd), String> {
        let mut rec = Some(Rec::default());
        let mut s = State::blank(self.len());
        self.start(&mut s, &mut rec);
        for (k, &c) in choices.iter().enumerate() {
            self.step(&mut s, c, &mut rec)
                .ok_or_else(|| format!("step {} ({c:?}) is not possible here: the scenario or Conclave's model has changed since the file was saved", k + 1))?;
        }
        let st = self.statuses(&s);
        let topo = &self.topologies[s.topo as usize];
        let rec = rec.unwrap_or_default();
        Ok((
            rec.trace,
            ReplayEnd {
                at_most_one: properties::at_most_one_leader(&st, &self.names).err(),
                per_component: properties::one_leader_per_component(&st, topo, &self.names).err(),
                settled: properties::agreement_holds(&st, topo),
                now_us: s.now,
                steps: rec.steps,
            },
        ))
    }
}

/// Which armed timers may fire in a state.
enum Firing {
    Any,
    Due(u64),
}

impl Firing {
    fn allows(&self, due: u64) -> bool {
        match self {
            Firing::Any => true,
            Firing::Due(d) => *d == due,
        }
    }
}

/// Where a packet joins a FIFO network: a message after every message on its link, which
/// keeps each link's messages in the order they were sent; a failure detector's notice
/// (never held back by the link's order) after the messages, among the link's notices in
/// (deadline, content) order. Links follow each other in (from, to) order, so the list is
/// a function of what is in flight on each link, not of the order in which packets on
/// different links were sent: two schedules that leave the same queues behind reach one
/// state, not two.
fn link_end<A: Algorithm, S: Store<A>>(s: &S, packet: &Packet<A::Msg>) -> usize {
    let key = |p: &Packet<A::Msg>| {
        let notice = p.msg.is_none();
        (
            p.from,
            p.to,
            notice,
            if notice { p.deadline } else { 0 },
            if notice { p.key } else { 0 },
        )
    };
    let at = key(packet);
    partition_point(s.packets(), |i| key(s.packet(i)) <= at)
}

/// The first index in `0..len` where `before` is false (`before` must be monotone).
fn partition_point(len: usize, before: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, len);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if before(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// Where `p`'s `timer` is or would go in the armed timers (sorted by process and timer),
/// and its due time if it is armed.
/// The model carrying out one handler's effects in state `s` (see [`carry_out`]).
struct Carry<'a, A: Algorithm, S> {
    model: &'a Model<A>,
    s: &'a mut S,
    p: Pid,
    rec: &'a mut Option<Rec>,
    now: u64,
    /// Messages sent so far.
    sent: u32,
}

impl<A: Algorithm, S: Store<A>> Host<A::Msg, A::Timer> for Carry<'_, A, S> {
    #[inline]
    fn send(&mut self, to: Pid, msg: A::Msg) {
        self.sent += 1;
        self.model.send(self.s, self.p, to, msg, self.rec);
    }
    #[inline]
    fn set_timer(&mut self, timer: A::Timer, after: Duration) {
        let (s, p) = (&mut *self.s, self.p);
        // Asynchronous: time means nothing, a timer is only armed or not, so firing orders
        // that leave the same armed set meet in one state.
        let due = if self.model.max_delay.is_some() {
            self.now + self.model.on_grid(after.as_micros())
        } else {
            0
        };
        // Armed timers are sorted by (process, timer), one of each at most: setting one
        // replaces the one armed before.
        let (at, armed) = armed_at(s, p, &timer);
        if let Some(old) = armed {
            if old == due {
                return;
            }
            s.remove_timer(at);
        }
        s.insert_timer(
            at,
            Armed {
                pid: p.0,
                timer,
                due,
            },
        );
    }
    #[inline]
    fn cancel_timer(&mut self, timer: A::Timer) {
        if let (i, Some(_)) = armed_at(self.s, self.p, &timer) {
            self.s.remove_timer(i);
        }
    }
}

fn armed_at<A: Algorithm, S: Store<A>>(s: &S, p: Pid, timer: &A::Timer) -> (usize, Option<u64>) {
    let at = partition_point(s.timers(), |i| {
        let t = s.timer(i);
        (t.pid, &t.timer) < (p.0, timer)
    });
    let due = (at < s.timers())
        .then(|| s.timer(at))
        .filter(|t| t.pid == p.0 && t.timer == *timer)
        .map(|t| t.due);
    (at, due)
}
