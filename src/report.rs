//! `conclave run FILE --report DIR` and `conclave report FILE.json [--out DIR]`: a run's
//! report as files (HTML with its message sequence chart, Mermaid, ShiViz, text). The
//! rendering is `conclave_reports`; this writes the files and maps errors to exit codes.

use crate::{BAD_INPUT, HELD};
use conclave_reports::Source;
use conclave_sim::run::RunReport;
use conclave_sim::scenario::read_text_at_most;
use std::path::Path;

/// The most bytes `conclave report` reads (a long run's JSON trace is some hundred MiB).
const MAX_REPORT_BYTES: u64 = 1 << 30;

/// Writes the report files of `source` into `dir` and names them on standard error (so that
/// `--json` keeps standard output to itself), then the regular expression ShiViz reads the
/// log with if `shiviz_regex`; `None` if it went well, else the exit code.
pub(crate) fn write(source: &Source, dir: &Path, shiviz_regex: bool) -> Option<u8> {
    match conclave_reports::write_all(source, dir) {
        Ok(paths) => {
            let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
            eprintln!("report: {}", names.join(", "));
            if shiviz_regex {
                eprintln!(
                    "report: ShiViz regular expression: {}",
                    conclave_reports::shiviz::REGEX
                );
            }
            None
        }
        Err(e) => {
            eprintln!("error: cannot write the report in {}: {e}", dir.display());
            Some(BAD_INPUT)
        }
    }
}

/// After `conclave run FILE --report DIR`: the run kept its trace for this.
pub fn write_run(report: &RunReport, dir: &Path) -> Option<u8> {
    write(&Source::Run(report), dir, true)
}

/// `conclave report FILE.json [--out DIR]`: 0 when the files are written, 2 for input that is
/// neither a run report with its trace nor a counterexample.
pub fn cmd_report(file: &Path, out: Option<&Path>) -> u8 {
    let text = match read_text_at_most(file, MAX_REPORT_BYTES, "a report file") {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {}: cannot read: {e}", file.display());
            return BAD_INPUT;
        }
    };
    let loaded = match conclave_reports::load_json(&text) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {}:{e}", file.display());
            return BAD_INPUT;
        }
    };
    drop(text);
    let name = file.to_string_lossy();
    let source = loaded.source(&name);
    write(&source, out.unwrap_or(Path::new(".")), true).unwrap_or(HELD)
}
