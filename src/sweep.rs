//! `conclave sweep` and `conclave merge`: a scenario under thousands of seeds, on every core,
//! with its failures grouped, replayable, saved as reproducers, and shardable over machines.

use crate::{print_scenario_error, BAD_INPUT, HELD, INTERNAL, VIOLATED};
use conclave_sim::run::{run_scenario, RunOptions};
use conclave_sim::scenario::Scenario;
pub use conclave_sim::sweep::{result_of, Failed, SeedResult, Shard, Totals};
use conclave_sim::sweep::{run_seeds, shard_seeds};
use conclave_sim::world::{Budget, INTERRUPTED};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// What `conclave sweep` was asked.
pub struct Flags {
    pub seeds: u64,
    pub from: u64,
    pub jobs: Option<usize>,
    pub shard: Option<Shard>,
    pub save_failures: Option<PathBuf>,
    pub json: bool,
    pub junit: Option<PathBuf>,
    pub results: Option<PathBuf>,
    pub check_determinism: bool,
    pub budget: Budget,
    /// Where to write the sweep's page and the charts of the first seed of each group.
    pub report: Option<PathBuf>,
}

#[derive(Serialize, Deserialize)]
struct SummaryLine {
    summary: Totals,
}

/// The seeds of a sweep: `from..from+seeds`, only shard `shard`'s when sharded.
fn seeds_of(flags: &Flags) -> Vec<u64> {
    shard_seeds(flags.from, flags.seeds, flags.shard)
}

/// Runs the seeds with the progress bar counting runs and failures.
fn run_all(
    scenario: &Scenario,
    seeds: &[u64],
    jobs: usize,
    budget: Budget,
    hash: bool,
    bar: &ProgressBar,
) -> Vec<SeedResult> {
    let failed = AtomicUsize::new(0);
    let opts = RunOptions {
        budget,
        no_trace_hash: !hash,
        ..RunOptions::default()
    };
    run_seeds(scenario, seeds, jobs, &opts, &|batch: &[SeedResult]| {
        let new = batch.iter().filter(|r| !r.ok).count();
        if new > 0 {
            let f = failed.fetch_add(new, Ordering::Relaxed) + new;
            bar.set_message(format!("{f} failed"));
        }
        bar.inc(batch.len() as u64);
    })
}

fn progress_bar(total: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} {elapsed} [{bar:30}] {pos}/{len} runs, {per_sec}, {msg}, {eta} left",
    ) {
        bar.set_style(style);
    }
    bar.set_message("0 failed");
    bar
}

pub fn cmd_sweep(file: &Path, flags: &Flags) -> u8 {
    if flags.seeds == 0 {
        eprintln!("error: --seeds 0: a sweep needs at least one seed");
        return BAD_INPUT;
    }
    if flags.from.checked_add(flags.seeds - 1).is_none() {
        eprintln!(
            "error: --from {} --seeds {}: the last seed would pass {}",
            flags.from,
            flags.seeds,
            u64::MAX
        );
        return BAD_INPUT;
    }
    if flags.jobs == Some(0) {
        eprintln!("error: --jobs 0: a sweep needs at least one job");
        return BAD_INPUT;
    }
    let scenario = match Scenario::load(file) {
        Ok(s) => s,
        Err(e) => {
            print_scenario_error(&e);
            return BAD_INPUT;
        }
    };
    let name = file.to_string_lossy().into_owned();
    let seeds = seeds_of(flags);
    if seeds.is_empty() {
        eprintln!(
            "error: shard {} of {} seeds has none",
            flags.shard.map_or_else(String::new, |s| s.to_string()),
            flags.seeds
        );
        return BAD_INPUT;
    }
    if let Some(dir) = &flags.save_failures {
        if let Err(e) = std::fs::create_dir_all(dir) {
            eprintln!("error: --save-failures {}: {e}", dir.display());
            return BAD_INPUT;
        }
    }
    let jobs = flags
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let bar = progress_bar(seeds.len() as u64);
    let started = Instant::now();
    // The per-seed trace hashes are computed only where something reads them.
    let hash = flags.results.is_some() || flags.save_failures.is_some() || flags.check_determinism;
    let results = run_all(&scenario, &seeds, jobs, flags.budget, hash, &bar);
    let seconds = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let interrupted = INTERRUPTED.load(Ordering::Relaxed);
    // A run Ctrl-C stopped says nothing of its seed.
    let results: Vec<SeedResult> = if interrupted {
        results
            .into_iter()
            .filter(|r| r.incomplete.is_none())
            .collect()
    } else {
        results
    };
    let totals = Totals {
        scenario: name.clone(),
        from: flags.from,
        seeds: flags.seeds,
        shard: flags.shard.map(|s| s.to_string()),
        runs: results.len() as u64,
        failed: results.iter().filter(|r| !r.ok).count() as u64,
        seconds,
        runs_per_second: results.len() as f64 / seconds.max(1e-9),
        jobs,
        version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let mut code = if totals.failed > 0 || interrupted {
        VIOLATED
    } else {
        HELD
    };
    if let Some(path) = &flags.results {
        if let Err(e) = write_results(path, &results, &totals) {
            eprintln!("error: --results {}: {e}", path.display());
            code = BAD_INPUT;
        }
    }
    if let Some(path) = &flags.junit {
        let xml = conclave_reports::junit::sweep_report(&scenario, &name, &results);
        if let Err(e) = write_atomically(path, xml.as_bytes()) {
            eprintln!("error: --junit {}: {e}", path.display());
            code = BAD_INPUT;
        }
    }
    let mut saved = BTreeMap::new();
    if let Some(dir) = &flags.save_failures {
        for r in results.iter().filter(|r| !r.ok && r.incomplete.is_none()) {
            match crate::record::save(&scenario, file, r, dir) {
                Ok(paths) => {
                    saved.insert(r.seed, paths);
                }
                Err(e) => {
                    eprintln!("error: --save-failures {}: {e}", dir.display());
                    code = BAD_INPUT;
                    break;
                }
            }
        }
    }
    if let Some(dir) = &flags.report {
        if let Err(e) = write_report(&scenario, &name, &totals, &results, flags.budget, dir) {
            eprintln!("error: cannot write the report in {}: {e}", dir.display());
            code = BAD_INPUT;
        }
    }
    if flags.json {
        println!(
            "{}",
            conclave_reports::sweep::json(&totals, &results, &saved)
        );
    } else {
        print!(
            "{}",
            conclave_reports::sweep::text(&totals, &results, &saved)
        );
        if interrupted {
            println!(
                "interrupted (Ctrl-C) after {} of {} runs",
                results.len(),
                seeds.len()
            );
        }
    }
    if flags.check_determinism && !interrupted {
        if let Err(why) = check_determinism(&scenario, &name, &results, flags.budget) {
            eprintln!("error: determinism broken, a bug in conclave (please report it): {why}");
            return INTERNAL;
        }
        if !flags.json {
            println!("determinism: a sample of seeds ran again, here and on another thread, to the same trace hashes");
        }
    }
    code
}

/// `sweep --report DIR`: the first failing seed of each group run again with its trace and
/// drawn (`conclave run --report`'s files), and `<scenario>.sweep.html` linking them.
fn write_report(
    scenario: &Scenario,
    file: &str,
    totals: &Totals,
    results: &[SeedResult],
    budget: Budget,
    dir: &Path,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let opts = RunOptions {
        record_trace: true,
        budget,
        ..RunOptions::default()
    };
    let mut charts = BTreeMap::new();
    for seed in conclave_reports::sweep::first_of_each_group(results) {
        let run = run_scenario(scenario, file, seed, &opts);
        let written = conclave_reports::write_all(&conclave_reports::Source::Run(&run), dir)?;
        if let Some(page) = written
            .iter()
            .find(|p| p.extension().is_some_and(|x| x == "html"))
            .and_then(|p| p.file_name())
        {
            charts.insert(seed, page.to_string_lossy().into_owned());
        }
    }
    let stem = Path::new(file)
        .file_stem()
        .map_or("scenario".into(), |s| s.to_string_lossy().into_owned());
    let path = dir.join(format!("{stem}.sweep.html"));
    std::fs::write(
        &path,
        conclave_reports::sweep::html(totals, results, &charts),
    )?;
    eprintln!("report: {}", path.display());
    Ok(())
}

/// Runs about a hundred of the seeds again, on this thread and on a new one, and compares
/// each trace hash with the sweep's.
fn check_determinism(
    scenario: &Scenario,
    file: &str,
    results: &[SeedResult],
    budget: Budget,
) -> Result<(), String> {
    let step = (results.len() / 100).max(1);
    let sample: Vec<&SeedResult> = results.iter().step_by(step).collect();
    let opts = RunOptions {
        budget,
        ..RunOptions::default()
    };
    let here: Vec<String> = sample
        .iter()
        .map(|r| run_scenario(scenario, file, r.seed, &opts).trace_hash)
        .collect();
    let there: Vec<String> = std::thread::scope(|s| {
        s.spawn(|| {
            sample
                .iter()
                .map(|r| run_scenario(scenario, file, r.seed, &opts).trace_hash)
                .collect()
        })
        .join()
        .unwrap_or_default()
    });
    for (k, r) in sample.iter().enumerate() {
        for (again, whereby) in [
            (&here, "again on the main thread"),
            (&there, "on another thread"),
        ] {
            let hash = again.get(k).map_or("no run", String::as_str);
            if hash != r.trace_hash {
                return Err(format!(
                    "seed {} ran to trace hash {} in the sweep and {hash} {whereby}",
                    r.seed, r.trace_hash
                ));
            }
        }
    }
    Ok(())
}

/// Writes the results, one JSON line per seed and the totals last, all or nothing.
fn write_results(path: &Path, results: &[SeedResult], totals: &Totals) -> std::io::Result<()> {
    let mut text = String::new();
    for r in results {
        text.push_str(&serde_json::to_string(r).map_err(std::io::Error::other)?);
        text.push('\n');
    }
    let line = SummaryLine {
        summary: totals.clone(),
    };
    text.push_str(&serde_json::to_string(&line).map_err(std::io::Error::other)?);
    text.push('\n');
    write_atomically(path, text.as_bytes())
}

/// Writes `bytes` to a file beside `path`, then renames it over `path`: a reader never sees
/// half a file, and an error leaves `path` as it was.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("names no file"))?;
    let tmp = path.with_file_name(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// The shards of one scenario: their totals, and each seed's result with its file.
type Merged = (Vec<Totals>, BTreeMap<u64, (SeedResult, PathBuf)>);

/// `conclave merge`: sharded `--results` files as one sweep.
pub fn cmd_merge(files: &[PathBuf], json: bool, results_out: Option<&Path>) -> u8 {
    let mut by_scenario: BTreeMap<String, Merged> = BTreeMap::new();
    for file in files {
        let text = match conclave_sim::scenario::read_text_at_most(file, 1 << 32, "a results file")
        {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: {}: cannot read results: {e}", file.display());
                return BAD_INPUT;
            }
        };
        let mut seeds = Vec::new();
        let mut totals = None;
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let bad = |e: serde_json::Error| {
                eprintln!(
                    "error: {}:{}:{}: not a line of `conclave sweep --results`: {e}",
                    file.display(),
                    i + 1,
                    e.column()
                );
                BAD_INPUT
            };
            if line.trim_start().starts_with("{\"summary\"") {
                match serde_json::from_str::<SummaryLine>(line) {
                    Ok(l) => totals = Some(l.summary),
                    Err(e) => return bad(e),
                }
            } else {
                match serde_json::from_str::<SeedResult>(line) {
                    Ok(r) => seeds.push(r),
                    Err(e) => return bad(e),
                }
            }
        }
        let Some(totals) = totals else {
            eprintln!(
                "error: {}: no summary line: not a whole `conclave sweep --results` file (was the sweep stopped?)",
                file.display()
            );
            return BAD_INPUT;
        };
        let (all_totals, all_seeds) = by_scenario.entry(totals.scenario.clone()).or_default();
        for r in seeds {
            if let Some((_, other)) = all_seeds.get(&r.seed) {
                eprintln!(
                    "error: seed {} of {} is in both {} and {}: were two shards the same?",
                    r.seed,
                    totals.scenario,
                    other.display(),
                    file.display()
                );
                return BAD_INPUT;
            }
            all_seeds.insert(r.seed, (r, file.clone()));
        }
        all_totals.push(totals);
    }
    if results_out.is_some() && by_scenario.len() > 1 {
        eprintln!(
            "error: --results: the files are sweeps of {} scenarios ({}); merge each scenario's on its own",
            by_scenario.len(),
            by_scenario.keys().cloned().collect::<Vec<_>>().join(", ")
        );
        return BAD_INPUT;
    }
    let mut code = HELD;
    let mut out_text = String::new();
    let mut json_out = Vec::new();
    for (scenario, (shards, seeds)) in by_scenario {
        let results: Vec<SeedResult> = seeds.into_values().map(|(r, _)| r).collect();
        let from = shards.iter().map(|t| t.from).min().unwrap_or(0);
        let count = shards.iter().map(|t| t.seeds).max().unwrap_or(0);
        let expected: u64 = if shards.iter().all(|t| t.from == from && t.seeds == count) {
            count
        } else {
            results.len() as u64
        };
        let missing = expected.saturating_sub(results.len() as u64);
        let totals = Totals {
            scenario: scenario.clone(),
            from,
            seeds: count,
            shard: None,
            runs: results.len() as u64,
            failed: results.iter().filter(|r| !r.ok).count() as u64,
            seconds: shards.iter().map(|t| t.seconds).fold(0.0, f64::max),
            runs_per_second: shards.iter().map(|t| t.runs_per_second).sum(),
            jobs: shards.iter().map(|t| t.jobs).sum(),
            version: shards
                .first()
                .map(|t| t.version.clone())
                .unwrap_or_default(),
        };
        if totals.failed > 0 || missing > 0 {
            code = VIOLATED;
        }
        if let Some(path) = results_out {
            if let Err(e) = write_results(path, &results, &totals) {
                eprintln!("error: --results {}: {e}", path.display());
                return BAD_INPUT;
            }
        }
        if json {
            let mut v: serde_json::Value = serde_json::from_str(&conclave_reports::sweep::json(
                &totals,
                &results,
                &BTreeMap::new(),
            ))
            .unwrap_or_default();
            v["shards"] = shards.len().into();
            v["missing"] = missing.into();
            json_out.push(v);
        } else {
            out_text.push_str(&format!("{} shard files\n", shards.len()));
            out_text.push_str(&conclave_reports::sweep::text(
                &totals,
                &results,
                &BTreeMap::new(),
            ));
            if missing > 0 {
                out_text.push_str(&format!(
                    "MISSING {missing} of the {expected} seeds: a shard was not merged, or stopped early\n"
                ));
            }
        }
    }
    if json {
        match json_out.len() {
            1 => println!("{}", json_out[0]),
            _ => println!("{}", serde_json::Value::Array(json_out)),
        }
    } else {
        print!("{out_text}");
    }
    code
}
