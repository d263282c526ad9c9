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
use crate::scenario::{AlgorithmSpec, Fault, Property, Scenario};
use crate::trace::{hash_hex, TraceEvent};
use crate::world::{Action, World};
use conclave_algorithms::bully::Bully;
use conclave_algorithms::{Algorithm, Cluster, Member, MemberKind, Pid, Role, Time};
use serde::Serialize;
use std::collections::BTreeMap;

/// How to run.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Keep the readable trace (the hash is computed either way).
    pub record_trace: bool,
}

/// Everything a run found, ready to render as text or JSON.
#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    pub scenario: String,
    pub file: String,
    pub algorithm: String,
    pub seed: u64,
    pub trace_hash: String,
    /// Every expectation held.
    pub ok: bool,
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
    /// The command that reproduces this run exactly.
    pub replay: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace: Option<Vec<TraceEvent>>,
}

#[derive(Clone, Debug, Serialize)]
pub struct NodeReport {
    pub name: String,
    pub id: u64,
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
pub fn run_scenario(scenario: &Scenario, file: &str, seed: u64, opts: &RunOptions) -> RunReport {
    match &scenario.algorithm {
        AlgorithmSpec::Bully(p) => run_with::<Bully>(scenario, file, seed, p.clone(), opts),
    }
}

/// The cluster a scenario declares, node `i` being `Pid(i)`.
pub fn cluster_of(scenario: &Scenario) -> Cluster {
    Cluster::new(
        scenario
            .nodes
            .iter()
            .map(|n| Member {
                name: n.name.clone(),
                priority: n.id,
                address: n.address.clone(),
                kind: MemberKind::Voter,
            })
            .collect(),
    )
}

/// The fault schedule with node names resolved (the scenario was validated).
pub fn actions_of(scenario: &Scenario) -> Vec<(Time, Action)> {
    let idx = scenario.node_index();
    let pid = |name: &String| Pid(idx[name.as_str()] as u32);
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
            };
            (Time(f.at.as_micros()), action)
        })
        .collect()
}

/// Every property to evaluate: the standard safety and agreement ones, then the expected ones.
fn properties_of(scenario: &Scenario) -> Vec<Property> {
    let mut all = vec![
        Property::AtMostOneLeader,
        Property::OneLeaderPerComponent,
        Property::Agreement,
        Property::HighestWins,
    ];
    for p in scenario.expect.iter().chain(&scenario.expect_violated) {
        if !all.contains(p) {
            all.push(p.clone());
        }
    }
    all
}

fn run_with<A: Algorithm>(
    scenario: &Scenario,
    file: &str,
    seed: u64,
    params: A::Params,
    opts: &RunOptions,
) -> RunReport {
    let starts: Vec<Time> = scenario
        .nodes
        .iter()
        .map(|n| Time(n.start.as_micros()))
        .collect();
    let mut world = World::<A>::new(
        cluster_of(scenario),
        params,
        &starts,
        &scenario.network,
        actions_of(scenario),
        seed,
        opts.record_trace,
    );
    let end = Time(scenario.run_for.as_micros());
    let props = properties_of(scenario);
    let idx = scenario.node_index();

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
    let mut results: Vec<Option<PropertyResult>> = vec![None; props.len()];
    for (at, i) in timed {
        world.run_until(at);
        results[i] = Some(evaluate(&props[i], &world, &idx, at));
    }
    world.run_until(end);
    for (i, p) in props.iter().enumerate() {
        if results[i].is_none() {
            results[i] = Some(evaluate(p, &world, &idx, end));
        }
    }
    let results: Vec<PropertyResult> = results.into_iter().flatten().collect();
    report(scenario, file, seed, &mut world, &props, results)
}

fn evaluate<A: Algorithm>(
    p: &Property,
    world: &World<A>,
    idx: &BTreeMap<&str, usize>,
    now: Time,
) -> PropertyResult {
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
            Pid(idx[node.as_str()] as u32),
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
    PropertyResult {
        name: p.to_string(),
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
    props: &[Property],
    results: Vec<PropertyResult>,
) -> RunReport {
    let names = world.names().to_vec();
    let name_of = |p: Option<Pid>| p.map(|p| names[p.index()].clone());
    let nodes: Vec<NodeReport> = world
        .status()
        .iter()
        .zip(&scenario.nodes)
        .map(|(s, n): (&NodeStatus, _)| NodeReport {
            name: n.name.clone(),
            id: n.id,
            state: if !s.up {
                "down"
            } else if s.paused {
                "paused"
            } else {
                "running"
            },
            role: s.view.role,
            status: s.view.status.to_string(),
            leader: if s.up { name_of(s.view.leader) } else { None },
        })
        .collect();
    let mut expectations = Vec::new();
    for (list, expected) in [
        (&scenario.expect, "holds"),
        (&scenario.expect_violated, "violated"),
    ] {
        for p in list {
            let r = &results[props.iter().position(|q| q == p).unwrap_or(0)];
            expectations.push(Expectation {
                name: p.to_string(),
                expected,
                ok: r.holds == (expected == "holds"),
                failed_at_us: r.failed_at_us,
                detail: r.detail.clone(),
            });
        }
    }
    let stats = world.stats().clone();
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
        trace_hash: hash_hex(world.trace_hash()),
        ok: expectations.iter().all(|e| e.ok),
        end_time_us: world.now().as_micros(),
        events: stats.events,
        leaders: nodes
            .iter()
            .map(|n| (n.name.clone(), n.leader.clone()))
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
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
        },
        elections: ElectionReport {
            started: stats.elections_started,
            won: stats.leaders_elected,
        },
        time_to_stable_leader_us: time_to_stable,
        expectations,
        properties: results,
        replay: format!("conclave run {file} --seed {seed}"),
        trace: world.take_trace(),
    }
}
