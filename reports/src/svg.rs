//! The whole chart as one static SVG: time runs left to right, a lane per node, the
//! leaders above. The HTML report draws the same elements with the same classes, but only
//! for the time in view; this one draws everything, so it suits small runs (and tests).
//!
//! Classes: `lane` (with `data-node`), `msg` and one of `delivered`, `dropped`, `inflight`,
//! plus `duplicate` for a duplicated message's second copy (with `data-kind`); `orphan` for
//! a delivery or drop whose send is not in the trace; `mark` and its kind (`crash`,
//! `restart`, `pause`...); `belief`, `leading`, `conflict`, `partition`, `blocked`, `down`,
//! `paused`.

use crate::chart::{Axis, Chart, LaneState, MarkKind, Message, Outcome};
use std::fmt::Write;

/// Lane colours, also a leader's colour on the bands of the nodes that follow it.
const PALETTE: [&str; 12] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#393b79", "#ad494a",
];

/// The colour of a lane.
pub fn color(lane: usize) -> String {
    match PALETTE.get(lane) {
        Some(c) => c.to_string(),
        None => format!("hsl({}, 60%, 45%)", (lane * 137) % 360),
    }
}

/// Where things go, in pixels; the page's script uses the same numbers.
pub mod layout {
    pub const GUTTER: f64 = 120.0;
    pub const RIGHT: f64 = 24.0;
    pub const AXIS: f64 = 26.0;
    pub const LEADER_ROW: f64 = 10.0;
    pub const LANE: f64 = 48.0;
    /// The gap between the leader strip and the first lane.
    pub const GAP: f64 = 18.0;
    /// How far along its way a dropped message's arrow ends (short of the lane).
    pub const DROP_AT: f64 = 0.75;
}

/// Escapes text for XML.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A time on the chart's axis as text: `1.5s`, or `step 4`.
pub fn at_text(axis: Axis, t: u64) -> String {
    match axis {
        Axis::Micros => format!("{}", conclave_algorithms::Duration(t)),
        Axis::Steps => format!("step {t}"),
    }
}

/// The lanes that lead at some time, in lane order: the rows of the leader strip.
pub fn leader_rows(chart: &Chart) -> Vec<usize> {
    let mut rows: Vec<usize> = chart.leading.iter().map(|l| l.lane).collect();
    rows.sort_unstable();
    rows.dedup();
    rows
}

/// The tooltip of a message.
pub fn message_title(chart: &Chart, m: &Message) -> String {
    let what = match m.outcome {
        Outcome::Delivered => format!("delivered at {}", at_text(chart.axis, m.end)),
        Outcome::Dropped(r) => format!("dropped at {}: {}", at_text(chart.axis, m.end), r.as_str()),
        Outcome::InFlight => "still in flight at the end".into(),
    };
    format!(
        "{} → {}: {}\nsent at {}, {what}{}",
        chart.lanes[m.from],
        chart.lanes[m.to],
        chart.texts[m.text],
        at_text(chart.axis, m.sent),
        if m.duplicate { " (second copy)" } else { "" }
    )
}

/// The SVG, `width` pixels wide.
pub fn svg(chart: &Chart, width: f64) -> String {
    use layout::*;
    let rows = leader_rows(chart);
    let strip_top = AXIS + 4.0;
    let strip_h = rows.len().max(1) as f64 * LEADER_ROW + 4.0;
    let lanes_top = strip_top + strip_h + GAP;
    let height = lanes_top + chart.lanes.len() as f64 * LANE + 8.0;
    let span = (chart.end.saturating_sub(chart.start)).max(1) as f64;
    let scale = (width - GUTTER - RIGHT).max(10.0) / span;
    let x = |t: u64| GUTTER + (t.saturating_sub(chart.start)) as f64 * scale;
    let y = |lane: usize| lanes_top + lane as f64 * LANE + LANE / 2.0;
    let mut o = String::with_capacity(4096 + chart.messages.len() * 300);
    let _ = write!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">"#
    );
    o.push_str(r##"<defs><marker id="ah" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" fill="context-stroke"/></marker></defs>"##);
    // The axis: about ten ticks.
    o.push_str(r#"<g class="axis">"#);
    let step = nice_step(span / 10.0);
    let mut t = (chart.start as f64 / step).ceil() * step;
    while t <= chart.end as f64 {
        let tx = x(t as u64);
        let _ = write!(
            o,
            r#"<line x1="{tx:.1}" y1="{AXIS}" x2="{tx:.1}" y2="{height}" class="tick"/><text x="{tx:.1}" y="16" text-anchor="middle">{}</text>"#,
            esc(&at_text(chart.axis, t as u64))
        );
        t += step;
    }
    o.push_str("</g>");
    // The leader strip.
    o.push_str(r#"<g class="leaders">"#);
    let _ = write!(
        o,
        r#"<text x="4" y="{:.1}" class="strip-name">leader</text>"#,
        strip_top + 9.0
    );
    for c in &chart.conflicts {
        let names: Vec<&str> = c.lanes.iter().map(|&l| chart.lanes[l].as_str()).collect();
        let _ = write!(
            o,
            r#"<rect class="conflict" x="{:.1}" y="{strip_top}" width="{:.1}" height="{strip_h}"><title>{} lead at once, {} to {}</title></rect>"#,
            x(c.from),
            (x(c.to) - x(c.from)).max(1.0),
            esc(&names.join(" and ")),
            esc(&at_text(chart.axis, c.from)),
            esc(&at_text(chart.axis, c.to))
        );
    }
    for l in &chart.leading {
        let row = rows.iter().position(|&r| r == l.lane).unwrap_or(0);
        let _ = write!(
            o,
            r#"<rect class="leading" data-node="{}" x="{:.1}" y="{:.1}" width="{:.1}" height="{}" fill="{}"><title>{} leads, {} to {}</title></rect>"#,
            esc(&chart.lanes[l.lane]),
            x(l.from),
            strip_top + 2.0 + row as f64 * LEADER_ROW,
            (x(l.to) - x(l.from)).max(1.0),
            LEADER_ROW - 2.0,
            color(l.lane),
            esc(&chart.lanes[l.lane]),
            esc(&at_text(chart.axis, l.from)),
            esc(&at_text(chart.axis, l.to))
        );
    }
    o.push_str("</g>");
    // Partitions and blocked links, under everything else on the lanes.
    for p in &chart.partitions {
        let groups: Vec<String> = p
            .groups
            .iter()
            .map(|g| {
                let names: Vec<&str> = g.iter().map(|&l| chart.lanes[l].as_str()).collect();
                format!("{{{}}}", names.join(","))
            })
            .collect();
        for lane in 0..chart.lanes.len() {
            let g = p.group_of.get(lane).copied().unwrap_or(0);
            let _ = write!(
                o,
                r#"<rect class="partition g{}" x="{:.1}" y="{:.1}" width="{:.1}" height="{LANE}"><title>partition {}, {} to {}</title></rect>"#,
                g % 4,
                x(p.from),
                y(lane) - LANE / 2.0,
                (x(p.to) - x(p.from)).max(1.0),
                esc(&groups.join(" ")),
                esc(&at_text(chart.axis, p.from)),
                esc(&at_text(chart.axis, p.to))
            );
        }
    }
    for b in &chart.blocks {
        for lane in [b.a, b.b] {
            let _ = write!(
                o,
                r#"<rect class="blocked" x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}"><title>link {}–{} blocked, {} to {}</title></rect>"#,
                x(b.from),
                y(lane) - LANE / 2.0 + 2.0,
                (x(b.to) - x(b.from)).max(1.0),
                LANE / 2.0 - 8.0,
                esc(&chart.lanes[b.a]),
                esc(&chart.lanes[b.b]),
                esc(&at_text(chart.axis, b.from)),
                esc(&at_text(chart.axis, b.to))
            );
        }
    }
    // Lanes, with the beliefs and down or paused times on them.
    for (i, name) in chart.lanes.iter().enumerate() {
        let _ = write!(
            o,
            r#"<g class="lane" data-node="{n}"><line class="lane-line" x1="{GUTTER}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="{c}"/><text class="lane-name" x="6" y="{:.1}" fill="{c}">{n}</text></g>"#,
            width - RIGHT,
            y(i) + 4.0,
            n = esc(name),
            yy = y(i),
            c = color(i),
        );
    }
    for b in &chart.beliefs {
        let leader = b
            .leader
            .map_or("none".to_string(), |l| chart.lanes[l].clone());
        let fill = b.leader.map_or("none".to_string(), color);
        let own = if b.leader == Some(b.lane) { " own" } else { "" };
        let _ = write!(
            o,
            r#"<rect class="belief{own}" data-node="{}" x="{:.1}" y="{:.1}" width="{:.1}" height="10" fill="{fill}"><title>{} {:?}, leader {}, status {} ({} to {})</title></rect>"#,
            esc(&chart.lanes[b.lane]),
            x(b.from),
            y(b.lane) - 5.0,
            (x(b.to) - x(b.from)).max(1.0),
            esc(&chart.lanes[b.lane]),
            b.role,
            esc(&leader),
            esc(&chart.texts[b.status]),
            esc(&at_text(chart.axis, b.from)),
            esc(&at_text(chart.axis, b.to))
        );
    }
    for s in &chart.states {
        let class = match s.state {
            LaneState::Down => "down",
            LaneState::Paused => "paused",
        };
        let _ = write!(
            o,
            r#"<rect class="{class}" x="{:.1}" y="{:.1}" width="{:.1}" height="14"><title>{} {class}, {} to {}</title></rect>"#,
            x(s.from),
            y(s.lane) - 7.0,
            (x(s.to) - x(s.from)).max(1.0),
            esc(&chart.lanes[s.lane]),
            esc(&at_text(chart.axis, s.from)),
            esc(&at_text(chart.axis, s.to))
        );
    }
    // Messages.
    for (m, orphan) in chart
        .messages
        .iter()
        .map(|m| (m, false))
        .chain(chart.orphans.iter().map(|m| (m, true)))
    {
        let (x0, y0) = (x(m.sent), y(m.from));
        let (mut x1, mut y1) = (x(m.end), y(m.to));
        let dropped = matches!(m.outcome, Outcome::Dropped(_));
        if dropped {
            y1 = y0 + (y1 - y0) * DROP_AT;
        }
        if m.outcome == Outcome::InFlight {
            x1 = x(chart.end);
        }
        let class = if orphan {
            format!("orphan {}", m.outcome.class())
        } else if m.duplicate {
            format!("msg {} duplicate", m.outcome.class())
        } else {
            format!("msg {}", m.outcome.class())
        };
        let kind = esc(&chart.kinds[m.kind]);
        let _ = write!(
            o,
            r#"<g class="{class}" data-kind="{kind}"><line x1="{x0:.1}" y1="{y0:.1}" x2="{x1:.1}" y2="{y1:.1}"{}/>"#,
            if dropped {
                ""
            } else {
                r#" marker-end="url(#ah)""#
            }
        );
        if dropped {
            let _ = write!(
                o,
                r#"<path class="cross" d="M{:.1},{:.1}l8,8m0,-8l-8,8"/>"#,
                x1 - 4.0,
                y1 - 4.0
            );
        }
        let _ = write!(
            o,
            r#"<text class="label" x="{:.1}" y="{:.1}">{kind}</text><title>{}</title></g>"#,
            (x0 + x1) / 2.0 + 3.0,
            (y0 + y1) / 2.0 - 2.0,
            esc(&message_title(chart, m))
        );
    }
    // Marks on the lanes.
    for mk in &chart.marks {
        if matches!(mk.kind, MarkKind::Timer) && chart.marks.len() > 5000 {
            continue;
        }
        let (mx, my) = (x(mk.at), y(mk.lane));
        let label = mk.text.map(|t| chart.texts[t].as_str()).unwrap_or("");
        let _ = write!(
            o,
            r#"<g class="mark {}" transform="translate({mx:.1},{my:.1})">{}<title>{} {} {label} at {}</title></g>"#,
            mk.kind.name(),
            mark_shape(mk.kind),
            esc(&chart.lanes[mk.lane]),
            mk.kind.name(),
            esc(&at_text(chart.axis, mk.at))
        );
    }
    o.push_str("</svg>");
    o
}

/// The shape of a lane mark, centred on (0, 0); the page's script draws the same.
pub fn mark_shape(kind: MarkKind) -> &'static str {
    match kind {
        MarkKind::Start => r#"<circle r="3"/>"#,
        MarkKind::Crash => r#"<path d="M-6,-6L6,6M6,-6L-6,6"/>"#,
        MarkKind::Restart => r#"<path d="M-4,-7L6,0L-4,7z"/>"#,
        MarkKind::Pause => r#"<path d="M-4,-7v14M3,-7v14"/>"#,
        MarkKind::Resume => r#"<path d="M-3,-6L4,0L-3,6"/>"#,
        MarkKind::Leave => r#"<path d="M-6,-6h12v12h-12z"/>"#,
        MarkKind::Timer => r#"<path d="M0,-4v8"/>"#,
        MarkKind::Suspect => r#"<path d="M0,-9l4,6h-8z"/>"#,
        MarkKind::Trust => r#"<path d="M0,9l4,-6h-8z"/>"#,
    }
}

/// A round tick step (1, 2 or 5 times a power of ten) near `raw`.
pub fn nice_step(raw: f64) -> f64 {
    let raw = raw.max(1.0);
    let p = 10f64.powf(raw.log10().floor());
    let f = raw / p;
    p * if f < 1.5 {
        1.0
    } else if f < 3.5 {
        2.0
    } else if f < 7.5 {
        5.0
    } else {
        10.0
    }
}
