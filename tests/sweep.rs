//! `conclave sweep`, `merge`, records and JUnit, through the binary.

use std::path::{Path, PathBuf};
use std::process::Output;

mod common;
use common::{conclave, expect_code, stderr, stdout};

const SWEPT: &str = "scenarios/sweep/bully_random_faults.ron";

/// A fresh folder of this test's own.
fn folder(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_str(&stdout(o)).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)))
}

/// The seed lines of a results file (the summary line, with its timings, left out).
fn seed_lines(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.last().unwrap().starts_with("{\"summary\":"), "{text}");
    lines[..lines.len() - 1]
        .iter()
        .map(|l| l.to_string())
        .collect()
}

#[test]
fn a_failing_seed_replays_and_its_saved_scenario_and_record_fail_the_same_way() {
    let dir = folder("sweep-replay");
    let saved = dir.join("failures");
    let results = dir.join("results.jsonl");
    let out = conclave(&[
        "sweep",
        SWEPT,
        "--seeds",
        "40",
        "--json",
        "--results",
        results.to_str().unwrap(),
        "--save-failures",
        saved.to_str().unwrap(),
    ]);
    expect_code(&out, 1);
    let v = json(&out);
    assert_eq!(v["runs"], 40);
    let failed = v["failed"].as_u64().unwrap();
    assert!(failed > 0 && failed < 40, "{v}");
    assert!(v["runs_per_second"].as_f64().unwrap() > 0.0);
    let failures = v["failures"].as_array().unwrap();
    assert_eq!(
        failures.len() as u64,
        failed,
        "one expectation, one failure a seed"
    );
    let lines = seed_lines(&results);
    assert_eq!(lines.len(), 40);
    for f in failures.iter().take(3) {
        let seed = f["seed"].as_u64().unwrap();
        assert_eq!(f["property"], "AtMostOneLeader");
        assert_eq!(f["replay"], format!("conclave run {SWEPT} --seed {seed}"));
        assert!(
            f["first_violation"].as_str().unwrap().contains("both lead"),
            "{f}"
        );
        let line: serde_json::Value = lines
            .iter()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|l| l["seed"] == seed)
            .unwrap();
        assert_eq!(line["ok"], false);
        let hash = line["trace_hash"].as_str().unwrap();
        // The replay command: the same trace hash, the same violation at the same time.
        let seed_arg = seed.to_string();
        let run = conclave(&["run", SWEPT, "--seed", &seed_arg, "--json"]);
        expect_code(&run, 1);
        let r = json(&run);
        assert_eq!(r["trace_hash"], hash);
        let e = &r["expectations"][0];
        assert_eq!(e["name"], "AtMostOneLeader");
        assert_eq!(e["failed_at_us"], f["failed_at_us"]);
        // The saved scenario: the drawn faults written out, no sweep block, same run.
        let ron = saved.join(format!("bully_random_faults.seed-{seed}.ron"));
        let text = std::fs::read_to_string(&ron).unwrap();
        assert!(!text.contains("sweep:"), "{text}");
        assert!(text.contains("faults:"), "{text}");
        let run = conclave(&["run", ron.to_str().unwrap(), "--json"]);
        expect_code(&run, 1);
        let r2 = json(&run);
        assert_eq!(r2["trace_hash"], hash);
        assert_eq!(r2["expectations"][0]["failed_at_us"], f["failed_at_us"]);
        // The record replays the seed from its scenario, and says it is the same run.
        let record = saved.join(format!("bully_random_faults.seed-{seed}.json"));
        let run = conclave(&["run", record.to_str().unwrap()]);
        expect_code(&run, 1);
        assert!(
            stderr(&run).contains(&format!(
                "record: seed {seed} ran to the recorded trace hash {hash}"
            )),
            "{}",
            stderr(&run)
        );
        assert!(stdout(&run).contains("AtMostOneLeader"), "{}", stdout(&run));
        // The record shrinks to a scenario that fails the same way.
        let min = dir.join(format!("min-{seed}.ron"));
        let out = conclave(&[
            "shrink",
            record.to_str().unwrap(),
            "-o",
            min.to_str().unwrap(),
        ]);
        expect_code(&out, 0);
        assert!(
            stdout(&out).contains(&format!(
                "bully_random_faults.ron seed {seed}: AtMostOneLeader violated"
            )),
            "{}",
            stdout(&out)
        );
        let run = conclave(&["run", min.to_str().unwrap()]);
        expect_code(&run, 1);
        assert!(
            stdout(&run).contains("FAILED  AtMostOneLeader"),
            "{}",
            stdout(&run)
        );
    }
    // Only failing seeds are saved: a record and a scenario each.
    let files = std::fs::read_dir(&saved).unwrap().count() as u64;
    assert_eq!(files, 2 * failed);
}

#[test]
fn shards_merged_equal_the_whole_sweep_and_jobs_change_nothing() {
    let dir = folder("sweep-shards");
    // The same 60 seeds each time, on one job, on two, and as each of three shards.
    let sweep = |flag: &str, value: &str, results: &Path| {
        conclave(&[
            "sweep",
            SWEPT,
            "--seeds",
            "60",
            "--from",
            "100",
            flag,
            value,
            "--results",
            results.to_str().unwrap(),
        ])
    };
    let whole = dir.join("whole.jsonl");
    let two = dir.join("two.jsonl");
    for (jobs, results) in [("1", &whole), ("2", &two)] {
        expect_code(&sweep("--jobs", jobs, results), 1);
    }
    assert_eq!(
        seed_lines(&whole),
        seed_lines(&two),
        "--jobs 1 and --jobs 2"
    );
    let mut shards = Vec::new();
    for i in 0..3 {
        let path = dir.join(format!("shard{i}.jsonl"));
        let out = sweep("--shard", &format!("{i}/3"), &path);
        assert!(matches!(out.status.code(), Some(0 | 1)), "{}", stderr(&out));
        let lines = seed_lines(&path);
        assert_eq!(lines.len(), 20);
        shards.push(path);
    }
    let merged = dir.join("merged.jsonl");
    let mut args = vec!["merge", "--json", "--results", merged.to_str().unwrap()];
    args.extend(shards.iter().map(|p| p.to_str().unwrap()));
    let out = conclave(&args);
    expect_code(&out, 1);
    assert_eq!(seed_lines(&merged), seed_lines(&whole), "shards merged");
    let v = json(&out);
    assert_eq!(v["runs"], 60);
    assert_eq!(v["shards"], 3);
    assert_eq!(v["missing"], 0);
    let whole_failed = seed_lines(&whole)
        .iter()
        .filter(|l| l.contains("\"ok\":false"))
        .count();
    assert_eq!(v["failed"], whole_failed as u64);
    // Two shards of three: the third's seeds are missing, said so, never "ok".
    let out = conclave(&[
        "merge",
        shards[0].to_str().unwrap(),
        shards[1].to_str().unwrap(),
    ]);
    expect_code(&out, 1);
    assert!(
        stdout(&out).contains("MISSING 20 of the 60 seeds"),
        "{}",
        stdout(&out)
    );
    // One shard twice.
    let out = conclave(&[
        "merge",
        shards[0].to_str().unwrap(),
        shards[0].to_str().unwrap(),
    ]);
    expect_code(&out, 2);
    assert!(stderr(&out).contains("is in both"), "{}", stderr(&out));
}

#[test]
fn check_determinism_and_junit() {
    let dir = folder("sweep-junit");
    let junit = dir.join("sweep.xml");
    let out = conclave(&[
        "sweep",
        SWEPT,
        "--seeds",
        "30",
        "--check-determinism",
        "--junit",
        junit.to_str().unwrap(),
    ]);
    expect_code(&out, 1);
    assert!(
        stdout(&out).contains("determinism: a sample of seeds ran again"),
        "{}",
        stdout(&out)
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(xml.matches("<testcase ").count(), 1, "{xml}");
    assert!(xml.contains("name=\"AtMostOneLeader holds\""), "{xml}");
    assert!(xml.contains("<failure"), "{xml}");
    assert!(
        xml.contains(&format!("conclave run {SWEPT} --seed")),
        "{xml}"
    );
    // check --junit: a test suite per scenario file, a case per expectation.
    let checked = dir.join("check.xml");
    let out = conclave(&[
        "check",
        "scenarios/consul_four_nodes.ron",
        "scenarios/bully_partition_split.ron",
        "--junit",
        checked.to_str().unwrap(),
    ]);
    expect_code(&out, 0);
    let xml = std::fs::read_to_string(&checked).unwrap();
    assert_eq!(xml.matches("<testsuite ").count(), 2, "{xml}");
    // consul_four_nodes expects 7 properties.
    assert!(xml.contains("tests=\"7\""), "{xml}");
    assert!(!xml.contains("<failure"), "{xml}");
    assert!(
        xml.contains("is violated\""),
        "bully_partition_split expects a violation: {xml}"
    );
}

#[test]
fn bad_input_exits_2_and_writes_nothing() {
    let dir = folder("sweep-bad");
    let results = dir.join("r.jsonl");
    let saved = dir.join("saved");
    let r = results.to_str().unwrap();
    let s = saved.to_str().unwrap();
    for (args, says) in [
        (vec!["--shard", "3/3"], "shards of 3 are numbered 0 to 2"),
        (vec!["--shard", "1/0"], "no shard of 0 shards"),
        (vec!["--shard", "x"], "is not a shard"),
        (vec!["--seeds", "0"], "--seeds 0"),
        (vec!["--jobs", "0"], "--jobs 0"),
        (
            vec!["--seeds", "2", "--from", "18446744073709551615"],
            "the last seed would pass",
        ),
    ] {
        let mut all = vec!["sweep", SWEPT, "--results", r, "--save-failures", s];
        all.extend(args.iter().copied());
        let out = conclave(&all);
        expect_code(&out, 2);
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
        assert!(
            !results.exists() && !saved.exists(),
            "{args:?} wrote something"
        );
    }
    // A sweep block with a negative rate.
    let out = conclave(&["sweep", "tests/bad/sweep_negative_rate.ron", "--results", r]);
    expect_code(&out, 2);
    assert!(
        stderr(&out).contains("sweep.loss[0]: a rate is a probability"),
        "{}",
        stderr(&out)
    );
    assert!(!results.exists());
    // Records: corrupted, of a missing scenario, of another version.
    let out = conclave(&["sweep", SWEPT, "--seeds", "40", "--save-failures", s]);
    expect_code(&out, 1);
    let record = std::fs::read_dir(&saved)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .expect("a failing seed saved");
    let text = std::fs::read_to_string(&record).unwrap();
    let corrupted = dir.join("corrupted.json");
    std::fs::write(&corrupted, &text[..text.len() / 2]).unwrap();
    let out = conclave(&["run", corrupted.to_str().unwrap()]);
    expect_code(&out, 2);
    assert!(
        stderr(&out).contains("not a record of `conclave sweep --save-failures`"),
        "{}",
        stderr(&out)
    );
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["scenario"] = "no/such/scenario.ron".into();
    v["scenario_relative_to_file"] = serde_json::Value::Null;
    let missing = dir.join("missing.json");
    std::fs::write(&missing, v.to_string()).unwrap();
    let out = conclave(&["run", missing.to_str().unwrap()]);
    expect_code(&out, 2);
    assert!(
        stderr(&out).contains("the record's scenario no/such/scenario.ron cannot be read"),
        "{}",
        stderr(&out)
    );
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["conclave_version"] = "0.0.1".into();
    let old = saved.join("old.json");
    std::fs::write(&old, v.to_string()).unwrap();
    let out = conclave(&["run", old.to_str().unwrap()]);
    expect_code(&out, 1);
    assert!(
        stderr(&out).contains("this record was written by conclave 0.0.1, and this is conclave"),
        "{}",
        stderr(&out)
    );
    // A record fixes its seed.
    let out = conclave(&["run", record.to_str().unwrap(), "--seed", "99999"]);
    expect_code(&out, 2);
}

/// `sweep --report DIR`: a page of the failures with a chart of the first seed of each group.
#[test]
fn sweep_report_draws_the_first_seed_of_each_group() {
    let dir = folder("sweep-report");
    let out = conclave(&[
        "sweep",
        SWEPT,
        "--seeds",
        "40",
        "--json",
        "--report",
        dir.to_str().unwrap(),
    ]);
    expect_code(&out, 1);
    let v = json(&out);
    let groups = v["groups"].as_array().unwrap();
    assert!(!groups.is_empty());
    let page = std::fs::read_to_string(dir.join("bully_random_faults.sweep.html")).unwrap();
    for g in groups {
        let first = g["seeds"][0].as_u64().unwrap();
        let chart = format!("bully_random_faults.seed-{first}.html");
        assert!(
            page.contains(&format!("href=\"{chart}\"")),
            "{chart} not linked"
        );
        assert!(dir.join(&chart).is_file(), "{chart} not written");
        assert!(page.contains(g["cause"].as_str().unwrap()), "{g}");
    }
    let failed = v["failed"].as_u64().unwrap() as usize;
    assert_eq!(page.matches("<code>conclave run ").count(), failed);
}
