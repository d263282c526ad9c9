//! The exhaustive explorer: every reachable global state of a small cluster, checked against
//! the single-leader invariant, with shortest replayable counterexamples.
//!
//! A global state is every node's state, the messages in flight, the armed timers with their
//! due times, the partition in force, the faults spent, and the virtual time. From each state
//! the explorer branches on every choice the world could make: deliver any message in flight
//! (only the oldest of its link when links are FIFO), fire a timer the timing model allows,
//! or inject a fault while its budget lasts (crash, restart, drop, duplicate, split, heal).
//!
//! Timing models ([`Timing`]):
//! - `Asynchronous`: any armed timer may fire at any point; messages may take any time and
//!   arrive in any order. The messages in flight are a set: a message identical to one
//!   already in flight (same sender, receiver and content) adds nothing, as in stateright's
//!   unordered non-duplicating network. Without this, timers that keep firing while nothing
//!   arrives would fill the network without bound; the algorithms here treat a repeated
//!   identical message the way they treat the first, so no leadership behaviour is lost.
//! - `Bounded { max_delay }`: a message must arrive within `max_delay` of being sent; time
//!   only advances when a timer fires, timers fire in due order, and a timer never fires
//!   while a message whose deadline is earlier is still in flight. Message delays are any
//!   value in `0..=max_delay`, so all their orders are explored.
//!
//! Under `Bounded`, timers due after the horizon (`run_for`) never fire, which keeps periodic
//! timers from making the space infinite; algorithms may read `ctx.now()` as they do in the
//! simulator. Under `Asynchronous` time means nothing: the clock stays at 0, a timer is only
//! armed or not, and periodic timers close cycles in the state graph instead.
//! Random draws (`ctx.random_between`) take their lowest value. All nodes start at time 0.
//!
//! Visited states are kept as 64-bit fingerprints (xxh3 over the state's `Hash`); a
//! collision would merge two states, with odds of about n²/2⁶⁵ for n states. Breadth-first
//! search (the default) makes every counterexample a shortest one; the search can run on
//! several threads level by level, merging each level in a fixed order, so the unique-state
//! count and every verdict are the same for any number of jobs.
//!
//! Liveness (`EventualLeader(within)`): from every reachable state whose time is at least
//! `within` before the horizon, a state where every component agrees on one running leader
//! must be reachable without further faults. This is checked over the whole state graph,
//! cycles included, by backward reachability.

use crate::properties::{self, NodeStatus, Topology};
use crate::scenario::{Property, Scenario, Timing};
use crate::trace::{DropReason, TraceEvent, What};
use conclave_algorithms::{Algorithm, Cluster, Context, Effect, MemberKind, Pid, Time, View};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::Arc;
use std::time::Instant;

/// One choice of the world: what happens next.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Choice {
    /// Deliver the message at this index of the in-flight list.
    Deliver(u32),
    /// Fire the timer at this index of the armed-timer list.
    Timer(u32),
    Crash(u32),
    Restart(u32),
    /// Lose the message at this index.
    Drop(u32),
    /// Deliver the message at this index twice.
    Duplicate(u32),
    /// Impose the split at this index of the scenario's `partitions`.
    Partition(u32),
    Heal,
}

impl Choice {
    fn is_fault(self) -> bool {
        !matches!(self, Choice::Deliver(_) | Choice::Timer(_))
    }
}

/// A callback that receives the search's progress.
pub type ProgressFn = Box<dyn Fn(&Progress) + Sync>;

/// How to explore.
#[derive(Default)]
pub struct ExploreOptions {
    /// Do not expand states at this depth (the search is then incomplete).
    pub max_depth: Option<u32>,
    /// Stop after this many unique states (the search is then incomplete).
    pub max_states: Option<u64>,
    /// Worker threads for breadth-first search (1 if 0).
    pub jobs: usize,
    /// Depth-first instead of breadth-first.
    pub dfs: bool,
    /// Stop (incomplete) when the process's resident memory exceeds this many bytes.
    pub max_memory: Option<u64>,
    /// Keep every edge, for `--graph`.
    pub keep_graph: bool,
    /// Called now and then with the search's progress.
    pub progress: Option<ProgressFn>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Progress {
    pub unique_states: u64,
    pub transitions: u64,
    pub depth: u32,
    pub queue: u64,
    pub elapsed_ms: u64,
}

/// A path to a violation: the choices from the initial state, and the trace they produce.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Counterexample {
    pub scenario: String,
    pub property: String,
    pub choices: Vec<Choice>,
    /// Why the last state violates the property.
    pub detail: String,
    /// The readable trace (written, never read back: replay recomputes it).
    #[serde(default, skip_deserializing)]
    pub trace: Vec<TraceEvent>,
}

#[derive(Clone, Debug, Serialize)]
pub struct PropertyVerdict {
    pub name: String,
    /// `true` held, `false` violated, `null` not decided (the search was cut short).
    pub holds: Option<bool>,
    /// "holds", "violated", or "reported" when the scenario expects nothing of it.
    pub expected: &'static str,
    /// The verdict is what the scenario expected.
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counterexample: Option<Counterexample>,
}

/// The explorer's summary.
#[derive(Clone, Debug, Serialize)]
pub struct ExploreReport {
    pub scenario: String,
    pub algorithm: String,
    pub timing: String,
    pub search: &'static str,
    pub jobs: usize,
    pub symmetry_reduction: bool,
    pub unique_states: u64,
    pub transitions: u64,
    pub max_depth: u32,
    /// Every reachable state was visited.
    pub complete: bool,
    /// Why the search stopped early, if it did.
    pub cut_short: Option<String>,
    pub elapsed_ms: u64,
    pub properties: Vec<PropertyVerdict>,
    pub ok: bool,
    /// Edges (from, to, choice) and violating states, when the graph was kept.
    #[serde(skip)]
    pub graph: Option<StateGraph>,
}

#[derive(Clone, Debug, Default)]
pub struct StateGraph {
    pub edges: Vec<(u32, u32, Choice)>,
    pub violating: Vec<u32>,
    pub states: u32,
}

impl StateGraph {
    /// The graph in Graphviz DOT, violating states filled red.
    pub fn to_dot(&self) -> String {
        use petgraph::dot::{Config, Dot};
        use petgraph::graph::DiGraph;
        let mut g: DiGraph<String, String> = DiGraph::new();
        let nodes: Vec<_> = (0..self.states)
            .map(|i| g.add_node(format!("s{i}")))
            .collect();
        for &(a, b, c) in &self.edges {
            g.add_edge(nodes[a as usize], nodes[b as usize], format!("{c:?}"));
        }
        let bad: std::collections::BTreeSet<u32> = self.violating.iter().copied().collect();
        let edge_attr = |g: &DiGraph<String, String>,
                         e: petgraph::graph::EdgeReference<'_, String>| {
            format!("label=\"{}\"", g[petgraph::visit::EdgeRef::id(&e)])
        };
        let node_attr = |g: &DiGraph<String, String>,
                         (i, _): (petgraph::graph::NodeIndex, &String)| {
            let color = if bad.contains(&(i.index() as u32)) {
                ", style=filled, fillcolor=red"
            } else {
                ""
            };
            format!("label=\"{}\"{color}", g[i])
        };
        let dot = Dot::with_attr_getters(
            &g,
            &[Config::NodeNoLabel, Config::EdgeNoLabel],
            &edge_attr,
            &node_attr,
        );
        format!("{dot:?}")
    }
}

/// Fingerprints are already hashes: the visited map uses them as they are.
#[derive(Default)]
struct Identity(u64);

impl Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, _: &[u8]) {
        unreachable!("only u64 keys")
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

type Visited = HashMap<u64, u32, BuildHasherDefault<Identity>>;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Armed<T> {
    pid: u32,
    timer: T,
    due: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Packet<M> {
    from: u32,
    to: u32,
    msg: M,
    deadline: u64,
    /// The message's own fingerprint, for ordering when links are not FIFO.
    key: u64,
}

/// One global state (opaque outside this module; see [`Model::next`]).
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
}

fn fingerprint<T: Hash>(t: &T) -> u64 {
    FINGERPRINT_BUFFER.with(|b| {
        let mut buf = b.borrow_mut();
        buf.clear();
        let mut h = Buffered(&mut buf);
        t.hash(&mut h);
        h.finish()
    })
}

/// The explored model of one scenario.
pub struct Model<A: Algorithm> {
    cluster: Cluster,
    params: A::Params,
    names: Vec<String>,
    voters: Vec<Pid>,
    max_delay: Option<u64>,
    fifo: bool,
    horizon: u64,
    budget: [u32; 5],
    faults_from: u64,
    topologies: Vec<Topology>,
    splits: Vec<Vec<Vec<Pid>>>,
}

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
            params,
            max_delay: match spec.timing {
                Timing::Asynchronous => None,
                Timing::Bounded { max_delay } => Some(max_delay.as_micros()),
            },
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
            topologies,
            splits,
        }
    }

    fn initial(&self, rec: &mut Option<Vec<TraceEvent>>) -> State<A> {
        let n = self.cluster.len();
        let mut s = State {
            now: 0,
            nodes: (0..n).map(|_| None).collect(),
            timers: Vec::new(),
            net: Vec::new(),
            topo: 0,
            spent: [0; 5],
        };
        // Every process exists before any starts (all start at time 0: a message one sends
        // on start reaches the others); services start first, as in the simulator.
        for (i, node) in s.nodes.iter_mut().enumerate() {
            *node = Some(Arc::new(A::new(Pid(i as u32), &self.cluster, &self.params)));
        }
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by_key(|&i| self.cluster.members[i].kind == MemberKind::Voter);
        for i in order {
            self.note(rec, 0, Pid(i as u32), What::Start);
            self.run(&mut s, Pid(i as u32), rec, |node, ctx| node.on_start(ctx));
        }
        s
    }

    fn boot(&self, s: &mut State<A>, p: Pid, rec: &mut Option<Vec<TraceEvent>>, what: What) {
        self.note(rec, s.now, p, what);
        s.nodes[p.index()] = Some(Arc::new(A::new(p, &self.cluster, &self.params)));
        self.run(s, p, rec, |node, ctx| node.on_start(ctx));
    }

    fn note(&self, rec: &mut Option<Vec<TraceEvent>>, now: u64, p: Pid, what: What) {
        if let Some(r) = rec {
            let node = self
                .names
                .get(p.index())
                .cloned()
                .unwrap_or_else(|| "network".into());
            r.push(TraceEvent {
                time_us: now,
                node,
                what,
            });
        }
    }

    fn view(&self, s: &State<A>, p: Pid) -> View {
        s.nodes[p.index()]
            .as_ref()
            .map_or(NodeStatus::DOWN_VIEW, |n| n.view())
    }

    /// Runs one handler of node `p` and applies its effects.
    fn run(
        &self,
        s: &mut State<A>,
        p: Pid,
        rec: &mut Option<Vec<TraceEvent>>,
        f: impl FnOnce(&mut A, &mut conclave_algorithms::Ctx<'_, A>),
    ) {
        let before = self.view(s, p);
        let mut effects = Vec::new();
        let Some(node) = s.nodes[p.index()].as_mut() else {
            return;
        };
        let node = Arc::make_mut(node);
        f(
            node,
            &mut Context::new(Time(s.now), p, &self.cluster, &mut effects),
        );
        let after = node.view();
        if after != before {
            let leader = after.leader.map(|l| self.names[l.index()].clone());
            let what = What::Role {
                role: after.role,
                leader,
                status: after.status.to_string(),
                group: after.group,
            };
            self.note(rec, s.now, p, what);
        }
        for e in effects {
            match e {
                Effect::Send { to, msg } => self.send(s, p, to, msg, rec),
                Effect::Broadcast { msg } => {
                    for &to in &self.voters {
                        if to != p {
                            self.send(s, p, to, msg.clone(), rec);
                        }
                    }
                }
                Effect::SetTimer { timer, after } => {
                    s.timers.retain(|t| !(t.pid == p.0 && t.timer == timer));
                    // Asynchronous: time means nothing, a timer is only armed or not, so
                    // firing orders that leave the same armed set meet in one state.
                    let due = if self.max_delay.is_some() {
                        s.now + after.as_micros()
                    } else {
                        0
                    };
                    let armed = Armed {
                        pid: p.0,
                        timer,
                        due,
                    };
                    let at = s
                        .timers
                        .partition_point(|t| (t.pid, t.timer) < (p.0, timer));
                    s.timers.insert(at, armed);
                }
                Effect::CancelTimer { timer } => {
                    s.timers.retain(|t| !(t.pid == p.0 && t.timer == timer));
                }
            }
        }
    }

    fn send(
        &self,
        s: &mut State<A>,
        from: Pid,
        to: Pid,
        msg: A::Msg,
        rec: &mut Option<Vec<TraceEvent>>,
    ) {
        if rec.is_some() {
            let what = What::Send {
                to: self.names[to.index()].clone(),
                msg: format!("{msg:?}"),
            };
            self.note(rec, s.now, from, what);
        }
        let topo = &self.topologies[s.topo as usize];
        if !topo.connected(from, to) || s.nodes[to.index()].is_none() {
            let reason = if s.nodes[to.index()].is_none() {
                DropReason::Down
            } else {
                DropReason::Partitioned
            };
            if rec.is_some() {
                let what = What::Drop {
                    from: self.names[from.index()].clone(),
                    to: self.names[to.index()].clone(),
                    msg: format!("{msg:?}"),
                    reason,
                };
                self.note(rec, s.now, to, what);
            }
            return;
        }
        let deadline = self.max_delay.map_or(u64::MAX, |d| s.now + d);
        let key = fingerprint(&msg);
        let packet = Packet {
            from: from.0,
            to: to.0,
            msg,
            deadline,
            key,
        };
        if self.fifo && self.max_delay.is_some() {
            s.net.push(packet);
        } else {
            if self.max_delay.is_none() && s.net.contains(&packet) {
                return; // asynchronous: the in-flight messages are a set
            }
            let sort = |p: &Packet<A::Msg>| (p.from, p.to, p.deadline, p.key);
            let at = s.net.partition_point(|q| sort(q) <= sort(&packet));
            s.net.insert(at, packet);
        }
    }

    /// The timers that may fire now.
    fn enabled_timers(&self, s: &State<A>) -> Vec<usize> {
        match self.max_delay {
            None => (0..s.timers.len()).collect(),
            Some(_) => {
                let Some(next) = s.timers.iter().map(|t| t.due).min() else {
                    return Vec::new();
                };
                if next > self.horizon || s.net.iter().any(|m| m.deadline < next) {
                    return Vec::new();
                }
                (0..s.timers.len())
                    .filter(|&i| s.timers[i].due == next)
                    .collect()
            }
        }
    }

    /// Whether message `i` may be delivered now (FIFO: it is the oldest on its link).
    fn deliverable(&self, s: &State<A>, i: usize) -> bool {
        let m = &s.net[i];
        let ordered = self.fifo && self.max_delay.is_some();
        !ordered || !s.net[..i].iter().any(|o| o.from == m.from && o.to == m.to)
    }

    /// Every choice enabled in `s`, in a fixed order.
    fn choices(&self, s: &State<A>) -> Vec<Choice> {
        let mut out = Vec::new();
        for i in 0..s.net.len() {
            if self.deliverable(s, i) {
                out.push(Choice::Deliver(i as u32));
            }
        }
        out.extend(
            self.enabled_timers(s)
                .into_iter()
                .map(|i| Choice::Timer(i as u32)),
        );
        let can = |k: usize| u32::from(s.spent[k]) < self.budget[k] && s.now >= self.faults_from;
        if can(0) {
            for p in 0..s.nodes.len() {
                if s.nodes[p].is_some() {
                    out.push(Choice::Crash(p as u32));
                }
            }
        }
        if can(1) {
            for p in 0..s.nodes.len() {
                if s.nodes[p].is_none() {
                    out.push(Choice::Restart(p as u32));
                }
            }
        }
        if can(2) {
            out.extend((0..s.net.len()).map(|i| Choice::Drop(i as u32)));
        }
        if can(3) && self.max_delay.is_some() {
            out.extend((0..s.net.len()).map(|i| Choice::Duplicate(i as u32)));
        }
        if can(4) {
            for k in 0..self.splits.len() {
                if s.topo != k as u32 + 1 {
                    out.push(Choice::Partition(k as u32));
                }
            }
            if s.topo != 0 {
                out.push(Choice::Heal);
            }
        }
        out
    }

    /// The state after `choice`, or `None` if the choice is not enabled in `s`.
    fn step(
        &self,
        s: &State<A>,
        choice: Choice,
        rec: &mut Option<Vec<TraceEvent>>,
    ) -> Option<State<A>> {
        let mut s = s.clone();
        match choice {
            Choice::Deliver(i) => {
                let i = i as usize;
                if i >= s.net.len() || !self.deliverable(&s, i) {
                    return None;
                }
                let m = s.net.remove(i);
                let (from, to) = (Pid(m.from), Pid(m.to));
                if rec.is_some() {
                    let what = What::Deliver {
                        from: self.names[from.index()].clone(),
                        msg: format!("{:?}", m.msg),
                    };
                    self.note(rec, s.now, to, what);
                }
                self.run(&mut s, to, rec, |node, ctx| {
                    node.on_message(from, m.msg, ctx)
                });
            }
            Choice::Timer(i) => {
                let i = i as usize;
                if !self.enabled_timers(&s).contains(&i) {
                    return None;
                }
                let t = s.timers.remove(i);
                s.now = s.now.max(t.due);
                self.note(
                    rec,
                    s.now,
                    Pid(t.pid),
                    What::Timer {
                        timer: format!("{:?}", t.timer),
                    },
                );
                self.run(&mut s, Pid(t.pid), rec, |node, ctx| {
                    node.on_timer(t.timer, ctx)
                });
            }
            Choice::Crash(p) => {
                if s.nodes.get(p as usize)?.is_none() || u32::from(s.spent[0]) >= self.budget[0] {
                    return None;
                }
                s.spent[0] += 1;
                self.note(rec, s.now, Pid(p), What::Crash);
                s.nodes[p as usize] = None;
                s.timers.retain(|t| t.pid != p);
                s.net.retain(|m| m.to != p);
            }
            Choice::Restart(p) => {
                if s.nodes.get(p as usize)?.is_some() || u32::from(s.spent[1]) >= self.budget[1] {
                    return None;
                }
                s.spent[1] += 1;
                self.boot(&mut s, Pid(p), rec, What::Restart);
            }
            Choice::Drop(i) | Choice::Duplicate(i) => {
                let k = if matches!(choice, Choice::Drop(_)) {
                    2
                } else {
                    3
                };
                if i as usize >= s.net.len() || u32::from(s.spent[k]) >= self.budget[k] {
                    return None;
                }
                s.spent[k] += 1;
                let m = s.net[i as usize].clone();
                let (from, to) = (
                    self.names[m.from as usize].clone(),
                    self.names[m.to as usize].clone(),
                );
                if k == 2 {
                    s.net.remove(i as usize);
                    let what = What::Drop {
                        from,
                        to,
                        msg: format!("{:?}", m.msg),
                        reason: DropReason::Lost,
                    };
                    self.note(rec, s.now, Pid(m.to), what);
                } else {
                    let what = What::Duplicate {
                        from,
                        to,
                        msg: format!("{:?}", m.msg),
                    };
                    self.note(rec, s.now, Pid(m.from), what);
                    // Asynchronous: the in-flight messages are a set, without duplicates.
                    self.max_delay?;
                    let at = if self.fifo { s.net.len() } else { i as usize };
                    s.net.insert(at, m);
                }
            }
            Choice::Partition(k) => {
                let split = self.splits.get(k as usize)?;
                if s.topo == k + 1 || u32::from(s.spent[4]) >= self.budget[4] {
                    return None;
                }
                s.spent[4] += 1;
                s.topo = k + 1;
                let groups = split
                    .iter()
                    .map(|g| g.iter().map(|p| self.names[p.index()].clone()).collect())
                    .collect();
                self.note(rec, s.now, Pid(u32::MAX), What::Partition { groups });
                let topo = &self.topologies[s.topo as usize];
                s.net.retain(|m| topo.connected(Pid(m.from), Pid(m.to)));
            }
            Choice::Heal => {
                if s.topo == 0 || u32::from(s.spent[4]) >= self.budget[4] {
                    return None;
                }
                s.spent[4] += 1;
                s.topo = 0;
                self.note(rec, s.now, Pid(u32::MAX), What::Heal);
            }
        }
        Some(s)
    }

    fn statuses(&self, s: &State<A>) -> Vec<NodeStatus> {
        self.cluster
            .members
            .iter()
            .zip(&s.nodes)
            .map(|(m, n)| NodeStatus {
                up: n.is_some(),
                paused: false,
                voter: m.kind == MemberKind::Voter,
                priority: m.priority,
                view: n.as_ref().map_or(NodeStatus::DOWN_VIEW, |n| n.view()),
            })
            .collect()
    }

    /// Which safety properties `s` violates, and whether it is settled. Cheap: no text; the
    /// explanation of a violation comes from replaying its counterexample.
    fn check(&self, s: &State<A>) -> Checked {
        let st = self.statuses(s);
        let topo = &self.topologies[s.topo as usize];
        let (leaders, shared) = properties::leader_counts(&st, topo);
        Checked {
            violates: [leaders > 1, shared],
            settled: properties::agreement_holds(&st, topo),
            now: s.now,
        }
    }

    /// The initial state: every process started at time 0.
    pub fn init(&self) -> State<A> {
        self.initial(&mut None)
    }

    /// Every choice enabled in `s` (the model's actions, for other checkers).
    pub fn actions(&self, s: &State<A>) -> Vec<Choice> {
        self.choices(s)
    }

    /// The state after `choice`, or `None` if it is not enabled.
    pub fn next(&self, s: &State<A>, choice: Choice) -> Option<State<A>> {
        self.step(s, choice, &mut None)
    }

    /// Whether `s` satisfies `AtMostOneLeader`.
    pub fn safe(&self, s: &State<A>) -> bool {
        !self.check(s).violates[0]
    }

    /// Replays `choices` from the initial state, recording the trace. Fails at the first
    /// choice that is not enabled.
    pub fn replay(&self, choices: &[Choice]) -> Result<(Vec<TraceEvent>, ReplayEnd), String> {
        let mut rec = Some(Vec::new());
        let mut s = self.initial(&mut rec);
        for (k, &c) in choices.iter().enumerate() {
            s = self
                .step(&s, c, &mut rec)
                .ok_or_else(|| format!("step {} ({c:?}) is not possible here: the scenario has changed since the counterexample was saved", k + 1))?;
        }
        let st = self.statuses(&s);
        let topo = &self.topologies[s.topo as usize];
        Ok((
            rec.unwrap_or_default(),
            ReplayEnd {
                at_most_one: properties::at_most_one_leader(&st, &self.names).err(),
                per_component: properties::one_leader_per_component(&st, topo, &self.names).err(),
                settled: properties::agreement_holds(&st, topo),
            },
        ))
    }
}

/// What holds in the last state of a replay.
#[derive(Clone, Debug)]
pub struct ReplayEnd {
    pub at_most_one: Option<String>,
    pub per_component: Option<String>,
    pub settled: bool,
}

#[derive(Clone, Debug)]
struct Checked {
    /// AtMostOneLeader, OneLeaderPerComponent.
    violates: [bool; 2],
    settled: bool,
    now: u64,
}

/// What the search needs to remember of each state.
struct Search {
    visited: Visited,
    parent: Vec<(u32, Choice)>,
    /// For liveness: predecessors through fault-free choices, and per state whether it is
    /// settled and its time.
    back: Option<Vec<Vec<u32>>>,
    settled: Vec<bool>,
    time: Vec<u64>,
    graph: Option<StateGraph>,
    first_violation: [Option<u32>; 2],
    transitions: u64,
    max_depth: u32,
    cut_short: Option<String>,
}

impl Search {
    fn path(&self, mut id: u32) -> Vec<Choice> {
        let mut out = Vec::new();
        while id != 0 {
            let (p, c) = self.parent[id as usize];
            out.push(c);
            id = p;
        }
        out.reverse();
        out
    }

    /// Records a new state; returns its id.
    fn admit(&mut self, parent: u32, choice: Choice, c: &Checked) -> u32 {
        let id = self.parent.len() as u32;
        self.parent.push((parent, choice));
        self.settled.push(c.settled);
        self.time.push(c.now);
        if let Some(b) = &mut self.back {
            b.push(Vec::new());
        }
        for k in 0..2 {
            if c.violates[k] && self.first_violation[k].is_none() {
                self.first_violation[k] = Some(id);
            }
        }
        if let Some(g) = &mut self.graph {
            g.states = id + 1;
            if c.violates[0] || c.violates[1] {
                g.violating.push(id);
            }
        }
        id
    }

    fn edge(&mut self, from: u32, to: u32, choice: Choice) {
        self.transitions += 1;
        if let (Some(b), false) = (&mut self.back, choice.is_fault()) {
            b[to as usize].push(from);
        }
        if let Some(g) = &mut self.graph {
            g.edges.push((from, to, choice));
        }
    }
}

/// Explores `scenario` exhaustively (within the options' bounds).
pub fn explore(scenario: &Scenario, file: &str, opts: &ExploreOptions) -> ExploreReport {
    crate::with_algorithm!(&scenario.algorithm, |A, p| {
        explore_with(Model::<A>::new(scenario, p.clone()), scenario, file, opts)
    })
}

/// Replays a saved counterexample against its scenario.
pub fn replay(
    scenario: &Scenario,
    choices: &[Choice],
) -> Result<(Vec<TraceEvent>, ReplayEnd), String> {
    crate::with_algorithm!(&scenario.algorithm, |A, p| {
        Model::<A>::new(scenario, p.clone()).replay(choices)
    })
}

/// Explores a model of any algorithm; the entry point for tests of variants that have no
/// scenario name of their own.
pub fn explore_with<A>(
    model: Model<A>,
    scenario: &Scenario,
    file: &str,
    opts: &ExploreOptions,
) -> ExploreReport
where
    A: Algorithm + Send + Sync,
    A::Msg: Send + Sync,
    A::Timer: Send + Sync,
    A::Params: Sync,
{
    let start = Instant::now();
    let liveness: Option<u64> = scenario
        .explore
        .iter()
        .flat_map(|e| e.expect.iter().chain(&e.expect_violated))
        .find_map(|p| match p {
            Property::EventualLeader(within) => Some(within.as_micros()),
            _ => None,
        });
    let mut search = Search {
        visited: Visited::default(),
        parent: Vec::new(),
        back: liveness.map(|_| Vec::new()),
        settled: Vec::new(),
        time: Vec::new(),
        graph: opts.keep_graph.then(StateGraph::default),
        first_violation: [None, None],
        transitions: 0,
        max_depth: 0,
        cut_short: None,
    };
    let root = model.initial(&mut None);
    let checked = model.check(&root);
    search.visited.insert(fingerprint(&root), 0);
    search.admit(0, Choice::Heal, &checked);
    if opts.dfs {
        dfs(&model, root, &mut search, opts, start);
    } else {
        bfs(&model, root, &mut search, opts, start);
    }
    let complete = search.cut_short.is_none();
    finish(
        &model, scenario, file, opts, search, complete, liveness, start,
    )
}

/// Frontier states expanded per job before a merge.
const CHUNK: usize = 2048;

/// Successors of one state: (choice, state, fingerprint).
type Successor<A> = (Choice, State<A>, u64);

fn expand<A: Algorithm>(model: &Model<A>, s: &State<A>) -> Vec<Successor<A>> {
    model
        .choices(s)
        .into_iter()
        .filter_map(|c| {
            let next = model.step(s, c, &mut None)?;
            let fp = fingerprint(&next);
            Some((c, next, fp))
        })
        .collect()
}

/// The resident memory of this process in bytes (Linux; `None` elsewhere).
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn over_budget(search: &mut Search, opts: &ExploreOptions) -> bool {
    if let Some(max) = opts.max_states {
        if search.parent.len() as u64 >= max {
            search.cut_short = Some(format!("--max-states {max} reached"));
            return true;
        }
    }
    if let Some(max) = opts.max_memory {
        // Reading /proc costs a system call: look every 16384 states.
        if search.parent.len().is_multiple_of(16384) && resident_bytes().is_some_and(|b| b > max) {
            search.cut_short = Some(format!("memory limit of {} MiB reached", max >> 20));
            return true;
        }
    }
    false
}

fn bfs<A>(
    model: &Model<A>,
    root: State<A>,
    search: &mut Search,
    opts: &ExploreOptions,
    start: Instant,
) where
    A: Algorithm + Send + Sync,
    A::Msg: Send + Sync,
    A::Timer: Send + Sync,
    A::Params: Sync,
{
    let jobs = opts.jobs.max(1);
    let mut frontier: Vec<(u32, State<A>)> = vec![(0, root)];
    let mut depth = 0u32;
    while !frontier.is_empty() {
        if opts.max_depth.is_some_and(|d| depth >= d) {
            if frontier.iter().any(|(_, s)| !model.choices(s).is_empty()) {
                search.cut_short = Some(format!("--max-depth {depth} reached"));
            }
            break;
        }
        // Expand and merge the level a chunk at a time, so that only one chunk's successors
        // exist at once; the merge follows the frontier's order, whatever the number of jobs.
        let mut next = Vec::new();
        // One job merges state by state: batching only pays when workers share the work, and
        // a batch's successors are memory the allocator must fetch fresh each time.
        let chunk = if jobs == 1 { 1 } else { CHUNK * jobs };
        'level: for part in frontier.chunks(chunk) {
            let expanded: Vec<Vec<Successor<A>>> = if jobs == 1 || part.len() < 64 {
                part.iter().map(|(_, s)| expand(model, s)).collect()
            } else {
                let size = part.len().div_ceil(jobs);
                std::thread::scope(|scope| {
                    let handles: Vec<_> = part
                        .chunks(size)
                        .map(|sub| {
                            scope.spawn(move || {
                                sub.iter()
                                    .map(|(_, s)| expand(model, s))
                                    .collect::<Vec<_>>()
                            })
                        })
                        .collect();
                    handles
                        .into_iter()
                        .flat_map(|h| h.join().unwrap_or_default())
                        .collect()
                })
            };
            for ((parent, _), succs) in part.iter().zip(expanded) {
                for (c, s, fp) in succs {
                    match search.visited.get(&fp) {
                        Some(&id) => search.edge(*parent, id, c),
                        None => {
                            if over_budget(search, opts) {
                                break 'level;
                            }
                            // Only new states are checked: most successors were seen before.
                            let id = search.admit(*parent, c, &model.check(&s));
                            search.visited.insert(fp, id);
                            search.edge(*parent, id, c);
                            next.push((id, s));
                        }
                    }
                }
            }
        }
        if !next.is_empty() {
            depth += 1;
            search.max_depth = depth;
        }
        if let Some(p) = &opts.progress {
            p(&Progress {
                unique_states: search.parent.len() as u64,
                transitions: search.transitions,
                depth,
                queue: next.len() as u64,
                elapsed_ms: start.elapsed().as_millis() as u64,
            });
        }
        if search.cut_short.is_some() {
            break;
        }
        frontier = next;
    }
}

fn dfs<A: Algorithm>(
    model: &Model<A>,
    root: State<A>,
    search: &mut Search,
    opts: &ExploreOptions,
    start: Instant,
) {
    // Each entry: a state, its id and depth, and the successors not yet taken.
    let mut stack: Vec<(u32, u32, Vec<Successor<A>>)> = vec![(0, 0, expand(model, &root))];
    drop(root);
    let mut since_progress = 0u32;
    while let Some((id, depth, succs)) = stack.last_mut() {
        let (id, depth) = (*id, *depth);
        let Some((c, s, fp)) = succs.pop() else {
            stack.pop();
            continue;
        };
        if let Some(&known) = search.visited.get(&fp) {
            search.edge(id, known, c);
            continue;
        }
        if over_budget(search, opts) {
            break;
        }
        let child = search.admit(id, c, &model.check(&s));
        search.visited.insert(fp, child);
        search.edge(id, child, c);
        search.max_depth = search.max_depth.max(depth + 1);
        if opts.max_depth.is_some_and(|d| depth + 1 >= d) {
            if !model.choices(&s).is_empty() {
                search.cut_short = Some(format!("--max-depth {} reached", depth + 1));
            }
            continue;
        }
        let more = expand(model, &s);
        stack.push((child, depth + 1, more));
        since_progress += 1;
        if since_progress >= 4096 {
            since_progress = 0;
            if let Some(p) = &opts.progress {
                p(&Progress {
                    unique_states: search.parent.len() as u64,
                    transitions: search.transitions,
                    depth: depth + 1,
                    queue: stack.len() as u64,
                    elapsed_ms: start.elapsed().as_millis() as u64,
                });
            }
        }
    }
}

/// Liveness: the reachable states from which no settled state can be reached without
/// faults, among those at least `within` before the horizon. Returns the first (lowest id,
/// so the nearest in breadth-first order) such state.
fn liveness_violation(search: &Search, within: u64, horizon: u64) -> Option<u32> {
    let back = search.back.as_ref()?;
    let n = search.settled.len();
    let mut good = search.settled.clone();
    let mut queue: Vec<u32> = (0..n as u32).filter(|&i| good[i as usize]).collect();
    while let Some(x) = queue.pop() {
        for &p in &back[x as usize] {
            if !good[p as usize] {
                good[p as usize] = true;
                queue.push(p);
            }
        }
    }
    (0..n as u32)
        .find(|&i| !good[i as usize] && search.time[i as usize].saturating_add(within) <= horizon)
}

#[allow(clippy::too_many_arguments)]
fn finish<A: Algorithm>(
    model: &Model<A>,
    scenario: &Scenario,
    file: &str,
    opts: &ExploreOptions,
    mut search: Search,
    complete: bool,
    liveness: Option<u64>,
    start: Instant,
) -> ExploreReport {
    let spec = scenario.explore.clone();
    let (expect, expect_violated) = spec
        .as_ref()
        .map(|e| (e.expect.clone(), e.expect_violated.clone()))
        .unwrap_or_default();
    let mut names: Vec<Property> = vec![Property::AtMostOneLeader, Property::OneLeaderPerComponent];
    for p in expect.iter().chain(&expect_violated) {
        if !names.contains(p) {
            names.push(p.clone());
        }
    }
    let cex = |id: u32, property: &Property, detail: Option<String>| {
        let choices = search.path(id);
        let (trace, end) = match model.replay(&choices) {
            Ok((t, end)) => (t, Some(end)),
            Err(_) => (Vec::new(), None),
        };
        let detail = detail.unwrap_or_else(|| {
            let end = end.as_ref();
            let why = match property {
                Property::AtMostOneLeader => end.and_then(|e| e.at_most_one.clone()),
                _ => end.and_then(|e| e.per_component.clone()),
            };
            why.unwrap_or_default()
        });
        Counterexample {
            scenario: file.to_string(),
            property: property.to_string(),
            choices,
            detail,
            trace,
        }
    };
    // Liveness needs the whole graph: in a cut-short search, states whose successors were
    // never expanded would look like dead ends.
    let live = liveness.filter(|_| complete).and_then(|within| {
        liveness_violation(&search, within, model.horizon).map(|id| {
            let detail = format!(
                "from this state (t={}), no state where every component agrees on one running leader can be reached without further faults",
                conclave_algorithms::Duration(search.time[id as usize])
            );
            (id, detail)
        })
    });
    let mut properties = Vec::new();
    for p in &names {
        let found = match p {
            Property::AtMostOneLeader => search.first_violation[0].map(|id| (id, None)),
            Property::OneLeaderPerComponent => search.first_violation[1].map(|id| (id, None)),
            Property::EventualLeader(_) => live.clone().map(|(id, why)| (id, Some(why))),
            _ => None,
        };
        let holds = match (&found, complete) {
            (Some(_), _) => Some(false),
            (None, true) => Some(true),
            (None, false) => None,
        };
        let expected = if expect.contains(p) {
            "holds"
        } else if expect_violated.contains(p) {
            "violated"
        } else {
            "reported"
        };
        let ok = match expected {
            "holds" => holds == Some(true),
            "violated" => holds == Some(false),
            _ => true,
        };
        properties.push(PropertyVerdict {
            name: p.to_string(),
            holds,
            expected,
            ok,
            counterexample: found.map(|(id, why)| cex(id, p, why)),
        });
    }
    let timing = match spec.as_ref().map(|e| &e.timing) {
        Some(Timing::Bounded { max_delay }) => format!("Bounded(max_delay: {max_delay})"),
        _ => "Asynchronous".to_string(),
    };
    ExploreReport {
        scenario: scenario.name.clone(),
        algorithm: scenario.algorithm.name().to_string(),
        timing,
        search: if opts.dfs { "dfs" } else { "bfs" },
        jobs: if opts.dfs { 1 } else { opts.jobs.max(1) },
        symmetry_reduction: false,
        unique_states: search.parent.len() as u64,
        transitions: search.transitions,
        max_depth: search.max_depth,
        complete,
        cut_short: search.cut_short.take(),
        elapsed_ms: start.elapsed().as_millis() as u64,
        ok: properties.iter().all(|p| p.ok),
        properties,
        graph: search.graph.take(),
    }
}
