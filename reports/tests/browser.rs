//! The report in a real browser: headless Chromium, driven by `tests/browser/check.mjs`
//! (playwright-core with the system Chromium, which it never downloads), and Mermaid's own
//! bundled script.
//!
//! Needs `/usr/bin/chromium` (or `CHROMIUM`), `node`, and `npm ci` run in
//! `reports/tests/browser`. Without them each test says why and passes, unless
//! `CONCLAVE_BROWSER_TESTS=1`, which makes a missing browser a failure (CI sets it).

mod common;

use conclave_sim::trace::What;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

#[path = "browser/support.rs"]
mod support;

/// Whether to go on (see `browser/support.rs`): Chromium, node, playwright-core and Mermaid.
fn browser_or_skip(test: &str) -> bool {
    let needed = ["playwright-core", "mermaid/dist/mermaid.min.js"];
    support::browser_or_skip(test, &browser_dir(), &needed)
}

/// Runs check.mjs and returns what it printed.
fn check(args: &[&str]) -> Value {
    let out = Command::new("node")
        .arg(browser_dir().join("check.mjs"))
        .args(args)
        .current_dir(browser_dir())
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "check.mjs {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).expect("check.mjs prints JSON")
}

fn tmp(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("reports");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn write_report(run: &conclave_sim::run::RunReport, name: &str) -> (PathBuf, f64) {
    let source = conclave_reports::Source::Run(run);
    let started = Instant::now();
    let html = conclave_reports::html::report(
        &source,
        &conclave_reports::html::Siblings::of(&source.stem()),
    );
    let path = tmp(name);
    std::fs::write(&path, html).unwrap();
    (path, started.elapsed().as_secs_f64())
}

#[test]
fn mermaid_renders_the_diagram_of_a_node_named_end() {
    if !browser_or_skip("mermaid_renders_the_diagram_of_a_node_named_end") {
        return;
    }
    let run = common::small();
    let names: Vec<String> = run.nodes.iter().map(|n| n.name.clone()).collect();
    assert!(names.contains(&"end".to_string()));
    let text = conclave_reports::mermaid::diagram(run.trace.as_deref().unwrap(), &names, "small");
    let path = tmp("small.mmd");
    std::fs::write(&path, &text).unwrap();
    let script = browser_dir().join("node_modules/mermaid/dist/mermaid.min.js");
    let r = check(&["mermaid", path.to_str().unwrap(), script.to_str().unwrap()]);
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["is_svg"], true, "{r}");
    assert_eq!(r["syntax_error"], false, "{r}");
    assert_eq!(r["errors"].as_array().unwrap().len(), 0, "{r}");
    let texts: Vec<&str> = r["texts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for name in &names {
        assert!(texts.contains(&name.as_str()), "participant {name}: {r}");
    }

    // The same check sees a parse error: `end` unaliased ends nothing and breaks the diagram.
    let bad = tmp("bad.mmd");
    std::fs::write(
        &bad,
        "sequenceDiagram\n    participant end\n    end->>n1: Ping\n",
    )
    .unwrap();
    let r = check(&["mermaid", bad.to_str().unwrap(), script.to_str().unwrap()]);
    assert_eq!(
        r["ok"], false,
        "a diagram with a bare `end` must not parse: {r}"
    );
}

#[test]
fn the_html_report_draws_its_chart_in_chromium() {
    if !browser_or_skip("the_html_report_draws_its_chart_in_chromium") {
        return;
    }
    let run = common::small();
    let trace = run.trace.as_deref().unwrap();
    let sends = trace
        .iter()
        .filter(|e| matches!(e.what, What::Send { .. }))
        .count();
    let duplicates = trace
        .iter()
        .filter(|e| matches!(e.what, What::Duplicate { .. }))
        .count();
    let drops = trace
        .iter()
        .filter(|e| matches!(e.what, What::Drop { .. }))
        .count();
    let (path, _) = write_report(&run, "small.html");
    let shot = tmp("small.png");
    let r = check(&["report", path.to_str().unwrap(), shot.to_str().unwrap()]);
    eprintln!("small report in Chromium: {r}");
    assert_eq!(
        r["errors"].as_array().unwrap().len(),
        0,
        "console errors: {r}"
    );
    // The whole run is in view: every lane and message is drawn.
    assert_eq!(r["lanes"], 4, "{r}");
    assert_eq!(
        r["msgs"].as_u64().unwrap() as usize,
        sends + duplicates,
        "{r}"
    );
    assert_eq!(
        r["duplicates"].as_u64().unwrap() as usize,
        duplicates,
        "{r}"
    );
    assert_eq!(r["dropped"].as_u64().unwrap() as usize, drops, "{r}");
    assert_eq!(r["crosses"], r["dropped"], "{r}");
    assert!(r["beliefs"].as_u64().unwrap() > 0, "{r}");
    assert!(shot.exists());
    // "first violation": from a window far from it, scrolled to the bottom, one click brings
    // it into the chart's view and the chart into the window.
    let at = r["violation_at"].as_f64().unwrap();
    assert_eq!(at, 5_200_000.0);
    let (b0, b1) = (
        r["before"]["t0"].as_f64().unwrap(),
        r["before"]["t1"].as_f64().unwrap(),
    );
    assert!(!(b0..=b1).contains(&at), "{r}");
    assert_eq!(r["line_before"], 0, "{r}");
    let (a0, a1) = (
        r["after"]["t0"].as_f64().unwrap(),
        r["after"]["t1"].as_f64().unwrap(),
    );
    assert!((a0..=a1).contains(&at), "{r}");
    let line = &r["line_after"];
    assert!(line.is_object(), "the violation's line is drawn: {r}");
    let (x, vw) = (line["x"].as_f64().unwrap(), line["vw"].as_f64().unwrap());
    assert!(x > 0.0 && x < vw, "{r}");
    let (top, vh) = (line["top"].as_f64().unwrap(), line["vh"].as_f64().unwrap());
    assert!(top >= 0.0 && top < vh, "the violation is on screen: {r}");
    assert!(r["chart_top"].as_f64().unwrap() < vh / 2.0, "{r}");
    // Filters: a node off takes its lane away, a kind off its arrows.
    let f = &r["filtered"];
    assert_eq!(
        (f["lanes"].as_u64(), f["lane_of_node"].as_u64()),
        (Some(3), Some(0)),
        "{r}"
    );
    assert_eq!(f["msgs_of_kind"], 0, "{r}");
    assert!(f["msgs"].as_u64().unwrap() > 0, "{r}");
}

#[test]
fn the_html_report_of_a_100000_event_run_opens_in_chromium() {
    if !browser_or_skip("the_html_report_of_a_100000_event_run_opens_in_chromium") {
        return;
    }
    let run = common::long(100_000);
    let (path, write_s) = write_report(&run, "long.html");
    let size = std::fs::metadata(&path).unwrap().len();
    let shot = tmp("long.png");
    let r = check(&["report", path.to_str().unwrap(), shot.to_str().unwrap()]);
    eprintln!(
        "100,000-event run: HTML of {:.1} MiB written in {:.0} ms (this build's profile); opened and drawn in Chromium in {} ms (first draw at {:.0} ms after navigation start)",
        size as f64 / (1 << 20) as f64,
        write_s * 1000.0,
        r["open_ms"],
        r["drawn_ms"].as_f64().unwrap_or(f64::NAN)
    );
    assert_eq!(
        r["errors"].as_array().unwrap().len(),
        0,
        "console errors: {r}"
    );
    assert_eq!(r["lanes"], 16, "{r}");
    // Drawn lazily: the first view shows a few hundred of the messages, one by one.
    let total = r["total_messages"].as_u64().unwrap();
    let msgs = r["msgs"].as_u64().unwrap();
    assert!(total > 30_000, "{r}");
    assert!(msgs > 100 && msgs < 3_000, "{r}");
    // Only a sanity bound: the time is reported, not judged, on a shared machine.
    assert!(r["open_ms"].as_f64().unwrap() < 60_000.0, "{r}");
    let (a0, a1) = (
        r["after"]["t0"].as_f64().unwrap(),
        r["after"]["t1"].as_f64().unwrap(),
    );
    assert!(
        (a0..=a1).contains(&r["violation_at"].as_f64().unwrap()),
        "{r}"
    );
    // The whole run at once: too many arrows, so a density plot of the sends instead.
    assert_eq!(r["fit"]["msgs"], 0, "{r}");
    assert!(r["fit"]["density"].as_u64().unwrap() > 0, "{r}");
}
