//! The `conclave` binary as users and CI scripts drive it: exit codes, messages, JSON keys,
//! and determinism across processes.

use std::path::Path;
use std::process::{Command, Output};

mod common;
use common::{conclave, conclave_in, expect_code, stderr, stdout};

/// Every bad scenario in `tests/bad/`, the error it must give (file:line:col: path: message)
/// and exit code 2. A new bad file without a row here fails the test.
#[test]
fn bad_scenarios_are_reported_with_position_and_path_and_exit_2() {
    let cases: &[(&str, &str)] = &[
        ("duplicate_id.ron", "duplicate_id.ron:5:25: nodes[1].id: duplicate node id 7 (also nodes[0]): priorities must be distinct"),
        ("duplicate_name.ron", "duplicate_name.ron:5:16: nodes[1].name: duplicate node name \"a\" (also nodes[0])"),
        ("duplicate_service_name.ron", "duplicate_service_name.ron:5:24: log_server.name: duplicate process name \"gcd\" (also algorithm.gcd): every node and service needs a name of its own"),
        ("service_named_like_a_node.ron", "service_named_like_a_node.ron:2:48: algorithm.discovery.name: duplicate process name \"b\" (also nodes[1]): every node and service needs a name of its own"),
        ("node_name_with_equals.ron", "node_name_with_equals.ron:6:16: nodes[1].name: node name \"to=c\" has the character '=': a name is made of ASCII letters, digits, '_', '-', '.' and ':'"),
        ("node_name_with_line_break.ron", "node_name_with_line_break.ron:3:20: nodes[0].name: node name \"a\\nb\" has the character '\\n': a name is made of ASCII letters, digits, '_', '-', '.' and ':'"),
        ("node_name_too_long.ron", "node_name_too_long.ron:3:20: nodes[0].name: node name is 65 characters long: at most 64"),
        ("registry_name_empty.ron", "registry_name_empty.ron:2:48: algorithm.discovery.name: registry name is empty"),
        ("log_server_name_with_space.ron", "log_server_name_with_space.ron:4:24: log_server.name: log server name \"log server\" has the character ' ': a name is made of ASCII letters, digits, '_', '-', '.' and ':'"),
        ("zero_timeout.ron", "zero_timeout.ron:4:43: algorithm.coordinator_timeout: coordinator_timeout must be longer than zero"),
        ("gcd_probe_range.ron", "gcd_probe_range.ron:2:36: algorithm.probe_min: probe interval has min 3s above max 1s"),
        ("foreign_parameter.ron", "foreign_parameter.ron:2:28: algorithm.Bully.quorum: Unexpected field named `quorum` in `Bully`"),
        ("negative_duration.ron", "negative_duration.ron:8:55: faults[1].at: invalid duration \"-5s\": durations cannot be negative"),
        ("no_nodes.ron", "no_nodes.ron:3:12: nodes: a scenario needs at least one node"),
        ("explore_faults_until_before_from.ron", "explore_faults_until_before_from.ron:9:23: explore.faults_until: faults_until 1s is before faults_from 2s"),
        ("explore_no_common_quantum.ron", "explore_no_common_quantum.ron:6:17: explore.timing: the scenario's times have no common step coarser than 1ms (algorithm.answer_timeout is 301ms): the explorer's clock moves in such steps, and max_delay 1s would be 1000 of them (at most 200); make every duration a multiple of a coarser step"),
        ("not_utf8.ron", "not_utf8.ron: cannot read scenario: stream did not contain valid UTF-8"),
        ("partition_twice.ron", "partition_twice.ron:8:56: faults[0].fault[0][1][0]: node \"a\" is listed twice in the partition"),
        ("probability.ron", "probability.ron:8:21: network.loss: probability 1.5 is outside 0..1"),
        ("sweep_negative_rate.ron", "sweep_negative_rate.ron:7:16: sweep.loss[0]: a rate is a probability in 0..=1, not -0.1"),
        ("restart_running.ron", "restart_running.ron:8:32: faults[0].fault: \"a\" is running at 1s, so this fault cannot apply"),
        ("syntax_missing_comma.ron", "syntax_missing_comma.ron:8:44: faults: Expected comma"),
        ("unclosed.ron", "unclosed.ron:2:1: Expected comma (the file ends here"),
        ("unknown_algorithm.ron", "unknown_algorithm.ron:2:20: algorithm: Unexpected variant named `Raft` in enum `AlgorithmSpec`"),
        ("unknown_expect_node.ron", "unknown_expect_node.ron:8:29: expect[0].node: unknown node \"c\" (nodes are: a, b)"),
        ("unknown_fault_node.ron", "unknown_fault_node.ron:8:69: faults[1].fault[0]: unknown node \"zed\" (nodes are: a, b)"),
        ("unknown_field.ron", "unknown_field.ron:8:11: colour: Unexpected field named `colour` in `Scenario`"),
        ("unparsable_duration.ron", "unparsable_duration.ron:7:27: run_for: invalid duration \"ten seconds\": unknown unit"),
        ("wrong_type.ron", "wrong_type.ron:5:25: nodes[1].id: Expected integer"),
    ];
    // tests/bad/configs/ holds the server_config files some of the cases load.
    let config_cases: &[(&str, &str)] = &[
        ("server_config_missing.ron", "tests/bad/server_config_missing.ron:3:20: server_config: cannot read server_config tests/bad/configs/no_such_config"),
        ("server_config_empty.ron", "tests/bad/configs/empty_config:2:1: server_config tests/bad/configs/empty_config lists no server (the server_config of tests/bad/server_config_empty.ron)"),
        ("server_config_malformed_line.ron", "tests/bad/configs/malformed_config:3:1: server_config line 3: \"192.168.145.1\" is not ip:port (the server_config of tests/bad/server_config_malformed_line.ron)"),
        ("server_config_address_not_listed.ron", "tests/bad/server_config_address_not_listed.ron:6:30: nodes[1].address: address 192.168.145.1:9005 is not in the server_config"),
        ("gcd_identity_out_of_range.ron", "tests/bad/gcd_identity_out_of_range.ron:5:31: nodes[1].identity: days 400 is outside 1..=365"),
        ("gcd_student_id_out_of_range.ron", "tests/bad/gcd_student_id_out_of_range.ron:4:31: nodes[0].identity: student id 999999 is outside 1000000..=10000000"),
        ("gcd_missing_identity.ron", "tests/bad/gcd_missing_identity.ron:5:9: nodes[1]: GcdBully needs identity: (days until a birthday, student id)"),
        ("quorum_foreign_parameter.ron", "tests/bad/quorum_foreign_parameter.ron:2:58: algorithm.Quorum.answer_timeout: Unexpected field named `answer_timeout` in `Quorum`"),
        ("identity_on_bully.ron", "tests/bad/identity_on_bully.ron:4:38: nodes[0].identity: identity belongs to GcdBully, not Bully"),
        ("explore_unsupported_property.ron", "tests/bad/explore_unsupported_property.ron:7:35: explore.expect[1]: the explorer checks AtMostOneLeader, OneLeaderPerComponent and EventualLeader, not HighestWins"),
        ("explore_unknown_node.ron", "tests/bad/explore_unknown_node.ron:7:31: explore.partitions[0][1][0]: unknown node \"x\" (nodes are: a, b)"),
        ("explore_duplicates_async.ron", "tests/bad/explore_duplicates_async.ron:7:21: explore.duplicates: duplicates needs Bounded timing: asynchronous exploration keeps the messages in flight as a set, where a copy adds nothing"),
        ("explore_faults_from_async.ron", "tests/bad/explore_faults_from_async.ron:8:22: explore.faults_from: faults_from needs Bounded timing: asynchronous exploration has no clock"),
        ("explore_eventually_perfect_detector.ron", "tests/bad/explore_eventually_perfect_detector.ron:3:19: algorithm.detector: the explorer models a Perfect failure detector only: its false suspicions are not explored"),
        ("explore_detector_nine_nodes.ron", "tests/bad/explore_detector_nine_nodes.ron:3:12: nodes: 9 processes: the explorer keeps a failure detector's verdicts for at most 8"),
    ];
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|f| f.ends_with(".ron"))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = cases
        .iter()
        .chain(config_cases)
        .map(|(f, _)| f.to_string())
        .collect();
    listed.sort();
    assert_eq!(on_disk, listed, "every .ron file in tests/bad has a case");
    // `cases` name messages about the scenario itself; `config_cases` give the whole
    // prefix, since some errors name the server_config file instead.
    let all = cases
        .iter()
        .map(|(f, e)| (*f, format!("tests/bad/{e}")))
        .chain(config_cases.iter().map(|(f, e)| (*f, e.to_string())));
    for (file, expected) in all {
        let out = conclave(&["run", &format!("tests/bad/{file}")]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{file}: exit code; stderr: {}",
            stderr(&out)
        );
        let err = stderr(&out);
        assert!(
            err.starts_with(&format!("error: {expected}")),
            "{file}: got {err}"
        );
        assert!(!err.contains("panicked"), "{file}: {err}");
    }
    // check reports the same files as bad input, with exit code 2.
    let out = conclave(&["check", "tests/bad"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stdout(&out).contains("check: 0 passed, 0 failed"));
}

#[test]
fn bad_flags_and_missing_files_exit_2() {
    let out = conclave(&["run", "scenarios/consul_four_nodes.ron", "--sed", "3"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("unexpected argument '--sed'"));
    let out = conclave(&[
        "run",
        "scenarios/consul_four_nodes.ron",
        "--seed",
        "minus-one",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("invalid value 'minus-one' for '--seed <SEED>'"));
    let out = conclave(&["run", "scenarios/no_such_scenario.ron"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no_such_scenario.ron: cannot read scenario"));
    let out = conclave(&["check", "no_such_folder"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn every_shipped_scenario_passes_check() {
    let out = conclave(&["check", "scenarios"]);
    expect_code(&out, 0);
    let text = stdout(&out);
    assert!(
        text.contains("ok      scenarios/consul_four_nodes.ron (8 seeds)"),
        "{text}"
    );
    assert!(
        text.contains("check: ") && text.contains(" passed, 0 failed"),
        "{text}"
    );
}

#[test]
fn json_has_the_documented_keys() {
    let out = conclave(&[
        "run",
        "scenarios/consul_four_nodes.ron",
        "--json",
        "--seed",
        "5",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("one JSON object");
    assert_eq!(v["scenario"], "consul_four_nodes");
    assert_eq!(v["algorithm"], "Bully");
    assert_eq!(v["seed"], 5);
    assert_eq!(v["ok"], true);
    assert_eq!(v["trace_hash"].as_str().unwrap().len(), 16);
    for node in ["node1", "node2", "node3", "node4"] {
        assert_eq!(v["leaders"][node], "node2", "{node}");
    }
    assert_eq!(v["messages"]["by_kind"]["Election"], 6);
    assert!(v["messages"]["total"].as_u64().unwrap() >= 15);
    let names: Vec<&str> = v["expectations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert_eq!(e["ok"], true);
            e["name"].as_str().unwrap()
        })
        .collect();
    assert_eq!(
        names,
        [
            "AtMostOneLeader",
            "Agreement",
            "HighestWins",
            "LeaderIs(node2, end)",
            "LeaderIs(node2, 12s)",
            "EventualLeader(10s)",
            "ElectionMessagesAtMost(15)"
        ]
    );
    // The registry is a process of the world, listed with the nodes but not in `leaders`.
    assert_eq!(v["leaders"].as_object().unwrap().len(), 4);
    assert_eq!(v["nodes"][4]["name"], "consul");
    assert_eq!(v["nodes"][4]["role"], "Service");
}

#[test]
fn same_seed_same_hash_across_processes() {
    let hash = |seed: &str| {
        let out = conclave(&[
            "run",
            "scenarios/bully_coordinator_crash.ron",
            "--json",
            "--seed",
            seed,
        ]);
        let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        v["trace_hash"].as_str().unwrap().to_string()
    };
    assert_eq!(hash("11"), hash("11"));
    assert_ne!(hash("11"), hash("12"));
}

#[test]
fn a_violated_expectation_exits_1_with_the_replay_command() {
    let dir = std::env::temp_dir().join(format!("conclave-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Plain Bully under a partition elects two leaders: expecting AtMostOneLeader fails.
    let src = std::fs::read_to_string("scenarios/bully_partition_split.ron").unwrap();
    let wrong = src
        .replace("expect_violated: [AtMostOneLeader],", "")
        .replace("expect: [", "expect: [\n        AtMostOneLeader,");
    let file = dir.join("wrong.ron");
    std::fs::write(&file, wrong).unwrap();
    let file = file.to_string_lossy().into_owned();
    let out = conclave(&["run", &file, "--seed", "3"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("FAILED  AtMostOneLeader: at t="), "{text}");
    assert!(text.contains("n2 and n4 both lead"), "{text}");
    assert!(
        text.contains(&format!("replay: conclave run {file} --seed 3")),
        "{text}"
    );
    let out = conclave(&["check", &file]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("seed 0: AtMostOneLeader violated at t="),
        "{text}"
    );
    assert!(
        text.contains(&format!("replay: conclave run {file} --seed 0")),
        "{text}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn trace_prints_one_event_per_line_with_time_first() {
    let out = conclave(&["run", "scenarios/consul_four_nodes.ron", "--trace"]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    let first: Vec<&str> = text.lines().take(5).collect();
    assert_eq!(
        first,
        [
            "t=0s node=consul event=start",
            "t=0s node=consul event=role role=service leader=none status=Registry",
            "t=0s node=node1 event=start",
            "t=0s node=node1 event=role role=idle leader=none status=Discovering",
            "t=0s node=node1 event=send to=consul msg=Register",
        ]
    );
    assert!(text.contains("event=role role=leader leader=node2 status=Coordinator"));
}

/// A message bound's schedule file keeps the trace it gave: `conclave replay` prints exactly
/// that, and warns from which event on when the file's trace no longer matches.
fn schedule_replays_as_saved(file: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let mut saved: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let lines: Vec<String> = saved["trace"]
        .as_array()
        .ok_or("the schedule keeps its trace")?
        .iter()
        .map(|e| {
            let e: conclave_sim::trace::TraceEvent =
                serde_json::from_value(e.clone()).expect("trace events read back");
            conclave_reports::event_line(&e)
        })
        .collect();
    if lines.len() < 10 {
        return Err(format!("a trace of {} events", lines.len()));
    }
    let file = file.to_str().unwrap();
    let out = conclave(&["replay", file]);
    if out.status.code() != Some(0) || !stderr(&out).is_empty() {
        return Err(format!("replay: {:?}: {}", out.status, stderr(&out)));
    }
    let text = stdout(&out);
    let replayed: Vec<&str> = text.lines().take(lines.len()).collect();
    if replayed != lines {
        return Err(format!("replayed {replayed:?}, saved {lines:?}"));
    }
    saved["trace"][4]["node"] = "z".into();
    std::fs::write(file, saved.to_string()).unwrap();
    let out = conclave(&["replay", file]);
    if !stderr(&out).contains("the trace differs from the one saved, from event 5 on") {
        return Err(format!("no warning: {}", stderr(&out)));
    }
    Ok(())
}

#[test]
fn explore_reports_holds_and_exits_0() {
    // The message bounds' schedules go to a directory of the test's own, not the checkout.
    let dir = std::env::temp_dir().join(format!("conclave-explore-holds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = conclave(&[
        "explore",
        "scenarios/explore/bully3_crash_bounded.ron",
        "--jobs",
        "1",
        "--out",
        &dir.to_string_lossy(),
    ]);
    let written = std::fs::read_dir(&dir).unwrap().count();
    let schedule = dir.join("bully3_crash_bounded.first_election-most.schedule.json");
    let replayed_as_saved = schedule_replays_as_saved(&schedule);
    std::fs::remove_dir_all(&dir).unwrap();
    replayed_as_saved.unwrap();
    assert_eq!(written, 4, "the fewest and most schedules of two elections");
    expect_code(&out, 0);
    let text = stdout(&out);
    assert!(
        text.contains("1621 unique states, 4048 transitions"),
        "{text}"
    );
    assert!(
        text.contains("complete: every reachable state was visited"),
        "{text}"
    );
    assert!(
        text.contains("ok      AtMostOneLeader (expected to hold): holds"),
        "{text}"
    );
    assert!(
        text.contains("ok      EventualLeader(2s) (expected to hold): holds"),
        "{text}"
    );
}

#[test]
fn explore_counterexample_is_saved_and_replays_exactly() {
    let dir = std::env::temp_dir().join(format!("conclave-explore-cex-{}", std::process::id()));
    let dir_s = dir.to_string_lossy().into_owned();
    let out = conclave(&[
        "explore",
        "scenarios/explore/bully3_partition.ron",
        "--json",
        "--out",
        &dir_s,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("one JSON object");
    for key in [
        "unique_states",
        "transitions",
        "max_depth",
        "complete",
        "peak_memory_kib",
    ] {
        assert!(!v[key].is_null(), "{key} in {v}");
    }
    assert_eq!(v["unique_states"], 1358);
    let p = &v["properties"][0];
    assert_eq!(p["name"], "AtMostOneLeader");
    assert_eq!(p["holds"], false);
    let cex = &p["counterexample"];
    assert_eq!(cex["choices"].as_array().unwrap().len(), 6);
    // Bounded: the violation's time, and the schedule the simulator replays.
    assert_eq!(cex["at_us"], 300_000);
    assert_eq!(cex["schedule"].as_array().unwrap().len(), 5);
    let file = cex["file"].as_str().unwrap().to_string();
    let lines: Vec<String> = cex["trace"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let e: conclave_sim::trace::TraceEvent = serde_json::from_value(e.clone())
                .unwrap_or_else(|_| panic!("trace events read back"));
            conclave_reports::event_line(&e)
        })
        .collect();
    let out = conclave(&["replay", &file]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the violation reproduces: {}",
        stderr(&out)
    );
    let text = stdout(&out);
    let replayed: Vec<&str> = text.lines().take(lines.len()).collect();
    assert_eq!(replayed, lines, "replay prints exactly the saved trace");
    assert!(
        text.contains(
            "AtMostOneLeader violated in the simulator at t=300ms (5 steps played): b and c both lead"
        ),
        "{text}"
    );
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
    // A file whose trace no longer matches (saved by another version of the model, or
    // edited): the replay says from which event on.
    let mut saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    saved["trace"][2]["node"] = "z".into();
    std::fs::write(&file, saved.to_string()).unwrap();
    let out = conclave(&["replay", &file]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("the trace differs from the one saved, from event 3 on"),
        "{}",
        stderr(&out)
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn explore_cut_short_is_incomplete_not_holding() {
    let out = conclave(&[
        "explore",
        "scenarios/explore/bully3_crash_bounded.ron",
        "--max-depth",
        "4",
        "--jobs",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("INCOMPLETE: --max-depth 4 reached"), "{text}");
    assert!(
        text.contains(
            "FAILED  AtMostOneLeader (expected to hold): not decided (incomplete search)"
        ),
        "{text}"
    );
}

/// A scenario may raise (or lower) the default cap on unique states, also under `--graph`;
/// `--max-states` still has the last word.
#[test]
fn a_scenario_sets_its_own_state_cap() {
    let dir = std::env::temp_dir().join(format!("conclave-cap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = std::fs::read_to_string("scenarios/explore/bully3_crash_bounded.ron").unwrap();
    let capped = text.replacen("explore: (", "explore: (\n        max_states: 100,", 1);
    assert_ne!(capped, text);
    let file = dir.join("capped.ron");
    std::fs::write(&file, capped).unwrap();
    let file = file.to_str().unwrap();
    let out = dir.to_str().unwrap();
    let capped = conclave(&["explore", file, "--out", out]);
    expect_code(&capped, 1);
    assert!(
        stdout(&capped).contains("INCOMPLETE: the scenario's max_states 100 reached"),
        "{}",
        stdout(&capped)
    );
    // `--graph` caps small spaces itself, yet a smaller cap of the scenario's still holds.
    let dot = dir.join("capped.dot");
    let graphed = conclave(&[
        "explore",
        file,
        "--out",
        out,
        "--graph",
        dot.to_str().unwrap(),
    ]);
    expect_code(&graphed, 1);
    assert!(
        stdout(&graphed).contains("INCOMPLETE: the scenario's max_states 100 reached"),
        "{}",
        stdout(&graphed)
    );
    let lifted = conclave(&["explore", file, "--out", out, "--max-states", "0"]);
    std::fs::remove_dir_all(&dir).ok();
    expect_code(&lifted, 0);
    assert!(
        stdout(&lifted).contains("1621 unique states"),
        "{}",
        stdout(&lifted)
    );
}

/// Past `--max-memory` after a complete search, liveness is skipped and not decided (exit
/// 1, since the scenario expects it to hold), and the report says why.
#[test]
fn explore_skips_liveness_past_the_memory_limit() {
    let dir = std::env::temp_dir().join(format!("conclave-memlimit-{}", std::process::id()));
    let out = conclave(&[
        "explore",
        "scenarios/explore/bully3_crash_bounded.ron",
        "--max-memory",
        "1",
        "--json",
        "--out",
        dir.to_str().unwrap(),
    ]);
    std::fs::remove_dir_all(&dir).ok();
    expect_code(&out, 1);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("one JSON object");
    assert_eq!(v["complete"], true, "{v}");
    let live = &v["properties"][2];
    assert_eq!(live["name"], "EventualLeader(2s)");
    assert!(live["holds"].is_null(), "{live}");
    let why = live["undecided"].as_str().unwrap_or_default();
    assert!(why.starts_with("the process holds"), "{live}");
    assert!(
        why.ends_with("past the memory limit of 1 MiB (--max-memory)"),
        "{why}"
    );
    assert_eq!(v["properties"][0]["holds"], true);
    assert!(v["properties"][0].get("undecided").is_none());
}

/// A cluster of many processes under a small `--max-memory` stops, INCOMPLETE (exit 1),
/// naming the memory limit, and stays under it (give or take the allocator's 2 MiB pages).
/// Its states are thousands of words, with thousands of successors each: the search once
/// expanded them 32 at a time whatever their size, and looked at its memory every 16,384
/// states only (64 processes: past 1.4 GiB under `--max-memory 32`); from 256 processes
/// on, one state's successors were a single allocation of gigabytes. A start state too
/// large for the limit is reported the same way (0 states). Linux only: the limit is read
/// from /proc.
#[cfg(target_os = "linux")]
#[test]
fn explore_keeps_to_the_memory_limit_with_many_processes() {
    let dir = std::env::temp_dir().join(format!("conclave-many-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases = [
        (64, 32, "memory limit of 32 MiB reached"),
        (2048, 40, "(starting the 2048 processes)"),
    ];
    for (nodes, limit, says) in cases {
        let list: Vec<String> = (1..=nodes)
            .map(|i| format!("(name: \"n{i}\", id: {i})"))
            .collect();
        let scenario = format!(
            r#"Scenario(
    algorithm: Bully(answer_timeout: "300ms", coordinator_timeout: "1s",
                     heartbeat_interval: "1s", heartbeat_timeout: "300ms"),
    nodes: [{}],
    run_for: "4s",
    explore: (timing: Bounded(max_delay: "100ms"), crashes: 1, expect: [AtMostOneLeader]),
)"#,
            list.join(", ")
        );
        let file = dir.join(format!("bully{nodes}.ron"));
        std::fs::write(&file, scenario).unwrap();
        let limit_arg = limit.to_string();
        let out = conclave(&[
            "explore",
            file.to_str().unwrap(),
            "--max-memory",
            &limit_arg,
            "--no-message-bounds",
            "--json",
            "--out",
            dir.to_str().unwrap(),
        ]);
        expect_code(&out, 1);
        let v: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("one JSON object");
        assert_eq!(v["complete"], false, "{v}");
        let why = v["cut_short"].as_str().unwrap_or_default();
        assert!(
            why.starts_with(&format!("memory limit of {limit} MiB reached")) && why.contains(says),
            "{nodes} processes: {why}"
        );
        assert!(v["properties"][0]["holds"].is_null(), "{v}");
        let peak = v["peak_memory_kib"]
            .as_u64()
            .expect("Linux reports its peak");
        assert!(
            peak <= (limit + 8) * 1024,
            "{nodes} processes: a peak of {peak} KiB under --max-memory {limit}"
        );
        let states = v["unique_states"].as_u64().unwrap();
        assert_eq!(
            states == 0,
            nodes == 2048,
            "{nodes} processes: {states} states"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn explore_and_replay_bad_input_exit_2() {
    let out = conclave(&["explore", "scenarios/consul_four_nodes.ron"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("has no `explore` block"));
    let out = conclave(&[
        "explore",
        "scenarios/explore/bully3_crash_bounded.ron",
        "--jobs",
        "0",
    ]);
    assert_eq!(out.status.code(), Some(2));
    // 2^44 MiB is 2^64 bytes: it wrapped round to a limit of "0 MiB".
    let out = conclave(&[
        "explore",
        "scenarios/explore/bully3_crash_bounded.ron",
        "--max-memory",
        "17592186044416",
    ]);
    expect_code(&out, 2);
    assert_eq!(
        stderr(&out),
        "error: --max-memory 17592186044416 MiB is more than this machine can address (at most 17592186044415 MiB)\n"
    );
    let dir = std::env::temp_dir().join(format!("conclave-replay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.cex.json");
    std::fs::write(&bad, "{\"scenario\": \"x.ron\",\n \"choices\": [oops]}").unwrap();
    let out = conclave(&["replay", &bad.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("bad.cex.json:2:14: not a counterexample file"),
        "{}",
        stderr(&out)
    );
    std::fs::remove_dir_all(&dir).ok();
    // A mistaken path is read up to the limit, not without end.
    if Path::new("/dev/zero").exists() {
        let out = conclave(&["replay", "/dev/zero"]);
        expect_code(&out, 2);
        assert_eq!(
            stderr(&out),
            "error: /dev/zero: cannot read counterexample: larger than 1024 MiB, the limit for a counterexample file\n"
        );
    }
}

/// A reader that stops early (`conclave run ... --trace | head`) is no bug: the process ends
/// as one killed by SIGPIPE would (exit 141), with no "internal error".
#[test]
fn a_closed_pipe_ends_quietly() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    // An hour of heartbeats: megabytes of trace, far more than a pipe holds.
    let file = Path::new(env!("CARGO_TARGET_TMPDIR")).join("an_hour_of_heartbeats.ron");
    std::fs::write(
        &file,
        r#"Scenario(
            algorithm: Bully(heartbeat_interval: "1s"),
            nodes: [(name: "a", id: 1), (name: "b", id: 2), (name: "c", id: 3)],
            run_for: "1h",
        )"#,
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_conclave"))
        .args(["run", file.to_str().unwrap(), "--trace"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the conclave binary runs");
    let mut first = String::new();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    out.read_line(&mut first).unwrap();
    assert!(first.starts_with("t=0s"), "{first}");
    drop(out);
    let done = child.wait_with_output().unwrap();
    assert_eq!(done.status.code(), Some(141), "{}", stderr(&done));
    assert!(
        !stderr(&done).contains("internal error"),
        "{}",
        stderr(&done)
    );
}

/// Runs `conclave run` on scenario text written to a file of the test's own.
fn run_text(name: &str, text: &str, extra: &[&str]) -> Output {
    let file = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}.ron"));
    std::fs::write(&file, text).unwrap();
    let mut args = vec!["run", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    conclave(&args)
}

/// A period or timeout of zero repeated something at one instant for ever (or waited for no
/// reply): each is refused with its field path, unless zero means "off" (below). Ranges
/// drawn from need their minimum at most their maximum.
#[test]
fn zero_periods_and_timeouts_and_inverted_ranges_are_refused() {
    let two = r#"nodes: [(name: "a", id: 1), (name: "b", id: 2)], run_for: "10s""#;
    let gcd = r#"nodes: [(name: "a", identity: (1, 1000000))], run_for: "10s""#;
    let cases: &[(&str, String, &str)] = &[
        // Accepted before, without a hang: these fail first on the old code.
        ("gcd_feign_next", format!(r#"Scenario(algorithm: GcdBully(feign: (next_min: "3s", next_max: "2s")), {gcd})"#),
         "1:48: algorithm.feign.next_min: time to a feigned failure has min 3s above max 2s"),
        ("gcd_feign_length", format!(r#"Scenario(algorithm: GcdBully(feign: (next_max: "2s", length_min: "5s", length_max: "1s")), {gcd})"#),
         "1:66: algorithm.feign.length_min: feigned failure's length has min 5s above max 1s"),
        ("invitation_check", format!(r#"Scenario(algorithm: Invitation(check_interval: "0s"), {two})"#),
         "1:48: algorithm.check_interval: check_interval must be longer than zero"),
        ("async_norm", format!(r#"Scenario(algorithm: AsyncBully(norm_interval: "0s"), {two})"#),
         "1:47: algorithm.norm_interval: norm_interval must be longer than zero"),
        ("async_mistakes", format!(r#"Scenario(algorithm: AsyncBully(detector: EventuallyPerfect(delay: "100ms", mistakes_until: "5s", mistake_every: "0s")), {two})"#),
         "1:113: algorithm.detector.mistake_every: mistake_every must be longer than zero"),
        ("log_interval", format!(r#"Scenario(algorithm: Invitation(), log_server: (interval: "0s"), {two})"#),
         "1:58: log_server.interval: interval must be longer than zero"),
        ("registry_wait", format!(r#"Scenario(algorithm: Bully(discovery: Registry(name: "consul", wait: "0s")), {two})"#),
         "1:69: algorithm.discovery.wait: wait must be longer than zero"),
        ("gcd_answer", format!(r#"Scenario(algorithm: GcdBully(answer_timeout: "0s"), {gcd})"#),
         "1:46: algorithm.answer_timeout: answer_timeout must be longer than zero"),
        ("gcd_feign_zero", format!(r#"Scenario(algorithm: GcdBully(feign: (next_min: "0s", next_max: "0s", length_min: "0s", length_max: "0s")), {gcd})"#),
         "1:64: algorithm.feign.next_max: next_max must be longer than zero"),
        ("gm_election", format!(r#"Scenario(algorithm: GarciaMolinaBully(election_timeout: "0s"), network: (delay: Constant("0s")), {two})"#),
         "1:57: algorithm.election_timeout: election_timeout must be longer than zero"),
        ("quorum_vote_timeout", r#"Scenario(algorithm: Quorum(vote_timeout: "0s"), nodes: [(name: "a"), (name: "b")], run_for: "10s")"#.to_string(),
         "1:42: algorithm.vote_timeout: vote_timeout must be longer than zero"),
    ];
    for (name, text, expected) in cases {
        let out = run_text(name, text, &[]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        let first = err.lines().next().unwrap_or_default();
        assert!(
            first.starts_with("error: ") && first.ends_with(&format!("{name}.ron:{expected}")),
            "{name}: {err}"
        );
    }
}

/// Where zero means "off" (scenarios/README.md), it is off: no such message is ever sent.
#[test]
fn a_zero_period_that_means_off_sends_nothing() {
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "bully_no_heartbeats",
            r#"Scenario(algorithm: Bully(heartbeat_interval: "0s"), network: (delay: Constant("0s")),
                nodes: [(name: "a", id: 1), (name: "b", id: 2)], run_for: "30s")"#,
            &["msg=Heartbeat"],
        ),
        (
            "registry_no_health_checks",
            r#"Scenario(algorithm: Bully(discovery: Registry(name: "consul", health_interval: "0s")),
                nodes: [(name: "a", id: 1), (name: "b", id: 2)], run_for: "30s")"#,
            &["msg=HealthCheck"],
        ),
        (
            "garcia_molina_no_checks",
            r#"Scenario(algorithm: GarciaMolinaBully(check_interval: "0s"), network: (delay: Constant("0s")),
                nodes: [(name: "a", id: 1), (name: "b", id: 2)], run_for: "30s")"#,
            &["msg=AreYouNormal", "msg=AreYouThereCheck"],
        ),
    ];
    for (name, text, never) in cases {
        let out = run_text(name, text, &["--trace"]);
        expect_code(&out, 0);
        let trace = stdout(&out);
        assert!(trace.contains("event=role role=leader"), "{name}: {trace}");
        for msg in *never {
            assert!(!trace.contains(msg), "{name}: {msg} sent: {trace}");
        }
    }
}

/// A counterexample saved by an exploration run inside the scenario's folder, with the
/// scenario's path as typed there, replays from any other working directory: the file keeps
/// the scenario's path from its own folder too. A file without it (saved by an earlier
/// version) still replays from where the exploration ran.
#[test]
fn a_saved_counterexample_replays_from_another_folder() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("saved-elsewhere");
    std::fs::remove_dir_all(&dir).ok();
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/explore");
    let out = conclave_in(
        &folder,
        &[
            "explore",
            "bully3_partition.ron",
            "--out",
            dir.to_str().unwrap(),
            "--no-message-bounds",
        ],
    );
    expect_code(&out, 0);
    let file = dir.join("bully3_partition.AtMostOneLeader.cex.json");
    let violated = "AtMostOneLeader violated in the simulator at t=300ms (5 steps played)";
    for cwd in [dir.as_path(), Path::new("/")] {
        let out = conclave_in(cwd, &["replay", file.to_str().unwrap()]);
        expect_code(&out, 1);
        assert!(stdout(&out).contains(violated), "{}", stdout(&out));
    }
    // The file's own name for the scenario, relative to the file's folder, from any cwd.
    let out = conclave_in(
        &dir,
        &["replay", "bully3_partition.AtMostOneLeader.cex.json"],
    );
    expect_code(&out, 1);
    let mut saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(saved["scenario"], "bully3_partition.ron");
    saved
        .as_object_mut()
        .unwrap()
        .remove("scenario_relative_to_file")
        .expect("the path from the file's folder is saved");
    std::fs::write(&file, saved.to_string()).unwrap();
    let out = conclave_in(&folder, &["replay", file.to_str().unwrap()]);
    expect_code(&out, 1);
    assert!(stdout(&out).contains(violated), "{}", stdout(&out));
    let out = conclave_in(&dir, &["replay", file.to_str().unwrap()]);
    expect_code(&out, 2);
    std::fs::remove_dir_all(&dir).ok();
}

/// A UTF-8 byte-order mark, as some editors write, is no part of the scenario: the file
/// loads, and columns are counted as an editor shows them, without it.
#[test]
fn a_byte_order_mark_is_skipped() {
    let good = run_text(
        "with_bom",
        "\u{feff}Scenario(algorithm: Bully(), nodes: [(name: \"a\", id: 1)], run_for: \"1s\")",
        &[],
    );
    expect_code(&good, 0);
    let bad = run_text(
        "with_bom_and_an_error",
        "\u{feff}Scenario(algorithm: Bully(), nodes: [(name: \"a\", id: 1)], run_for: \"0s\")",
        &[],
    );
    expect_code(&bad, 2);
    let err = stderr(&bad);
    assert!(
        err.contains("with_bom_and_an_error.ron:1:68: run_for: run_for must be longer than zero\n"),
        "{err}"
    );
    assert!(err.contains("\n    1 | Scenario(algorithm"), "{err}");
}

/// A scenario or server_config file is read up to 16 MiB: a mistaken path (`/dev/zero`)
/// was read without bound.
#[test]
fn files_past_16_mib_are_refused() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("large-files");
    std::fs::create_dir_all(&dir).unwrap();
    let limit = "larger than 16 MiB, the limit for a scenario or server_config file";
    // Valid, but for its size: 16 MiB of blank space after the scenario.
    let scenario = r#"Scenario(algorithm: Bully(), nodes: [(name: "a", id: 1)], run_for: "1s")"#;
    let large = dir.join("large.ron");
    std::fs::write(&large, format!("{scenario}{}", " ".repeat(16 << 20))).unwrap();
    let out = conclave(&["run", large.to_str().unwrap()]);
    expect_code(&out, 2);
    assert_eq!(
        stderr(&out),
        format!(
            "error: {}: cannot read scenario: {limit}\n",
            large.display()
        )
    );
    // A server_config of 16 MiB of blank lines and one server.
    let config = dir.join("large_config");
    std::fs::write(
        &config,
        format!("{}127.0.0.1:9000\n", "\n".repeat(16 << 20)),
    )
    .unwrap();
    let uses = dir.join("uses_large_config.ron");
    std::fs::write(
        &uses,
        r#"Scenario(algorithm: GarciaMolinaBully(), server_config: File("large_config"),
    nodes: [(name: "a", address: "127.0.0.1:9000")], run_for: "1s")"#,
    )
    .unwrap();
    let out = conclave(&["run", uses.to_str().unwrap()]);
    expect_code(&out, 2);
    let err = stderr(&out);
    assert!(
        err.starts_with(&format!(
            "error: {}:1:57: server_config: cannot read server_config {}: {limit}\n",
            uses.display(),
            config.display()
        )),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
    #[cfg(unix)]
    {
        let out = conclave(&["run", "/dev/zero"]);
        expect_code(&out, 2);
        assert_eq!(
            stderr(&out),
            format!("error: /dev/zero: cannot read scenario: {limit}\n")
        );
    }
}

/// `run` and `check` keep to a budget: a run past `--max-events` stops, INCOMPLETE, exit 1
/// (never "ok"); a memory limit no machine can address is bad input.
#[test]
fn run_and_check_keep_to_their_budget() {
    let out = conclave(&[
        "run",
        "scenarios/consul_four_nodes.ron",
        "--max-events",
        "50",
    ]);
    expect_code(&out, 1);
    let text = stdout(&out);
    assert!(
        text.contains("INCOMPLETE: 50 events reached (--max-events)"),
        "{text}"
    );
    assert!(text.ends_with("result: FAILED\n"), "{text}");
    let out = conclave(&[
        "check",
        "scenarios/consul_four_nodes.ron",
        "--max-events",
        "50",
    ]);
    expect_code(&out, 1);
    assert!(
        stdout(&out).contains("INCOMPLETE: 50 events reached (--max-events)"),
        "{}",
        stdout(&out)
    );
    let out = conclave(&[
        "run",
        "scenarios/consul_four_nodes.ron",
        "--max-memory",
        "17592186044416",
    ]);
    expect_code(&out, 2);
    assert_eq!(
        stderr(&out),
        "error: --max-memory 17592186044416 MiB is more than this machine can address (at most 17592186044415 MiB)\n"
    );
    // The defaults leave the shipped scenarios whole.
    let out = conclave(&["run", "scenarios/consul_four_nodes.ron"]);
    expect_code(&out, 0);
}

/// Ctrl-C stops a run where it is and prints its partial summary and replay command,
/// INCOMPLETE (exit 1). Bounded: the process is killed if it has not ended in 20 s.
#[test]
fn ctrl_c_prints_the_partial_summary() {
    let dir = std::env::temp_dir().join(format!("conclave-ctrlc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("long.ron");
    std::fs::write(
        &file,
        r#"Scenario(algorithm: Bully(), nodes: [(name: "a", id: 1), (name: "b", id: 2)], run_for: "1000000h")"#,
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_conclave"))
        .args(["run", file.to_str().unwrap(), "--max-events", "0"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the conclave binary runs");
    std::thread::sleep(std::time::Duration::from_millis(500));
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success());
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed().as_secs() > 20 {
            child.kill().ok();
            panic!("the run did not stop on Ctrl-C");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut text = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut text).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(status.code(), Some(1), "{text}");
    assert!(text.contains("INCOMPLETE: interrupted (Ctrl-C)"), "{text}");
    assert!(text.contains("replay: conclave run "), "{text}");
}

/// `--trace` streams the trace as the run makes it, in text and in JSON (one object, the
/// trace first), with the same events as the summary counts.
#[test]
fn the_trace_streams_in_text_and_json() {
    let out = conclave(&[
        "run",
        "scenarios/consul_four_nodes.ron",
        "--trace",
        "--json",
    ]);
    expect_code(&out, 0);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("one JSON object");
    let trace = v["trace"].as_array().unwrap();
    assert_eq!(v["trace_hash"], "1a602b9145f71eae");
    let text = conclave(&["run", "scenarios/consul_four_nodes.ron", "--trace"]);
    let lines = stdout(&text)
        .lines()
        .take_while(|l| l.starts_with("t="))
        .count();
    assert_eq!(lines, trace.len());
    assert!(lines > 200, "{lines}");
}

/// `conclave node` takes the runtime flags `conclave-node` takes (`net::flags`): an empty
/// token file is refused naming its flag, and a monitor token without `--monitor` is a usage
/// error. Nothing starts: exit 2 each time. (What `--wire lab` refuses: `tests/gcd_cli.rs`.)
#[test]
fn conclave_node_refuses_an_empty_token_and_a_token_without_its_flag() {
    let dir = std::env::temp_dir().join(format!("conclave-node-flags-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let empty = dir.join("empty.token");
    std::fs::write(&empty, "\r\n").unwrap();
    let empty = empty.to_str().unwrap();
    let node = [
        "node",
        "--scenario",
        "scenarios/consul_four_nodes.ron",
        "--name",
        "node1",
    ];
    for (flags, error) in [
        (
            vec![
                "--monitor",
                "http://127.0.0.1:1",
                "--monitor-token-file",
                empty,
            ],
            format!("error: --monitor-token-file {empty} is empty\n"),
        ),
        (
            vec![
                "--registry",
                "http://127.0.0.1:1",
                "--registry-token-file",
                empty,
            ],
            format!("error: --registry-token-file {empty} is empty\n"),
        ),
    ] {
        let o = conclave(&[&node[..], &flags[..]].concat());
        expect_code(&o, 2);
        // (After the warning that the scenario's registry has no process here, when no
        // registry stands in for it.)
        assert!(stderr(&o).ends_with(&error), "{}", stderr(&o));
    }
    let o = conclave(&[&node[..], &["--monitor-token-file", empty]].concat());
    expect_code(&o, 2);
    assert!(
        stderr(&o).contains("the following required arguments were not provided")
            && stderr(&o).contains("--monitor <URL>"),
        "{}",
        stderr(&o)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
