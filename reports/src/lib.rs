//! Renders runs for people and for scripts: a text timeline (one `key=value` event per line,
//! virtual time first), a summary, and JSON; and a run's report as files ([`write_all`]):
//! an HTML page with its message sequence chart ([`html`]), a Mermaid sequence diagram
//! ([`mermaid`]), a ShiViz log ([`shiviz`]) and the plain timeline.
//!
//! ```
//! use conclave_sim::{run::{run_scenario, RunOptions}, scenario::Scenario};
//! let s = Scenario::from_str(r#"Scenario(algorithm: Bully(), nodes: [(name: "a", id: 1), (name: "b", id: 2)],
//!     run_for: "3s", expect: [LeaderIs(node: "b")])"#, "two.ron").unwrap();
//! let r = run_scenario(&s, "two.ron", 0, &RunOptions { record_trace: true, ..RunOptions::default() });
//! let timeline = conclave_reports::timeline(&r);
//! assert!(timeline.lines().next().unwrap().starts_with("t=0s node=a event=start"));
//! assert!(conclave_reports::summary(&r).contains("ok      LeaderIs(b, end)"));
//! ```

pub mod chart;
pub mod check;
pub mod compare;
pub mod explore;
pub mod html;
pub mod junit;
pub mod mermaid;
pub mod shiviz;
pub mod source;
pub mod svg;
pub mod sweep;

pub use source::{load_json, Loaded, Source};

use conclave_algorithms::{Duration, Role};
use conclave_sim::run::RunReport;
use conclave_sim::trace::{TraceEvent, What};
use std::fmt::Write;

fn us(t: u64) -> String {
    Duration(t).to_string()
}

fn role_name(r: Role) -> &'static str {
    match r {
        Role::Idle => "idle",
        Role::Candidate => "candidate",
        Role::Follower => "follower",
        Role::Leader => "leader",
        Role::Service => "service",
    }
}

/// One trace event as a line: `t=1.01s node=node2 event=deliver from=node1 msg=Election`.
pub fn event_line(e: &TraceEvent) -> String {
    let mut s = format!("t={} node={} event=", us(e.time_us), e.node);
    match &e.what {
        What::Start => s.push_str("start"),
        What::Restart => s.push_str("restart"),
        What::Crash => s.push_str("crash"),
        What::Pause => s.push_str("pause"),
        What::Resume => s.push_str("resume"),
        What::Send { to, msg } => {
            let _ = write!(s, "send to={to} msg={msg}");
        }
        What::Deliver { from, msg } => {
            let _ = write!(s, "deliver from={from} msg={msg}");
        }
        What::Drop {
            from,
            to,
            msg,
            reason,
        } => {
            let _ = write!(
                s,
                "drop from={from} to={to} msg={msg} reason={}",
                reason.as_str()
            );
        }
        What::Duplicate { from, to, msg } => {
            let _ = write!(s, "duplicate from={from} to={to} msg={msg}");
        }
        What::Timer { timer } => {
            let _ = write!(s, "timer name={timer}");
        }
        What::Role {
            role,
            leader,
            status,
            group,
        } => {
            let leader = leader.as_deref().unwrap_or("none");
            if *group != 0 {
                let _ = write!(
                    s,
                    "role role={} leader={leader} status={status} group={group}",
                    role_name(*role)
                );
                return s;
            }
            let _ = write!(
                s,
                "role role={} leader={leader} status={status}",
                role_name(*role)
            );
        }
        What::Partition { groups } => {
            let groups: Vec<String> = groups
                .iter()
                .map(|g| format!("{{{}}}", g.join(",")))
                .collect();
            let _ = write!(s, "partition groups={}", groups.join(""));
        }
        What::Block { a, b } => {
            let _ = write!(s, "block a={a} b={b}");
        }
        What::Unblock { a, b } => {
            let _ = write!(s, "unblock a={a} b={b}");
        }
        What::Heal => s.push_str("heal"),
        What::Leave => s.push_str("leave"),
        What::Suspect { who, suspected } => {
            let verdict = if *suspected { "suspect" } else { "trust" };
            let _ = write!(s, "detector {verdict}={who}");
        }
    }
    s
}

/// The whole trace, one event per line; empty if the run kept no trace.
pub fn timeline(r: &RunReport) -> String {
    let mut out = String::new();
    for e in r.trace.iter().flatten() {
        out.push_str(&event_line(e));
        out.push('\n');
    }
    out
}

/// The human summary of a run.
pub fn summary(r: &RunReport) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "scenario {} ({}), seed {}: {} of virtual time, {} events",
        r.scenario,
        r.algorithm,
        r.seed,
        us(r.end_time_us),
        r.events
    );
    let width = r
        .nodes
        .iter()
        .map(|n| n.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let idw = r
        .nodes
        .iter()
        .map(|n| n.id.to_string().len())
        .max()
        .unwrap_or(2)
        .max(2);
    let _ = writeln!(
        o,
        "  {:width$}  {:>idw$}  {:8}  {:10}  {:22}  leader",
        "node", "id", "state", "role", "status"
    );
    for n in &r.nodes {
        let _ = writeln!(
            o,
            "  {:width$}  {:>idw$}  {:8}  {:10}  {:22}  {}",
            n.name,
            n.id,
            n.state,
            role_name(n.role),
            n.status,
            n.leader.as_deref().unwrap_or("-")
        );
    }
    if let Some(table) = &r.log_table {
        let addr_of = |name: &str| {
            r.nodes
                .iter()
                .find(|n| n.name == name)
                .and_then(|n| n.address.clone())
                .unwrap_or_else(|| name.to_string())
        };
        let _ = writeln!(
            o,
            "log server table at the end (addr, coordinator, groupid, status, received):"
        );
        for row in table {
            let coordinator = row.coordinator.as_deref().map_or("-".to_string(), addr_of);
            let _ = writeln!(
                o,
                "  {:22}  {:22}  {:>14}  {:16}  {}",
                addr_of(&row.node),
                coordinator,
                row.group,
                row.status,
                us(row.received_us)
            );
        }
    }
    let stable = match r.time_to_stable_leader_us {
        Some(t) => format!("stable leader {} after the last fault or start", us(t)),
        None => "no stable leader at the end".into(),
    };
    let _ = writeln!(
        o,
        "elections: {} started, {} won; {stable}",
        r.elections.started, r.elections.won
    );
    let kinds: Vec<String> = r
        .messages
        .by_kind
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    let _ = writeln!(
        o,
        "messages: {} sent ({} election): {}; {} delivered, {} dropped, {} duplicated",
        r.messages.total,
        r.messages.election,
        if kinds.is_empty() {
            "none".into()
        } else {
            kinds.join(", ")
        },
        r.messages.delivered,
        r.messages.dropped,
        r.messages.duplicated
    );
    if r.expectations.is_empty() {
        let _ = writeln!(o, "expectations: none");
    } else {
        let _ = writeln!(o, "expectations:");
    }
    for e in &r.expectations {
        let verdict = if e.ok { "ok    " } else { "FAILED" };
        let expected = if e.expected == "violated" {
            " (expected violated)"
        } else {
            ""
        };
        let _ = write!(o, "  {verdict}  {}{expected}", e.name);
        match (&e.detail, e.failed_at_us) {
            (Some(d), Some(t)) => {
                let _ = write!(o, ": at t={}: {d}", us(t));
            }
            (Some(d), None) => {
                let _ = write!(o, ": {d}");
            }
            _ => {}
        }
        o.push('\n');
    }
    let _ = writeln!(o, "trace hash: {}", r.trace_hash);
    let _ = writeln!(o, "replay: {}", r.replay);
    if let Some(why) = &r.incomplete {
        let _ = writeln!(
            o,
            "INCOMPLETE: {why}; the run stopped before run_for, so the expectations speak only of the part that ran"
        );
    }
    let _ = writeln!(o, "result: {}", if r.ok { "ok" } else { "FAILED" });
    o
}

/// The report as one JSON object on one line.
pub fn json(r: &RunReport) -> String {
    serde_json::to_string(r).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

/// The fields of the report's JSON object after a streamed `"trace":[...]` (see
/// [`trace_json`]): the object's other members, with a leading comma, and its closing brace.
pub fn json_after_trace(r: &RunReport) -> String {
    let Ok(serde_json::Value::Object(members)) = serde_json::to_value(r) else {
        return "}".into();
    };
    let mut out = String::new();
    for (k, v) in members.iter().filter(|(k, _)| *k != "trace") {
        out.push(',');
        out.push_str(&serde_json::Value::String(k.clone()).to_string());
        out.push(':');
        out.push_str(&v.to_string());
    }
    out.push('}');
    out
}

/// One trace event as JSON (an element of the report's `trace`).
pub fn trace_json(e: &TraceEvent) -> String {
    serde_json::to_string(e).unwrap_or_default()
}

/// The report's files: `<stem>.html`, `.mmd`, `.shiviz` and `.txt` (see [`Source::stem`]),
/// as (file name, contents).
pub fn files(source: &Source) -> Vec<(String, String)> {
    let stem = source.stem();
    let siblings = html::Siblings::of(&stem);
    let title = match source {
        Source::Run(r) => format!("{} ({}), seed {}", r.scenario, r.algorithm, r.seed),
        Source::Counterexample(c, _) => format!("{}: {}", source.scenario(), c.property),
    };
    vec![
        (format!("{stem}.html"), html::report(source, &siblings)),
        (
            format!("{stem}.mmd"),
            mermaid::diagram(source.trace(), &source.nodes(), &title),
        ),
        (format!("{stem}.shiviz"), shiviz::log(source.trace())),
        (format!("{stem}.txt"), source.text()),
    ]
}

/// Writes the report's files into `dir` (made if missing); returns their paths.
pub fn write_all(
    source: &Source,
    dir: &std::path::Path,
) -> std::io::Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut out = Vec::new();
    for (name, text) in files(source) {
        let path = dir.join(name);
        std::fs::write(&path, text)?;
        out.push(path);
    }
    Ok(out)
}
