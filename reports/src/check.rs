//! What `conclave check` prints: a line per scenario file, each failing seed's failures with
//! its replay command, and the totals.

use conclave_sim::run::RunReport;
use std::fmt::Write;

/// Why a run failed, a line each: cut short, or an expectation not met (with when and why).
pub fn failure_lines(r: &RunReport) -> Vec<String> {
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

/// A scenario file whose seeds all held.
pub fn passed(file: &str, seeds: usize) -> String {
    format!(
        "ok      {file} ({seeds} seed{})\n",
        if seeds == 1 { "" } else { "s" }
    )
}

/// A scenario file that could not be loaded (the error follows on standard error).
pub fn bad(file: &str) -> String {
    format!("BAD     {file}\n")
}

/// A scenario file with failing seeds: each seed's failures and its replay command.
pub fn failed(file: &str, seeds: usize, failures: &[&RunReport]) -> String {
    let mut s = format!(
        "FAILED  {file} ({} of {seeds} seeds failed)\n",
        failures.len()
    );
    for r in failures {
        for l in failure_lines(r) {
            let _ = writeln!(s, "        seed {}: {l}", r.seed);
        }
        let _ = writeln!(s, "        replay: {}", r.replay);
    }
    s
}

/// The closing lines.
pub fn totals(files: usize, runs: usize, bad: usize, passed: usize, failed: usize) -> String {
    format!(
        "{files} scenario files, {runs} runs, {bad} with bad input\ncheck: {passed} passed, {failed} failed\n"
    )
}
