//! `conclave compare` as users drive it: the table, JSON, refusals and bad flags (exit 2).

mod common;
use common::{conclave, expect_code, stderr, stdout};

/// The table's Bully rows beside their textbook figures, at N = 4 and 8.
#[test]
fn the_table_shows_bully_beside_the_textbook() {
    let out = conclave(&[
        "compare",
        "scenarios/compare/bully.ron",
        "--nodes",
        "4,8",
        "--seeds",
        "2",
    ]);
    expect_code(&out, 0);
    let text = stdout(&out);
    let row = |label: &str| -> Vec<String> {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(label))
            .unwrap_or_else(|| panic!("no row {label:?} in\n{text}"));
        line[line.find(label).unwrap() + label.len()..]
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    assert!(
        text.starts_with("conclave compare: 1 scenario, N = 4, 8, seeds 0, 1\n"),
        "{text}"
    );
    assert_eq!(row("Bully textbook N²−1"), ["15", "63"]);
    assert_eq!(row("Bully textbook (N−1)²+N−2"), ["11", "55"]);
    // The measured rows come first under each case: all-start, then the crash.
    let measured: Vec<Vec<String>> = text
        .lines()
        .filter(|l| l.starts_with("  Bully (bully)"))
        .map(|l| {
            l["  Bully (bully)".len()..]
                .split_whitespace()
                .map(str::to_string)
                .collect()
        })
        .collect();
    assert_eq!(measured[0], ["15", "63"], "messages, all-start");
    assert_eq!(measured[1], ["11", "55"], "messages, lowest detects");
}

#[test]
fn json_is_one_object_with_every_run() {
    let out = conclave(&[
        "compare",
        "scenarios/compare/bully.ron",
        "--nodes",
        "4",
        "--seeds",
        "1",
        "--json",
    ]);
    expect_code(&out, 0);
    let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(v["sizes"], serde_json::json!([4]));
    let cases = &v["scenarios"][0]["cases"];
    assert_eq!(cases[0]["case"], "all-start");
    let cell = &cases[0]["cells"][0];
    assert_eq!(cell[0], 4);
    assert_eq!(cell[1]["status"], "measured");
    assert_eq!(cell[1]["messages"]["mean"], 15.0);
    assert_eq!(cell[1]["textbook"]["messages"], 15);
    assert_eq!(cell[1]["runs"][0]["election_messages"], 15);
    let crash = &cases[1]["cells"][0][1]["runs"][0];
    assert_eq!(crash["first_to_notice"], serde_json::json!(["n1"]));
    assert_eq!(crash["faults"][0]["fault"]["Crash"], "n4");
}

#[test]
fn a_scenario_that_cannot_be_scaled_is_refused_with_exit_2() {
    let out = conclave(&[
        "compare",
        "scenarios/compare/bully.ron",
        "tests/compare/irregular_addresses.ron",
        "--nodes",
        "4",
    ]);
    expect_code(&out, 2);
    assert!(stdout(&out).is_empty(), "nothing runs: {}", stdout(&out));
    assert_eq!(
        stderr(&out).trim(),
        "error: cannot scale irregular_addresses.ron to 4 nodes: the addresses (alpha.example:5001, beta.example:7000, alpha.example:5003) are not one host with consecutive ports in node order, so there is no pattern to extend"
    );
    // As a scenario it is fine.
    expect_code(
        &conclave(&["run", "tests/compare/irregular_addresses.ron"]),
        0,
    );
}

#[test]
fn bad_nodes_and_seeds_exit_2() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["--nodes", "0"],
            "0 nodes: a cluster needs at least one node",
        ),
        (&["--nodes", ""], "give at least one cluster size"),
        (&["--nodes", "four"], "\"four\" is not a number of nodes"),
        (&["--nodes", "4,,8"], "\"\" is not a number of nodes"),
        (&["--nodes=-4"], "\"-4\" is not a number of nodes"),
        (&["--nodes", "4,4"], "4 is given twice"),
        (
            &["--nodes", "5000"],
            "5000 nodes: at most 4096 are supported",
        ),
        (&["--seeds", "0"], "--seeds"),
        (&["--seeds", "x"], "--seeds"),
    ];
    for (flags, message) in cases {
        let mut args = vec!["compare", "scenarios/compare/bully.ron"];
        args.extend_from_slice(flags);
        let out = conclave(&args);
        expect_code(&out, 2);
        assert!(
            stderr(&out).contains(message),
            "{flags:?}: {}",
            stderr(&out)
        );
    }
    let out = conclave(&["compare", "scenarios/no_such.ron", "--nodes", "4"]);
    expect_code(&out, 2);
    assert!(stderr(&out).contains("cannot read scenario"));
}
