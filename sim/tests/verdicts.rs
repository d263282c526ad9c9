//! Verdicts checked against the simulator, both ways.
//!
//! - A counterexample under `Bounded` timing carries the time of every step; the
//!   simulator itself plays it (`explore::simulate`, the world's scripted mode, which
//!   refuses any step it could not have taken) and must reach the same violation at the
//!   same time, with the same trace.
//! - Simulator runs with every delay drawn anywhere in `0..=max_delay` (and every
//!   failure-detector notice in `0..=` its delay) and faults within the explore block's
//!   budgets must each be a path of the explored graph: every state they pass through,
//!   with time rounded up to the explorer's clock step, is a state the search visited, and
//!   a run that shows two leaders passes through a state the explorer flags (for majority
//!   election, which reads the clock as data, that no run shows two leaders where the
//!   explorer says none can be).
//! - Bully is correct exactly when its answer timeout exceeds the round trip: a timeout
//!   one clock step below 2·d gives two leaders, one step above holds, for 2, 3 and 4 nodes.

use conclave_algorithms::bully::{Bully, BullyParams, BullyTimer};
use conclave_algorithms::{Algorithm, Cluster, Ctx, Duration, Pid, Time, View};
use conclave_sim::explore::{
    explore, explore_with, follow, simulate, Counterexample, ExploreOptions, ExploreReport, Model,
};
use conclave_sim::run::cluster_of;
use conclave_sim::scenario::{AlgorithmSpec, Delay, Scenario, Timing};
use conclave_sim::schedule::Step;
use conclave_sim::world::{stream, Action, World, WorldConfig};
use rand::Rng;
use std::path::Path;

fn parse(src: &str) -> Scenario {
    Scenario::from_str(src, "test.ron").unwrap_or_else(|e| panic!("{e}"))
}

fn explore_capped(s: &Scenario, max_states: u64) -> ExploreReport {
    let opts = ExploreOptions {
        jobs: 1,
        max_states: Some(max_states),
        ..ExploreOptions::default()
    };
    explore(s, "test.ron", &opts)
}

fn verdict(r: &ExploreReport, name: &str) -> Option<bool> {
    r.properties.iter().find(|p| p.name == name).unwrap().holds
}

/// Plays a counterexample's schedule in the simulator and checks that it reaches the same
/// violation at the same time, through the same trace.
fn check_in_simulator(s: &Scenario, cex: &Counterexample) {
    assert!(
        cex.at_us.is_some(),
        "{}: a Bounded counterexample has a time",
        cex.property
    );
    let sim = simulate(s, &cex.schedule, cex.at_us).unwrap_or_else(|e| {
        panic!(
            "{} {}: the simulator refused the schedule: {e}",
            s.name, cex.property
        )
    });
    assert_eq!(
        sim.trace, cex.trace,
        "{} {}: the simulator's trace is the explorer's",
        s.name, cex.property
    );
    let found = match cex.property.as_str() {
        "AtMostOneLeader" => sim.at_most_one.map(|(t, _)| t),
        "OneLeaderPerComponent" => sim.per_component.map(|(t, _)| t),
        // Liveness: the run ends in a state from which no agreed leader is reachable.
        _ => (!sim.settled).then_some(sim.now_us),
    };
    assert_eq!(
        found, cex.at_us,
        "{} {}: the simulator finds the violation when the explorer does",
        s.name, cex.property
    );
}

fn bully(nodes: usize, answer_timeout_ms: u64) -> Scenario {
    let nodes: Vec<String> = (1..=nodes)
        .map(|i| format!("(name: \"n{i}\", id: {i})"))
        .collect();
    parse(&format!(
        r#"Scenario(
            algorithm: Bully(answer_timeout: "{answer_timeout_ms}ms", coordinator_timeout: "800ms", heartbeat_interval: "0s"),
            nodes: [{}],
            network: (delay: Constant("50ms")),
            run_for: "1s",
            explore: (timing: Bounded(max_delay: "50ms"), expect: [AtMostOneLeader]),
        )"#,
        nodes.join(", ")
    ))
}

/// The reported case: two nodes, messages within 50 ms, n1 times out after 80 ms. The
/// simulator shows two leaders at 80 ms (the OK arrives at 100 ms); the explorer, which
/// once let time pass only when a timer fired, said "holds". With time passing on
/// deliveries too, a timeout below the round trip (2·d = 100 ms) gives two leaders and one
/// above it holds. At exactly 100 ms the OK and the timeout fall due at the same instant,
/// and the timer may go first (the simulator runs it first: it was scheduled first).
#[test]
fn bully_is_safe_exactly_when_its_timeout_exceeds_the_round_trip() {
    // (nodes, shortest counterexample in steps, ticks of 10 ms included): 2 and 3 nodes.
    for (n, steps) in [(2, 12), (3, 14)] {
        let below = bully(n, 90);
        let r = explore_capped(&below, 2_000_000);
        assert_eq!(
            verdict(&r, "AtMostOneLeader"),
            Some(false),
            "{n} nodes, timeout 90ms"
        );
        let cex = r.properties[0].counterexample.as_ref().unwrap();
        assert_eq!(cex.choices.len(), steps, "{n} nodes: the shortest schedule");
        assert_eq!(cex.at_us, Some(90_000), "{n} nodes: two leaders at 90 ms");
        check_in_simulator(&below, cex);

        let above = bully(n, 110);
        let r = explore_capped(&above, 2_000_000);
        assert!(r.complete, "{n} nodes, timeout 110ms: {:?}", r.cut_short);
        assert_eq!(
            verdict(&r, "AtMostOneLeader"),
            Some(true),
            "{n} nodes, timeout 110ms"
        );
    }
    let at = bully(2, 100);
    let r = explore_capped(&at, 100_000);
    assert_eq!(verdict(&r, "AtMostOneLeader"), Some(false), "timeout = 2d");
    check_in_simulator(&at, r.properties[0].counterexample.as_ref().unwrap());
}

/// Four nodes, the same threshold; a bigger space, so its breadth-first search is kept
/// out of the default run (`cargo test -- --ignored`).
#[test]
#[ignore]
fn bully_four_nodes_is_safe_exactly_when_its_timeout_exceeds_the_round_trip() {
    let below = bully(4, 90);
    let r = explore_capped(&below, 20_000_000);
    assert_eq!(verdict(&r, "AtMostOneLeader"), Some(false));
    check_in_simulator(&below, r.properties[0].counterexample.as_ref().unwrap());
    let r = explore_capped(&bully(4, 110), 50_000_000);
    assert!(r.complete, "{:?}", r.cut_short);
    assert_eq!(verdict(&r, "AtMostOneLeader"), Some(true));
}

/// The simulator replays a doctored schedule no better than the model allows: a message
/// delivered later than the maximum delay is refused, and so is a timer fired early.
#[test]
fn the_simulator_refuses_a_schedule_it_could_not_have_run() {
    let s = bully(2, 80);
    let r = explore_capped(&s, 100_000);
    let cex = r.properties[0].counterexample.clone().unwrap();
    let mut late = cex.schedule.clone();
    let k = late
        .iter()
        .position(|t| matches!(t.step, Step::Deliver(_)))
        .unwrap();
    // Sent at 0, due by 50 ms.
    late[k].at_us = 60_000;
    let why = simulate(&s, &late, None).unwrap_err();
    assert!(why.contains("longer than the maximum delay 50ms"), "{why}");
    let mut early = cex.schedule.clone();
    let k = early
        .iter()
        .position(|t| matches!(t.step, Step::Timer { .. }))
        .unwrap();
    early[k].at_us -= 10_000;
    let why = simulate(&s, &early, None).unwrap_err();
    assert!(why.contains("not now"), "{why}");
}

/// Every counterexample the shipped `Bounded` scenarios and the test scenarios produce
/// (searched breadth-first up to a cap, which finds the shortest ones first) replays in
/// the simulator to the same violation at the same time.
#[test]
fn every_bounded_counterexample_replays_in_the_simulator() {
    let mut checked = 0;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/explore");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut scenarios: Vec<Scenario> = files
        .iter()
        .map(|f| Scenario::load(f).unwrap())
        .filter(|s| matches!(s.explore.as_ref().unwrap().timing, Timing::Bounded { .. }))
        .collect();
    scenarios.extend([bully(2, 80), bully(3, 90)]);
    scenarios.extend(models().into_iter().map(|(s, _, _)| s));
    for s in &scenarios {
        let r = explore_capped(s, 300_000);
        for p in &r.properties {
            if let Some(cex) = &p.counterexample {
                check_in_simulator(s, cex);
                checked += 1;
            }
        }
    }
    assert!(checked >= 8, "only {checked} counterexamples were checked");
}

/// The models the differential test runs the simulator against: one per algorithm family,
/// with the faults each is explored under. The last flag says whether runs must be paths
/// of the graph state for state: majority election keeps the clock's reading in its state
/// (a birth time, when a peer was last heard) and compares it strictly, so with times
/// rounded to the explorer's step its states differ from the simulator's; for it the test
/// checks that no run shows two leaders where the explorer says `AtMostOneLeader` holds.
fn models() -> Vec<(Scenario, &'static str, bool)> {
    let src = [
        (
            "bully3_crash_restart",
            r#"Scenario(
                algorithm: Bully(answer_timeout: "300ms", coordinator_timeout: "1s", heartbeat_interval: "1s", heartbeat_timeout: "300ms"),
                nodes: [(name: "a", id: 1), (name: "b", id: 2), (name: "c", id: 3)],
                run_for: "3s",
                explore: (timing: Bounded(max_delay: "100ms"), crashes: 1, restarts: 1, drops: 1,
                          expect: [AtMostOneLeader]),
            )"#,
        ),
        (
            "garcia_molina3_crash",
            r#"Scenario(
                algorithm: GarciaMolinaBully(call_timeout: "300ms", check_interval: "1s", election_timeout: "1s"),
                nodes: [(name: "a", id: 1), (name: "b", id: 2), (name: "c", id: 3)],
                run_for: "3s",
                explore: (timing: Bounded(max_delay: "100ms"), crashes: 1, duplicates: 1),
            )"#,
        ),
        (
            "invitation3_partition",
            r#"Scenario(
                algorithm: Invitation(check_interval: "1s", call_timeout: "300ms", merge_unit: "100ms"),
                nodes: [(name: "a", id: 1), (name: "b", id: 2), (name: "c", id: 3)],
                run_for: "2s",
                explore: (timing: Bounded(max_delay: "100ms"), partitions: [[["a"], ["b", "c"]]],
                          partition_changes: 2, faults_from: "500ms"),
            )"#,
        ),
        (
            "async_bully4_crash_restart",
            r#"Scenario(
                algorithm: AsyncBully(norm_interval: "1s", detector: Perfect(delay: "100ms")),
                nodes: [(name: "a", id: 1), (name: "b", id: 2), (name: "c", id: 3), (name: "d", id: 4)],
                run_for: "2s",
                explore: (timing: Bounded(max_delay: "100ms"), crashes: 1, restarts: 1,
                          expect: [AtMostOneLeader]),
            )"#,
        ),
        (
            "quorum3_partition",
            r#"Scenario(
                algorithm: Quorum(vote_interval: "500ms", vote_timeout: "1s", lost_timeout: "1s"),
                nodes: [(name: "a", id: 1, address: "127.0.0.1:9001"), (name: "b", id: 2, address: "127.0.0.1:9002"), (name: "c", id: 3, address: "127.0.0.1:9003")],
                run_for: "3s",
                explore: (timing: Bounded(max_delay: "100ms"), partitions: [[["a"], ["b", "c"]]],
                          partition_changes: 1, faults_from: "1s"),
            )"#,
        ),
    ];
    src.iter()
        .map(|(name, text)| {
            let mut s = parse(text);
            s.name = name.to_string();
            let exact = !name.starts_with("quorum");
            (s, *name, exact)
        })
        .collect()
}

/// Random faults within an explore block's budgets, at random times from `faults_from`
/// to the horizon: crashes of running processes, restarts of crashed ones, splits from
/// the block's list, and heals.
fn random_faults(s: &Scenario, seed: u64) -> Vec<(Time, Action)> {
    let e = s.explore.as_ref().unwrap();
    let mut rng = stream(seed, 99);
    let horizon = e.horizon.unwrap_or(s.run_for).as_micros();
    let from = e.faults_from.map_or(0, |f| f.as_micros());
    let horizon = e
        .faults_until
        .map_or(horizon, |f| f.as_micros().min(horizon));
    let idx = s.node_index();
    let mut times = |k: u32| -> Vec<u64> {
        let mut t: Vec<u64> = (0..rng.random_range(0..=k))
            .map(|_| rng.random_range(from..=horizon))
            .collect();
        t.sort();
        t
    };
    let crash_at = times(e.crashes);
    let restart_at = times(e.restarts);
    let split_at = times(e.partition_changes);
    let mut events: Vec<(u64, u8)> = crash_at.iter().map(|&t| (t, 0)).collect();
    events.extend(restart_at.iter().map(|&t| (t, 1)));
    events.extend(split_at.iter().map(|&t| (t, 2)));
    events.sort();
    let n = s.nodes.len();
    let mut up = vec![true; n];
    let mut split: Option<usize> = None;
    let mut out = Vec::new();
    for (t, kind) in events {
        let action = match kind {
            0 => {
                let alive: Vec<usize> = (0..n).filter(|&i| up[i]).collect();
                let p = alive[rng.random_range(0..alive.len())];
                up[p] = false;
                Action::Crash(Pid(p as u32))
            }
            1 => {
                let down: Vec<usize> = (0..n).filter(|&i| !up[i]).collect();
                if down.is_empty() {
                    continue;
                }
                let p = down[rng.random_range(0..down.len())];
                up[p] = true;
                Action::Restart(Pid(p as u32))
            }
            // The split in force again would change nothing: heal instead.
            _ if split.is_some() && (e.partitions.len() == 1 || rng.random_bool(0.5)) => {
                split = None;
                Action::Heal
            }
            _ => {
                let mut k = rng.random_range(0..e.partitions.len());
                if split == Some(k) {
                    k = (k + 1) % e.partitions.len();
                }
                split = Some(k);
                Action::Partition(
                    e.partitions[k]
                        .iter()
                        .map(|g| g.iter().map(|n| Pid(idx[n] as u32)).collect())
                        .collect(),
                )
            }
        };
        out.push((Time(t), action));
    }
    out
}

/// Runs `runs` simulator runs of each model with random delays, notices and faults within
/// its budgets, and checks that every run is a path of the explored graph. Returns how
/// many runs were checked.
fn differential(runs: u64) -> u64 {
    let mut checked = 0;
    for (s, name, exact) in models() {
        let e = s.explore.clone().unwrap();
        let Timing::Bounded { max_delay } = e.timing else {
            unreachable!()
        };
        let report = explore(
            &s,
            name,
            &ExploreOptions {
                jobs: 1,
                keep_visited: true,
                max_states: Some(20_000_000),
                ..ExploreOptions::default()
            },
        );
        assert!(report.complete, "{name}: {:?}", report.cut_short);
        let visited = report.visited.clone().unwrap();
        let explorer_two_leaders = verdict(&report, "AtMostOneLeader") == Some(false);
        let horizon = Time(e.horizon.unwrap_or(s.run_for).as_micros());
        let mut kept = 0;
        let mut seed = 0;
        while kept < runs {
            seed += 1;
            let mut network = s.network.clone();
            network.delay = Delay::Uniform {
                min: Duration(0),
                max: max_delay,
            };
            // Losses and duplicates by chance; runs past the budgets are skipped.
            network.loss = if e.drops > 0 { 0.05 } else { 0.0 };
            network.duplicate = if e.duplicates > 0 { 0.05 } else { 0.0 };
            let n = cluster_of(&s, s.seeds[0]).len();
            let config = WorldConfig {
                network,
                faults: random_faults(&s, seed),
                seed,
                notice_jitter: true,
                lowest_draws: true,
                log_steps: true,
                ..WorldConfig::starting_together(n)
            };
            let (steps, sim_two_leaders) = conclave_sim::with_algorithm!(&s.algorithm, |A, p| {
                let mut w = World::<A>::new(cluster_of(&s, s.seeds[0]), p.clone(), config);
                w.run_until(horizon);
                (
                    w.steps().unwrap().to_vec(),
                    w.monitor().at_most_one.is_some(),
                )
            });
            let count = |f: fn(&Step) -> bool| steps.iter().filter(|t| f(&t.step)).count();
            if count(|s| matches!(s, Step::Lose(_))) > e.drops as usize
                || count(|s| matches!(s, Step::Duplicate(_))) > e.duplicates as usize
            {
                continue;
            }
            kept += 1;
            checked += 1;
            if sim_two_leaders {
                assert!(
                    explorer_two_leaders,
                    "{name}, seed {seed}: two leaders in the simulator where the explorer says AtMostOneLeader holds"
                );
            }
            if !exact {
                continue;
            }
            let path = follow(&s, &steps).unwrap_or_else(|why| {
                let log: Vec<String> = steps.iter().map(|t| t.to_string()).collect();
                panic!(
                    "{name}, seed {seed}: the explorer has no path for the simulator's run: {why}\nthe run's steps:\n{}",
                    log.join("\n")
                )
            });
            for st in &path {
                assert!(
                    visited.contains(st.fingerprint),
                    "{name}, seed {seed}: the run passes through a state the explorer never visited (t={})",
                    Time(st.now_us)
                );
            }
            let flagged = path.iter().any(|st| st.two_leaders);
            assert_eq!(
                flagged, sim_two_leaders,
                "{name}, seed {seed}: the simulator and the explorer disagree on two leaders"
            );
        }
    }
    checked
}

#[test]
fn simulator_runs_are_paths_of_the_explored_graph() {
    assert_eq!(differential(40), 200);
}

/// The large version: 100,000 runs (20,000 per model). `cargo test --release -p
/// conclave-sim --test verdicts -- --ignored simulator_runs_large`.
#[test]
#[ignore]
fn simulator_runs_are_paths_of_the_explored_graph_large() {
    assert_eq!(differential(20_000), 100_000);
}

/// Bully whose answer timeout is computed at run time, 150 ms: not a multiple of the
/// scenario's quantum (100 ms), which no constant of the scenario shows.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct OffGrid(Bully);

impl Algorithm for OffGrid {
    type Msg = <Bully as Algorithm>::Msg;
    type Timer = BullyTimer;
    type Params = BullyParams;
    fn new(me: Pid, cluster: &Cluster, params: &BullyParams) -> Self {
        OffGrid(Bully::new(me, cluster, params))
    }
    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
        self.0.on_start(ctx);
        ctx.set_timer(BullyTimer::Answer, Duration(150_000));
    }
    fn on_message(&mut self, from: Pid, msg: Self::Msg, ctx: &mut Ctx<'_, Self>) {
        self.0.on_message(from, msg, ctx)
    }
    fn on_timer(&mut self, timer: BullyTimer, ctx: &mut Ctx<'_, Self>) {
        self.0.on_timer(timer, ctx)
    }
    fn view(&self) -> View {
        self.0.view()
    }
}

/// A timer off the clock's steps is not explored at its exact time: the search says so and
/// claims nothing holds.
#[test]
fn a_timer_off_the_clocks_steps_makes_the_search_incomplete() {
    let s = parse(
        r#"Scenario(
            algorithm: Bully(answer_timeout: "300ms", heartbeat_interval: "0s"),
            nodes: [(name: "a", id: 1), (name: "b", id: 2)],
            run_for: "1s",
            explore: (timing: Bounded(max_delay: "100ms"), expect: [AtMostOneLeader]),
        )"#,
    );
    let AlgorithmSpec::Bully(params) = &s.algorithm else {
        unreachable!()
    };
    let r = explore_with(
        Model::<OffGrid>::new(&s, params.clone()),
        &s,
        "off_grid.ron",
        &ExploreOptions::default(),
    );
    assert!(!r.complete);
    let why = r.cut_short.clone().unwrap();
    assert!(why.contains("a timer was set for 150ms"), "{why}");
    assert_eq!(verdict(&r, "AtMostOneLeader"), None, "not decided");
    assert!(!r.ok);
    // The real Bully on the same scenario is complete.
    let r = explore_capped(&s, 100_000);
    assert!(r.complete && r.ok, "{:?}", r.cut_short);
}

/// Messages in flight that a crash or a partition takes are shown as drops, at that
/// instant, by the explorer and by the simulator alike (they once vanished from the
/// explorer's traces, and the simulator delivered them after a restart or a heal).
#[test]
fn messages_lost_to_a_crash_or_a_cut_are_drops_in_both_traces() {
    use conclave_sim::explore::{replay, Choice};
    use conclave_sim::trace::{DropReason, What};
    let s = parse(
        r#"Scenario(
            algorithm: Bully(answer_timeout: "300ms", heartbeat_interval: "0s"),
            nodes: [(name: "a", id: 1), (name: "b", id: 2), (name: "c", id: 3)],
            run_for: "1s",
            explore: (timing: Bounded(max_delay: "100ms"), crashes: 1, restarts: 1,
                      partitions: [[["a"], ["b", "c"]]], partition_changes: 1),
        )"#,
    );
    // a and b send ELECTION up at the start; c is crashed (and at once restarted), then a is
    // cut off from b and c.
    let choices = [Choice::Crash(2), Choice::Restart(2), Choice::Partition(0)];
    let (trace, end) = replay(&s, &choices).unwrap();
    let drops: Vec<(String, String, DropReason)> = trace
        .iter()
        .filter_map(|e| match &e.what {
            What::Drop {
                from, to, reason, ..
            } => Some((from.clone(), to.clone(), *reason)),
            _ => None,
        })
        .collect();
    let expect = |from: &str, to: &str, reason| (from.to_string(), to.to_string(), reason);
    assert_eq!(
        drops[..3],
        [
            expect("a", "c", DropReason::Down),
            expect("b", "c", DropReason::Down),
            expect("a", "b", DropReason::Partitioned),
        ],
        "{trace:#?}"
    );
    let sim = simulate(&s, &end.steps, Some(end.now_us)).unwrap();
    assert_eq!(
        sim.trace, trace,
        "the simulator drops the same messages, at the same time"
    );
}
