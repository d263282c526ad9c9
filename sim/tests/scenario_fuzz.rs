//! Scenario files as users break them: every shipped scenario, cut, spliced and given
//! stray tokens, parses to a scenario or to an error that names the file (and, for the
//! parser's errors, a line and column), never to a panic; a mutant that parses runs, with
//! an event budget, without a panic either, and so do a sweep of a few seeds of one with a
//! `sweep` section and the explorer on one with an `explore` section (500 states at most).

use conclave_sim::explore::{explore, ExploreOptions};
use conclave_sim::run::{run_scenario, RunOptions};
use conclave_sim::scenario::{ErrorKind, Scenario};
use conclave_sim::sweep::run_seeds;
use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Every `.ron` under scenarios/, read once.
fn shipped() -> Vec<(String, String)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut found = Vec::new();
    let mut dirs = vec![root];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "ron") {
                let text = std::fs::read_to_string(&path).unwrap();
                found.push((path.display().to_string(), text));
            }
        }
    }
    found.sort();
    found
}

/// Tokens that make RON wrong in interesting ways, or right with odd values.
const TOKENS: &[&str] = &[
    "(",
    ")",
    "[",
    "]",
    ",",
    ":",
    "\"",
    "-1",
    "0",
    "18446744073709551616",
    "1e400",
    "\"0ms\"",
    "\"-5s\"",
    "\"1h\"",
    "\"99999999999999s\"",
    "\"\"",
    "()",
    "[]",
    "None",
    "Some(",
    "true",
    "name: \"n1\",",
    "id: 0,",
    "\u{feff}",
    "é",
    "\n",
    "//",
    "/*",
];

#[derive(Clone, Debug)]
enum Edit {
    /// Removes the bytes [at, at + len) (snapped to char boundaries).
    Cut { at: usize, len: usize },
    /// Copies [from, from + len) to `at`.
    Splice { from: usize, len: usize, at: usize },
    /// Inserts a token at `at`.
    Token { at: usize, token: usize },
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), 0usize..40).prop_map(|(at, len)| Edit::Cut { at, len }),
        (any::<usize>(), 0usize..80, any::<usize>()).prop_map(|(from, len, at)| Edit::Splice {
            from,
            len,
            at
        }),
        (any::<usize>(), 0..TOKENS.len()).prop_map(|(at, token)| Edit::Token { at, token }),
    ]
}

/// The nearest char boundary at or before `i % (len + 1)`.
fn boundary(text: &str, i: usize) -> usize {
    let mut i = i % (text.len() + 1);
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn apply(text: &mut String, edit: &Edit) {
    match *edit {
        Edit::Cut { at, len } => {
            let start = boundary(text, at);
            let end = boundary(text, (start + len).min(text.len()));
            text.replace_range(start..end.max(start), "");
        }
        Edit::Splice { from, len, at } => {
            let start = boundary(text, from);
            let end = boundary(text, (start + len).min(text.len())).max(start);
            let piece = text[start..end].to_string();
            let at = boundary(text, at);
            text.insert_str(at, &piece);
        }
        Edit::Token { at, token } => {
            let at = boundary(text, at);
            text.insert_str(at, TOKENS[token]);
        }
    }
}

/// Parses (and, if that succeeds, runs a little of) one mutant; fails the case on a bad
/// error. A panic fails it too (proptest catches it and shrinks).
fn check(file: &str, text: &str, ran: &AtomicUsize) -> Result<(), TestCaseError> {
    match Scenario::from_str(text, file) {
        Err(e) => {
            let shown = e.to_string();
            prop_assert!(shown.starts_with(file), "{shown}");
            prop_assert!(!e.message.is_empty(), "{shown}");
            if e.kind == ErrorKind::Syntax {
                prop_assert!(
                    e.position.is_some(),
                    "a parse error without a place: {shown}"
                );
            }
        }
        Ok(scenario) => {
            let mut opts = RunOptions::default();
            opts.budget.max_events = Some(20_000);
            let seed = scenario.seeds.first().copied().unwrap_or(0);
            let _ = run_scenario(&scenario, file, seed, &opts);
            ran.fetch_add(1, Ordering::Relaxed);
            if scenario.sweep.is_some() {
                // The sweep's random faults, drawn for a few seeds.
                let _ = run_seeds(&scenario, &[1, 2, 3], 1, &opts, &|_| {});
            }
            if scenario.explore.is_some() {
                let opts = ExploreOptions {
                    max_states: Some(500),
                    message_bounds: true,
                    ..ExploreOptions::default()
                };
                let _ = explore(&scenario, file, &opts);
            }
        }
    }
    Ok(())
}

#[test]
fn mutated_scenarios_give_an_error_with_a_place_or_a_run_never_a_panic() {
    let files = shipped();
    assert!(files.len() >= 20, "{} scenarios found", files.len());
    // 1,024 cases from seed 7; `PROPTEST_CASES` and `PROPTEST_RNG_SEED` fuzz longer or elsewhere.
    let mut runner = TestRunner::new(conclave_testkit::fuzz::config(1024, 7));
    let cases = runner.config().cases;
    let strategy = (0..files.len(), prop::collection::vec(edit(), 1..4));
    let ran = AtomicUsize::new(0);
    runner
        .run(&strategy, |(which, edits)| {
            let (file, text) = &files[which];
            let mut text = text.clone();
            for edit in &edits {
                apply(&mut text, edit);
            }
            check(file, &text, &ran)
        })
        .unwrap();
    // Enough mutants stay scenarios for the runs to count (a cut inside a comment or a
    // description, a duplicated list item...).
    let ran = ran.into_inner();
    assert!(
        cases < 100 || ran * 20 >= cases as usize,
        "only {ran} of {cases} mutants ran"
    );
    eprintln!("{ran} of {cases} mutants parsed and ran");
}
