//! `conclave shrink` as users drive it: the file it writes, what `conclave run` says of that
//! file, its JSON, determinism across processes, and bad input.

use conclave_sim::run::{run_scenario, RunOptions};
use conclave_sim::scenario::{Fault, FaultSpec, Scenario};
use std::path::{Path, PathBuf};

mod common;
use common::{conclave_in, expect_code, stderr, stdout};

/// Plain Bully under random crashes, pauses, partitions and blocks (5 nodes).
const SWEPT: &str = r#"// Plain Bully under random faults.
Scenario(
    algorithm: Bully(),
    nodes: [(name: "a", id: 1), (name: "b", id: 2), (name: "c", id: 3), (name: "d", id: 4),
            (name: "e", id: 5)],
    run_for: "20s",
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
)
"#;

/// A fresh folder for one test, holding `swept.ron`.
fn folder(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("shrink-cli")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("swept.ron"), SWEPT).unwrap();
    dir
}

fn partitions(faults: &[FaultSpec]) -> usize {
    faults
        .iter()
        .filter(|f| matches!(f.fault, Fault::Partition(_)))
        .count()
}

/// Whether `s`'s run with `seed` completes and violates AtMostOneLeader.
fn violates(s: &Scenario, seed: u64) -> bool {
    let r = run_scenario(s, "x.ron", seed, &RunOptions::default());
    r.incomplete.is_none()
        && r.expectations
            .iter()
            .any(|e| e.name == "AtMostOneLeader" && e.expected == "holds" && !e.ok)
}

/// A seed whose run violates AtMostOneLeader with a partition among its faults.
fn partition_seed() -> u64 {
    let s = Scenario::from_str(SWEPT, "swept.ron").unwrap();
    (0..200)
        .find(|&seed| partitions(&s.for_seed(seed).faults) > 0 && violates(&s, seed))
        .expect("a seed below 200 fails under a partition")
}

/// A seed whose run holds every expectation.
fn holding_seed() -> u64 {
    let s = Scenario::from_str(SWEPT, "swept.ron").unwrap();
    (0..200)
        .find(|&seed| run_scenario(&s, "swept.ron", seed, &RunOptions::default()).ok)
        .expect("a seed below 200 holds")
}

/// The next Restart of a crash or leave, or Resume of a pause, on the same node.
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

#[test]
fn shrink_writes_a_one_minimal_scenario_that_run_fails_the_same_way() {
    let dir = folder("minimal");
    let seed = partition_seed();
    let original = Scenario::from_str(SWEPT, "swept.ron")
        .unwrap()
        .for_seed(seed)
        .into_owned();
    let o = conclave_in(
        &dir,
        &[
            "shrink",
            "swept.ron",
            "--seed",
            &seed.to_string(),
            "--output",
            "min.ron",
        ],
    );
    expect_code(&o, 0);
    let out = stdout(&o);
    assert!(
        out.starts_with(&format!(
            "shrinking swept.ron seed {seed}: AtMostOneLeader violated ("
        )),
        "{out}"
    );
    assert!(out.contains("\nminimal: "), "{out}");
    assert!(
        out.contains("wrote min.ron\nrun it: conclave run min.ron\n"),
        "{out}"
    );
    // The file says where it comes from, and runs as it says.
    let text = std::fs::read_to_string(dir.join("min.ron")).unwrap();
    let header = format!(
        "// Shrunk by conclave {} (conclave shrink) from swept.ron, seed {seed}:\n// AtMostOneLeader violated at t=",
        env!("CARGO_PKG_VERSION")
    );
    assert!(text.starts_with(&header), "{text}");
    assert!(text.contains("// Run it: conclave run min.ron\n"), "{text}");
    let run = conclave_in(&dir, &["run", "min.ron"]);
    expect_code(&run, 1);
    assert!(
        stdout(&run).contains("FAILED  AtMostOneLeader: at t="),
        "{}",
        stdout(&run)
    );
    // Smaller, with at most one partition, and each fault needed.
    let min = Scenario::load(&dir.join("min.ron")).unwrap();
    assert!(min.sweep.is_none() && min.seeds == [seed]);
    assert!(partitions(&min.faults) <= 1, "{text}");
    assert!(min.faults.len() < original.faults.len(), "{text}");
    assert!(violates(&min, seed));
    for i in 0..min.faults.len() {
        let mut without = min.clone();
        without.faults.remove(i);
        let loaded = Scenario::from_str(&without.to_ron(""), "w.ron").or_else(|_| {
            let u = undo(&min.faults, i).ok_or(())?;
            let mut pair = min.clone();
            pair.faults = (0..min.faults.len())
                .filter(|&j| j != i && j != u)
                .map(|j| min.faults[j].clone())
                .collect();
            Scenario::from_str(&pair.to_ron(""), "w.ron").map_err(|_| ())
        });
        if let Ok(w) = loaded {
            assert!(!violates(&w, seed), "faults[{i}] is not needed:\n{text}");
        }
    }
    // No temporary file is left next to the output.
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(sorted, ["min.ron", "swept.ron"]);
}

#[test]
fn shrink_gives_the_same_file_and_output_every_time() {
    let seed = partition_seed().to_string();
    let runs: Vec<(String, String)> = ["a", "b"]
        .iter()
        .map(|name| {
            let dir = folder(&format!("determinism-{name}"));
            let o = conclave_in(&dir, &["shrink", "swept.ron", "--seed", &seed]);
            expect_code(&o, 0);
            // The default name: the scenario's name, the seed, `.min.ron`.
            let file = dir.join(format!("swept.seed-{seed}.min.ron"));
            (stdout(&o), std::fs::read_to_string(file).unwrap())
        })
        .collect();
    assert_eq!(runs[0], runs[1]);
}

#[test]
fn shrink_json_reports_steps_size_runs_and_output() {
    let dir = folder("json");
    let seed = partition_seed().to_string();
    let o = conclave_in(
        &dir,
        &[
            "shrink",
            "swept.ron",
            "--seed",
            &seed,
            "-o",
            "m.ron",
            "--json",
        ],
    );
    expect_code(&o, 0);
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(v["property"], "AtMostOneLeader");
    assert_eq!(v["expected"], "holds");
    assert_eq!(v["output"], "m.ron");
    assert_eq!(v["replay"], "conclave run m.ron");
    assert_eq!(v["max_runs"], 2000);
    assert_eq!(v["max_runs_reached"], false);
    let steps = v["steps"].as_array().unwrap();
    assert!(!steps.is_empty());
    for s in steps {
        assert!(s["pass"].is_string() && s["change"].is_string(), "{s}");
        assert!(
            s["size"]["faults"].is_u64() && s["size"]["run_for_us"].is_u64(),
            "{s}"
        );
    }
    assert_eq!(steps.last().unwrap()["size"], v["final"]);
    let min = Scenario::load(&dir.join("m.ron")).unwrap();
    assert_eq!(v["final"]["faults"], min.faults.len());
    assert_eq!(v["final"]["nodes"], min.nodes.len());
    assert_eq!(v["final"]["run_for"], min.run_for.to_string());
    assert_eq!(v["faults"].as_array().unwrap().len(), min.faults.len());
    assert!(v["runs"].as_u64().unwrap() > steps.len() as u64);
    assert!(v["original"]["faults"].as_u64().unwrap() > min.faults.len() as u64);
}

#[test]
fn shrink_stops_at_max_runs_and_says_so() {
    let dir = folder("max-runs");
    let seed = partition_seed().to_string();
    let o = conclave_in(
        &dir,
        &["shrink", "swept.ron", "--seed", &seed, "--max-runs", "3"],
    );
    expect_code(&o, 0);
    assert!(
        stdout(&o).contains("stopped at the bound of 3 runs (--max-runs): perhaps not minimal"),
        "{}",
        stdout(&o)
    );
    let run = conclave_in(&dir, &["run", &format!("swept.seed-{seed}.min.ron")]);
    expect_code(&run, 1);
}

#[test]
fn shrink_refuses_what_it_cannot_shrink_with_exit_2() {
    let dir = folder("bad");
    let holds = holding_seed().to_string();
    let o = conclave_in(
        &dir,
        &["shrink", "swept.ron", "--seed", &holds, "-o", "x.ron"],
    );
    expect_code(&o, 2);
    assert_eq!(
        stderr(&o),
        format!(
            "error: swept.ron: the run with seed {holds} fails no expectation: there is nothing to shrink\n"
        )
    );
    let seed = partition_seed().to_string();
    let o = conclave_in(
        &dir,
        &[
            "shrink",
            "swept.ron",
            "--seed",
            &seed,
            "--property",
            "HighestWins",
            "-o",
            "x.ron",
        ],
    );
    expect_code(&o, 2);
    assert!(
        stderr(&o).starts_with(
            "error: swept.ron: --property HighestWins: not an expectation of the scenario"
        ),
        "{}",
        stderr(&o)
    );
    let o = conclave_in(&dir, &["shrink", "no_such.ron"]);
    expect_code(&o, 2);
    assert!(
        stderr(&o).starts_with("error: no_such.ron: cannot read scenario:"),
        "{}",
        stderr(&o)
    );
    let bad = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad/duplicate_id.ron");
    let o = conclave_in(&dir, &["shrink", bad.to_str().unwrap()]);
    expect_code(&o, 2);
    assert!(
        stderr(&o).contains("duplicate_id.ron:5:25: nodes[1].id: duplicate node id 7"),
        "{}",
        stderr(&o)
    );
    let o = conclave_in(
        &dir,
        &["shrink", "swept.ron", "--seed", &seed, "-o", "swept.ron"],
    );
    expect_code(&o, 2);
    assert!(
        stderr(&o).contains("is the scenario being shrunk"),
        "{}",
        stderr(&o)
    );
    // Nothing was written.
    assert!(!dir.join("x.ron").exists());
    assert_eq!(
        std::fs::read_to_string(dir.join("swept.ron")).unwrap(),
        SWEPT
    );
}

#[test]
fn shrink_refuses_a_property_that_did_not_fail() {
    // Agreement held in the run while AtMostOneLeader was violated.
    let dir = folder("held-property");
    let s = Scenario::from_str(SWEPT, "swept.ron").unwrap();
    let seed = (0..200)
        .find(|&seed| {
            let r = run_scenario(&s, "swept.ron", seed, &RunOptions::default());
            let held = |name: &str| r.expectations.iter().any(|e| e.name == name && e.ok);
            r.incomplete.is_none() && !held("AtMostOneLeader") && held("Agreement")
        })
        .expect("a seed below 200 violates AtMostOneLeader and holds Agreement")
        .to_string();
    let o = conclave_in(
        &dir,
        &[
            "shrink",
            "swept.ron",
            "--seed",
            &seed,
            "--property",
            "Agreement",
        ],
    );
    expect_code(&o, 2);
    assert_eq!(
        stderr(&o),
        format!("error: swept.ron: --property Agreement: Agreement was expected to hold and held in the run with seed {seed}: not a failure (failed: AtMostOneLeader)\n")
    );
    assert!(!dir.join(format!("swept.seed-{seed}.min.ron")).exists());
}
