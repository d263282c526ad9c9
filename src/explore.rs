//! `conclave explore` and `conclave replay`: printing, progress, files, exit codes. The
//! search itself is `conclave_sim::explore`.

use crate::{print_scenario_error, BAD_INPUT, HELD, VIOLATED};
use conclave_sim::explore::{
    explore, replay, simulate, Counterexample, ExploreOptions, ExploreReport, Progress,
};
use conclave_sim::scenario::{read_text_at_most, Scenario};
use conclave_sim::trace::TraceEvent;
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use std::io::IsTerminal;
use std::path::{Component, Path, PathBuf};

/// Unique states explored when `--max-states` is not given (0 lifts the cap).
pub const DEFAULT_MAX_STATES: u64 = 5_000_000;
/// Unique states explored with `--graph` when `--max-states` is not given.
pub const GRAPH_MAX_STATES: u64 = 100_000;
/// Resident memory at which the search stops, incomplete, unless `--max-memory` says more.
pub const DEFAULT_MAX_MEMORY_MIB: u64 = 8192;

pub struct Flags {
    pub max_depth: Option<u32>,
    pub max_states: Option<u64>,
    pub max_memory_mib: Option<u64>,
    pub jobs: Option<usize>,
    pub dfs: bool,
    pub json: bool,
    pub graph: Option<PathBuf>,
    pub out: Option<PathBuf>,
    pub message_bounds: bool,
    /// Where to write the exploration's report page, its counterexamples' charts and its
    /// state graph.
    pub report: Option<PathBuf>,
}

/// The peak resident memory of this process, in KiB (Linux), if known.
fn peak_memory_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn progress_bar() -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new_spinner();
    let style = ProgressStyle::with_template("{spinner} {elapsed} {msg}").ok()?;
    bar.set_style(style);
    Some(bar)
}

pub fn cmd_explore(file: &Path, flags: &Flags) -> u8 {
    let scenario = match Scenario::load(file) {
        Ok(s) => s,
        Err(e) => {
            print_scenario_error(&e);
            return BAD_INPUT;
        }
    };
    if scenario.explore.is_none() {
        eprintln!(
            "error: {}: the scenario has no `explore` block (see scenarios/README.md)",
            file.display()
        );
        return BAD_INPUT;
    }
    if flags.jobs == Some(0) {
        eprintln!("error: --jobs must be at least 1");
        return BAD_INPUT;
    }
    let max_memory = match crate::mib_to_bytes(
        "--max-memory",
        flags.max_memory_mib.unwrap_or(DEFAULT_MAX_MEMORY_MIB),
    ) {
        Ok(bytes) => bytes,
        Err(why) => {
            eprintln!("error: {why}");
            return BAD_INPUT;
        }
    };
    let bar = progress_bar();
    let bar_for_cb = bar.clone();
    // A cap by default, so that a space too big for memory ends as "incomplete"; 0 lifts
    // it. The report names where it came from.
    let scenario_cap = scenario.explore.as_ref().and_then(|e| e.max_states);
    let (cap, cap_from) = match (flags.max_states, &flags.graph, scenario_cap) {
        (Some(n), _, _) => (n, "--max-states"),
        // The graph keeps every edge: small spaces only, unless asked otherwise. A
        // scenario's own cap still applies when it is the smaller one.
        (None, Some(_), Some(n)) if n > 0 && n < GRAPH_MAX_STATES => {
            (n, "the scenario's max_states")
        }
        (None, Some(_), _) => (GRAPH_MAX_STATES, "--max-states"),
        (None, None, Some(n)) => (n, "the scenario's max_states"),
        (None, None, None) => (DEFAULT_MAX_STATES, "--max-states"),
    };
    let opts = ExploreOptions {
        max_depth: flags.max_depth,
        max_states: (cap > 0).then_some(cap),
        max_states_from: cap_from,
        // One job by default: the merge of each level is sequential, and on this project's
        // 2-core machine two jobs were slower than one (README, "Performance").
        jobs: flags.jobs.unwrap_or(1),
        dfs: flags.dfs,
        max_memory: Some(max_memory),
        keep_graph: flags.graph.is_some(),
        message_bounds: flags.message_bounds,
        keep_visited: false,
        progress: bar_for_cb.map(|b| {
            Box::new(move |p: &Progress| {
                let rate = p.unique_states * 1000 / p.elapsed_ms.max(1);
                b.set_message(if p.phase == "search" {
                    format!(
                        "{} unique states, {} transitions, {rate} states/s, depth {}, queue {}",
                        p.unique_states, p.transitions, p.depth, p.queue
                    )
                } else {
                    let doing = match p.phase {
                        "liveness" => "checking liveness over the whole graph",
                        "message bounds" => "finding the fewest and most election messages",
                        other => other,
                    };
                    format!(
                        "{} unique states, {} transitions, search done; {doing}",
                        p.unique_states, p.transitions
                    )
                });
            }) as Box<dyn Fn(&Progress) + Sync>
        }),
    };
    let report = explore(&scenario, &file.to_string_lossy(), &opts);
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let out_dir = flags.out.clone().unwrap_or_else(|| PathBuf::from("."));
    let saved = match save_counterexamples(&report, file, &out_dir)
        .and_then(|s| Ok((s, save_schedules(&report, file, &out_dir)?)))
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "error: cannot save counterexamples in {}: {e}",
                out_dir.display()
            );
            return BAD_INPUT;
        }
    };
    if let (Some(path), Some(graph)) = (&flags.graph, &report.graph) {
        if let Err(e) = std::fs::write(path, graph.to_dot()) {
            eprintln!("error: cannot write {}: {e}", path.display());
            return BAD_INPUT;
        }
    }
    let (saved, schedules) = saved;
    let saved = conclave_reports::explore::Saved {
        counterexamples: &saved,
        schedules: &schedules,
        peak_memory_kib: peak_memory_kib(),
    };
    if flags.json {
        println!("{}", conclave_reports::explore::json(&report, &saved));
    } else {
        print!("{}", conclave_reports::explore::text(&report, &saved));
    }
    if let Some(dir) = &flags.report {
        if let Err(e) = write_report(&scenario, file, &opts, &report, &saved, dir) {
            eprintln!("error: cannot write the report in {}: {e}", dir.display());
            return BAD_INPUT;
        }
    }
    if report.ok {
        HELD
    } else {
        VIOLATED
    }
}

/// `explore --report DIR`: each counterexample's chart (the files `conclave report` writes),
/// the state graph as DOT and SVG for a small space (searched again, keeping the graph, if
/// it was not kept), and `<scenario>.explore.html` that links them.
fn write_report(
    scenario: &Scenario,
    file: &Path,
    opts: &ExploreOptions,
    report: &ExploreReport,
    saved: &conclave_reports::explore::Saved,
    dir: &Path,
) -> std::io::Result<()> {
    use conclave_reports::explore::MAX_SVG_STATES;
    std::fs::create_dir_all(dir)?;
    let mut charts = Vec::new();
    for (p, path) in report.properties.iter().zip(saved.counterexamples) {
        let (Some(cex), Some(path)) = (&p.counterexample, path) else {
            charts.push(None);
            continue;
        };
        let name = path.to_string_lossy();
        let written = conclave_reports::write_all(
            &conclave_reports::Source::Counterexample(cex, &name),
            dir,
        )?;
        charts.push(
            written
                .iter()
                .find(|w| w.extension().is_some_and(|x| x == "html"))
                .and_then(|w| w.file_name())
                .map(|n| n.to_string_lossy().into_owned()),
        );
    }
    let stem = file
        .file_stem()
        .map_or("scenario".into(), |s| s.to_string_lossy().into_owned());
    // A small space is searched again, keeping its graph: cheap, and the verdicts are
    // those above (the search is deterministic).
    let small = report.complete && report.unique_states as usize <= MAX_SVG_STATES;
    let again = (report.graph.is_none() && small).then(|| {
        let keep = ExploreOptions {
            max_depth: opts.max_depth,
            max_states: opts.max_states,
            max_states_from: opts.max_states_from,
            jobs: opts.jobs,
            dfs: opts.dfs,
            max_memory: opts.max_memory,
            keep_graph: true,
            message_bounds: false,
            keep_visited: false,
            progress: None,
        };
        explore(scenario, &file.to_string_lossy(), &keep)
    });
    let graph = report
        .graph
        .as_ref()
        .or(again.as_ref().and_then(|r| r.graph.as_ref()));
    let svg = graph.map(|g| {
        let dot = g.to_dot();
        std::fs::write(dir.join(format!("{stem}.dot")), &dot)
            .map_err(|e| e.to_string())
            .and_then(|()| {
                conclave_reports::explore::graph_svg(&dot, report.unique_states as usize)
            })
    });
    let page = conclave_reports::explore::html(report, saved, &charts, svg.as_ref());
    let path = dir.join(format!("{stem}.explore.html"));
    std::fs::write(&path, page)?;
    eprintln!("report: {}", path.display());
    Ok(())
}

/// Saves each counterexample as `<scenario>.<property>.cex.json`; returns the paths, one
/// per property.
fn save_counterexamples(
    report: &ExploreReport,
    file: &Path,
    dir: &Path,
) -> std::io::Result<Vec<Option<PathBuf>>> {
    let stem = file
        .file_stem()
        .map_or("scenario".into(), |s| s.to_string_lossy().into_owned());
    let mut out = Vec::new();
    for p in &report.properties {
        let Some(cex) = &p.counterexample else {
            out.push(None);
            continue;
        };
        std::fs::create_dir_all(dir)?;
        let name: String = p.name.chars().filter(|c| c.is_alphanumeric()).collect();
        let path = dir.join(format!("{stem}.{name}.cex.json"));
        write_saved(&path, cex, file, dir)?;
        out.push(Some(path));
    }
    Ok(out)
}

/// A saved counterexample or schedule: the explorer's fields, and where the scenario is
/// from the saved file's folder.
#[derive(Serialize)]
struct SavedFile<'a> {
    #[serde(flatten)]
    cex: &'a Counterexample,
    /// The scenario's path from the folder of the saved file, so that `conclave replay`
    /// finds it from any working directory (`scenario` is the path as it was given to
    /// `conclave explore`, relative to where that ran). Absent if it could not be worked out.
    #[serde(skip_serializing_if = "Option::is_none")]
    scenario_relative_to_file: Option<String>,
}

/// What `conclave replay` reads besides the explorer's [`Counterexample`] (files saved
/// before this field existed lack it).
#[derive(Deserialize)]
struct Whence {
    #[serde(default)]
    scenario_relative_to_file: Option<String>,
}

/// Writes a counterexample or schedule to `path` in `dir`, with the path of the scenario
/// `file` from `dir`.
fn write_saved(path: &Path, cex: &Counterexample, file: &Path, dir: &Path) -> std::io::Result<()> {
    let relative = std::fs::canonicalize(file)
        .and_then(|f| Ok((f, std::fs::canonicalize(dir)?)))
        .ok()
        .and_then(|(f, d)| relative_path(&f, &d))
        .map(|p| p.to_string_lossy().into_owned());
    let saved = SavedFile {
        cex,
        scenario_relative_to_file: relative,
    };
    let json = serde_json::to_string_pretty(&saved).map_err(std::io::Error::other)?;
    std::fs::write(path, json + "\n")
}

/// The path that leads from the folder `base` to `target`, both absolute and canonical
/// (`None` if they share no root, as on two Windows drives).
pub(crate) fn relative_path(target: &Path, base: &Path) -> Option<PathBuf> {
    let (t, b): (Vec<Component>, Vec<Component>) =
        (target.components().collect(), base.components().collect());
    if t.first() != b.first() {
        return None;
    }
    let common = t.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut out = PathBuf::new();
    for _ in common..b.len() {
        out.push("..");
    }
    for c in &t[common..] {
        out.push(c.as_os_str());
    }
    Some(out)
}

/// The scenario of a saved file: the path from the file's folder if the file has one and
/// it leads to a file, else the path as it was given to `conclave explore`.
fn scenario_of(file: &Path, text: &str, cex: &Counterexample) -> PathBuf {
    let relative = serde_json::from_str::<Whence>(text)
        .ok()
        .and_then(|w| w.scenario_relative_to_file);
    let folder = file.parent().unwrap_or(Path::new(""));
    relative
        .map(|r| folder.join(r))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(&cex.scenario))
}

/// (election, bound, file) of each saved schedule.
type Saved = Vec<conclave_reports::explore::SavedSchedule>;

/// Saves the schedule of each message bound as `<scenario>.<election>-<bound>.schedule.json`,
/// a file `conclave replay` reads like a counterexample, with the trace it gives (so that a
/// replay by a later version can tell when it no longer gives the same).
fn save_schedules(report: &ExploreReport, file: &Path, dir: &Path) -> std::io::Result<Saved> {
    let mut out = Vec::new();
    let Some(m) = &report.election_messages else {
        return Ok(out);
    };
    let stem = file
        .file_stem()
        .map_or("scenario".into(), |s| s.to_string_lossy().into_owned());
    for (election, b) in [
        ("first_election", &m.first_election),
        ("re_election", &m.re_election),
    ] {
        let Some(b) = b else { continue };
        for (bound, s) in [("fewest", Some(&b.fewest)), ("most", b.most.as_ref())] {
            let Some(s) = s else { continue };
            std::fs::create_dir_all(dir)?;
            let path = dir.join(format!("{stem}.{election}-{bound}.schedule.json"));
            let cex = Counterexample {
                scenario: file.to_string_lossy().into_owned(),
                property: format!("{bound} messages, {}", election.replace('_', " ")),
                choices: s.choices.clone(),
                detail: format!(
                    "{} messages from step {} to the first settled state",
                    s.messages, s.starts_at_step
                ),
                trace: s.trace.clone(),
                at_us: s.end_us,
                schedule: s.steps.clone(),
            };
            write_saved(&path, &cex, file, dir)?;
            out.push((election, bound, path));
        }
    }
    Ok(out)
}

/// The most bytes `conclave replay` reads.
const MAX_COUNTEREXAMPLE_BYTES: u64 = 1 << 30;

pub fn cmd_replay(file: &Path, report: Option<&Path>) -> u8 {
    // A depth-first counterexample of a million steps is some hundred MiB; a mistaken path
    // (`/dev/zero`, a disk image) is stopped at the limit.
    let limit = MAX_COUNTEREXAMPLE_BYTES;
    let text = match read_text_at_most(file, limit, "a counterexample file") {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {}: cannot read counterexample: {e}", file.display());
            return BAD_INPUT;
        }
    };
    let cex: Counterexample = match serde_json::from_str(&text) {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "error: {}:{}:{}: not a counterexample file: {e}",
                file.display(),
                e.line(),
                e.column()
            );
            return BAD_INPUT;
        }
    };
    let scenario = match Scenario::load(&scenario_of(file, &text, &cex)) {
        Ok(s) => s,
        Err(e) => {
            print_scenario_error(&e);
            return BAD_INPUT;
        }
    };
    // Bounded timing: the file has the time of every step (and of the end).
    if cex.at_us.is_some() {
        return replay_in_simulator(file, &scenario, &cex, report);
    }
    match replay(&scenario, &cex.choices) {
        Err(why) => {
            eprintln!("error: {}: {why}", file.display());
            BAD_INPUT
        }
        Ok((trace, end)) => {
            for e in &trace {
                println!("{}", conclave_reports::event_line(e));
            }
            if let Some(code) = report.and_then(|dir| write_replayed(file, &cex, &trace, dir)) {
                return code;
            }
            warn_if_changed(file, &cex.trace, &trace);
            if is_bound(&cex) {
                let sent = trace
                    .iter()
                    .filter(|e| matches!(e.what, conclave_sim::trace::What::Send { .. }))
                    .count() as u64;
                return bound_end(&cex, sent, end.settled);
            }
            let reproduced = match cex.property.as_str() {
                "AtMostOneLeader" => end.at_most_one.clone(),
                "OneLeaderPerComponent" => end.per_component.clone(),
                _ => (!end.settled).then(|| cex.detail.clone()),
            };
            print!(
                "{}",
                conclave_reports::explore::replay_model(
                    &cex.property,
                    cex.choices.len(),
                    reproduced.as_deref()
                )
            );
            if reproduced.is_some() {
                VIOLATED
            } else {
                HELD
            }
        }
    }
}

/// `replay --report DIR`: the chart of the trace as replayed now (which `warn_if_changed`
/// compares with the saved one); `None` if written, else the exit code.
fn write_replayed(
    file: &Path,
    cex: &Counterexample,
    trace: &[TraceEvent],
    dir: &Path,
) -> Option<u8> {
    let replayed = Counterexample {
        trace: trace.to_vec(),
        ..cex.clone()
    };
    let name = file.to_string_lossy();
    let source = conclave_reports::Source::Counterexample(&replayed, &name);
    // (Without the ShiViz line, as replay has always written it.)
    crate::report::write(&source, dir, false)
}

/// A message-bound schedule (not a counterexample): it ends where the election completes.
fn is_bound(cex: &Counterexample) -> bool {
    cex.property.contains(" messages, ")
}

fn bound_end(cex: &Counterexample, sent: u64, settled: bool) -> u8 {
    print!(
        "{}",
        conclave_reports::explore::replay_bound(&cex.property, &cex.detail, sent, settled)
    );
    if settled {
        HELD
    } else {
        VIOLATED
    }
}

/// Warns when a replay's trace is not the one saved with the file.
fn warn_if_changed(file: &Path, saved: &[TraceEvent], trace: &[TraceEvent]) {
    if saved.is_empty() || saved == trace {
        return;
    }
    // Every step was possible, but not with the same outcome: the scenario or the model
    // changed, and the file may no longer show what it showed.
    let at = trace.iter().zip(saved).take_while(|(a, b)| a == b).count();
    eprintln!(
        "warning: {}: the trace differs from the one saved, from event {} on: the scenario or Conclave's model has changed since the file was saved, and it may no longer show what it showed",
        file.display(),
        at + 1
    );
}

/// A `Bounded` counterexample or schedule: the simulator itself plays its timed steps
/// (every delay, timer, notice and fault at its time) and says whether the violation
/// happens, and when.
fn replay_in_simulator(
    file: &Path,
    scenario: &Scenario,
    cex: &Counterexample,
    report: Option<&Path>,
) -> u8 {
    let sim = match simulate(scenario, &cex.schedule, cex.at_us) {
        Ok(s) => s,
        Err(why) => {
            eprintln!(
                "error: {}: the simulator cannot play this schedule: {why} (the scenario or Conclave's model has changed since the file was saved)",
                file.display()
            );
            return BAD_INPUT;
        }
    };
    for e in &sim.trace {
        println!("{}", conclave_reports::event_line(e));
    }
    if let Some(code) = report.and_then(|dir| write_replayed(file, cex, &sim.trace, dir)) {
        return code;
    }
    warn_if_changed(file, &cex.trace, &sim.trace);
    if is_bound(cex) {
        return bound_end(cex, sim.sent, sim.settled);
    }
    let steps = cex.schedule.len();
    let found = match cex.property.as_str() {
        "AtMostOneLeader" => sim.at_most_one.clone(),
        "OneLeaderPerComponent" => sim.per_component.clone(),
        _ => (!sim.settled).then(|| (sim.now_us, cex.detail.clone())),
    };
    print!(
        "{}",
        conclave_reports::explore::replay_simulator(
            &cex.property,
            steps,
            found.as_ref().map(|(at, why)| (*at, why.as_str()))
        )
    );
    match found {
        Some((at, _)) => {
            if let Some(expected) = cex.at_us.filter(|&e| e != at) {
                eprintln!(
                    "warning: {}: the explorer found it at t={}",
                    file.display(),
                    conclave_algorithms_time(expected)
                );
            }
            VIOLATED
        }
        None => HELD,
    }
}

fn conclave_algorithms_time(us: u64) -> conclave_sim::algorithms::Time {
    conclave_sim::algorithms::Time(us)
}
