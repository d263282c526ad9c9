//! What `conclave sweep` and `conclave merge` print: the totals, the failures grouped by
//! property and by the last fault before the violation, each seed with the command that
//! replays it; as text or as one JSON object.

use conclave_sim::sweep::{Failed, SeedResult, Totals};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Where `--save-failures` wrote a seed: its scenario and its record.
#[derive(Clone, Debug, Serialize)]
pub struct SavedSeed {
    pub scenario: PathBuf,
    pub record: PathBuf,
}

/// The replay command of a seed.
pub fn replay(file: &str, seed: u64) -> String {
    format!("conclave run {file} --seed {seed}")
}

/// The failures of each property, grouped by the kind of the last fault before the violation.
type Groups<'a> = BTreeMap<(String, String), BTreeMap<String, Vec<(&'a SeedResult, &'a Failed)>>>;

fn groups(results: &[SeedResult]) -> Groups<'_> {
    let mut g: Groups = BTreeMap::new();
    for r in results {
        for f in &r.failed {
            let first = f.cause();
            g.entry((f.property.clone(), f.expected.clone()))
                .or_default()
                .entry(first)
                .or_default()
                .push((r, f));
        }
    }
    g
}

pub fn text(totals: &Totals, results: &[SeedResult], saved: &BTreeMap<u64, SavedSeed>) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let range = match &totals.shard {
        Some(sh) => format!(
            "seeds {}..={} shard {sh}",
            totals.from,
            totals.from + totals.seeds - 1
        ),
        None => format!("seeds {}..={}", totals.from, totals.from + totals.seeds - 1),
    };
    let _ = writeln!(
        s,
        "sweep {} ({range}): {} runs, {} failed, {:.0} runs/s on {} job{}",
        totals.scenario,
        totals.runs,
        totals.failed,
        totals.runs_per_second,
        totals.jobs,
        if totals.jobs == 1 { "" } else { "s" }
    );
    for ((property, expected), firsts) in groups(results) {
        let seeds: usize = firsts.values().map(Vec::len).sum();
        let what = if expected == "holds" {
            "violated"
        } else {
            "held, expected violated"
        };
        let _ = writeln!(
            s,
            "FAILED  {property} {what}: {seeds} seed{}",
            if seeds == 1 { "" } else { "s" }
        );
        for (first, list) in firsts {
            let n = list.len();
            let _ = writeln!(s, "  {first}: {n} seed{}", if n == 1 { "" } else { "s" });
            for (r, f) in list {
                let at = f
                    .failed_at_us
                    .map(|t| format!(" at t={}", conclave_algorithms::Duration(t)))
                    .unwrap_or_default();
                let mut why: Vec<&str> = f.detail.iter().map(String::as_str).collect();
                why.extend(f.after.as_deref());
                let why = if why.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", why.join("; "))
                };
                let _ = writeln!(
                    s,
                    "    seed {}{at}{why}: {}",
                    r.seed,
                    replay(&totals.scenario, r.seed)
                );
                if let Some(p) = saved.get(&r.seed) {
                    let _ = writeln!(
                        s,
                        "      saved: {} and {}",
                        p.scenario.display(),
                        p.record.display()
                    );
                }
            }
        }
    }
    let incomplete: Vec<&SeedResult> = results.iter().filter(|r| r.incomplete.is_some()).collect();
    if !incomplete.is_empty() {
        let _ = writeln!(s, "INCOMPLETE {} runs", incomplete.len());
        for r in incomplete {
            let _ = writeln!(
                s,
                "    seed {}: {}: {}",
                r.seed,
                r.incomplete.as_deref().unwrap_or_default(),
                replay(&totals.scenario, r.seed)
            );
        }
    }
    s
}

#[derive(Serialize)]
struct FailureJson<'a> {
    seed: u64,
    property: &'a str,
    expected: &'a str,
    failed_at_us: Option<u64>,
    first_violation: Option<&'a str>,
    after: Option<&'a str>,
    replay: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    saved: Option<&'a SavedSeed>,
}

pub fn json(totals: &Totals, results: &[SeedResult], saved: &BTreeMap<u64, SavedSeed>) -> String {
    let failures: Vec<FailureJson> = results
        .iter()
        .flat_map(|r| {
            r.failed.iter().map(move |f| FailureJson {
                seed: r.seed,
                property: &f.property,
                expected: &f.expected,
                failed_at_us: f.failed_at_us,
                first_violation: f.detail.as_deref(),
                after: f.after.as_deref(),
                replay: replay(&totals.scenario, r.seed),
                saved: saved.get(&r.seed),
            })
        })
        .collect();
    let incomplete: Vec<serde_json::Value> = results
        .iter()
        .filter_map(|r| {
            r.incomplete.as_ref().map(|why| {
                serde_json::json!({"seed": r.seed, "why": why, "replay": replay(&totals.scenario, r.seed)})
            })
        })
        .collect();
    let groups: Vec<serde_json::Value> = groups(results)
        .into_iter()
        .flat_map(|((property, expected), firsts)| {
            firsts.into_iter().map(move |(first, list)| {
                serde_json::json!({
                    "property": property,
                    "expected": expected,
                    "cause": first,
                    "seeds": list.iter().map(|(r, _)| r.seed).collect::<Vec<_>>(),
                })
            })
        })
        .collect();
    serde_json::json!({
        "scenario": totals.scenario,
        "from": totals.from,
        "seeds": totals.seeds,
        "shard": totals.shard,
        "runs": totals.runs,
        "failed": totals.failed,
        "seconds": totals.seconds,
        "runs_per_second": totals.runs_per_second,
        "jobs": totals.jobs,
        "failures": failures,
        "groups": groups,
        "incomplete": incomplete,
    })
    .to_string()
}

/// The first failing seed of each group (property, expectation, cause): the seeds whose
/// runs a sweep's report draws.
pub fn first_of_each_group(results: &[SeedResult]) -> Vec<u64> {
    let mut seeds: Vec<u64> = groups(results)
        .values()
        .flat_map(|causes| {
            causes
                .values()
                .filter_map(|list| list.first().map(|(r, _)| r.seed))
        })
        .collect();
    seeds.sort_unstable();
    seeds.dedup();
    seeds
}

/// The sweep as one self-contained HTML page: the totals, then each property's failures by
/// the kind of the last fault before the violation, each seed with its replay command, and
/// a link to the chart of the first seed of each group (`charts`: seed to page name).
pub fn html(totals: &Totals, results: &[SeedResult], charts: &BTreeMap<u64, String>) -> String {
    use crate::svg::esc;
    use std::fmt::Write;
    let mut s = String::new();
    let title = format!("sweep {}", totals.scenario);
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\n<style>{STYLE}</style></head><body>\n<h1>{t}</h1>\n<p>Seeds {}..={}{}: <b>{}</b> runs, <b class=\"{}\">{}</b> failed, {:.0} runs/s on {} job{}.</p>\n",
        totals.from,
        totals.from + totals.seeds.saturating_sub(1),
        totals.shard.as_ref().map(|sh| format!(" (shard {sh})")).unwrap_or_default(),
        totals.runs,
        if totals.failed > 0 { "bad" } else { "good" },
        totals.failed,
        totals.runs_per_second,
        totals.jobs,
        if totals.jobs == 1 { "" } else { "s" },
        t = esc(&title),
    );
    for ((property, expected), causes) in groups(results) {
        let n: usize = causes.values().map(Vec::len).sum();
        let what = if expected == "holds" {
            "violated"
        } else {
            "held, expected violated"
        };
        let _ = writeln!(
            s,
            "<h2>{} {what}: {n} seed{}</h2>",
            esc(&property),
            if n == 1 { "" } else { "s" }
        );
        for (cause, list) in causes {
            let _ = writeln!(s, "<details open><summary>{}: {} seed{}</summary><table><tr><th>seed</th><th>at</th><th>violation</th><th>last fault before it</th><th>replay</th><th>chart</th></tr>", esc(&cause), list.len(), if list.len() == 1 { "" } else { "s" });
            for (r, f) in list {
                let at = f
                    .failed_at_us
                    .map(|t| conclave_algorithms::Duration(t).to_string())
                    .unwrap_or_default();
                let chart = charts
                    .get(&r.seed)
                    .map(|page| format!("<a href=\"{}\">chart</a>", esc(page)))
                    .unwrap_or_default();
                let _ = writeln!(
                    s,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{chart}</td></tr>",
                    r.seed,
                    esc(&at),
                    esc(f.detail.as_deref().unwrap_or("")),
                    esc(f.after.as_deref().unwrap_or("none")),
                    esc(&replay(&totals.scenario, r.seed))
                );
            }
            s.push_str("</table></details>\n");
        }
    }
    let cut: Vec<&SeedResult> = results.iter().filter(|r| r.incomplete.is_some()).collect();
    if !cut.is_empty() {
        let _ = writeln!(s, "<h2>INCOMPLETE: {} runs</h2><ul>", cut.len());
        for r in cut {
            let _ = writeln!(
                s,
                "<li>seed {}: {} <code>{}</code></li>",
                r.seed,
                esc(r.incomplete.as_deref().unwrap_or_default()),
                esc(&replay(&totals.scenario, r.seed))
            );
        }
        s.push_str("</ul>\n");
    }
    s.push_str("</body></html>\n");
    s
}

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse;margin:.5em 0 1em}td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left}\
summary{cursor:pointer;font-weight:600}.bad{color:#c62828}.good{color:#1a7f37}code{font-size:90%}";
