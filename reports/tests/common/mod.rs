//! Runs the report tests and the benchmark draw: a small run with every kind of event, and a
//! long one of exactly 100,000 trace events.
#![allow(dead_code)]

use conclave_sim::run::{run_scenario, RunOptions, RunReport};
use conclave_sim::scenario::Scenario;

/// Four nodes, named so that Mermaid would misread them (`end` and `par` are keywords, `-`
/// and `:` syntax), under loss, duplication, a crash and restart, a pause, a partition and
/// a blocked link; two leaders at once at 5.2 s, so its one expectation fails.
pub const SMALL: &str = r#"Scenario(
    algorithm: Bully(answer_timeout: "200ms", coordinator_timeout: "600ms", heartbeat_interval: "1s", heartbeat_timeout: "300ms"),
    nodes: [(name: "n1", id: 1), (name: "end", id: 2), (name: "a-b:c", id: 3), (name: "par", id: 4)],
    network: (delay: Uniform(min: "2ms", max: "40ms"), loss: 0.05, duplicate: 0.1),
    faults: [
        (at: "3s", fault: Crash("par")),
        (at: "5s", fault: Restart("par")),
        (at: "7s", fault: Pause("end")),
        (at: "8s", fault: Resume("end")),
        (at: "10s", fault: Partition([["n1", "end"], ["a-b:c", "par"]])),
        (at: "13s", fault: Heal),
        (at: "15s", fault: Block("n1", "par")),
        (at: "17s", fault: Unblock("n1", "par")),
    ],
    run_for: "20s",
    expect: [AtMostOneLeader],
)"#;

/// Sixteen nodes with heartbeats every 100 ms under loss, duplication and faults: about
/// 10,000 trace events a virtual second.
pub const LONG: &str = r#"Scenario(
    algorithm: Bully(answer_timeout: "50ms", coordinator_timeout: "150ms", heartbeat_interval: "100ms", heartbeat_timeout: "60ms"),
    nodes: [
        (name: "n1", id: 1), (name: "n2", id: 2), (name: "n3", id: 3), (name: "n4", id: 4),
        (name: "n5", id: 5), (name: "n6", id: 6), (name: "n7", id: 7), (name: "n8", id: 8),
        (name: "n9", id: 9), (name: "n10", id: 10), (name: "n11", id: 11), (name: "n12", id: 12),
        (name: "n13", id: 13), (name: "n14", id: 14), (name: "n15", id: 15), (name: "n16", id: 16),
    ],
    network: (delay: Uniform(min: "1ms", max: "20ms"), loss: 0.01, duplicate: 0.01),
    faults: [
        (at: "2s", fault: Crash("n16")),
        (at: "4s", fault: Restart("n16")),
        (at: "5s", fault: Pause("n15")),
        (at: "6s", fault: Resume("n15")),
        (at: "8s", fault: Partition([["n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8"], ["n9", "n10", "n11", "n12", "n13", "n14", "n15", "n16"]])),
        (at: "11s", fault: Heal),
        (at: "13s", fault: Block("n1", "n16")),
        (at: "15s", fault: Crash("n16")),
    ],
    run_for: "85s",
    expect: [AtMostOneLeader],
)"#;

pub fn run(text: &str, name: &str) -> RunReport {
    let s = Scenario::from_str(text, name).expect("the test scenario is valid");
    let opts = RunOptions {
        record_trace: true,
        ..RunOptions::default()
    };
    run_scenario(&s, name, 0, &opts)
}

pub fn small() -> RunReport {
    run(SMALL, "small.ron")
}

/// A run whose trace has exactly `events` events (cut where it passes them).
pub fn long(events: usize) -> RunReport {
    let mut r = run(LONG, "long.ron");
    let trace = r.trace.as_mut().expect("the trace is kept");
    assert!(
        trace.len() >= events,
        "the long scenario makes {} events, fewer than {events}",
        trace.len()
    );
    trace.truncate(events);
    r.end_time_us = trace.last().map_or(0, |e| e.time_us);
    r
}
