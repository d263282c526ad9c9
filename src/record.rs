//! Records of failing seeds (`conclave sweep --save-failures`): the drawn faults written
//! out as an ordinary scenario, and a JSON record of the scenario, the seed and the version
//! that produced it, which `conclave run RECORD.json` replays.

use crate::sweep::{write_atomically, Failed, SeedResult};
use crate::{print_scenario_error, BAD_INPUT};
use conclave_sim::scenario::{read_text, read_text_at_most, Scenario};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A failing seed, as `--save-failures` writes it.
#[derive(Serialize, Deserialize)]
pub struct Record {
    /// The conclave version that ran the seed.
    pub conclave_version: String,
    /// The scenario file as it was given to `conclave sweep`.
    pub scenario: String,
    /// The scenario's path from the record's folder (found from any working directory).
    #[serde(default)]
    pub scenario_relative_to_file: Option<String>,
    /// The 64-bit XXH3 hash of the scenario file's bytes, to tell if it changed since.
    pub scenario_hash: String,
    pub seed: u64,
    pub trace_hash: String,
    pub failed: Vec<Failed>,
    /// The scenario with the seed's faults written in, beside the record.
    pub reproducer: String,
}

pub use conclave_reports::sweep::SavedSeed as Saved;

fn hash_of(bytes: &[u8]) -> String {
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(bytes))
}

/// A file name made of the scenario's name: letters, digits, `_`, `-` and `.`.
fn file_stem(scenario: &Scenario) -> String {
    scenario
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Saves seed `r.seed` of `scenario` (loaded from `file`) in `dir`: the reproducer and the
/// record, each written whole or not at all.
pub fn save(
    scenario: &Scenario,
    file: &Path,
    r: &SeedResult,
    dir: &Path,
) -> std::io::Result<Saved> {
    let stem = format!("{}.seed-{}", file_stem(scenario), r.seed);
    let ron_path = dir.join(format!("{stem}.ron"));
    let json_path = dir.join(format!("{stem}.json"));
    let mut run = scenario.for_seed(r.seed).into_owned();
    run.seeds = vec![r.seed];
    let failed: Vec<String> = r
        .failed
        .iter()
        .map(|f| {
            let what = if f.expected == "holds" {
                "violated"
            } else {
                "held, expected violated"
            };
            format!("{} {what}", f.property)
        })
        .collect();
    let header = format!(
        "Seed {} of {}, its drawn faults written out by conclave {}.\n`conclave run` of this file fails: {}.\nTrace hash {}.",
        r.seed,
        file.display(),
        env!("CARGO_PKG_VERSION"),
        failed.join(", "),
        r.trace_hash
    );
    let bytes = std::fs::read(file)?;
    let relative = std::fs::canonicalize(file)
        .and_then(|f| Ok((f, std::fs::canonicalize(dir)?)))
        .ok()
        .and_then(|(f, d)| crate::explore::relative_path(&f, &d))
        .map(|p| p.to_string_lossy().into_owned());
    let record = Record {
        conclave_version: env!("CARGO_PKG_VERSION").to_string(),
        scenario: file.to_string_lossy().into_owned(),
        scenario_relative_to_file: relative,
        scenario_hash: hash_of(&bytes),
        seed: r.seed,
        trace_hash: r.trace_hash.clone(),
        failed: r.failed.clone(),
        reproducer: format!("{stem}.ron"),
    };
    let json = serde_json::to_string_pretty(&record).map_err(std::io::Error::other)? + "\n";
    write_atomically(&ron_path, run.to_ron(&header).as_bytes())?;
    write_atomically(&json_path, json.as_bytes())?;
    Ok(Saved {
        scenario: ron_path,
        record: json_path,
    })
}

/// A record read back: its scenario loaded, and what to say about it before the run.
pub struct Loaded {
    pub record: Record,
    pub scenario_path: PathBuf,
    pub scenario: Scenario,
    /// Warnings: another version, a changed scenario file.
    pub notes: Vec<String>,
}

/// Reads a record and loads its scenario; an error names the file and what is wrong.
pub fn load(path: &Path) -> Result<Loaded, String> {
    let text = read_text_at_most(path, 1 << 20, "a record")
        .map_err(|e| format!("{}: cannot read record: {e}", path.display()))?;
    let record: Record = serde_json::from_str(&text).map_err(|e| {
        format!(
            "{}:{}:{}: not a record of `conclave sweep --save-failures`: {e}",
            path.display(),
            e.line(),
            e.column()
        )
    })?;
    let folder = path.parent().unwrap_or(Path::new(""));
    let scenario_path = record
        .scenario_relative_to_file
        .as_ref()
        .map(|r| folder.join(r))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(&record.scenario));
    let bytes = read_text(&scenario_path).map_err(|e| {
        format!(
            "{}: the record's scenario {} cannot be read: {e}",
            path.display(),
            scenario_path.display()
        )
    })?;
    let scenario = Scenario::load(&scenario_path).map_err(|e| {
        format!(
            "{}: the record's scenario does not load: {e}",
            path.display()
        )
    })?;
    let mut notes = Vec::new();
    let version = env!("CARGO_PKG_VERSION");
    if record.conclave_version != version {
        notes.push(format!(
            "this record was written by conclave {}, and this is conclave {version}: the run may differ",
            record.conclave_version
        ));
    }
    if hash_of(bytes.as_bytes()) != record.scenario_hash {
        notes.push(format!(
            "{} has changed since the record was written: the run may differ",
            scenario_path.display()
        ));
    }
    Ok(Loaded {
        record,
        scenario_path,
        scenario,
        notes,
    })
}

/// What `conclave run` and `conclave shrink` were given: a scenario file, or a record that
/// names its scenario and seed.
pub struct Given {
    pub scenario: Scenario,
    /// The scenario's file: the one given, or the one the record names.
    pub scenario_path: PathBuf,
    pub record: Option<Record>,
    /// The seed to run: the record's, else `--seed`, else the scenario's first.
    pub seed: u64,
}

/// Loads `file`, a scenario or (ending in `.json`) a record, to run with `--seed` `seed`,
/// which cannot change a record's seed. Prints the record's warnings; on an error, prints
/// it and gives the exit code.
pub fn load_given(file: &Path, seed: Option<u64>) -> Result<Given, u8> {
    if file.extension().is_some_and(|x| x == "json") {
        let loaded = load(file).map_err(|why| {
            eprintln!("error: {why}");
            BAD_INPUT
        })?;
        let recorded = loaded.record.seed;
        if seed.is_some_and(|s| s != recorded) {
            eprintln!(
                "error: {} is a record of seed {recorded}: --seed cannot change it",
                file.display()
            );
            return Err(BAD_INPUT);
        }
        for note in &loaded.notes {
            eprintln!("warning: {note}");
        }
        return Ok(Given {
            scenario: loaded.scenario,
            scenario_path: loaded.scenario_path,
            record: Some(loaded.record),
            seed: recorded,
        });
    }
    let scenario = Scenario::load(file).map_err(|e| {
        print_scenario_error(&e);
        BAD_INPUT
    })?;
    Ok(Given {
        seed: seed.unwrap_or(scenario.seeds[0]),
        scenario,
        scenario_path: file.to_path_buf(),
        record: None,
    })
}
