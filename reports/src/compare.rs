//! Renders `conclave compare`: the tables (text and Markdown), one JSON object, and SVG plots
//! of messages per election and time to a stable leader against the cluster size.
//!
//! Everything here is a pure function of the comparisons: the same results give the same
//! bytes, so `reports/message_counts.md` and its plots can be checked by regenerating them.

use conclave_sim::compare::{Case, Cell, Comparison, Measured, Stat};
use serde::Serialize;
use std::fmt::Write;

/// What was compared, and how it was asked for.
pub struct Report<'a> {
    pub comparisons: &'a [Comparison],
    pub sizes: &'a [usize],
    pub seeds: &'a [u64],
    pub cases: &'a [Case],
    /// The command that makes this report (shown in the Markdown).
    pub command: String,
}

/// The two measures of every run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    Messages,
    Time,
}

impl Metric {
    pub const ALL: [Metric; 2] = [Metric::Messages, Metric::Time];

    fn title(self) -> &'static str {
        match self {
            Metric::Messages => "messages per election",
            Metric::Time => "time to stable leader",
        }
    }
    fn definition(self) -> &'static str {
        match self {
            Metric::Messages => {
                "election messages (not heartbeats, probes or checks) sent from the case's last fault (the start, for all-start) until the cluster settles for good"
            }
            Metric::Time => {
                "virtual time from the case's last fault (the start, for all-start) until the cluster settles for good (every component agrees on one running leader)"
            }
        }
    }
    fn file_stem(self) -> &'static str {
        match self {
            Metric::Messages => "messages",
            Metric::Time => "time",
        }
    }
    fn stat(self, m: &Measured) -> Option<Stat> {
        match self {
            Metric::Messages => m.messages,
            Metric::Time => m.time_to_stable_leader_us,
        }
    }
    fn value(self, v: f64) -> String {
        match self {
            Metric::Messages => count(v),
            Metric::Time => micros(v),
        }
    }
    fn range(self, s: &Stat) -> String {
        match self {
            Metric::Messages => format!("{}–{}", s.min, s.max),
            Metric::Time => format!("{}–{}", micros(s.min as f64), micros(s.max as f64)),
        }
    }
}

/// A count: whole when it is, else one decimal.
fn count(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round() as u64)
    } else {
        format!("{v:.1}")
    }
}

/// Virtual microseconds, to three significant figures or so: `3.01s`, `150ms`, `0.5ms`.
pub fn micros(us: f64) -> String {
    let trim = |s: String| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    };
    if us >= 10_000_000.0 {
        format!("{}s", trim(format!("{:.1}", us / 1e6)))
    } else if us >= 1_000_000.0 {
        format!("{}s", trim(format!("{:.2}", us / 1e6)))
    } else if us >= 10_000.0 {
        format!("{}ms", trim(format!("{:.0}", us / 1e3)))
    } else if us >= 1_000.0 {
        format!("{}ms", trim(format!("{:.1}", us / 1e3)))
    } else {
        format!("{}µs", trim(format!("{us:.0}")))
    }
}

/// A cell of a table: the mean, the range when the seeds differ, and marks.
fn cell_text(metric: Metric, cell: &Cell, seeds: usize) -> String {
    match cell {
        Cell::Cannot { .. } => "n/a".into(),
        Cell::Failed { .. } => "failed".into(),

        Cell::Measured(m) => {
            let mut s = match metric.stat(m) {
                None => "never".into(),
                Some(st) if st.min == st.max => metric.value(st.mean),
                Some(st) => format!("{} ({})", metric.value(st.mean), metric.range(&st)),
            };
            if (!m.never_settled.is_empty() && m.never_settled.len() < seeds)
                || !m.setup_failed.is_empty()
            {
                s.push('*');
            }
            if !m.premise_failed.is_empty() {
                s.push('‡');
            }
            s
        }
    }
}

/// The row label of a scenario: its algorithm and name.
fn label(c: &Comparison) -> String {
    format!("{} ({})", c.algorithm, c.scenario)
}

/// One table row: a label and a cell per size.
struct Row {
    case: Case,
    label: String,
    textbook: bool,
    cells: Vec<String>,
}

fn rows(r: &Report, metric: Metric) -> Vec<Row> {
    let mut out = Vec::new();
    for &case in r.cases {
        for c in r.comparisons {
            let Some(row) = c.cases.iter().find(|x| x.case == case) else {
                continue;
            };
            out.push(Row {
                case,
                label: label(c),
                textbook: false,
                cells: row
                    .cells
                    .iter()
                    .map(|(_, cell)| cell_text(metric, cell, r.seeds.len()))
                    .collect(),
            });
            if metric != Metric::Messages {
                continue;
            }
            let textbook: Vec<Option<String>> = row
                .cells
                .iter()
                .map(|(_, cell)| match cell {
                    Cell::Measured(m) => m.textbook.map(|t| t.messages.to_string()),
                    _ => None,
                })
                .collect();
            let formula = row.cells.iter().find_map(|(_, cell)| match cell {
                Cell::Measured(m) => m.textbook.map(|t| t.formula),
                _ => None,
            });
            if let Some(formula) = formula {
                out.push(Row {
                    case,
                    label: format!("{} textbook {formula}", c.algorithm),
                    textbook: true,
                    cells: textbook
                        .into_iter()
                        .map(|t| t.unwrap_or_else(|| "-".into()))
                        .collect(),
                });
            }
        }
    }
    out
}

fn seeds_text(seeds: &[u64]) -> String {
    let consecutive = seeds.windows(2).all(|w| w[1] == w[0] + 1);
    let plural = if seeds.len() == 1 { "" } else { "s" };
    match (seeds.first(), seeds.last()) {
        (Some(a), Some(b)) if consecutive && seeds.len() > 2 => {
            format!("{} seeds, {a} to {b}", seeds.len())
        }
        _ => format!("seed{plural} {}", list(seeds)),
    }
}

fn sizes_text(sizes: &[usize]) -> String {
    sizes
        .iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The notes under the tables: cases that cannot be made, runs that never settled or
/// missed the case's premise, and what the scaling did.
fn notes(r: &Report) -> Vec<String> {
    let mut out = Vec::new();
    for c in r.comparisons {
        for row in &c.cases {
            // Reasons with the sizes they apply to, in order.
            // Reasons with the sizes they apply to, and an example from the first of them.
            let mut reasons: Vec<(String, Vec<usize>, String)> = Vec::new();
            let mut add = |text: String, n: usize, example: String| match reasons
                .iter_mut()
                .find(|x| x.0 == text)
            {
                Some(x) => x.1.push(n),
                None => reasons.push((text, vec![n], example)),
            };
            for (n, cell) in &row.cells {
                match cell {
                    Cell::Cannot { reason } => add(format!("n/a: {reason}"), *n, String::new()),
                    Cell::Failed { reason } => add(format!("failed: {reason}"), *n, String::new()),
                    Cell::Measured(m) => {
                        if !m.never_settled.is_empty() {
                            let all = m.never_settled.len() == r.seeds.len();
                            let which = if all {
                                "never: no stable leader on any seed".to_string()
                            } else {
                                format!(
                                    "*: no stable leader on seed{} {}",
                                    if m.never_settled.len() == 1 { "" } else { "s" },
                                    list(&m.never_settled)
                                )
                            };
                            let first =
                                m.runs.iter().find(|r| r.time_to_stable_leader_us.is_none());
                            let leading = first.map_or(String::new(), |r| {
                                format!(
                                    "; at the end of seed {} with N = {n}: {}",
                                    r.seed,
                                    leading_text(&r.leading_at_end)
                                )
                            });
                            add(
                                format!(
                                    "{which} within {} of the last fault (or the start)",
                                    micros(c.cap_us as f64)
                                ),
                                *n,
                                leading,
                            );
                        }
                        for f in &m.setup_failed {
                            add(
                                format!("*: seed {} left out: {}", f.seed, f.reason),
                                *n,
                                String::new(),
                            );
                        }
                        if !m.premise_failed.is_empty() {
                            add(
                                format!(
                                    "‡: {} on seed{} {}",
                                    premise_text(row.case),
                                    if m.premise_failed.len() == 1 { "" } else { "s" },
                                    list(&m.premise_failed)
                                ),
                                *n,
                                String::new(),
                            );
                        }
                    }
                }
            }
            for (text, ns, example) in reasons {
                let at = if ns.len() == r.sizes.len() {
                    String::new()
                } else {
                    format!(" (N = {})", sizes_text(&ns))
                };
                out.push(format!(
                    "{}, {}{at}: {text}{example}",
                    label(c),
                    row.case.name()
                ));
            }
        }
    }
    out
}

/// Who leads at the end of a run, in words.
fn leading_text(nodes: &[String]) -> String {
    match nodes {
        [] => "no node leads".into(),
        [one] => format!("{one} leads"),
        [rest @ .., last] => format!("{} and {last} lead", rest.join(", ")),
    }
}

fn premise_text(case: Case) -> &'static str {
    match case {
        Case::CoordinatorCrashLowestDetects => "the lowest node was not alone to notice first",
        Case::AllNotice => "the nodes did not all notice at the same instant",
        _ => "the case's premise did not hold",
    }
}

fn list(seeds: &[u64]) -> String {
    seeds
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn scaling_notes(r: &Report) -> Vec<String> {
    r.comparisons
        .iter()
        .filter(|c| !c.scaling.is_empty())
        .map(|c| format!("{}: {}", label(c), c.scaling.join("; ")))
        .collect()
}

/// The tables as plain text.
pub fn text(r: &Report) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "conclave compare: {} scenario{}, N = {}, {}",
        r.comparisons.len(),
        if r.comparisons.len() == 1 { "" } else { "s" },
        sizes_text(r.sizes),
        seeds_text(r.seeds)
    );
    for metric in Metric::ALL {
        let rows = rows(r, metric);
        let width = rows
            .iter()
            .map(|x| x.label.chars().count() + if x.textbook { 4 } else { 2 })
            .chain(r.cases.iter().map(|c| c.name().len()))
            .max()
            .unwrap_or(10);
        let widths: Vec<usize> = (0..r.sizes.len())
            .map(|i| {
                rows.iter()
                    .map(|x| x.cells[i].chars().count())
                    .chain([format!("N={}", r.sizes[i]).len()])
                    .max()
                    .unwrap_or(4)
            })
            .collect();
        let _ = writeln!(o);
        let _ = writeln!(o, "{}: {}", metric.title(), metric.definition());
        let _ = writeln!(
            o,
            "mean over the seeds that settled, (least–most) when they differ"
        );
        let mut header = format!("{:width$}", "case / algorithm (scenario)");
        for (i, n) in r.sizes.iter().enumerate() {
            let _ = write!(header, "  {:>w$}", format!("N={n}"), w = widths[i]);
        }
        let _ = writeln!(o, "{}", header.trim_end());
        let mut last_case = None;
        for row in &rows {
            if last_case != Some(row.case) {
                let _ = writeln!(o, "{}", row.case.name());
                last_case = Some(row.case);
            }
            let indent = if row.textbook { "    " } else { "  " };
            let mut line = format!("{indent}{:w$}", row.label, w = width - indent.len());
            for (i, cell) in row.cells.iter().enumerate() {
                let pad = widths[i] + cell.len() - cell.chars().count();
                let _ = write!(line, "  {cell:>pad$}");
            }
            let _ = writeln!(o, "{}", line.trim_end());
        }
    }
    let notes = notes(r);
    if !notes.is_empty() {
        let _ = writeln!(o);
        let _ = writeln!(o, "notes:");
        for n in notes {
            let _ = writeln!(o, "  {n}");
        }
    }
    let scaling = scaling_notes(r);
    if !scaling.is_empty() {
        let _ = writeln!(o);
        let _ = writeln!(o, "scaling (besides names n1..nN and ids 1..N):");
        for n in scaling {
            let _ = writeln!(o, "  {n}");
        }
    }
    o
}

/// The plot files a report writes, as (file name, metric, case).
pub fn plot_files(r: &Report) -> Vec<(String, Metric, Case)> {
    let mut out = Vec::new();
    for metric in Metric::ALL {
        for &case in r.cases {
            out.push((
                format!("{}-{}.svg", metric.file_stem(), case.name()),
                metric,
                case,
            ));
        }
    }
    out
}

/// The tables as Markdown, with the plots (under `plots_dir`, relative to the file).
pub fn markdown(r: &Report, plots_dir: &str) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "# Election messages and time to a stable leader by cluster size"
    );
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "Made by `{}` (N = {}, {}). Do not edit: regenerate it with that command and `--report DIR`, or with `UPDATE_MESSAGE_COUNTS=1 cargo test --test message_counts_report`; the test fails when this file is not what the code makes.",
        r.command,
        sizes_text(r.sizes),
        seeds_text(r.seeds)
    );
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "Each scenario's algorithm and parameters run on clusters of N nodes `n1`..`nN` with ids 1..N, under each case (`conclave_sim::compare` documents them):"
    );
    let _ = writeln!(o);
    for &case in r.cases {
        let _ = writeln!(o, "- `{}`: {}.", case.name(), case.description());
    }
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "A fault comes once the cluster has been settled for the algorithm's quiet period (the sum of its durations). Cells: the mean over the seeds that settled, (least–most) when the seeds differ; `n/a`: the case cannot be made for the algorithm; `never`: no stable leader; `*`: some seeds never settled, or could not be set up; `‡`: the case's premise (who noticed first) did not hold on some seed. The notes say which."
    );
    for metric in Metric::ALL {
        let _ = writeln!(o);
        let mut title = metric.title().to_string();
        if let Some(first) = title.get_mut(0..1) {
            first.make_ascii_uppercase();
        }
        let _ = writeln!(o, "## {title}");
        let _ = writeln!(o);
        let _ = writeln!(o, "{}.", capitalized(metric.definition()));
        let _ = writeln!(o);
        let mut header = "| case | algorithm (scenario) |".to_string();
        let mut rule = "|---|---|".to_string();
        for n in r.sizes {
            let _ = write!(header, " N={n} |");
            rule.push_str("---:|");
        }
        let _ = writeln!(o, "{header}");
        let _ = writeln!(o, "{rule}");
        let mut last_case = None;
        for row in rows(r, metric) {
            let case = if last_case == Some(row.case) {
                String::new()
            } else {
                last_case = Some(row.case);
                format!("`{}`", row.case.name())
            };
            let label = if row.textbook {
                format!("*{}*", row.label)
            } else {
                row.label.clone()
            };
            let mut line = format!("| {case} | {label} |");
            for cell in &row.cells {
                let cell = if row.textbook {
                    format!("*{cell}*")
                } else {
                    cell.clone()
                };
                let _ = write!(line, " {cell} |");
            }
            let _ = writeln!(o, "{line}");
        }
    }
    let notes = notes(r);
    if !notes.is_empty() {
        let _ = writeln!(o);
        let _ = writeln!(o, "## Notes");
        let _ = writeln!(o);
        for n in notes {
            let _ = writeln!(o, "- {n}");
        }
    }
    let scaling = scaling_notes(r);
    if !scaling.is_empty() {
        let _ = writeln!(o);
        let _ = writeln!(o, "Scaling, besides names `n1`..`nN` and ids 1..N:");
        let _ = writeln!(o);
        for n in scaling {
            let _ = writeln!(o, "- {n}");
        }
    }
    let _ = writeln!(o);
    let _ = writeln!(o, "## Plots");
    for metric in Metric::ALL {
        let _ = writeln!(o);
        for (file, m, case) in plot_files(r) {
            if m == metric {
                let _ = writeln!(
                    o,
                    "![{}, {}]({plots_dir}/{file})",
                    metric.title(),
                    case.name()
                );
            }
        }
    }
    o
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// The whole comparison as one JSON object.
pub fn json(r: &Report) -> String {
    #[derive(Serialize)]
    struct CaseInfo {
        name: &'static str,
        description: &'static str,
    }
    #[derive(Serialize)]
    struct Json<'a> {
        sizes: &'a [usize],
        seeds: &'a [u64],
        cases: Vec<CaseInfo>,
        messages: &'static str,
        time_to_stable_leader: &'static str,
        scenarios: &'a [Comparison],
    }
    let j = Json {
        sizes: r.sizes,
        seeds: r.seeds,
        cases: r
            .cases
            .iter()
            .map(|c| CaseInfo {
                name: c.name(),
                description: c.description(),
            })
            .collect(),
        messages: Metric::Messages.definition(),
        time_to_stable_leader: Metric::Time.definition(),
        scenarios: r.comparisons,
    };
    serde_json::to_string(&j).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

/// Line colours, one per scenario (then round again).
const COLOURS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2",
];

/// An axis: log or linear, from `lo` to `hi` in data units.
struct Axis {
    log: bool,
    lo: f64,
    hi: f64,
}

impl Axis {
    fn new(values: &[f64], log_if_wide: bool) -> Axis {
        let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = values.iter().copied().fold(0.0, f64::max);
        if values.is_empty() || hi <= 0.0 {
            return Axis {
                log: false,
                lo: 0.0,
                hi: 1.0,
            };
        }
        if log_if_wide && lo > 0.0 && hi / lo >= 10.0 {
            Axis {
                log: true,
                lo: 10f64.powf(lo.log10().floor()),
                hi: 10f64.powf(hi.log10().ceil()),
            }
        } else {
            Axis {
                log: false,
                lo: 0.0,
                hi: nice_ceiling(hi),
            }
        }
    }
    /// Where `v` falls, from 0 (lo) to 1 (hi).
    fn at(&self, v: f64) -> f64 {
        if self.log {
            (v.log10() - self.lo.log10()) / (self.hi.log10() - self.lo.log10())
        } else {
            (v - self.lo) / (self.hi - self.lo)
        }
    }
    fn ticks(&self) -> Vec<f64> {
        if self.log {
            let (a, b) = (
                self.lo.log10().round() as i32,
                self.hi.log10().round() as i32,
            );
            (a..=b).map(|e| 10f64.powi(e)).collect()
        } else {
            let step = self.hi / 5.0;
            (0..=5).map(|i| step * i as f64).collect()
        }
    }
}

/// 1, 2 or 5 times a power of ten, at least `v`.
fn nice_ceiling(v: f64) -> f64 {
    let p = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if m * p >= v {
            return m * p;
        }
    }
    10.0 * p
}

/// A line of a plot: a scenario's values (or a textbook figure), and why it has none.
struct Line {
    label: String,
    colour: &'static str,
    dashed: bool,
    /// (N, value).
    points: Vec<(usize, f64)>,
    none: &'static str,
}

/// A plot of one metric for one case: a line per scenario (and a dashed one per textbook
/// figure), against N on a log₂ axis; the y axis is logarithmic when the values span a
/// factor of ten or more.
pub fn svg(r: &Report, metric: Metric, case: Case) -> String {
    let (w, h) = (740.0, 420.0);
    let (left, right, top, bottom) = (70.0, 250.0, 40.0, 50.0);
    let (pw, ph) = (w - left - right, h - top - bottom);
    let mut lines: Vec<Line> = Vec::new();
    for (k, c) in r.comparisons.iter().enumerate() {
        let colour = COLOURS[k % COLOURS.len()];
        let Some(row) = c.cases.iter().find(|x| x.case == case) else {
            continue;
        };
        let points: Vec<(usize, f64)> = row
            .cells
            .iter()
            .filter_map(|(n, cell)| match cell {
                Cell::Measured(m) => metric.stat(m).map(|s| (*n, s.mean)),
                _ => None,
            })
            .collect();
        let none = if row
            .cells
            .iter()
            .all(|(_, x)| matches!(x, Cell::Cannot { .. }))
        {
            "n/a"
        } else if row
            .cells
            .iter()
            .all(|(_, x)| matches!(x, Cell::Measured(_)))
        {
            "never"
        } else {
            "none"
        };
        lines.push(Line {
            label: label(c),
            colour,
            dashed: false,
            points,
            none,
        });
        if metric == Metric::Messages {
            let textbook: Vec<(usize, f64)> = row
                .cells
                .iter()
                .filter_map(|(n, cell)| match cell {
                    Cell::Measured(m) => m.textbook.map(|t| (*n, t.messages as f64)),
                    _ => None,
                })
                .collect();
            if let Some(formula) = row.cells.iter().find_map(|(_, cell)| match cell {
                Cell::Measured(m) => m.textbook.map(|t| t.formula),
                _ => None,
            }) {
                lines.push(Line {
                    label: format!("{} textbook {formula}", c.algorithm),
                    colour: "black",
                    dashed: true,
                    points: textbook,
                    none: "none",
                });
            }
        }
    }
    // Values in plot units: messages as counts, times in seconds.
    let scale = |v: f64| match metric {
        Metric::Messages => v,
        Metric::Time => v / 1e6,
    };
    let values: Vec<f64> = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|&(_, v)| scale(v)))
        .collect();
    let y = Axis::new(&values, true);
    let (nmin, nmax) = (
        *r.sizes.iter().min().unwrap_or(&1) as f64,
        *r.sizes.iter().max().unwrap_or(&2) as f64,
    );
    let x_at = |n: f64| {
        if nmax > nmin {
            left + pw * (n.log2() - nmin.log2()) / (nmax.log2() - nmin.log2())
        } else {
            left + pw / 2.0
        }
    };
    let y_at = |v: f64| top + ph * (1.0 - y.at(v));
    let mut o = String::new();
    let _ = writeln!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(o, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let unit = match metric {
        Metric::Messages => "election messages",
        Metric::Time => "seconds of virtual time",
    };
    let _ = writeln!(
        o,
        r#"<text x="{left}" y="22" font-size="15">{}: {}</text>"#,
        metric.title(),
        case.name()
    );
    // Grid and y ticks.
    for t in y.ticks() {
        if y.log && t <= 0.0 {
            continue;
        }
        let py = y_at(t);
        let _ = writeln!(
            o,
            r##"<line x1="{left}" y1="{py:.1}" x2="{:.1}" y2="{py:.1}" stroke="#ddd"/>"##,
            left + pw
        );
        let _ = writeln!(
            o,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            left - 6.0,
            py + 4.0,
            tick_label(t)
        );
    }
    for &n in r.sizes {
        let px = x_at(n as f64);
        let _ = writeln!(
            o,
            r##"<line x1="{px:.1}" y1="{top}" x2="{px:.1}" y2="{:.1}" stroke="#eee"/>"##,
            top + ph
        );
        let _ = writeln!(
            o,
            r#"<text x="{px:.1}" y="{:.1}" text-anchor="middle">{n}</text>"#,
            top + ph + 18.0
        );
    }
    let _ = writeln!(
        o,
        r#"<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="black"/>"#
    );
    let _ = writeln!(
        o,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">N (nodes, log scale)</text>"#,
        left + pw / 2.0,
        h - 12.0
    );
    let _ = writeln!(
        o,
        r#"<text transform="translate(16 {:.1}) rotate(-90)" text-anchor="middle">{unit}{}</text>"#,
        top + ph / 2.0,
        if y.log { " (log scale)" } else { "" }
    );
    for Line {
        label,
        colour,
        dashed,
        points,
        ..
    } in &lines
    {
        let (dash, width) = if *dashed {
            (r#" stroke-dasharray="5 4""#, 1.5)
        } else {
            ("", 2.0)
        };
        let pts: Vec<String> = points
            .iter()
            .filter(|&&(_, v)| !y.log || scale(v) > 0.0)
            .map(|&(n, v)| format!("{:.1},{:.1}", x_at(n as f64), y_at(scale(v))))
            .collect();
        if pts.len() > 1 {
            let _ = writeln!(
                o,
                r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="{width}"{dash}/>"#,
                pts.join(" ")
            );
        }
        if !dashed {
            for p in &pts {
                let (px, py) = p.split_once(',').unwrap_or(("0", "0"));
                let _ = writeln!(
                    o,
                    r#"<circle cx="{px}" cy="{py}" r="3" fill="{colour}"><title>{}</title></circle>"#,
                    escape(label)
                );
            }
        }
    }
    // Legend: every scenario, and what has no point.
    let lx = left + pw + 16.0;
    for (
        k,
        Line {
            label,
            colour,
            dashed,
            points,
            none,
        },
    ) in lines.iter().enumerate()
    {
        let ly = top + 10.0 + 20.0 * k as f64;
        let dash = if *dashed {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        let _ = writeln!(
            o,
            r#"<line x1="{lx:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{colour}" stroke-width="2"{dash}/>"#,
            lx + 20.0
        );
        let missing = if points.is_empty() {
            format!(" ({none})")
        } else {
            String::new()
        };
        let _ = writeln!(
            o,
            r#"<text x="{:.1}" y="{:.1}" font-size="11">{}{missing}</text>"#,
            lx + 26.0,
            ly + 4.0,
            escape(label)
        );
    }
    let _ = writeln!(o, "</svg>");
    o
}

fn tick_label(v: f64) -> String {
    if v >= 1.0 && (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round() as u64)
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
