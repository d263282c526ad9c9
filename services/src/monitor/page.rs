//! The monitor's HTML (maud): the `/status` page of seed 002 (the nodes' table, a timeline
//! of leadership changes and the "Block Connections" form) and the `/log` page.
//!
//! ```
//! use conclave_services::monitor::page::clock;
//! assert_eq!(clock(86_400_000_000 + 3_723_004_000), "1970-01-02 01:02:03.004 UTC");
//! ```

use super::store::{BlockChange, Pair, RoleChange, StoredReport};
use maud::{html, Markup, PreEscaped, DOCTYPE};
use std::collections::BTreeSet;

/// A node's row in the table: its last report, and whether it is stale.
pub struct Row<'a> {
    pub report: &'a StoredReport,
    pub stale: bool,
}

/// What the status page shows.
pub struct Status<'a> {
    pub rows: Vec<Row<'a>>,
    /// The latest role changes, oldest first.
    pub roles: &'a [RoleChange],
    pub blocks: &'a BTreeSet<Pair>,
    pub csrf: &'a str,
    pub stale_after_ms: u128,
}

const STYLE: &str = "body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}\
td,th{border:1px solid #bbb;padding:.2em .6em;text-align:left}tr.stale{color:#999;\
background:#f4f4f4}tr.stale td.at::after{content:' (stale)'}li.Leader{font-weight:bold}\
#pairs label{display:block}";

/// `at_us` (microseconds since the Unix epoch) as `YYYY-MM-DD HH:MM:SS.mmm UTC`, as the
/// page's script writes it too.
pub fn clock(at_us: u64) -> String {
    let secs = at_us / 1_000_000;
    let ms = (at_us / 1000) % 1000;
    let (h, m, s) = (secs / 3600 % 24, secs / 60 % 60, secs % 60);
    let (y, mo, d) = civil(secs / 86_400);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{m:02}:{s:02}.{ms:03} UTC")
}

/// The proleptic Gregorian date of a day since 1970-01-01 (Howard Hinnant's algorithm).
fn civil(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

fn layout(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { (title) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                nav { a href="/status" { "status" } " · " a href="/log" { "log" } " · "
                      a href="/api/export" { "export (JSON for conclave report)" } }
                (body)
            }
        }
    }
}

fn node_row(row: &Row) -> Markup {
    let r = &row.report.report;
    html! {
        tr.stale[row.stale] data-node=(r.node) {
            td { (r.node) }
            td { (r.address) }
            td { (r.coordinator.as_deref().unwrap_or("-")) }
            td { (r.group) }
            td { (r.status) }
            td { (super::store::role_name(r.role)) }
            td.at { (clock(row.report.at_us)) }
        }
    }
}

fn role_item(c: &RoleChange) -> Markup {
    html! {
        li class=(super::store::role_name(c.role)) {
            (clock(c.at_us)) " " (c.node) ": " (super::store::role_name(c.role))
            ", coordinator " (c.coordinator.as_deref().unwrap_or("-"))
            ", group " (c.group) ", " (c.status)
        }
    }
}

/// Every pair of the nodes' names, in order.
fn pairs(rows: &[Row]) -> Vec<Pair> {
    let names: Vec<&str> = rows.iter().map(|r| r.report.report.node.as_str()).collect();
    let mut out = Vec::new();
    for (i, a) in names.iter().enumerate() {
        for b in &names[i + 1..] {
            out.push((a.to_string(), b.to_string()));
        }
    }
    out
}

/// `GET /status`.
pub fn status(s: &Status) -> Markup {
    let body = html! {
        h1 { "Nodes" }
        table #nodes {
            thead { tr { th { "node" } th { "address" } th { "coordinator" } th { "group" }
                         th { "status" } th { "role" } th { "last report" } } }
            tbody { @for row in &s.rows { (node_row(row)) } }
        }
        p { small { "A node is stale after " (s.stale_after_ms) " ms without a report. "
                    span #live { "connecting..." } } }
        h2 { "Leadership changes" }
        ol #timeline { @for c in s.roles { (role_item(c)) } }
        h2 { "Block Connections" }
        form #blocks method="post" action="/status/blocks" {
            input type="hidden" name="csrf" value=(s.csrf);
            div #pairs {
                @for (a, b) in pairs(&s.rows) {
                    @let value = format!("{a} {b}");
                    label { input type="checkbox" name="pair" value=(value)
                                  checked[s.blocks.contains(&(a.clone(), b.clone()))];
                            " (" (a) ", " (b) ")" }
                }
            }
            button type="submit" name="action" value="block" { "Block" }
            " "
            button type="submit" name="action" value="reset" { "Reset" }
        }
        p { "Blocked now: " span #blocked { (blocked_text(s.blocks)) } }
        script { (PreEscaped(SCRIPT)) }
    };
    layout("conclave monitor: status", body)
}

fn blocked_text(blocks: &BTreeSet<Pair>) -> String {
    if blocks.is_empty() {
        return "none".into();
    }
    let pairs: Vec<String> = blocks.iter().map(|(a, b)| format!("{a}-{b}")).collect();
    pairs.join(", ")
}

/// Follows `/api/events` and redraws the table, the timeline and the blocked list; adds a
/// checkbox for a pair of new nodes, and leaves the ones the user may be ticking alone.
const SCRIPT: &str = r#"
const clock = (us) => new Date(Math.floor(us / 1000)).toISOString().replace('T', ' ').replace('Z', ' UTC');
const text = (tag, s, cls) => { const e = document.createElement(tag); e.textContent = s; if (cls) e.className = cls; return e; };
function draw(state) {
  const body = document.querySelector('#nodes tbody');
  body.replaceChildren(...state.nodes.map((n) => {
    const tr = document.createElement('tr');
    tr.dataset.node = n.node;
    if (n.stale) tr.className = 'stale';
    for (const v of [n.node, n.address, n.coordinator ?? '-', n.group, n.status, n.role]) tr.append(text('td', String(v)));
    tr.append(text('td', clock(n.at_us), 'at'));
    return tr;
  }));
  document.getElementById('timeline').replaceChildren(...state.roles.map((c) =>
    text('li', `${clock(c.at_us)} ${c.node}: ${c.role}, coordinator ${c.coordinator ?? '-'}, group ${c.group}, ${c.status}`, c.role)));
  const names = state.nodes.map((n) => n.node);
  const box = document.getElementById('pairs');
  const have = new Set([...box.querySelectorAll('input')].map((i) => i.value));
  for (let i = 0; i < names.length; i++) for (let j = i + 1; j < names.length; j++) {
    const value = `${names[i]} ${names[j]}`;
    if (have.has(value)) continue;
    const label = document.createElement('label');
    const input = document.createElement('input');
    Object.assign(input, { type: 'checkbox', name: 'pair', value });
    label.append(input, ` (${names[i]}, ${names[j]})`);
    box.append(label);
  }
  document.getElementById('blocked').textContent =
    state.blocks.length ? state.blocks.map(([a, b]) => `${a}-${b}`).join(', ') : 'none';
  document.body.dataset.updates = String(Number(document.body.dataset.updates || 0) + 1);
}
const events = new EventSource('/api/events');
events.addEventListener('state', (e) => { draw(JSON.parse(e.data)); document.getElementById('live').textContent = 'live'; });
events.onerror = () => { document.getElementById('live').textContent = 'disconnected, retrying...'; };
"#;

/// `GET /log`: the stored log.
pub fn log(
    roles: &[RoleChange],
    history: &[BlockChange],
    reports: &[StoredReport],
    reports_total_shown: u64,
) -> Markup {
    let body = html! {
        h1 { "Log" }
        h2 { "Role changes" }
        table {
            tr { th { "time" } th { "node" } th { "role" } th { "coordinator" } th { "group" } th { "status" } }
            @for c in roles {
                tr { td { (clock(c.at_us)) } td { (c.node) } td { (super::store::role_name(c.role)) }
                     td { (c.coordinator.as_deref().unwrap_or("-")) } td { (c.group) } td { (c.status) } }
            }
        }
        h2 { "Block history" }
        table {
            tr { th { "time" } th { "by" } th { "blocked after it" } }
            @for b in history {
                @let pairs: BTreeSet<Pair> = b.pairs.iter().cloned().collect();
                tr { td { (clock(b.at_us)) } td { (b.source) } td { (blocked_text(&pairs)) } }
            }
        }
        h2 { "Reports (the last " (reports_total_shown) ")" }
        table {
            tr { th { "time" } th { "node" } th { "address" } th { "coordinator" } th { "group" }
                 th { "status" } th { "role" } }
            @for s in reports {
                @let r = &s.report;
                tr { td { (clock(s.at_us)) } td { (r.node) } td { (r.address) }
                     td { (r.coordinator.as_deref().unwrap_or("-")) } td { (r.group) }
                     td { (r.status) } td { (super::store::role_name(r.role)) } }
            }
        }
    };
    layout("conclave monitor: log", body)
}
