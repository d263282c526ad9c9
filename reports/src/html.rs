//! The HTML report of a run: one self-contained file (its script and style inline, nothing
//! fetched) with the message sequence chart, the leaders over time, and the summary.
//!
//! The chart's data goes into the page as compact JSON (flat arrays of numbers, the texts
//! once each); the page's script draws only the time in view as SVG, with the same
//! elements and classes as [`crate::svg`], so that a run of 100,000 events opens at once:
//! zoom and scroll along time, filters by node and message kind, and a button that jumps
//! to the first violation.

use crate::chart::{Axis, Chart, MarkKind, Outcome};
use crate::source::{counts_by_kind, elections_of, Source, Violation};
use crate::svg::{color, esc, layout};
use conclave_algorithms::{Duration, Role};
use conclave_sim::trace::DropReason;
use std::fmt::Write;

const STYLE: &str = include_str!("assets/report.css");
const SCRIPT: &str = include_str!("assets/report.js");

/// The names of the other files written beside the report (for its links), if any.
#[derive(Clone, Debug, Default)]
pub struct Siblings {
    pub mermaid: Option<String>,
    pub shiviz: Option<String>,
    pub text: Option<String>,
}

impl Siblings {
    /// The files [`crate::write_all`] writes beside `<stem>.html`.
    pub fn of(stem: &str) -> Siblings {
        Siblings {
            mermaid: Some(format!("{stem}.mmd")),
            shiviz: Some(format!("{stem}.shiviz")),
            text: Some(format!("{stem}.txt")),
        }
    }
}

/// The report as one HTML document.
pub fn report(source: &Source, siblings: &Siblings) -> String {
    let trace = source.trace();
    let chart = Chart::new(trace, &source.nodes(), source.end_us());
    let violation = source.first_violation(chart.axis == Axis::Steps);
    let mut o = String::with_capacity(64 * 1024 + trace.len() * 40);
    let title = match source {
        Source::Run(r) => format!("{} ({}), seed {}", r.scenario, r.algorithm, r.seed),
        Source::Counterexample(c, _) => {
            format!("{}: counterexample of {}", source.scenario(), c.property)
        }
    };
    let verdict = match source {
        Source::Run(r) if r.ok => ("ok", "ok"),
        Source::Run(_) => ("FAILED", "failed"),
        Source::Counterexample(..) => ("violated", "failed"),
    };
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} — Conclave</title><style>{STYLE}</style></head><body>",
        esc(&title)
    );
    // The header stays on top: title, verdict, the jump to the first violation.
    let _ = write!(
        o,
        "<header id=\"top\"><h1>{}</h1><span class=\"verdict {}\">{}</span>",
        esc(&title),
        verdict.1,
        verdict.0
    );
    match &violation {
        Some(v) => {
            let _ = write!(
                o,
                "<button id=\"first-violation\" type=\"button\" title=\"{}\">first violation{} at {}</button>",
                esc(&v.what),
                if v.expected { " (expected)" } else { "" },
                esc(&crate::svg::at_text(chart.axis, v.at))
            );
        }
        None => o.push_str("<span class=\"no-violation\">no violation</span>"),
    }
    o.push_str("<a href=\"#summary\">summary</a></header>");
    // Controls, the overview of the whole run, the chart.
    o.push_str(
        "<section id=\"controls\" aria-label=\"chart controls\">\
         <div class=\"row\"><button type=\"button\" id=\"zoom-in\" title=\"zoom in (+, or Ctrl + wheel)\">+</button>\
         <button type=\"button\" id=\"zoom-out\" title=\"zoom out (-)\">−</button>\
         <button type=\"button\" id=\"zoom-fit\" title=\"the whole run\">whole run</button>\
         <button type=\"button\" id=\"pan-left\" title=\"earlier (←, Shift + wheel, drag)\">◀</button>\
         <button type=\"button\" id=\"pan-right\" title=\"later (→)\">▶</button>\
         <span id=\"window\"></span>\
         <label><input type=\"checkbox\" id=\"show-labels\" checked> labels</label>\
         <label><input type=\"checkbox\" id=\"show-marks\" checked> timers and detector</label></div>\
         <div class=\"row\" id=\"node-filter\"><b>nodes</b> </div>\
         <div class=\"row\" id=\"kind-filter\"><b>messages</b> </div>\
         <div class=\"row legend\">",
    );
    o.push_str(&legend());
    o.push_str(
        "</div></section>\
         <svg id=\"overview\" class=\"overview\" role=\"img\" aria-label=\"the whole run\"></svg>\
         <div id=\"chart\" tabindex=\"0\"><svg id=\"chart-svg\" class=\"chart\" role=\"img\" aria-label=\"message sequence chart\"></svg></div>\
         <pre id=\"details\" hidden></pre>\
         <noscript><p>The chart needs JavaScript; the summary below does not.</p></noscript>",
    );
    o.push_str("<section id=\"summary\">");
    summary(&mut o, source, &chart, violation.as_ref(), siblings);
    o.push_str("</section>");
    o.push_str("<script type=\"application/json\" id=\"conclave-data\">");
    data_json(&mut o, &chart, violation.as_ref());
    o.push_str("</script><script>");
    o.push_str(SCRIPT);
    o.push_str("</script></body></html>\n");
    o
}

fn legend() -> String {
    let mut o = String::new();
    let item = |o: &mut String, svg: &str, text: &str| {
        let _ = write!(
            o,
            "<span class=\"item\"><svg class=\"chart\" width=\"34\" height=\"18\">{svg}</svg>{text}</span>"
        );
    };
    item(
        &mut o,
        r#"<g class="msg delivered"><line x1="2" y1="9" x2="30" y2="9"/></g>"#,
        "delivered",
    );
    item(
        &mut o,
        r#"<g class="msg dropped"><line x1="2" y1="9" x2="24" y2="9"/><path class="cross" d="M20,5l8,8m0,-8l-8,8"/></g>"#,
        "dropped (the reason in its tooltip)",
    );
    item(
        &mut o,
        r#"<g class="msg delivered duplicate"><line x1="2" y1="9" x2="30" y2="9"/></g>"#,
        "duplicate",
    );
    item(
        &mut o,
        r#"<g class="msg inflight"><line x1="2" y1="9" x2="30" y2="9"/></g>"#,
        "in flight at the end",
    );
    for kind in [
        MarkKind::Crash,
        MarkKind::Restart,
        MarkKind::Pause,
        MarkKind::Resume,
        MarkKind::Leave,
    ] {
        item(
            &mut o,
            &format!(
                r#"<g class="mark {}" transform="translate(17,9)">{}</g>"#,
                kind.name(),
                crate::svg::mark_shape(kind)
            ),
            kind.name(),
        );
    }
    item(
        &mut o,
        r##"<rect class="belief" x="2" y="4" width="30" height="10" fill="#1f77b4"/>"##,
        "believes the node of that colour leads",
    );
    item(
        &mut o,
        r#"<rect class="partition g1" x="2" y="0" width="30" height="18"/>"#,
        "partition (a tint per side)",
    );
    item(
        &mut o,
        r#"<rect class="blocked" x="2" y="2" width="30" height="14"/>"#,
        "blocked link",
    );
    item(
        &mut o,
        r#"<rect class="conflict" x="2" y="2" width="30" height="14"/>"#,
        "two leaders at once",
    );
    o
}

fn us(t: u64) -> String {
    Duration(t).to_string()
}

/// A link that moves the chart to a time.
fn goto(t: u64, axis: Axis) -> String {
    format!(
        "<a href=\"#chart\" class=\"goto\" data-t=\"{t}\">{}</a>",
        esc(&crate::svg::at_text(axis, t))
    )
}

fn summary(
    o: &mut String,
    source: &Source,
    chart: &Chart,
    violation: Option<&Violation>,
    siblings: &Siblings,
) {
    o.push_str("<h2>Summary</h2>");
    match source {
        Source::Run(r) => {
            let _ = write!(
                o,
                "<p>scenario <b>{}</b> ({}), file <code>{}</code>, seed {}: {} of virtual time, {} events{}.</p>",
                esc(&r.scenario),
                esc(&r.algorithm),
                esc(&r.file),
                r.seed,
                us(r.end_time_us),
                r.events,
                match &r.trace {
                    Some(t) => format!(", {} in the trace", t.len()),
                    None => String::new(),
                }
            );
            if let Some(why) = &r.incomplete {
                let _ = write!(
                    o,
                    "<p class=\"failed\">INCOMPLETE: {}; the run stopped before run_for, so the expectations speak only of the part that ran.</p>",
                    esc(why)
                );
            }
            o.push_str("<h3>Expectations</h3>");
            if r.expectations.is_empty() {
                o.push_str("<p>none</p>");
            } else {
                o.push_str("<table class=\"expectations\"><tr><th></th><th>expectation</th><th>expected</th><th>failed at</th><th>detail</th></tr>");
                for e in &r.expectations {
                    let _ = write!(
                        o,
                        "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                        if e.ok { "ok" } else { "failed" },
                        if e.ok { "ok" } else { "FAILED" },
                        esc(&e.name),
                        e.expected,
                        e.failed_at_us.map_or(String::new(), |t| goto(t, chart.axis)),
                        esc(e.detail.as_deref().unwrap_or(""))
                    );
                }
                o.push_str("</table>");
            }
            o.push_str("<details><summary>every property evaluated</summary><table><tr><th></th><th>property</th><th>failed at</th><th>detail</th></tr>");
            for p in &r.properties {
                let _ = write!(
                    o,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    if p.holds { "holds" } else { "violated" },
                    esc(&p.name),
                    p.failed_at_us
                        .map_or(String::new(), |t| goto(t, chart.axis)),
                    esc(p.detail.as_deref().unwrap_or(""))
                );
            }
            o.push_str("</table></details>");
            let m = &r.messages;
            o.push_str("<h3>Messages</h3>");
            let _ = write!(
                o,
                "<p>{} sent ({} of the election), {} delivered, {} dropped, {} duplicated.</p>",
                m.total, m.election, m.delivered, m.dropped, m.duplicated
            );
            kinds_table(o, m.by_kind.iter().map(|(k, v)| (k.as_str(), *v)));
            o.push_str("<h3>Elections</h3>");
            let _ = write!(
                o,
                "<p>{} started, {} won; {}.</p>",
                r.elections.started,
                r.elections.won,
                match r.time_to_stable_leader_us {
                    Some(t) => format!(
                        "time to stable leader <b>{}</b> after the last fault or start",
                        us(t)
                    ),
                    None => "no stable leader at the end".into(),
                }
            );
            o.push_str("<h3>Nodes at the end</h3><table><tr><th>node</th><th>id</th><th>state</th><th>role</th><th>status</th><th>leader</th></tr>");
            for n in &r.nodes {
                let lane = chart.lanes.iter().position(|l| *l == n.name).unwrap_or(0);
                let _ = write!(
                    o,
                    "<tr><td><span class=\"swatch\" style=\"background:{}\"></span>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    color(lane),
                    esc(&n.name),
                    n.id,
                    n.state,
                    role_name(n.role),
                    esc(&n.status),
                    esc(n.leader.as_deref().unwrap_or("-"))
                );
            }
            o.push_str("</table>");
            let _ = write!(
                o,
                "<h3>Reproduce</h3><p>trace hash <code id=\"trace-hash\">{}</code></p><p>replay: <code id=\"replay\">{}</code></p>",
                esc(&r.trace_hash),
                esc(&r.replay)
            );
        }
        Source::Counterexample(c, _) => {
            let _ = write!(
                o,
                "<p>a counterexample to <b>{}</b> in scenario <code>{}</code>, {} steps: {}{}.</p>",
                esc(&c.property),
                esc(&c.scenario),
                c.choices.len(),
                esc(&c.detail),
                match violation {
                    Some(v) => format!(", at {}", goto(v.at, chart.axis)),
                    None => String::new(),
                }
            );
            if chart.axis == Axis::Steps {
                o.push_str("<p>Its model is asynchronous (no clock): the chart counts events, one step each.</p>");
            }
            let trace = source.trace();
            let by_kind = counts_by_kind(trace);
            o.push_str("<h3>Messages</h3>");
            let _ = write!(
                o,
                "<p>{} sent, {} delivered, {} dropped, {} duplicated.</p>",
                chart.sends(),
                chart
                    .messages
                    .iter()
                    .filter(|m| m.outcome == Outcome::Delivered)
                    .count(),
                chart
                    .messages
                    .iter()
                    .filter(|m| matches!(m.outcome, Outcome::Dropped(_)))
                    .count(),
                chart.messages.iter().filter(|m| m.duplicate).count()
            );
            kinds_table(o, by_kind.iter().map(|(k, v)| (k.as_str(), *v)));
            let (started, won) = elections_of(trace);
            let _ = write!(
                o,
                "<h3>Elections</h3><p>{started} started, {won} won; time to stable leader: none (a counterexample ends at the violation).</p>"
            );
            let _ = write!(
                o,
                "<h3>Reproduce</h3><p>trace hash: none (the explorer's model keeps none)</p><p>replay: <code id=\"replay\">{}</code></p>",
                esc(&source.replay())
            );
        }
    }
    o.push_str("<h3>Exports</h3><ul>");
    for (file, what) in [
        (&siblings.mermaid, "Mermaid sequence diagram"),
        (&siblings.shiviz, "ShiViz log"),
        (&siblings.text, "timeline and summary, as text"),
    ] {
        if let Some(f) = file {
            let _ = write!(o, "<li><a href=\"{0}\">{0}</a>: {what}</li>", esc(f));
        }
    }
    let _ = write!(
        o,
        "</ul><p>ShiViz: paste the log with the regular expression <code id=\"shiviz-regex\">{}</code> (and no delimiter).</p>",
        esc(crate::shiviz::REGEX)
    );
}

fn kinds_table<'a>(o: &mut String, kinds: impl Iterator<Item = (&'a str, u64)>) {
    o.push_str("<table class=\"kinds\"><tr><th>kind</th><th>sent</th></tr>");
    for (k, v) in kinds {
        let _ = write!(o, "<tr><td>{}</td><td>{v}</td></tr>", esc(k));
    }
    o.push_str("</table>");
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

fn role_index(r: Role) -> u8 {
    match r {
        Role::Idle => 0,
        Role::Candidate => 1,
        Role::Follower => 2,
        Role::Leader => 3,
        Role::Service => 4,
    }
}

/// A JSON string, safe inside a `<script>` element (no `<`, `>`, `&` or line separators).
fn json_str(o: &mut String, s: &str) {
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
}

fn json_strs<'a>(o: &mut String, items: impl IntoIterator<Item = &'a str>) {
    o.push('[');
    for (i, s) in items.into_iter().enumerate() {
        if i > 0 {
            o.push(',');
        }
        json_str(o, s);
    }
    o.push(']');
}

/// Integers as a flat JSON array.
fn json_ints(o: &mut String, items: impl IntoIterator<Item = i64>) {
    o.push('[');
    let mut first = true;
    for v in items {
        if !first {
            o.push(',');
        }
        first = false;
        let _ = write!(o, "{v}");
    }
    o.push(']');
}

/// A message's outcome as a number: 0 delivered, 1 in flight, 2 + the reason if dropped;
/// plus 8 for a duplicate's second copy.
fn outcome_code(outcome: Outcome, duplicate: bool) -> i64 {
    let base = match outcome {
        Outcome::Delivered => 0,
        Outcome::InFlight => 1,
        Outcome::Dropped(DropReason::Lost) => 2,
        Outcome::Dropped(DropReason::Partitioned) => 3,
        Outcome::Dropped(DropReason::Down) => 4,
        Outcome::Dropped(DropReason::Paused) => 5,
    };
    base + if duplicate { 8 } else { 0 }
}

/// The chart as the page's script reads it (see `assets/report.js`).
fn data_json(o: &mut String, chart: &Chart, violation: Option<&Violation>) {
    let _ = write!(
        o,
        "{{\"axis\":\"{}\",\"start\":{},\"end\":{},\"layout\":{{\"gutter\":{},\"right\":{},\"axis\":{},\"leaderRow\":{},\"lane\":{},\"gap\":{},\"dropAt\":{}}}",
        match chart.axis {
            Axis::Micros => "us",
            Axis::Steps => "step",
        },
        chart.start,
        chart.end,
        layout::GUTTER,
        layout::RIGHT,
        layout::AXIS,
        layout::LEADER_ROW,
        layout::LANE,
        layout::GAP,
        layout::DROP_AT
    );
    o.push_str(",\"lanes\":");
    json_strs(o, chart.lanes.iter().map(String::as_str));
    o.push_str(",\"colors\":");
    let colors: Vec<String> = (0..chart.lanes.len()).map(color).collect();
    json_strs(o, colors.iter().map(String::as_str));
    o.push_str(",\"kinds\":");
    json_strs(o, chart.kinds.iter().map(String::as_str));
    o.push_str(",\"texts\":");
    json_strs(o, chart.texts.iter().map(String::as_str));
    o.push_str(",\"marks\":");
    json_strs(o, MarkKind::ALL.iter().map(|k| k.name()));
    for (key, list) in [("m", &chart.messages), ("o", &chart.orphans)] {
        let _ = write!(o, ",\"{key}\":");
        json_ints(
            o,
            list.iter().flat_map(|m| {
                [
                    m.sent as i64,
                    m.end as i64,
                    m.from as i64,
                    m.to as i64,
                    m.kind as i64,
                    m.text as i64,
                    outcome_code(m.outcome, m.duplicate),
                ]
            }),
        );
    }
    o.push_str(",\"mk\":");
    json_ints(
        o,
        chart.marks.iter().flat_map(|m| {
            [
                m.at as i64,
                m.lane as i64,
                m.kind.index() as i64,
                m.text.map_or(-1, |t| t as i64),
            ]
        }),
    );
    o.push_str(",\"st\":");
    json_ints(
        o,
        chart.states.iter().flat_map(|s| {
            [
                s.lane as i64,
                s.from as i64,
                s.to as i64,
                match s.state {
                    crate::chart::LaneState::Down => 0,
                    crate::chart::LaneState::Paused => 1,
                },
            ]
        }),
    );
    o.push_str(",\"b\":");
    json_ints(
        o,
        chart.beliefs.iter().flat_map(|b| {
            [
                b.lane as i64,
                b.from as i64,
                b.to as i64,
                role_index(b.role) as i64,
                b.leader.map_or(-1, |l| l as i64),
                b.status as i64,
                b.group as i64,
            ]
        }),
    );
    o.push_str(",\"ld\":");
    json_ints(
        o,
        chart
            .leading
            .iter()
            .flat_map(|l| [l.lane as i64, l.from as i64, l.to as i64]),
    );
    o.push_str(",\"cf\":[");
    for (i, c) in chart.conflicts.iter().enumerate() {
        if i > 0 {
            o.push(',');
        }
        let _ = write!(o, "[{},{},", c.from, c.to);
        json_ints(o, c.lanes.iter().map(|&l| l as i64));
        o.push(']');
    }
    o.push_str("],\"p\":[");
    for (i, p) in chart.partitions.iter().enumerate() {
        if i > 0 {
            o.push(',');
        }
        let _ = write!(o, "[{},{},", p.from, p.to);
        json_ints(o, p.group_of.iter().map(|&g| g as i64));
        o.push(',');
        let groups: Vec<String> = p
            .groups
            .iter()
            .map(|g| {
                let names: Vec<&str> = g.iter().map(|&l| chart.lanes[l].as_str()).collect();
                format!("{{{}}}", names.join(","))
            })
            .collect();
        json_str(o, &groups.join(" "));
        o.push(']');
    }
    o.push_str("],\"bl\":");
    json_ints(
        o,
        chart
            .blocks
            .iter()
            .flat_map(|b| [b.a as i64, b.b as i64, b.from as i64, b.to as i64]),
    );
    o.push_str(",\"violation\":");
    match violation {
        Some(v) => {
            let _ = write!(o, "{{\"at\":{},\"what\":", v.at);
            json_str(o, &v.what);
            let _ = write!(o, ",\"expected\":{}}}", v.expected);
        }
        None => o.push_str("null"),
    }
    o.push('}');
}
