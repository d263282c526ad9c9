//! Determinism is the product: the same scenario and seed give the same trace hash; another
//! seed gives another trace when delays are random; recording the trace changes nothing.

use conclave_sim::run::{run_scenario, RunOptions};
use conclave_sim::scenario::Scenario;
use conclave_sim::trace::What;

const RANDOM_DELAYS: &str = r#"Scenario(
    algorithm: Bully(answer_timeout: "300ms", heartbeat_interval: "500ms", heartbeat_timeout: "500ms"),
    nodes: [(name: "a", id: 1), (name: "b", id: 2), (name: "c", id: 3), (name: "d", id: 4), (name: "e", id: 5)],
    network: (delay: Uniform(min: "1ms", max: "80ms"), loss: 0.05, duplicate: 0.05),
    faults: [
        (at: "3s", fault: Crash("e")),
        (at: "5s", fault: Pause("d")),
        (at: "7s", fault: Resume("d")),
        (at: "8s", fault: Block("a", "c")),
        (at: "9s", fault: Restart("e")),
        (at: "11s", fault: Heal),
    ],
    run_for: "15s",
)"#;

fn scenario() -> Scenario {
    Scenario::from_str(RANDOM_DELAYS, "random.ron").unwrap()
}

#[test]
fn same_seed_same_trace_hash_in_one_process() {
    let s = scenario();
    for seed in [0, 1, 99] {
        let a = run_scenario(&s, "random.ron", seed, &RunOptions::default());
        let b = run_scenario(&s, "random.ron", seed, &RunOptions::default());
        assert_eq!(a.trace_hash, b.trace_hash, "seed {seed}");
        assert_eq!(a.events, b.events);
        assert_eq!(a.messages.by_kind, b.messages.by_kind);
    }
}

#[test]
fn different_seeds_give_different_traces() {
    let s = scenario();
    let hashes: std::collections::BTreeSet<String> = (0..8)
        .map(|seed| run_scenario(&s, "random.ron", seed, &RunOptions::default()).trace_hash)
        .collect();
    assert_eq!(hashes.len(), 8, "eight seeds, eight traces");
}

#[test]
fn recording_the_trace_does_not_change_the_hash() {
    let s = scenario();
    let plain = run_scenario(&s, "random.ron", 5, &RunOptions::default());
    let traced = run_scenario(
        &s,
        "random.ron",
        5,
        &RunOptions {
            record_trace: true,
            ..RunOptions::default()
        },
    );
    assert_eq!(plain.trace_hash, traced.trace_hash);
    assert!(traced.trace.as_ref().unwrap().len() as u64 >= traced.events);
}

#[test]
fn the_network_faults_really_happen() {
    // Loss, duplication, the pause and the block all leave marks in the counts.
    let r = run_scenario(
        &scenario(),
        "random.ron",
        2,
        &RunOptions {
            record_trace: true,
            ..RunOptions::default()
        },
    );
    assert!(
        r.messages.dropped > 0 && r.messages.duplicated > 0,
        "{:?}",
        r.messages
    );
    let reasons: std::collections::BTreeSet<String> = r
        .trace
        .unwrap()
        .iter()
        .filter_map(|e| match &e.what {
            conclave_sim::trace::What::Drop { reason, .. } => Some(format!("{reason:?}")),
            _ => None,
        })
        .collect();
    for reason in ["Lost", "Down", "Paused"] {
        assert!(reasons.contains(reason), "{reason} in {reasons:?}");
    }
}

/// The trace hash is part of the contract: the same scenario, seed and version give the same
/// hash on every machine. This pins one, so that a change to the trace encoding, the event
/// order or the random streams is noticed. Change it only on purpose, and say so.
#[test]
fn golden_trace_hash_of_the_consul_scenario() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/consul_four_nodes.ron");
    let s = Scenario::load(&path).unwrap();
    let r = run_scenario(&s, "consul_four_nodes.ron", 0, &RunOptions::default());
    // Changed on purpose: role events carry the group number (the invitation algorithm), and
    // the scenario gained its registry (seed 000's Consul).
    assert_eq!(r.trace_hash, "1a602b9145f71eae");
    assert_eq!(r.events, 136);
}

#[test]
fn traces_name_processes_inside_messages() {
    // Bully's heartbeat acknowledgements carry the processes the coordinator knows: a
    // reader sees their names, as everywhere else in the trace, not their indices.
    let r = run_scenario(
        &scenario(),
        "random.ron",
        5,
        &RunOptions {
            record_trace: true,
            ..RunOptions::default()
        },
    );
    let trace = r.trace.unwrap();
    let texts: Vec<String> = trace
        .iter()
        .filter_map(|e| match &e.what {
            What::Send { msg, .. } | What::Deliver { msg, .. } => Some(msg.clone()),
            What::Timer { timer } => Some(timer.clone()),
            _ => None,
        })
        .collect();
    assert!(
        texts.iter().any(|t| t.contains("processes: [a, b, c, d")),
        "a heartbeat acknowledgement lists the nodes by name"
    );
    assert!(
        texts.iter().all(|t| !t.contains("Pid(")),
        "no process index is left"
    );
}

/// A sweep renews one world per thread from seed to seed (`run_verdict_kept`): every shipped
/// scenario gives, seed after seed in one kept world, the verdict a new world gives, and a
/// world kept from another scenario (other processes, or another algorithm) is not reused
/// wrongly.
#[test]
fn a_renewed_world_runs_as_a_new_one_and_a_run_without_the_hash_is_the_same_run() {
    use conclave_sim::run::{run_verdict, run_verdict_kept, Kept, Verdict};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut files: Vec<_> = ["", "sweep", "explore"]
        .iter()
        .flat_map(|sub| std::fs::read_dir(dir.join(sub)).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "ron"))
        .collect();
    files.sort();
    assert!(files.len() > 10, "the shipped scenarios: {files:?}");
    let opts = RunOptions::default();
    let no_hash = RunOptions {
        no_trace_hash: true,
        ..RunOptions::default()
    };
    // One kept world across every scenario, as well as one per scenario.
    let mut shared = Kept::default();
    for file in &files {
        let s = Scenario::load(file).unwrap();
        let seeds = if file.to_string_lossy().contains("bully32") {
            3
        } else {
            12
        };
        let mut kept = Kept::default();
        for seed in 0..seeds {
            let fresh = run_verdict(&s, seed, &opts);
            let report = Verdict::of(&run_scenario(&s, "f.ron", seed, &opts));
            let renewed = run_verdict_kept(&s, seed, &opts, &mut kept);
            // Without the hash (as a plain sweep runs), in the shared world, which then
            // hashes again for the next run.
            let unhashed = run_verdict_kept(&s, seed, &no_hash, &mut shared);
            let across = run_verdict_kept(&s, seed, &opts, &mut shared);
            let show = |v: &Verdict| format!("{v:?}");
            assert_eq!(show(&fresh), show(&report), "{file:?} seed {seed}");
            assert_eq!(show(&fresh), show(&renewed), "{file:?} seed {seed}");
            assert_eq!(show(&fresh), show(&across), "{file:?} seed {seed}");
            assert_eq!(unhashed.trace_hash, "", "{file:?} seed {seed}");
            assert_eq!(fresh.trace_hash.len(), 16, "{file:?} seed {seed}");
            let unhashed = Verdict {
                trace_hash: fresh.trace_hash.clone(),
                ..unhashed
            };
            assert_eq!(show(&fresh), show(&unhashed), "{file:?} seed {seed}");
        }
    }
}
