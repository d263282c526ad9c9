//! The `sweep` block: what a seed draws, that every command runs the same draws, and that
//! a drawn schedule written out as a scenario runs the same run.

use conclave_sim::run::{run_scenario, RunOptions};
use conclave_sim::scenario::{Fault, Scenario};
use std::path::{Path, PathBuf};

mod common;
use common::scenario_files;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every shipped scenario, written out with `to_ron` and read back, runs to the same
/// trace hash: a saved reproducer is the run it claims to be.
#[test]
fn every_scenario_round_trips_through_to_ron() {
    let mut files = Vec::new();
    scenario_files(&root().join("scenarios"), &mut files);
    assert!(files.len() > 20, "{files:?}");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("round-trip");
    std::fs::create_dir_all(&dir).unwrap();
    for file in files {
        let s = Scenario::load(&file).unwrap_or_else(|e| panic!("{e}"));
        let text = s.to_ron("written back");
        assert!(text.starts_with("// written back\n"), "{text}");
        // Elsewhere: a server_config file must have been written in.
        let copy = dir.join(file.file_name().unwrap());
        std::fs::write(&copy, &text).unwrap();
        let back =
            Scenario::load(&copy).unwrap_or_else(|e| panic!("{}:\n{text}\n{e}", file.display()));
        assert_eq!(back.priorities, s.priorities, "{}", file.display());
        assert_eq!(back.to_ron("written back"), text, "{}", file.display());
        let seed = s.seeds[0];
        let a = run_scenario(&s, "a.ron", seed, &RunOptions::default());
        let b = run_scenario(&back, "a.ron", seed, &RunOptions::default());
        assert_eq!(a.trace_hash, b.trace_hash, "{}", file.display());
    }
}

const SWEPT: &str = r#"Scenario(
    algorithm: Bully(),
    nodes: [(name: "a", id: 1), (name: "b", id: 2), (name: "c", id: 3), (name: "d", id: 4)],
    faults: [(at: "2s", fault: Pause("a")), (at: "3s", fault: Resume("a"))],
    run_for: "30s",
    sweep: (
        window: ("1s", "20s"),
        crashes: (count: (0, 3), lasts: ("500ms", "5s")),
        pauses: (count: (0, 2), lasts: ("100ms", "2s")),
        partitions: (count: (0, 2), lasts: ("1s", "4s"), groups: (2, 3)),
        blocks: (count: (0, 2), lasts: ("1s", "2s")),
        loss: (0.0, 0.2),
        duplicate: (0.0, 0.1),
        delays: [Constant("5ms"), Uniform(min: "1ms", max: "40ms")],
    ),
)"#;

#[test]
fn seeds_draw_different_mixes_that_replay_exactly() {
    let s = Scenario::from_str(SWEPT, "swept.ron").unwrap();
    let mut kinds = std::collections::BTreeSet::new();
    let mut counts = std::collections::BTreeSet::new();
    let mut seeds_with = std::collections::BTreeMap::new();
    for seed in 0..200 {
        let run = s.for_seed(seed);
        assert!(run.sweep.is_none());
        // The fixed faults come first, untouched.
        assert!(matches!(&run.faults[0].fault, Fault::Pause(a) if a == "a"));
        assert!(matches!(&run.faults[1].fault, Fault::Resume(a) if a == "a"));
        let drawn = &run.faults[2..];
        counts.insert(drawn.len());
        let mix: Vec<&str> = drawn
            .iter()
            .map(|f| match f.fault {
                Fault::Crash(_) => "crash",
                Fault::Restart(_) => "restart",
                Fault::Pause(_) => "pause",
                Fault::Resume(_) => "resume",
                Fault::Partition(_) => "partition",
                Fault::Heal => "heal",
                Fault::Block(..) => "block",
                Fault::Unblock(..) => "unblock",
                Fault::Leave(_) => "leave",
            })
            .collect();
        let used: std::collections::BTreeSet<&str> = mix.into_iter().collect();
        for k in &used {
            *seeds_with.entry(*k).or_insert(0) += 1;
        }
        kinds.insert(format!("{used:?}"));
        for f in drawn {
            // Struck inside the window; undone at most 5 s later.
            assert!(
                f.at.as_micros() >= 1_000_000 && f.at.as_micros() < 25_000_000,
                "{f:?}"
            );
        }
        assert!(drawn.windows(2).all(|w| w[0].at <= w[1].at), "time order");
        // The drawn scenario is a valid scenario on its own, and runs the same run.
        let text = run.to_ron("");
        let back = Scenario::from_str(&text, "back.ron").unwrap_or_else(|e| panic!("{e}\n{text}"));
        if seed < 20 {
            let a = run_scenario(&s, "swept.ron", seed, &RunOptions::default());
            let b = run_scenario(&back, "back.ron", seed, &RunOptions::default());
            assert_eq!(a.trace_hash, b.trace_hash, "seed {seed}");
        }
    }
    // Swarm: seeds differ in which kinds they use and how many faults.
    assert!(kinds.len() >= 10, "{kinds:?}");
    for k in [
        "crash",
        "restart",
        "pause",
        "resume",
        "partition",
        "heal",
        "block",
        "unblock",
    ] {
        let n = seeds_with.get(k).copied().unwrap_or(0);
        assert!((20..=180).contains(&n), "{k} in {n} seeds of 200");
    }
    assert!(
        counts.contains(&0) && counts.iter().max().unwrap() >= &8,
        "{counts:?}"
    );
}

#[test]
fn the_sweep_changes_no_draw_of_the_network_or_the_algorithm() {
    // Without faults or network ranges, the block draws nothing that reaches the run.
    let plain = Scenario::from_str(
        r#"Scenario(algorithm: Bully(), nodes: [(name: "a", id: 1), (name: "b", id: 2)],
            network: (delay: Uniform(min: "1ms", max: "30ms")), run_for: "10s")"#,
        "plain.ron",
    )
    .unwrap();
    let swept = Scenario::from_str(
        r#"Scenario(algorithm: Bully(), nodes: [(name: "a", id: 1), (name: "b", id: 2)],
            network: (delay: Uniform(min: "1ms", max: "30ms")), run_for: "10s",
            sweep: (crashes: (count: (0, 0))))"#,
        "swept.ron",
    )
    .unwrap();
    for seed in 0..10 {
        let a = run_scenario(&plain, "p.ron", seed, &RunOptions::default());
        let b = run_scenario(&swept, "p.ron", seed, &RunOptions::default());
        assert_eq!(a.trace_hash, b.trace_hash);
    }
}

#[test]
fn bad_sweep_blocks_name_their_field() {
    let base = |sweep: &str| {
        format!(
            r#"Scenario(algorithm: Bully(), nodes: [(name: "a", id: 1), (name: "b", id: 2)],
            run_for: "10s", sweep: ({sweep}))"#
        )
    };
    for (sweep, path, says) in [
        (
            "loss: (-0.1, 0.2)",
            "sweep.loss[0]",
            "a rate is a probability in 0..=1, not -0.1",
        ),
        ("duplicate: (0.5, 0.2)", "sweep.duplicate", "min above max"),
        (
            "crashes: (count: (3, 1))",
            "sweep.crashes.count",
            "min above max",
        ),
        (
            "pauses: (count: (1, 100000))",
            "sweep.pauses.count",
            "above 1000",
        ),
        (
            "blocks: (count: (1, 1), lasts: (\"2s\", \"1s\"))",
            "sweep.blocks.lasts",
            "min above max",
        ),
        (
            "window: (\"5s\", \"1s\")",
            "sweep.window",
            "not before its end",
        ),
        ("window: (\"1s\", \"11s\")", "sweep.window", "after the run"),
        (
            "targets: [\"z\"]",
            "sweep.targets[0]",
            "no node or service is named \"z\"",
        ),
        (
            "partitions: (count: (1, 1), groups: (1, 2))",
            "sweep.partitions.groups",
            "2 to 2 groups",
        ),
        (
            "delays: [Uniform(min: \"5ms\", max: \"1ms\")]",
            "sweep.delays[0]",
            "min 5ms above max 1ms",
        ),
    ] {
        let e = Scenario::from_str(&base(sweep), "bad.ron").unwrap_err();
        assert_eq!(e.path, path, "{sweep}: {e}");
        assert!(e.message.contains(says), "{sweep}: {e}");
        assert!(e.position.is_some(), "{sweep}: {e}");
    }
    let e = Scenario::from_str(
        &base("crashes: (count: (1, 1), sometimes: true)"),
        "bad.ron",
    )
    .unwrap_err();
    assert!(e.to_string().contains("sometimes"), "{e}");
}
