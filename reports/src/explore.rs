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

/// The exploration as one self-contained HTML page: the search, the verdict table with a
/// link to each counterexample's chart, the fewest and most election messages, and the
/// state graph drawn as SVG (or why it is not).
pub fn html(
    r: &ExploreReport,
    saved: &Saved,
    charts: &[Option<String>],
    graph: Option<&Result<String, String>>,
) -> String {
    use crate::svg::esc;
    let mut s = String::new();
    let title = format!("explore {} ({})", r.scenario, r.algorithm);
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\n<style>{STYLE}</style></head><body>\n<h1>{}</h1>\n",
        esc(&title),
        esc(&title)
    );
    let peak = saved.peak_memory_kib.map_or("unknown".into(), |k| {
        format!("{:.1} MiB", k as f64 / 1024.0)
    });
    let _ = write!(
        s,
        "<p>Timing {}, {} on {} job{}, symmetry reduction {}.</p>\n<table class=\"stats\"><tr><th>unique states</th><td>{}</td></tr><tr><th>transitions</th><td>{}</td></tr><tr><th>max depth</th><td>{}</td></tr><tr><th>time</th><td>{:.2} s</td></tr><tr><th>peak memory</th><td>{}</td></tr><tr><th>search</th><td>{}</td></tr></table>\n",
        esc(&r.timing),
        esc(r.search),
        r.jobs,
        if r.jobs == 1 { "" } else { "s" },
        if r.symmetry_reduction { "on" } else { "off" },
        r.unique_states,
        r.transitions,
        r.max_depth,
        r.elapsed_ms as f64 / 1000.0,
        esc(&peak),
        match &r.cut_short {
            None => "complete: every reachable state was visited".to_string(),
            Some(why) => format!("<b class=\"bad\">INCOMPLETE</b>: {}; nothing below holds for what was not visited", esc(why)),
        }
    );
    s.push_str("<h2>Verdicts</h2>\n<table class=\"verdicts\"><tr><th></th><th>property</th><th>expected</th><th>verdict</th><th>counterexample</th></tr>\n");
    for (i, p) in r.properties.iter().enumerate() {
        let verdict = match p.holds {
            Some(true) => "holds".to_string(),
            Some(false) => "violated".to_string(),
            None => format!(
                "not decided ({})",
                p.undecided.as_deref().unwrap_or("incomplete search")
            ),
        };
        let cex = match (&p.counterexample, charts.get(i).and_then(|c| c.as_ref())) {
            (Some(c), Some(page)) => format!(
                "<a href=\"{}\">{} in {} steps</a>",
                esc(page),
                esc(&c.detail),
                c.choices.len()
            ),
            (Some(c), None) => format!("{} in {} steps", esc(&c.detail), c.choices.len()),
            _ => String::new(),
        };
        let _ = writeln!(
            s,
            "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{cex}</td></tr>",
            if p.ok { "ok" } else { "failed" },
            if p.ok { "ok" } else { "FAILED" },
            esc(&p.name),
            esc(p.expected),
            esc(&verdict)
        );
    }
    s.push_str("</table>\n<h2>Election messages over every schedule</h2>\n");
    match &r.election_messages {
        None => {
            let why = r.election_messages_error.clone().unwrap_or_else(|| {
                "not computed (incomplete search, or --no-message-bounds)".into()
            });
            let _ = writeln!(s, "<p>{}</p>", esc(&why));
        }
        Some(m) => {
            s.push_str("<table class=\"bounds\"><tr><th>election</th><th>fewest</th><th>most</th><th>schedules</th></tr>\n");
            for (election, b) in [
                ("first_election", &m.first_election),
                ("re_election", &m.re_election),
            ] {
                let name = election.replace('_', " ");
                let Some(b) = b else {
                    let _ = writeln!(
                        s,
                        "<tr><td>{name}</td><td colspan=\"3\">none completes</td></tr>"
                    );
                    continue;
                };
                let most = b.most.as_ref().map_or(
                    "no bound (a cycle that sends messages can repeat)".to_string(),
                    |m| m.messages.to_string(),
                );
                let files: Vec<String> = saved
                    .schedules
                    .iter()
                    .filter(|(e, _, _)| *e == election)
                    .map(|(_, bound, path)| {
                        format!(
                            "{bound}: <code>conclave replay {}</code>",
                            esc(&path.display().to_string())
                        )
                    })
                    .collect();
                let _ = writeln!(
                    s,
                    "<tr><td>{name}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    b.fewest.messages,
                    esc(&most),
                    files.join("<br>")
                );
            }
            s.push_str("</table>\n");
        }
    }
    s.push_str("<h2>State graph</h2>\n");
    match graph {
        Some(Ok(svg)) => {
            s.push_str("<p>Violating states in red. The DOT file beside this page has the same graph.</p>\n<div class=\"graph\">");
            // The SVG's own XML prolog, if any, is no part of an HTML page.
            let body = svg.find("<svg").map_or(svg.as_str(), |i| &svg[i..]);
            s.push_str(body);
            s.push_str("</div>\n");
        }
        Some(Err(why)) => {
            let _ = writeln!(s, "<p>Not drawn: {}.</p>", esc(why));
        }
        None => s.push_str("<p>Not kept: the space is larger than this page draws.</p>\n"),
    }
    let _ = writeln!(
        s,
        "<p class=\"result\">result: <b class=\"{}\">{}</b></p>\n</body></html>",
        if r.ok { "good" } else { "bad" },
        if r.ok { "ok" } else { "FAILED" }
    );
    s
}

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}\
tr.failed td{background:#fde8e8}tr.ok td:first-child{color:#1a7f37}tr.failed td:first-child{color:#c62828;font-weight:bold}\
.bad{color:#c62828}.good{color:#1a7f37}.graph{overflow:auto;border:1px solid #ddd;max-height:80vh}code{font-size:90%}";

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
