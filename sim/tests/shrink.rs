//! Shrinking failing runs (`conclave_sim::shrink`): the result still fails the same way, is
//! 1-minimal in its faults, comes out the same every time, and bad requests are refused.

use conclave_sim::run::{run_scenario, RunOptions, RunReport};
use conclave_sim::scenario::{Fault, FaultSpec, Scenario};
use conclave_sim::shrink::{find_failure, shrink, ShrinkError, ShrinkOptions, Shrunk};
use conclave_sim::world::Budget;

/// Plain Bully under random crashes, pauses, partitions and blocks, with lossy, jittery
/// links: most seeds that draw a partition elect two leaders.
const SWEPT: &str = r#"Scenario(
    algorithm: Bully(),
    nodes: [(name: "a", id: 1), (name: "b", id: 2), (name: "c", id: 3), (name: "d", id: 4),
            (name: "e", id: 5)],
    run_for: "20s",
    seeds: [0, 1, 2],
    expect: [AtMostOneLeader, Agreement],
    sweep: (
        window: ("1s", "15s"),
        crashes: (count: (1, 3), lasts: ("500ms", "5s")),
        pauses: (count: (1, 2), lasts: ("100ms", "2s")),
        partitions: (count: (1, 2), lasts: ("1s", "4s"), groups: (2, 3)),
        blocks: (count: (1, 2), lasts: ("1s", "2s")),
        loss: (0.0, 0.05),
        delays: [Constant("5ms"), Uniform(min: "1ms", max: "40ms")],
    ),
)"#;

/// The same without partitions or blocks: what is left to elect two leaders is a pause (a
/// paused node still leads, and its timers fire when it resumes) or a crash.
const PAUSES: &str = r#"Scenario(
    algorithm: Bully(heartbeat_interval: "1s", heartbeat_timeout: "1s"),
    nodes: [(name: "a", id: 1), (name: "b", id: 2), (name: "c", id: 3), (name: "d", id: 4)],
    run_for: "20s",
    expect: [AtMostOneLeader],
    sweep: (
        swarm: false,
        window: ("1s", "15s"),
        crashes: (count: (1, 2), lasts: ("500ms", "3s")),
        pauses: (count: (1, 3), lasts: ("1s", "4s")),
    ),
)"#;

fn load(src: &str) -> Scenario {
    Scenario::from_str(src, "swept.ron").unwrap_or_else(|e| panic!("{e}"))
}

fn partitions(faults: &[FaultSpec]) -> usize {
    faults
        .iter()
        .filter(|f| matches!(f.fault, Fault::Partition(_)))
        .count()
}

fn violates(r: &RunReport, property: &str) -> bool {
    r.incomplete.is_none()
        && r.expectations
            .iter()
            .any(|e| e.name == property && e.expected == "holds" && !e.ok)
}

/// The first seed (below 200) whose run violates `property` and whose drawn faults satisfy
/// `wanted`.
fn failing_seed(s: &Scenario, property: &str, wanted: impl Fn(&[FaultSpec]) -> bool) -> u64 {
    (0..200)
        .find(|&seed| {
            wanted(&s.for_seed(seed).faults)
                && violates(
                    &run_scenario(s, "swept.ron", seed, &RunOptions::default()),
                    property,
                )
        })
        .expect("a seed below 200 fails")
}

/// The fault that undoes fault `i` on the same node (written here apart from the library's
/// pairing): the next Restart of a crash or leave, Resume of a pause, in time order.
fn undo(faults: &[FaultSpec], i: usize) -> Option<usize> {
    let mut order: Vec<usize> = (0..faults.len()).collect();
    order.sort_by_key(|&j| faults[j].at);
    let from = order.iter().position(|&j| j == i)? + 1;
    order[from..]
        .iter()
        .copied()
        .find(|&j| match (&faults[i].fault, &faults[j].fault) {
            (Fault::Crash(a) | Fault::Leave(a), Fault::Restart(b)) => a == b,
            (Fault::Pause(a), Fault::Resume(b)) => a == b,
            _ => false,
        })
}

/// The scenario as a file says it, read back.
fn reload(s: &Scenario) -> Result<Scenario, String> {
    Scenario::from_str(&s.to_ron(""), "candidate.ron").map_err(|e| e.to_string())
}

/// Removing any one fault (with its undo when the schedule is otherwise invalid) makes
/// `property` hold, or makes the scenario invalid. Returns how many removals were run.
fn assert_one_minimal(s: &Scenario, seed: u64, property: &str) -> usize {
    let mut checked = 0;
    for i in 0..s.faults.len() {
        let mut cand = s.clone();
        cand.faults.remove(i);
        let cand = match reload(&cand) {
            Ok(c) => c,
            Err(_) => {
                let Some(u) = undo(&s.faults, i) else {
                    continue;
                };
                let mut cand = s.clone();
                cand.faults = (0..s.faults.len())
                    .filter(|&j| j != i && j != u)
                    .map(|j| s.faults[j].clone())
                    .collect();
                match reload(&cand) {
                    Ok(c) => c,
                    Err(_) => continue,
                }
            }
        };
        let r = run_scenario(&cand, "candidate.ron", seed, &RunOptions::default());
        assert!(
            !violates(&r, property),
            "removing faults[{i}] still violates {property}:\n{}",
            cand.to_ron("")
        );
        checked += 1;
    }
    checked
}

fn shrink_seed(s: &Scenario, seed: u64) -> Shrunk {
    let failure = find_failure(s, seed, None, &Budget::default()).unwrap();
    let mut steps = Vec::new();
    let shrunk = shrink(s, seed, &failure, &ShrinkOptions::default(), &mut |st| {
        steps.push(st.clone())
    })
    .unwrap();
    assert_eq!(steps.len(), shrunk.steps.len(), "every step is told");
    assert!(!shrunk.max_runs_reached && !shrunk.interrupted);
    shrunk
}

#[test]
fn a_partitioned_bully_run_shrinks_to_a_one_minimal_scenario() {
    let s = load(SWEPT);
    let seed = failing_seed(&s, "AtMostOneLeader", |f| partitions(f) > 0);
    let original = s.for_seed(seed).into_owned();
    let shrunk = shrink_seed(&s, seed);
    let out = &shrunk.scenario;
    assert!(partitions(&out.faults) <= 1, "{}", out.to_ron(""));
    assert!(out.faults.len() < original.faults.len());
    assert!(out.nodes.len() <= original.nodes.len() && out.run_for <= original.run_for);
    assert_eq!(shrunk.size.faults, out.faults.len());
    assert_eq!(shrunk.steps.last().unwrap().size, shrunk.size);
    // No sweep block, one seed, only the failing expectation: an ordinary scenario file
    // that fails the same way.
    assert!(out.sweep.is_none());
    assert_eq!(out.seeds, [seed]);
    assert_eq!(out.expect.len(), 1);
    assert!(out.expect_violated.is_empty());
    // Written without the extension lines ron adds (scenarios are read with them on).
    assert!(!out.to_ron("").contains("#!["), "{}", out.to_ron(""));
    let back = reload(out).unwrap();
    let r = run_scenario(&back, "min.ron", seed, &RunOptions::default());
    assert!(violates(&r, "AtMostOneLeader"), "{}", out.to_ron(""));
    assert_one_minimal(out, seed, "AtMostOneLeader");
}

#[test]
fn a_pause_schedule_shrinks_to_a_one_minimal_scenario() {
    let s = load(PAUSES);
    let seed = failing_seed(&s, "AtMostOneLeader", |f| f.len() >= 6);
    let original = s.for_seed(seed).into_owned();
    let shrunk = shrink_seed(&s, seed);
    let out = &shrunk.scenario;
    assert!(
        out.faults.len() < original.faults.len(),
        "{}",
        out.to_ron("")
    );
    let r = run_scenario(
        &reload(out).unwrap(),
        "min.ron",
        seed,
        &RunOptions::default(),
    );
    assert!(violates(&r, "AtMostOneLeader"));
    // What is left has faults, and each is needed.
    assert!(!out.faults.is_empty());
    assert!(assert_one_minimal(out, seed, "AtMostOneLeader") >= 1);
}

#[test]
fn shrinking_is_deterministic() {
    let s = load(SWEPT);
    let seed = failing_seed(&s, "AtMostOneLeader", |f| f.len() >= 8);
    let a = shrink_seed(&s, seed);
    let b = shrink_seed(&s, seed);
    assert_eq!(a.scenario.to_ron("x"), b.scenario.to_ron("x"));
    assert_eq!(a.runs, b.runs);
    let changes =
        |s: &Shrunk| -> Vec<String> { s.steps.iter().map(|s| s.change.clone()).collect() };
    assert_eq!(changes(&a), changes(&b));
}

#[test]
fn an_expected_violation_that_held_is_kept_as_such() {
    let s = load(
        r#"Scenario(
        algorithm: Bully(),
        nodes: [(name: "a", id: 1), (name: "b", id: 2), (name: "c", id: 3), (name: "d", id: 4)],
        faults: [(at: "2s", fault: Crash("a")), (at: "4s", fault: Restart("a")),
                 (at: "5s", fault: Block("b", "c"))],
        network: (delay: Uniform(min: "1ms", max: "30ms")),
        run_for: "30s",
        expect: [Agreement],
        expect_violated: [OneLeaderPerComponent],
    )"#,
    );
    let failure = find_failure(&s, 0, None, &Budget::default()).unwrap();
    assert_eq!(
        failure.to_string(),
        "OneLeaderPerComponent held (expected violated)"
    );
    let shrunk = shrink(&s, 0, &failure, &ShrinkOptions::default(), &mut |_| {}).unwrap();
    let out = &shrunk.scenario;
    assert!(out.expect.is_empty());
    assert_eq!(out.expect_violated.len(), 1);
    // It holds without any fault, in the shortest run.
    assert!(out.faults.is_empty());
    assert_eq!(out.run_for.as_micros(), 1_000);
    let r = run_scenario(&reload(out).unwrap(), "min.ron", 0, &RunOptions::default());
    assert!(!r.ok && r.incomplete.is_none());
}

#[test]
fn nodes_go_with_their_faults_and_their_server_config_lines() {
    // Stoller's Bully with a log server and priorities from server_config lines: blocked
    // links that leave one component make two leaders in it.
    let s = load(
        r#"Scenario(
        algorithm: AsyncBully(norm_interval: "2s", detector: Perfect(delay: "200ms")),
        server_config: Lines(["10.0.0.1:9000", "10.0.0.1:9001", "10.0.0.1:9002", "10.0.0.1:9003"]),
        log_server: (name: "logserver", interval: "1s"),
        nodes: [
            (name: "n9000", address: "10.0.0.1:9000"),
            (name: "n9001", address: "10.0.0.1:9001"),
            (name: "n9002", address: "10.0.0.1:9002"),
            (name: "n9003", address: "10.0.0.1:9003"),
        ],
        network: (delay: Uniform(min: "1ms", max: "20ms")),
        faults: [
            (at: "20s", fault: Block("n9000", "n9002")),
            (at: "20s", fault: Block("n9000", "n9003")),
            (at: "20s", fault: Block("n9001", "n9002")),
            (at: "20s", fault: Block("n9001", "n9003")),
            (at: "50s", fault: Heal),
        ],
        run_for: "60s",
        expect: [OneLeaderPerComponent, LeaderIs(node: "n9003", at: "19s")],
    )"#,
    );
    let failure = find_failure(&s, 0, Some("OneLeaderPerComponent"), &Budget::default()).unwrap();
    let shrunk = shrink(&s, 0, &failure, &ShrinkOptions::default(), &mut |_| {}).unwrap();
    let out = &shrunk.scenario;
    assert!(
        out.nodes.len() < 4 && out.faults.len() < 5,
        "{}",
        out.to_ron("")
    );
    let text = out.to_ron("");
    for n in &s.nodes {
        let kept = out.nodes.iter().any(|m| m.name == n.name);
        let address = n.address.as_deref().unwrap();
        assert_eq!(text.contains(address), kept, "{address}:\n{text}");
    }
    let r = run_scenario(&reload(out).unwrap(), "min.ron", 0, &RunOptions::default());
    assert!(violates(&r, "OneLeaderPerComponent"));
}

#[test]
fn the_bound_on_runs_is_kept_and_reported() {
    let s = load(SWEPT);
    let seed = failing_seed(&s, "AtMostOneLeader", |f| f.len() >= 8);
    let failure = find_failure(&s, seed, None, &Budget::default()).unwrap();
    let opts = ShrinkOptions {
        max_runs: 6,
        ..ShrinkOptions::default()
    };
    let shrunk = shrink(&s, seed, &failure, &opts, &mut |_| {}).unwrap();
    assert!(shrunk.max_runs_reached);
    assert_eq!(shrunk.runs, 6);
    // Whatever was reached still fails.
    let r = run_scenario(
        &reload(&shrunk.scenario).unwrap(),
        "min.ron",
        seed,
        &RunOptions::default(),
    );
    assert!(violates(&r, "AtMostOneLeader"));
}

#[test]
fn runs_that_do_not_fail_are_refused() {
    let s = load(SWEPT);
    let holds = (0..200)
        .find(|&seed| run_scenario(&s, "swept.ron", seed, &RunOptions::default()).ok)
        .expect("a seed below 200 holds");
    assert_eq!(
        find_failure(&s, holds, None, &Budget::default()),
        Err(ShrinkError::Held { seed: holds })
    );
    let seed = failing_seed(&s, "AtMostOneLeader", |_| true);
    let r = run_scenario(&s, "swept.ron", seed, &RunOptions::default());
    let agreement_held = r.expectations.iter().any(|e| e.name == "Agreement" && e.ok);
    if agreement_held {
        let err = find_failure(&s, seed, Some("Agreement"), &Budget::default()).unwrap_err();
        assert!(
            err.to_string()
                .contains("Agreement was expected to hold and held"),
            "{err}"
        );
    }
    let err = find_failure(&s, seed, Some("HighestWins"), &Budget::default()).unwrap_err();
    assert!(
        err.to_string()
            .contains("not an expectation of the scenario"),
        "{err}"
    );
    // Named by its name alone, or in full.
    let by_name = find_failure(&s, seed, Some("AtMostOneLeader"), &Budget::default()).unwrap();
    assert_eq!(by_name.to_string(), "AtMostOneLeader violated");
}

#[test]
fn a_run_cut_short_counts_only_failures_it_had_for_good() {
    let s = load(SWEPT);
    let seed = failing_seed(&s, "AtMostOneLeader", |_| true);
    let r = run_scenario(&s, "swept.ron", seed, &RunOptions::default());
    let first = r
        .expectations
        .iter()
        .find(|e| e.name == "AtMostOneLeader")
        .and_then(|e| e.failed_at_us)
        .unwrap();
    // Cut off at the very start: nothing has failed.
    let tiny = Budget {
        max_events: Some(2),
        ..Budget::default()
    };
    assert!(matches!(
        find_failure(&s, seed, None, &tiny),
        Err(ShrinkError::Incomplete { .. })
    ));
    // Cut off after the violation: the shrink starts from the run up to it.
    let events = (1..=r.events).find(|&m| {
        let budget = Budget {
            max_events: Some(m),
            ..Budget::default()
        };
        let cut = run_scenario(
            &s,
            "swept.ron",
            seed,
            &RunOptions {
                budget,
                ..RunOptions::default()
            },
        );
        cut.incomplete.is_some() && violates_before_cut(&cut, first)
    });
    let Some(m) = events else {
        return; // the violation came with the run's last events
    };
    let budget = Budget {
        max_events: Some(m),
        ..Budget::default()
    };
    let failure = find_failure(&s, seed, None, &budget).unwrap();
    let opts = ShrinkOptions {
        budget,
        ..ShrinkOptions::default()
    };
    let shrunk = shrink(&s, seed, &failure, &opts, &mut |_| {}).unwrap();
    assert!(
        shrunk.steps[0].change.contains("cut short"),
        "{:?}",
        shrunk.steps[0]
    );
    let r = run_scenario(
        &reload(&shrunk.scenario).unwrap(),
        "min.ron",
        seed,
        &RunOptions::default(),
    );
    assert!(violates(&r, "AtMostOneLeader"));
}

fn violates_before_cut(r: &RunReport, at: u64) -> bool {
    r.expectations
        .iter()
        .any(|e| e.name == "AtMostOneLeader" && !e.ok && e.failed_at_us == Some(at))
}

#[test]
fn a_property_judged_at_a_time_or_at_the_end_keeps_the_run_it_needs() {
    let s = load(
        r#"Scenario(
        algorithm: Bully(),
        nodes: [(name: "a", id: 1), (name: "b", id: 2), (name: "c", id: 3), (name: "d", id: 4)],
        faults: [(at: "2s", fault: Crash("d")), (at: "3s", fault: Pause("c")),
                 (at: "6s", fault: Resume("c")), (at: "8s", fault: Crash("b"))],
        run_for: "30s",
        expect: [LeaderIs(node: "d"), LeaderIs(node: "c", at: "10s"), Agreement],
    )"#,
    );
    let shrunk_for = |name: &str| {
        let failure = find_failure(&s, 0, Some(name), &Budget::default()).unwrap();
        shrink(&s, 0, &failure, &ShrinkOptions::default(), &mut |_| {})
            .unwrap()
            .scenario
    };
    // Judged at 10 s: a shorter run would judge it at its end instead.
    let at = shrunk_for("LeaderIs(c, 10s)");
    assert_eq!(at.run_for.as_micros(), 10_000_000, "{}", at.to_ron(""));
    // Judged at the end: the original run ended 22 s after its last fault; so does this
    // one, at least (a run ended before the nodes settle would fail it for no reason).
    let end = shrunk_for("LeaderIs(d, end)");
    let last = end
        .faults
        .iter()
        .map(|f| f.at.as_micros())
        .max()
        .unwrap_or(0);
    assert!(
        end.run_for.as_micros() >= last + 22_000_000,
        "{}",
        end.to_ron("")
    );
    assert!(end.faults.len() < 4);
    let r = run_scenario(&reload(&end).unwrap(), "min.ron", 0, &RunOptions::default());
    assert!(violates(&r, "LeaderIs(d, end)"));
}
