//! `conclave`: the command line. It parses arguments, calls the libraries, prints, and maps
//! outcomes to exit codes (0 held, 1 violated, 2 bad input, 3 internal error).

use clap::{Parser, Subcommand};
use conclave_sim::run::{run_scenario, RunOptions, RunReport};
use conclave_sim::scenario::{Scenario, ScenarioError};
use conclave_sim::trace::TraceEvent;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

mod explore;

/// The explorer creates and drops millions of small states; glibc's allocator spent more
/// than half of an exploration in malloc and free, mimalloc a fraction of that.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub(crate) const HELD: u8 = 0;
pub(crate) const VIOLATED: u8 = 1;
pub(crate) const BAD_INPUT: u8 = 2;
const INTERNAL: u8 = 3;

#[derive(Parser)]
#[command(
    name = "conclave",
    version,
    about = "Deterministic simulator and model checker for leader election"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one scenario and print its summary (and its timeline with --trace).
    Run {
        /// The scenario file (RON).
        file: PathBuf,
        /// Seed to run with, instead of the scenario's first seed.
        #[arg(long)]
        seed: Option<u64>,
        /// Print every event of the run, one per line.
        #[arg(long)]
        trace: bool,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        budget: BudgetFlags,
    },
    /// Run every .ron scenario under the paths, with each of its seeds.
    Check {
        /// Scenario files or folders (searched recursively).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        #[command(flatten)]
        budget: BudgetFlags,
    },
    /// Explore every reachable state of a scenario's cluster (its `explore` block).
    Explore {
        file: PathBuf,
        /// Do not go deeper than this many steps (the search is then incomplete).
        #[arg(long)]
        max_depth: Option<u32>,
        /// Stop after this many unique states, the search then incomplete (default: the
        /// scenario's max_states, else 5000000; 0 for no limit).
        #[arg(long)]
        max_states: Option<u64>,
        /// Stop, incomplete, when the process uses this much memory (MiB, default 8192).
        #[arg(long, value_name = "MIB")]
        max_memory: Option<u64>,
        /// Worker threads for the breadth-first search (default 1; same results for any
        /// number).
        #[arg(long)]
        jobs: Option<usize>,
        /// Depth-first search: counterexamples not the shortest; keeps the path from the
        /// start instead of a breadth-first level (less memory on deep or wide spaces, about
        /// the same when the visited set dominates).
        #[arg(long)]
        dfs: bool,
        /// Print the summary as one JSON object.
        #[arg(long)]
        json: bool,
        /// Write the state graph in DOT, violating states in red (caps the search at 100000
        /// states, or the scenario's max_states if smaller, unless --max-states says otherwise).
        #[arg(long, value_name = "FILE.dot")]
        graph: Option<PathBuf>,
        /// Where to save counterexamples and schedules (default: the current folder).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Skip the fewest/most election messages over every schedule (saves the memory
        /// of the edges it keeps).
        #[arg(long)]
        no_message_bounds: bool,
    },
    /// Turn a saved counterexample back into its trace.
    Replay {
        /// A counterexample file written by `conclave explore`.
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    std::panic::set_hook(Box::new(|info| {
        // `conclave explore ... | head`: the reader has gone, which is no bug. Leave as a
        // process killed by SIGPIPE would (the shell's 128 + 13), without a word.
        let text = info.to_string();
        if text.contains("failed printing to stdout") && text.contains("Broken pipe") {
            std::process::exit(141);
        }
        eprintln!("internal error (a bug in conclave, please report it): {info}");
    }));
    // Ctrl-C stops a run (or each run of a check) where it is: its partial summary and
    // replay command are printed, INCOMPLETE. A second Ctrl-C quits at once.
    let _ = ctrlc::set_handler(|| {
        if conclave_sim::world::INTERRUPTED.swap(true, Ordering::Relaxed) {
            std::process::exit(130);
        }
    });
    let code = std::panic::catch_unwind(|| match cli.command {
        Command::Run {
            file,
            seed,
            trace,
            json,
            budget,
        } => match budget.budget() {
            Ok(budget) => cmd_run(&file, seed, trace, json, budget),
            Err(why) => bad_flag(&why),
        },
        Command::Check { paths, budget } => match budget.budget() {
            Ok(budget) => cmd_check(&paths, budget),
            Err(why) => bad_flag(&why),
        },
        Command::Explore {
            file,
            max_depth,
            max_states,
            max_memory,
            jobs,
            dfs,
            json,
            graph,
            out,
            no_message_bounds,
        } => {
            let opts = explore::Flags {
                message_bounds: !no_message_bounds,
                max_depth,
                max_states,
                max_memory_mib: max_memory,
                jobs,
                dfs,
                json,
                graph,
                out,
            };
            explore::cmd_explore(&file, &opts)
        }
        Command::Replay { file } => explore::cmd_replay(&file),
    })
    .unwrap_or(INTERNAL);
    ExitCode::from(code)
}

/// Prints a scenario error with the offending source line and a caret under the column.
pub(crate) fn print_scenario_error(e: &ScenarioError) {
    eprintln!("error: {e}");
    // The file is read again only when there is a line to show (a file too large to read
    // has none), and never past the size a scenario may have.
    let Some((line, col)) = e.position else {
        return;
    };
    if let Ok(src) = conclave_sim::scenario::read_text(&e.file) {
        let src = conclave_sim::scenario::strip_bom(&src);
        if let Some(text) = src.lines().nth(line.saturating_sub(1)) {
            eprintln!("{line:>5} | {text}");
            eprintln!("      | {}^", " ".repeat(col.saturating_sub(1)));
        }
    }
}

/// The limits of one run (see `Budget`): a run past one is cut short, INCOMPLETE.
#[derive(clap::Args)]
struct BudgetFlags {
    /// Stop a run, INCOMPLETE, after this many events (default 20000000; 0 for no limit).
    #[arg(long, value_name = "N")]
    max_events: Option<u64>,
    /// Stop a run, INCOMPLETE, when the process uses this much memory (MiB, default 8192).
    #[arg(long, value_name = "MIB")]
    max_memory: Option<u64>,
}

/// Events a run may take when `--max-events` is not given: a few seconds with small
/// clusters (millions of events a second); minutes when every event's handler walks
/// thousands of nodes (majority election with 1,000 nodes: 135,000 events a second).
const DEFAULT_MAX_EVENTS: u64 = 20_000_000;

impl BudgetFlags {
    fn budget(&self) -> Result<conclave_sim::world::Budget, String> {
        let max_events = self.max_events.unwrap_or(DEFAULT_MAX_EVENTS);
        Ok(conclave_sim::world::Budget {
            max_events: (max_events > 0).then_some(max_events),
            max_memory: Some(mib_to_bytes(
                "--max-memory",
                self.max_memory.unwrap_or(explore::DEFAULT_MAX_MEMORY_MIB),
            )?),
            ..conclave_sim::world::Budget::default()
        })
    }
}

/// A memory size given in MiB, in bytes, or an error if this machine could not address it
/// (2^44 MiB on a 64-bit machine is 2^64 bytes, which wrapped round to a limit of 0).
pub(crate) fn mib_to_bytes(flag: &str, mib: u64) -> Result<u64, String> {
    let most_mib = usize::MAX as u64 >> 20;
    if mib > most_mib {
        return Err(format!(
            "{flag} {mib} MiB is more than this machine can address (at most {most_mib} MiB)"
        ));
    }
    Ok(mib << 20)
}

fn bad_flag(why: &str) -> u8 {
    eprintln!("error: {why}");
    BAD_INPUT
}

fn cmd_run(
    file: &Path,
    seed: Option<u64>,
    trace: bool,
    json: bool,
    budget: conclave_sim::world::Budget,
) -> u8 {
    let scenario = match Scenario::load(file) {
        Ok(s) => s,
        Err(e) => {
            print_scenario_error(&e);
            return BAD_INPUT;
        }
    };
    let seed = seed.unwrap_or(scenario.seeds[0]);
    // The trace streams out as the run makes it: a long run's trace is never held.
    let sink: fn(&TraceEvent) = match (trace, json) {
        (true, true) => {
            print!("{{\"trace\":[");
            print_trace_json
        }
        _ => print_trace_line,
    };
    let opts = RunOptions {
        record_trace: trace,
        budget: conclave_sim::world::Budget {
            progress: progress::start(&scenario).then_some(progress::advance as _),
            ..budget
        },
        trace_sink: trace.then_some(sink),
    };
    let report = run_scenario(&scenario, &file.to_string_lossy(), seed, &opts);
    progress::finish();
    if json {
        if trace {
            println!("]{}", conclave_reports::json_after_trace(&report));
        } else {
            println!("{}", conclave_reports::json(&report));
        }
    } else {
        if trace {
            println!();
        }
        print!("{}", conclave_reports::summary(&report));
    }
    if report.ok {
        HELD
    } else {
        VIOLATED
    }
}

/// Whether a streamed JSON trace has had its first element.
static TRACE_STARTED: AtomicBool = AtomicBool::new(false);

fn print_trace_line(e: &TraceEvent) {
    println!("{}", conclave_reports::event_line(e));
}

fn print_trace_json(e: &TraceEvent) {
    let comma = if TRACE_STARTED.swap(true, Ordering::Relaxed) {
        ","
    } else {
        ""
    };
    print!("{comma}{}", conclave_reports::trace_json(e));
}

/// A progress bar for a long run (hidden when standard error is not a terminal): the
/// virtual time reached and the events per second.
mod progress {
    use conclave_sim::scenario::Scenario;
    use indicatif::{ProgressBar, ProgressStyle};
    use std::io::IsTerminal;
    use std::sync::OnceLock;

    static BAR: OnceLock<(ProgressBar, u64)> = OnceLock::new();

    /// Sets the bar up for `scenario`; whether there is one.
    pub fn start(scenario: &Scenario) -> bool {
        if !std::io::stderr().is_terminal() {
            return false;
        }
        let end = scenario.run_for.as_micros().max(1);
        let bar = ProgressBar::new(end);
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} {elapsed} [{bar:30}] {percent}% of virtual time, {msg}",
        ) {
            bar.set_style(style);
        }
        BAR.set((bar, end)).is_ok()
    }

    pub fn advance(now: conclave_algorithms::Time, events: u64) {
        if let Some((bar, end)) = BAR.get() {
            let rate = events as f64 / bar.elapsed().as_secs_f64().max(1e-3);
            bar.set_position(now.as_micros().min(*end));
            bar.set_message(format!("t={now}, {events} events, {rate:.0} events/s"));
        }
    }

    pub fn finish() {
        if let Some((bar, _)) = BAR.get() {
            bar.finish_and_clear();
        }
    }
}

/// Every `.ron` file under `path`, sorted so that the order is the same on every machine.
fn scenario_files(path: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()?;
        entries.sort();
        for e in entries {
            if e.is_dir() || e.extension().is_some_and(|x| x == "ron") {
                scenario_files(&e, out)?;
            }
        }
    } else {
        out.push(path.to_path_buf());
    }
    Ok(())
}

fn failure_lines(r: &RunReport) -> Vec<String> {
    let cut = r.incomplete.iter().map(|why| format!("INCOMPLETE: {why}"));
    cut.chain(r.expectations.iter().filter(|e| !e.ok).map(|e| {
        let what = if e.expected == "holds" {
            "violated"
        } else {
            "held, expected violated"
        };
        let mut s = format!("{} {what}", e.name);
        if let Some(t) = e.failed_at_us {
            s.push_str(&format!(" at t={}", conclave_algorithms::Duration(t)));
        }
        if let Some(d) = &e.detail {
            s.push_str(&format!(": {d}"));
        }
        s
    }))
    .collect()
}

fn cmd_check(paths: &[PathBuf], budget: conclave_sim::world::Budget) -> u8 {
    let mut files = Vec::new();
    for p in paths {
        if let Err(e) = scenario_files(p, &mut files) {
            eprintln!("error: {}: {e}", p.display());
            return BAD_INPUT;
        }
    }
    if files.is_empty() {
        eprintln!(
            "error: no .ron scenario under {}",
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        return BAD_INPUT;
    }
    let (mut passed, mut failed, mut bad, mut runs) = (0, 0, 0, 0);
    for file in &files {
        let scenario = match Scenario::load(file) {
            Ok(s) => s,
            Err(e) => {
                println!("BAD     {}", file.display());
                print_scenario_error(&e);
                bad += 1;
                continue;
            }
        };
        let mut failures = Vec::new();
        for &seed in &scenario.seeds {
            runs += 1;
            let r = run_scenario(
                &scenario,
                &file.to_string_lossy(),
                seed,
                &RunOptions {
                    budget,
                    ..RunOptions::default()
                },
            );
            if !r.ok {
                failures.push((seed, failure_lines(&r), r.replay.clone()));
            }
        }
        let seeds = scenario.seeds.len();
        if failures.is_empty() {
            passed += 1;
            println!(
                "ok      {} ({} seed{})",
                file.display(),
                seeds,
                if seeds == 1 { "" } else { "s" }
            );
        } else {
            failed += 1;
            println!(
                "FAILED  {} ({} of {} seeds failed)",
                file.display(),
                failures.len(),
                seeds
            );
            for (seed, lines, replay) in failures {
                for l in lines {
                    println!("        seed {seed}: {l}");
                }
                println!("        replay: {replay}");
            }
        }
    }
    println!(
        "{} scenario files, {runs} runs, {bad} with bad input",
        files.len()
    );
    println!("check: {passed} passed, {failed} failed");
    if bad > 0 {
        BAD_INPUT
    } else if failed > 0 {
        VIOLATED
    } else {
        HELD
    }
}
