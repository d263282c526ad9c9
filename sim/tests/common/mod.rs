//! What several of the simulator's test files need: the scenario files under a folder.

use std::path::{Path, PathBuf};

/// Every `.ron` file under `dir`, in sorted order, folders searched recursively.
pub fn scenario_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for e in entries {
        if e.is_dir() {
            scenario_files(&e, out);
        } else if e.extension().is_some_and(|x| x == "ron") {
            out.push(e);
        }
    }
}
