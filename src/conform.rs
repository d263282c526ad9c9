//! `conclave conform`: real nodes' trace logs checked against the model.
//!
//! Each log is replayed through the scenario's algorithm (`net::conform::replay`): the same
//! inputs with the same draws must make exactly the logged sends, timer changes and role
//! changes. Then `AtMostOneLeader` is evaluated over the merged logs by wall-clock
//! intervals: each node leads from the wall time of its `role` line that makes it leader to
//! the wall time of its next `role` line, or of its log's last line when it stopped or was
//! killed leading. Two leaders count only when their intervals overlap by more than the
//! stated clock uncertainty (the logs' wall clocks may differ by that much).

use crate::{print_scenario_error, BAD_INPUT, HELD, VIOLATED};
use conclave_algorithms::net::conform::{replay, Mismatch, Replayed};
use conclave_algorithms::Duration;
use conclave_sim::scenario::{Property, Scenario};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// A node's time as leader, by its wall clock (microseconds since the Unix epoch).
#[derive(Clone, Debug, Serialize)]
struct Led {
    node: String,
    from_us: u64,
    to_us: u64,
    /// The log ends while the node leads: `to_us` is its last line.
    until_log_ends: bool,
}

#[derive(Serialize)]
struct NodeResult {
    log: String,
    node: Option<String>,
    conforms: bool,
    inputs: usize,
    outputs: usize,
    /// The log ends inside an input's outputs (a killed node).
    cut: bool,
    /// Where the log and the model part.
    mismatch: Option<String>,
    /// The node ran with other parameters than the scenario's.
    other_params: bool,
}

#[derive(Serialize)]
struct Summary {
    scenario: String,
    ok: bool,
    nodes: Vec<NodeResult>,
    clock_uncertainty_us: u64,
    /// `holds`, `violated`, or absent when the scenario expects neither.
    at_most_one_leader_expected: Option<&'static str>,
    at_most_one_leader_holds: bool,
    two_leaders: Option<String>,
    leadership: Vec<Led>,
}

pub fn cmd_conform(
    logs: &[PathBuf],
    scenario_file: &Path,
    uncertainty: Duration,
    json: bool,
) -> u8 {
    let scenario = match Scenario::load(scenario_file) {
        Ok(s) => s,
        Err(e) => {
            print_scenario_error(&e);
            return BAD_INPUT;
        }
    };
    let mut texts = Vec::new();
    for log in logs {
        match conclave_sim::scenario::read_text_at_most(log, 1 << 32, "a trace log") {
            Ok(t) => texts.push(t),
            Err(e) => {
                eprintln!("error: {}: cannot read the trace log: {e}", log.display());
                return BAD_INPUT;
            }
        }
    }
    let (replayed, params): (Vec<Result<Replayed, Mismatch>>, serde_json::Value) =
        conclave_sim::with_algorithm!(&scenario.algorithm, |A, p| (
            texts.iter().map(|t| replay::<A>(t)).collect(),
            serde_json::to_value(p).unwrap_or_default()
        ));
    // A file that is no trace log is bad input, not a verdict.
    if let Some((log, m)) = logs
        .iter()
        .zip(&replayed)
        .find_map(|(log, r)| r.as_ref().err().filter(|m| m.malformed).map(|m| (log, m)))
    {
        eprintln!(
            "error: {}:{}: not a trace log: {}",
            log.display(),
            m.line,
            m.what
        );
        return BAD_INPUT;
    }
    let nodes: Vec<NodeResult> = logs
        .iter()
        .zip(&replayed)
        .map(|(log, r)| match r {
            Ok(r) => NodeResult {
                log: log.display().to_string(),
                node: Some(r.node.clone()),
                conforms: true,
                inputs: r.inputs,
                outputs: r.outputs,
                cut: r.cut,
                mismatch: None,
                other_params: r.params != params,
            },
            Err(m) => NodeResult {
                log: log.display().to_string(),
                node: m.node.clone(),
                conforms: false,
                inputs: 0,
                outputs: 0,
                cut: false,
                mismatch: Some(format!("{}:{m}", log.display())),
                other_params: false,
            },
        })
        .collect();
    let leadership: Vec<Led> = texts.iter().flat_map(|t| leadership(t)).collect();
    let two = two_leaders(&leadership, uncertainty.as_micros());
    let expected = if scenario.expect.contains(&Property::AtMostOneLeader) {
        Some("holds")
    } else if scenario
        .expect_violated
        .contains(&Property::AtMostOneLeader)
    {
        Some("violated")
    } else {
        None
    };
    let holds = two.is_none();
    let as_expected = match expected {
        Some("holds") => holds,
        Some(_) => !holds,
        None => true,
    };
    let summary = Summary {
        scenario: scenario.name.clone(),
        ok: nodes.iter().all(|n| n.conforms) && as_expected,
        nodes,
        clock_uncertainty_us: uncertainty.as_micros(),
        at_most_one_leader_expected: expected,
        at_most_one_leader_holds: holds,
        two_leaders: two,
        leadership,
    };
    if json {
        println!("{}", serde_json::to_string(&summary).unwrap_or_default());
    } else {
        print_text(&summary, uncertainty);
    }
    if summary.ok {
        HELD
    } else {
        VIOLATED
    }
}

fn print_text(s: &Summary, uncertainty: Duration) {
    for n in &s.nodes {
        let name = n.node.as_deref().unwrap_or("?");
        match &n.mismatch {
            None => {
                println!(
                    "{name}: conforms ({} inputs, {} outputs{}){}",
                    n.inputs,
                    n.outputs,
                    if n.cut {
                        ", the log ends inside the last input's outputs"
                    } else {
                        ""
                    },
                    if n.other_params {
                        "; note: it ran with other parameters than the scenario's"
                    } else {
                        ""
                    }
                );
            }
            Some(m) => println!("{name}: DOES NOT CONFORM: {m}"),
        }
    }
    let verdict = match (&s.two_leaders, s.at_most_one_leader_expected) {
        (None, Some("violated")) => "holds, but the scenario expects it violated".to_string(),
        (None, _) => "holds".to_string(),
        (Some(two), Some("holds")) => format!("VIOLATED: {two}"),
        (Some(two), _) => format!("violated, as the scenario expects: {two}"),
    };
    println!(
        "AtMostOneLeader over wall-clock intervals (clocks may differ by up to {uncertainty}): {verdict}"
    );
    println!("{}", if s.ok { "OK" } else { "FAILED" });
}

/// A log's times as leader, by wall clock.
fn leadership(text: &str) -> Vec<Led> {
    let mut out = Vec::new();
    let mut since: Option<(String, u64)> = None;
    let mut last = 0;
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let Some(wall) = v["wall_us"].as_u64() else {
            continue;
        };
        last = wall;
        let node = v["node"].as_str().unwrap_or("?").to_string();
        let leads = match v["event"].as_str() {
            Some("role") => v["role"] == "Leader",
            Some("start") | Some("stop") => false,
            _ => continue,
        };
        match (leads, since.take()) {
            (true, None) => since = Some((node, wall)),
            (true, Some(s)) => since = Some(s),
            (false, Some((node, from_us))) => out.push(Led {
                node,
                from_us,
                to_us: wall,
                until_log_ends: false,
            }),
            (false, None) => {}
        }
    }
    if let Some((node, from_us)) = since {
        out.push(Led {
            node,
            from_us,
            to_us: last,
            until_log_ends: true,
        });
    }
    out
}

/// The first two leaders whose times overlap by more than `uncertainty_us`, described.
fn two_leaders(led: &[Led], uncertainty_us: u64) -> Option<String> {
    let mut found: Option<(u64, String)> = None;
    for (i, a) in led.iter().enumerate() {
        for b in &led[i + 1..] {
            if a.node == b.node {
                continue;
            }
            let (from, to) = (a.from_us.max(b.from_us), a.to_us.min(b.to_us));
            if to > from && to - from > uncertainty_us && found.as_ref().is_none_or(|f| from < f.0)
            {
                let (first, second) = if a.node < b.node { (a, b) } else { (b, a) };
                found = Some((
                    from,
                    format!(
                        "{} and {} both led for {} (from wall clock {} µs{})",
                        first.node,
                        second.node,
                        Duration(to - from),
                        from,
                        if first.until_log_ends || second.until_log_ends {
                            "; a log ended while its node led, so its time as leader is counted up to its last line"
                        } else {
                            ""
                        }
                    ),
                ));
            }
        }
    }
    found.map(|f| f.1)
}
