//! `conclave run --report DIR` and `conclave report FILE.json`: the files, their names, the
//! round trip through JSON, and bad input (exit 2 with file:line:col).

use std::path::{Path, PathBuf};

mod common;
use common::{conclave, expect_code, stderr};

/// A fresh folder under the target's temporary folder.
fn fresh(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("report-cli")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

const EXTENSIONS: [&str; 4] = ["html", "mmd", "shiviz", "txt"];

#[test]
fn run_with_report_writes_four_files_and_json_gives_the_same() {
    let dir = fresh("run");
    let file = "scenarios/bully_coordinator_crash.ron";
    let o = conclave(&["run", file, "--report", dir.to_str().unwrap()]);
    expect_code(&o, 0);
    assert!(
        stderr(&o).contains("ShiViz regular expression"),
        "{}",
        stderr(&o)
    );
    for ext in EXTENSIONS {
        let p = dir.join(format!("bully_coordinator_crash.seed-0.{ext}"));
        assert!(p.is_file(), "{} missing", p.display());
    }
    let stem = |ext: &str| dir.join(format!("bully_coordinator_crash.seed-0.{ext}"));
    let html = read(&stem("html"));
    assert!(html.contains("id=\"conclave-data\""));
    assert!(read(&stem("mmd")).contains("sequenceDiagram\n"));
    // The text export is what `run --trace` prints.
    let traced = conclave(&["run", file, "--trace"]);
    assert_eq!(read(&stem("txt")), String::from_utf8_lossy(&traced.stdout));

    // `--trace` with `--report` prints the same as without.
    let both = conclave(&["run", file, "--trace", "--report", dir.to_str().unwrap()]);
    assert_eq!(both.stdout, traced.stdout);
    let json_both = conclave(&[
        "run",
        file,
        "--trace",
        "--json",
        "--report",
        dir.to_str().unwrap(),
    ]);
    let json = conclave(&["run", file, "--trace", "--json"]);
    assert_eq!(json_both.stdout, json.stdout);
    let plain_json = conclave(&["run", file, "--json", "--report", dir.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_slice(&plain_json.stdout).unwrap();
    assert!(
        v.get("trace").is_none(),
        "--report alone adds no trace to --json"
    );

    // The JSON of the run, read back, gives the same four files.
    let saved = dir.join("run.json");
    std::fs::write(&saved, &json.stdout).unwrap();
    let out = fresh("from-json");
    let o = conclave(&[
        "report",
        saved.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    expect_code(&o, 0);
    for ext in EXTENSIONS {
        let name = format!("bully_coordinator_crash.seed-0.{ext}");
        assert_eq!(read(&out.join(&name)), read(&dir.join(&name)), "{name}");
    }
}

#[test]
fn report_of_a_counterexample() {
    let dir = fresh("cex");
    let o = conclave(&[
        "explore",
        "scenarios/explore/bully3_partition.ron",
        "--no-message-bounds",
        "--out",
        dir.to_str().unwrap(),
    ]);
    expect_code(&o, 0);
    let cex = dir.join("bully3_partition.AtMostOneLeader.cex.json");
    let o = conclave(&[
        "report",
        cex.to_str().unwrap(),
        "--out",
        dir.to_str().unwrap(),
    ]);
    expect_code(&o, 0);
    let stem = |ext: &str| dir.join(format!("bully3_partition.AtMostOneLeader.cex.{ext}"));
    for ext in EXTENSIONS {
        assert!(stem(ext).is_file(), "{ext}");
    }
    let html = read(&stem("html"));
    assert!(html.contains("counterexample of AtMostOneLeader"));
    assert!(html.contains("conclave replay "));
    let txt = read(&stem("txt"));
    assert!(
        txt.contains("AtMostOneLeader violated at t=300ms: b and c both lead"),
        "{txt}"
    );
}

#[test]
fn report_of_bad_input_exits_2_with_file_line_column() {
    let dir = fresh("bad");
    let cases: &[(&str, &str, &str)] = &[
        ("not_json.json", "{\n  \"seed\": 1,\n  nope\n}", "not_json.json:3:3: not JSON"),
        ("neither.json", "\n  {\"hello\": 1}", "neither.json:2:3: neither a run report"),
        ("array.json", "[1, 2]", "array.json:1:1: neither a run report"),
        (
            "no_trace.json",
            r#"{"scenario": "s", "seed": 0, "trace_hash": "00"}"#,
            "no_trace.json:1:1: the run report has no trace",
        ),
        (
            "bad_trace.json",
            "{\"scenario\": \"s\", \"seed\": 0, \"trace_hash\": \"00\",\n\"trace\": [{\"time_us\": 0}]}",
            "bad_trace.json:2:24: not a run report",
        ),
    ];
    for (name, text, want) in cases {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        let o = conclave(&[
            "report",
            path.to_str().unwrap(),
            "--out",
            dir.to_str().unwrap(),
        ]);
        expect_code(&o, 2);
        let err = stderr(&o);
        assert!(
            err.starts_with(&format!("error: {}", dir.join(want).display())),
            "{name}: {err}"
        );
    }
    // A run's JSON without its trace.
    let o = conclave(&["run", "scenarios/bully_coordinator_crash.ron", "--json"]);
    let path = dir.join("run_no_trace.json");
    std::fs::write(&path, &o.stdout).unwrap();
    let o = conclave(&["report", path.to_str().unwrap()]);
    expect_code(&o, 2);
    assert!(stderr(&o).contains("run_no_trace.json:1:1: the run report has no trace"));
    let o = conclave(&["report", dir.join("missing.json").to_str().unwrap()]);
    expect_code(&o, 2);
}

/// `explore --report DIR`: the page with the verdicts, a link to each counterexample's chart
/// (written beside it), the message bounds, and the state graph of a small space as DOT and
/// SVG; a large space's graph is not drawn, and the page says why.
#[test]
fn explore_report_links_counterexample_charts_and_draws_a_small_graph() {
    let dir = fresh("explore-report");
    let scenario = dir.join("tiny.ron");
    std::fs::write(
        &scenario,
        r#"Scenario(
    algorithm: Bully(answer_timeout: "100ms", coordinator_timeout: "300ms", heartbeat_interval: "0s"),
    nodes: [(name: "a", id: 1), (name: "b", id: 2)],
    run_for: "1s",
    explore: (timing: Bounded(max_delay: "50ms"), partitions: [[["a"], ["b"]]],
              partition_changes: 1, expect_violated: [AtMostOneLeader]),
)"#,
    )
    .unwrap();
    let d = dir.to_str().unwrap();
    let out = conclave(&[
        "explore",
        scenario.to_str().unwrap(),
        "--report",
        d,
        "--out",
        d,
    ]);
    expect_code(&out, 0);
    let page = read(&dir.join("tiny.explore.html"));
    assert!(
        page.contains("<td>AtMostOneLeader</td><td>violated</td><td>violated</td>"),
        "{page}"
    );
    assert!(
        page.contains("href=\"tiny.AtMostOneLeader.cex.html\""),
        "{page}"
    );
    assert!(dir.join("tiny.AtMostOneLeader.cex.html").is_file());
    assert!(page.contains("first election"), "{page}");
    // 93 states: drawn, every state a node of the SVG.
    let svg_start = page.find("<svg").expect("the graph is drawn");
    let svg = &page[svg_start..page[svg_start..].find("</svg>").unwrap() + svg_start];
    for s in ["s0", "s92"] {
        assert!(svg.contains(&format!(">{s}<")), "{s} not drawn");
    }
    let dot = read(&dir.join("tiny.dot"));
    assert_eq!(dot.matches("[ label=\"s").count(), 93, "{dot}");
    // A space larger than the page draws: no graph, and the reason.
    let big = dir.join("big");
    let out = conclave(&[
        "explore",
        "scenarios/explore/bully3_partition.ron",
        "--report",
        big.to_str().unwrap(),
        "--out",
        big.to_str().unwrap(),
    ]);
    expect_code(&out, 0);
    let page = read(&big.join("bully3_partition.explore.html"));
    assert!(!page.contains("<svg"), "a large space is not drawn");
    assert!(
        page.contains("Not kept: the space is larger than this page draws."),
        "{page}"
    );
}

/// `replay --report DIR`: the replayed trace's chart, the same files as `conclave report`.
#[test]
fn replay_report_writes_the_replayed_chart() {
    let dir = fresh("replay-report");
    let d = dir.to_str().unwrap();
    let out = conclave(&[
        "explore",
        "scenarios/explore/bully3_partition.ron",
        "--out",
        d,
    ]);
    expect_code(&out, 0);
    let cex = dir.join("bully3_partition.AtMostOneLeader.cex.json");
    let charts = dir.join("charts");
    let out = conclave(&[
        "replay",
        cex.to_str().unwrap(),
        "--report",
        charts.to_str().unwrap(),
    ]);
    expect_code(&out, 1);
    for ext in EXTENSIONS {
        let f = charts.join(format!("bully3_partition.AtMostOneLeader.cex.{ext}"));
        assert!(f.is_file(), "{} missing: {}", f.display(), stderr(&out));
    }
    let html = read(&charts.join("bully3_partition.AtMostOneLeader.cex.html"));
    assert!(
        html.contains("conclave replay"),
        "the page names its replay command"
    );
}
