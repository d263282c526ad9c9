//! The monitor's log as the run report `conclave run --json --trace` writes, so that
//! `conclave report EXPORT.json` draws it: a `start` event at each node's first report, a
//! `role` event per role change, `block` / `unblock` events as the block list changed, with
//! times in microseconds since the first report.
//!
//! What a real cluster's log cannot tell is filled with plain defaults: `seed` 0, an empty
//! `trace_hash`, no messages (the monitor sees none), no expectations or properties (so `ok`
//! is true), each node's `id` 0, and `algorithm` empty. A node is `down` if it was stale
//! when the export was made.
//!
//! ```
//! use conclave_services::monitor::{export, store::Store};
//! let store = Store::open_in_memory().unwrap();
//! let report = export::run_report(&store, "monitor.sqlite3", 0, u64::MAX).unwrap();
//! assert!(report.trace.unwrap().is_empty());
//! ```

use super::store::{Store, StoreError};
use conclave_algorithms::Role;
use conclave_sim::run::{ElectionReport, LogRowReport, MessageReport, NodeReport, RunReport};
use conclave_sim::trace::{TraceEvent, What};
use std::collections::{BTreeMap, BTreeSet};

/// The report of everything `store` holds; `now_us` and `stale_after_us` decide which nodes
/// count as down. `file` is the database's path, shown as the report's file.
pub fn run_report(
    store: &Store,
    file: &str,
    now_us: u64,
    stale_after_us: u64,
) -> Result<RunReport, StoreError> {
    let roles = store.roles()?;
    let latest = store.latest()?;
    let history = store.block_history()?;
    let first = roles
        .iter()
        .map(|r| r.at_us)
        .chain(history.iter().map(|b| b.at_us))
        .min()
        .unwrap_or(now_us);
    let rel = |at: u64| at.saturating_sub(first);

    // (time, order within the log, event): role changes and block changes merged by time.
    let mut events: Vec<(u64, usize, TraceEvent)> = Vec::new();
    let mut started = BTreeSet::new();
    for (i, r) in roles.iter().enumerate() {
        if started.insert(r.node.clone()) {
            events.push((r.at_us, 2 * i, event(rel(r.at_us), &r.node, What::Start)));
        }
        let what = What::Role {
            role: r.role,
            leader: r.coordinator.clone(),
            status: r.status.clone(),
            group: r.group,
        };
        events.push((r.at_us, 2 * i + 1, event(rel(r.at_us), &r.node, what)));
    }
    let offset = 2 * roles.len();
    let mut blocked = BTreeSet::new();
    for (i, change) in history.iter().enumerate() {
        let now: BTreeSet<_> = change.pairs.iter().cloned().collect();
        for (a, b) in blocked.difference(&now) {
            let what = What::Unblock {
                a: a.clone(),
                b: b.clone(),
            };
            events.push((change.at_us, offset + i, event(rel(change.at_us), a, what)));
        }
        for (a, b) in now.difference(&blocked) {
            let what = What::Block {
                a: a.clone(),
                b: b.clone(),
            };
            events.push((change.at_us, offset + i, event(rel(change.at_us), a, what)));
        }
        blocked = now;
    }
    events.sort_by_key(|(at, order, _)| (*at, *order));
    let trace: Vec<TraceEvent> = events.into_iter().map(|(_, _, e)| e).collect();

    let changes_of = |node: &str| roles.iter().filter(|r| r.node == node).count() as u64;
    let is_stale = |at: u64| now_us.saturating_sub(at) > stale_after_us;
    let nodes = latest
        .iter()
        .map(|s| NodeReport {
            name: s.report.node.clone(),
            id: 0,
            address: Some(s.report.address.clone()),
            role_changes: changes_of(&s.report.node).saturating_sub(1),
            state: if is_stale(s.at_us) { "down" } else { "running" },
            role: s.report.role,
            status: s.report.status.clone(),
            leader: s.report.coordinator.clone(),
        })
        .collect();
    let leaders: BTreeMap<String, Option<String>> = latest
        .iter()
        .map(|s| {
            let leader = s.report.coordinator.clone().filter(|_| !is_stale(s.at_us));
            (s.report.node.clone(), leader)
        })
        .collect();
    let log_table = latest
        .iter()
        .map(|s| LogRowReport {
            node: s.report.node.clone(),
            address: Some(s.report.address.clone()),
            coordinator: s.report.coordinator.clone(),
            group: s.report.group,
            status: s.report.status.clone(),
            received_us: rel(s.at_us),
        })
        .collect();
    let end_time_us = latest
        .iter()
        .map(|s| rel(s.at_us))
        .chain(trace.last().map(|e| e.time_us))
        .max()
        .unwrap_or(0);
    let (started, won) = elections(&trace);
    Ok(RunReport {
        scenario: "monitor".into(),
        file: file.into(),
        algorithm: String::new(),
        seed: 0,
        trace_hash: String::new(),
        ok: true,
        incomplete: None,
        end_time_us,
        events: trace.len() as u64,
        leaders,
        nodes,
        messages: MessageReport {
            total: 0,
            election: 0,
            delivered: 0,
            dropped: 0,
            duplicated: 0,
            by_kind: BTreeMap::new(),
        },
        elections: ElectionReport { started, won },
        time_to_stable_leader_us: None,
        expectations: Vec::new(),
        properties: Vec::new(),
        log_table: Some(log_table),
        replay: String::new(),
        trace: Some(trace),
    })
}

fn event(time_us: u64, node: &str, what: What) -> TraceEvent {
    TraceEvent {
        time_us,
        node: node.to_string(),
        what,
    }
}

/// Times a node became a candidate, and times one became leader.
fn elections(trace: &[TraceEvent]) -> (u64, u64) {
    let mut started = 0;
    let mut won = 0;
    for e in trace {
        match e.what {
            What::Role {
                role: Role::Candidate,
                ..
            } => started += 1,
            What::Role {
                role: Role::Leader, ..
            } => won += 1,
            _ => {}
        }
    }
    (started, won)
}
