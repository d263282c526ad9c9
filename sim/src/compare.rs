//! Election cost against cluster size (`conclave compare`): a scenario's algorithm and
//! parameters on clusters of N nodes, under five fault cases, over several seeds.
//!
//! **Scaling.** [`scale`] makes the scenario's cluster N nodes named `n1`..`nN` with ids 1..N
//! (the highest id, `nN`, is the top node). The algorithm and its parameters, the network and
//! the services (registry, group daemon, log server) stay as the scenario has them; its
//! faults, start times, expectations, `sweep` and `explore` blocks are dropped, since each
//! case sets its own. What a scenario fixes per node is extended:
//! - addresses, when every node has one and they are one host with consecutive ports in node
//!   order (`192.168.145.1:9000`, `:9001`...): the same host, ports counting on;
//! - a `server_config`: written as the N generated addresses in node order, so `nN` is the
//!   highest, as ids 1..N would make it;
//! - GcdBully identities: `(100, 1000000 + i)` for `ni`, distinct and ordered as the ids;
//! - `random_ids`: kept, so each seed draws the N ids (the top and lowest nodes are found
//!   per seed);
//! - majority election (`Quorum`) prefers the oldest node, ties to the first listed: with
//!   the nodes starting together `n1` is its top node and `nN` its lowest.
//!
//! Anything else is refused with the reason ([`scale`]'s error): addresses of several hosts
//! or not counting on, ports past 65535, a service named like a generated node. GcdBully's
//! feigned failures are turned off (they are faults, and the cases bring their own).
//!
//! **Cases** ([`Case`]), each from a cluster whose nodes start together unless said:
//! - `all-start`: no fault.
//! - `coordinator-crash-lowest-detects`: once the first election has settled, the coordinator
//!   crashes just before the lowest node's next periodic check of it (heartbeat, check or
//!   vote), and every other node checks half a period later (it started half a period after
//!   the lowest): the lowest notices first and starts its election before any other. With
//!   majority election the lowest (the youngest) starts just under a vote period after the
//!   others, so that its vote finding the master lost comes before theirs. Only algorithms
//!   whose nodes notice a crash by their own periodic checks allow this: not a failure
//!   detector that tells every node after the same delay (AsyncBully), nor probes at random
//!   intervals (GcdBully), nor Bully with heartbeats off; the case is then `Cannot`, with
//!   the reason.
//! - `all-notice`: the coordinator crashes just before the next check (heartbeat, check or
//!   vote), which every node makes at the same instant (all started together); with a
//!   failure detector, every node is told after the same delay. Not with random probes.
//! - `highest-recovers`: the top node crashes once the cluster has settled, and restarts once
//!   the others have settled on a new leader.
//! - `partition-heal`: the network splits into the lower half of the nodes by priority and the
//!   upper half (with the services), and heals once both sides have settled.
//!
//! A fault comes once the cluster has been settled (every component agreeing on one running
//! leader) for the quiet period: the sum of the algorithm's durations, at least 1 s. If the
//! cluster does not settle, the next fault comes a quiet period after the last one.
//!
//! Each crash case checks its premise: who noticed first is who first changed role or leader
//! after the crash (with majority election, who first voted for another node than the
//! crashed one). `coordinator-crash-lowest-detects` needs the lowest node alone, `all-notice`
//! every live node at one instant; a run where it did not hold is reported as such.
//!
//! **Measures**, each run: the election messages (`Message::is_election`: not heartbeats,
//! probes or checks) sent from the last fault (the start, for `all-start`) until the cluster
//! settles for good, that is one election; and the time from the last fault to then (the
//! run's `time_to_stable_leader_us`). A run stops once settled for the quiet period, or with
//! no stable leader ("never") 10 quiet periods, at least 60 s, after its last fault.
//!
//! Where fault times depend on when the cluster settled, they are found by running the same
//! world without the later faults first: a run is a deterministic function of its scenario
//! and seed, so its part before a fault is the same with or without that fault.

use crate::run::{cluster_of, priorities_of, world_config};
use crate::scenario::{AlgorithmSpec, Delay, Fault, FaultSpec, NodeSpec, Scenario, ServerConfig};
use crate::world::World;
use conclave_algorithms::bully::BullyParams;
use conclave_algorithms::{Algorithm, Duration, Pid, Role, Time};
use serde::Serialize;

/// One fault case of the comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Case {
    AllStart,
    CoordinatorCrashLowestDetects,
    AllNotice,
    HighestRecovers,
    PartitionHeal,
}

impl Case {
    pub const ALL: [Case; 5] = [
        Case::AllStart,
        Case::CoordinatorCrashLowestDetects,
        Case::AllNotice,
        Case::HighestRecovers,
        Case::PartitionHeal,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Case::AllStart => "all-start",
            Case::CoordinatorCrashLowestDetects => "coordinator-crash-lowest-detects",
            Case::AllNotice => "all-notice",
            Case::HighestRecovers => "highest-recovers",
            Case::PartitionHeal => "partition-heal",
        }
    }

    /// What the case does, in one line.
    pub fn description(self) -> &'static str {
        match self {
            Case::AllStart => "all nodes start together; no fault",
            Case::CoordinatorCrashLowestDetects => {
                "after the first election the coordinator crashes; the lowest node notices first and elects before any other"
            }
            Case::AllNotice => "after the first election the coordinator crashes; every node notices at the same instant",
            Case::HighestRecovers => {
                "the top node crashes, the others settle on a new leader, then it restarts"
            }
            Case::PartitionHeal => {
                "the network splits into the lower and the upper half by priority (services with the upper); both settle; it heals"
            }
        }
    }

    /// The textbook figure for this case, if there is one: Bully's N² − 1 when all start
    /// together, and (N − 1)² + N − 2 when the highest crashes and only the lowest detects it.
    pub fn textbook(self, algorithm: &AlgorithmSpec, n: u64) -> Option<Textbook> {
        match (self, algorithm) {
            (Case::AllStart, AlgorithmSpec::Bully(_)) => Some(Textbook {
                formula: "N²−1",
                messages: n * n - 1,
            }),
            (Case::CoordinatorCrashLowestDetects, AlgorithmSpec::Bully(_)) if n >= 2 => {
                Some(Textbook {
                    formula: "(N−1)²+N−2",
                    messages: (n - 1) * (n - 1) + n - 2,
                })
            }
            _ => None,
        }
    }
}

impl std::str::FromStr for Case {
    type Err = String;
    fn from_str(s: &str) -> Result<Case, String> {
        Case::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Case::ALL.iter().map(|c| c.name()).collect();
                format!("unknown case {s:?} (cases are: {})", names.join(", "))
            })
    }
}

/// A textbook message count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Textbook {
    pub formula: &'static str,
    pub messages: u64,
}

/// A scenario's cluster made N nodes, and what the scaling did beyond ids 1..N.
#[derive(Clone, Debug)]
pub struct Scaled {
    pub scenario: Scenario,
    pub notes: Vec<String>,
}

/// The scenario with N nodes (see the module's documentation), or why it cannot be scaled.
pub fn scale(base: &Scenario, n: usize) -> Result<Scaled, String> {
    if n == 0 {
        return Err("a cluster needs at least one node".into());
    }
    if n > crate::scenario::MAX_NODES {
        return Err(format!(
            "{n} nodes: at most {} are supported",
            crate::scenario::MAX_NODES
        ));
    }
    let mut notes = Vec::new();
    let mut algorithm = base.algorithm.clone();
    if let AlgorithmSpec::GcdBully(p) = &mut algorithm {
        if p.feign.take().is_some() {
            notes.push("feigned failures off (the cases bring their own faults)".to_string());
        }
    }
    let addresses = extend_addresses(base, n)?;
    if let Some(a) = &addresses {
        notes.push(format!("addresses from {}, one port a node", a[0]));
    }
    let server_config = match (&base.server_config, &addresses) {
        (None, _) => None,
        (Some(_), Some(a)) => {
            notes.push("server_config: the addresses in node order (nN highest)".to_string());
            Some(ServerConfig::Lines(a.clone()))
        }
        (Some(_), None) => {
            return Err(
                "a server_config needs every node's address, and the nodes have none".into(),
            )
        }
    };
    if base.random_ids {
        notes.push("random ids, drawn from each seed".to_string());
    }
    let gcd = matches!(algorithm, AlgorithmSpec::GcdBully(_));
    if gcd {
        notes.push("identities (100, 1000000 + i)".to_string());
    }
    let with_ids = matches!(
        algorithm,
        AlgorithmSpec::Bully(_)
            | AlgorithmSpec::GarciaMolinaBully(_)
            | AlgorithmSpec::Invitation(_)
            | AlgorithmSpec::AsyncBully(_)
    ) && server_config.is_none()
        && !base.random_ids;
    for (service, _) in base.services() {
        let clash = service
            .strip_prefix('n')
            .and_then(|k| k.parse::<usize>().ok())
            .is_some_and(|k| (1..=n).contains(&k) && service == format!("n{k}"));
        if clash {
            return Err(format!(
                "the service {service:?} has the name node {service} would have"
            ));
        }
    }
    let nodes = (1..=n)
        .map(|i| NodeSpec {
            name: format!("n{i}"),
            id: with_ids.then_some(i as u64),
            identity: gcd.then_some((100, 1_000_000 + i as u64)),
            address: addresses.as_ref().map(|a| a[i - 1].clone()),
            start: Duration::ZERO,
        })
        .collect();
    let scenario = Scenario {
        name: base.name.clone(),
        description: base.description.clone(),
        algorithm,
        nodes,
        network: base.network.clone(),
        faults: Vec::new(),
        run_for: Duration::from_secs(1),
        seeds: vec![0],
        expect: Vec::new(),
        expect_violated: Vec::new(),
        server_config,
        random_ids: base.random_ids,
        log_server: base.log_server.clone(),
        explore: None,
        sweep: None,
        priorities: Vec::new(),
        resolved_server_config: None,
    };
    let scenario = reload(&scenario)?;
    Ok(Scaled { scenario, notes })
}

/// The scenario loaded from its own text: validated, with its priorities resolved.
fn reload(s: &Scenario) -> Result<Scenario, String> {
    Scenario::from_str(&s.to_ron(""), &format!("{}.ron", s.name))
        .map_err(|e| format!("the scaled scenario is not valid: {e}"))
}

/// The scenario's node addresses extended to `n` nodes, if the nodes have addresses.
fn extend_addresses(base: &Scenario, n: usize) -> Result<Option<Vec<String>>, String> {
    let given: Vec<Option<&str>> = base.nodes.iter().map(|x| x.address.as_deref()).collect();
    if given.iter().all(Option::is_none) {
        return Ok(None);
    }
    let listed = || {
        given
            .iter()
            .map(|a| a.unwrap_or("none"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let no_pattern = || {
        format!(
            "the addresses ({}) are not one host with consecutive ports in node order, so there is no pattern to extend",
            listed()
        )
    };
    let mut parsed = Vec::new();
    for a in &given {
        let (host, port) = a
            .and_then(|a| a.rsplit_once(':'))
            .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
            .ok_or_else(no_pattern)?;
        parsed.push((host, u64::from(port)));
    }
    let (host, first) = parsed[0];
    let counts_on = parsed
        .iter()
        .enumerate()
        .all(|(i, &(h, p))| h == host && p == first + i as u64);
    if !counts_on {
        return Err(no_pattern());
    }
    let last = first + n as u64 - 1;
    if last > u64::from(u16::MAX) {
        return Err(format!(
            "ports from {first} for {n} nodes would pass 65535 (the last would be {last})"
        ));
    }
    Ok(Some(
        (0..n as u64)
            .map(|i| format!("{host}:{}", first + i))
            .collect(),
    ))
}

/// One seed of one case: what was run and what it measured.
#[derive(Clone, Debug, Serialize)]
pub struct Run {
    pub seed: u64,
    /// Election messages from the last fault (the start) to the stable leader; to the end of
    /// the run when it never settled.
    pub election_messages: u64,
    /// Times a node became leader in that window.
    pub elections_won: u64,
    /// From the last fault (the start) to the stable leader; `None`: never.
    pub time_to_stable_leader_us: Option<u64>,
    /// The leaders agreed on at the end (one per component); empty if it never settled.
    pub leaders: Vec<String>,
    /// The running nodes that consider themselves leader at the end.
    pub leading_at_end: Vec<String>,
    /// The nodes whose role or leader changed first after the last fault (crash cases).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub first_to_notice: Vec<String>,
    /// Whether the case's premise held (the lowest noticed alone, or all at once).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub premise_held: Option<bool>,
    /// Nodes that did not start at 0, and when they started.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub starts: Vec<(String, Duration)>,
    /// The faults of the run, as a scenario's `faults` would list them.
    pub faults: Vec<FaultSpec>,
}

/// A case at one cluster size: measured over the seeds, or why it cannot be made.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum Cell {
    Measured(Measured),
    /// The case cannot be made for this algorithm (or size): the reason.
    Cannot {
        reason: String,
    },
    /// No seed could be set up (the cluster never settled before the faults): the first
    /// seed's reason.
    Failed {
        reason: String,
    },
}

/// A case measured at one size over the seeds.
#[derive(Clone, Debug, Serialize)]
pub struct Measured {
    /// Over the runs that settled; `None` if none did.
    pub messages: Option<Stat>,
    pub time_to_stable_leader_us: Option<Stat>,
    pub elections_won: Option<Stat>,
    /// Seeds with no stable leader at the end.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub never_settled: Vec<u64>,
    /// Seeds where the case's premise did not hold (who noticed first).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub premise_failed: Vec<u64>,
    /// Seeds whose case could not be set up (their cluster never settled before the
    /// faults), and why: not among the runs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub setup_failed: Vec<SetupFailure>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub textbook: Option<Textbook>,
    pub runs: Vec<Run>,
}

/// A seed whose case could not be set up.
#[derive(Clone, Debug, Serialize)]
pub struct SetupFailure {
    pub seed: u64,
    pub reason: String,
}

/// Mean, least and most over seeds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Stat {
    pub mean: f64,
    pub min: u64,
    pub max: u64,
}

impl Stat {
    pub fn of(values: &[u64]) -> Option<Stat> {
        let (&min, &max) = (values.iter().min()?, values.iter().max()?);
        let mean = values.iter().map(|&v| v as f64).sum::<f64>() / values.len() as f64;
        Some(Stat { mean, min, max })
    }
}

/// A case at every size.
#[derive(Clone, Debug, Serialize)]
pub struct CaseRow {
    pub case: Case,
    /// One per size, in the order of the sizes.
    pub cells: Vec<(usize, Cell)>,
}

/// One scenario compared at every size.
#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    /// The scenario file as given.
    pub file: String,
    pub scenario: String,
    pub algorithm: String,
    /// What the scaling did beyond names and ids (addresses, identities...).
    pub scaling: Vec<String>,
    /// How long each fault waits for the cluster to have settled (see [`quiet_of`]).
    pub quiet_us: u64,
    /// How long a run goes on without a stable leader after its last fault ([`cap_of`]).
    pub cap_us: u64,
    pub cases: Vec<CaseRow>,
}

/// Why a scenario cannot be compared at a size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CannotScale {
    pub file: String,
    pub nodes: usize,
    pub why: String,
}

impl std::fmt::Display for CannotScale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = std::path::Path::new(&self.file)
            .file_name()
            .map_or(self.file.clone(), |n| n.to_string_lossy().into_owned());
        write!(
            f,
            "cannot scale {name} to {} nodes: {}",
            self.nodes, self.why
        )
    }
}

/// Compares `base` at every size in `sizes`, each case over `seeds`.
pub fn compare(
    base: &Scenario,
    file: &str,
    sizes: &[usize],
    seeds: &[u64],
    cases: &[Case],
) -> Result<Comparison, CannotScale> {
    let mut scaled = Vec::new();
    for &n in sizes {
        let s = scale(base, n).map_err(|why| CannotScale {
            file: file.to_string(),
            nodes: n,
            why,
        })?;
        scaled.push((n, s));
    }
    let mut scaling: Vec<String> = Vec::new();
    for (_, s) in &scaled {
        for note in &s.notes {
            if !scaling.contains(note) {
                scaling.push(note.clone());
            }
        }
    }
    let mut rows: Vec<CaseRow> = cases
        .iter()
        .map(|&case| CaseRow {
            case,
            cells: Vec::new(),
        })
        .collect();
    for (n, s) in &scaled {
        let results = run_size(&s.scenario, seeds, cases);
        for (row, cell) in rows.iter_mut().zip(results) {
            row.cells.push((*n, cell));
        }
    }
    // The algorithm as the runs have it (GcdBully without its feigned failures).
    let algorithm = scaled
        .first()
        .map_or(&base.algorithm, |(_, s)| &s.scenario.algorithm);
    Ok(Comparison {
        file: file.to_string(),
        scenario: base.name.clone(),
        algorithm: base.algorithm.name().to_string(),
        scaling,
        quiet_us: quiet_of(algorithm).as_micros(),
        cap_us: cap_of(algorithm).as_micros(),
        cases: rows,
    })
}

/// Every case at one size, over the seeds.
pub fn run_size(scaled: &Scenario, seeds: &[u64], cases: &[Case]) -> Vec<Cell> {
    let n = scaled.nodes.len() as u64;
    /// A case's runs so far, and the seeds it could not set up.
    type Runs = (Vec<Run>, Vec<SetupFailure>);
    // Per case: why it cannot be made, or its runs.
    let mut per_case: Vec<Result<Runs, String>> = cases
        .iter()
        .map(|&c| feasible(scaled, c).map(|()| (Vec::new(), Vec::new())))
        .collect();
    for &seed in seeds {
        let mut setup = Setup::new(scaled, seed);
        for (i, &case) in cases.iter().enumerate() {
            let Ok((runs, failures)) = &mut per_case[i] else {
                continue;
            };
            match setup.run(case) {
                Ok(run) => runs.push(run),
                Err(reason) => failures.push(SetupFailure { seed, reason }),
            }
        }
    }
    per_case
        .into_iter()
        .zip(cases)
        .map(|(r, &case)| match r {
            Err(reason) => Cell::Cannot { reason },
            Ok((runs, failures)) if runs.is_empty() => Cell::Failed {
                reason: failures.first().map_or("no seed".into(), |f| {
                    format!("seed {}: {}", f.seed, f.reason)
                }),
            },
            Ok((runs, failures)) => Cell::Measured(summarize(
                runs,
                failures,
                case.textbook(&scaled.algorithm, n),
            )),
        })
        .collect()
}

/// One case of the scaled scenario with one seed (as [`run_size`] runs each): the run, or
/// why the case cannot be made or this seed set up. For benchmarks that measure one run at
/// a time.
pub fn run_one(scaled: &Scenario, case: Case, seed: u64) -> Result<Run, String> {
    feasible(scaled, case)?;
    Setup::new(scaled, seed).run(case)
}

fn summarize(
    runs: Vec<Run>,
    setup_failed: Vec<SetupFailure>,
    textbook: Option<Textbook>,
) -> Measured {
    let settled: Vec<&Run> = runs
        .iter()
        .filter(|r| r.time_to_stable_leader_us.is_some())
        .collect();
    let of = |f: &dyn Fn(&Run) -> u64| Stat::of(&settled.iter().map(|r| f(r)).collect::<Vec<_>>());
    Measured {
        messages: of(&|r| r.election_messages),
        time_to_stable_leader_us: of(&|r| r.time_to_stable_leader_us.unwrap_or(0)),
        elections_won: of(&|r| r.elections_won),
        never_settled: runs
            .iter()
            .filter(|r| r.time_to_stable_leader_us.is_none())
            .map(|r| r.seed)
            .collect(),
        premise_failed: runs
            .iter()
            .filter(|r| r.premise_held == Some(false))
            .map(|r| r.seed)
            .collect(),
        setup_failed,
        textbook,
        runs,
    }
}

/// The quiet period: how long a cluster stays settled before the next fault, and after the
/// last before a run stops. The sum of the algorithm's durations, at least 1 s.
pub fn quiet_of(algorithm: &AlgorithmSpec) -> Duration {
    let sum = algorithm
        .durations()
        .iter()
        .fold(Duration::ZERO, |a, (_, d)| a + *d);
    sum.max(Duration::from_secs(1))
}

/// How long after its last fault a run may go on without a stable leader: 10 quiet periods,
/// at least 60 s.
pub fn cap_of(algorithm: &AlgorithmSpec) -> Duration {
    Duration(quiet_of(algorithm).as_micros() * 10).max(Duration::from_secs(60))
}

/// How the nodes of an algorithm notice that their coordinator crashed.
enum Noticing {
    /// Each node checks every `period` from its start (heartbeat, check, vote); a check
    /// that finds the coordinator dead makes it notice, a timeout later.
    Periodic {
        period: Duration,
        what: &'static str,
    },
    /// Majority election: votes every `period` from a node's start; a node not heard from
    /// for `lost` is lost at the next vote.
    Votes { period: Duration, lost: Duration },
    /// The world's failure detector tells every node after the same delay.
    Detector { delay: Duration },
    /// No node can be made to notice first, or all at once: why.
    Uncontrolled(String),
}

fn noticing(a: &AlgorithmSpec) -> Noticing {
    match a {
        AlgorithmSpec::Bully(BullyParams {
            heartbeat_interval, ..
        }) => {
            if *heartbeat_interval == Duration::ZERO {
                Noticing::Uncontrolled(
                    "heartbeat_interval is 0s: heartbeats are off, so no node notices a crash"
                        .into(),
                )
            } else {
                Noticing::Periodic {
                    period: *heartbeat_interval,
                    what: "heartbeat_interval",
                }
            }
        }
        AlgorithmSpec::GarciaMolinaBully(p) => {
            if p.check_interval == Duration::ZERO {
                Noticing::Uncontrolled(
                    "check_interval is 0s: the checks are off, so no node notices a crash".into(),
                )
            } else {
                Noticing::Periodic {
                    period: p.check_interval,
                    what: "check_interval",
                }
            }
        }
        AlgorithmSpec::Invitation(p) => Noticing::Periodic {
            period: p.check_interval,
            what: "check_interval",
        },
        AlgorithmSpec::AsyncBully(p) => Noticing::Detector {
            delay: p.detector.delay(),
        },
        AlgorithmSpec::GcdBully(p) => Noticing::Uncontrolled(format!(
            "followers probe the leader at random intervals ({}..{}, drawn from the seed), so no node can be made to notice first or all at once",
            p.probe_min, p.probe_max
        )),
        AlgorithmSpec::Quorum(p) => Noticing::Votes {
            period: p.vote_interval,
            lost: p.lost_timeout,
        },
    }
}

/// The longest a message can take on the scenario's network.
fn max_delay(s: &Scenario) -> Duration {
    match s.network.delay {
        Delay::Constant(d) => d,
        Delay::Uniform { max, .. } => max,
    }
}

/// Whether `case` can be made for the scaled scenario at all, before any run.
fn feasible(s: &Scenario, case: Case) -> Result<(), String> {
    let n = s.nodes.len();
    match case {
        Case::AllStart | Case::HighestRecovers => Ok(()),
        Case::PartitionHeal if n < 2 => Err("one node cannot be split in two".into()),
        Case::PartitionHeal => Ok(()),
        Case::CoordinatorCrashLowestDetects | Case::AllNotice if n < 2 => {
            Err("one node: nobody is left to notice the crash".into())
        }
        Case::CoordinatorCrashLowestDetects => match noticing(&s.algorithm) {
            Noticing::Periodic { period, what } => lowest_offset(s, period, what).map(|_| ()),
            Noticing::Votes { period, lost } => votes_offset(s, period, lost).map(|_| ()),
            Noticing::Detector { delay } => Err(format!(
                "the failure detector tells every node after the same delay ({delay}), so none can be made to notice first"
            )),
            Noticing::Uncontrolled(why) => Err(why),
        },
        Case::AllNotice => match noticing(&s.algorithm) {
            Noticing::Periodic { period, what } => {
                let d = max_delay(s);
                if period.as_micros() > 2 * d.as_micros() + 1 {
                    Ok(())
                } else {
                    Err(format!(
                        "{what} {period} is too short against the network's maximum delay {d}: a check is not answered before the next"
                    ))
                }
            }
            Noticing::Votes { .. } | Noticing::Detector { .. } => Ok(()),
            Noticing::Uncontrolled(why) => Err(why),
        },
    }
}

/// Periodic checks: how much later than the lowest node the others start (half a period),
/// if that lets the lowest notice first: its first message must reach the others before
/// they check (more than the maximum delay), and every earlier check must be answered
/// before the crash (two maximum delays and a microsecond).
fn lowest_offset(s: &Scenario, period: Duration, what: &str) -> Result<Duration, String> {
    let d = max_delay(s).as_micros();
    let half = period.as_micros() / 2;
    if half > 2 * d + 1 {
        Ok(Duration(half))
    } else {
        Err(format!(
            "{what} {period} is too short against the network's maximum delay {}: half a period between the lowest node's check and the others' must exceed two maximum delays",
            Duration(d)
        ))
    }
}

/// Majority election: how long before the others' votes the lowest node's votes come. The
/// others find the crashed node lost at the first vote more than `lost` after its last vote
/// arrived; the lowest node's vote comes half the margin before that.
fn votes_offset(s: &Scenario, period: Duration, lost: Duration) -> Result<Duration, String> {
    let (p, l, d) = (
        period.as_micros(),
        lost.as_micros(),
        max_delay(s).as_micros(),
    );
    let k = (l + d) / p + 1;
    let margin = k * p - l - d;
    if margin >= 2 {
        Ok(Duration(margin / 2))
    } else {
        Err(format!(
            "lost_timeout {lost} plus the maximum delay {} leaves no margin before a vote (every {period})",
            Duration(d)
        ))
    }
}

/// What a driven run found.
struct Driven {
    /// When the cluster settled for good, if it was settled at the end.
    settled_at: Option<Time>,
    leaders: Vec<Pid>,
    last: Time,
    window_messages: u64,
    window_won: u64,
    first_to_notice: Vec<Pid>,
    leading_at_end: Vec<Pid>,
    trace: Option<Vec<crate::trace::TraceEvent>>,
}

/// Runs the scenario with `seed` one instant at a time until it has been settled for
/// `quiet` after its last fault (or start), or `cap` after it.
fn drive(s: &Scenario, seed: u64) -> Driven {
    drive_watching(s, seed, None)
}

/// [`drive`]; with `votes_away_from`, who noticed first is who first voted for another node
/// than this one after the last fault (majority election: a node that finds its master lost
/// changes its wish, which its role and leader do not show until the votes have come in).
fn drive_watching(s: &Scenario, seed: u64, votes_away_from: Option<&str>) -> Driven {
    let quiet = quiet_of(&s.algorithm);
    let cap = cap_of(&s.algorithm);
    let mut d = crate::with_algorithm!(&s.algorithm, |A, p| drive_with::<A>(
        s,
        seed,
        p.clone(),
        quiet,
        cap,
        votes_away_from.is_some(),
    ));
    if let (Some(away), Some(trace)) = (votes_away_from, d.trace.take()) {
        let index = s.node_index();
        let wish = format!("wish: {away} }}");
        let voted_away = |e: &&crate::trace::TraceEvent| {
            e.time_us >= d.last.as_micros()
                && matches!(&e.what, crate::trace::What::Send { msg, .. }
                    if msg.starts_with("Vote ") && !msg.ends_with(&wish))
        };
        d.first_to_notice = match trace.iter().find(voted_away) {
            None => Vec::new(),
            Some(first) => {
                let mut who: Vec<Pid> = trace
                    .iter()
                    .filter(voted_away)
                    .filter(|e| e.time_us == first.time_us)
                    .filter_map(|e| index.get(&e.node).map(|&i| Pid(i as u32)))
                    .collect();
                who.sort();
                who.dedup();
                who
            }
        };
    }
    d
}

fn drive_with<A: Algorithm>(
    s: &Scenario,
    seed: u64,
    params: A::Params,
    quiet: Duration,
    cap: Duration,
    record_trace: bool,
) -> Driven {
    let mut world = World::<A>::new(
        cluster_of(s, seed),
        params,
        world_config(s, seed, record_trace),
    );
    let last = world.last_disturbance();
    if last > Time::ZERO {
        world.run_until(Time(last.as_micros() - 1));
    }
    let base = (world.stats().election_sent, world.stats().leaders_elected);
    let view_of = |w: &World<A>, i: usize| {
        let st = &w.status()[i];
        (st.up && st.voter).then_some((st.view.role, st.view.leader))
    };
    let before: Vec<Option<(Role, Option<Pid>)>> = (0..world.status().len())
        .map(|i| view_of(&world, i))
        .collect();
    let mut first_to_notice: Vec<Pid> = Vec::new();
    let mut seen_since: Option<Time> = None;
    let mut at_settle = base;
    let horizon = last + cap;
    while let Some(t) = world.next_event_time() {
        if t > horizon {
            break;
        }
        world.run_until(t);
        if first_to_notice.is_empty() && t >= last && last > Time::ZERO {
            first_to_notice = (0..before.len())
                .filter(|&i| {
                    let now = view_of(&world, i);
                    before[i].is_some() && now.is_some() && now != before[i]
                })
                .map(|i| Pid(i as u32))
                .collect();
        }
        match world.monitor().settled.as_ref().map(|(since, _)| *since) {
            Some(since) => {
                if seen_since != Some(since) {
                    seen_since = Some(since);
                    at_settle = (world.stats().election_sent, world.stats().leaders_elected);
                }
                if t.since(since.max(last)) >= quiet {
                    break;
                }
            }
            None => seen_since = None,
        }
    }
    let settled = world.monitor().settled.clone();
    let (window_messages, window_won) = match &settled {
        // Settled before the last fault, and the fault did not unsettle it: no election.
        Some((since, _)) if *since < last => (0, 0),
        Some(_) => (at_settle.0 - base.0, at_settle.1 - base.1),
        None => (
            world.stats().election_sent - base.0,
            world.stats().leaders_elected - base.1,
        ),
    };
    Driven {
        settled_at: settled.as_ref().map(|(since, _)| *since),
        leaders: settled.map(|(_, l)| l).unwrap_or_default(),
        last,
        window_messages,
        window_won,
        first_to_notice,
        leading_at_end: world
            .status()
            .iter()
            .enumerate()
            .filter(|(_, st)| st.is_running() && st.view.role == Role::Leader)
            .map(|(i, _)| Pid(i as u32))
            .collect(),
        trace: world.take_trace(),
    }
}

/// A case's runs: the nodes that start later than 0 (and when), and the faults.
type Plan = (Vec<(usize, Duration)>, Vec<FaultSpec>);

/// The runs of one seed at one size: the scenario, its node ranks, and the first election
/// of the nodes starting together (shared by the cases that start so).
struct Setup<'a> {
    scaled: &'a Scenario,
    seed: u64,
    /// Node indices from the lowest priority to the highest.
    ranked: Vec<usize>,
    /// The nodes starting together without faults: the `all-start` run, and the first
    /// election of the cases that start so.
    together: Option<Driven>,
}

impl<'a> Setup<'a> {
    fn new(scaled: &'a Scenario, seed: u64) -> Self {
        let priorities = priorities_of(scaled, seed);
        let mut ranked: Vec<usize> = (0..scaled.nodes.len()).collect();
        ranked.sort_by_key(|&i| priorities[i]);
        Setup {
            scaled,
            seed,
            ranked,
            together: None,
        }
    }

    fn name(&self, i: usize) -> String {
        self.scaled.nodes[i].name.clone()
    }
    fn top(&self) -> usize {
        self.ranked[self.ranked.len() - 1]
    }
    fn lowest(&self) -> usize {
        self.ranked[0]
    }
    fn quiet(&self) -> Duration {
        quiet_of(&self.scaled.algorithm)
    }

    /// The scaled scenario with these starts and faults.
    fn with(&self, starts: &[(usize, Duration)], faults: &[FaultSpec]) -> Result<Scenario, String> {
        let mut s = self.scaled.clone();
        for &(i, at) in starts {
            s.nodes[i].start = at;
        }
        s.faults = faults.to_vec();
        reload(&s)
    }

    /// The first election of the nodes starting as given, without faults: when it settled
    /// and on whom.
    fn first_election(&self, s: &Scenario) -> Result<Driven, String> {
        let d = drive(s, self.seed);
        settled_on_one(&d, cap_of(&s.algorithm))?;
        Ok(d)
    }

    /// The nodes starting together, without faults.
    fn together_run(&mut self) -> Result<&Driven, String> {
        if self.together.is_none() {
            let s = self.with(&[], &[])?;
            self.together = Some(drive(&s, self.seed));
        }
        Ok(self.together.as_ref().expect("set above"))
    }

    /// The first election of the nodes starting together, which must settle on one leader.
    fn together(&mut self) -> Result<&Driven, String> {
        let cap = cap_of(&self.scaled.algorithm);
        let d = self.together_run()?;
        settled_on_one(d, cap)?;
        Ok(d)
    }

    fn run(&mut self, case: Case) -> Result<Run, String> {
        let quiet = self.quiet();
        let (starts, faults) = match case {
            Case::AllStart => (Vec::new(), Vec::new()),
            Case::AllNotice => {
                let first = self.together()?;
                let (settled, leader) = (first.settled_at.unwrap_or(Time::ZERO), first.leaders[0]);
                let at = match noticing(&self.scaled.algorithm) {
                    Noticing::Periodic { period, .. } | Noticing::Votes { period, .. } => {
                        just_before_tick(Duration::ZERO, period, settled + quiet)
                    }
                    _ => settled + quiet,
                };
                (
                    Vec::new(),
                    vec![fault(at, Fault::Crash(self.name(leader.index())))],
                )
            }
            Case::CoordinatorCrashLowestDetects => self.lowest_detects()?,
            Case::HighestRecovers => {
                let first = self.together()?;
                let crash = first.settled_at.unwrap_or(Time::ZERO) + quiet;
                let top = self.name(self.top());
                let mut faults = vec![fault(crash, Fault::Crash(top.clone()))];
                let after = drive(&self.with(&[], &faults)?, self.seed);
                let restart = match after.settled_at {
                    Some(t) if t >= crash => t + quiet,
                    _ => crash + quiet,
                };
                faults.push(fault(restart, Fault::Restart(top)));
                (Vec::new(), faults)
            }
            Case::PartitionHeal => {
                let first = self.together()?;
                let split = first.settled_at.unwrap_or(Time::ZERO) + quiet;
                let half = self.ranked.len() / 2;
                let lower: Vec<String> =
                    self.ranked[..half].iter().map(|&i| self.name(i)).collect();
                let mut upper: Vec<String> =
                    self.ranked[half..].iter().map(|&i| self.name(i)).collect();
                upper.extend(self.scaled.services().into_iter().map(|(name, _)| name));
                let mut faults = vec![fault(split, Fault::Partition(vec![lower, upper]))];
                let after = drive(&self.with(&[], &faults)?, self.seed);
                let heal = match after.settled_at {
                    Some(t) if t >= split => t + quiet,
                    _ => split + quiet,
                };
                faults.push(fault(heal, Fault::Heal));
                (Vec::new(), faults)
            }
        };
        let s = self.with(&starts, &faults)?;
        let d = if case == Case::AllStart {
            let first = self.together_run()?;
            Driven {
                settled_at: first.settled_at,
                leaders: first.leaders.clone(),
                last: first.last,
                window_messages: first.window_messages,
                window_won: first.window_won,
                first_to_notice: Vec::new(),
                leading_at_end: first.leading_at_end.clone(),
                trace: None,
            }
        } else {
            // Majority election shows who noticed in its votes.
            let crashed = faults.iter().find_map(|f| match &f.fault {
                Fault::Crash(n) => Some(n.as_str()),
                _ => None,
            });
            let watch = match (&s.algorithm, case) {
                (
                    AlgorithmSpec::Quorum(_),
                    Case::CoordinatorCrashLowestDetects | Case::AllNotice,
                ) => crashed,
                _ => None,
            };
            drive_watching(&s, self.seed, watch)
        };
        let live_others: Vec<usize> = (0..s.nodes.len())
            .filter(|&i| {
                !faults
                    .iter()
                    .any(|f| matches!(&f.fault, Fault::Crash(n) if *n == s.nodes[i].name))
            })
            .collect();
        let noticed: Vec<usize> = d.first_to_notice.iter().map(|p| p.index()).collect();
        let premise_held = match case {
            Case::CoordinatorCrashLowestDetects => Some(noticed == [self.lowest()]),
            Case::AllNotice => Some(noticed == live_others),
            _ => None,
        };
        Ok(Run {
            seed: self.seed,
            election_messages: d.window_messages,
            elections_won: d.window_won,
            time_to_stable_leader_us: d.settled_at.map(|t| t.since(d.last).as_micros()),
            leaders: d.leaders.iter().map(|p| self.name_of(*p)).collect(),
            leading_at_end: d.leading_at_end.iter().map(|p| self.name_of(*p)).collect(),
            first_to_notice: noticed.iter().map(|&i| self.name(i)).collect(),
            premise_held,
            starts: starts
                .iter()
                .filter(|(_, at)| *at > Duration::ZERO)
                .map(|&(i, at)| (self.name(i), at))
                .collect(),
            faults,
        })
    }

    /// A process name, node or service.
    fn name_of(&self, p: Pid) -> String {
        let n = self.scaled.nodes.len();
        if p.index() < n {
            self.name(p.index())
        } else {
            self.scaled
                .services()
                .get(p.index() - n)
                .map_or_else(|| format!("{p:?}"), |(name, _)| name.clone())
        }
    }

    /// The starts and the crash that make the lowest node notice first.
    fn lowest_detects(&mut self) -> Result<Plan, String> {
        let quiet = self.quiet();
        let lowest = self.lowest();
        let (starts, tick_phase, period) = match noticing(&self.scaled.algorithm) {
            Noticing::Periodic { period, what } => {
                // The lowest checks at 0, P, 2P...; everyone else half a period later.
                let later = lowest_offset(self.scaled, period, what)?;
                let starts: Vec<(usize, Duration)> = (0..self.scaled.nodes.len())
                    .filter(|&i| i != lowest)
                    .map(|i| (i, later))
                    .collect();
                (starts, Duration::ZERO, period)
            }
            Noticing::Votes { period, lost } => {
                // The lowest (the youngest) starts a little less than a period after the
                // others, so its votes come just before theirs. The crash comes just before
                // the coordinator's vote (it started at 0 with the others).
                let early = votes_offset(self.scaled, period, lost)?;
                let starts = vec![(lowest, Duration(period.as_micros() - early.as_micros()))];
                (starts, Duration::ZERO, period)
            }
            Noticing::Detector { .. } | Noticing::Uncontrolled(_) => {
                return Err("not possible for this algorithm".into())
            }
        };
        let s = self.with(&starts, &[])?;
        let first = self.first_election(&s)?;
        let leader = first.leaders[0];
        let settled = first.settled_at.unwrap_or(Time::ZERO);
        let at = just_before_tick(tick_phase, period, settled + quiet);
        Ok((
            starts,
            vec![fault(at, Fault::Crash(self.name(leader.index())))],
        ))
    }
}

/// The first election must end with one leader, settled.
fn settled_on_one(d: &Driven, cap: Duration) -> Result<(), String> {
    match d.settled_at {
        Some(_) if d.leaders.len() == 1 => Ok(()),
        Some(_) => Err(format!(
            "the first election ends with {} leaders",
            d.leaders.len()
        )),
        None => Err(format!(
            "no stable leader within {cap} of the start, without faults"
        )),
    }
}

/// One microsecond before the first tick (`phase` + k·`period`, k ≥ 1) that is at least
/// `not_before` + 1 µs.
fn just_before_tick(phase: Duration, period: Duration, not_before: Time) -> Time {
    let (p, ph, t) = (
        period.as_micros(),
        phase.as_micros(),
        not_before.as_micros() + 1,
    );
    let k = if t <= ph + p { 1 } else { (t - ph).div_ceil(p) };
    Time(ph + k * p - 1)
}

fn fault(at: Time, fault: Fault) -> FaultSpec {
    FaultSpec {
        at: Duration(at.as_micros()),
        fault,
    }
}
