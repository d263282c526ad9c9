//! `conclave shrink`: reduce a failing run to a small scenario that fails the same way, and
//! write it out as an ordinary scenario file (see `conclave_sim::shrink`).

use crate::{BudgetFlags, BAD_INPUT, HELD, INTERNAL};
use conclave_sim::run::{run_scenario, RunOptions};
use conclave_sim::scenario::Scenario;
use conclave_sim::shrink::{
    find_failure, shrink, spec_text, ShrinkOptions, Shrunk, Size, Step, DEFAULT_MAX_RUNS,
};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// The scenario file (RON; with a `sweep` block, the seed's drawn faults are written
    /// in), or a record that `conclave sweep --save-failures` wrote (its scenario and seed).
    file: PathBuf,
    /// The seed whose run to shrink (default: the scenario's first seed).
    #[arg(long)]
    seed: Option<u64>,
    /// Where to write the minimal scenario (default: `<scenario name>.seed-<N>.min.ron` in
    /// the current folder).
    #[arg(long, short, value_name = "FILE.ron")]
    output: Option<PathBuf>,
    /// The failed expectation to keep, named as reports name it (`AtMostOneLeader`,
    /// `LeaderIs(b, end)`; default: the first that failed).
    #[arg(long, value_name = "NAME")]
    property: Option<String>,
    /// The most runs to make; at the bound the smallest scenario found so far is written.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_RUNS)]
    max_runs: usize,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    budget: BudgetFlags,
}

pub fn cmd_shrink(args: &Args) -> u8 {
    // A record of `sweep --save-failures` names its scenario and seed.
    let (scenario, file, seed) = match crate::record::load_given(&args.file, args.seed) {
        Ok(given) => (given.scenario, given.scenario_path, given.seed),
        Err(code) => return code,
    };
    let file = &file;
    if args.max_runs == 0 {
        eprintln!("error: --max-runs must be at least 1");
        return BAD_INPUT;
    }
    let budget = match args.budget.budget() {
        Ok(b) => b,
        Err(why) => {
            eprintln!("error: {why}");
            return BAD_INPUT;
        }
    };
    let output = args.output.clone().unwrap_or_else(|| {
        PathBuf::from(format!("{}.seed-{seed}.min.ron", file_safe(&scenario.name)))
    });
    if same_file(&output, file) {
        eprintln!(
            "error: --output {} is the scenario being shrunk: give another file",
            output.display()
        );
        return BAD_INPUT;
    }
    let failure = match find_failure(&scenario, seed, args.property.as_deref(), &budget) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {}: {e}", file.display());
            return BAD_INPUT;
        }
    };
    let original = Size::of(&scenario.for_seed(seed));
    if !args.json {
        println!(
            "shrinking {} seed {seed}: {failure} ({original})",
            file.display()
        );
    }
    let opts = ShrinkOptions {
        max_runs: args.max_runs,
        budget,
    };
    let json = args.json;
    let mut print_step = |step: &Step| {
        if !json {
            println!("  {}  => {}", step.change, step.size);
        }
    };
    let shrunk = match shrink(&scenario, seed, &failure, &opts, &mut print_step) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("internal error (a bug in conclave, please report it): {e}");
            return INTERNAL;
        }
    };
    let text = file_text(
        &shrunk,
        &scenario,
        file,
        seed,
        &failure.to_string(),
        &output,
    );
    // The file as written must fail as the shrink found: one more run says so.
    let back = match Scenario::from_str(&text, &output.to_string_lossy()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("internal error (a bug in conclave, please report it): the shrunk scenario does not load: {e}");
            return INTERNAL;
        }
    };
    let opts = RunOptions {
        budget,
        ..RunOptions::default()
    };
    // (After Ctrl-C every run stops at once: the shrink's own run of it must do.)
    let check =
        (!shrunk.interrupted).then(|| run_scenario(&back, &output.to_string_lossy(), seed, &opts));
    if check.is_some_and(|c| c.incomplete.is_some() || failure.in_report(&c).is_none()) {
        eprintln!(
            "internal error (a bug in conclave, please report it): the shrunk scenario does not fail {failure}"
        );
        return INTERNAL;
    }
    if let Err(e) = write_atomically(&output, &text) {
        eprintln!("error: cannot write {}: {e}", output.display());
        return BAD_INPUT;
    }
    let replay = format!("conclave run {}", output.display());
    if args.json {
        let when = shrunk.failed_at.map(|t| t.to_string());
        let out = serde_json::json!({
            "file": file.to_string_lossy(),
            "seed": seed,
            "property": failure.property.to_string(),
            "expected": failure.expected,
            "failed_at": when,
            "failed_at_us": shrunk.failed_at.map(|t| t.as_micros()),
            "detail": shrunk.detail,
            "original": shrunk.original,
            "final": shrunk.size,
            "faults": shrunk.scenario.faults.iter().map(spec_text).collect::<Vec<_>>(),
            "steps": shrunk.steps,
            "runs": shrunk.runs,
            "max_runs": args.max_runs,
            "max_runs_reached": shrunk.max_runs_reached,
            "interrupted": shrunk.interrupted,
            "output": output.to_string_lossy(),
            "replay": replay,
        });
        println!("{out}");
        // Shrunk and written: success, whatever the scenario's verdict.
        return HELD;
    }
    if shrunk.steps.is_empty() && !shrunk.max_runs_reached && !shrunk.interrupted {
        println!("  (no smaller scenario fails the same way)");
    }
    println!(
        "minimal: {} (from {}), {} runs",
        shrunk.size, shrunk.original, shrunk.runs
    );
    if shrunk.max_runs_reached {
        println!(
            "  stopped at the bound of {} runs (--max-runs): perhaps not minimal",
            args.max_runs
        );
    }
    if shrunk.interrupted {
        println!("  interrupted (Ctrl-C): perhaps not minimal");
    }
    println!("  {}", failure_line(&shrunk, &failure.to_string()));
    for (i, f) in shrunk.scenario.faults.iter().enumerate() {
        println!("  faults[{i}] {}", spec_text(f));
    }
    println!("wrote {}", output.display());
    println!("run it: {replay}");
    HELD
}

/// `AtMostOneLeader violated at t=1s: a and b both lead`.
fn failure_line(shrunk: &Shrunk, failure: &str) -> String {
    let mut s = failure.to_string();
    if let Some(t) = shrunk.failed_at {
        s.push_str(&format!(" at t={t}"));
    }
    if let Some(d) = &shrunk.detail {
        s.push_str(&format!(": {d}"));
    }
    s
}

/// The shrunk scenario as a file: named after the output, with a header that says where it
/// comes from.
fn file_text(
    shrunk: &Shrunk,
    original: &Scenario,
    file: &Path,
    seed: u64,
    failure: &str,
    output: &Path,
) -> String {
    let mut s = shrunk.scenario.clone();
    s.name = output
        .file_stem()
        .map_or_else(|| s.name.clone(), |n| n.to_string_lossy().into_owned());
    s.description = format!(
        "seed {seed} of {}, shrunk by conclave shrink: {failure}",
        original.name
    );
    let header = format!(
        "Shrunk by conclave {} (conclave shrink) from {}, seed {seed}:\n{}.\n{} before, {} now ({} runs{}).\nRun it: conclave run {}",
        env!("CARGO_PKG_VERSION"),
        file.display(),
        failure_line(shrunk, failure),
        shrunk.original,
        shrunk.size,
        shrunk.runs,
        if shrunk.max_runs_reached || shrunk.interrupted {
            ", stopped early: perhaps not minimal"
        } else {
            ""
        },
        output.display()
    );
    s.to_ron(&header)
}

/// A scenario name as a file name: characters other than letters, digits, `-`, `_` and
/// `.` become `_`.
fn file_safe(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with('.') {
        format!("scenario{s}")
    } else {
        s
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Writes `text` to `path` through a temporary file in the same folder renamed over it, so
/// that `path` never holds half a scenario.
fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file name"))?;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
