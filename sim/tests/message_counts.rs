//! Bully message counts against the textbook figures.
//!
//! Model assumed by every count here: equal (constant 10 ms) delays on FIFO links, no loss,
//! an answer timeout (1 s) far longer than a round trip, and every node waiting out its answer
//! timeout before it wins, the highest included (see `algorithms::bully`). Only election
//! messages are counted (ELECTION, OK, COORDINATOR), never heartbeats. COORDINATOR goes to
//! the lower nodes only: the winner heard nothing from the higher ones.

use conclave_sim::run::{run_scenario, RunOptions, RunReport};
use conclave_sim::scenario::Scenario;
use conclave_sim::trace::What;

fn scenario(n: u64, stagger_ms: u64, faults: &str, run_for: &str) -> Scenario {
    let nodes: String = (1..=n)
        .map(|i| {
            format!(
                "(name: \"p{i}\", id: {i}, start: \"{}ms\"),",
                (i - 1) * stagger_ms
            )
        })
        .collect();
    let src = format!(
        r#"Scenario(
            algorithm: Bully(answer_timeout: "1s", coordinator_timeout: "3s",
                             heartbeat_interval: "1s", heartbeat_timeout: "1s"),
            nodes: [{nodes}],
            network: (delay: Constant("10ms"), fifo: true),
            faults: [{faults}],
            run_for: "{run_for}",
        )"#
    );
    Scenario::from_str(&src, "counts.ron").unwrap()
}

/// Election messages sent at or after `from_us`, by kind: (ELECTION, OK, COORDINATOR).
fn election_sends(r: &RunReport, from_us: u64) -> (u64, u64, u64) {
    let mut counts = (0, 0, 0);
    for e in r.trace.as_ref().unwrap() {
        if let What::Send { msg, .. } = &e.what {
            if e.time_us < from_us {
                continue;
            }
            match msg.as_str() {
                "Election" => counts.0 += 1,
                "Ok" => counts.1 += 1,
                "Coordinator" => counts.2 += 1,
                _ => {}
            }
        }
    }
    counts
}

fn all_start_together(n: u64) {
    // Every node starts at t=0 and holds one election. Node i sends ELECTION to the n-i
    // nodes above it: n(n-1)/2 in all, each answered OK. The highest is still waiting out its
    // answer timeout when the ELECTIONs reach it, so it only answers; then it wins and sends
    // COORDINATOR to the n-1 others. Total n(n-1)/2 + n(n-1)/2 + (n-1) = n^2 - 1.
    let r = run_scenario(
        &scenario(n, 0, "", "3s"),
        "counts.ron",
        0,
        &RunOptions {
            record_trace: true,
            ..RunOptions::default()
        },
    );
    let pairs = n * (n - 1) / 2;
    assert_eq!(election_sends(&r, 0), (pairs, pairs, n - 1), "N={n}");
    assert_eq!(r.messages.election, n * n - 1, "N={n}");
    let top = format!("p{n}");
    assert!(
        r.leaders
            .values()
            .all(|l| l.as_deref() == Some(top.as_str())),
        "{:?}",
        r.leaders
    );
}

fn highest_crashes_lowest_detects(n: u64) {
    // Node k starts at (k-1)*100 ms, so its heartbeats go out at k-1 tenths past each second.
    // The highest crashes at 10.95 s; p1's heartbeat at 11 s is the first unanswered one, so p1
    // detects at 12 s, and its ELECTION reaches every other node before their own heartbeat
    // timeouts, which an election cancels. Then:
    //   p1 sends ELECTION to the n-1 nodes above it; the n-2 live ones answer OK;
    //   each p_k (2 <= k <= n-1) holds an election: ELECTION to the n-k above it, and gets
    //   OK from the n-1-k live ones above it;
    //   p_{n-1} wins and sends COORDINATOR to the n-2 nodes below it.
    // ELECTION: (n-1) + (n-2)(n-1)/2, OK: (n-2) + (n-2)(n-3)/2, COORDINATOR: n-2,
    // total (n-1)^2 + n - 2.
    let crash = format!("(at: \"10.95s\", fault: Crash(\"p{n}\"))");
    let r = run_scenario(
        &scenario(n, 100, &crash, "20s"),
        "counts.ron",
        0,
        &RunOptions {
            record_trace: true,
            ..RunOptions::default()
        },
    );
    let detectors: Vec<&str> = r
        .trace
        .as_ref()
        .unwrap()
        .iter()
        .filter(|e| {
            e.time_us >= 10_950_000
                && matches!(&e.what, What::Timer { timer } if timer == "HeartbeatTimeout")
        })
        .map(|e| e.node.as_str())
        .collect();
    assert_eq!(detectors, ["p1"], "only the lowest detects (N={n})");
    let elections = (n - 1) + (n - 2) * (n - 1) / 2;
    let oks = (n - 2) + (n - 2) * (n - 3) / 2;
    let counts = election_sends(&r, 10_950_000);
    assert_eq!(counts, (elections, oks, n - 2), "N={n}");
    assert_eq!(
        counts.0 + counts.1 + counts.2,
        (n - 1) * (n - 1) + n - 2,
        "N={n}"
    );
    let next = format!("p{}", n - 1);
    assert_eq!(r.leaders["p1"].as_deref(), Some(next.as_str()));
    assert!(r.ok);
}

#[test]
fn bully_all_start_together_n4_is_n_squared_minus_1() {
    all_start_together(4);
}

#[test]
fn bully_all_start_together_n8_is_n_squared_minus_1() {
    all_start_together(8);
}

#[test]
fn bully_highest_crashes_lowest_detects_n4_is_11() {
    highest_crashes_lowest_detects(4);
}

#[test]
fn bully_highest_crashes_lowest_detects_n8() {
    highest_crashes_lowest_detects(8);
}
