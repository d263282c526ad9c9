//! Bounded fuzzing of the scenario parser, validation, runs and the explorer: every shipped
//! scenario (and every malformed one in `tests/bad/`), mutated at random a fixed number of
//! times from a fixed seed, must load or be refused with an error, and whatever loads must
//! run and explore within a small budget, never panic and never pass that budget.
//! (cargo-fuzz needs a nightly toolchain that a fresh machine does not have.)

use conclave_sim::explore::{explore, ExploreOptions};
use conclave_sim::run::{run_scenario, RunOptions};
use conclave_sim::scenario::Scenario;
use conclave_sim::world::{stream, Budget};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::path::Path;

mod common;
use common::scenario_files;

/// Values a careless or hostile edit may put where a number or a duration was.
const NUMBERS: &[&str] = &[
    "0",
    "-1",
    "1",
    "65536",
    "18446744073709551616",
    "99999999999999999999999",
    "0.5",
    "1e309",
    "NaN",
];
const DURATIONS: &[&str] = &[
    "\"0s\"",
    "\"1us\"",
    "\"-5s\"",
    "\"1000000h\"",
    "\"1.5ms\"",
    "\"18446744073709551615us\"",
    "\"\"",
    "\"ms\"",
];
const TOKENS: &[&str] = &[
    "(", ")", "[", "]", ",", ":", "\"", "\n", "=", "\u{feff}", "é",
];

/// One random edit of `text`.
fn mutate(text: &str, rng: &mut ChaCha8Rng) -> String {
    let chars: Vec<char> = text.chars().collect();
    if chars.is_empty() {
        return TOKENS[rng.random_range(0..TOKENS.len())].to_string();
    }
    let at = rng.random_range(0..chars.len());
    let (head, tail): (String, String) =
        (chars[..at].iter().collect(), chars[at..].iter().collect());
    match rng.random_range(0..6) {
        // Delete a span.
        0 => {
            let n = rng.random_range(1..=20).min(chars.len() - at);
            format!("{head}{}", chars[at + n..].iter().collect::<String>())
        }
        // Insert a token.
        1 => format!("{head}{}{tail}", TOKENS[rng.random_range(0..TOKENS.len())]),
        // Replace the next number with an extreme one.
        2 => match tail.find(|c: char| c.is_ascii_digit()) {
            Some(i) => {
                let rest = &tail[i..];
                let end = rest
                    .find(|c: char| !c.is_ascii_digit() && c != '.')
                    .unwrap_or(rest.len());
                let n = NUMBERS[rng.random_range(0..NUMBERS.len())];
                format!("{head}{}{n}{}", &tail[..i], &rest[end..])
            }
            None => text.to_string(),
        },
        // Replace the next quoted string with an extreme duration.
        3 => match tail.find('"') {
            Some(i) => match tail[i + 1..].find('"') {
                Some(j) => {
                    let d = DURATIONS[rng.random_range(0..DURATIONS.len())];
                    format!("{head}{}{d}{}", &tail[..i], &tail[i + j + 2..])
                }
                None => text.to_string(),
            },
            None => text.to_string(),
        },
        // Duplicate a line.
        4 => {
            let lines: Vec<&str> = text.lines().collect();
            let k = rng.random_range(0..lines.len());
            let mut out: Vec<&str> = lines.clone();
            out.insert(k, lines[k]);
            out.join("\n")
        }
        // Swap two lines.
        _ => {
            let mut lines: Vec<&str> = text.lines().collect();
            let (a, b) = (
                rng.random_range(0..lines.len()),
                rng.random_range(0..lines.len()),
            );
            lines.swap(a, b);
            lines.join("\n")
        }
    }
}

#[test]
fn mutated_scenarios_never_panic_nor_pass_their_budget() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut all = Vec::new();
    scenario_files(&root.join("scenarios"), &mut all);
    scenario_files(&root.join("tests/bad"), &mut all);
    assert!(all.len() > 40, "{} files", all.len());
    let budget = Budget {
        max_events: Some(20_000),
        max_events_per_instant: 5_000,
        ..Budget::default()
    };
    let (mut loaded, mut refused, mut cut) = (0, 0, 0);
    let mut rng = stream(2026, 7);
    for file in &all {
        let original = std::fs::read_to_string(file).unwrap_or_default();
        for k in 0..64 {
            let mut text = original.clone();
            for _ in 0..rng.random_range(1..=3) {
                text = mutate(&text, &mut rng);
            }
            let name = format!("{}#{k}", file.display());
            let outcome = std::panic::catch_unwind(|| {
                let Ok(s) = Scenario::from_str(&text, "fuzzed.ron") else {
                    return None;
                };
                let seed = s.seeds[0];
                let opts = RunOptions {
                    budget,
                    ..RunOptions::default()
                };
                let r = run_scenario(&s, "fuzzed.ron", seed, &opts);
                // Processes that start together are one step: the budget may be passed
                // by one batch of starts.
                assert!(r.events <= 20_000 + 64, "{} events", r.events);
                assert!(
                    r.incomplete.is_none() || !r.ok,
                    "a run cut short is never ok"
                );
                if s.explore.is_some() {
                    let opts = ExploreOptions {
                        max_states: Some(2_000),
                        max_depth: Some(200),
                        ..ExploreOptions::default()
                    };
                    let e = explore(&s, "fuzzed.ron", &opts);
                    assert!(e.unique_states <= 2_000 + 64, "{}", e.unique_states);
                }
                Some(r.incomplete.is_some())
            });
            match outcome {
                Ok(None) => refused += 1,
                Ok(Some(was_cut)) => {
                    loaded += 1;
                    cut += u32::from(was_cut);
                }
                Err(_) => panic!("{name} panicked; the mutated text:\n{text}"),
            }
        }
    }
    // The mutations must reach both sides of validation.
    assert!(
        loaded > 100 && refused > 100,
        "{loaded} loaded, {refused} refused"
    );
    eprintln!("{loaded} loaded ({cut} cut short by the budget), {refused} refused");
}
