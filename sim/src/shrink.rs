//! Shrinking a failing run: from the scenario that one seed runs (a `sweep` block's draws
//! written in), a small scenario that still fails the same way.
//!
//! [`find_failure`] runs the seed and picks the failure to keep: an expectation that failed
//! (a property expected to hold that was violated, or one expected to be violated that
//! held). [`shrink`] then tries smaller scenarios, one candidate at a time, and keeps a
//! candidate only if it is a valid scenario (written out with [`Scenario::to_ron`] and read
//! back, as the saved file will be) whose run with the same seed completes and fails the same
//! expectation, of the same kind. Its passes repeat until none makes progress:
//!
//! - `expect`: the seeds down to the one seed, the expectations down to the failing one, the
//!   explorer's block dropped;
//! - `run_for`: the time of the violation rounded up (to 1 s, 100 ms, 10 ms, 1 ms), else a
//!   bisection to the millisecond; faults after the new end are dropped. A run is never
//!   made shorter than the property needs to be judged as it was: up to the time of a
//!   `LeaderIs` at a time, and, for a property judged at the end (`Agreement`,
//!   `HighestWins`, `LeaderIs` at the end, `EventualLeader`), as long after the last fault
//!   or node start as the original run (a run cut before the nodes settle would fail them
//!   for no other reason);
//! - `faults`: delta debugging (ddmin) over the faults: all, halves, smaller chunks, single
//!   faults; a fault whose removal would leave its undo invalid (a `Restart` of a running
//!   node, a `Resume` of one not paused) goes with its undo;
//! - `nodes`: a node is removed with the faults that name it (and from the partitions'
//!   groups, and from a `server_config` list), unless an expectation names it;
//! - `network`: loss and duplication to 0, a uniform delay to a constant;
//! - `simplify`: a `Pause`/`Resume` becomes a `Crash`/`Restart`, a `Leave` a `Crash`, a
//!   partition loses a group (two merged), a `Heal` that lifts a single block (and no
//!   partition) becomes that block's `Unblock`;
//! - `times`: each fault moves earlier (to time 0, to the previous fault's time, or halfway
//!   to either) or to a rounder time (whole seconds, 100 ms, 10 ms, ms); a move never makes
//!   a time less round, nor a time later unless rounder, so the passes end.
//!
//! Every candidate run has a budget of events (ten times the original run's, at least
//! 100,000, within the budget given): a candidate cut short is rejected. The whole search is
//! bounded by a number of runs ([`ShrinkOptions::max_runs`]), and stops at Ctrl-C
//! ([`INTERRUPTED`]); either way the result is the smallest failing scenario found so far.
//!
//! ```
//! use conclave_sim::scenario::{Fault, Scenario};
//! use conclave_sim::shrink::{find_failure, shrink, ShrinkOptions};
//! let s = Scenario::from_str(r#"Scenario(
//!     algorithm: Bully(),
//!     nodes: [(name: "a", id: 1), (name: "b", id: 2), (name: "c", id: 3)],
//!     faults: [
//!         (at: "1s", fault: Crash("a")), (at: "2s", fault: Restart("a")),
//!         (at: "3s", fault: Partition([["a", "b"], ["c"]])),
//!         (at: "9s", fault: Heal),
//!     ],
//!     run_for: "20s",
//!     expect: [AtMostOneLeader, Agreement],
//! )"#, "split.ron").unwrap();
//! let failure = find_failure(&s, 0, None, &Default::default()).unwrap();
//! assert_eq!(failure.to_string(), "AtMostOneLeader violated");
//! let shrunk = shrink(&s, 0, &failure, &ShrinkOptions::default(), &mut |_| {}).unwrap();
//! // The heal after the violation goes first, then whatever else the violation can do
//! // without; what is left still violates AtMostOneLeader, in a shorter run.
//! assert!(shrunk.size.faults < 4 && shrunk.size.run_for < s.run_for);
//! assert!(shrunk.scenario.faults.iter().all(|f| !matches!(f.fault, Fault::Heal)));
//! assert_eq!(shrunk.scenario.expect.len(), 1);
//! ```

use crate::run::{run_scenario, Expectation, RunOptions, RunReport};
use crate::scenario::{
    validate_fault_list, Delay, Duration, Fault, FaultSpec, Property, Scenario, ServerConfig,
};
use crate::world::{Budget, INTERRUPTED};
use serde::Serialize;
use std::collections::BTreeSet;
use std::fmt;
use std::sync::atomic::Ordering;

/// The most candidate runs a shrink makes unless told otherwise.
pub const DEFAULT_MAX_RUNS: usize = 2000;

/// The least budget of events a candidate run gets, whatever the original run took.
const MIN_CANDIDATE_EVENTS: u64 = 100_000;

/// The failure a shrink keeps: an expectation and which way it failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub property: Property,
    /// `"holds"`: expected to hold, and violated; `"violated"`: expected to be violated,
    /// and held (as [`Expectation::expected`] says).
    pub expected: &'static str,
}

impl Failure {
    /// Whether the run's report shows this failure, and the expectation that does.
    pub fn in_report<'r>(&self, r: &'r RunReport) -> Option<&'r Expectation> {
        let name = self.property.to_string();
        r.expectations
            .iter()
            .find(|e| !e.ok && e.expected == self.expected && e.name == name)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.expected == "holds" {
            write!(f, "{} violated", self.property)
        } else {
            write!(f, "{} held (expected violated)", self.property)
        }
    }
}

/// Why a seed cannot be shrunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShrinkError {
    /// Every expectation held.
    Held { seed: u64 },
    /// The run was cut short before any expectation failed for good.
    Incomplete { seed: u64, why: String },
    /// The property asked for is not a failed expectation of the run.
    NotFailed { name: String, why: String },
    /// The scenario the seed runs, written out and read back, did not fail the same way
    /// (a bug).
    NotReproduced { why: String },
}

impl fmt::Display for ShrinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShrinkError::Held { seed } => write!(
                f,
                "the run with seed {seed} fails no expectation: there is nothing to shrink"
            ),
            ShrinkError::Incomplete { seed, why } => write!(
                f,
                "the run with seed {seed} was cut short ({why}) and fails no expectation before that: raise --max-events, or shrink a seed whose run completes"
            ),
            ShrinkError::NotFailed { name, why } => write!(f, "--property {name}: {why}"),
            ShrinkError::NotReproduced { why } => write!(f, "{why}"),
        }
    }
}

impl std::error::Error for ShrinkError {}

/// A scenario's size, as the steps report it. In JSON: `faults`, `nodes`, `run_for` (as a
/// scenario writes it) and `run_for_us`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Size {
    pub faults: usize,
    pub nodes: usize,
    pub run_for: Duration,
}

impl Serialize for Size {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut o = s.serialize_struct("Size", 4)?;
        o.serialize_field("faults", &self.faults)?;
        o.serialize_field("nodes", &self.nodes)?;
        o.serialize_field("run_for", &self.run_for)?;
        o.serialize_field("run_for_us", &self.run_for.as_micros())?;
        o.end()
    }
}

impl Size {
    pub fn of(s: &Scenario) -> Size {
        Size {
            faults: s.faults.len(),
            nodes: s.nodes.len(),
            run_for: s.run_for,
        }
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = |n: usize| if n == 1 { "" } else { "s" };
        write!(
            f,
            "{} fault{}, {} node{}, run_for {}",
            self.faults,
            plural(self.faults),
            self.nodes,
            plural(self.nodes),
            self.run_for
        )
    }
}

/// One accepted reduction.
#[derive(Clone, Debug, Serialize)]
pub struct Step {
    /// The pass that made it (see the module's documentation).
    pub pass: &'static str,
    /// What changed, e.g. `removed faults[3] Crash("b") at 4.2s and its Restart("b") at 6s`.
    pub change: String,
    /// The scenario's size after it.
    pub size: Size,
    /// Runs made so far.
    pub runs: usize,
}

/// How a shrink runs.
#[derive(Clone, Copy, Debug)]
pub struct ShrinkOptions {
    /// The most runs in all (the first included).
    pub max_runs: usize,
    /// The first run's budget; a candidate gets ten times the events that run took (at
    /// least 100,000), within this budget's `max_events`.
    pub budget: Budget,
}

impl Default for ShrinkOptions {
    fn default() -> Self {
        ShrinkOptions {
            max_runs: DEFAULT_MAX_RUNS,
            budget: Budget::default(),
        }
    }
}

/// What a shrink found.
#[derive(Clone, Debug)]
pub struct Shrunk {
    /// The smallest failing scenario found (no `sweep` block; valid; runs with `seed`).
    pub scenario: Scenario,
    /// The size of the scenario the seed ran, and of the result.
    pub original: Size,
    pub size: Size,
    pub steps: Vec<Step>,
    /// Runs made, the first included.
    pub runs: usize,
    /// The search stopped at [`ShrinkOptions::max_runs`]: the result may not be minimal.
    pub max_runs_reached: bool,
    /// The search stopped at Ctrl-C ([`INTERRUPTED`]).
    pub interrupted: bool,
    /// When the result's run fails the expectation, and why (from its report).
    pub failed_at: Option<Duration>,
    pub detail: Option<String>,
}

/// Runs `scenario` with `seed` and picks the failure to shrink: the expectation named
/// `property` (its name as reports print it, such as `AtMostOneLeader` or `LeaderIs(b,
/// end)`; a name without its arguments if only one failed expectation has it), else the
/// first failed expectation.
///
/// A run cut short by the budget counts only by the failures it had for good when it
/// stopped: an `AtMostOneLeader`, `OneLeaderPerComponent` or `LeaderIs` at a time that was
/// violated.
pub fn find_failure(
    scenario: &Scenario,
    seed: u64,
    property: Option<&str>,
    budget: &Budget,
) -> Result<Failure, ShrinkError> {
    let opts = RunOptions {
        budget: *budget,
        ..RunOptions::default()
    };
    let report = run_scenario(scenario, "", seed, &opts);
    let concrete = scenario.for_seed(seed);
    let property_of = |e: &Expectation| {
        let list = if e.expected == "holds" {
            &concrete.expect
        } else {
            &concrete.expect_violated
        };
        list.iter().find(|p| p.to_string() == e.name).cloned()
    };
    let failed: Vec<&Expectation> = report
        .expectations
        .iter()
        .filter(|e| !e.ok)
        .filter(|e| {
            report.incomplete.is_none()
                || property_of(e).is_some_and(|p| final_when_cut(&p, e, &report))
        })
        .collect();
    if failed.is_empty() {
        return Err(match &report.incomplete {
            Some(why) => ShrinkError::Incomplete {
                seed,
                why: why.clone(),
            },
            None => ShrinkError::Held { seed },
        });
    }
    let chosen = match property {
        None => failed[0],
        Some(name) => {
            let head = |n: &str| n.split('(').next().unwrap_or(n).to_string();
            let exact = failed.iter().find(|e| e.name == name);
            let by_head: Vec<&&Expectation> =
                failed.iter().filter(|e| head(&e.name) == name).collect();
            match (exact, by_head.as_slice()) {
                (Some(e), _) => e,
                (None, [e]) => e,
                _ => {
                    let names: Vec<String> = failed.iter().map(|e| e.name.clone()).collect();
                    let known = report
                        .expectations
                        .iter()
                        .find(|e| e.name == name || head(&e.name) == name);
                    let why = match known {
                        _ if by_head.len() > 1 => format!(
                            "{} failed expectations are named so ({}): give one in full",
                            by_head.len(),
                            names.join(", ")
                        ),
                        Some(e) if e.ok => format!(
                            "{} was expected to {} and {} in the run with seed {seed}: not a failure (failed: {})",
                            e.name,
                            if e.expected == "holds" { "hold" } else { "be violated" },
                            if e.expected == "holds" { "held" } else { "was" },
                            names.join(", ")
                        ),
                        Some(e) => format!(
                            "{} failed only after the run was cut short ({}) (failed for good: {})",
                            e.name,
                            report.incomplete.as_deref().unwrap_or("?"),
                            names.join(", ")
                        ),
                        None => format!(
                            "not an expectation of the scenario (failed in the run with seed {seed}: {})",
                            names.join(", ")
                        ),
                    };
                    return Err(ShrinkError::NotFailed {
                        name: name.to_string(),
                        why,
                    });
                }
            }
        }
    };
    let property = property_of(chosen).ok_or_else(|| ShrinkError::NotReproduced {
        why: format!("{} is not in the scenario's lists", chosen.name),
    })?;
    Ok(Failure {
        property,
        expected: chosen.expected,
    })
}

/// Whether a failed expectation of a run cut short was failed for good when it stopped: a
/// safety property violated at an instant, or a leader missing at a time the run reached.
fn final_when_cut(p: &Property, e: &Expectation, r: &RunReport) -> bool {
    if e.expected != "holds" {
        return false;
    }
    match p {
        Property::AtMostOneLeader | Property::OneLeaderPerComponent => true,
        Property::LeaderIs { at: Some(at), .. } => at.as_micros() <= r.end_time_us,
        _ => false,
    }
}

/// Shrinks the run of `seed` to a small scenario that still fails `target`. `on_step` is
/// told of each reduction as it is accepted.
pub fn shrink(
    scenario: &Scenario,
    seed: u64,
    target: &Failure,
    opts: &ShrinkOptions,
    on_step: &mut dyn FnMut(&Step),
) -> Result<Shrunk, ShrinkError> {
    let mut start = scenario.for_seed(seed).into_owned();
    // Faults in time order (those of one instant in the order listed, as they happen).
    start.faults.sort_by_key(|f| f.at);
    let original = Size::of(&start);
    let needs = Needs::of(&target.property, &start);
    let text = start.to_ron("");
    let mut start =
        Scenario::from_str(&text, "shrink.ron").map_err(|e| ShrinkError::NotReproduced {
            why: format!("the scenario of seed {seed} does not load back: {e}"),
        })?;
    let first = RunOptions {
        budget: Budget {
            progress: None,
            ..opts.budget
        },
        ..RunOptions::default()
    };
    let mut runs = 1;
    let mut report = run_scenario(&start, "", seed, &first);
    let mut steps = Vec::new();
    let was = start.run_for;
    if report.incomplete.is_some() {
        // Cut short after the failure: the run up to the failure fails it the same way.
        let at = target.in_report(&report).and_then(|e| e.failed_at_us);
        if let Some(at) = at.filter(|&t| t <= report.end_time_us) {
            // Rounded up to the millisecond if the run got that far.
            let end = ceil_to(at.max(1), MS);
            let end = Duration(if end <= report.end_time_us {
                end
            } else {
                at.max(1)
            });
            start.run_for = end;
            start.faults.retain(|f| f.at <= end);
            runs += 1;
            report = run_scenario(&start, "", seed, &first);
        }
    }
    let e = target
        .in_report(&report)
        .filter(|_| report.incomplete.is_none());
    if let Some(e) = e.filter(|_| start.run_for != was) {
        let step = Step {
            pass: "run_for",
            change: format!(
                "run_for {was} -> {} (the run was cut short after the failure at {})",
                start.run_for,
                Duration(e.failed_at_us.unwrap_or(0))
            ),
            size: Size::of(&start),
            runs,
        };
        on_step(&step);
        steps.push(step);
    }
    let Some(e) = e else {
        return Err(ShrinkError::NotReproduced {
            why: format!(
                "the scenario of seed {seed}, written out, did not fail {target}{}",
                report
                    .incomplete
                    .as_ref()
                    .map(|w| format!(" (cut short: {w})"))
                    .unwrap_or_default()
            ),
        });
    };
    let most = opts.budget.max_events.unwrap_or(u64::MAX);
    let events = report
        .events
        .saturating_mul(10)
        .max(MIN_CANDIDATE_EVENTS)
        .min(most);
    let mut s = Shrinker {
        needs,
        failed_at: e.failed_at_us,
        detail: e.detail.clone(),
        cur: start,
        seed,
        target,
        opts: RunOptions {
            budget: Budget {
                max_events: Some(events),
                progress: None,
                ..opts.budget
            },
            ..RunOptions::default()
        },
        max_runs: opts.max_runs,
        runs,
        max_runs_reached: false,
        interrupted: false,
        steps,
        on_step,
    };
    loop {
        // Every pass runs in each round (no short cut), until a round changes nothing.
        let mut progress = s.pass_expect();
        progress |= s.pass_run_for();
        progress |= s.pass_faults();
        progress |= s.pass_nodes();
        progress |= s.pass_network();
        progress |= s.pass_simplify();
        progress |= s.pass_times();
        if !progress || s.stopped() {
            break;
        }
    }
    Ok(Shrunk {
        original,
        size: Size::of(&s.cur),
        scenario: s.cur,
        steps: s.steps,
        runs: s.runs,
        max_runs_reached: s.max_runs_reached,
        interrupted: s.interrupted,
        failed_at: s.failed_at.map(Duration),
        detail: s.detail,
    })
}

/// A candidate that still fails: the scenario as read back, and its failure's time and
/// detail.
struct Passed {
    scenario: Scenario,
    failed_at: Option<u64>,
    detail: Option<String>,
}

/// How much of a run a candidate needs to judge the target as the original run did.
#[derive(Clone, Copy, Debug)]
enum Needs {
    /// Any length: a safety property (checked at every event) or a count over the run.
    Nothing,
    /// The run up to this instant (`LeaderIs` at a time within the original run).
    Until(u64),
    /// At least this long after the last fault or node start: a property judged at the
    /// end (`Agreement`, `HighestWins`, `LeaderIs` at the end, `EventualLeader`), which a
    /// run too short to settle would fail for no other reason.
    Quiet(u64),
}

impl Needs {
    fn of(p: &Property, s: &Scenario) -> Needs {
        let end = s.run_for.as_micros();
        match p {
            Property::AtMostOneLeader
            | Property::OneLeaderPerComponent
            | Property::MessagesAtMost(_)
            | Property::ElectionMessagesAtMost(_) => Needs::Nothing,
            Property::LeaderIs { at: Some(at), .. } if at.as_micros() < end => {
                Needs::Until(at.as_micros())
            }
            _ => Needs::Quiet(end.saturating_sub(last_disturbance(s))),
        }
    }

    /// The shortest `run_for` scenario `s` may have.
    fn least_run_for(self, s: &Scenario) -> u64 {
        match self {
            Needs::Nothing => 1,
            Needs::Until(t) => t.max(1),
            Needs::Quiet(q) => (last_disturbance(s) + q).max(1),
        }
    }
}

/// The time of the last fault (within the run) or node start: what "after the last fault"
/// counts from.
fn last_disturbance(s: &Scenario) -> u64 {
    let end = s.run_for.as_micros();
    let starts = s.nodes.iter().map(|n| n.start.as_micros());
    let faults = s.faults.iter().map(|f| f.at.as_micros());
    starts
        .chain(faults)
        .filter(|&t| t <= end)
        .max()
        .unwrap_or(0)
}

struct Shrinker<'a> {
    /// The smallest failing scenario so far.
    cur: Scenario,
    /// How much of a run a candidate must have.
    needs: Needs,
    seed: u64,
    target: &'a Failure,
    opts: RunOptions,
    max_runs: usize,
    runs: usize,
    max_runs_reached: bool,
    interrupted: bool,
    failed_at: Option<u64>,
    detail: Option<String>,
    steps: Vec<Step>,
    on_step: &'a mut dyn FnMut(&Step),
}

const S: u64 = 1_000_000;
const MS: u64 = 1_000;
/// The round units, coarsest first.
const UNITS: [u64; 4] = [S, 100 * MS, 10 * MS, MS];

/// How round a time is: 0 for whole seconds, 1 for 100 ms, 2 for 10 ms, 3 for ms, 4 finer.
fn roughness(t: u64) -> usize {
    UNITS
        .iter()
        .position(|&u| t.is_multiple_of(u))
        .unwrap_or(UNITS.len())
}

fn round_to(t: u64, unit: u64) -> u64 {
    (t + unit / 2) / unit * unit
}

fn ceil_to(t: u64, unit: u64) -> u64 {
    t.div_ceil(unit) * unit
}

impl Shrinker<'_> {
    fn stopped(&self) -> bool {
        self.max_runs_reached || self.interrupted
    }

    /// Whether `cand` is a valid scenario whose run still fails the target.
    fn test(&mut self, cand: &Scenario) -> Option<Passed> {
        if self.stopped() || cand.run_for.as_micros() < self.needs.least_run_for(cand) {
            return None;
        }
        let text = cand.to_ron("");
        let scenario = Scenario::from_str(&text, "candidate.ron").ok()?;
        if self.runs >= self.max_runs {
            self.max_runs_reached = true;
            return None;
        }
        self.runs += 1;
        let r = run_scenario(&scenario, "", self.seed, &self.opts);
        if INTERRUPTED.load(Ordering::Relaxed) {
            self.interrupted = true;
            return None;
        }
        if r.incomplete.is_some() {
            return None;
        }
        let e = self.target.in_report(&r)?;
        Some(Passed {
            failed_at: e.failed_at_us,
            detail: e.detail.clone(),
            scenario,
        })
    }

    fn accept(&mut self, pass: &'static str, change: String, p: Passed) {
        self.cur = p.scenario;
        self.failed_at = p.failed_at;
        self.detail = p.detail;
        let step = Step {
            pass,
            change,
            size: Size::of(&self.cur),
            runs: self.runs,
        };
        (self.on_step)(&step);
        self.steps.push(step);
    }

    /// Tests `cand` and takes it if it still fails.
    fn attempt(
        &mut self,
        pass: &'static str,
        change: impl FnOnce() -> String,
        cand: &Scenario,
    ) -> bool {
        match self.test(cand) {
            Some(p) => {
                self.accept(pass, change(), p);
                true
            }
            None => false,
        }
    }

    /// One seed, the failing expectation alone, no explorer block.
    fn pass_expect(&mut self) -> bool {
        let mut c = self.cur.clone();
        let mut changes = Vec::new();
        if c.seeds != [self.seed] {
            let was = match c.seeds.len() {
                n if n <= 4 => format!("{:?}", c.seeds),
                n => format!("{n} seeds"),
            };
            changes.push(format!("seeds {was} -> [{}]", self.seed));
            c.seeds = vec![self.seed];
        }
        let only = vec![self.target.property.clone()];
        let (expect, violated) = if self.target.expected == "holds" {
            (only, Vec::new())
        } else {
            (Vec::new(), only)
        };
        if c.expect != expect || c.expect_violated != violated {
            let n = c.expect.len() + c.expect_violated.len();
            changes.push(format!(
                "expectations: {n} -> {}{}",
                self.target.property,
                if self.target.expected == "holds" {
                    ""
                } else {
                    " (expected violated)"
                }
            ));
            c.expect = expect;
            c.expect_violated = violated;
        }
        if c.explore.is_some() {
            changes.push("explore block dropped".into());
            c.explore = None;
        }
        if changes.is_empty() {
            return false;
        }
        self.attempt("expect", || changes.join("; "), &c)
    }

    /// `self.cur` ending at `end`, without the faults after it.
    fn ending_at(&self, end: u64) -> Scenario {
        let mut c = self.cur.clone();
        c.run_for = Duration(end);
        c.faults.retain(|f| f.at.as_micros() <= end);
        c
    }

    /// A shorter run: the violation's time rounded up, else a bisection to the millisecond,
    /// never shorter than the target needs (see [`Needs`]).
    fn pass_run_for(&mut self) -> bool {
        let was = self.cur.run_for;
        let faults_before = self.cur.faults.len();
        let mut best: Option<Passed> = None;
        let mut hi = was.as_micros();
        // A failure at an instant before the end (a safety property) needs the run up to
        // that instant and no further: its time rounded up to the millisecond is the end.
        let mut exact = false;
        if let Some(t) = self.failed_at.filter(|&t| t < hi) {
            for unit in UNITS {
                let end = ceil_to(t.max(1), unit);
                if end >= hi {
                    continue;
                }
                let cand = self.ending_at(end);
                if let Some(p) = self.test(&cand) {
                    hi = end;
                    best = Some(p);
                }
            }
            exact = ceil_to(t.max(1), MS) >= hi;
        }
        if !exact {
            let mut lo = self.needs.least_run_for(&self.cur).saturating_sub(1);
            while hi.saturating_sub(lo) > MS && !self.stopped() {
                let mid = round_to(lo + (hi - lo) / 2, MS);
                if mid <= lo || mid >= hi {
                    break;
                }
                let cand = self.ending_at(mid);
                match self.test(&cand) {
                    Some(p) => {
                        hi = mid;
                        best = Some(p);
                    }
                    None => lo = mid,
                }
            }
        }
        let Some(p) = best else {
            return false;
        };
        let dropped = faults_before - p.scenario.faults.len();
        let change = format!(
            "run_for {was} -> {}{}",
            p.scenario.run_for,
            match dropped {
                0 => String::new(),
                1 => " (and the fault after it)".into(),
                n => format!(" (and the {n} faults after it)"),
            }
        );
        self.accept("run_for", change, p);
        true
    }

    /// The faults without those at `remove` (indices), and with the undo of each removed
    /// fault too if the schedule is otherwise invalid; `None` if it is invalid either way.
    /// Also the indices removed.
    fn without(&self, remove: &[usize]) -> Option<(Vec<FaultSpec>, BTreeSet<usize>)> {
        let faults = &self.cur.faults;
        let rest = |rm: &BTreeSet<usize>| -> Vec<FaultSpec> {
            (0..faults.len())
                .filter(|i| !rm.contains(i))
                .map(|i| faults[i].clone())
                .collect()
        };
        let mut rm: BTreeSet<usize> = remove.iter().copied().collect();
        let left = rest(&rm);
        if validate_fault_list(&left, &self.cur).is_ok() {
            return Some((left, rm));
        }
        for &i in remove {
            rm.extend(undo_of(faults, i));
        }
        let left = rest(&rm);
        validate_fault_list(&left, &self.cur)
            .is_ok()
            .then_some((left, rm))
    }

    /// What removing the faults at `rm` takes away, in words.
    fn removed_text(&self, asked: &[usize], rm: &BTreeSet<usize>) -> String {
        let f = &self.cur.faults;
        if rm.len() <= 3 {
            let parts: Vec<String> = rm
                .iter()
                .map(|&i| {
                    let its = if asked.contains(&i) { "" } else { "its " };
                    format!("{its}faults[{i}] {}", spec_text(&f[i]))
                })
                .collect();
            return format!("removed {}", join_and(&parts));
        }
        let mut kinds: Vec<(&str, usize)> = Vec::new();
        for &i in rm {
            let k = f[i].fault.kind();
            match kinds.iter_mut().find(|(n, _)| *n == k) {
                Some((_, c)) => *c += 1,
                None => kinds.push((k, 1)),
            }
        }
        let kinds: Vec<String> = kinds
            .into_iter()
            .map(|(k, c)| {
                if c == 1 {
                    k.to_string()
                } else {
                    format!("{c} {k}")
                }
            })
            .collect();
        format!(
            "removed {} of {} faults ({})",
            rm.len(),
            f.len(),
            kinds.join(", ")
        )
    }

    /// Delta debugging over the faults: remove all, then halves, then smaller chunks down to
    /// single faults; after a removal, chunks one fewer (at least two).
    fn pass_faults(&mut self) -> bool {
        let mut progress = false;
        let mut n = 1;
        while !self.cur.faults.is_empty() && !self.stopped() {
            let len = self.cur.faults.len();
            let n_now = n.min(len);
            let mut removed = false;
            for k in 0..n_now {
                let chunk: Vec<usize> = (k * len / n_now..(k + 1) * len / n_now).collect();
                let Some((left, rm)) = self.without(&chunk) else {
                    continue;
                };
                let mut cand = self.cur.clone();
                cand.faults = left;
                if let Some(p) = self.test(&cand) {
                    let change = self.removed_text(&chunk, &rm);
                    self.accept("faults", change, p);
                    removed = true;
                    break;
                }
            }
            if removed {
                progress = true;
                n = n_now.saturating_sub(1).max(2);
            } else if n_now >= len {
                break;
            } else {
                n = (n_now * 2).min(len);
            }
        }
        progress
    }

    /// Each node no expectation names, with the faults that name it, last node first.
    fn pass_nodes(&mut self) -> bool {
        let mut progress = false;
        let mut i = self.cur.nodes.len();
        while i > 0 && !self.stopped() {
            i -= 1;
            if self.cur.nodes.len() <= 1 {
                break;
            }
            let name = self.cur.nodes[i].name.clone();
            let named = self
                .cur
                .expect
                .iter()
                .chain(&self.cur.expect_violated)
                .any(|p| matches!(p, Property::LeaderIs { node, .. } if *node == name));
            if named {
                continue;
            }
            let (cand, dropped) = without_node(&self.cur, i);
            let change = || match dropped {
                0 => format!("removed node {name:?}"),
                1 => format!("removed node {name:?} and its fault"),
                n => format!("removed node {name:?} and its {n} faults"),
            };
            progress |= self.attempt("nodes", change, &cand);
        }
        progress
    }

    /// Loss and duplication to 0, a uniform delay to a constant (its middle, its maximum or
    /// its minimum): all at once, else each.
    fn pass_network(&mut self) -> bool {
        let net = self.cur.network.clone();
        let mut delays = Vec::new();
        if let Delay::Uniform { min, max } = net.delay {
            let mid = (min.as_micros() + max.as_micros()) / 2;
            let mid = if mid >= MS { round_to(mid, MS) } else { mid };
            for d in [Duration(mid), max, min] {
                if !delays.contains(&d) {
                    delays.push(d);
                }
            }
        }
        let loss = (net.loss > 0.0).then(|| format!("loss {} -> 0", net.loss));
        let duplicate = (net.duplicate > 0.0).then(|| format!("duplicate {} -> 0", net.duplicate));
        let delay = |d: Duration| format!("delay {} -> Constant({d})", delay_text(&net.delay));
        let kinds = usize::from(loss.is_some())
            + usize::from(duplicate.is_some())
            + usize::from(!delays.is_empty());
        if kinds == 0 {
            return false;
        }
        if kinds > 1 {
            let mut all = self.cur.clone();
            all.network.loss = 0.0;
            all.network.duplicate = 0.0;
            let mut parts: Vec<String> = loss.iter().chain(&duplicate).cloned().collect();
            if let Some(&d) = delays.first() {
                all.network.delay = Delay::Constant(d);
                parts.push(delay(d));
            }
            if self.attempt("network", || parts.join(", "), &all) {
                return true;
            }
        }
        let mut progress = false;
        if let Some(change) = loss {
            let mut c = self.cur.clone();
            c.network.loss = 0.0;
            progress |= self.attempt("network", || change, &c);
        }
        if let Some(change) = duplicate {
            let mut c = self.cur.clone();
            c.network.duplicate = 0.0;
            progress |= self.attempt("network", || change, &c);
        }
        for d in delays {
            let mut c = self.cur.clone();
            c.network.delay = Delay::Constant(d);
            if self.attempt("network", || delay(d), &c) {
                progress = true;
                break;
            }
        }
        progress
    }

    /// Simpler faults of the same effect: crashes for pauses and leaves, fewer groups, an
    /// `Unblock` for a `Heal` that lifts a single block.
    fn pass_simplify(&mut self) -> bool {
        let mut progress = false;
        let mut i = 0;
        while i < self.cur.faults.len() && !self.stopped() {
            let f = self.cur.faults[i].clone();
            match &f.fault {
                Fault::Pause(n) => {
                    let mut cand = self.cur.clone();
                    cand.faults[i].fault = Fault::Crash(n.clone());
                    let undo = undo_of(&self.cur.faults, i);
                    if let Some(u) = undo {
                        cand.faults[u].fault = Fault::Restart(n.clone());
                    }
                    let change = match undo {
                        Some(u) => format!(
                            "faults[{i}] Pause({n:?}) at {} and faults[{u}] Resume at {} -> Crash and Restart",
                            f.at, self.cur.faults[u].at
                        ),
                        None => format!("faults[{i}] Pause({n:?}) at {} -> Crash", f.at),
                    };
                    progress |= self.attempt("simplify", || change, &cand);
                }
                Fault::Leave(n) => {
                    let mut cand = self.cur.clone();
                    cand.faults[i].fault = Fault::Crash(n.clone());
                    let change = format!("faults[{i}] Leave({n:?}) at {} -> Crash", f.at);
                    progress |= self.attempt("simplify", || change, &cand);
                }
                Fault::Partition(groups) => {
                    progress |= self.fewer_groups(i, groups);
                }
                Fault::Heal => {
                    // A Heal that lifts one block and nothing else: its Unblock.
                    if let Some((a, b)) = only_block_before(&self.cur.faults, i) {
                        let mut cand = self.cur.clone();
                        cand.faults[i].fault = Fault::Unblock(a.clone(), b.clone());
                        let change =
                            format!("faults[{i}] Heal at {} -> Unblock({a:?}, {b:?})", f.at);
                        progress |= self.attempt("simplify", || change, &cand);
                    }
                }
                _ => {}
            }
            i += 1;
        }
        progress
    }

    /// A partition with one group fewer: two listed groups merged, or a listed group left to
    /// the processes not listed (which form a group of their own).
    fn fewer_groups(&mut self, i: usize, groups: &[Vec<String>]) -> bool {
        let listed: Vec<&Vec<String>> = groups.iter().filter(|g| !g.is_empty()).collect();
        let named: usize = listed.iter().map(|g| g.len()).sum();
        let others = named < self.cur.node_index().len();
        let count = listed.len() + usize::from(others);
        if count <= 2 {
            return false;
        }
        let mut options: Vec<Vec<Vec<String>>> = Vec::new();
        for a in 0..listed.len() {
            for b in a + 1..listed.len() {
                let mut g: Vec<Vec<String>> = listed.iter().map(|g| (*g).clone()).collect();
                let moved = g.remove(b);
                g[a].extend(moved);
                options.push(g);
            }
        }
        if others {
            for a in 0..listed.len() {
                let mut g: Vec<Vec<String>> = listed.iter().map(|g| (*g).clone()).collect();
                g.remove(a);
                options.push(g);
            }
        }
        for g in options {
            let mut cand = self.cur.clone();
            let change = format!(
                "faults[{i}] Partition with {count} groups -> {}: {}",
                count - 1,
                fault_text(&Fault::Partition(g.clone()))
            );
            cand.faults[i].fault = Fault::Partition(g);
            if self.attempt("simplify", || change, &cand) {
                return true;
            }
        }
        false
    }

    /// Each fault earlier (to time 0, to the previous fault's time, or halfway to either,
    /// rounded) or at a rounder time. A move never makes a time less round, and a move
    /// earlier never makes it later, so the pass cannot undo itself.
    fn pass_times(&mut self) -> bool {
        let mut progress = false;
        let mut i = 0;
        while i < self.cur.faults.len() && !self.stopped() {
            let now = self.cur.faults[i].at.as_micros();
            let prev = if i == 0 {
                0
            } else {
                self.cur.faults[i - 1].at.as_micros()
            };
            let rough = roughness(now);
            let mut tries: Vec<u64> = vec![0, prev];
            for base in [prev, 0] {
                let mid = base + now.saturating_sub(base) / 2;
                let roundest = UNITS
                    .iter()
                    .map(|&u| round_to(mid, u))
                    .chain([mid])
                    .find(|&t| base < t && t < now && roughness(t) <= rough);
                tries.extend(roundest);
            }
            tries.retain(|&t| t < now && roughness(t) <= rough);
            // Rounder: the nearest time at each coarser unit, coarsest first.
            let end = self.cur.run_for.as_micros();
            tries.extend(
                UNITS
                    .iter()
                    .take(rough)
                    .map(|&u| round_to(now, u))
                    .filter(|&t| t <= end),
            );
            let mut seen = BTreeSet::new();
            tries.retain(|&t| seen.insert(t));
            for t in tries {
                let mut cand = self.cur.clone();
                cand.faults[i].at = Duration(t);
                // In time order again (a fault moved to the instant of others goes after
                // those listed before it).
                cand.faults.sort_by_key(|f| f.at);
                let change = format!(
                    "faults[{i}] {} at {} -> {}",
                    fault_text(&self.cur.faults[i].fault),
                    Duration(now),
                    Duration(t)
                );
                if self.attempt("times", || change, &cand) {
                    progress = true;
                    break;
                }
            }
            i += 1;
        }
        progress
    }
}

/// The fault that undoes fault `i` of a schedule in time order: the next `Restart` of a
/// crashed or departed node, `Resume` of a paused one, `Unblock` (or `Heal`) of a blocked
/// link, `Heal` of a partition.
fn undo_of(faults: &[FaultSpec], i: usize) -> Option<usize> {
    let undoes = |g: &Fault| match (&faults[i].fault, g) {
        (Fault::Crash(n) | Fault::Leave(n), Fault::Restart(m)) => n == m,
        (Fault::Pause(n), Fault::Resume(m)) => n == m,
        (Fault::Block(a, b), Fault::Unblock(c, d)) => (a, b) == (c, d) || (a, b) == (d, c),
        (Fault::Block(..) | Fault::Partition(_), Fault::Heal) => true,
        _ => false,
    };
    let mut order: Vec<usize> = (0..faults.len()).collect();
    order.sort_by_key(|&j| faults[j].at);
    let pos = order.iter().position(|&j| j == i)?;
    order[pos + 1..]
        .iter()
        .copied()
        .find(|&j| undoes(&faults[j].fault))
}

/// The one link blocked just before fault `i` of a schedule in time order, if a single
/// block and no partition is in effect then.
fn only_block_before(faults: &[FaultSpec], i: usize) -> Option<(String, String)> {
    type Link<'a> = (&'a String, &'a String);
    let same = |(a, b): Link, (c, d): Link| (a, b) == (c, d) || (a, b) == (d, c);
    let mut split = false;
    let mut blocked: Vec<Link> = Vec::new();
    for f in &faults[..i] {
        match &f.fault {
            // (Even one listed group splits it from the processes not listed.)
            Fault::Partition(_) => split = true,
            Fault::Heal => {
                split = false;
                blocked.clear();
            }
            Fault::Block(a, b) if !blocked.iter().any(|&l| same(l, (a, b))) => {
                blocked.push((a, b));
            }
            Fault::Unblock(a, b) => blocked.retain(|&l| !same(l, (a, b))),
            _ => {}
        }
    }
    match blocked[..] {
        [(a, b)] if !split => Some((a.clone(), b.clone())),
        _ => None,
    }
}

/// `s` without node `i`: the faults that name it dropped, its name taken out of the
/// partitions' groups (a group left empty dropped) and its address out of a
/// `server_config` list. Also how many faults were dropped.
fn without_node(s: &Scenario, i: usize) -> (Scenario, usize) {
    let mut c = s.clone();
    let gone = c.nodes.remove(i);
    let name = gone.name.as_str();
    let before = c.faults.len();
    c.faults.retain(|f| match &f.fault {
        Fault::Crash(n)
        | Fault::Restart(n)
        | Fault::Pause(n)
        | Fault::Resume(n)
        | Fault::Leave(n) => n != name,
        Fault::Block(a, b) | Fault::Unblock(a, b) => a != name && b != name,
        Fault::Partition(_) | Fault::Heal => true,
    });
    let dropped = before - c.faults.len();
    for f in &mut c.faults {
        if let Fault::Partition(groups) = &mut f.fault {
            for g in groups.iter_mut() {
                g.retain(|n| n != name);
            }
            groups.retain(|g| !g.is_empty());
        }
    }
    let lines = c.resolved_server_config.take().or(match &c.server_config {
        Some(ServerConfig::Lines(l)) => Some(l.clone()),
        _ => None,
    });
    if let Some(mut lines) = lines {
        if let Some(addr) = &gone.address {
            if lines.len() > 1 {
                lines.retain(|l| l != addr);
            }
        }
        c.server_config = Some(ServerConfig::Lines(lines));
    }
    (c, dropped)
}

/// A fault as a scenario file writes it: `Crash("b")`, `Partition([["a", "b"], ["c"]])`.
pub fn fault_text(f: &Fault) -> String {
    match f {
        Fault::Crash(n) => format!("Crash({n:?})"),
        Fault::Restart(n) => format!("Restart({n:?})"),
        Fault::Pause(n) => format!("Pause({n:?})"),
        Fault::Resume(n) => format!("Resume({n:?})"),
        Fault::Leave(n) => format!("Leave({n:?})"),
        Fault::Partition(g) => format!("Partition({g:?})"),
        Fault::Block(a, b) => format!("Block({a:?}, {b:?})"),
        Fault::Unblock(a, b) => format!("Unblock({a:?}, {b:?})"),
        Fault::Heal => "Heal".into(),
    }
}

/// A fault and its time: `Crash("b") at 4.2s`.
pub fn spec_text(f: &FaultSpec) -> String {
    format!("{} at {}", fault_text(&f.fault), f.at)
}

fn delay_text(d: &Delay) -> String {
    match d {
        Delay::Constant(d) => format!("Constant({d})"),
        Delay::Uniform { min, max } => format!("Uniform({min}..{max})"),
    }
}

fn join_and(parts: &[String]) -> String {
    match parts {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn faults(list: &[(u64, Fault)]) -> Vec<FaultSpec> {
        list.iter()
            .map(|(ms, f)| FaultSpec {
                at: Duration::from_millis(*ms),
                fault: f.clone(),
            })
            .collect()
    }

    #[test]
    fn a_heal_is_an_unblock_only_when_it_lifts_one_block_and_nothing_else() {
        let ab = Fault::Block("a".into(), "b".into());
        let bc = Fault::Block("b".into(), "c".into());
        let unblock_ba = Fault::Unblock("b".into(), "a".into());
        let split = Fault::Partition(vec![vec!["a".into()]]);
        let one = faults(&[(0, ab.clone()), (1, Fault::Heal)]);
        assert_eq!(only_block_before(&one, 1), Some(("a".into(), "b".into())));
        let two = faults(&[(0, ab.clone()), (1, bc.clone()), (2, Fault::Heal)]);
        assert_eq!(only_block_before(&two, 2), None);
        let lifted = faults(&[(0, ab.clone()), (1, bc), (2, unblock_ba), (3, Fault::Heal)]);
        assert_eq!(
            only_block_before(&lifted, 3),
            Some(("b".into(), "c".into()))
        );
        let with_split = faults(&[(0, split.clone()), (1, ab.clone()), (2, Fault::Heal)]);
        assert_eq!(only_block_before(&with_split, 2), None);
        let healed = faults(&[(0, split), (1, Fault::Heal), (2, ab), (3, Fault::Heal)]);
        assert_eq!(
            only_block_before(&healed, 3),
            Some(("a".into(), "b".into()))
        );
        assert_eq!(only_block_before(&healed, 1), None);
    }

    #[test]
    fn undo_pairs_follow_time_order() {
        let f = faults(&[
            (5, Fault::Restart("a".into())),
            (1, Fault::Crash("a".into())),
            (2, Fault::Pause("b".into())),
            (3, Fault::Block("a".into(), "b".into())),
            (4, Fault::Heal),
            (6, Fault::Resume("b".into())),
        ]);
        assert_eq!(undo_of(&f, 1), Some(0));
        assert_eq!(undo_of(&f, 2), Some(5));
        assert_eq!(undo_of(&f, 3), Some(4));
        assert_eq!(undo_of(&f, 0), None);
    }

    #[test]
    fn roundness() {
        assert_eq!(roughness(0), 0);
        assert_eq!(roughness(3 * S), 0);
        assert_eq!(roughness(3_200_000), 1);
        assert_eq!(roughness(3_250_000), 2);
        assert_eq!(roughness(3_251_000), 3);
        assert_eq!(roughness(3_251_001), 4);
        assert_eq!(round_to(3_251_001, 100 * MS), 3_300_000);
        assert_eq!(ceil_to(3_200_001, MS), 3_201_000);
    }
}
