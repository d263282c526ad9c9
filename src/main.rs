//! `conclave`: the command line. It parses arguments, calls the libraries, prints, and maps
//! outcomes to exit codes (0 held, 1 violated, 2 bad input, 3 internal error).

use clap::{Parser, Subcommand};
use conclave_sim::run::{run_scenario, RunOptions, RunReport};
use conclave_sim::scenario::{Scenario, ScenarioError};
use conclave_sim::trace::TraceEvent;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

mod cluster;
mod compare;
mod conform;
mod explore;
mod node;
mod record;
mod report;
mod shrink;
mod sweep;

/// The explorer creates and drops millions of small states; glibc's allocator spent more
/// than half of an exploration in malloc and free, mimalloc a fraction of that.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub(crate) const HELD: u8 = 0;
pub(crate) const VIOLATED: u8 = 1;
pub(crate) const BAD_INPUT: u8 = 2;
pub(crate) const INTERNAL: u8 = 3;

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
        /// The scenario file (RON), or a record of a failing seed that `conclave sweep
        /// --save-failures` wrote (.json).
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
        /// Also write the run's report into DIR: <scenario>.seed-<N>.html (message sequence
        /// chart and summary), .mmd (Mermaid), .shiviz (ShiViz log) and .txt (timeline).
        #[arg(long, value_name = "DIR")]
        report: Option<PathBuf>,
        #[command(flatten)]
        budget: BudgetFlags,
    },
    /// Run every .ron scenario under the paths, with each of its seeds.
    Check {
        /// Scenario files or folders (searched recursively).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Also write the results as JUnit XML (a test case per scenario and expectation).
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
        #[command(flatten)]
        budget: BudgetFlags,
    },
    /// Run a scenario under many seeds on every core: each seed draws its own faults from
    /// the scenario's `sweep` block; failures are grouped, with the command that replays each.
    Sweep {
        file: PathBuf,
        /// How many seeds to run.
        #[arg(long, default_value_t = 1000, value_name = "N")]
        seeds: u64,
        /// The first seed.
        #[arg(long, default_value_t = 0, value_name = "S")]
        from: u64,
        /// Worker threads (default: one per core; same results for any number).
        #[arg(long, value_name = "J")]
        jobs: Option<usize>,
        /// Run only shard I of K (the seeds whose offset from --from is I modulo K), for
        /// batch systems; `conclave merge` combines the shards' --results.
        #[arg(long, value_name = "I/K")]
        shard: Option<sweep::Shard>,
        /// Write each failing seed here: a scenario with its drawn faults written out
        /// (`conclave run` fails it the same way) and a record (`conclave run RECORD.json`).
        #[arg(long, value_name = "DIR")]
        save_failures: Option<PathBuf>,
        /// Print the summary as one JSON object.
        #[arg(long)]
        json: bool,
        /// Write the results as JUnit XML (a test case per expectation).
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
        /// Write one JSON line per seed (seed, ok, trace_hash, failed), then a summary line.
        #[arg(long, value_name = "FILE")]
        results: Option<PathBuf>,
        /// Run a sample of the seeds again, here and on another thread, and fail (exit 3) if
        /// any trace hash differs.
        #[arg(long)]
        check_determinism: bool,
        /// Write a page of the sweep and the charts of the first failing seed of each
        /// group into DIR.
        #[arg(long, value_name = "DIR")]
        report: Option<PathBuf>,
        #[command(flatten)]
        budget: BudgetFlags,
    },
    /// Check real nodes' trace logs (`--trace-log`) against the model: each node's inputs
    /// replayed through the scenario's algorithm must make exactly its logged sends, timer
    /// changes and role changes; AtMostOneLeader is evaluated over the merged logs.
    Conform {
        #[arg(required = true, value_name = "TRACE_LOG")]
        logs: Vec<PathBuf>,
        /// The scenario whose algorithm the nodes ran (and whose expectations apply).
        #[arg(long, value_name = "FILE")]
        scenario: PathBuf,
        /// How far apart the logs' wall clocks may be: two leaders count only when they
        /// overlap by more than this (on one machine, the clock is shared).
        #[arg(long, value_name = "DURATION", default_value = "1ms")]
        clock_uncertainty: conclave_algorithms::Duration,
        /// Print the result as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Combine the --results files of a sharded sweep into one summary.
    Merge {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Print the summary as one JSON object.
        #[arg(long)]
        json: bool,
        /// Write the merged results (one line per seed, then the summary line).
        #[arg(long, value_name = "FILE")]
        results: Option<PathBuf>,
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
        /// Write a report page (verdicts, counts, message bounds, the state graph of a
        /// small space) and each counterexample's chart into DIR.
        #[arg(long, value_name = "DIR")]
        report: Option<PathBuf>,
    },
    /// Turn a saved counterexample back into its trace.
    Replay {
        /// A counterexample file written by `conclave explore`.
        file: PathBuf,
        /// Also write the replayed trace as a chart (.html, .mmd, .shiviz, .txt) into DIR.
        #[arg(long, value_name = "DIR")]
        report: Option<PathBuf>,
    },
    /// Reduce a failing run to a small scenario that still fails the same way.
    Shrink(shrink::Args),
    /// Write the report files (.html, .mmd, .shiviz, .txt) of a run that `conclave run
    /// --json --trace` printed, or of a counterexample that `conclave explore` saved.
    Report {
        /// The JSON file.
        file: PathBuf,
        /// The folder to write into (default: the working directory).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Election messages and time to a stable leader against cluster size, per fault case.
    Compare(compare::Args),
    /// Run a service registry that speaks Consul's HTTP API (the subset the nodes use):
    /// register, deregister, healthy instances, catalog, blocking queries.
    Registry {
        /// Address to listen on; a non-loopback one needs --token-file.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8500")]
        listen: std::net::SocketAddr,
        /// File holding the token every request must carry (as X-Consul-Token).
        #[arg(long, value_name = "FILE")]
        token_file: Option<PathBuf>,
        /// Exit when stdin ends (`conclave cluster up` holds its services' stdin, so they
        /// end when it dies).
        #[arg(long)]
        stop_on_stdin_eof: bool,
    },
    /// Run one node of a scenario on real sockets (TCP), until `q`, Ctrl-C or SIGTERM.
    Node(node::Args),
    /// Run a scenario's nodes as processes on this machine, and crash, pause or cut them off.
    Cluster(cluster::Args),
    /// Run seed 003's group coordinator daemon: nodes JOIN with their identity (days, student
    /// id) and address and get the member list back.
    Gcd {
        /// Address to listen on.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:50550")]
        listen: std::net::SocketAddr,
        /// Wire format: Conclave's frames (the `net` wire format), or the lab's pickled (name, data) tuples.
        #[arg(long, value_enum, default_value = "conclave")]
        wire: GcdWire,
        /// Exit when stdin ends (`conclave cluster up` holds its services' stdin, so they
        /// end when it dies).
        #[arg(long)]
        stop_on_stdin_eof: bool,
    },
    /// Run seed 002's central log server: nodes report to it, /status shows them live with
    /// the "Block Connections" form, and the log is kept in SQLite.
    Monitor {
        /// Address to listen on; a non-loopback one needs --token-file.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:4711")]
        listen: std::net::SocketAddr,
        /// The SQLite file of the log (created if missing; kept across restarts).
        #[arg(long, value_name = "FILE", default_value = ".conclave/monitor.sqlite3")]
        db: PathBuf,
        /// File holding the token every request must carry (Authorization: Bearer).
        #[arg(long, value_name = "FILE")]
        token_file: Option<PathBuf>,
        /// A node without a report for this long is marked stale (500ms, 3s, 1m...).
        #[arg(long, value_name = "DUR", default_value = "3s",
              value_parser = conclave_services::registry::wire::parse_duration)]
        stale_after: std::time::Duration,
        /// Exit when stdin ends (`conclave cluster up` holds its services' stdin, so they
        /// end when it dies).
        #[arg(long)]
        stop_on_stdin_eof: bool,
    },
}

/// `conclave gcd --wire`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum GcdWire {
    Conclave,
    Lab,
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
    // replay command are printed, INCOMPLETE. A second Ctrl-C quits at once. The registry
    // keeps the default, as do the group daemon and the monitor (Ctrl-C ends them); real
    // nodes and the cluster runner stop on their own signal handling.
    if !matches!(
        cli.command,
        Command::Registry { .. }
            | Command::Gcd { .. }
            | Command::Monitor { .. }
            | Command::Node(_)
            | Command::Cluster(_)
    ) {
        let _ = ctrlc::set_handler(|| {
            if conclave_sim::world::INTERRUPTED.swap(true, Ordering::Relaxed) {
                std::process::exit(130);
            }
        });
    }
    let code = std::panic::catch_unwind(|| match cli.command {
        Command::Run {
            file,
            seed,
            trace,
            json,
            report,
            budget,
        } => budget.run_with(|budget| cmd_run(&file, seed, trace, json, report.as_deref(), budget)),
        Command::Check {
            paths,
            junit,
            budget,
        } => budget.run_with(|budget| cmd_check(&paths, junit.as_deref(), budget)),
        Command::Sweep {
            file,
            seeds,
            from,
            jobs,
            shard,
            save_failures,
            json,
            junit,
            results,
            check_determinism,
            report,
            budget,
        } => budget.run_with(|budget| {
            sweep::cmd_sweep(
                &file,
                &sweep::Flags {
                    seeds,
                    from,
                    jobs,
                    shard,
                    save_failures,
                    json,
                    junit,
                    results,
                    check_determinism,
                    budget,
                    report,
                },
            )
        }),
        Command::Conform {
            logs,
            scenario,
            clock_uncertainty,
            json,
        } => conform::cmd_conform(&logs, &scenario, clock_uncertainty, json),
        Command::Merge {
            files,
            json,
            results,
        } => sweep::cmd_merge(&files, json, results.as_deref()),
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
            report,
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
                report,
            };
            explore::cmd_explore(&file, &opts)
        }
        Command::Replay { file, report } => explore::cmd_replay(&file, report.as_deref()),
        Command::Shrink(args) => shrink::cmd_shrink(&args),
        Command::Report { file, out } => report::cmd_report(&file, out.as_deref()),
        Command::Compare(args) => compare::cmd_compare(&args),
        Command::Registry {
            listen,
            token_file,
            stop_on_stdin_eof,
        } => {
            exit_on_stdin_eof(stop_on_stdin_eof);
            cmd_registry(listen, token_file.as_deref())
        }
        Command::Node(args) => node::cmd_node(&args),
        Command::Cluster(args) => cluster::cmd_cluster(&args),
        Command::Gcd {
            listen,
            wire,
            stop_on_stdin_eof,
        } => {
            exit_on_stdin_eof(stop_on_stdin_eof);
            cmd_gcd(listen, wire)
        }
        Command::Monitor {
            listen,
            db,
            token_file,
            stale_after,
            stop_on_stdin_eof,
        } => {
            exit_on_stdin_eof(stop_on_stdin_eof);
            cmd_monitor(listen, db, token_file.as_deref(), stale_after)
        }
    })
    .unwrap_or(INTERNAL);
    ExitCode::from(code)
}

/// With `on`, a thread that ends the process (status 0) when stdin ends: a service that
/// `conclave cluster up` started outlives no runner. Its state needs no flushing (the
/// monitor's log is committed report by report).
fn exit_on_stdin_eof(on: bool) {
    if on {
        std::thread::spawn(|| {
            let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
            std::process::exit(0);
        });
    }
}

/// Serves the monitor until the process ends; bad flags (or an unusable database) exit 2.
fn cmd_monitor(
    listen: std::net::SocketAddr,
    db: PathBuf,
    token_file: Option<&Path>,
    stale_after: std::time::Duration,
) -> u8 {
    use conclave_services::monitor;
    let served =
        monitor::Options::new(listen, db, token_file, stale_after).and_then(monitor::serve);
    exit_code_of(served, monitor::MonitorError::is_bad_input)
}

/// Serves the registry until the process ends; bad flags exit 2.
fn cmd_registry(listen: std::net::SocketAddr, token_file: Option<&Path>) -> u8 {
    use conclave_services::registry;
    let served = registry::Options::new(listen, token_file).and_then(registry::serve);
    exit_code_of(served, registry::RegistryError::is_bad_input)
}

/// Serves the group coordinator daemon until the process ends; an address it cannot bind
/// exits 2.
fn cmd_gcd(listen: std::net::SocketAddr, wire: GcdWire) -> u8 {
    use conclave_services::gcd;
    let wire = match wire {
        GcdWire::Conclave => gcd::Wire::Conclave,
        GcdWire::Lab => gcd::Wire::Lab,
    };
    exit_code_of(
        gcd::serve(gcd::Options { listen, wire }),
        gcd::GcdError::is_bad_input,
    )
}

/// The exit code of a service that stopped: 0, or the error printed and 2 for a mistake in
/// the flags, 3 for a failure while serving.
fn exit_code_of<E: std::fmt::Display>(served: Result<(), E>, bad_input: fn(&E) -> bool) -> u8 {
    match served {
        Ok(()) => HELD,
        Err(e) => {
            eprintln!("error: {e}");
            if bad_input(&e) {
                BAD_INPUT
            } else {
                INTERNAL
            }
        }
    }
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

    /// Runs `command` with the budget, or says why the flags give none (exit code 2).
    fn run_with(&self, command: impl FnOnce(conclave_sim::world::Budget) -> u8) -> u8 {
        match self.budget() {
            Ok(budget) => command(budget),
            Err(why) => {
                eprintln!("error: {why}");
                BAD_INPUT
            }
        }
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

fn cmd_run(
    file: &Path,
    seed: Option<u64>,
    trace: bool,
    json: bool,
    report_dir: Option<&Path>,
    budget: conclave_sim::world::Budget,
) -> u8 {
    let (scenario, record, seed) = match record::load_given(file, seed) {
        Ok(given) => (given.scenario, given.record, given.seed),
        Err(code) => return code,
    };
    // The replay command names what was given: a record replays as itself.
    let given = file.to_string_lossy().into_owned();
    // The trace streams out as the run makes it: a long run's trace is never held.
    let sink: fn(&TraceEvent) = match (trace, json) {
        (true, true) => {
            print!("{{\"trace\":[");
            print_trace_json
        }
        _ => print_trace_line,
    };
    // A report keeps the trace (and prints it after the run, with --trace).
    let keep = report_dir.is_some();
    let opts = RunOptions {
        record_trace: trace || keep,
        budget: conclave_sim::world::Budget {
            progress: progress::start(&scenario).then_some(progress::advance as _),
            ..budget
        },
        trace_sink: (trace && !keep).then_some(sink),
        no_trace_hash: false,
    };
    let mut report = run_scenario(&scenario, &given, seed, &opts);
    let kept = report.trace.take();
    if trace {
        kept.iter().flatten().for_each(sink);
    }
    if record.is_some() {
        report.replay = format!("conclave run {given}");
    }
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
    if let Some(r) = &record {
        if r.trace_hash == report.trace_hash {
            eprintln!(
                "record: seed {} ran to the recorded trace hash {}",
                r.seed, r.trace_hash
            );
        } else {
            eprintln!(
                "record: seed {} ran to trace hash {}, not the recorded {}: this is not the recorded run",
                r.seed, report.trace_hash, r.trace_hash
            );
        }
    }
    if let Some(dir) = report_dir {
        report.trace = kept;
        if let Some(code) = report::write_run(&report, dir) {
            return code;
        }
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

fn cmd_check(paths: &[PathBuf], junit: Option<&Path>, budget: conclave_sim::world::Budget) -> u8 {
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
    let mut report = conclave_reports::junit::Report::new("conclave check");
    for file in &files {
        let scenario = match Scenario::load(file) {
            Ok(s) => s,
            Err(e) => {
                print!("{}", conclave_reports::check::bad(&file.to_string_lossy()));
                print_scenario_error(&e);
                report.add_test_suite(conclave_reports::junit::bad_suite(
                    &file.to_string_lossy(),
                    &e.to_string(),
                ));
                bad += 1;
                continue;
            }
        };
        let mut failures = Vec::new();
        let mut results = Vec::new();
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
            results.push(sweep::result_of(&scenario, &r));
            if !r.ok {
                failures.push(r);
            }
        }
        report.add_test_suite(conclave_reports::junit::suite(
            &scenario,
            &file.to_string_lossy(),
            &results,
        ));
        let seeds = scenario.seeds.len();
        let name = file.to_string_lossy();
        if failures.is_empty() {
            passed += 1;
            print!("{}", conclave_reports::check::passed(&name, seeds));
        } else {
            failed += 1;
            let failures: Vec<&RunReport> = failures.iter().collect();
            print!(
                "{}",
                conclave_reports::check::failed(&name, seeds, &failures)
            );
        }
    }
    print!(
        "{}",
        conclave_reports::check::totals(files.len(), runs, bad, passed, failed)
    );
    if let Some(path) = junit {
        if let Err(e) =
            sweep::write_atomically(path, conclave_reports::junit::to_xml(&report).as_bytes())
        {
            eprintln!("error: --junit {}: {e}", path.display());
            return BAD_INPUT;
        }
    }
    if bad > 0 {
        BAD_INPUT
    } else if failed > 0 {
        VIOLATED
    } else {
        HELD
    }
}
