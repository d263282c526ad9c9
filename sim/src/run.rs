//! Running a scenario: build the world, run it, evaluate the properties, report.
//!
//! ```
//! use conclave_sim::{run::{run_scenario, RunOptions}, scenario::Scenario};
//! let s = Scenario::from_str(r#"Scenario(algorithm: Bully(), nodes: [(name: "a", id: 1)],
//!     run_for: "5s", expect: [LeaderIs(node: "a", at: "2s")])"#, "one.ron").unwrap();
//! let r = run_scenario(&s, "one.ron", 3, &RunOptions::default());
//! assert!(r.ok);
//! assert_eq!(r.replay, "conclave run one.ron --seed 3");
//! ```

use crate::properties::{self, NodeStatus};
use crate::scenario::{Fault, Property, Scenario, ServiceKind};
use crate::trace::{hash_hex, TraceEvent};
use crate::world::{stream, Action, Budget, Cut, World, WorldConfig, SCENARIO_STREAM};
use conclave_algorithms::{Algorithm, Cluster, Member, MemberKind, Pid, Role, Time};
use rand::Rng;
use serde::Serialize;
use std::collections::BTreeMap;

/// How to run.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Keep the readable trace (the hash is computed either way).
    pub record_trace: bool,
    /// Limits on events and memory; a run that passes one stops, reported INCOMPLETE.
    pub budget: Budget,
    /// Hand each trace event to this as it happens instead of keeping the trace (the
    /// report's `trace` is then `None`).
    pub trace_sink: Option<fn(&TraceEvent)>,
    /// Skip the trace hash, for runs whose hash no one reads (a sweep without `--results`,
    /// `--save-failures` or `--check-determinism`): the same run, about an eighth fewer
    /// instructions; `trace_hash` is then empty.
    pub no_trace_hash: bool,
}

/// Everything a run found, ready to render as text or JSON.
#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    pub scenario: String,
    pub file: String,
    pub algorithm: String,
    pub seed: u64,
    pub trace_hash: String,
    /// Every expectation held (and the run was not cut short).
    pub ok: bool,
    /// Why the run stopped before `run_for`, if it did: the expectations speak only of the
    /// part that ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incomplete: Option<String>,
    pub end_time_us: u64,
    pub events: u64,
    /// Each node's name, mapped to the leader it names at the end (null when it names none
    /// or is down).
    pub leaders: BTreeMap<String, Option<String>>,
    pub nodes: Vec<NodeReport>,
    pub messages: MessageReport,
    pub elections: ElectionReport,
    /// From the last fault (or node start) to the moment the final leaders were settled.
    pub time_to_stable_leader_us: Option<u64>,
    pub expectations: Vec<Expectation>,
    /// Every property evaluated, expected or not.
    pub properties: Vec<PropertyResult>,
    /// The log server's table at the end, one row per node that reported (seed 002).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_table: Option<Vec<LogRowReport>>,
    /// The command that reproduces this run exactly.
    pub replay: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace: Option<Vec<TraceEvent>>,
}

#[derive(Clone, Debug, Serialize)]
pub struct LogRowReport {
    pub node: String,
    pub address: Option<String>,
    pub coordinator: Option<String>,
    pub group: u64,
    pub status: String,
    pub received_us: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct NodeReport {
    pub name: String,
    /// The priority the run used (the id, or as the algorithm derives it).
    pub id: u64,
    pub address: Option<String>,
    /// How many times the node's role or leader changed (seed 004's hooks run on these).
    pub role_changes: u64,
    /// "running", "paused" or "down".
    pub state: &'static str,
    pub role: Role,
    pub status: String,
    pub leader: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct MessageReport {
    pub total: u64,
    /// Messages of the election itself, not heartbeats or probes.
    pub election: u64,
    pub delivered: u64,
    pub dropped: u64,
    pub duplicated: u64,
    pub by_kind: BTreeMap<String, u64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ElectionReport {
    /// Times a node entered the candidate role.
    pub started: u64,
    /// Times a node became leader.
    pub won: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct PropertyResult {
    pub name: String,
    pub holds: bool,
    /// When it first failed.
    pub failed_at_us: Option<u64>,
    pub detail: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Expectation {
    pub name: String,
    /// "holds" or "violated".
    pub expected: &'static str,
    pub ok: bool,
    pub failed_at_us: Option<u64>,
    pub detail: Option<String>,
}

/// Runs `scenario` once with `seed`. `file` is what the replay command names.
///
/// A scenario with a `sweep` block runs with the faults and network the seed draws
/// ([`Scenario::for_seed`]).
pub fn run_scenario(scenario: &Scenario, file: &str, seed: u64, opts: &RunOptions) -> RunReport {
    let scenario = &*scenario.for_seed(seed);
    crate::with_algorithm!(&scenario.algorithm, |A, p| run_with::<A>(
        scenario,
        file,
        seed,
        p.clone(),
        opts
    ))
}

/// The node priorities of one run: as resolved at load, or drawn from the seed when the
/// scenario asks for random ids (distinct, in 1..=1e9, like seed 000's random ids).
pub fn priorities_of(scenario: &Scenario, seed: u64) -> Vec<u64> {
    if !scenario.random_ids {
        return scenario.priorities.clone();
    }
    let mut rng = stream(seed, SCENARIO_STREAM);
    let mut out: Vec<u64> = Vec::with_capacity(scenario.nodes.len());
    while out.len() < scenario.nodes.len() {
        let id = rng.random_range(1..=1_000_000_000);
        if !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

/// The world a scenario declares: node `i` is `Pid(i)`, the services follow the nodes.
pub fn cluster_of(scenario: &Scenario, seed: u64) -> Cluster {
    let priorities = priorities_of(scenario, seed);
    let nodes = scenario
        .nodes
        .iter()
        .zip(priorities)
        .map(|(n, priority)| Member {
            name: n.name.clone(),
            priority,
            address: n.address.clone(),
            kind: MemberKind::Voter,
        });
    let services = scenario.services().into_iter().map(|(name, _)| Member {
        name,
        priority: 0,
        address: None,
        kind: MemberKind::Service,
    });
    Cluster::new(nodes.chain(services).collect())
}

/// How the world of a scenario is set up for one seed.
pub fn world_config(scenario: &Scenario, seed: u64, record_trace: bool) -> WorldConfig {
    world_config_with(scenario, seed, record_trace, &scenario.services())
}

/// [`world_config`] with the scenario's services given.
fn world_config_with(
    scenario: &Scenario,
    seed: u64,
    record_trace: bool,
    services: &[(String, ServiceKind)],
) -> WorldConfig {
    let n = scenario.nodes.len();
    let mut starts: Vec<Time> = scenario
        .nodes
        .iter()
        .map(|n| Time(n.start.as_micros()))
        .collect();
    starts.extend(services.iter().map(|_| Time::ZERO));
    let log_server = services
        .iter()
        .position(|(_, k)| *k == ServiceKind::LogServer)
        .zip(scenario.log_server.as_ref())
        .map(|(i, spec)| (Pid((n + i) as u32), spec.interval));
    WorldConfig {
        starts,
        network: scenario.network.clone(),
        faults: actions_of(scenario),
        seed,
        record_trace,
        log_server,
        notice_jitter: false,
        lowest_draws: false,
        log_steps: false,
        trace_sink: None,
        hash_trace: true,
    }
}

/// The fault schedule with node names resolved (the scenario was validated).
pub fn actions_of(scenario: &Scenario) -> Vec<(Time, Action)> {
    if scenario.faults.is_empty() {
        return Vec::new();
    }
    let idx = scenario.node_index();
    let pid = |name: &String| Pid(idx[name] as u32);
    scenario
        .faults
        .iter()
        .map(|f| {
            let action = match &f.fault {
                Fault::Crash(n) => Action::Crash(pid(n)),
                Fault::Restart(n) => Action::Restart(pid(n)),
                Fault::Pause(n) => Action::Pause(pid(n)),
                Fault::Resume(n) => Action::Resume(pid(n)),
                Fault::Partition(groups) => {
                    Action::Partition(groups.iter().map(|g| g.iter().map(pid).collect()).collect())
                }
                Fault::Block(a, b) => Action::Block(pid(a), pid(b)),
                Fault::Unblock(a, b) => Action::Unblock(pid(a), pid(b)),
                Fault::Heal => Action::Heal,
                Fault::Leave(n) => Action::Leave(pid(n)),
            };
            (Time(f.at.as_micros()), action)
        })
        .collect()
}

/// The safety and agreement properties every run is checked against.
static STANDARD: [Property; 4] = [
    Property::AtMostOneLeader,
    Property::OneLeaderPerComponent,
    Property::Agreement,
    Property::HighestWins,
];

/// Every property to evaluate: the standard safety and agreement ones, then the expected ones.
fn properties_of(scenario: &Scenario) -> Vec<&Property> {
    let mut all: Vec<&Property> =
        Vec::with_capacity(STANDARD.len() + scenario.expect.len() + scenario.expect_violated.len());
    all.extend(STANDARD.iter());
    for p in scenario.expect.iter().chain(&scenario.expect_violated) {
        // Kinds compared first: most pairs differ in kind, found without a call.
        let same =
            |q: &&Property| std::mem::discriminant(*q) == std::mem::discriminant(p) && *q == p;
        if !all.iter().any(same) {
            all.push(p);
        }
    }
    all
}

/// The process a node or service is (the scenario was validated: every process has a name
/// of its own). A search of the names: a run looks up a few, where a map of every name
/// cost more to build than the searches.
fn process_of(scenario: &Scenario, name: &str) -> Pid {
    let i = match scenario.nodes.iter().position(|n| n.name == name) {
        Some(i) => i,
        None => {
            let services = scenario.services();
            let k = services.iter().position(|(s, _)| s == name);
            scenario.nodes.len() + k.unwrap_or_else(|| panic!("no process is named {name:?}"))
        }
    };
    Pid(i as u32)
}

/// What running a world to the end found, before it is reported.
struct Ran<'s> {
    props: Vec<&'s Property>,
    /// Each property's outcome, in the order of `props`.
    results: Vec<Outcome>,
    cut: Option<Cut>,
}

/// A property's result without its name: the name is written only where it is shown (a
/// report, or a failed expectation of a sweep's seed).
#[derive(Clone, Debug)]
struct Outcome {
    holds: bool,
    /// When it first failed.
    failed_at_us: Option<u64>,
    detail: Option<String>,
}

/// The world of `scenario` for `seed`, as [`World::new`] makes it.
fn world_of<A: Algorithm>(
    scenario: &Scenario,
    seed: u64,
    params: A::Params,
    opts: &RunOptions,
) -> World<A> {
    let mut config = world_config(scenario, seed, opts.record_trace);
    config.trace_sink = opts.trace_sink;
    config.hash_trace = !opts.no_trace_hash;
    World::<A>::new(cluster_of(scenario, seed), params, config)
}

/// What a thread that runs many seeds of one scenario keeps from one run to the next: the
/// last run's world, renewed for the next seed ([`World::renew`]) rather than built and
/// dropped again. Each thread has its own.
#[derive(Default)]
pub struct Kept {
    world: Option<Box<dyn std::any::Any>>,
}

/// The world of `scenario` for `seed`: `kept`'s renewed when it holds one of the same
/// processes (names, addresses and kinds; the priorities are the seed's), else a new one.
fn kept_world<'k, A: Algorithm + 'static>(
    kept: &'k mut Kept,
    scenario: &Scenario,
    seed: u64,
    params: A::Params,
    opts: &RunOptions,
) -> &'k mut World<A> {
    let services = scenario.services();
    let reusable = kept
        .world
        .as_mut()
        .and_then(|w| w.downcast_mut::<World<A>>())
        .is_some_and(|w| same_processes(scenario, &services, w.cluster()));
    if reusable {
        let world = kept
            .world
            .as_mut()
            .and_then(|w| w.downcast_mut::<World<A>>())
            .expect("checked above");
        let mut config = world_config_with(scenario, seed, opts.record_trace, &services);
        config.trace_sink = opts.trace_sink;
        config.hash_trace = !opts.no_trace_hash;
        // The nodes' priorities, then the services' (0, as `cluster_of` gives them).
        let drawn;
        let nodes = if scenario.random_ids {
            drawn = priorities_of(scenario, seed);
            &drawn
        } else {
            &scenario.priorities
        };
        let services = std::iter::repeat_n(0, services.len());
        world.renew(nodes.iter().copied().chain(services), params, config);
    } else {
        kept.world = Some(Box::new(world_of::<A>(scenario, seed, params, opts)));
    }
    kept.world
        .as_mut()
        .and_then(|w| w.downcast_mut::<World<A>>())
        .expect("a world of this algorithm was just put there")
}

/// Whether `cluster` has the processes [`cluster_of`] makes of `scenario`, but for their
/// priorities.
fn same_processes(
    scenario: &Scenario,
    services: &[(String, ServiceKind)],
    cluster: &Cluster,
) -> bool {
    cluster.len() == scenario.nodes.len() + services.len()
        && scenario
            .nodes
            .iter()
            .zip(&cluster.members)
            .all(|(n, m)| m.kind == MemberKind::Voter && m.name == n.name && m.address == n.address)
        && services
            .iter()
            .zip(&cluster.members[scenario.nodes.len()..])
            .all(|((name, _), m)| {
                m.kind == MemberKind::Service && m.name == *name && m.address.is_none()
            })
}

fn run_world<'s, A: Algorithm>(
    scenario: &'s Scenario,
    world: &mut World<A>,
    opts: &RunOptions,
) -> Ran<'s> {
    let end = Time(scenario.run_for.as_micros());
    let props = properties_of(scenario);

    // Properties pinned to an instant are evaluated when the clock reaches it.
    let mut timed: Vec<(Time, usize)> = props
        .iter()
        .enumerate()
        .filter_map(|(i, p)| match p {
            Property::LeaderIs { at: Some(at), .. } => Some((Time(at.as_micros()).min(end), i)),
            _ => None,
        })
        .collect();
    timed.sort();
    let mut results: Vec<Option<Outcome>> = vec![None; props.len()];
    let mut cut = None;
    for (at, i) in timed {
        if let Err(c) = world.run_within(at, &opts.budget) {
            cut = Some(c);
            break;
        }
        results[i] = Some(evaluate(props[i], world, scenario, at));
    }
    if cut.is_none() {
        cut = world.run_within(end, &opts.budget).err();
    }
    let now = world.now();
    for (i, p) in props.iter().enumerate() {
        if results[i].is_none() {
            results[i] = Some(evaluate(p, world, scenario, now));
        }
    }
    let results = results.into_iter().flatten().collect();
    Ran {
        props,
        results,
        cut,
    }
}

fn run_with<A: Algorithm>(
    scenario: &Scenario,
    file: &str,
    seed: u64,
    params: A::Params,
    opts: &RunOptions,
) -> RunReport {
    let mut world = world_of::<A>(scenario, seed, params, opts);
    let Ran {
        props,
        results,
        cut,
    } = run_world::<A>(scenario, &mut world, opts);
    let results = props
        .iter()
        .zip(results)
        .map(|(p, o)| PropertyResult {
            name: name_of_property(p),
            holds: o.holds,
            failed_at_us: o.failed_at_us,
            detail: o.detail,
        })
        .collect();
    let mut r = report(scenario, file, seed, &mut world, &props, results);
    if let Some(cut) = cut {
        r.incomplete = Some(cut_message(scenario, &cut));
        r.ok = false;
    }
    r
}

/// What a run found, without the rest of its report: whether it met its expectations, the
/// expectations it did not meet, its trace hash, and why it was cut short if it was. What a
/// sweep keeps of each seed, for less than a whole [`RunReport`].
#[derive(Clone, Debug)]
pub struct Verdict {
    pub seed: u64,
    pub ok: bool,
    pub trace_hash: String,
    /// The expectations not met, in the order of the report's `expectations`.
    pub failed: Vec<Expectation>,
    pub incomplete: Option<String>,
}

impl Verdict {
    /// The verdict a whole report holds.
    pub fn of(r: &RunReport) -> Self {
        Verdict {
            seed: r.seed,
            ok: r.ok,
            trace_hash: r.trace_hash.clone(),
            failed: r.expectations.iter().filter(|e| !e.ok).cloned().collect(),
            incomplete: r.incomplete.clone(),
        }
    }
}

/// [`run_scenario`] for its verdict only: the same run, the same fields as its report has.
/// Only the expectations not met are named (a name is written, where a passing one's is not
/// needed).
pub fn run_verdict(scenario: &Scenario, seed: u64, opts: &RunOptions) -> Verdict {
    run_verdict_kept(scenario, seed, opts, &mut Kept::default())
}

/// [`run_verdict`] in the world `kept` holds from the thread's last run, if it can be
/// renewed for this one (the same verdict as in a new world).
pub fn run_verdict_kept(
    scenario: &Scenario,
    seed: u64,
    opts: &RunOptions,
    kept: &mut Kept,
) -> Verdict {
    let scenario = &*scenario.for_seed(seed);
    crate::with_algorithm!(&scenario.algorithm, |A, p| {
        let world = kept_world::<A>(kept, scenario, seed, p.clone(), opts);
        let ran = run_world::<A>(scenario, world, opts);
        let mut failed = Vec::new();
        each_expectation(scenario, &ran.props, &ran.results, |p, expected, r| {
            if r.holds != (expected == "holds") {
                failed.push(expectation(p, expected, r));
            }
        });
        let incomplete = ran.cut.as_ref().map(|cut| cut_message(scenario, cut));
        Verdict {
            seed,
            ok: incomplete.is_none() && failed.is_empty(),
            trace_hash: world.trace_hash().map(hash_hex).unwrap_or_default(),
            failed,
            incomplete,
        }
    })
}

/// Calls `f` with each expected result of the scenario (`expect`, then `expect_violated`),
/// its property (as the list of every property has it) and the property's outcome.
fn each_expectation<'s>(
    scenario: &Scenario,
    props: &[&'s Property],
    results: &[Outcome],
    mut f: impl FnMut(&'s Property, &'static str, &Outcome),
) {
    for (list, expected) in [
        (&scenario.expect, "holds"),
        (&scenario.expect_violated, "violated"),
    ] {
        for p in list {
            let i = props.iter().position(|q| *q == p).unwrap_or(0);
            f(props[i], expected, &results[i]);
        }
    }
}

/// An expected result beside the property's outcome.
fn expectation(p: &Property, expected: &'static str, r: &Outcome) -> Expectation {
    Expectation {
        // The property's name as its result has it (equal properties print alike).
        name: name_of_property(p),
        expected,
        ok: r.holds == (expected == "holds"),
        failed_at_us: r.failed_at_us,
        detail: r.detail.clone(),
    }
}

/// Each expected result of the scenario, beside the property's result.
fn expectations(
    scenario: &Scenario,
    props: &[&Property],
    results: &[PropertyResult],
) -> Vec<Expectation> {
    let mut expectations = Vec::new();
    for (list, expected) in [
        (&scenario.expect, "holds"),
        (&scenario.expect_violated, "violated"),
    ] {
        for p in list {
            let r = &results[props.iter().position(|q| *q == p).unwrap_or(0)];
            expectations.push(Expectation {
                // The property's name as its result has it (equal properties print alike).
                name: r.name.clone(),
                expected,
                ok: r.holds == (expected == "holds"),
                failed_at_us: r.failed_at_us,
                detail: r.detail.clone(),
            });
        }
    }
    expectations
}

/// Why a run was cut short, with the durations of 0 that may make a loop with no delay.
fn cut_message(scenario: &Scenario, cut: &Cut) -> String {
    if !matches!(cut, Cut::Livelock { .. }) {
        return cut.to_string();
    }
    let mut zero: Vec<String> = scenario
        .algorithm
        .durations()
        .into_iter()
        .filter(|(_, d)| d.as_micros() == 0)
        .map(|(name, _)| format!("algorithm.{name}"))
        .collect();
    let no_delay = match &scenario.network.delay {
        crate::scenario::Delay::Constant(d) => d.as_micros() == 0,
        crate::scenario::Delay::Uniform { min, .. } => min.as_micros() == 0,
    };
    if no_delay {
        zero.push("network.delay".into());
    }
    if zero.is_empty() {
        cut.to_string()
    } else {
        format!(
            "{cut}; durations of 0 that can make such a loop: {}",
            zero.join(", ")
        )
    }
}

/// A property's name as it prints, written into room made for it at once (`to_string`
/// grows the string as each piece is written).
fn name_of_property(p: &Property) -> String {
    use std::fmt::Write;
    let mut name = String::with_capacity(48);
    let _ = write!(name, "{p}");
    name
}

fn evaluate<A: Algorithm>(
    p: &Property,
    world: &World<A>,
    scenario: &Scenario,
    now: Time,
) -> Outcome {
    let (status, topo, names) = (world.status(), world.topology(), world.names());
    let monitor = world.monitor();
    let stats = world.stats();
    let at_end = |r: Result<(), String>| match r {
        Ok(()) => (true, None, None),
        Err(why) => (false, Some(now), Some(why)),
    };
    let (holds, failed_at, detail) = match p {
        Property::AtMostOneLeader => match &monitor.at_most_one {
            None => (true, None, None),
            Some((t, why)) => (false, Some(*t), Some(why.clone())),
        },
        Property::OneLeaderPerComponent => match &monitor.per_component {
            None => (true, None, None),
            Some((t, why)) => (false, Some(*t), Some(why.clone())),
        },
        Property::Agreement => at_end(properties::agreement(status, topo, names).map(|_| ())),
        Property::HighestWins => at_end(properties::highest_wins(status, topo, names)),
        Property::LeaderIs { node, .. } => at_end(properties::leader_is(
            status,
            topo,
            names,
            process_of(scenario, node),
        )),
        Property::EventualLeader(within) => {
            let deadline = world.last_disturbance() + *within;
            at_end(match &monitor.settled {
                Some((since, _)) if *since <= deadline => Ok(()),
                Some((since, _)) => Err(format!(
                    "the final leaders were settled at {since}, after the deadline {deadline}"
                )),
                None => Err(match properties::agreement(status, topo, names) {
                    Err(why) => format!("no stable leader at the end: {why}"),
                    Ok(_) => "no stable leader at the end".into(),
                }),
            })
        }
        Property::MessagesAtMost(n) => at_end(if stats.sent <= *n {
            Ok(())
        } else {
            Err(format!("{} messages sent", stats.sent))
        }),
        Property::ElectionMessagesAtMost(n) => at_end(if stats.election_sent <= *n {
            Ok(())
        } else {
            Err(format!("{} election messages sent", stats.election_sent))
        }),
    };
    Outcome {
        holds,
        failed_at_us: failed_at.map(Time::as_micros),
        detail,
    }
}

fn report<A: Algorithm>(
    scenario: &Scenario,
    file: &str,
    seed: u64,
    world: &mut World<A>,
    props: &[&Property],
    results: Vec<PropertyResult>,
) -> RunReport {
    let trace_hash = world.trace_hash().map(hash_hex).unwrap_or_default();
    let trace = world.take_trace();
    let world = &*world;
    let names = world.names();
    let name_of = |p: Option<Pid>| p.map(|p| names[p.index()].clone());
    let cluster = world.cluster();
    let stats = world.stats();
    let nodes: Vec<NodeReport> = world
        .status()
        .iter()
        .zip(&cluster.members)
        .enumerate()
        .map(|(i, (s, m)): (usize, (&NodeStatus, _))| NodeReport {
            name: m.name.clone(),
            id: m.priority,
            address: m.address.clone(),
            role_changes: stats.role_changes[i],
            state: if !s.up {
                "down"
            } else if s.paused {
                "paused"
            } else {
                "running"
            },
            role: if s.voter { s.view.role } else { Role::Service },
            status: s.view.status.to_string(),
            leader: if s.up { name_of(s.view.leader) } else { None },
        })
        .collect();
    let log_table = world.log_table().map(|table| {
        table
            .iter()
            .map(|(p, row)| LogRowReport {
                node: names[p.index()].clone(),
                address: cluster.member(*p).address.clone(),
                coordinator: name_of(row.report.coordinator),
                group: row.report.group,
                status: row.report.status.to_string(),
                received_us: row.received.as_micros(),
            })
            .collect()
    });
    let expectations = expectations(scenario, props, &results);
    let time_to_stable = world
        .monitor()
        .settled
        .as_ref()
        .map(|(since, _)| since.since(world.last_disturbance()).as_micros());
    RunReport {
        scenario: scenario.name.clone(),
        file: file.to_string(),
        algorithm: scenario.algorithm.name().to_string(),
        seed,
        incomplete: None,
        trace_hash,
        ok: expectations.iter().all(|e| e.ok),
        end_time_us: world.now().as_micros(),
        events: stats.events,
        leaders: nodes
            .iter()
            .zip(&cluster.members)
            .filter(|(_, m)| m.kind == MemberKind::Voter)
            .map(|(n, _)| (n.name.clone(), n.leader.clone()))
            .collect(),
        nodes,
        messages: MessageReport {
            total: stats.sent,
            election: stats.election_sent,
            delivered: stats.delivered,
            dropped: stats.dropped,
            duplicated: stats.duplicated,
            by_kind: stats
                .by_kind
                .iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        },
        elections: ElectionReport {
            started: stats.elections_started,
            won: stats.leaders_elected,
        },
        time_to_stable_leader_us: time_to_stable,
        expectations,
        properties: results,
        log_table,
        replay: format!("conclave run {file} --seed {seed}"),
        trace,
    }
}
