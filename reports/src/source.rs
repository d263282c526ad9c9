//! What a report is made from: a run (a [`RunReport`] with its trace) or a counterexample
//! that `conclave explore` saved; and reading either back from the JSON that `conclave run
//! --json --trace` prints or `conclave explore` saves.

use conclave_algorithms::{Duration, Role};
use conclave_sim::explore::Counterexample;
use conclave_sim::run::{
    ElectionReport, Expectation, LogRowReport, MessageReport, NodeReport, PropertyResult, RunReport,
};
use conclave_sim::trace::{TraceEvent, What};
use serde::de::IgnoredAny;
use serde::Deserialize;
use std::collections::BTreeMap;

/// A run or a counterexample, borrowed.
#[derive(Clone, Copy, Debug)]
pub enum Source<'a> {
    Run(&'a RunReport),
    /// A counterexample and the file it was read from (or is to be saved as), which its
    /// replay command names.
    Counterexample(&'a Counterexample, &'a str),
}

/// The first violation a report points at.
#[derive(Clone, Debug, PartialEq)]
pub struct Violation {
    /// Virtual time in µs (or the step, for a trace drawn by steps).
    pub at: u64,
    /// What was violated, as the summary names it.
    pub what: String,
    /// Whether the scenario expected it (`expect_violated`): then the run is still ok.
    pub expected: bool,
}

impl<'a> Source<'a> {
    pub fn trace(&self) -> &'a [TraceEvent] {
        match self {
            Source::Run(r) => r.trace.as_deref().unwrap_or(&[]),
            Source::Counterexample(c, _) => &c.trace,
        }
    }

    /// The nodes in the run's order (services too); empty for a counterexample, whose
    /// lanes follow the trace.
    pub fn nodes(&self) -> Vec<String> {
        match self {
            Source::Run(r) => r.nodes.iter().map(|n| n.name.clone()).collect(),
            Source::Counterexample(..) => vec![],
        }
    }

    /// When the run ended, in µs.
    pub fn end_us(&self) -> u64 {
        let last = self.trace().last().map_or(0, |e| e.time_us);
        match self {
            Source::Run(r) => r.end_time_us.max(last),
            Source::Counterexample(c, _) => c.at_us.unwrap_or(0).max(last),
        }
    }

    /// The scenario's name.
    pub fn scenario(&self) -> String {
        match self {
            Source::Run(r) => r.scenario.clone(),
            Source::Counterexample(c, _) => std::path::Path::new(&c.scenario)
                .file_stem()
                .map_or(c.scenario.clone(), |s| s.to_string_lossy().into_owned()),
        }
    }

    /// The name of the report's files, without extension: `<scenario>.seed-<N>` for a run,
    /// the saved file's name less `.json` for a counterexample.
    pub fn stem(&self) -> String {
        let name = match self {
            Source::Run(r) => format!("{}.seed-{}", r.scenario, r.seed),
            Source::Counterexample(c, file) => {
                let name = std::path::Path::new(file)
                    .file_name()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                match name.strip_suffix(".json") {
                    Some(stem) if !stem.is_empty() => stem.to_string(),
                    _ if !name.is_empty() => name,
                    _ => format!("{}.{}", self.scenario(), c.property),
                }
            }
        };
        name.chars()
            .map(|c| {
                if c.is_alphanumeric() || "._-".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    }

    /// The command that reproduces it.
    pub fn replay(&self) -> String {
        match self {
            Source::Run(r) => r.replay.clone(),
            Source::Counterexample(_, file) => format!("conclave replay {file}"),
        }
    }

    /// The first violation, in the chart's coordinates (µs, or the step when the trace is
    /// drawn by steps): the earliest failed expectation; else the earliest violated
    /// property, which the scenario expected; for a counterexample, its last state.
    pub fn first_violation(&self, steps: bool) -> Option<Violation> {
        match self {
            Source::Run(r) => {
                let failed = r
                    .expectations
                    .iter()
                    .filter(|e| !e.ok)
                    .filter_map(|e| Some((e.failed_at_us?, e.name.clone(), false)));
                let expected = r
                    .properties
                    .iter()
                    .filter(|p| !p.holds)
                    .filter_map(|p| Some((p.failed_at_us?, p.name.clone(), true)));
                let first = failed
                    .min_by_key(|x| x.0)
                    .or_else(|| expected.min_by_key(|x| x.0))?;
                Some(Violation {
                    at: first.0,
                    what: first.1,
                    expected: first.2,
                })
            }
            Source::Counterexample(c, _) => Some(Violation {
                at: if steps {
                    c.trace.len().saturating_sub(1) as u64
                } else {
                    self.end_us()
                },
                what: format!("{}: {}", c.property, c.detail),
                expected: false,
            }),
        }
    }

    /// The plain text export: the timeline, then the summary (what `conclave run --trace`
    /// prints), or for a counterexample the violated property.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for e in self.trace() {
            out.push_str(&crate::event_line(e));
            out.push('\n');
        }
        out.push('\n');
        match self {
            Source::Run(r) => out.push_str(&crate::summary(r)),
            Source::Counterexample(c, _) => {
                let at = c
                    .at_us
                    .map(|t| format!(" at t={}", Duration(t)))
                    .unwrap_or_default();
                out.push_str(&format!(
                    "counterexample of {} ({}), {} steps: {} violated{at}: {}\nreplay: {}\n",
                    self.scenario(),
                    c.scenario,
                    c.choices.len(),
                    c.property,
                    c.detail,
                    self.replay()
                ));
            }
        }
        out
    }
}

/// Message counts of a trace, by kind (for a counterexample, which has no report).
pub fn counts_by_kind(trace: &[TraceEvent]) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for e in trace {
        if let What::Send { msg, .. } = &e.what {
            *out.entry(crate::chart::kind_of(msg).to_string())
                .or_insert(0) += 1;
        }
    }
    out
}

/// Elections started (a node became a candidate) and won (a node became leader) in a trace.
pub fn elections_of(trace: &[TraceEvent]) -> (u64, u64) {
    let mut role: BTreeMap<&str, Role> = BTreeMap::new();
    let (mut started, mut won) = (0, 0);
    for e in trace {
        match &e.what {
            What::Role { role: r, .. } => {
                let before = role.insert(&e.node, *r);
                if before != Some(*r) {
                    match r {
                        Role::Candidate => started += 1,
                        Role::Leader => won += 1,
                        _ => {}
                    }
                }
            }
            What::Crash | What::Restart | What::Leave => {
                role.remove(e.node.as_str());
            }
            _ => {}
        }
    }
    (started, won)
}

/// A run report or a counterexample read from JSON.
#[derive(Debug)]
pub enum Loaded {
    Run(Box<RunReport>),
    Counterexample(Box<Counterexample>),
}

impl Loaded {
    /// `file` is the path the JSON was read from.
    pub fn source<'a>(&'a self, file: &'a str) -> Source<'a> {
        match self {
            Loaded::Run(r) => Source::Run(r),
            Loaded::Counterexample(c) => Source::Counterexample(c, file),
        }
    }
}

/// Why a JSON file could not be read as a run or counterexample, and where (from 1).
#[derive(Clone, Debug, PartialEq)]
pub struct InputError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)
    }
}

/// The members that tell the two kinds apart.
#[derive(Deserialize)]
struct Peek {
    trace_hash: Option<IgnoredAny>,
    seed: Option<IgnoredAny>,
    property: Option<IgnoredAny>,
    choices: Option<IgnoredAny>,
    trace: Option<IgnoredAny>,
}

/// A run report as `conclave run --json --trace` prints it.
#[derive(Deserialize)]
struct RunJson {
    scenario: String,
    #[serde(default)]
    file: String,
    #[serde(default)]
    algorithm: String,
    seed: u64,
    trace_hash: String,
    #[serde(default)]
    ok: bool,
    #[serde(default)]
    incomplete: Option<String>,
    #[serde(default)]
    end_time_us: u64,
    #[serde(default)]
    events: u64,
    #[serde(default)]
    leaders: BTreeMap<String, Option<String>>,
    #[serde(default)]
    nodes: Vec<NodeJson>,
    #[serde(default)]
    messages: Option<MessagesJson>,
    #[serde(default)]
    elections: Option<ElectionsJson>,
    #[serde(default)]
    time_to_stable_leader_us: Option<u64>,
    #[serde(default)]
    expectations: Vec<ExpectationJson>,
    #[serde(default)]
    properties: Vec<PropertyJson>,
    #[serde(default)]
    log_table: Option<Vec<LogRowJson>>,
    #[serde(default)]
    replay: String,
    trace: Option<Vec<TraceEvent>>,
}

#[derive(Deserialize)]
struct NodeJson {
    name: String,
    #[serde(default)]
    id: u64,
    #[serde(default)]
    address: Option<String>,
    #[serde(default)]
    role_changes: u64,
    #[serde(default)]
    state: String,
    #[serde(default = "idle")]
    role: Role,
    #[serde(default)]
    status: String,
    #[serde(default)]
    leader: Option<String>,
}

fn idle() -> Role {
    Role::Idle
}

#[derive(Deserialize)]
struct MessagesJson {
    #[serde(default)]
    total: u64,
    #[serde(default)]
    election: u64,
    #[serde(default)]
    delivered: u64,
    #[serde(default)]
    dropped: u64,
    #[serde(default)]
    duplicated: u64,
    #[serde(default)]
    by_kind: BTreeMap<String, u64>,
}

#[derive(Deserialize)]
struct ElectionsJson {
    #[serde(default)]
    started: u64,
    #[serde(default)]
    won: u64,
}

#[derive(Deserialize)]
struct ExpectationJson {
    name: String,
    #[serde(default)]
    expected: String,
    ok: bool,
    #[serde(default)]
    failed_at_us: Option<u64>,
    #[serde(default)]
    detail: Option<String>,
}

#[derive(Deserialize)]
struct PropertyJson {
    name: String,
    holds: bool,
    #[serde(default)]
    failed_at_us: Option<u64>,
    #[serde(default)]
    detail: Option<String>,
}

#[derive(Deserialize)]
struct LogRowJson {
    node: String,
    #[serde(default)]
    address: Option<String>,
    #[serde(default)]
    coordinator: Option<String>,
    #[serde(default)]
    group: u64,
    #[serde(default)]
    status: String,
    #[serde(default)]
    received_us: u64,
}

/// Where the top-level value starts (1-based line and column), for errors about it whole.
fn start_of(text: &str) -> (usize, usize) {
    let offset = text.len() - text.trim_start().len();
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, column)
}

fn serde_error(e: serde_json::Error, what: &str) -> InputError {
    let (line, column) = (e.line(), e.column());
    // The position goes first, as `file:line:col:`, not again at the end.
    let text = e.to_string();
    let text = text
        .strip_suffix(&format!(" at line {line} column {column}"))
        .unwrap_or(&text);
    InputError {
        line,
        column,
        message: format!("{what}: {text}"),
    }
}

/// Reads a run report (`conclave run --json --trace`) or a counterexample (`conclave
/// explore`) from JSON; either must have its trace.
pub fn load_json(text: &str) -> Result<Loaded, InputError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let (line, column) = start_of(text);
    let peek: Peek = match serde_json::from_str(text) {
        Ok(p) => p,
        Err(e) if e.is_syntax() || e.is_eof() => return Err(serde_error(e, "not JSON")),
        Err(e) => {
            return Err(InputError {
                line,
                column,
                message: format!(
                    "neither a run report (conclave run --json --trace) nor a counterexample (conclave explore): {e}"
                ),
            })
        }
    };
    let whole = |message: String| InputError {
        line,
        column,
        message,
    };
    if peek.trace_hash.is_some() && peek.seed.is_some() {
        if peek.trace.is_none() {
            return Err(whole(
                "the run report has no trace: write it with `conclave run FILE --json --trace`"
                    .into(),
            ));
        }
        let r: RunJson =
            serde_json::from_str(text).map_err(|e| serde_error(e, "not a run report"))?;
        Ok(Loaded::Run(Box::new(run_report(r))))
    } else if peek.property.is_some() && peek.choices.is_some() {
        let c: Counterexample =
            serde_json::from_str(text).map_err(|e| serde_error(e, "not a counterexample"))?;
        if peek.trace.is_none() || c.trace.is_empty() {
            return Err(whole(
                "the counterexample has no trace (saved by an older conclave: `conclave replay` prints it)"
                    .into(),
            ));
        }
        Ok(Loaded::Counterexample(Box::new(c)))
    } else {
        Err(whole(
            "neither a run report (conclave run --json --trace: has `seed` and `trace_hash`) nor a counterexample (conclave explore: has `property` and `choices`)"
                .into(),
        ))
    }
}

fn run_report(r: RunJson) -> RunReport {
    let state = |s: &str| -> &'static str {
        match s {
            "paused" => "paused",
            "down" => "down",
            _ => "running",
        }
    };
    let trace = r.trace.unwrap_or_default();
    let messages = r.messages.unwrap_or_else(|| {
        let by_kind = counts_by_kind(&trace);
        MessagesJson {
            total: by_kind.values().sum(),
            election: 0,
            delivered: 0,
            dropped: 0,
            duplicated: 0,
            by_kind,
        }
    });
    let elections = r.elections.unwrap_or_else(|| {
        let (started, won) = elections_of(&trace);
        ElectionsJson { started, won }
    });
    RunReport {
        scenario: r.scenario,
        file: r.file,
        algorithm: r.algorithm,
        seed: r.seed,
        trace_hash: r.trace_hash,
        ok: r.ok,
        incomplete: r.incomplete,
        end_time_us: r.end_time_us,
        events: r.events,
        leaders: r.leaders,
        nodes: r
            .nodes
            .into_iter()
            .map(|n| NodeReport {
                name: n.name,
                id: n.id,
                address: n.address,
                role_changes: n.role_changes,
                state: state(&n.state),
                role: n.role,
                status: n.status,
                leader: n.leader,
            })
            .collect(),
        messages: MessageReport {
            total: messages.total,
            election: messages.election,
            delivered: messages.delivered,
            dropped: messages.dropped,
            duplicated: messages.duplicated,
            by_kind: messages.by_kind,
        },
        elections: ElectionReport {
            started: elections.started,
            won: elections.won,
        },
        time_to_stable_leader_us: r.time_to_stable_leader_us,
        expectations: r
            .expectations
            .into_iter()
            .map(|e| Expectation {
                name: e.name,
                expected: if e.expected == "violated" {
                    "violated"
                } else {
                    "holds"
                },
                ok: e.ok,
                failed_at_us: e.failed_at_us,
                detail: e.detail,
            })
            .collect(),
        properties: r
            .properties
            .into_iter()
            .map(|p| PropertyResult {
                name: p.name,
                holds: p.holds,
                failed_at_us: p.failed_at_us,
                detail: p.detail,
            })
            .collect(),
        log_table: r.log_table.map(|rows| {
            rows.into_iter()
                .map(|l| LogRowReport {
                    node: l.node,
                    address: l.address,
                    coordinator: l.coordinator,
                    group: l.group,
                    status: l.status,
                    received_us: l.received_us,
                })
                .collect()
        }),
        replay: r.replay,
        trace: Some(trace),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_input_says_where() {
        let e = load_json("{\n  \"seed\": 1,\n  oops").unwrap_err();
        assert_eq!((e.line, e.column), (3, 3), "{e}");
        assert!(e.message.starts_with("not JSON"), "{e}");
        let e = load_json("\n\n  [1, 2]").unwrap_err();
        assert_eq!((e.line, e.column), (3, 3), "{e}");
        assert!(e.message.starts_with("neither"), "{e}");
        let e = load_json("{\"a\": 1}").unwrap_err();
        assert!(e.message.starts_with("neither"), "{e}");
        let e =
            load_json("{\"seed\": 1, \"trace_hash\": \"00\", \"scenario\": \"s\"}").unwrap_err();
        assert!(e.message.contains("has no trace"), "{e}");
        let e =
            load_json("{\"seed\": 1, \"trace_hash\": \"00\", \"scenario\": \"s\",\n \"trace\": 7}")
                .unwrap_err();
        assert_eq!((e.line, e.column), (2, 11), "{e}");
        assert!(
            !e.message.contains("line 2"),
            "the position is said once: {e}"
        );
        let e =
            load_json(r#"{"property": "P", "choices": [], "scenario": "x.ron", "detail": "d"}"#)
                .unwrap_err();
        assert!(e.message.contains("has no trace"), "{e}");
    }
}
