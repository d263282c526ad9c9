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
//! - `Bounded { max_delay }`: exactly the simulator's runs in which every message takes any
//!   delay in `0..=max_delay` (and every failure-detector notice any delay up to the
//!   detector's), delays adding up along causal chains. Time is digitized: it moves in steps
//!   of the scenario's quantum (the gcd of its time constants, [`Scenario::quantum`]) by a
//!   [`Choice::Tick`], which may not pass a timer's due time or a message's deadline;
//!   timers fire exactly when due. While anything is in flight or a fault may strike, time
//!   moves one step, else straight to the next timer. Every path is a simulator run: its
//!   steps and their times ([`crate::schedule`]) replay in the simulator itself
//!   ([`simulate`]), and the differential tests follow simulator runs through the graph
//!   ([`follow`]).
//!
//! Under `Bounded`, time stops at the horizon (`run_for`) and timers due after it never
//! fire, which keeps periodic timers from making the space infinite; algorithms may read
//! `ctx.now()` as they do in the simulator. Under `Asynchronous` time means nothing: the clock stays at 0, a timer is only
//! armed or not, and periodic timers close cycles in the state graph instead.
//! Random draws (`ctx.random_between`) take their lowest value. All nodes start at time 0.
//!
//! Failure detectors (for algorithms that assume one): a perfect detector, with the
//! simulator's rules. A change (a crash, restart, split or heal) that makes the truth differ
//! from the last verdict announced to a running node puts a notice with the new verdict in
//! flight to it, within the detector's delay under `Bounded`; one process's verdicts reach
//! an observer in order. Notices are not messages: network faults never touch them.
//!
//! Visited states are kept as 64-bit fingerprints (xxh3 over the state's `Hash`); a
//! collision would merge two states, with odds of about n²/2⁶⁵ for n states. Breadth-first
//! search (the default) makes every counterexample a shortest one; the search can run on
//! several threads level by level, merging each level in a fixed order, so the unique-state
//! count and every verdict are the same for any number of jobs.
//!
//! Memory: of each state, the search keeps its fingerprint in the visited table (8 bytes, 12
//! with the state's id when edges are kept for liveness, message bounds or `--graph`; see
//! `visited`) and its parent and choice (about 1 byte; see `lineage`). Only the frontier is
//! kept whole: packed rows of interned ids (see `packed`), each stored as its difference
//! from the state before it (see `frontier`). Each job also remembers handler outcomes (a
//! node state meeting an input at a time at a process), which the transitions of a model
//! meet again and again (see `model::MemoKey`). Liveness and message bounds also keep
//! edges: 12 bytes each (ends and messages sent, no choice), in chunks (see `chunks`).
//!
//! Liveness (`EventualLeader(within)`): from every reachable state whose time is at least
//! `within` before the horizon, a state where every component agrees on one running leader
//! must be reachable without further faults. This is checked over the whole state graph,
//! cycles included, by backward reachability.

mod chunks;
mod frontier;
mod lineage;
mod messages;
mod model;
mod packed;
mod visited;

pub use messages::{Bounds, ElectionMessages, Schedule};
pub use model::{Model, ReplayEnd, State, MAX_DETECTED};

use crate::scenario::{Property, Scenario, Timing};
use crate::schedule::Timed;
use crate::trace::TraceEvent;
use chunks::Chunks;
use conclave_algorithms::Algorithm;
use frontier::Packs;
use lineage::Lineage;
use model::Checked;
use packed::{settle, settle_growth, Scratch, Tables, Work};
use serde::{Deserialize, Serialize};
use std::ops::Range;
use std::time::Instant;
use visited::Visited;

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
    /// `Bounded` only: let time pass, by one quantum, or to the next timer when nothing
    /// else can happen before it.
    Tick,
}

impl Choice {
    fn is_fault(self) -> bool {
        !matches!(self, Choice::Deliver(_) | Choice::Timer(_) | Choice::Tick)
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
    /// Where `max_states` came from, as the report names it ("--max-states" if empty).
    pub max_states_from: &'static str,
    /// Worker threads for breadth-first search (1 if 0).
    pub jobs: usize,
    /// Depth-first instead of breadth-first.
    pub dfs: bool,
    /// Stop (incomplete) when the process's resident memory exceeds this many bytes.
    pub max_memory: Option<u64>,
    /// Keep every edge, for `--graph`.
    pub keep_graph: bool,
    /// Find the fewest and most messages an election takes over every schedule (keeps
    /// the edges out of unsettled states).
    pub message_bounds: bool,
    /// Keep the fingerprints of the visited states in the report.
    pub keep_visited: bool,
    /// Called now and then with the search's progress.
    pub progress: Option<ProgressFn>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Progress {
    /// `"search"`, then, over the whole graph once the search is done, `"liveness"` and
    /// `"message bounds"` (each reported as it starts, when it is computed).
    pub phase: &'static str,
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
    /// The readable trace, as it was when the file was saved (`conclave replay` recomputes
    /// it from the choices and compares).
    #[serde(default)]
    pub trace: Vec<TraceEvent>,
    /// `Bounded` timing: the virtual time (µs) of the violating state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_us: Option<u64>,
    /// `Bounded` timing: the path as a timed schedule (every delivery, timer, notice and
    /// fault with its time, in order), which `conclave replay` plays in the simulator.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schedule: Vec<Timed>,
}

#[derive(Clone, Debug, Serialize)]
pub struct PropertyVerdict {
    pub name: String,
    /// `true` held, `false` violated, `null` not decided (see `undecided`).
    pub holds: Option<bool>,
    /// "holds", "violated", or "reported" when the scenario expects nothing of it.
    pub expected: &'static str,
    /// The verdict is what the scenario expected.
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counterexample: Option<Counterexample>,
    /// Why `holds` is `null`: the search was cut short, or (liveness) the check over the
    /// whole graph would have passed the memory limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub undecided: Option<String>,
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
    /// Fewest and most messages per election over every schedule (complete searches with
    /// `message_bounds` only).
    pub election_messages: Option<ElectionMessages>,
    /// Why the message bounds were not given, when the search was complete and they were
    /// asked for (their need would have passed the memory limit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub election_messages_error: Option<String>,
    /// The fingerprints of every state visited, when asked for
    /// ([`ExploreOptions::keep_visited`]): to check that other runs stay in the graph.
    #[serde(skip)]
    pub visited: Option<std::sync::Arc<VisitedStates>>,
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

/// What the search needs to remember of each state.
struct Search {
    visited: Visited,
    /// Per state: its parent and the choice that led to it.
    lineage: Lineage,
    /// The edges kept, in the order they were found: for liveness the fault-free ones, for
    /// message bounds those that leave or enter an unsettled state.
    edges: Chunks<Edge>,
    /// Liveness is checked (fault-free edges are kept).
    liveness: bool,
    /// Message bounds are found (edges that touch an unsettled state are kept).
    message_bounds: bool,
    /// Messages sent as the processes start.
    root_sent: u32,
    /// Per state: settled (kept for liveness or message bounds), and its time (liveness).
    settled: Vec<bool>,
    time: Vec<u64>,
    graph: Option<StateGraph>,
    first_violation: [Option<u32>; 2],
    transitions: u64,
    max_depth: u32,
    cut_short: Option<String>,
    /// Words of the states admitted since the resident size was last looked at.
    words_since_look: usize,
}

impl Search {
    /// The number of states found.
    fn states(&self) -> u64 {
        self.lineage.len() as u64
    }

    /// Tells `opts.progress`, if any, where the search stands.
    fn report(
        &self,
        opts: &ExploreOptions,
        phase: &'static str,
        depth: u32,
        queue: usize,
        start: Instant,
    ) {
        if let Some(p) = &opts.progress {
            p(&Progress {
                phase,
                unique_states: self.states(),
                transitions: self.transitions,
                depth,
                queue: queue as u64,
                elapsed_ms: start.elapsed().as_millis() as u64,
            });
        }
    }

    /// Records a new state, reached from `parent` by its choice number `index`; returns its
    /// id.
    #[inline(always)]
    fn admit(&mut self, parent: u32, index: u32, c: &Checked) -> u32 {
        let id = self.lineage.len() as u32;
        self.lineage.push(parent, index);
        if self.liveness || self.message_bounds {
            reserve(&mut self.settled, 1);
            self.settled.push(c.settled);
        }
        if self.liveness {
            reserve(&mut self.time, 1);
            self.time.push(c.now);
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

    /// What admitting one more state, reached from `parent` by its choice number `index`,
    /// would allocate at once in what the search keeps of every state.
    #[inline(always)]
    fn need(&self, parent: u32, index: u32) -> Need {
        let mut need = Need::default();
        need.add(self.visited.growth(), "the visited table");
        need.add(self.lineage.growth(parent, index), "the states' parents");
        if self.liveness || self.message_bounds {
            need.add(growth(&self.settled, 1), "the states' marks");
        }
        if self.liveness {
            need.add(growth(&self.time, 1), "the states' times");
        }
        need.add(self.edges.growth(), "the edges kept");
        if let Some(g) = &self.graph {
            need.add(doubling(&g.edges), "the state graph");
        }
        need
    }

    #[inline(always)]
    fn edge(&mut self, from: u32, to: u32, choice: Choice, sent: u32) {
        self.transitions += 1;
        let fault = choice.is_fault();
        if (self.liveness && !fault)
            || (self.message_bounds && !(self.settled[from as usize] && self.settled[to as usize]))
        {
            self.edges.push(Edge::new(from, to, sent, fault));
        }
        if let Some(g) = &mut self.graph {
            g.edges.push((from, to, choice));
        }
    }
}

/// The states a search visited, by fingerprint.
pub struct VisitedStates(Visited);

impl VisitedStates {
    /// Whether the search visited the state with this fingerprint.
    pub fn contains(&self, fingerprint: u64) -> bool {
        self.0.get(fingerprint).is_some()
    }
}

impl std::fmt::Debug for VisitedStates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VisitedStates")
    }
}

/// One state of a followed run (see [`follow`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Followed {
    pub fingerprint: u64,
    /// The explorer's clock (µs).
    pub now_us: u64,
    /// It violates `AtMostOneLeader`.
    pub two_leaders: bool,
}

/// Follows a schedule of timed steps, such as a simulator run logs
/// ([`crate::world::WorldConfig::log_steps`]), through the explorer's model under
/// `Bounded` timing, with each time rounded up to the clock's step (the digitization that
/// keeps every timer and delay constraint of a run): every state the run passes through,
/// time steps included, or the first step the model has no choice for. A run whose states
/// are all in an explored graph is one of the schedules the explorer covered.
pub fn follow(scenario: &Scenario, steps: &[Timed]) -> Result<Vec<Followed>, String> {
    crate::with_algorithm!(&scenario.algorithm, |A, p| {
        Model::<A>::new(scenario, p.clone()).follow(steps)
    })
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

/// What the simulator did with a schedule (see [`simulate`]).
#[derive(Clone, Debug)]
pub struct Simulated {
    pub trace: Vec<TraceEvent>,
    /// The first violation of `AtMostOneLeader`, with its time (µs) and why.
    pub at_most_one: Option<(u64, String)>,
    /// The first violation of `OneLeaderPerComponent`.
    pub per_component: Option<(u64, String)>,
    /// At the end, every component agrees on one running leader.
    pub settled: bool,
    /// The virtual time at the end (µs).
    pub now_us: u64,
    /// Messages the algorithm sent.
    pub sent: u64,
}

/// Plays a `Bounded` schedule (a counterexample's, or a message bound's) in the simulator
/// itself, not through the explorer's transition function: the scenario's cluster, every
/// process started at time 0, and the steps with their times, then time passing to
/// `until_us` if given. The simulator refuses a step it could not have taken, and time
/// passing over something that was due (see [`crate::schedule`]).
pub fn simulate(
    scenario: &Scenario,
    steps: &[Timed],
    until_us: Option<u64>,
) -> Result<Simulated, String> {
    let Some(Timing::Bounded { max_delay }) = scenario.explore.as_ref().map(|e| e.timing.clone())
    else {
        return Err(
            "the scenario's explore timing is not Bounded: its schedules have no times".into(),
        );
    };
    let limits = crate::world::ScriptLimits {
        max_delay,
        fifo: scenario.network.fifo,
    };
    crate::with_algorithm!(&scenario.algorithm, |A, p| {
        let cluster = crate::run::cluster_of(scenario, scenario.seeds[0]);
        let mut world = crate::world::World::<A>::scripted(cluster, p.clone(), limits);
        world.play_all(steps).map_err(|e| e.to_string())?;
        if let Some(until) = until_us {
            world
                .wait_until(conclave_algorithms::Time(until))
                .map_err(|why| {
                    format!(
                        "after the last step, until t={}: {why}",
                        conclave_algorithms::Time(until)
                    )
                })?;
        }
        let monitor = world.monitor();
        let first = |v: &Option<(conclave_algorithms::Time, String)>| {
            v.as_ref().map(|(t, why)| (t.as_micros(), why.clone()))
        };
        Ok(Simulated {
            at_most_one: first(&monitor.at_most_one),
            per_component: first(&monitor.per_component),
            settled: crate::properties::agreement_holds(world.status(), world.topology()),
            now_us: world.now().as_micros(),
            sent: world.stats().sent,
            trace: world.take_trace().unwrap_or_default(),
        })
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
    explore_sized(model, scenario, file, opts, SIZES)
}

fn explore_sized<A>(
    model: Model<A>,
    scenario: &Scenario,
    file: &str,
    opts: &ExploreOptions,
    sizes: Sizes,
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
        // State ids are needed only to keep edges between states.
        visited: Visited::new(liveness.is_some() || opts.message_bounds || opts.keep_graph),
        lineage: if opts.dfs {
            Lineage::depth_first()
        } else {
            Lineage::default()
        },
        edges: Chunks::default(),
        liveness: liveness.is_some(),
        message_bounds: opts.message_bounds,
        root_sent: 0,
        settled: Vec::new(),
        time: Vec::new(),
        graph: opts.keep_graph.then(StateGraph::default),
        first_violation: [None, None],
        transitions: 0,
        max_depth: 0,
        cut_short: None,
        words_since_look: 0,
    };
    let mut tables = Tables::new();
    let mut root = Vec::new();
    match start_state(&model, &mut tables, &mut root, opts.max_memory) {
        Err(why) => search.cut_short = Some(why),
        Ok((fp, checked, sent)) => {
            search.root_sent = sent;
            search.visited.insert(fp, 0);
            search.admit(0, 0, &checked);
            if opts.dfs {
                dfs(&model, root, &mut tables, &mut search, opts, start);
            } else {
                bfs(&model, root, &mut tables, (&mut search, opts, sizes), start);
            }
        }
    }
    if let Some((after, q)) = model.off_grid() {
        // A handler computed a duration the scenario's constants do not divide: the search
        // rounded it up to the clock's step, so it did not follow that timer exactly.
        search.cut_short.get_or_insert(format!(
            "a timer was set for {}, which the clock's step {} (the common step of the scenario's times) does not divide: its exact time was not explored",
            conclave_algorithms::Duration(after),
            conclave_algorithms::Duration(q)
        ));
    }
    let complete = search.cut_short.is_none();
    finish(
        &model, scenario, file, opts, search, complete, liveness, start,
    )
}

/// Starts every process into `root`, packed, its parts in `tables`; returns its
/// fingerprint, its check and the messages sent. Thousands of processes can start with
/// millions of messages in flight: the memory is looked at before each process starts, and
/// before the start state is packed, and the start stops, with the reason, rather than pass
/// `max_memory`.
fn start_state<A: Algorithm>(
    model: &Model<A>,
    tables: &mut Tables<A>,
    root: &mut Vec<u32>,
    max_memory: Option<u64>,
) -> Result<(u64, Checked, u32), String> {
    // Dropped on return: its overlay is as large as the start state.
    let mut scratch = Scratch::new();
    scratch.blank(model.len());
    let mut work = Work {
        tables,
        s: &mut scratch,
    };
    // Before each process is made or starts: what it may add (a node state, and a message
    // to every process) must fit, when that is a large allocation.
    let n = model.len();
    let mut why = None;
    let mut go = |w: &Work<'_, A>| {
        let need = w.s.overlay_growth(n);
        why = max_memory
            .filter(|_| need >= LARGE)
            .and_then(|max| past_limit(max, need, "the next process's start"));
        why.is_none()
    };
    let Some(sent) = model.start_while(&mut work, &mut None, &mut go) else {
        let why = why.unwrap_or_default();
        return Err(format!("{why} (starting the {n} processes)"));
    };
    // The state packed, and its parts copied from the overlay to the shared tables.
    let need = 4 * work.s.packed_len() as u64 + tables.growth(work.s.overlay_sizes());
    if let Some(why) = max_memory
        .filter(|_| need >= LARGE)
        .and_then(|max| past_limit(max, need, "the start state"))
    {
        return Err(why);
    }
    work.s.save(root);
    let found = (work.fingerprint(), model.check(&work), sent);
    settle(root, model.len(), tables, &mut scratch, [0; 3]);
    Ok(found)
}

/// One transition kept for liveness or message bounds: its ends, the messages it sent, and
/// whether it was a fault (in the top bit of `sent`). The choice is not kept: a bound's
/// schedule finds it again by stepping (see `messages`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Edge {
    pub from: u32,
    pub to: u32,
    sent: u32,
}

const FAULT: u32 = 1 << 31;

impl Edge {
    pub fn new(from: u32, to: u32, sent: u32, fault: bool) -> Self {
        // One handler sends a few messages, not two billion.
        debug_assert!(sent < FAULT);
        let sent = sent.min(FAULT - 1) | if fault { FAULT } else { 0 };
        Edge { from, to, sent }
    }
    pub fn sent(&self) -> u32 {
        self.sent & !FAULT
    }
    pub fn fault(&self) -> bool {
        self.sent & FAULT != 0
    }
}

/// Frontier states each job expands before a merge (with one job, a small batch keeps the
/// successors waiting for the merge few). Multiples of the frontier's [`frontier::KEY`], so
/// that each share starts at a state stored whole.
const CHUNK: usize = 1024;
const CHUNK_ONE_JOB: usize = frontier::KEY;
const _: () = assert!(CHUNK.is_multiple_of(frontier::KEY));

/// Grows `v` for `extra` more items by a quarter at a time, not by doubling: what a search
/// keeps growing, it keeps.
pub(crate) fn reserve<T>(v: &mut Vec<T>, extra: usize) {
    if v.len() + extra > v.capacity() {
        v.reserve_exact(extra.max(v.capacity() / 4));
    }
}

/// The bytes [`reserve`] of `extra` would allocate (the whole new buffer: the allocator may
/// copy the old one into it); 0 if they fit.
#[inline]
pub(crate) fn growth<T>(v: &Vec<T>, extra: usize) -> u64 {
    if v.len() + extra <= v.capacity() {
        return 0;
    }
    ((v.len() + extra.max(v.capacity() / 4)) * std::mem::size_of::<T>()) as u64
}

/// The bytes `extra` more items would allocate in a `Vec` that grows as `Vec::push` and
/// `extend` grow it (doubling); 0 if they fit.
#[inline]
pub(crate) fn vec_growth<T>(v: &Vec<T>, extra: usize) -> u64 {
    if v.len() + extra <= v.capacity() {
        return 0;
    }
    let cap = (v.len() + extra).max(2 * v.capacity()).max(4);
    (cap * std::mem::size_of::<T>()) as u64
}

/// What one more `push` would allocate in a `Vec` that doubles.
fn doubling<T>(v: &Vec<T>) -> u64 {
    vec_growth(v, 1)
}

/// Allocations at least this large are checked against the memory limit before they are
/// made (reading the resident size costs a system call); smaller ones are covered by the
/// looks now and then (see [`over_budget`]).
pub(crate) const LARGE: u64 = 1 << 20;

/// What the search is about to allocate: the bytes, and the part that needs the most.
#[derive(Clone, Copy, Default)]
struct Need {
    bytes: u64,
    most: u64,
    what: &'static str,
}

impl Need {
    #[inline]
    fn add(&mut self, bytes: u64, what: &'static str) {
        self.bytes += bytes;
        if bytes > self.most {
            self.most = bytes;
            self.what = what;
        }
    }
}

/// Why allocating `need` more bytes for `what` would take the process past `max` bytes, if
/// it would.
fn past_limit(max: u64, need: u64, what: &str) -> Option<String> {
    let holds = resident_bytes()?;
    (holds.saturating_add(need) > max).then(|| {
        format!(
            "memory limit of {} MiB reached: the process holds {} MiB and {what} would take {} MiB more",
            max >> 20,
            holds >> 20,
            need.div_ceil(1 << 20)
        )
    })
}

/// Why `v` may not grow (as a `Vec` does) for `extra` more items: the growth is large and
/// would take the process past `max`.
fn no_room<T>(v: &Vec<T>, extra: usize, max: Option<u64>, what: &str) -> Option<String> {
    let need = vec_growth(v, extra);
    if need < LARGE {
        return None;
    }
    past_limit(max?, need, what)
}

/// One successor, as a job found it.
struct Succ {
    choice: Choice,
    /// The choice's index among its state's choices.
    index: u32,
    fp: u64,
    sent: u32,
    found: Found,
}

enum Found {
    /// Visited before the chunk: the state's id.
    Known(u32),
    /// Not visited when the job looked: where its packed words are, and its check.
    New(u32, u32, Checked),
}

/// What one job found in its share of a chunk (buffers kept from chunk to chunk).
#[derive(Default)]
struct Expanded {
    /// Per parent: how many successors.
    counts: Vec<u32>,
    succs: Vec<Succ>,
    words: Vec<u32>,
    /// Where the job stopped before the end of its share: the parent's index in the level
    /// and the index of the first of its choices not expanded.
    stopped: Option<(usize, u32)>,
    /// Why it stopped, if for the memory limit (the search then stops there).
    memory: Option<String>,
}

impl Expanded {
    /// The bytes of successors found.
    fn bytes(&self) -> usize {
        4 * self.words.len() + std::mem::size_of::<Succ>() * self.succs.len()
    }
}

/// How much a job expands before it hands over.
#[derive(Clone, Copy)]
struct Sizes {
    /// Words of packed successors a job holds before it looks them up: all of a parent's,
    /// unless they are this many (thousands of successors, or large states).
    batch_words: usize,
    /// Bytes of successors a job hands to one merge: past this it stops after the successor
    /// it is at, and the next chunk goes on from there. A level of large states, or of
    /// states with thousands of successors, is expanded a part at a time; the merge, in the
    /// level's order whatever the parts, finds the same states.
    share_bytes: usize,
}

const SIZES: Sizes = Sizes {
    batch_words: 1 << 18,
    share_bytes: 8 << 20,
};

/// A job's reusable buffers.
#[derive(Default)]
struct JobBuffers {
    out: Expanded,
    choices: Vec<Choice>,
    /// Each successor of one parent, packed: (choice, its index, fingerprint, sent, start,
    /// end in `tmp`).
    made: Vec<(Choice, u32, u64, u32, u32, u32)>,
    tmp: Vec<u32>,
    /// The parent being expanded, decoded.
    parent: Vec<u32>,
}

/// Expands the states `range` of `level` with one job's scratch, against the shared
/// tables, into `buf.out`: the first from its choice number `resume` on. Stops early (see
/// [`Expanded::stopped`]) past `sizes.share_bytes`, or before a large allocation that
/// would pass `max_memory`.
fn expand<A: Algorithm>(
    model: &Model<A>,
    tables: &Tables<A>,
    scratch: &mut Scratch<A>,
    visited: &Visited,
    (level, range, resume): (&Packs, Range<usize>, u32),
    (max_memory, sizes): (Option<u64>, Sizes),
    buf: &mut JobBuffers,
) {
    let n = model.len();
    let JobBuffers {
        out,
        choices,
        made,
        tmp,
        parent,
    } = buf;
    out.counts.clear();
    out.succs.clear();
    out.words.clear();
    out.stopped = None;
    out.memory = None;
    let mut work = Work { tables, s: scratch };
    let mut reader = level.read_from(range.start, parent);
    for k in range.clone() {
        reader.read(parent);
        let words = &parent[..];
        work.s.load(words, n);
        model.choices(&work, choices);
        let first = if k == range.start { resume as usize } else { 0 };
        let before = out.succs.len();
        tmp.clear();
        made.clear();
        // Where this parent stops: the first choice not expanded, and why if for memory.
        let mut stop: Option<(u32, Option<String>)> = None;
        for (index, &c) in choices.iter().enumerate().skip(first) {
            // Listing the choices left the parent loaded for the first one.
            if index > first {
                work.s.load(words, n);
            }
            let Some(sent) = model.step(&mut work, c, &mut None) else {
                continue;
            };
            let fp = work.fingerprint();
            let len = work.s.packed_len();
            if let Some(why) = no_room(tmp, len, max_memory, "a state's successors") {
                stop = Some((index as u32, Some(why)));
                break;
            }
            let start = tmp.len() as u32;
            work.s.save(tmp);
            made.push((c, index as u32, fp, sent, start, tmp.len() as u32));
            if tmp.len() >= sizes.batch_words {
                stop = look_up(model, &mut work, visited, made, tmp, out, max_memory);
                tmp.clear();
                made.clear();
                // A batch is large: what the steps allocated besides (the parts they made)
                // is looked at too.
                if stop.is_none() {
                    stop = max_memory
                        .and_then(memory_reached)
                        .map(|why| (index as u32 + 1, Some(why)));
                }
                if stop.is_none() && out.bytes() >= sizes.share_bytes && index + 1 < choices.len() {
                    stop = Some((index as u32 + 1, None));
                }
                if stop.is_some() {
                    break;
                }
            }
        }
        // All the lookups at once, after the steps: independent cache misses overlap. Those
        // left are before any stop, which a stop among them comes before.
        if let Some(earlier) = look_up(model, &mut work, visited, made, tmp, out, max_memory) {
            stop = Some(earlier);
        }
        out.counts.push((out.succs.len() - before) as u32);
        if let Some((at, why)) = stop {
            out.stopped = Some((k, at));
            out.memory = why;
            return;
        }
        if out.bytes() >= sizes.share_bytes && k + 1 < range.end {
            out.stopped = Some((k + 1, 0));
            return;
        }
    }
}

/// Looks up the successors `made` (packed in `tmp`) in the visited set, in order, and adds
/// them to `out`, the new ones with their words and check. Adds none if that could be a
/// large allocation that would pass `max_memory` (all of them new): returns the choice
/// number of the first, and why.
#[inline]
fn look_up<A: Algorithm>(
    model: &Model<A>,
    work: &mut Work<'_, A>,
    visited: &Visited,
    made: &[(Choice, u32, u64, u32, u32, u32)],
    tmp: &[u32],
    out: &mut Expanded,
    max_memory: Option<u64>,
) -> Option<(u32, Option<String>)> {
    let need = vec_growth(&out.succs, made.len()) + vec_growth(&out.words, tmp.len());
    if need >= LARGE {
        let what = "the successors of the frontier's states";
        if let Some(why) = max_memory.and_then(|max| past_limit(max, need, what)) {
            return made.first().map(|m| (m.1, Some(why)));
        }
    }
    for &(choice, index, fp, sent, a, b) in made {
        let found = match visited.get(fp) {
            Some(id) => Found::Known(id),
            None => {
                let packed = &tmp[a as usize..b as usize];
                work.s.load(packed, model.len());
                let start = out.words.len() as u32;
                out.words.extend_from_slice(packed);
                Found::New(start, out.words.len() as u32, model.check(work))
            }
        };
        out.succs.push(Succ {
            choice,
            index,
            fp,
            sent,
            found,
        });
    }
    None
}

/// The resident memory of this process in bytes (Linux; `None` elsewhere).
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Why the search must stop, if the process holds more than `max` bytes.
fn memory_reached(max: u64) -> Option<String> {
    resident_bytes()
        .filter(|&b| b > max)
        .map(|_| format!("memory limit of {} MiB reached", max >> 20))
}

/// Words of states admitted between two looks at the resident size, at most: small
/// allocations (and the allocator's huge pages under them) add up between the large ones,
/// faster with large states than 16,384 states would say.
const LOOK_WORDS: usize = 1 << 20;

/// Whether the search must stop before admitting a state of `words` words: `--max-states`
/// reached, or the memory limit, looked at before an allocation of [`LARGE`] or more
/// (`need`), every 16,384 states, and every [`LOOK_WORDS`] words admitted.
fn over_budget(search: &mut Search, opts: &ExploreOptions, need: Need, words: usize) -> bool {
    if let Some(max) = opts.max_states {
        if search.states() >= max {
            let from = match opts.max_states_from {
                "" => "--max-states",
                from => from,
            };
            search.cut_short = Some(format!("{from} {max} reached"));
            return true;
        }
    }
    if let Some(max) = opts.max_memory {
        search.words_since_look += words;
        // Reading /proc costs a system call: only before a large allocation, or now and then.
        let why = if need.bytes >= LARGE {
            past_limit(max, need.bytes, need.what)
        } else if search.states().is_multiple_of(16384) || search.words_since_look >= LOOK_WORDS {
            memory_reached(max)
        } else {
            return false;
        };
        search.words_since_look = 0;
        if why.is_some() {
            search.cut_short = why;
            return true;
        }
    }
    false
}

/// The choices enabled in a packed state, into `out`.
fn choices_of<A: Algorithm>(
    model: &Model<A>,
    tables: &Tables<A>,
    scratch: &mut Scratch<A>,
    words: &[u32],
    out: &mut Vec<Choice>,
) {
    scratch.load(words, model.len());
    model.choices(&Work { tables, s: scratch }, out);
}

fn bfs<A>(
    model: &Model<A>,
    root: Vec<u32>,
    tables: &mut Tables<A>,
    (search, opts, sizes): (&mut Search, &ExploreOptions, Sizes),
    start: Instant,
) where
    A: Algorithm + Send + Sync,
    A::Msg: Send + Sync,
    A::Timer: Send + Sync,
    A::Params: Sync,
{
    let jobs = opts.jobs.max(1);
    let n = model.len();
    let max_memory = opts.max_memory;
    let mut scratches: Vec<Scratch<A>> = (0..jobs).map(|_| Scratch::new()).collect();
    let mut buffers: Vec<JobBuffers> = (0..jobs).map(|_| JobBuffers::default()).collect();
    let mut frontier = Packs::default();
    frontier.push(0, &root);
    drop(root);
    // A new state's words, its ids moved to the shared tables before it is encoded.
    let mut row = Vec::new();
    let mut depth = 0u32;
    while frontier.len() > 0 {
        if opts.max_depth.is_some_and(|d| depth >= d) {
            let s = &mut scratches[0];
            let mut words = Vec::new();
            let mut choices = Vec::new();
            let mut reader = frontier.read_from(0, &mut words);
            if (0..frontier.len()).any(|_| {
                reader.read(&mut words);
                choices_of(model, tables, s, &words, &mut choices);
                !choices.is_empty()
            }) {
                search.cut_short = Some(format!("--max-depth {depth} reached"));
            }
            break;
        }
        // Expand and merge the level a chunk at a time; the merge follows the frontier's
        // order, whatever the number of jobs.
        // A fresh buffer per level: reusing the last one would keep two levels' peaks.
        let mut next = Packs::default();
        let chunk = if jobs == 1 {
            CHUNK_ONE_JOB
        } else {
            CHUNK * jobs
        };
        // Where the next chunk starts: a state of the level, and its first choice not
        // expanded (a job may stop within a state's successors).
        let (mut lo, mut resume) = (0usize, 0u32);
        // A job stopped early in this level (its states are large, or have thousands of
        // successors): the jobs after it would have worked in vain, so the rest of the
        // level is expanded on one.
        let mut cramped = false;
        'level: while lo < frontier.len() {
            let hi = (lo + chunk).min(frontier.len());
            let base = tables.sizes();
            let shared: &Tables<A> = tables;
            let visited = &search.visited;
            let frontier = &frontier;
            let used = if jobs == 1 || hi - lo < 64 || cramped {
                expand(
                    model,
                    shared,
                    &mut scratches[0],
                    visited,
                    (frontier, lo..hi, resume),
                    (max_memory, sizes),
                    &mut buffers[0],
                );
                1
            } else {
                // Each job's share starts where a state is stored whole.
                let size = (hi - lo).div_ceil(jobs).next_multiple_of(frontier::KEY);
                std::thread::scope(|scope| {
                    for (j, (s, buf)) in scratches.iter_mut().zip(&mut buffers).enumerate() {
                        let (a, b) = ((lo + j * size).min(hi), (lo + (j + 1) * size).min(hi));
                        let share = (frontier, a..b, if j == 0 { resume } else { 0 });
                        let limits = (max_memory, sizes);
                        scope.spawn(move || expand(model, shared, s, visited, share, limits, buf));
                    }
                });
                jobs
            };
            let mut k = lo;
            // Where the first job that stopped early stopped: what comes after it is not
            // merged (the next chunk starts there).
            let mut stopped: Option<(usize, u32, Option<String>)> = None;
            for (buf, scratch) in buffers[..used].iter().zip(&mut scratches) {
                let part = &buf.out;
                if stopped.is_some() {
                    scratch.reset_overlay();
                    continue;
                }
                let mut succs = part.succs.iter();
                for &count in &part.counts {
                    let parent = frontier.id(k);
                    k += 1;
                    for s in succs.by_ref().take(count as usize) {
                        let (a, b, checked) = match s.found {
                            Found::Known(id) => {
                                search.edge(parent, id, s.choice, s.sent);
                                continue;
                            }
                            Found::New(a, b, checked) => (a, b, checked),
                        };
                        // A sibling earlier in the chunk may have found it since.
                        if let Some(id) = search.visited.get(s.fp) {
                            search.edge(parent, id, s.choice, s.sent);
                            continue;
                        }
                        let words = &part.words[a as usize..b as usize];
                        let mut need = search.need(parent, s.index);
                        need.add(next.growth(words.len()), "the next level of the frontier");
                        need.add(
                            settle_growth(words, n, tables, scratch, base),
                            "the interned parts of states",
                        );
                        if over_budget(search, opts, need, words.len()) {
                            break 'level;
                        }
                        // Only new states are checked: most successors were seen before.
                        let id = search.admit(parent, s.index, &checked);
                        search.visited.insert(s.fp, id);
                        search.edge(parent, id, s.choice, s.sent);
                        row.clear();
                        row.extend_from_slice(words);
                        settle(&mut row, n, tables, scratch, base);
                        next.push(id, &row);
                    }
                }
                scratch.reset_overlay();
                if let Some((at, choice)) = part.stopped {
                    stopped = Some((at, choice, part.memory.clone()));
                }
            }
            match stopped {
                None => (lo, resume) = (hi, 0),
                Some((_, _, Some(why))) => {
                    search.cut_short = Some(why);
                    break 'level;
                }
                Some((at, choice, None)) => {
                    (lo, resume) = (at, choice);
                    cramped = true;
                }
            }
        }
        if next.len() > 0 {
            depth += 1;
            search.max_depth = depth;
        }
        search.report(opts, "search", depth, next.len(), start);
        if search.cut_short.is_some() {
            break;
        }
        frontier = next;
    }
}

/// Depth-first search. The stack keeps the state on top whole, with its choices; under it,
/// each state keeps its id, its next choice, and how to turn the state above it back into
/// it (the words that differ, as a frontier level stores a state; see `frontier`): about
/// 30 bytes a level where whole states and their choices took hundreds.
fn dfs<A: Algorithm>(
    model: &Model<A>,
    root: Vec<u32>,
    tables: &mut Tables<A>,
    search: &mut Search,
    opts: &ExploreOptions,
    start: Instant,
) {
    let n = model.len();
    let mut scratch = Scratch::new();
    // The state on top of the stack and its choices.
    let mut cur = root;
    let mut todo = Vec::new();
    choices_of(model, tables, &mut scratch, &cur, &mut todo);
    /// A state on the stack: its id, the index of its next choice, and where the record
    /// that turns the state above it back into it starts in `undo`.
    type Frame = (u32, u32, usize);
    let mut stack: Vec<Frame> = vec![(0, 0, 0)];
    let mut undo: Vec<u8> = Vec::new();
    // A new state, packed, and its choices.
    let mut packed = Vec::new();
    let mut more = Vec::new();
    let mut since_progress = 0u32;
    while let Some(&(id, index, _)) = stack.last() {
        let depth = stack.len() as u32 - 1;
        let Some(&c) = todo.get(index as usize) else {
            // Back to the state below, with its choices.
            let Some((_, _, at)) = stack.pop() else {
                break;
            };
            if stack.is_empty() {
                break;
            }
            let mut pos = at;
            frontier::decode(&undo, &mut pos, &mut cur);
            undo.truncate(at);
            choices_of(model, tables, &mut scratch, &cur, &mut todo);
            continue;
        };
        if let Some(top) = stack.last_mut() {
            top.1 += 1;
        }
        let base = tables.sizes();
        scratch.load(&cur, n);
        let mut work = Work {
            tables,
            s: &mut scratch,
        };
        let Some(sent) = model.step(&mut work, c, &mut None) else {
            continue;
        };
        let fp = work.fingerprint();
        if let Some(known) = search.visited.get(fp) {
            search.edge(id, known, c, sent);
            continue;
        }
        let len = work.s.packed_len();
        let mut need = search.need(id, index);
        need.add(
            growth(&undo, frontier::encoded_max(cur.len())) + growth(&stack, 1),
            "the depth-first stack",
        );
        need.add(vec_growth(&packed, len), "a state");
        if over_budget(search, opts, need, len) {
            break;
        }
        let checked = model.check(&work);
        packed.clear();
        work.s.save(&mut packed);
        let mut need = Need::default();
        need.add(
            settle_growth(&packed, n, tables, &scratch, base),
            "the interned parts of states",
        );
        if over_budget(search, opts, need, 0) {
            break;
        }
        settle(&mut packed, n, tables, &mut scratch, base);
        scratch.reset_overlay();
        let child = search.admit(id, index, &checked);
        search.visited.insert(fp, child);
        search.edge(id, child, c, sent);
        search.max_depth = search.max_depth.max(depth + 1);
        choices_of(model, tables, &mut scratch, &packed, &mut more);
        if opts.max_depth.is_some_and(|d| depth + 1 >= d) {
            if !more.is_empty() {
                search.cut_short = Some(format!("--max-depth {} reached", depth + 1));
            }
            continue;
        }
        // The child goes on top; what turns it back into its parent goes under it.
        let at = undo.len();
        reserve(&mut undo, frontier::encoded_max(cur.len()));
        frontier::encode(&packed, &cur, &mut undo);
        reserve(&mut stack, 1);
        stack.push((child, 0, at));
        std::mem::swap(&mut cur, &mut packed);
        std::mem::swap(&mut todo, &mut more);
        since_progress += 1;
        if since_progress >= 4096 {
            since_progress = 0;
            search.report(opts, "search", depth + 1, stack.len(), start);
        }
    }
}

/// About what [`liveness_violation`] allocates: the predecessor rows (4 bytes an edge, 8 a
/// state), the marks and the queue.
fn liveness_need(search: &Search) -> u64 {
    let (n, e) = (search.settled.len() as u64, search.edges.len() as u64);
    4 * e + 16 * n
}

/// Liveness: the reachable states from which no settled state can be reached without
/// faults, among those at least `within` before the horizon. Returns the first (lowest id,
/// so the nearest in breadth-first order) such state.
fn liveness_violation(search: &Search, within: u64, horizon: u64) -> Option<u32> {
    if !search.liveness {
        return None;
    }
    let n = search.settled.len();
    // Predecessors over the fault-free edges, by target.
    let fault_free = search.edges.iter().filter(|e| !e.fault());
    let preds = messages::Rows::new(n, fault_free.map(|e| (e.to, e.from)), false);
    let mut good = search.settled.clone();
    let mut queue: Vec<u32> = (0..n as u32).filter(|&i| good[i as usize]).collect();
    while let Some(x) = queue.pop() {
        for p in preds.row(x) {
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
        let choices = model.resolve(&search.lineage.path(id));
        let (trace, mut end) = match model.replay(&choices) {
            Ok((t, end)) => (t, Some(end)),
            Err(_) => (Vec::new(), None),
        };
        let bounded = model.quantum().is_some();
        let at_us = end.as_ref().filter(|_| bounded).map(|e| e.now_us);
        let schedule = match end.as_mut().filter(|_| bounded) {
            Some(e) => std::mem::take(&mut e.steps),
            None => Vec::new(),
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
            at_us,
            schedule,
        }
    };
    let phase = |phase| search.report(opts, phase, search.max_depth, 0, start);
    // The phases over the whole graph come after the search, whose memory limit they must
    // keep too: a process killed for its memory would lose the verdicts with them.
    let over_limit = |what: &str, need: u64| {
        let max = opts.max_memory?;
        let now = resident_bytes()?;
        (now + need > max).then(|| {
            format!(
                "the process holds {} MiB and {what} would need about {} MiB more, past the memory limit of {} MiB (--max-memory)",
                now >> 20,
                need.div_ceil(1 << 20),
                max >> 20
            )
        })
    };
    // Liveness needs the whole graph: in a cut-short search, states whose successors were
    // never expanded would look like dead ends.
    let live: Result<Option<(u32, String)>, String> = match liveness.filter(|_| complete) {
        None => Ok(None),
        Some(within) => match over_limit("the liveness check", liveness_need(&search)) {
            Some(why) => Err(why),
            None => {
                phase("liveness");
                Ok(liveness_violation(&search, within, model.horizon).map(|id| {
                    let detail = format!(
                        "from this state (t={}), no state where every component agrees on one running leader can be reached without further faults",
                        conclave_algorithms::Duration(search.time[id as usize])
                    );
                    (id, detail)
                }))
            }
        },
    };
    let mut properties = Vec::new();
    for p in &names {
        // A violation found, or why the check was skipped.
        let (found, skipped) = match p {
            Property::AtMostOneLeader => (search.first_violation[0].map(|id| (id, None)), None),
            Property::OneLeaderPerComponent => {
                (search.first_violation[1].map(|id| (id, None)), None)
            }
            Property::EventualLeader(_) => match &live {
                Ok(found) => (found.clone().map(|(id, why)| (id, Some(why))), None),
                Err(why) => (None, Some(why.clone())),
            },
            _ => (None, None),
        };
        // A timer off the clock's steps was explored at a rounded time: a path to a
        // violation may then not be a run at all (the simulator would refuse it).
        let (found, skipped) = match model.off_grid() {
            Some(_) => (
                None,
                Some("a timer was not explored at its exact time".to_string()),
            ),
            None => (found, skipped),
        };
        let (holds, undecided) = match (&found, complete, skipped) {
            (Some(_), _, _) => (Some(false), None),
            (None, _, Some(why)) => (None, Some(why)),
            (None, false, None) => (None, Some("incomplete search".to_string())),
            (None, true, None) => (Some(true), None),
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
            undecided,
        });
    }
    let timing = match spec.as_ref().map(|e| &e.timing) {
        Some(Timing::Bounded { max_delay }) => format!("Bounded(max_delay: {max_delay})"),
        _ => "Asynchronous".to_string(),
    };
    let (election_messages, election_messages_error) = if !(complete && search.message_bounds) {
        (None, None)
    } else if let Some(why) = over_limit("they", messages::need(&search)) {
        (None, Some(why))
    } else {
        phase("message bounds");
        let found = messages::bounds(&search, search.root_sent, &|from, hops| {
            let (mut choices, mut s) = model.reach(&search.lineage.path(from));
            for (k, &(to, sent)) in hops.iter().enumerate() {
                let is_to = |fp| search.visited.get(fp) == Some(to);
                // Only a fingerprint collision, or an algorithm whose state's `Hash` leaves
                // out something its handlers read, can make an explored edge impossible.
                let (c, next) = model.hop(&s, sent, is_to).ok_or_else(|| {
                    format!(
                        "step {} of a bound's schedule (after {} steps to state {from}) cannot be taken again: two states share a fingerprint, or the algorithm's Hash leaves out part of its state",
                        k + 1,
                        choices.len()
                    )
                })?;
                choices.push(c);
                s = next;
            }
            Ok(choices)
        });
        let found = found.and_then(|mut m| {
            let bounded = model.quantum().is_some();
            for s in m.iter_mut().flat_map(ElectionMessages::schedules_mut) {
                let (trace, end) = model
                    .replay(&s.choices)
                    .map_err(|e| format!("a bound's schedule does not replay: {e}"))?;
                s.trace = trace;
                if bounded {
                    s.steps = end.steps;
                    s.end_us = Some(end.now_us);
                }
            }
            Ok(m)
        });
        match found {
            Ok(m) => (m, None),
            Err(e) => (None, Some(e)),
        }
    };
    ExploreReport {
        scenario: scenario.name.clone(),
        algorithm: scenario.algorithm.name().to_string(),
        timing,
        search: if opts.dfs { "dfs" } else { "bfs" },
        jobs: if opts.dfs { 1 } else { opts.jobs.max(1) },
        symmetry_reduction: false,
        unique_states: search.states(),
        transitions: search.transitions,
        max_depth: search.max_depth,
        complete,
        cut_short: search.cut_short.take(),
        elapsed_ms: start.elapsed().as_millis() as u64,
        ok: properties.iter().all(|p| p.ok),
        properties,
        election_messages,
        election_messages_error,
        graph: search.graph.take(),
        visited: opts
            .keep_visited
            .then(|| std::sync::Arc::new(VisitedStates(search.visited))),
    }
}

#[cfg(test)]
mod tests {
    use super::model::{Model, State};
    use super::packed::{Scratch, Tables, Work};
    use crate::scenario::{AlgorithmSpec, Scenario};
    use conclave_algorithms::async_bully::AsyncBully;
    use conclave_algorithms::bully::Bully;
    use conclave_algorithms::Algorithm;

    /// Message bounds find an edge's choice again by stepping a plain state and looking its
    /// fingerprint up in the visited set, which holds packed fingerprints: both must agree,
    /// over every part of a state (crashes, restarts, drops, duplicates, partitions and the
    /// detector's verdicts among them).
    #[test]
    fn plain_and_packed_states_have_the_same_fingerprint() {
        let stoller = r#"Scenario(
            algorithm: AsyncBully(norm_interval: "1s", detector: Perfect(delay: "100ms")),
            nodes: [(name: "a", id: 1), (name: "b", id: 2), (name: "c", id: 3)],
            run_for: "2s",
            explore: (timing: Bounded(max_delay: "100ms"), crashes: 1, restarts: 1, drops: 1,
                      expect: [AtMostOneLeader]),
        )"#;
        // A timeout of one delay: a timer fires within the levels compared (time passes
        // first, a choice of its own).
        let bully = r#"Scenario(
            algorithm: Bully(answer_timeout: "100ms", heartbeat_interval: "1s",
                             heartbeat_timeout: "300ms"),
            nodes: [(name: "a", id: 1), (name: "b", id: 2), (name: "c", id: 3)],
            run_for: "2s",
            explore: (timing: Bounded(max_delay: "100ms"), duplicates: 1,
                      partitions: [[["a", "b"], ["c"]]], partition_changes: 2,
                      expect: [OneLeaderPerComponent]),
        )"#;
        let mut kinds = std::collections::BTreeSet::new();
        let scenario = Scenario::from_str(stoller, "t.ron").expect("a valid scenario");
        let AlgorithmSpec::AsyncBully(p) = &scenario.algorithm else {
            unreachable!()
        };
        let mut edges = compare(
            &Model::<AsyncBully>::new(&scenario, p.clone()),
            4,
            &mut kinds,
        );
        let scenario = Scenario::from_str(bully, "t.ron").expect("a valid scenario");
        let AlgorithmSpec::Bully(p) = &scenario.algorithm else {
            unreachable!()
        };
        edges += compare(&Model::<Bully>::new(&scenario, p.clone()), 4, &mut kinds);
        assert!(edges > 500, "{edges} edges compared");
        let all = [
            "Crash",
            "Deliver",
            "Drop",
            "Duplicate",
            "Heal",
            "Partition",
            "Restart",
            "Tick",
            "Timer",
        ];
        assert_eq!(kinds.into_iter().collect::<Vec<_>>(), all);
    }

    /// With FIFO links and bounded delays the messages in flight are one queue per link,
    /// and a state is a function of those queues: delivering on two links in either order
    /// reaches one state, not two (the list once kept the order messages were sent in,
    /// across links, and counted such states apart: 17,079 states for
    /// `bully4_crash_bounded.ron` where there are 4,615). Each link still delivers only its
    /// oldest message.
    #[test]
    fn fifo_links_are_queues_whatever_the_order_across_links() {
        use super::model::Store;
        use super::Choice;
        let text = r#"Scenario(
            algorithm: Bully(answer_timeout: "300ms", heartbeat_interval: "1s",
                             heartbeat_timeout: "300ms"),
            nodes: [(name: "a", id: 1), (name: "b", id: 2), (name: "c", id: 3)],
            run_for: "2s",
            explore: (timing: Bounded(max_delay: "100ms"), expect: [AtMostOneLeader]),
        )"#;
        let scenario = Scenario::from_str(text, "t.ron").expect("a valid scenario");
        let AlgorithmSpec::Bully(p) = &scenario.algorithm else {
            unreachable!()
        };
        let model = Model::<Bully>::new(&scenario, p.clone());
        let link = |s: &State<Bully>, i: u32| (s.packet(i as usize).from, s.packet(i as usize).to);
        // The one delivery a link allows.
        let deliver_on = |s: &State<Bully>, l: (u32, u32)| {
            let on: Vec<Choice> = model
                .actions(s)
                .into_iter()
                .filter(|c| matches!(*c, Choice::Deliver(i) if link(s, i) == l))
                .collect();
            assert_eq!(on.len(), 1, "one deliverable message on {l:?}: {on:?}");
            on[0]
        };
        let init = model.init();
        let mut links: Vec<(u32, u32)> =
            (0..init.packets() as u32).map(|i| link(&init, i)).collect();
        links.dedup();
        assert!(
            links.len() >= 2,
            "messages on two links at the start: {links:?}"
        );
        let via = |first, second| {
            let s = model
                .next(&init, deliver_on(&init, first))
                .expect("enabled");
            let s = model.next(&s, deliver_on(&s, second)).expect("enabled");
            assert!((1..s.packets()).all(|i| link(&s, i as u32 - 1) <= link(&s, i as u32)));
            s
        };
        let (one, other) = (via(links[0], links[1]), via(links[1], links[0]));
        assert!(
            one.packets() > init.packets() - 2,
            "the deliveries sent answers"
        );
        assert_eq!(one, other);
        assert_eq!(one.fingerprint(), other.fingerprint());
    }

    /// Expanding a level in parts (a job stopping within a state's successors, the jobs
    /// after it set aside, the next chunk going on from that successor) finds what whole
    /// chunks find: the same states, transitions, depth, verdicts, counterexamples and
    /// message bounds, on one job or three. Large states expand this way; here tiny parts
    /// make small models do it all the time.
    #[test]
    fn expanding_in_parts_finds_the_same() {
        use super::{explore_sized, ExploreOptions, ExploreReport, Sizes, SIZES};
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/explore");
        let summary = |r: &ExploreReport| {
            let verdicts: Vec<_> = r
                .properties
                .iter()
                .map(|p| {
                    let choices = p.counterexample.as_ref().map(|c| c.choices.clone());
                    (p.holds, choices)
                })
                .collect();
            let bounds = r.election_messages.as_ref().map(|m| format!("{m:?}"));
            (
                r.unique_states,
                r.transitions,
                r.max_depth,
                r.complete,
                verdicts,
                bounds,
            )
        };
        let tiny = Sizes {
            batch_words: 40,
            share_bytes: 600,
        };
        // The last, cut short at 20,000 states of its 1,262,925.
        let cases = [
            ("bully3_crash_bounded.ron", None),
            ("bully3_partition.ron", None),
            ("quorum3_partitions.ron", Some(20_000)),
        ];
        for (name, max_states) in cases {
            let scenario = Scenario::load(&dir.join(name)).expect("a valid scenario");
            let run = |jobs, sizes| {
                let opts = ExploreOptions {
                    jobs,
                    max_states,
                    message_bounds: true,
                    ..ExploreOptions::default()
                };
                crate::with_algorithm!(&scenario.algorithm, |A, p| {
                    let model = Model::<A>::new(&scenario, p.clone());
                    explore_sized(model, &scenario, name, &opts, sizes)
                })
            };
            let whole = summary(&run(1, SIZES));
            assert!(
                whole.3 == max_states.is_none() && whole.0 > 1000,
                "{name}: {whole:?}"
            );
            for jobs in [1, 3] {
                assert_eq!(summary(&run(jobs, tiny)), whole, "{name}, {jobs} jobs");
            }
        }
    }

    /// Steps both storages side by side, breadth-first, `levels` deep; returns the edges
    /// compared, and adds the kinds of choice taken to `kinds`.
    fn compare<A: Algorithm>(
        model: &Model<A>,
        levels: usize,
        kinds: &mut std::collections::BTreeSet<String>,
    ) -> usize {
        let tables = Tables::new();
        let mut scratch = Scratch::new();
        scratch.blank(model.len());
        let mut root = Vec::new();
        {
            let mut work = Work {
                tables: &tables,
                s: &mut scratch,
            };
            model.start(&mut work, &mut None);
            work.s.save(&mut root);
            assert_eq!(work.fingerprint(), model.init().fingerprint());
        }
        let mut level: Vec<(Vec<u32>, State<A>)> = vec![(root, model.init())];
        let mut edges = 0;
        for _ in 0..levels {
            let mut next = Vec::new();
            for (words, plain) in &level {
                for c in model.actions(plain) {
                    let mut t = plain.clone();
                    let sent = model.step(&mut t, c, &mut None);
                    let mut work = Work {
                        tables: &tables,
                        s: &mut scratch,
                    };
                    work.s.load(words, model.len());
                    assert_eq!(model.step(&mut work, c, &mut None), sent);
                    assert_eq!(work.fingerprint(), t.fingerprint(), "after {c:?}");
                    let mut w = Vec::new();
                    work.s.save(&mut w);
                    next.push((w, t));
                    edges += 1;
                    let kind = format!("{c:?}");
                    kinds.insert(kind.split('(').next().unwrap_or_default().to_string());
                }
            }
            level = next;
        }
        edges
    }
}
