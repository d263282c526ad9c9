//! `conclave conform`: real trace logs (four `conclave-node` processes of the textbook
//! Bully, kept in algorithms/tests/data/conform) checked against their scenario
//! (tests/data/conform/bully_four_real.ron, whose simulation shows the same brief second
//! leader at startup), a doctored log caught with its file and line, and bad input.

mod common;

use common::{conclave, expect_code, stderr, stdout};
use std::path::{Path, PathBuf};

const SCENARIO: &str = "tests/data/conform/bully_four_real.ron";

fn logs() -> Vec<String> {
    ["a", "b", "c", "d"]
        .iter()
        .map(|n| format!("algorithms/tests/data/conform/{n}.jsonl"))
        .collect()
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn conform(logs: &[String], scenario: &str, more: &[&str]) -> std::process::Output {
    let mut args = vec!["conform"];
    args.extend(logs.iter().map(String::as_str));
    args.extend(["--scenario", scenario]);
    args.extend(more);
    conclave(&args)
}

/// A scratch directory of this test's own, empty.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("conclave-conform-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn real_logs_conform_and_show_the_second_leader_the_scenario_expects() {
    let o = conform(&logs(), SCENARIO, &[]);
    expect_code(&o, 0);
    let out = stdout(&o);
    for node in ["a", "b", "c", "d"] {
        assert!(out.contains(&format!("{node}: conforms (")), "{out}");
    }
    assert!(
        out.contains("violated, as the scenario expects: a and c both led for 1.169ms"),
        "{out}"
    );
    // The simulator predicts a second leader for the same starts.
    let run = conclave(&["run", SCENARIO]);
    expect_code(&run, 0);
    assert!(stdout(&run).contains("AtMostOneLeader (expected violated): at t=101ms"));
}

#[test]
fn json_gives_each_node_and_the_leaders_by_wall_clock() {
    let o = conform(&logs(), SCENARIO, &["--json"]);
    expect_code(&o, 0);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("one JSON object");
    assert_eq!(v["ok"], true);
    assert_eq!(v["nodes"].as_array().map(Vec::len), Some(4));
    assert!(v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .all(|n| n["conforms"] == true));
    assert_eq!(v["at_most_one_leader_holds"], false);
    // d led until it was killed: its log ends while it leads.
    let led = v["leadership"].as_array().unwrap();
    assert!(led
        .iter()
        .any(|l| l["node"] == "d" && l["until_log_ends"] == true));
    // A wider clock uncertainty than the overlap: no second leader is claimed.
    let wide = conform(
        &logs(),
        SCENARIO,
        &["--json", "--clock-uncertainty", "10ms"],
    );
    expect_code(&wide, 1);
    let v: serde_json::Value = serde_json::from_str(&stdout(&wide)).unwrap();
    assert_eq!(v["at_most_one_leader_holds"], true);
}

#[test]
fn a_doctored_log_fails_naming_its_file_line_and_what_the_model_would_do() {
    let dir = scratch("doctored");
    let text = std::fs::read_to_string(root().join(&logs()[2])).unwrap();
    let n = text
        .lines()
        .position(|l| l.contains(r#""event":"send""#) && l.contains(r#""to":"a""#))
        .unwrap();
    let doctored: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == n {
                l.replace(r#""to":"a""#, r#""to":"b""#)
            } else {
                l.to_string()
            }
        })
        .collect();
    let bad = dir.join("c.jsonl");
    std::fs::write(&bad, doctored.join("\n")).unwrap();
    let mut all = logs();
    all[2] = bad.display().to_string();
    let o = conform(&all, SCENARIO, &[]);
    expect_code(&o, 1);
    let out = stdout(&o);
    assert!(
        out.contains(&format!(
            "c: DOES NOT CONFORM: {}:line {}, node c, after the timer",
            bad.display(),
            n + 1
        )),
        "{out}"
    );
    assert!(
        out.contains(
            "the log has `send Coordinator to b`, the model would `send Coordinator to a`"
        ),
        "{out}"
    );
    assert!(out.trim_end().ends_with("FAILED"), "{out}");
}

#[test]
fn a_scenario_expecting_one_leader_fails_on_these_logs() {
    let dir = scratch("expect");
    let text = std::fs::read_to_string(root().join(SCENARIO)).unwrap();
    let strict = text.replace(
        "    expect: [Agreement],\n    expect_violated: [AtMostOneLeader],",
        "    expect: [AtMostOneLeader],",
    );
    assert_ne!(strict, text);
    let file = dir.join("strict.ron");
    std::fs::write(&file, strict).unwrap();
    let o = conform(&logs(), &file.display().to_string(), &[]);
    expect_code(&o, 1);
    assert!(
        stdout(&o).contains("VIOLATED: a and c both led"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn missing_logs_and_bad_scenarios_exit_2() {
    let o = conform(&["no/such.jsonl".to_string()], SCENARIO, &[]);
    expect_code(&o, 2);
    assert!(
        stderr(&o).contains("no/such.jsonl: cannot read the trace log"),
        "{}",
        stderr(&o)
    );
    let o = conform(&logs(), "tests/bad/sweep_negative_rate.ron", &[]);
    expect_code(&o, 2);
    let o = conform(&logs(), SCENARIO, &["--clock-uncertainty", "soon"]);
    expect_code(&o, 2);
    // A file that is no trace log: its line named, exit 2.
    let dir = scratch("garbage");
    let garbage = dir.join("garbage.jsonl");
    std::fs::write(&garbage, "{\"mono_us\": 1}\n").unwrap();
    let o = conform(&[garbage.display().to_string()], SCENARIO, &[]);
    expect_code(&o, 2);
    assert_eq!(
        stderr(&o),
        format!(
            "error: {}:1: not a trace log: a line without an \"event\"\n",
            garbage.display()
        )
    );
}
