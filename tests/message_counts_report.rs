//! `reports/message_counts.md` and its plots (`reports/message_counts/*.svg`) are what
//! `conclave compare` makes of `scenarios/compare/*.ron` now, byte for byte.
//!
//! After a change that moves a count, regenerate them with
//! `UPDATE_MESSAGE_COUNTS=1 cargo test --test message_counts_report`, or
//! `cargo run --release -- compare scenarios/compare/*.ron --nodes 4,8,16 --seeds 3 --report reports/`
//! (the same command), and commit the result. Small sizes and 3 seeds keep this a few
//! seconds in a debug build.

use std::path::{Path, PathBuf};
use std::process::Command;

const SIZES: &str = "4,8,16";
const SEEDS: &str = "3";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `scenarios/compare/*.ron`, sorted as the shell's glob sorts them.
fn scenarios() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(root().join("scenarios/compare"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|f| f.ends_with(".ron"))
        .map(|f| format!("scenarios/compare/{f}"))
        .collect();
    files.sort();
    files
}

/// Every file of a report folder: the Markdown, then the plots, by name.
fn report_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = vec![(
        "message_counts.md".to_string(),
        std::fs::read(dir.join("message_counts.md")).unwrap_or_default(),
    )];
    let mut plots: Vec<String> = std::fs::read_dir(dir.join("message_counts"))
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    plots.sort();
    for p in plots {
        let bytes = std::fs::read(dir.join("message_counts").join(&p)).unwrap();
        out.push((format!("message_counts/{p}"), bytes));
    }
    out
}

#[test]
fn message_counts_report_is_what_compare_makes() {
    let update = std::env::var_os("UPDATE_MESSAGE_COUNTS").is_some_and(|v| v != "0");
    let out_dir = if update {
        root().join("reports")
    } else {
        let d =
            std::env::temp_dir().join(format!("conclave-message-counts-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    };
    let mut args: Vec<String> = vec!["compare".into()];
    args.extend(scenarios());
    args.extend(["--nodes", SIZES, "--seeds", SEEDS, "--report"].map(String::from));
    args.push(out_dir.to_string_lossy().into_owned());
    let out = Command::new(env!("CARGO_BIN_EXE_conclave"))
        .args(&args)
        .current_dir(root())
        .output()
        .expect("the conclave binary runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    if update {
        eprintln!("rewrote reports/message_counts.md and reports/message_counts/");
        return;
    }
    let made = report_files(&out_dir);
    let committed = report_files(&root().join("reports"));
    let _ = std::fs::remove_dir_all(&out_dir);
    let how = "regenerate with `UPDATE_MESSAGE_COUNTS=1 cargo test --test message_counts_report` (or `cargo run --release -- compare scenarios/compare/*.ron --nodes 4,8,16 --seeds 3 --report reports/`) and commit reports/message_counts.md and reports/message_counts/";
    let names = |files: &[(String, Vec<u8>)]| files.iter().map(|f| f.0.clone()).collect::<Vec<_>>();
    assert_eq!(
        names(&committed),
        names(&made),
        "the report's files differ: {how}"
    );
    for ((name, want), (_, got)) in made.iter().zip(&committed) {
        if want == got {
            continue;
        }
        let (want, got) = (String::from_utf8_lossy(want), String::from_utf8_lossy(got));
        let line = want
            .lines()
            .zip(got.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| want.lines().count().min(got.lines().count()));
        panic!(
            "reports/{name} is not what `conclave compare` makes now (first difference at line {}):\n  committed: {}\n  made:      {}\n{how}",
            line + 1,
            got.lines().nth(line).unwrap_or("(end of file)"),
            want.lines().nth(line).unwrap_or("(end of file)"),
        );
    }
}
