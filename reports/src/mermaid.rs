//! A Mermaid `sequenceDiagram` of a trace: a participant per node in the chart's lane order,
//! an arrow per message at its send (`->>` delivered, `-x` dropped, `-->>` the second copy
//! of a duplicated message, `-)` still in flight at the end), and notes for crashes,
//! restarts, pauses, role changes, partitions and blocked links.
//!
//! Participants are written by alias (`participant P1 as end`), so that a node named like a
//! Mermaid keyword (`end`, `loop`, `participant`...) or with characters Mermaid reads as
//! syntax (`-`, `:`, `;`, `#`) still parses; the label's and messages' `#`, `;`, `<` and
//! `>` are written as Mermaid's entity codes.
//!
//! ```
//! use conclave_sim::trace::{TraceEvent, What};
//! let ev = |t, node: &str, what| TraceEvent { time_us: t, node: node.into(), what };
//! let trace = vec![
//!     ev(0, "end", What::Send { to: "b".into(), msg: "Ping".into() }),
//!     ev(5, "b", What::Deliver { from: "end".into(), msg: "Ping".into() }),
//! ];
//! let m = conclave_reports::mermaid::diagram(&trace, &[], "demo");
//! assert!(m.contains("participant P0 as end\n"));
//! assert!(m.contains("P0->>P1: Ping\n"));
//! ```

use crate::chart::{Chart, MarkKind, Outcome};
use conclave_algorithms::Duration;
use conclave_sim::trace::{TraceEvent, What};
use std::fmt::Write;

/// Text as Mermaid shows it in a label or message: its syntax characters as entity codes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '#' => out.push_str("#35;"),
            ';' => out.push_str("#59;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn role_word(role: conclave_algorithms::Role) -> &'static str {
    use conclave_algorithms::Role::*;
    match role {
        Idle => "idle",
        Candidate => "candidate",
        Follower => "follower",
        Leader => "leader",
        Service => "service",
    }
}

/// The diagram. `order` is the run's nodes (as for [`Chart::new`]); `title` names it.
pub fn diagram(trace: &[TraceEvent], order: &[String], title: &str) -> String {
    let chart = Chart::new(trace, order, trace.last().map_or(0, |e| e.time_us));
    let p = |lane: usize| format!("P{lane}");
    let mut out = String::with_capacity(trace.len() * 40 + 256);
    let _ = writeln!(out, "%% {}", escape(title).replace("%%", "% %"));
    out.push_str("sequenceDiagram\n");
    for (i, name) in chart.lanes.iter().enumerate() {
        let _ = writeln!(out, "    participant {} as {}", p(i), escape(name));
    }
    let (first, last) = (p(0), p(chart.lanes.len().saturating_sub(1)));
    let span = if chart.lanes.len() > 1 {
        format!("{first},{last}")
    } else {
        first.clone()
    };
    // Messages follow their sends: the chart keeps them in the trace's order, so walk the
    // trace and take the next message at each send or duplicate.
    let mut next_message = 0;
    let lane = |name: &str| chart.lanes.iter().position(|l| l == name);
    for e in trace {
        let at = Duration(e.time_us);
        match &e.what {
            What::Send { .. } | What::Duplicate { .. } => {
                // A duplicate with no send before it made no copy.
                let Some(m) = chart.messages.get(next_message) else {
                    continue;
                };
                if m.duplicate != matches!(e.what, What::Duplicate { .. }) {
                    continue;
                }
                next_message += 1;
                let text = escape(&chart.texts[m.text]);
                let (arrow, note) = match (m.outcome, m.duplicate) {
                    (Outcome::Delivered, false) => ("->>", String::new()),
                    (Outcome::Delivered, true) => ("-->>", " (duplicate)".to_string()),
                    (Outcome::Dropped(r), dup) => (
                        if dup { "--x" } else { "-x" },
                        format!(
                            " ({}dropped: {})",
                            if dup { "duplicate, " } else { "" },
                            r.as_str()
                        ),
                    ),
                    (Outcome::InFlight, dup) => (
                        if dup { "--)" } else { "-)" },
                        " (in flight at the end)".to_string(),
                    ),
                };
                let _ = writeln!(out, "    {}{arrow}{}: {text}{note}", p(m.from), p(m.to));
            }
            What::Crash
            | What::Restart
            | What::Pause
            | What::Resume
            | What::Leave
            | What::Role { .. } => {
                let Some(l) = lane(&e.node) else { continue };
                let what = match &e.what {
                    What::Role { role, leader, .. } => format!(
                        "{} (leader {})",
                        role_word(*role),
                        leader.as_deref().unwrap_or("none")
                    ),
                    What::Crash => MarkKind::Crash.name().into(),
                    What::Restart => MarkKind::Restart.name().into(),
                    What::Pause => MarkKind::Pause.name().into(),
                    What::Resume => MarkKind::Resume.name().into(),
                    _ => MarkKind::Leave.name().into(),
                };
                let _ = writeln!(out, "    Note over {}: t={at} {}", p(l), escape(&what));
            }
            What::Partition { groups } => {
                let groups: Vec<String> = groups
                    .iter()
                    .map(|g| format!("{{{}}}", g.join(",")))
                    .collect();
                let _ = writeln!(
                    out,
                    "    Note over {span}: t={at} partition {}",
                    escape(&groups.join(" "))
                );
            }
            What::Heal => {
                let _ = writeln!(out, "    Note over {span}: t={at} heal");
            }
            What::Block { a, b } | What::Unblock { a, b } => {
                let (Some(x), Some(y)) = (lane(a), lane(b)) else {
                    continue;
                };
                let verb = if matches!(e.what, What::Block { .. }) {
                    "block"
                } else {
                    "unblock"
                };
                let _ = writeln!(
                    out,
                    "    Note over {},{}: t={at} {verb} {}-{}",
                    p(x),
                    p(y),
                    escape(a),
                    escape(b)
                );
            }
            _ => {}
        }
    }
    out
}
