//! The simulated world: nodes of one algorithm on a seeded virtual-time network.
//!
//! Events wait in one queue ordered by (virtual time, insertion sequence), so two events at
//! the same instant happen in the order they were scheduled. All randomness comes from the
//! run's seed through ChaCha streams, one per purpose (the network, random faults, the
//! algorithms' own draws), so a change to one purpose does not shift the draws of another.
//!
//! Besides the nodes of the algorithm, a world can hold two services of its own: a failure
//! detector (for algorithms that assume one) and a log server that every voter reports its
//! state to periodically, over the simulated network (seed 002's central log server).
//!
//! ```
//! use conclave_algorithms::bully::{Bully, BullyParams};
//! use conclave_algorithms::{Cluster, Duration, Member, Pid, Role, Time};
//! use conclave_sim::world::{World, WorldConfig};
//!
//! let cluster = Cluster::new(vec![Member::voter("a", 1), Member::voter("b", 2)]);
//! let config = WorldConfig { seed: 7, ..WorldConfig::starting_together(2) };
//! let mut world = World::<Bully>::new(cluster, BullyParams::default(), config);
//! world.run_until(Time(10_000_000));
//! assert_eq!(world.status()[1].view.role, Role::Leader);
//! assert_eq!(world.status()[0].view.leader, Some(Pid(1)));
//! ```

use crate::properties::{Monitor, NodeStatus, Topology};
use crate::queue::EventQueue;
use crate::scenario::{Delay, NetworkSpec};
use crate::trace::{show, tag, DropReason, TraceEvent, TraceHasher, What};
use conclave_algorithms::{
    Algorithm, Cluster, Context, Detector, Duration, Effect, MemberKind, Message, Pid, Random,
    Role, Time, View,
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
    /// A graceful leave: the node says goodbye, then stops.
    Leave(Pid),
}

/// ChaCha stream numbers: one per purpose.
pub const NETWORK_STREAM: u64 = 1;
pub const FAULT_STREAM: u64 = 2;
pub const ALGORITHM_STREAM: u64 = 3;
pub const SCENARIO_STREAM: u64 = 4;

/// The random generator of one purpose of a run.
pub fn stream(seed: u64, purpose: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(purpose);
    rng
}

/// The algorithms' source of randomness: the run's algorithm stream.
struct Draws(ChaCha8Rng);

impl Random for Draws {
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            lo
        } else {
            self.0.random_range(lo..=hi)
        }
    }
}

/// How a world is set up, besides its cluster and the algorithm's parameters.
#[derive(Clone, Debug)]
pub struct WorldConfig {
    /// When each process starts, by Pid.
    pub starts: Vec<Time>,
    pub network: NetworkSpec,
    pub faults: Vec<(Time, Action)>,
    pub seed: u64,
    pub record_trace: bool,
    /// The log server's process and how often every voter reports to it.
    pub log_server: Option<(Pid, Duration)>,
}

impl WorldConfig {
    /// `n` processes starting at time zero on the default network, seed 0.
    pub fn starting_together(n: usize) -> Self {
        WorldConfig {
            starts: vec![Time::ZERO; n],
            network: NetworkSpec::default(),
            faults: Vec::new(),
            seed: 0,
            record_trace: false,
            log_server: None,
        }
    }
}

/// One row of the log server's table: what a node last reported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRow {
    pub coordinator: Option<Pid>,
    pub group: u64,
    pub status: &'static str,
    /// When the log server received it.
    pub received: Time,
}

struct LogServer {
    pid: Pid,
    interval: Duration,
    table: BTreeMap<Pid, LogRow>,
}

/// The world's failure detector: what each observer currently suspects.
struct FailureDetector {
    spec: Detector,
    /// `suspected[observer * n + target]`.
    suspected: Vec<bool>,
    rng: ChaCha8Rng,
}

enum Ev<M, T> {
    Start(Pid),
    Fault(u32),
    Deliver {
        from: Pid,
        to: Pid,
        msg: M,
    },
    Timer {
        pid: Pid,
        timer: T,
        token: u64,
    },
    /// The failure detector catches up with the truth.
    Detect,
    /// The failure detector makes a mistake (eventually perfect detectors only).
    Mistake,
    /// Every running voter reports to the log server.
    ReportTick,
    Report {
        from: Pid,
        row: LogRow,
    },
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
    /// Role changes per process (the hooks of seed 004 run on these).
    pub role_changes: Vec<u64>,
    /// Verdicts the failure detector delivered (suspicions and trusts).
    pub detector_notices: u64,
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
    draws: Draws,
    detector: Option<FailureDetector>,
    log: Option<LogServer>,
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
    /// A world of `cluster` whose process `i` starts at `config.starts[i]` and which applies
    /// `config.faults` at their times.
    pub fn new(cluster: Cluster, params: A::Params, config: WorldConfig) -> Self {
        let n = cluster.len();
        let net = &config.network;
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
        let detector = A::detector(&params).map(|spec| FailureDetector {
            spec,
            suspected: vec![false; n * n],
            rng: stream(config.seed, FAULT_STREAM),
        });
        let joins = cluster
            .members
            .iter()
            .map(|m| m.kind == MemberKind::Voter)
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
            topo: Topology::joining(joins),
            delay: net.delay.clone(),
            loss: net.loss,
            duplicate: net.duplicate,
            fifo_last: if net.fifo {
                vec![Time::ZERO; n * n]
            } else {
                Vec::new()
            },
            net_rng: stream(config.seed, NETWORK_STREAM),
            draws: Draws(stream(config.seed, ALGORITHM_STREAM)),
            detector,
            log: config.log_server.map(|(pid, interval)| LogServer {
                pid,
                interval,
                table: BTreeMap::new(),
            }),
            faults: Vec::new(),
            effects: Vec::new(),
            hasher: TraceHasher::default(),
            trace: config.record_trace.then(Vec::new),
            monitor: Monitor::default(),
            stats: Stats {
                role_changes: vec![0; n],
                ..Stats::default()
            },
            last_disturbance: Time::ZERO,
        };
        // Services first: at the same instant a daemon is up before the nodes that use it.
        let mut order: Vec<usize> = (0..config.starts.len()).collect();
        order.sort_by_key(|&i| (config.starts[i], world.status[i].voter));
        for i in order {
            let t = config.starts[i];
            world.push(t, Ev::Start(Pid(i as u32)));
            world.last_disturbance = world.last_disturbance.max(t);
        }
        for (i, (t, _)) in config.faults.iter().enumerate() {
            world.push(*t, Ev::Fault(i as u32));
            world.last_disturbance = world.last_disturbance.max(*t);
        }
        world.faults = config.faults;
        if let Some(log) = &world.log {
            let first = Time::ZERO + log.interval;
            world.push(first, Ev::ReportTick);
        }
        world.schedule_mistake();
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
    /// The log server's table, if the world has one: each reporting node's last report.
    pub fn log_table(&self) -> Option<&BTreeMap<Pid, LogRow>> {
        self.log.as_ref().map(|l| &l.table)
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
            Ev::Detect => self.detect(),
            Ev::Mistake => self.mistake(),
            Ev::ReportTick => self.report_tick(),
            Ev::Report { from, row } => self.report(from, row),
        }
    }

    fn is_log_server(&self, p: Pid) -> bool {
        self.log.as_ref().is_some_and(|l| l.pid == p)
    }

    fn boot(&mut self, p: Pid) {
        let st = &mut self.status[p.index()];
        st.up = true;
        st.paused = false;
        if self.is_log_server(p) {
            self.status[p.index()].view = View::new(Role::Service, None, "LogServer");
        } else {
            self.nodes[p.index()] = Some(A::new(p, &self.cluster, &self.params));
            self.step(p, |node, ctx| node.on_start(ctx));
        }
        self.changed();
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
                msg: show(&msg, names),
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
            |names: &[String]| What::Timer {
                timer: show(&timer, names),
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
        let ctx = Context::new(self.now, p, &self.cluster, &mut effects);
        f(node, &mut ctx.with_random(&mut self.draws));
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

    fn role_change(&mut self, p: Pid, view: View) {
        let old = self.status[p.index()].view.role;
        self.stats.role_changes[p.index()] += 1;
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
                group: view.group,
            },
            |h| {
                h.u8(view.role as u8);
                h.opt_pid(view.leader);
                h.bytes(view.status.as_bytes());
                h.u64(view.group);
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
                msg: show(&msg, names),
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
                    msg: show(&msg, names),
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
    fn draw_delay(&mut self) -> u64 {
        match self.delay {
            Delay::Constant(d) => d.as_micros(),
            Delay::Uniform { min, max } => {
                self.net_rng.random_range(min.as_micros()..=max.as_micros())
            }
        }
    }

    fn transmit(&mut self, from: Pid, to: Pid, msg: A::Msg) {
        let delay = self.draw_delay();
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
                msg: show(&msg, names),
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
                self.stop(p);
            }
            Action::Leave(p) => {
                self.record(tag::LEAVE, p, |_: &[String]| What::Leave, |_| {});
                self.step(p, |node, ctx| node.on_leave(ctx));
                self.stop(p);
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
        self.changed();
    }

    /// The process stops: volatile state and timers are lost.
    fn stop(&mut self, p: Pid) {
        let i = p.index();
        self.nodes[i] = None;
        self.timers[i].clear();
        self.deferred[i].clear();
        self.status[i].up = false;
        self.status[i].paused = false;
        if self.status[i].view != NodeStatus::DOWN_VIEW {
            self.stats.role_changes[i] += 1;
        }
        self.status[i].view = NodeStatus::DOWN_VIEW;
        // A process that starts again knows nothing: the detector must tell it afresh.
        if let Some(fd) = &mut self.detector {
            let n = self.nodes.len();
            fd.suspected[i * n..(i + 1) * n].fill(false);
        }
    }

    /// Something the properties or the failure detector care about changed: a start, a
    /// fault, a topology change.
    fn changed(&mut self) {
        self.observe();
        if let Some(fd) = &self.detector {
            let at = self.now + fd.spec.delay();
            self.push(at, Ev::Detect);
        }
    }

    /// Whether `observer` should suspect `target` now: it is down, paused or unreachable.
    fn truly_suspect(&self, observer: Pid, target: Pid) -> bool {
        let t = &self.status[target.index()];
        !t.up || t.paused || !self.topo.connected(observer, target)
    }

    /// The failure detector brings every running observer's verdicts up to date.
    fn detect(&mut self) {
        let Some(n) = self.detector.as_ref().map(|_| self.nodes.len()) else {
            return;
        };
        self.stats.events += 1;
        for oi in 0..self.voters.len() {
            let o = self.voters[oi];
            if !self.status[o.index()].is_running() {
                continue;
            }
            for ti in 0..self.voters.len() {
                let t = self.voters[ti];
                if t == o {
                    continue;
                }
                let truth = self.truly_suspect(o, t);
                let slot = o.index() * n + t.index();
                let Some(fd) = self.detector.as_mut() else {
                    return;
                };
                if fd.suspected[slot] != truth {
                    fd.suspected[slot] = truth;
                    self.notice(o, t, truth);
                }
            }
        }
    }

    fn notice(&mut self, observer: Pid, target: Pid, suspected: bool) {
        self.stats.detector_notices += 1;
        self.record(
            tag::SUSPECT,
            observer,
            |names: &[String]| What::Suspect {
                who: names[target.index()].clone(),
                suspected,
            },
            |h| {
                h.pid(target);
                h.u8(suspected as u8);
            },
        );
        self.step(observer, |node, ctx| {
            node.on_suspect(target, suspected, ctx)
        });
    }

    /// Schedules the next mistake of an eventually perfect detector, if any are left.
    fn schedule_mistake(&mut self) {
        let Some(fd) = self.detector.as_mut() else {
            return;
        };
        if let Detector::EventuallyPerfect {
            mistakes_until,
            mistake_every,
            ..
        } = fd.spec
        {
            let gap = fd
                .rng
                .random_range(1..=mistake_every.as_micros().max(1) * 2);
            let at = self.now + Duration(gap);
            if at.as_micros() < mistakes_until.as_micros() {
                self.push(at, Ev::Mistake);
            }
        }
    }

    /// An eventually perfect detector wrongly suspects a live, reachable process; it
    /// corrects itself at the next `Detect`, one delay later.
    fn mistake(&mut self) {
        self.stats.events += 1;
        let candidates: Vec<(Pid, Pid)> = self
            .voters
            .iter()
            .flat_map(|&o| self.voters.iter().map(move |&t| (o, t)))
            .filter(|&(o, t)| {
                o != t && self.status[o.index()].is_running() && !self.truly_suspect(o, t)
            })
            .collect();
        let n = self.nodes.len();
        if let Some(fd) = self.detector.as_mut() {
            if !candidates.is_empty() {
                let (o, t) = candidates[fd.rng.random_range(0..candidates.len())];
                let slot = o.index() * n + t.index();
                if !fd.suspected[slot] {
                    fd.suspected[slot] = true;
                    let at = self.now + fd.spec.delay();
                    self.push(at, Ev::Detect);
                    self.notice(o, t, true);
                }
            }
        }
        self.schedule_mistake();
    }

    /// Every running voter sends the log server its state, over the network.
    fn report_tick(&mut self) {
        let Some((server, interval)) = self.log.as_ref().map(|l| (l.pid, l.interval)) else {
            return;
        };
        self.stats.events += 1;
        for i in 0..self.voters.len() {
            let p = self.voters[i];
            if !self.status[p.index()].is_running() {
                continue;
            }
            let view = self.status[p.index()].view;
            self.stats.sent += 1;
            *self.stats.by_kind.entry("Report").or_insert(0) += 1;
            self.record(
                tag::REPORT,
                p,
                |names: &[String]| What::Send {
                    to: names[server.index()].clone(),
                    msg: format!(
                        "Report {{ coordinator: {}, group: {}, status: {} }}",
                        show(&view.leader, names),
                        view.group,
                        view.status
                    ),
                },
                |h| {
                    h.opt_pid(view.leader);
                    h.u64(view.group);
                    h.bytes(view.status.as_bytes());
                },
            );
            if !self.topo.connected(p, server) {
                self.stats.dropped += 1;
                continue;
            }
            let at = self.now + Duration(self.draw_delay());
            let row = LogRow {
                coordinator: view.leader,
                group: view.group,
                status: view.status,
                received: at,
            };
            self.push(at, Ev::Report { from: p, row });
        }
        let next = self.now + interval;
        self.push(next, Ev::ReportTick);
    }

    fn report(&mut self, from: Pid, row: LogRow) {
        let Some(server) = self.log.as_ref().map(|l| l.pid) else {
            return;
        };
        self.stats.events += 1;
        let st = &self.status[server.index()];
        if !st.up || st.paused || !self.topo.connected(from, server) {
            self.stats.dropped += 1;
            return;
        }
        self.stats.delivered += 1;
        if let Some(log) = self.log.as_mut() {
            log.table.insert(from, row);
        }
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
