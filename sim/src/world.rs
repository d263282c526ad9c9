//! The simulated world: nodes of one algorithm on a seeded virtual-time network.
//!
//! Events wait in one queue ordered by (virtual time, insertion sequence), so two events at
//! the same instant happen in the order they were scheduled. All randomness comes from the
//! run's seed through ChaCha streams, one per purpose (stream 1: the network), so a change to
//! one purpose does not shift the draws of another.
//!
//! ```
//! use conclave_algorithms::bully::{Bully, BullyParams};
//! use conclave_algorithms::{Cluster, Duration, Member, Pid, Role, Time};
//! use conclave_sim::world::World;
//! use conclave_sim::scenario::NetworkSpec;
//!
//! let cluster = Cluster::new(vec![Member::voter("a", 1), Member::voter("b", 2)]);
//! let mut world = World::<Bully>::new(cluster, BullyParams::default(), &[Time::ZERO; 2],
//!     &NetworkSpec::default(), Vec::new(), 7, false);
//! world.run_until(Time(10_000_000));
//! assert_eq!(world.status()[1].view.role, Role::Leader);
//! assert_eq!(world.status()[0].view.leader, Some(Pid(1)));
//! ```

use crate::properties::{Monitor, NodeStatus, Topology};
use crate::queue::EventQueue;
use crate::scenario::{Delay, NetworkSpec};
use crate::trace::{tag, DropReason, TraceEvent, TraceHasher, What};
use conclave_algorithms::{
    Algorithm, Cluster, Context, Effect, MemberKind, Message, Pid, Role, Time,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;

/// A fault, with nodes resolved to process ids.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    Crash(Pid),
    Restart(Pid),
    Pause(Pid),
    Resume(Pid),
    Partition(Vec<Vec<Pid>>),
    Block(Pid, Pid),
    Unblock(Pid, Pid),
    Heal,
}

/// ChaCha stream numbers: one per purpose.
pub const NETWORK_STREAM: u64 = 1;

enum Ev<M, T> {
    Start(Pid),
    Fault(u32),
    Deliver { from: Pid, to: Pid, msg: M },
    Timer { pid: Pid, timer: T, token: u64 },
}

/// Counts gathered during a run.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Events taken from the queue and acted on (stale timers excluded).
    pub events: u64,
    pub sent: u64,
    pub election_sent: u64,
    pub delivered: u64,
    pub dropped: u64,
    pub duplicated: u64,
    pub by_kind: BTreeMap<&'static str, u64>,
    /// Times a node entered the candidate role.
    pub elections_started: u64,
    /// Times a node entered the leader role.
    pub leaders_elected: u64,
}

type Timers<T> = Vec<(T, u64)>;

/// A world of nodes running algorithm `A`.
pub struct World<A: Algorithm> {
    cluster: Cluster,
    names: Vec<String>,
    params: A::Params,
    nodes: Vec<Option<A>>,
    status: Vec<NodeStatus>,
    timers: Vec<Timers<A::Timer>>,
    deferred: Vec<Timers<A::Timer>>,
    voters: Vec<Pid>,
    queue: EventQueue<Ev<A::Msg, A::Timer>>,
    now: Time,
    topo: Topology,
    delay: Delay,
    loss: f64,
    duplicate: f64,
    fifo_last: Vec<Time>,
    net_rng: ChaCha8Rng,
    faults: Vec<(Time, Action)>,
    effects: Vec<Effect<A::Msg, A::Timer>>,
    hasher: TraceHasher,
    trace: Option<Vec<TraceEvent>>,
    monitor: Monitor,
    stats: Stats,
    /// The time of the last fault or node start: "after the last fault" counts from here.
    last_disturbance: Time,
}

impl<A: Algorithm> World<A> {
    /// A world whose node `i` starts at `starts[i]` and which applies `faults` at their times.
    pub fn new(
        cluster: Cluster,
        params: A::Params,
        starts: &[Time],
        net: &NetworkSpec,
        faults: Vec<(Time, Action)>,
        seed: u64,
        record_trace: bool,
    ) -> Self {
        let n = cluster.len();
        let mut net_rng = ChaCha8Rng::seed_from_u64(seed);
        net_rng.set_stream(NETWORK_STREAM);
        let status = cluster
            .members
            .iter()
            .map(|m| NodeStatus {
                up: false,
                paused: false,
                voter: m.kind == MemberKind::Voter,
                priority: m.priority,
                view: NodeStatus::DOWN_VIEW,
            })
            .collect();
        let mut world = World {
            names: cluster.members.iter().map(|m| m.name.clone()).collect(),
            voters: cluster.voters().collect(),
            cluster,
            params,
            nodes: (0..n).map(|_| None).collect(),
            status,
            timers: vec![Vec::new(); n],
            deferred: vec![Vec::new(); n],
            queue: EventQueue::new(),
            now: Time::ZERO,
            topo: Topology::new(n),
            delay: net.delay.clone(),
            loss: net.loss,
            duplicate: net.duplicate,
            fifo_last: if net.fifo {
                vec![Time::ZERO; n * n]
            } else {
                Vec::new()
            },
            net_rng,
            faults: Vec::new(),
            effects: Vec::new(),
            hasher: TraceHasher::default(),
            trace: record_trace.then(Vec::new),
            monitor: Monitor::default(),
            stats: Stats::default(),
            last_disturbance: Time::ZERO,
        };
        for (i, &t) in starts.iter().enumerate() {
            world.push(t, Ev::Start(Pid(i as u32)));
            world.last_disturbance = world.last_disturbance.max(t);
        }
        for (i, (t, _)) in faults.iter().enumerate() {
            world.push(*t, Ev::Fault(i as u32));
            world.last_disturbance = world.last_disturbance.max(*t);
        }
        world.faults = faults;
        world
    }

    fn push(&mut self, time: Time, ev: Ev<A::Msg, A::Timer>) {
        self.queue.push(time.as_micros(), ev);
    }

    pub fn now(&self) -> Time {
        self.now
    }
    pub fn status(&self) -> &[NodeStatus] {
        &self.status
    }
    pub fn topology(&self) -> &Topology {
        &self.topo
    }
    pub fn names(&self) -> &[String] {
        &self.names
    }
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
    pub fn monitor(&self) -> &Monitor {
        &self.monitor
    }
    pub fn node(&self, p: Pid) -> Option<&A> {
        self.nodes[p.index()].as_ref()
    }
    pub fn last_disturbance(&self) -> Time {
        self.last_disturbance
    }
    /// The readable trace so far, if it is being recorded.
    pub fn trace(&self) -> Option<&[TraceEvent]> {
        self.trace.as_deref()
    }
    pub fn take_trace(&mut self) -> Option<Vec<TraceEvent>> {
        self.trace.take()
    }
    /// The hash of the trace so far.
    pub fn trace_hash(&mut self) -> u64 {
        self.hasher.finish()
    }

    /// Processes every event up to and including time `until`; the clock then reads `until`.
    pub fn run_until(&mut self, until: Time) {
        while self
            .queue
            .peek_time()
            .is_some_and(|t| t <= until.as_micros())
        {
            let Some((time, ev)) = self.queue.pop() else {
                break;
            };
            self.now = Time(time);
            self.dispatch(ev);
        }
        self.now = self.now.max(until);
    }

    fn dispatch(&mut self, ev: Ev<A::Msg, A::Timer>) {
        match ev {
            Ev::Start(p) => {
                self.stats.events += 1;
                self.record(tag::START, p, |_: &[String]| What::Start, |_| {});
                self.boot(p);
            }
            Ev::Fault(i) => {
                self.stats.events += 1;
                let action = self.faults[i as usize].1.clone();
                self.apply(action);
            }
            Ev::Deliver { from, to, msg } => self.deliver(from, to, msg),
            Ev::Timer { pid, timer, token } => self.fire(pid, timer, token),
        }
    }

    fn boot(&mut self, p: Pid) {
        let st = &mut self.status[p.index()];
        st.up = true;
        st.paused = false;
        self.nodes[p.index()] = Some(A::new(p, &self.cluster, &self.params));
        self.step(p, |node, ctx| node.on_start(ctx));
        self.observe();
    }

    fn deliver(&mut self, from: Pid, to: Pid, msg: A::Msg) {
        let st = &self.status[to.index()];
        let reason = if !st.up {
            Some(DropReason::Down)
        } else if st.paused {
            Some(DropReason::Paused)
        } else if !self.topo.connected(from, to) {
            Some(DropReason::Partitioned)
        } else {
            None
        };
        self.stats.events += 1;
        if let Some(reason) = reason {
            self.drop_msg(from, to, &msg, reason);
            return;
        }
        self.stats.delivered += 1;
        self.record(
            tag::DELIVER,
            to,
            |names: &[String]| What::Deliver {
                from: names[from.index()].clone(),
                msg: format!("{msg:?}"),
            },
            |h| {
                h.pid(from);
                h.value(&msg);
            },
        );
        self.step(to, |node, ctx| node.on_message(from, msg, ctx));
    }

    fn fire(&mut self, pid: Pid, timer: A::Timer, token: u64) {
        let i = pid.index();
        let Some(slot) = self.timers[i]
            .iter()
            .position(|&(t, k)| t == timer && k == token)
        else {
            return; // cancelled, restarted or lost in a crash
        };
        if self.status[i].paused {
            // A frozen process: the timer fires when it resumes.
            self.deferred[i].push(self.timers[i][slot]);
            return;
        }
        self.timers[i].swap_remove(slot);
        self.stats.events += 1;
        self.record(
            tag::TIMER,
            pid,
            |_: &[String]| What::Timer {
                timer: format!("{timer:?}"),
            },
            |h| h.value(&timer),
        );
        self.step(pid, |node, ctx| node.on_timer(timer, ctx));
    }

    /// Runs one handler of node `p` and carries out what it asked for.
    fn step(&mut self, p: Pid, f: impl FnOnce(&mut A, &mut conclave_algorithms::Ctx<'_, A>)) {
        let mut effects = std::mem::take(&mut self.effects);
        let Some(node) = self.nodes[p.index()].as_mut() else {
            return;
        };
        f(
            node,
            &mut Context::new(self.now, p, &self.cluster, &mut effects),
        );
        let view = node.view();
        if view != self.status[p.index()].view {
            self.role_change(p, view);
        }
        for e in effects.drain(..) {
            match e {
                Effect::Send { to, msg } => self.send(p, to, msg),
                Effect::Broadcast { msg } => {
                    for k in 0..self.voters.len() {
                        let to = self.voters[k];
                        if to != p {
                            self.send(p, to, msg.clone());
                        }
                    }
                }
                Effect::SetTimer { timer, after } => {
                    let token = self.queue.next_seq();
                    let timers = &mut self.timers[p.index()];
                    match timers.iter_mut().find(|(t, _)| *t == timer) {
                        Some(slot) => slot.1 = token,
                        None => timers.push((timer, token)),
                    }
                    self.push(
                        self.now + after,
                        Ev::Timer {
                            pid: p,
                            timer,
                            token,
                        },
                    );
                }
                Effect::CancelTimer { timer } => {
                    self.timers[p.index()].retain(|(t, _)| *t != timer);
                }
            }
        }
        self.effects = effects;
    }

    fn role_change(&mut self, p: Pid, view: conclave_algorithms::View) {
        let old = self.status[p.index()].view.role;
        if view.role != old {
            match view.role {
                Role::Candidate => self.stats.elections_started += 1,
                Role::Leader => self.stats.leaders_elected += 1,
                _ => {}
            }
        }
        self.status[p.index()].view = view;
        self.record(
            tag::ROLE,
            p,
            |names: &[String]| What::Role {
                role: view.role,
                leader: view.leader.map(|l| names[l.index()].clone()),
                status: view.status.to_string(),
            },
            |h| {
                h.u8(view.role as u8);
                h.opt_pid(view.leader);
                h.bytes(view.status.as_bytes());
            },
        );
        self.observe();
    }

    fn send(&mut self, from: Pid, to: Pid, msg: A::Msg) {
        self.stats.sent += 1;
        if msg.is_election() {
            self.stats.election_sent += 1;
        }
        *self.stats.by_kind.entry(msg.kind()).or_insert(0) += 1;
        self.record(
            tag::SEND,
            from,
            |names: &[String]| What::Send {
                to: names[to.index()].clone(),
                msg: format!("{msg:?}"),
            },
            |h| {
                h.pid(to);
                h.value(&msg);
            },
        );
        if !self.topo.connected(from, to) {
            self.drop_msg(from, to, &msg, DropReason::Partitioned);
            return;
        }
        if self.loss > 0.0 && self.net_rng.random::<f64>() < self.loss {
            self.drop_msg(from, to, &msg, DropReason::Lost);
            return;
        }
        let copy = (self.duplicate > 0.0 && self.net_rng.random::<f64>() < self.duplicate)
            .then(|| msg.clone());
        self.transmit(from, to, msg);
        if let Some(msg) = copy {
            self.stats.duplicated += 1;
            self.record(
                tag::DUPLICATE,
                from,
                |names: &[String]| What::Duplicate {
                    from: names[from.index()].clone(),
                    to: names[to.index()].clone(),
                    msg: format!("{msg:?}"),
                },
                |h| {
                    h.pid(to);
                    h.value(&msg);
                },
            );
            self.transmit(from, to, msg);
        }
    }

    /// Puts a message on the wire: draws its delay and, with FIFO links, keeps it behind the
    /// messages sent before it on the same link.
    fn transmit(&mut self, from: Pid, to: Pid, msg: A::Msg) {
        let delay = match self.delay {
            Delay::Constant(d) => d.as_micros(),
            Delay::Uniform { min, max } => {
                self.net_rng.random_range(min.as_micros()..=max.as_micros())
            }
        };
        let mut at = Time(self.now.as_micros() + delay);
        if !self.fifo_last.is_empty() {
            let link = from.index() * self.nodes.len() + to.index();
            at = at.max(self.fifo_last[link]);
            self.fifo_last[link] = at;
        }
        self.push(at, Ev::Deliver { from, to, msg });
    }

    fn drop_msg(&mut self, from: Pid, to: Pid, msg: &A::Msg, reason: DropReason) {
        self.stats.dropped += 1;
        self.record(
            tag::DROP,
            to,
            |names: &[String]| What::Drop {
                from: names[from.index()].clone(),
                to: names[to.index()].clone(),
                msg: format!("{msg:?}"),
                reason,
            },
            |h| {
                h.pid(from);
                h.value(msg);
                h.u8(reason as u8);
            },
        );
    }

    fn apply(&mut self, action: Action) {
        match action {
            Action::Crash(p) => {
                self.record(tag::CRASH, p, |_: &[String]| What::Crash, |_| {});
                let i = p.index();
                self.nodes[i] = None;
                self.timers[i].clear();
                self.deferred[i].clear();
                self.status[i].up = false;
                self.status[i].paused = false;
                self.status[i].view = NodeStatus::DOWN_VIEW;
            }
            Action::Restart(p) => {
                self.record(tag::RESTART, p, |_: &[String]| What::Restart, |_| {});
                self.boot(p);
            }
            Action::Pause(p) => {
                self.record(tag::PAUSE, p, |_: &[String]| What::Pause, |_| {});
                self.status[p.index()].paused = true;
            }
            Action::Resume(p) => {
                self.record(tag::RESUME, p, |_: &[String]| What::Resume, |_| {});
                self.status[p.index()].paused = false;
                for (timer, token) in std::mem::take(&mut self.deferred[p.index()]) {
                    self.push(
                        self.now,
                        Ev::Timer {
                            pid: p,
                            timer,
                            token,
                        },
                    );
                }
            }
            Action::Partition(groups) => {
                self.record(
                    tag::PARTITION,
                    Pid(u32::MAX),
                    |names: &[String]| What::Partition {
                        groups: groups
                            .iter()
                            .map(|g| g.iter().map(|p| names[p.index()].clone()).collect())
                            .collect(),
                    },
                    |h| {
                        h.u64(groups.len() as u64);
                        for g in &groups {
                            h.u64(g.len() as u64);
                            g.iter().for_each(|&p| h.pid(p));
                        }
                    },
                );
                self.topo.partition(&groups);
            }
            Action::Block(a, b) => {
                let what = |names: &[String]| What::Block {
                    a: names[a.index()].clone(),
                    b: names[b.index()].clone(),
                };
                self.record(tag::BLOCK, a, what, |h| h.pid(b));
                self.topo.block(a, b);
            }
            Action::Unblock(a, b) => {
                let what = |names: &[String]| What::Unblock {
                    a: names[a.index()].clone(),
                    b: names[b.index()].clone(),
                };
                self.record(tag::UNBLOCK, a, what, |h| h.pid(b));
                self.topo.unblock(a, b);
            }
            Action::Heal => {
                self.record(tag::HEAL, Pid(u32::MAX), |_: &[String]| What::Heal, |_| {});
                self.topo.heal();
            }
        }
        self.observe();
    }

    fn observe(&mut self) {
        self.monitor
            .observe(self.now, &self.status, &self.topo, &self.names);
    }

    /// Hashes one event and, when recording, keeps its readable form.
    fn record(
        &mut self,
        tag: u8,
        node: Pid,
        what: impl FnOnce(&[String]) -> What,
        fields: impl FnOnce(&mut TraceHasher),
    ) {
        self.hasher.event(self.now, tag, node);
        fields(&mut self.hasher);
        if let Some(trace) = &mut self.trace {
            let node = self
                .names
                .get(node.index())
                .cloned()
                .unwrap_or_else(|| "network".into());
            trace.push(TraceEvent {
                time_us: self.now.as_micros(),
                node,
                what: what(&self.names),
            });
        }
    }
}
