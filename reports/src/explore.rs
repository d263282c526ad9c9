//! What `conclave explore` prints: the search, each verdict with its counterexample, and the
//! fewest and most election messages over every schedule; as text or as one JSON object.

use crate::event_line;
use conclave_sim::explore::ExploreReport;
use std::fmt::Write;
use std::path::PathBuf;

/// A message-bound schedule saved to a file: (election, bound, path), e.g.
/// ("first_election", "most", "x.first_election-most.schedule.json").
pub type SavedSchedule = (&'static str, &'static str, PathBuf);

/// Where the files of an exploration went, and the process's peak memory.
pub struct Saved<'a> {
    /// The saved counterexample of each property, in the report's order.
    pub counterexamples: &'a [Option<PathBuf>],
    pub schedules: &'a [SavedSchedule],
    pub peak_memory_kib: Option<u64>,
}

/// The text summary, ending with `result: ok` or `result: FAILED`.
pub fn text(r: &ExploreReport, saved: &Saved) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "explore {} ({}), timing {}, {} on {} job{}, symmetry reduction {}",
        r.scenario,
        r.algorithm,
        r.timing,
        r.search,
        r.jobs,
        if r.jobs == 1 { "" } else { "s" },
        if r.symmetry_reduction { "on" } else { "off" }
    );
    let peak = saved.peak_memory_kib.map_or("unknown".into(), |k| {
        format!("{:.1} MiB", k as f64 / 1024.0)
    });
    let _ = writeln!(
        s,
        "  {} unique states, {} transitions, max depth {}, {:.2}s, peak memory {peak}",
        r.unique_states,
        r.transitions,
        r.max_depth,
        r.elapsed_ms as f64 / 1000.0
    );
    match &r.cut_short {
        None => s.push_str("  complete: every reachable state was visited\n"),
        Some(why) => {
            let _ = writeln!(
                s,
                "  INCOMPLETE: {why}; what was not visited is not checked, so nothing below \"holds\""
            );
        }
    }
    for (p, file) in r.properties.iter().zip(saved.counterexamples) {
        let verdict = match p.holds {
            Some(true) => "holds".to_string(),
            Some(false) => "violated".to_string(),
            None => format!(
                "not decided ({})",
                p.undecided.as_deref().unwrap_or("incomplete search")
            ),
        };
        let mark = if p.ok { "ok    " } else { "FAILED" };
        let expected = match p.expected {
            "holds" => " (expected to hold)",
            "violated" => " (expected violated)",
            _ => "",
        };
        let _ = writeln!(s, "  {mark}  {}{expected}: {verdict}", p.name);
        if let (Some(cex), Some(path)) = (&p.counterexample, file) {
            let _ = writeln!(
                s,
                "          {} in {} steps; trace:",
                cex.detail,
                cex.choices.len()
            );
            for e in &cex.trace {
                let _ = writeln!(s, "{}", event_line(e));
            }
            let _ = writeln!(s, "          saved: {}", path.display());
            let _ = writeln!(s, "          replay: conclave replay {}", path.display());
        }
    }
    messages(&mut s, r, saved.schedules);
    let _ = writeln!(s, "result: {}", if r.ok { "ok" } else { "FAILED" });
    s
}

fn messages(s: &mut String, r: &ExploreReport, saved: &[SavedSchedule]) {
    let Some(m) = &r.election_messages else {
        if let Some(e) = &r.election_messages_error {
            let _ = writeln!(s, "  election messages: not computed: {e}");
        } else if !r.complete {
            s.push_str("  election messages: not computed (incomplete search)\n");
        }
        return;
    };
    s.push_str("  election messages over every schedule (sent from the election's start to the first settled state):\n");
    for (election, b) in [
        ("first_election", &m.first_election),
        ("re_election", &m.re_election),
    ] {
        let name = election.replace('_', " ");
        let Some(b) = b else {
            let _ = writeln!(s, "    {name}: none completes");
            continue;
        };
        let most = b.most.as_ref().map_or(
            "no bound (a cycle that sends messages can repeat)".to_string(),
            |m| m.messages.to_string(),
        );
        let _ = writeln!(s, "    {name}: fewest {}, most {most}", b.fewest.messages);
        for (e, bound, path) in saved {
            if *e == election {
                let _ = writeln!(s, "      {bound}: conclave replay {}", path.display());
            }
        }
    }
}

/// The report as one JSON object, with the peak memory and the saved files' paths.
pub fn json(r: &ExploreReport, saved: &Saved) -> String {
    let mut v = serde_json::to_value(r).unwrap_or_default();
    v["peak_memory_kib"] = serde_json::json!(saved.peak_memory_kib);
    for (i, path) in saved.counterexamples.iter().enumerate() {
        if let Some(p) = path {
            v["properties"][i]["counterexample"]["file"] =
                serde_json::json!(p.display().to_string());
        }
    }
    for (election, bound, path) in saved.schedules {
        v["election_messages"][election][bound]["file"] =
            serde_json::json!(path.display().to_string());
    }
    v.to_string()
}

/// What `conclave replay` says at the end of a message-bound schedule.
pub fn replay_bound(property: &str, detail: &str, sent: u64, settled: bool) -> String {
    format!(
        "{property}: {detail}; {sent} messages sent in all; the last state {}\n",
        if settled {
            "is settled"
        } else {
            "is NOT settled"
        }
    )
}

/// What `conclave replay` says of a counterexample the explorer's model replayed:
/// `violation` is why the last state violates the property, if it does.
pub fn replay_model(property: &str, steps: usize, violation: Option<&str>) -> String {
    match violation {
        Some(why) => format!("{property} violated after {steps} steps: {why}\n"),
        None => format!("{property}: the last state does not violate it\n"),
    }
}

/// What `conclave replay` says of a counterexample the simulator played: `violation` is
/// when and why it was violated, if it was.
pub fn replay_simulator(property: &str, steps: usize, violation: Option<(u64, &str)>) -> String {
    match violation {
        Some((at, why)) => format!(
            "{property} violated in the simulator at t={} ({steps} steps played): {why}\n",
            conclave_algorithms::Time(at)
        ),
        None => format!("{property}: the simulator played the {steps} steps and it held\n"),
    }
}

/// The most states whose graph is drawn as SVG: a layered drawing of more is a wall of
/// crossing lines (and its layout takes seconds); the DOT file is written at any size.
pub const MAX_SVG_STATES: usize = 300;

/// The state graph in DOT drawn as SVG (layered, start at the top), or why not.
pub fn graph_svg(dot: &str, states: usize) -> Result<String, String> {
    use layout::backends::svg::SVGWriter;
    if states > MAX_SVG_STATES {
        return Err(format!(
            "{states} states: the graph is drawn as SVG up to {MAX_SVG_STATES} (the DOT file has it all)"
        ));
    }
    let mut parser = layout::gv::DotParser::new(dot);
    let graph = parser
        .process()
        .map_err(|e| format!("the DOT text does not parse: {e}"))?;
    let mut builder = layout::gv::GraphBuilder::new();
    builder.visit_graph(&graph);
    let mut visual = builder.get();
    let mut svg = SVGWriter::new();
    visual.do_it(false, false, false, &mut svg);
    Ok(svg.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_graph_is_drawn_and_a_large_one_refused() {
        let dot = "digraph {\n 0 [ label=\"s0\"]\n 1 [ label=\"s1\"]\n 2 [ label=\"s2\" color=red]\n 0 -> 1 [ label=\"Deliver(0)\"]\n 1 -> 2 [ label=\"Crash(1)\"]\n}\n";
        let svg = graph_svg(dot, 3).unwrap();
        assert!(svg.contains("<svg"), "{svg}");
        for label in ["s0", "s1", "s2", "Deliver(0)", "Crash(1)"] {
            assert!(svg.contains(label), "{label} missing: {svg}");
        }
        let why = graph_svg(dot, MAX_SVG_STATES + 1).unwrap_err();
        assert!(why.contains("up to 300"), "{why}");
    }
}
