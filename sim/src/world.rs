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
//! The network's rules, which the explorer (`explore::Model`) follows too:
//! - a message sent to a process that is down, or over a cut link, is dropped at once;
//! - messages in flight to a process that crashes are dropped when it crashes (its
//!   connections break; a restarted process never receives what was sent to the one
//!   before), and messages in flight over a link that a partition or block cuts are dropped
//!   when it is cut; every such loss is a `drop` event in the trace, at that instant;
//! - a message that reaches a paused process is dropped (`paused`).
//!
//! The failure detector: whenever a start, a fault or a change of the network makes the
//! truth (whether an observer should suspect another process: down, paused, or cut off
//! from it) differ from the last verdict announced to the observer, a notice with the new
//! verdict is put on its way to it, and arrives within the detector's `delay`. The
//! verdicts on one process reach an observer in the order they were announced, so a crash
//! and a restart quicker than the detector are both seen (suspected, then trusted). A
//! crashed observer's notices are lost, and once restarted it is told afresh about every
//! process it should suspect.
//!
//! Besides running on its own, a world can be driven by a [`Timed`] schedule
//! ([`World::scripted`]): every message delay, timer, notice and fault, and the order of
//! the steps within one instant, come from the schedule, and the world refuses any step it
//! could not have taken itself (see [`crate::schedule`]).
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
use crate::schedule::{self, Refused, Step, Timed};
use crate::trace::{show, tag, DropReason, TraceEvent, TraceHasher, What};
use conclave_algorithms::driver::{Armed, Driver, Env, Output, Outputs};
use conclave_algorithms::logserver::{LogServer, Report};
use conclave_algorithms::{
    Algorithm, Cluster, Detector, Duration, MemberKind, Message, Pid, Random, Role, Time, View,
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

/// The algorithms' source of randomness: the run's algorithm stream, or the lowest value of
/// every draw (as the explorer draws). It lives in the boxed [`Lent`] that every input
/// borrows; its own box is a leftover of when it was lent out alone.
#[derive(Default)]
struct Draws(Option<Box<ChaCha8Rng>>);

impl Draws {
    fn new(seed: u64, lowest: bool) -> Self {
        Draws((!lowest).then(|| Box::new(stream(seed, ALGORITHM_STREAM))))
    }

    /// As [`Draws::new`], in the room it has.
    fn renew(&mut self, seed: u64, lowest: bool) {
        match (&mut self.0, lowest) {
            (Some(rng), false) => **rng = stream(seed, ALGORITHM_STREAM),
            _ => *self = Draws::new(seed, lowest),
        }
    }
}

impl Random for Draws {
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        match &mut self.0 {
            Some(rng) if hi > lo => rng.random_range(lo..=hi),
            _ => lo,
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
    /// Each failure-detector notice takes a delay drawn from the network's stream in
    /// `0..=` the detector's delay, instead of exactly that delay.
    pub notice_jitter: bool,
    /// The algorithms' random draws take their lowest value (as in the explorer) instead
    /// of drawing from the seed.
    pub lowest_draws: bool,
    /// Keep the steps the world takes as a [`Timed`] schedule ([`World::steps`]).
    pub log_steps: bool,
    /// Hand each readable trace event to this as it happens, instead of keeping the trace
    /// (a long run's trace streams out in constant memory).
    pub trace_sink: Option<fn(&TraceEvent)>,
    /// Hash every event into the trace hash ([`World::trace_hash`]). Off only where no one
    /// reads the hash (a sweep without `--results`): the run is the same either way.
    pub hash_trace: bool,
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
            notice_jitter: false,
            lowest_draws: false,
            log_steps: false,
            trace_sink: None,
            hash_trace: true,
        }
    }
}

/// Set by the host (the CLI's Ctrl-C handler): every run within a budget stops soon after,
/// cut short ([`Cut::Interrupted`]), so that its partial summary can still be printed.
pub static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Called every 65,536 events of a run within a budget with the virtual time reached and
/// the events so far (a progress bar).
pub type ProgressHook = fn(Time, u64);

/// Limits on a run, so that no input can make it run for ever or exhaust memory.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// Events acted on (as [`Stats::events`] counts them), in all: the run stops at the
    /// first event past it (processes starting together are taken at once).
    pub max_events: Option<u64>,
    /// Events at one instant of virtual time: more, and the run is stuck in a loop that
    /// keeps time from advancing (a zero interval or timeout with zero delays).
    pub max_events_per_instant: u64,
    /// Resident memory of the process, in bytes (checked every 4,096 events).
    pub max_memory: Option<u64>,
    /// Told of the run's progress now and then.
    pub progress: Option<ProgressHook>,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            max_events: None,
            max_events_per_instant: 10_000_000,
            max_memory: None,
            progress: None,
        }
    }
}

/// Why a run stopped before its end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cut {
    /// The budget of events was spent.
    Events { limit: u64 },
    /// Virtual time stopped advancing: this many events at `at`, the last of them these
    /// (each once).
    Livelock {
        at: Time,
        limit: u64,
        events: Vec<String>,
    },
    /// The process passed the memory budget.
    Memory { resident: u64, limit: u64 },
    /// The host asked the run to stop ([`INTERRUPTED`]).
    Interrupted,
}

impl std::fmt::Display for Cut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cut::Events { limit } => write!(f, "{limit} events reached (--max-events)"),
            Cut::Livelock { at, limit, events } => write!(
                f,
                "virtual time stopped at {at}: {limit} events at that instant (a loop with no delay), the last of them: {}",
                events.join("; ")
            ),
            Cut::Memory { resident, limit } => write!(
                f,
                "the process holds {} MiB, past the memory limit of {} MiB (--max-memory)",
                resident >> 20,
                limit >> 20
            ),
            Cut::Interrupted => write!(f, "interrupted (Ctrl-C)"),
        }
    }
}

/// How many of a loop's last events a [`Cut::Livelock`] names.
const LOOP_EVENTS: u64 = 64;

/// The limits a scripted world holds a schedule to.
#[derive(Clone, Copy, Debug)]
pub struct ScriptLimits {
    /// The longest a message may be in flight.
    pub max_delay: Duration,
    /// Whether each link delivers in the order it was sent on.
    pub fifo: bool,
}

pub use conclave_algorithms::logserver::LogRow;

/// The world's log server: its process, the voters' reporting interval, and the service.
struct LogService {
    pid: Pid,
    interval: Duration,
    server: LogServer,
}

impl LogService {
    fn of(config: &WorldConfig) -> Option<Self> {
        config.log_server.map(|(pid, interval)| LogService {
            pid,
            interval,
            server: LogServer::default(),
        })
    }
}

/// The world's failure detector.
struct FailureDetector {
    spec: Detector,
    /// The last verdict announced to each up observer (told, or on its way).
    announced: Vec<bool>,
    /// When the last notice for each pair arrives: the next may not arrive earlier.
    last: Vec<Time>,
    /// Notices that reached a paused observer, delivered when it resumes.
    deferred: Vec<Vec<Notice>>,
    /// Scripted worlds: notices on their way, in the order they were sent.
    pending: Vec<Notice>,
    rng: ChaCha8Rng,
}

impl FailureDetector {
    /// The detector of a world of `n` processes running `A`, if `A` assumes one.
    fn of<A: Algorithm>(params: &A::Params, n: usize, seed: u64) -> Option<Self> {
        A::detector(params).map(|spec| FailureDetector {
            spec,
            announced: vec![false; n * n],
            last: vec![Time::ZERO; n * n],
            deferred: vec![Vec::new(); n],
            pending: Vec::new(),
            rng: stream(seed, FAULT_STREAM),
        })
    }
}

/// A verdict of the failure detector on its way to an observer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Notice {
    observer: Pid,
    target: Pid,
    suspected: bool,
    /// The time of the change it announces.
    changed: Time,
    /// The restarts counted at that change (the observer's `ctx.incarnation()`).
    restarts: u64,
}

/// A message in flight.
struct Flying<M> {
    from: Pid,
    to: Pid,
    msg: M,
    sent: Time,
    /// Send order, then the copy number: each link delivers in this order when FIFO.
    order: (u64, u32),
}

/// The messages in flight, in slots that queued deliveries name (with a generation, so a
/// delivery whose message was dropped meanwhile finds its slot empty or reused).
struct Wire<M> {
    slots: Vec<(u32, Option<Flying<M>>)>,
    free: Vec<u32>,
    sends: u64,
}

impl<M> Wire<M> {
    fn new() -> Self {
        Wire {
            slots: Vec::new(),
            free: Vec::new(),
            sends: 0,
        }
    }

    fn insert(&mut self, f: Flying<M>) -> (u32, u32) {
        match self.free.pop() {
            Some(slot) => {
                let s = &mut self.slots[slot as usize];
                s.0 = s.0.wrapping_add(1);
                s.1 = Some(f);
                (slot, s.0)
            }
            None => {
                self.slots.push((0, Some(f)));
                (self.slots.len() as u32 - 1, 0)
            }
        }
    }

    /// Empty, as new (the room is kept).
    fn clear(&mut self) {
        self.slots.clear();
        self.free.clear();
        self.sends = 0;
    }

    fn take(&mut self, slot: u32, gen: u32) -> Option<Flying<M>> {
        let s = self.slots.get_mut(slot as usize)?;
        if s.0 != gen || s.1.is_none() {
            return None;
        }
        self.free.push(slot);
        s.1.take()
    }

    /// The slots of the messages in flight that `pick` selects, in (from, to, order) order.
    fn select(&self, pick: impl Fn(&Flying<M>) -> bool) -> Vec<(u32, u32)> {
        let mut out: Vec<_> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, (gen, f))| {
                f.as_ref()
                    .filter(|f| pick(f))
                    .map(|f| ((f.from, f.to, f.order), i as u32, *gen))
            })
            .collect();
        out.sort_unstable_by_key(|e| e.0);
        out.into_iter().map(|(_, slot, gen)| (slot, gen)).collect()
    }

    fn get(&self, slot: u32) -> Option<&Flying<M>> {
        self.slots.get(slot as usize).and_then(|s| s.1.as_ref())
    }
}

enum Ev<T> {
    /// Processes starting together: every one is up before any runs its start handler.
    Start(Vec<Pid>),
    Fault(u32),
    Deliver {
        slot: u32,
        gen: u32,
    },
    Timer {
        pid: Pid,
        timer: T,
        token: u64,
    },
    /// A notice of the failure detector reaches its observer (in its incarnation `life`):
    /// the notice's fields laid out in the event itself, which keeps every event in 32 bytes
    /// (an event is moved into the queue's slab and out again).
    Notice {
        observer: Pid,
        target: Pid,
        suspected: bool,
        changed: Time,
        restarts: u64,
        life: u32,
    },
    /// The failure detector makes a mistake (eventually perfect detectors only).
    Mistake,
    /// Every running voter reports to the log server.
    ReportTick,
    /// Boxed, as it is larger than the other events.
    Report(Box<(Pid, Report)>),
}

impl<T> Ev<T> {
    fn notice(notice: Notice, life: u32) -> Self {
        let Notice {
            observer,
            target,
            suspected,
            changed,
            restarts,
        } = notice;
        Ev::Notice {
            observer,
            target,
            suspected,
            changed,
            restarts,
            life,
        }
    }
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
    /// Messages sent, per kind.
    pub by_kind: KindCounts,
    /// Times a node entered the candidate role.
    pub elections_started: u64,
    /// Times a node entered the leader role.
    pub leaders_elected: u64,
    /// Role changes per process (the hooks of seed 004 run on these).
    pub role_changes: Vec<u64>,
    /// Verdicts the failure detector delivered (suspicions and trusts).
    pub detector_notices: u64,
}

/// Messages sent, counted per kind ([`Message::kind`]).
///
/// Every send counts, so the counts are kept in a short list (in the order the kinds first
/// appeared) found by the address of the kind's name: `kind` returns a literal, the same
/// address at every call. A small table keyed by the low bits of that address remembers
/// where each kind's count is, so a send usually finds it in one comparison, where a map
/// keyed by the names compared strings at every level (about 200 instructions a send).
/// Names are compared as strings whenever the table does not know an address, so counts are
/// right whatever the addresses; the table only makes them faster to find.
#[derive(Clone, Debug, Default)]
pub struct KindCounts {
    counts: Vec<(&'static str, u64)>,
    /// Per slot, a kind's name as last seen and the place of its count.
    places: [Option<(&'static str, usize)>; 16],
}

impl Stats {
    /// All counts zero, as new (the room is kept).
    fn reset(&mut self) {
        let Stats {
            events,
            sent,
            election_sent,
            delivered,
            dropped,
            duplicated,
            by_kind,
            elections_started,
            leaders_elected,
            role_changes,
            detector_notices,
        } = self;
        *events = 0;
        *sent = 0;
        *election_sent = 0;
        *delivered = 0;
        *dropped = 0;
        *duplicated = 0;
        by_kind.counts.clear();
        by_kind.places = Default::default();
        *elections_started = 0;
        *leaders_elected = 0;
        role_changes.fill(0);
        *detector_notices = 0;
    }
}

impl KindCounts {
    /// Counts one message of `kind`.
    #[inline]
    pub fn add(&mut self, kind: &'static str) {
        // Literals are a few bytes apart: the low bits above the alignment tell them apart.
        let slot = (kind.as_ptr() as usize >> 2) % self.places.len();
        if let Some((k, i)) = self.places[slot] {
            if std::ptr::eq(k, kind) {
                self.counts[i].1 += 1;
                return;
            }
        }
        self.add_slowly(kind, slot);
    }

    #[cold]
    #[inline(never)]
    fn add_slowly(&mut self, kind: &'static str, slot: usize) {
        let i = match self.counts.iter().position(|(k, _)| *k == kind) {
            Some(i) => i,
            None => {
                self.counts.push((kind, 0));
                self.counts.len() - 1
            }
        };
        self.counts[i].1 += 1;
        self.places[slot] = Some((kind, i));
    }

    /// Each kind counted and its count, in the order the kinds were first sent. A kind
    /// appears once: `add` compares the names before it adds one.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.counts.iter().copied()
    }
}

/// What a node's input reads: the algorithm's parameters, the nodes, the cluster, the voters
/// and the algorithms' draws.
struct Lent<A: Algorithm> {
    params: A::Params,
    nodes: Vec<Driver<A>>,
    cluster: Cluster,
    voters: Vec<Pid>,
    draws: Draws,
}

/// Nothing the world does while it carries out a node's input reads what the input was lent.
const LENT: &str = "the nodes are not lent out";

/// The world carrying out what one node's input asks, as the driver hands it over.
struct Carry<'w, A: Algorithm> {
    world: &'w mut World<A>,
    p: Pid,
}

impl<A: Algorithm> Outputs<A::Msg, A::Timer> for Carry<'_, A> {
    #[inline]
    fn role(&mut self, view: View) {
        self.world.role_change(self.p, view);
    }
    #[inline]
    fn output(&mut self, output: Output<A::Msg, A::Timer>) {
        let w = &mut *self.world;
        match output {
            Output::Send { to, msg } => w.send(self.p, to, msg),
            Output::SetTimer { timer, token, due } => {
                if w.script.is_none() {
                    let pid = self.p;
                    w.push(due, Ev::Timer { pid, timer, token });
                }
            }
            // The driver forgot the timer: when its event comes, it is stale.
            Output::CancelTimer { .. } => {}
        }
    }
}

/// A world of nodes running algorithm `A`.
pub struct World<A: Algorithm> {
    names: Vec<String>,
    /// The nodes and what their inputs read, lent out of the world for each input (boxed,
    /// so that lending it moves a pointer; `None` only while it is lent).
    lent: Option<Box<Lent<A>>>,
    status: Vec<NodeStatus>,
    /// Bumped when a process stops: a notice for an earlier life is ignored.
    lives: Vec<u32>,
    /// Per process, the timers that fell due while it was paused.
    deferred: Vec<Vec<Armed<A::Timer>>>,
    /// Events taken from the queue so far.
    popped: u64,
    /// Restarts so far: a restarted process's incarnation (see `Context::incarnation`).
    restarts: u64,
    queue: EventQueue<Ev<A::Timer>>,
    wire: Wire<A::Msg>,
    now: Time,
    topo: Topology,
    delay: Delay,
    loss: f64,
    duplicate: f64,
    fifo_last: Vec<Time>,
    net_rng: ChaCha8Rng,
    detector: Option<FailureDetector>,
    notice_jitter: bool,
    log: Option<LogService>,
    faults: Vec<(Time, Action)>,
    hasher: TraceHasher,
    /// Whether events go into the hash (`WorldConfig::hash_trace`).
    hashing: bool,
    trace: Option<Vec<TraceEvent>>,
    sink: Option<fn(&TraceEvent)>,
    steps: Option<Vec<Timed>>,
    /// Scripted worlds: the schedule's limits; nothing is queued, every step comes from it.
    script: Option<ScriptLimits>,
    monitor: Monitor,
    /// The monitor has seen the world as it is, but for views whose status alone changed
    /// since. Starts and faults (which change what is up, paused or connected, and the views
    /// of processes that stop) clear it until they have shown the monitor the world again.
    observed: bool,
    stats: Stats,
    /// The time of the last fault or node start: "after the last fault" counts from here.
    last_disturbance: Time,
}

impl<A: Algorithm> World<A> {
    /// A world of `cluster` whose process `i` starts at `config.starts[i]` and which applies
    /// `config.faults` at their times.
    pub fn new(cluster: Cluster, params: A::Params, config: WorldConfig) -> Self {
        let mut world = Self::blank(cluster, params, &config);
        world.schedule(config);
        world
    }

    /// Makes this world the one [`World::new`] would build from the same processes with
    /// `priorities` (by Pid), `params` and `config`, keeping the room it has made (the event
    /// queue, the wire, the nodes' drivers, the trace hasher's buffer, the monitor's scratch
    /// space): a sweep runs one world per thread, renewed for each seed, instead of building
    /// and dropping one.
    pub fn renew(
        &mut self,
        priorities: impl IntoIterator<Item = u64>,
        params: A::Params,
        config: WorldConfig,
    ) {
        // Every field, so that a field added to the world is not left as the last run left it.
        let World {
            names,
            lent,
            status,
            lives,
            deferred,
            popped,
            restarts,
            queue,
            wire,
            now,
            topo,
            delay,
            loss,
            duplicate,
            fifo_last,
            net_rng,
            detector,
            notice_jitter,
            log,
            faults,
            hasher,
            hashing,
            trace,
            sink,
            steps,
            script,
            monitor,
            observed,
            stats,
            last_disturbance,
        } = self;
        let n = names.len();
        let net = &config.network;
        let lent = lent.as_deref_mut().expect(LENT);
        let mut given = 0;
        for (m, priority) in lent.cluster.members.iter_mut().zip(priorities) {
            m.priority = priority;
            given += 1;
        }
        assert_eq!(given, n, "a world is renewed with its own processes");
        for driver in &mut lent.nodes {
            driver.reset();
        }
        lent.draws.renew(config.seed, config.lowest_draws);
        *detector = FailureDetector::of::<A>(&params, n, config.seed);
        lent.params = params;
        for (st, m) in status.iter_mut().zip(&lent.cluster.members) {
            *st = NodeStatus {
                up: false,
                paused: false,
                voter: m.kind == MemberKind::Voter,
                priority: m.priority,
                view: NodeStatus::DOWN_VIEW,
            };
        }
        lives.fill(0);
        deferred.iter_mut().for_each(Vec::clear);
        *popped = 0;
        *restarts = 0;
        queue.clear();
        wire.clear();
        *now = Time::ZERO;
        topo.heal();
        *delay = net.delay.clone();
        *loss = net.loss;
        *duplicate = net.duplicate;
        fifo_last.clear();
        if net.fifo {
            fifo_last.resize(n * n, Time::ZERO);
        }
        *net_rng = stream(config.seed, NETWORK_STREAM);
        *notice_jitter = config.notice_jitter;
        *log = LogService::of(&config);
        faults.clear();
        hasher.reset();
        *hashing = config.hash_trace;
        *trace = (config.record_trace && config.trace_sink.is_none()).then(Vec::new);
        *sink = config.trace_sink;
        *steps = config.log_steps.then(Vec::new);
        *script = None;
        monitor.reset();
        *observed = false;
        stats.reset();
        *last_disturbance = Time::ZERO;
        self.schedule(config);
    }

    /// Queues the starts, the faults, the log server's first round and the detector's first
    /// mistake of a world just made.
    fn schedule(&mut self, config: WorldConfig) {
        // Processes that start at the same instant start together, services first.
        let mut order: Vec<usize> = (0..config.starts.len()).collect();
        order.sort_by_key(|&i| (config.starts[i], self.status[i].voter, i));
        let mut i = 0;
        while i < order.len() {
            let t = config.starts[order[i]];
            let same = order[i..]
                .iter()
                .take_while(|&&k| config.starts[k] == t)
                .count();
            let batch = order[i..i + same].iter().map(|&k| Pid(k as u32)).collect();
            self.push(t, Ev::Start(batch));
            self.last_disturbance = self.last_disturbance.max(t);
            i += same;
        }
        for (i, (t, _)) in config.faults.iter().enumerate() {
            self.push(*t, Ev::Fault(i as u32));
            self.last_disturbance = self.last_disturbance.max(*t);
        }
        self.faults = config.faults;
        if let Some(log) = &self.log {
            let first = Time::ZERO + log.interval;
            self.push(first, Ev::ReportTick);
        }
        self.schedule_mistake();
    }

    /// A world driven by a schedule: every process starts at time 0 (services first), the
    /// algorithms draw the lowest value of every random draw, and nothing happens but the
    /// steps given to [`World::play`].
    pub fn scripted(cluster: Cluster, params: A::Params, limits: ScriptLimits) -> Self {
        let n = cluster.len();
        let config = WorldConfig {
            network: NetworkSpec {
                fifo: limits.fifo,
                ..NetworkSpec::default()
            },
            record_trace: true,
            lowest_draws: true,
            ..WorldConfig::starting_together(n)
        };
        let mut world = Self::blank(cluster, params, &config);
        world.script = Some(limits);
        let mut order: Vec<Pid> = (0..n as u32).map(Pid).collect();
        order.sort_by_key(|p| world.status[p.index()].voter);
        world.start(order);
        world
    }

    fn blank(cluster: Cluster, params: A::Params, config: &WorldConfig) -> Self {
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
        let detector = FailureDetector::of::<A>(&params, n, config.seed);
        let joins = cluster
            .members
            .iter()
            .map(|m| m.kind == MemberKind::Voter)
            .collect();
        World {
            names: cluster.members.iter().map(|m| m.name.clone()).collect(),
            lent: Some(Box::new(Lent {
                params,
                nodes: (0..n as u32).map(|p| Driver::new(Pid(p))).collect(),
                voters: cluster.voters().collect(),
                cluster,
                draws: Draws::new(config.seed, config.lowest_draws),
            })),
            status,
            lives: vec![0; n],
            deferred: vec![Vec::new(); n],
            popped: 0,
            restarts: 0,
            queue: EventQueue::new(),
            wire: Wire::new(),
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
            detector,
            notice_jitter: config.notice_jitter,
            log: LogService::of(config),
            faults: Vec::new(),
            hasher: TraceHasher::default(),
            hashing: config.hash_trace,
            trace: (config.record_trace && config.trace_sink.is_none()).then(Vec::new),
            sink: config.trace_sink,
            steps: config.log_steps.then(Vec::new),
            script: None,
            monitor: Monitor::default(),
            observed: false,
            stats: Stats {
                role_changes: vec![0; n],
                ..Stats::default()
            },
            last_disturbance: Time::ZERO,
        }
    }

    /// What the nodes' inputs read (not lent out: no input is under way).
    #[inline]
    fn lent(&self) -> &Lent<A> {
        self.lent.as_deref().expect(LENT)
    }
    #[inline]
    fn lent_mut(&mut self) -> &mut Lent<A> {
        self.lent.as_deref_mut().expect(LENT)
    }

    fn push(&mut self, time: Time, ev: Ev<A::Timer>) {
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
        &self.lent().cluster
    }
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
    pub fn monitor(&self) -> &Monitor {
        &self.monitor
    }
    pub fn node(&self, p: Pid) -> Option<&A> {
        self.lent().nodes[p.index()].node()
    }
    pub fn last_disturbance(&self) -> Time {
        self.last_disturbance
    }
    /// The log server's table, if the world has one: each reporting node's last report.
    pub fn log_table(&self) -> Option<&BTreeMap<Pid, LogRow>> {
        self.log.as_ref().map(|l| l.server.table())
    }
    /// The readable trace so far, if it is being recorded.
    pub fn trace(&self) -> Option<&[TraceEvent]> {
        self.trace.as_deref()
    }
    pub fn take_trace(&mut self) -> Option<Vec<TraceEvent>> {
        self.trace.take()
    }
    /// The steps taken so far, if they are being logged (see [`WorldConfig::log_steps`]):
    /// every delivery, timer, notice and fault after the processes that start at time 0
    /// have started, with the losses and duplicates of the network.
    pub fn steps(&self) -> Option<&[Timed]> {
        self.steps.as_deref()
    }
    /// The time of the next queued event, if any: a driver that steps the world one instant
    /// at a time (`conclave compare`) calls [`World::run_until`] with it.
    pub fn next_event_time(&mut self) -> Option<Time> {
        self.queue.peek_time().map(Time)
    }
    /// The hash of the trace so far; `None` when the world was made not to hash
    /// (`WorldConfig::hash_trace`).
    pub fn trace_hash(&mut self) -> Option<u64> {
        self.hashing.then(|| self.hasher.finish())
    }

    /// [`World::run_until`] within a budget: stops at the first limit passed, and says
    /// which. The events already taken count against `max_events` from the world's start.
    pub fn run_within(&mut self, until: Time, budget: &Budget) -> Result<(), Cut> {
        let mut same = 0u64;
        let mut last = self.now;
        let mut seen: Vec<String> = Vec::new();
        while let Some(t) = self.queue.peek_time().filter(|&t| t <= until.as_micros()) {
            if let Some(limit) = budget.max_events.filter(|&m| self.stats.events >= m) {
                return Err(Cut::Events { limit });
            }
            // Every 4,096 events (a broadcast to thousands of nodes is one event): Ctrl-C,
            // memory (a read of /proc, about a microsecond), progress.
            if self.popped & 0xFFF == 0xFFF {
                if INTERRUPTED.load(std::sync::atomic::Ordering::Relaxed) {
                    return Err(Cut::Interrupted);
                }
                if let (Some(limit), Some(resident)) =
                    (budget.max_memory, crate::explore::resident_bytes())
                {
                    if resident > limit {
                        return Err(Cut::Memory { resident, limit });
                    }
                }
                if let Some(progress) = budget.progress.filter(|_| self.popped & 0xFFFF == 0xFFFF) {
                    progress(self.now, self.stats.events);
                }
            }
            same = if Time(t) == last { same + 1 } else { 0 };
            last = Time(t);
            let Some((time, ev)) = self.queue.pop() else {
                break;
            };
            self.popped += 1;
            self.now = Time(time);
            if same + LOOP_EVENTS >= budget.max_events_per_instant {
                let what = self.describe(&ev);
                if !seen.contains(&what) {
                    seen.push(what);
                }
                if same >= budget.max_events_per_instant {
                    seen.sort();
                    return Err(Cut::Livelock {
                        at: self.now,
                        limit: budget.max_events_per_instant,
                        events: seen,
                    });
                }
            }
            self.dispatch(ev);
        }
        self.now = self.now.max(until);
        Ok(())
    }

    /// An event in a few words (for the livelock report).
    fn describe(&self, ev: &Ev<A::Timer>) -> String {
        let name = |p: Pid| self.names[p.index()].as_str();
        match ev {
            Ev::Start(_) => "start".into(),
            Ev::Fault(i) => format!("{}", self.fault_step(&self.faults[*i as usize].1)),
            Ev::Deliver { slot, .. } => match self.wire.get(*slot) {
                Some(f) => format!("{} -> {} {}", name(f.from), name(f.to), f.msg.kind()),
                None => "a dropped message".into(),
            },
            Ev::Timer { pid, timer, .. } => {
                format!("timer {} of {}", show(timer, &self.names), name(*pid))
            }
            Ev::Notice {
                observer, target, ..
            } => format!(
                "detector notice to {} about {}",
                name(*observer),
                name(*target)
            ),
            Ev::Mistake => "detector mistake".into(),
            Ev::ReportTick | Ev::Report(_) => "log server report".into(),
        }
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
            self.popped += 1;
            self.now = Time(time);
            self.dispatch(ev);
        }
        self.now = self.now.max(until);
    }

    fn dispatch(&mut self, ev: Ev<A::Timer>) {
        match ev {
            Ev::Start(batch) => {
                self.stats.events += batch.len() as u64;
                self.start(batch);
            }
            Ev::Fault(i) => {
                self.stats.events += 1;
                let action = self.faults[i as usize].1.clone();
                self.log_step(|w| w.fault_step(&action));
                self.apply(action);
            }
            Ev::Deliver { slot, gen } => {
                if let Some(f) = self.wire.take(slot, gen) {
                    self.log_step(|w| Step::Deliver(w.packet(&f)));
                    self.deliver(f);
                }
            }
            Ev::Timer { pid, timer, token } => self.fire(pid, timer, token),
            Ev::Notice {
                observer,
                target,
                suspected,
                changed,
                restarts,
                life,
            } => {
                if self.lives[observer.index()] == life {
                    self.arrive(Notice {
                        observer,
                        target,
                        suspected,
                        changed,
                        restarts,
                    });
                }
            }
            Ev::Mistake => self.mistake(),
            Ev::ReportTick => self.report_tick(),
            Ev::Report(report) => {
                let (from, report) = *report;
                self.report(from, report);
            }
        }
    }

    /// Appends a step to the log, if one is kept.
    fn log_step(&mut self, step: impl FnOnce(&Self) -> Step) {
        if self.steps.is_some() {
            let step = step(self);
            let at_us = self.now.as_micros();
            if let Some(steps) = &mut self.steps {
                steps.push(Timed { at_us, step });
            }
        }
    }

    fn packet(&self, f: &Flying<A::Msg>) -> schedule::Packet {
        self.packet_of(f.from, f.to, &f.msg, f.sent)
    }

    /// A message as a schedule names it.
    fn packet_of(&self, from: Pid, to: Pid, msg: &A::Msg, sent: Time) -> schedule::Packet {
        schedule::Packet {
            from: self.names[from.index()].clone(),
            to: self.names[to.index()].clone(),
            msg: show(msg, &self.names),
            sent_us: sent.as_micros(),
        }
    }

    fn fault_step(&self, action: &Action) -> Step {
        let name = |p: &Pid| self.names[p.index()].clone();
        match action {
            Action::Crash(p) => Step::Crash { node: name(p) },
            Action::Restart(p) => Step::Restart { node: name(p) },
            Action::Pause(p) => Step::Pause { node: name(p) },
            Action::Resume(p) => Step::Resume { node: name(p) },
            Action::Leave(p) => Step::Leave { node: name(p) },
            Action::Partition(groups) => Step::Partition {
                groups: groups
                    .iter()
                    .map(|g| g.iter().map(name).collect())
                    .collect(),
            },
            Action::Block(a, b) => Step::Block {
                a: name(a),
                b: name(b),
            },
            Action::Unblock(a, b) => Step::Unblock {
                a: name(a),
                b: name(b),
            },
            Action::Heal => Step::Heal,
        }
    }

    fn is_log_server(&self, p: Pid) -> bool {
        self.log.as_ref().is_some_and(|l| l.pid == p)
    }

    /// Processes that start together: all are up before the first runs its start handler,
    /// so what one sends on start reaches the others.
    fn start(&mut self, batch: Vec<Pid>) {
        self.observed = false;
        for &p in &batch {
            self.up(p);
        }
        for &p in &batch {
            self.record(tag::START, p, |_: &[String]| What::Start, |_| {});
            self.run_start(p);
        }
        self.changed();
    }

    fn up(&mut self, p: Pid) {
        let st = &mut self.status[p.index()];
        st.up = true;
        st.paused = false;
    }

    fn run_start(&mut self, p: Pid) {
        if self.is_log_server(p) {
            self.status[p.index()].view = View::new(Role::Service, None, "LogServer");
        } else {
            self.step(p, |d, params, env, random, out| {
                d.start(params, env, random, out)
            });
        }
    }

    fn deliver(&mut self, f: Flying<A::Msg>) {
        let Flying { from, to, msg, .. } = f;
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
        self.step(to, |d, _, env, random, out| {
            d.on_message(from, msg, env, random, out)
        });
    }

    fn fire(&mut self, pid: Pid, timer: A::Timer, token: u64) {
        let i = pid.index();
        let Some(slot) = self.lent().nodes[i].armed_at(timer, token) else {
            return; // cancelled, restarted or lost in a crash
        };
        if self.status[i].paused {
            // A frozen process: the timer fires when it resumes.
            let armed = self.lent().nodes[i].timers()[slot];
            self.deferred[i].push(armed);
            return;
        }
        self.stats.events += 1;
        self.log_step(|w| Step::Timer {
            node: w.names[i].clone(),
            timer: show(&timer, &w.names),
        });
        self.record(
            tag::TIMER,
            pid,
            |names: &[String]| What::Timer {
                timer: show(&timer, names),
            },
            |h| h.value(&timer),
        );
        // The timer found above, not looked up again (nothing since changed the node's timers).
        self.step(pid, |d, _, env, random, out| {
            d.on_timer_at(slot, env, random, out)
        });
    }

    /// Hands node `p` one input through its driver, which carries out what it asks at once.
    fn step(
        &mut self,
        p: Pid,
        input: impl FnOnce(&mut Driver<A>, &A::Params, Env<'_>, &mut dyn Random, &mut Carry<'_, A>),
    ) {
        self.step_with(p, self.restarts, input);
    }

    /// [`World::step`] with the node's incarnation given.
    fn step_with(
        &mut self,
        p: Pid,
        incarnation: u64,
        input: impl FnOnce(&mut Driver<A>, &A::Params, Env<'_>, &mut dyn Random, &mut Carry<'_, A>),
    ) {
        // What the input reads is lent out of the world, so that the world can carry out
        // what the node asks as it asks it (nothing that does reads these).
        let mut lent = self.lent.take().expect(LENT);
        let env = Env {
            now: self.now,
            cluster: &lent.cluster,
            voters: &lent.voters,
            incarnation,
        };
        input(
            &mut lent.nodes[p.index()],
            &lent.params,
            env,
            &mut lent.draws,
            &mut Carry { world: self, p },
        );
        self.lent = Some(lent);
    }

    fn role_change(&mut self, p: Pid, view: View) {
        let before = self.status[p.index()].view;
        let old = before.role;
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
        // The properties read a view's role and leader only: a change of status alone, in
        // a world the monitor has seen since it last changed otherwise, leaves the monitor
        // as it is, and is not shown to it.
        if !self.observed || view.role != before.role || view.leader != before.leader {
            self.observe();
        }
    }

    fn send(&mut self, from: Pid, to: Pid, msg: A::Msg) {
        self.stats.sent += 1;
        if msg.is_election() {
            self.stats.election_sent += 1;
        }
        self.stats.by_kind.add(msg.kind());
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
        if !self.status[to.index()].up {
            self.drop_msg(from, to, &msg, DropReason::Down);
            return;
        }
        if !self.topo.connected(from, to) {
            self.drop_msg(from, to, &msg, DropReason::Partitioned);
            return;
        }
        if self.loss > 0.0 && self.net_rng.random::<f64>() < self.loss {
            self.log_step(|w| Step::Lose(w.packet_of(from, to, &msg, w.now)));
            self.drop_msg(from, to, &msg, DropReason::Lost);
            return;
        }
        let copy = (self.duplicate > 0.0 && self.net_rng.random::<f64>() < self.duplicate)
            .then(|| msg.clone());
        self.wire.sends += 1;
        let order = (self.wire.sends, 0);
        self.transmit(Flying {
            from,
            to,
            msg,
            sent: self.now,
            order,
        });
        if let Some(msg) = copy {
            self.log_step(|w| Step::Duplicate(w.packet_of(from, to, &msg, w.now)));
            self.record_duplicate(from, to, &msg);
            self.transmit(Flying {
                from,
                to,
                msg,
                sent: self.now,
                order: (order.0, 1),
            });
        }
    }

    fn record_duplicate(&mut self, from: Pid, to: Pid, msg: &A::Msg) {
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
                h.value(msg);
            },
        );
    }

    /// A message's delay, drawn from the network's distribution.
    fn draw_delay(&mut self) -> u64 {
        match self.delay {
            Delay::Constant(d) => d.as_micros(),
            Delay::Uniform { min, max } => {
                self.net_rng.random_range(min.as_micros()..=max.as_micros())
            }
        }
    }

    /// Puts a message on the wire; unless scripted, draws its delay and, with FIFO links,
    /// keeps it behind the messages sent before it on the same link.
    fn transmit(&mut self, f: Flying<A::Msg>) {
        let (from, to) = (f.from, f.to);
        let (slot, gen) = self.wire.insert(f);
        if self.script.is_some() {
            return;
        }
        let delay = self.draw_delay();
        let mut at = Time(self.now.as_micros() + delay);
        if !self.fifo_last.is_empty() {
            let link = from.index() * self.status.len() + to.index();
            at = at.max(self.fifo_last[link]);
            self.fifo_last[link] = at;
        }
        self.push(at, Ev::Deliver { slot, gen });
    }

    /// Drops every message in flight that `pick` selects, with a drop event for each.
    fn cut(&mut self, reason: DropReason, pick: impl Fn(&Flying<A::Msg>) -> bool) {
        for (slot, gen) in self.wire.select(pick) {
            if let Some(f) = self.wire.take(slot, gen) {
                self.drop_msg(f.from, f.to, &f.msg, reason);
            }
        }
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
        self.observed = false;
        match action {
            Action::Crash(p) => {
                self.record(tag::CRASH, p, |_: &[String]| What::Crash, |_| {});
                self.stop(p);
            }
            Action::Leave(p) => {
                self.record(tag::LEAVE, p, |_: &[String]| What::Leave, |_| {});
                self.step(p, |d, _, env, random, out| d.leave(env, random, out));
                self.stop(p);
            }
            Action::Restart(p) => {
                self.record(tag::RESTART, p, |_: &[String]| What::Restart, |_| {});
                self.restarts += 1;
                self.up(p);
                self.run_start(p);
            }
            Action::Pause(p) => {
                self.record(tag::PAUSE, p, |_: &[String]| What::Pause, |_| {});
                self.status[p.index()].paused = true;
            }
            Action::Resume(p) => {
                self.record(tag::RESUME, p, |_: &[String]| What::Resume, |_| {});
                self.status[p.index()].paused = false;
                for a in std::mem::take(&mut self.deferred[p.index()]) {
                    let ev = Ev::Timer {
                        pid: p,
                        timer: a.timer,
                        token: a.token,
                    };
                    self.push(self.now, ev);
                }
                let notices = self
                    .detector
                    .as_mut()
                    .map(|fd| std::mem::take(&mut fd.deferred[p.index()]))
                    .unwrap_or_default();
                for notice in notices {
                    let ev = Ev::notice(notice, self.lives[p.index()]);
                    self.push(self.now, ev);
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
                self.cut_links();
            }
            Action::Block(a, b) => {
                let what = |names: &[String]| What::Block {
                    a: names[a.index()].clone(),
                    b: names[b.index()].clone(),
                };
                self.record(tag::BLOCK, a, what, |h| h.pid(b));
                self.topo.block(a, b);
                self.cut_links();
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

    /// The messages in flight over links the topology has just cut are lost.
    fn cut_links(&mut self) {
        let topo = self.topo.clone();
        self.cut(DropReason::Partitioned, |f| !topo.connected(f.from, f.to));
    }

    /// The process stops: volatile state, timers, and the messages and notices on their
    /// way to it are lost.
    fn stop(&mut self, p: Pid) {
        let i = p.index();
        self.lent_mut().nodes[i].stop();
        self.deferred[i].clear();
        self.lives[i] += 1;
        self.status[i].up = false;
        self.status[i].paused = false;
        if self.status[i].view != NodeStatus::DOWN_VIEW {
            self.stats.role_changes[i] += 1;
        }
        self.status[i].view = NodeStatus::DOWN_VIEW;
        self.cut(DropReason::Down, |f| f.to == p);
        // A process that starts again knows nothing: the detector must tell it afresh.
        let n = self.lent().nodes.len();
        if let Some(fd) = &mut self.detector {
            fd.announced[i * n..(i + 1) * n].fill(false);
            fd.deferred[i].clear();
            fd.pending.retain(|n| n.observer != p);
        }
    }

    /// Something the properties or the failure detector care about changed: a start, a
    /// fault, a topology change. Each up observer whose truth about a voter now differs
    /// from the last verdict announced to it gets a notice with the new verdict.
    fn changed(&mut self) {
        self.observe();
        let Some(n) = self.detector.as_ref().map(|_| self.lent().nodes.len()) else {
            return;
        };
        for oi in 0..self.lent().voters.len() {
            let o = self.lent().voters[oi];
            if !self.status[o.index()].up {
                continue;
            }
            for ti in 0..self.lent().voters.len() {
                let t = self.lent().voters[ti];
                if t == o {
                    continue;
                }
                let truth = self.truly_suspect(o, t);
                let slot = o.index() * n + t.index();
                let Some(fd) = self.detector.as_mut() else {
                    return;
                };
                if fd.announced[slot] != truth {
                    fd.announced[slot] = truth;
                    self.send_notice(o, t, truth);
                }
            }
        }
    }

    /// Puts a notice to `observer` about `target` on its way: within the detector's delay
    /// (exactly it, unless notices are jittered), and not before the pair's last notice.
    fn send_notice(&mut self, observer: Pid, target: Pid, suspected: bool) {
        let n = self.lent().nodes.len();
        let Some(fd) = self.detector.as_mut() else {
            return;
        };
        let notice = Notice {
            observer,
            target,
            suspected,
            changed: self.now,
            restarts: self.restarts,
        };
        if self.script.is_some() {
            fd.pending.push(notice);
            return;
        }
        let delay = fd.spec.delay().as_micros();
        let delay = if self.notice_jitter {
            self.net_rng.random_range(0..=delay)
        } else {
            delay
        };
        let slot = observer.index() * n + target.index();
        let at = (self.now + Duration(delay)).max(fd.last[slot]);
        fd.last[slot] = at;
        let life = self.lives[observer.index()];
        self.push(at, Ev::notice(notice, life));
    }

    /// A notice reaches its observer: it is told the notice's verdict, if that is news.
    fn arrive(&mut self, notice: Notice) {
        let Notice {
            observer,
            target,
            suspected,
            changed,
            restarts,
        } = notice;
        let st = &self.status[observer.index()];
        if !st.up {
            return;
        }
        if st.paused {
            if let Some(fd) = self.detector.as_mut() {
                fd.deferred[observer.index()].push(notice);
            }
            return;
        }
        self.stats.events += 1;
        self.log_step(|w| Step::Notice {
            observer: w.names[observer.index()].clone(),
            about: w.names[target.index()].clone(),
            suspected,
            changed_us: changed.as_micros(),
        });
        if self.lent().nodes[observer.index()].suspects(target) != suspected {
            self.notice(observer, target, suspected, restarts);
        }
    }

    /// Whether `observer` should suspect `target` now: it is down, paused or unreachable.
    fn truly_suspect(&self, observer: Pid, target: Pid) -> bool {
        let t = &self.status[target.index()];
        !t.up || t.paused || !self.topo.connected(observer, target)
    }

    fn notice(&mut self, observer: Pid, target: Pid, suspected: bool, restarts: u64) {
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
        self.step_with(observer, restarts, |d, _, env, random, out| {
            d.on_suspect(target, suspected, env, random, out);
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

    /// An eventually perfect detector wrongly suspects a live, reachable process; a notice
    /// one delay later tells the observer the truth again.
    fn mistake(&mut self) {
        self.stats.events += 1;
        let candidates: Vec<(Pid, Pid)> = self
            .lent()
            .voters
            .iter()
            .flat_map(|&o| self.lent().voters.iter().map(move |&t| (o, t)))
            .filter(|&(o, t)| {
                o != t && self.status[o.index()].is_running() && !self.truly_suspect(o, t)
            })
            .collect();
        if let Some(fd) = self.detector.as_mut() {
            if !candidates.is_empty() {
                let (o, t) = candidates[fd.rng.random_range(0..candidates.len())];
                if !self.lent().nodes[o.index()].suspects(t) {
                    // The truth (trusted) follows one delay later.
                    self.send_notice(o, t, false);
                    self.notice(o, t, true, self.restarts);
                }
            }
        }
        self.schedule_mistake();
    }

    /// Carries out one step of a schedule (see [`World::scripted`]), or says why the
    /// simulator could not have taken it. The world is unchanged when a step is refused.
    pub fn play(&mut self, step: &Timed) -> Result<(), String> {
        let Some(limits) = self.script else {
            return Err("the world is not scripted".into());
        };
        let at = Time(step.at_us);
        if at < self.now {
            return Err(format!("time goes back: the world is at {}", self.now));
        }
        if at > self.now {
            self.overdue(at, limits)?;
            self.now = at;
        }
        let pid = |name: &str| -> Result<Pid, String> {
            self.names
                .iter()
                .position(|n| n == name)
                .map(|i| Pid(i as u32))
                .ok_or_else(|| format!("no process is named {name:?}"))
        };
        match &step.step {
            Step::Deliver(p) | Step::Lose(p) | Step::Duplicate(p) => {
                let (slot, gen) = self.flying(p, limits)?;
                match &step.step {
                    Step::Deliver(_) => {
                        if let Some(f) = self.wire.take(slot, gen) {
                            self.deliver(f);
                        }
                    }
                    Step::Lose(_) => {
                        if let Some(f) = self.wire.take(slot, gen) {
                            self.drop_msg(f.from, f.to, &f.msg, DropReason::Lost);
                        }
                    }
                    _ => self.duplicate_flying(slot),
                }
            }
            Step::Notice {
                observer,
                about,
                suspected,
                changed_us,
            } => {
                let (o, t) = (pid(observer)?, pid(about)?);
                let fd = self
                    .detector
                    .as_mut()
                    .ok_or("the algorithm has no failure detector")?;
                // The pair's first notice on its way: verdicts arrive in order.
                let k = fd
                    .pending
                    .iter()
                    .position(|n| (n.observer, n.target) == (o, t))
                    .filter(|&k| {
                        let n = &fd.pending[k];
                        n.suspected == *suspected && n.changed.as_micros() == *changed_us
                    })
                    .ok_or("no such notice is the next on its way")?;
                let notice = fd.pending.remove(k);
                self.arrive(notice);
            }
            Step::Timer { node, timer } => {
                let p = pid(node)?;
                let armed = self.lent().nodes[p.index()]
                    .timers()
                    .iter()
                    .find(|a| show(&a.timer, &self.names) == *timer)
                    .copied()
                    .ok_or_else(|| format!("{node} has no timer {timer} armed"))?;
                if armed.due != at {
                    return Err(format!("the timer is due at {}, not now", armed.due));
                }
                self.fire(p, armed.timer, armed.token);
            }
            fault => {
                let action = self.action(fault, &pid)?;
                self.apply(action);
            }
        }
        Ok(())
    }

    /// Lets time pass to `until` with nothing happening, or says what would be overdue.
    pub fn wait_until(&mut self, until: Time) -> Result<(), String> {
        let Some(limits) = self.script else {
            return Err("the world is not scripted".into());
        };
        if until > self.now {
            self.overdue(until, limits)?;
            self.now = until;
        }
        Ok(())
    }

    /// Plays a whole schedule; stops at the first step refused.
    pub fn play_all(&mut self, steps: &[Timed]) -> Result<(), Box<Refused>> {
        for (index, step) in steps.iter().enumerate() {
            self.play(step).map_err(|why| {
                Box::new(Refused {
                    index,
                    step: step.clone(),
                    why,
                })
            })?;
        }
        Ok(())
    }

    /// A schedule's fault as an action the world can take now.
    fn action(
        &self,
        step: &Step,
        pid: &dyn Fn(&str) -> Result<Pid, String>,
    ) -> Result<Action, String> {
        let st = |p: Pid| &self.status[p.index()];
        let need = |ok: bool, node: &str, what: &str| {
            if ok {
                Ok(())
            } else {
                Err(format!("{node} is not {what}"))
            }
        };
        Ok(match step {
            Step::Crash { node } => {
                let p = pid(node)?;
                need(st(p).up, node, "up")?;
                Action::Crash(p)
            }
            Step::Restart { node } => {
                let p = pid(node)?;
                need(!st(p).up, node, "down")?;
                Action::Restart(p)
            }
            Step::Pause { node } => {
                let p = pid(node)?;
                need(st(p).up && !st(p).paused, node, "running")?;
                Action::Pause(p)
            }
            Step::Resume { node } => {
                let p = pid(node)?;
                need(st(p).paused, node, "paused")?;
                Action::Resume(p)
            }
            Step::Leave { node } => {
                let p = pid(node)?;
                need(st(p).up, node, "up")?;
                Action::Leave(p)
            }
            Step::Partition { groups } => Action::Partition(
                groups
                    .iter()
                    .map(|g| g.iter().map(|n| pid(n)).collect())
                    .collect::<Result<_, _>>()?,
            ),
            Step::Block { a, b } => Action::Block(pid(a)?, pid(b)?),
            Step::Unblock { a, b } => Action::Unblock(pid(a)?, pid(b)?),
            Step::Heal => Action::Heal,
            _ => return Err("not a fault".into()),
        })
    }

    /// Before the clock moves to `at`: nothing that must happen earlier is left undone.
    fn overdue(&self, at: Time, limits: ScriptLimits) -> Result<(), String> {
        for (i, node) in self.lent().nodes.iter().enumerate() {
            if let Some(a) = node.timers().iter().find(|a| a.due < at) {
                return Err(format!(
                    "{}'s timer {} was due at {} and has not fired",
                    self.names[i],
                    show(&a.timer, &self.names),
                    a.due
                ));
            }
        }
        let late = |sent: Time, d: Duration| sent + d < at;
        if let Some(f) = self
            .wire
            .slots
            .iter()
            .filter_map(|s| s.1.as_ref())
            .find(|f| late(f.sent, limits.max_delay))
        {
            return Err(format!(
                "the message {} would be in flight longer than the maximum delay {}",
                Step::Deliver(self.packet(f)),
                limits.max_delay
            ));
        }
        if let Some(fd) = &self.detector {
            if let Some(n) = fd.pending.iter().find(|n| late(n.changed, fd.spec.delay())) {
                return Err(format!(
                    "the notice to {} about {} (change at {}) would take longer than the detector's delay {}",
                    self.names[n.observer.index()],
                    self.names[n.target.index()],
                    n.changed,
                    fd.spec.delay()
                ));
            }
        }
        Ok(())
    }

    /// The slot of the message in flight a step names; under FIFO it must be the oldest
    /// on its link.
    fn flying(&self, p: &schedule::Packet, limits: ScriptLimits) -> Result<(u32, u32), String> {
        let found = self.wire.slots.iter().enumerate().find(|(_, (_, f))| {
            f.as_ref().is_some_and(|f| {
                f.sent.as_micros() == p.sent_us
                    && self.names[f.from.index()] == p.from
                    && self.names[f.to.index()] == p.to
                    && show(&f.msg, &self.names) == p.msg
            })
        });
        let Some((slot, (gen, Some(f)))) = found else {
            return Err("no such message is in flight".into());
        };
        if limits.fifo {
            let older = self
                .wire
                .slots
                .iter()
                .filter_map(|s| s.1.as_ref())
                .find(|o| {
                    o.from == f.from && o.to == f.to && o.order < f.order && o.sent <= f.sent
                });
            if let Some(o) = older {
                return Err(format!(
                    "the link is FIFO and {} was sent before it",
                    show(&o.msg, &self.names)
                ));
            }
        }
        Ok((slot as u32, *gen))
    }

    /// The network duplicates a message in flight: the copy follows it on its link.
    fn duplicate_flying(&mut self, slot: u32) {
        let Some(f) = self.wire.get(slot) else {
            return;
        };
        let (from, to, msg, sent) = (f.from, f.to, f.msg.clone(), f.sent);
        let copies = self
            .wire
            .slots
            .iter()
            .filter_map(|s| s.1.as_ref())
            .filter(|o| o.order.0 == f.order.0)
            .map(|o| o.order.1)
            .max()
            .unwrap_or(0);
        let order = (f.order.0, copies + 1);
        self.record_duplicate(from, to, &msg);
        self.transmit(Flying {
            from,
            to,
            msg,
            sent,
            order,
        });
    }

    /// Every running voter sends the log server its state, over the network.
    fn report_tick(&mut self) {
        let Some((server, interval)) = self.log.as_ref().map(|l| (l.pid, l.interval)) else {
            return;
        };
        self.stats.events += 1;
        for i in 0..self.lent().voters.len() {
            let p = self.lent().voters[i];
            if !self.status[p.index()].is_running() {
                continue;
            }
            let view = self.status[p.index()].view;
            self.stats.sent += 1;
            self.stats.by_kind.add("Report");
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
            let report = Report::of(&view);
            self.push(at, Ev::Report(Box::new((p, report))));
        }
        let next = self.now + interval;
        self.push(next, Ev::ReportTick);
    }

    fn report(&mut self, from: Pid, report: Report) {
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
        let now = self.now;
        if let Some(log) = self.log.as_mut() {
            log.server.on_report(from, report, now);
        }
    }

    fn observe(&mut self) {
        self.monitor
            .observe(self.now, &self.status, &self.topo, &self.names);
        self.observed = true;
    }

    /// Hashes one event and, when recording, keeps its readable form (or streams it).
    #[inline]
    fn record(
        &mut self,
        tag: u8,
        node: Pid,
        what: impl FnOnce(&[String]) -> What,
        fields: impl FnOnce(&mut TraceHasher),
    ) {
        if self.hashing {
            self.hasher.event(self.now, tag, node);
            fields(&mut self.hasher);
        }
        if self.trace.is_some() || self.sink.is_some() {
            self.keep(node, what);
        }
    }

    /// Keeps or streams the readable form of an event (apart from `record`, which runs
    /// on every event, traced or not).
    #[inline(never)]
    fn keep(&mut self, node: Pid, what: impl FnOnce(&[String]) -> What) {
        let event = TraceEvent {
            time_us: self.now.as_micros(),
            node: self
                .names
                .get(node.index())
                .cloned()
                .unwrap_or_else(|| "network".into()),
            what: what(&self.names),
        };
        match (&mut self.trace, self.sink) {
            (_, Some(sink)) => sink(&event),
            (Some(trace), None) => trace.push(event),
            (None, None) => {}
        }
    }
}

#[cfg(test)]
mod sizes {
    /// Every event is moved into the queue's slab and out again: it stays in 32 bytes
    /// (a larger kind goes in a box).
    #[test]
    fn an_event_fits_in_32_bytes() {
        use conclave_algorithms::bully::BullyTimer;
        assert!(std::mem::size_of::<super::Ev<BullyTimer>>() <= 32);
    }
}
