//! Scenario files: what a run simulates and what must hold, written in RON.
//!
//! A scenario names the algorithm and its parameters, the nodes, the network model, the fault
//! schedule, how long to run, the seeds, and the expectations. `scenarios/README.md` documents
//! every field. Loading validates everything; each error names the file, the line and column,
//! and the field path.
//!
//! ```
//! use conclave_sim::scenario::Scenario;
//! let src = r#"Scenario(
//!     algorithm: Bully(),
//!     nodes: [(name: "a", id: 1), (name: "b", id: 2)],
//!     run_for: "10s",
//!     expect: [AtMostOneLeader, LeaderIs(node: "b")],
//! )"#;
//! let scenario = Scenario::from_str(src, "inline.ron").unwrap();
//! assert_eq!(scenario.nodes.len(), 2);
//! let err = Scenario::from_str(&src.replace("\"b\")", "\"c\")"), "inline.ron").unwrap_err();
//! assert_eq!(err.to_string(), "inline.ron:5:46: expect[1].node: unknown node \"c\" (nodes are: a, b)");
//! ```

use crate::locate::{display_path, locate, Seg};
use conclave_algorithms::bully::BullyParams;
use conclave_algorithms::Duration;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

/// A whole scenario file.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Defaults to the file name without `.ron`.
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub algorithm: AlgorithmSpec,
    pub nodes: Vec<NodeSpec>,
    #[serde(default)]
    pub network: NetworkSpec,
    #[serde(default)]
    pub faults: Vec<FaultSpec>,
    /// Virtual time the run lasts (it ends earlier if nothing is left to happen).
    pub run_for: Duration,
    /// Seeds: `conclave run` uses the first (unless `--seed`), `conclave check` runs each.
    #[serde(default = "default_seeds")]
    pub seeds: Vec<u64>,
    /// Properties that must hold.
    #[serde(default)]
    pub expect: Vec<Property>,
    /// Properties this scenario expects to be violated (e.g. Bully under a partition).
    #[serde(default)]
    pub expect_violated: Vec<Property>,
}

fn default_seeds() -> Vec<u64> {
    vec![0]
}

/// The algorithm and its parameters.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub enum AlgorithmSpec {
    /// The textbook Bully algorithm with heartbeats (seeds 000, 001, 003).
    Bully(#[serde(default)] BullyParams),
}

impl AlgorithmSpec {
    pub fn name(&self) -> &'static str {
        match self {
            AlgorithmSpec::Bully(_) => "Bully",
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    pub name: String,
    /// Priority: the highest id wins.
    pub id: u64,
    /// The node's address as the seed gives it ("localhost:5001"); informational in the
    /// simulator, used by the real-socket runtime.
    #[serde(default)]
    pub address: Option<String>,
    /// When the node starts.
    #[serde(default)]
    pub start: Duration,
}

/// The network model.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkSpec {
    pub delay: Delay,
    /// Probability that a message is lost.
    pub loss: f64,
    /// Probability that a message is delivered twice.
    pub duplicate: f64,
    /// Per-link first-in first-out delivery (TCP); on by default.
    pub fifo: bool,
}

impl Default for NetworkSpec {
    fn default() -> Self {
        NetworkSpec {
            delay: Delay::Constant(Duration::from_millis(10)),
            loss: 0.0,
            duplicate: 0.0,
            fifo: true,
        }
    }
}

/// How long a message takes.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub enum Delay {
    Constant(Duration),
    /// Uniform over `min..=max`, in whole microseconds.
    Uniform {
        min: Duration,
        max: Duration,
    },
}

/// One scheduled fault.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    pub at: Duration,
    pub fault: Fault,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub enum Fault {
    /// The node stops; its volatile state is lost.
    Crash(String),
    /// A crashed node starts again, fresh.
    Restart(String),
    /// The node freezes: it neither receives nor sends; its timers wait (feigned failure).
    Pause(String),
    /// A paused node goes on with its state; timers that fell due fire now.
    Resume(String),
    /// The network splits into these groups; nodes not listed form one more group.
    Partition(Vec<Vec<String>>),
    /// The link between two nodes is cut in both directions.
    Block(String, String),
    /// A blocked link works again.
    Unblock(String, String),
    /// Every partition and block is lifted.
    Heal,
}

/// A named property of a run (DESIGN.md, "Properties").
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub enum Property {
    /// No two live nodes consider themselves leader at the same instant.
    AtMostOneLeader,
    /// The same, within each connected component of the network.
    OneLeaderPerComponent,
    /// At the end, every running node of a component names the same running leader.
    Agreement,
    /// At the end, each component's leader is its running node of highest priority.
    HighestWins,
    /// After the last fault, a stable leader (per component) within this time.
    EventualLeader(Duration),
    /// At most this many messages sent in the whole run.
    MessagesAtMost(u64),
    /// At most this many election messages (heartbeats and probes not counted).
    ElectionMessagesAtMost(u64),
    /// `node` leads, and its component names it, at time `at` (the end if omitted).
    LeaderIs {
        node: String,
        #[serde(default)]
        at: Option<Duration>,
    },
}

impl fmt::Display for Property {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Property::AtMostOneLeader => f.write_str("AtMostOneLeader"),
            Property::OneLeaderPerComponent => f.write_str("OneLeaderPerComponent"),
            Property::Agreement => f.write_str("Agreement"),
            Property::HighestWins => f.write_str("HighestWins"),
            Property::EventualLeader(d) => write!(f, "EventualLeader({d})"),
            Property::MessagesAtMost(n) => write!(f, "MessagesAtMost({n})"),
            Property::ElectionMessagesAtMost(n) => write!(f, "ElectionMessagesAtMost({n})"),
            Property::LeaderIs { node, at: Some(t) } => write!(f, "LeaderIs({node}, {t})"),
            Property::LeaderIs { node, at: None } => write!(f, "LeaderIs({node}, end)"),
        }
    }
}

/// What kind of problem a scenario has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The file could not be read.
    Io,
    /// Not valid RON, or not the shape of a scenario (unknown field, wrong type).
    Syntax,
    /// Well formed, but meaningless (unknown node, duplicate id...).
    Invalid,
}

/// A scenario that could not be loaded: where, and why.
#[derive(Clone, Debug, thiserror::Error)]
pub struct ScenarioError {
    pub kind: ErrorKind,
    pub file: PathBuf,
    /// 1-based line and column, when known.
    pub position: Option<(usize, usize)>,
    /// The field path, such as `faults[1].at`, when known.
    pub path: String,
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some((line, col)) = self.position {
            write!(f, ":{line}:{col}")?;
        }
        f.write_str(": ")?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

impl Scenario {
    /// Reads, parses and validates a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let src = std::fs::read_to_string(path).map_err(|e| ScenarioError {
            kind: ErrorKind::Io,
            file: path.to_path_buf(),
            position: None,
            path: String::new(),
            message: format!("cannot read scenario: {e}"),
        })?;
        Scenario::from_str(&src, &path.to_string_lossy())
    }

    /// Parses and validates scenario text; `file` is the name errors report.
    #[allow(clippy::should_implement_trait)]
    pub fn from_str(src: &str, file: &str) -> Result<Scenario, ScenarioError> {
        let mut scenario = parse(src, file)?;
        if scenario.name.is_empty() {
            scenario.name = Path::new(file)
                .file_stem()
                .map_or_else(|| "scenario".into(), |s| s.to_string_lossy().into_owned());
        }
        validate(&scenario).map_err(|(segs, message)| ScenarioError {
            kind: ErrorKind::Invalid,
            file: file.into(),
            position: locate(src, &segs),
            path: display_path(&segs),
            message,
        })?;
        Ok(scenario)
    }

    /// The position of each node, by name.
    pub fn node_index(&self) -> BTreeMap<&str, usize> {
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.name.as_str(), i))
            .collect()
    }
}

fn parse(src: &str, file: &str) -> Result<Scenario, ScenarioError> {
    let options = ron::Options::default().with_default_extension(
        ron::extensions::Extensions::IMPLICIT_SOME
            | ron::extensions::Extensions::UNWRAP_VARIANT_NEWTYPES,
    );
    let syntax = |position: ron::error::Position, path: String, message: String| ScenarioError {
        kind: ErrorKind::Syntax,
        file: file.into(),
        position: Some((position.line, position.col)),
        path,
        message,
    };
    let mut de = ron::Deserializer::from_str_with_options(src, &options)
        .map_err(|e| syntax(e.position, String::new(), e.code.to_string()))?;
    let scenario: Scenario = match serde_path_to_error::deserialize(&mut de) {
        Ok(s) => s,
        Err(err) => {
            let path = err.path().to_string();
            let path = if path == "." || path == "?" {
                String::new()
            } else {
                path
            };
            let spanned = de.span_error(err.into_inner());
            let mut message = spanned.code.to_string();
            if de.remainder().trim().is_empty() {
                message.push_str(" (the file ends here: is a closing bracket missing?)");
            }
            return Err(syntax(spanned.position, path, message));
        }
    };
    de.end().map_err(|e| {
        let spanned = de.span_error(e);
        syntax(spanned.position, String::new(), spanned.code.to_string())
    })?;
    Ok(scenario)
}

type Invalid = (Vec<Seg>, String);

fn field(name: &str) -> Seg {
    Seg::Field(name.to_string())
}

fn validate(s: &Scenario) -> Result<(), Invalid> {
    if s.nodes.is_empty() {
        return Err((
            vec![field("nodes")],
            "a scenario needs at least one node".into(),
        ));
    }
    let mut names = BTreeMap::new();
    let mut ids = BTreeMap::new();
    for (i, n) in s.nodes.iter().enumerate() {
        let at = |f: &str| vec![field("nodes"), Seg::Index(i), field(f)];
        if n.name.trim().is_empty() {
            return Err((at("name"), "node name is empty".into()));
        }
        if let Some(j) = names.insert(n.name.as_str(), i) {
            return Err((
                at("name"),
                format!("duplicate node name {:?} (also nodes[{j}])", n.name),
            ));
        }
        if let Some(j) = ids.insert(n.id, i) {
            return Err((
                at("id"),
                format!(
                    "duplicate node id {} (also nodes[{j}]): priorities must be distinct",
                    n.id
                ),
            ));
        }
    }
    if s.run_for == Duration::ZERO {
        return Err((
            vec![field("run_for")],
            "run_for must be longer than zero".into(),
        ));
    }
    if s.seeds.is_empty() {
        return Err((vec![field("seeds")], "give at least one seed".into()));
    }
    validate_network(&s.network)?;
    validate_faults(s, &names)?;
    for (list, props) in [
        ("expect", &s.expect),
        ("expect_violated", &s.expect_violated),
    ] {
        for (i, p) in props.iter().enumerate() {
            if let Property::LeaderIs { node, .. } = p {
                if !names.contains_key(node.as_str()) {
                    let segs = vec![field(list), Seg::Index(i), field("node")];
                    return Err((segs, unknown_node(node, &names)));
                }
            }
        }
    }
    for (i, p) in s.expect_violated.iter().enumerate() {
        if s.expect.contains(p) {
            let segs = vec![field("expect_violated"), Seg::Index(i)];
            return Err((
                segs,
                format!("{p} is both expected to hold and expected to be violated"),
            ));
        }
    }
    Ok(())
}

fn unknown_node(name: &str, names: &BTreeMap<&str, usize>) -> String {
    let known: Vec<&str> = names.keys().copied().collect();
    format!("unknown node {name:?} (nodes are: {})", known.join(", "))
}

fn validate_network(n: &NetworkSpec) -> Result<(), Invalid> {
    let net = |f: &str| vec![field("network"), field(f)];
    for (name, p) in [("loss", n.loss), ("duplicate", n.duplicate)] {
        if !(0.0..=1.0).contains(&p) {
            return Err((net(name), format!("probability {p} is outside 0..1")));
        }
    }
    if let Delay::Uniform { min, max } = n.delay {
        if min > max {
            return Err((
                net("delay"),
                format!("uniform delay has min {min} above max {max}"),
            ));
        }
    }
    Ok(())
}

/// Checks names, and that the schedule makes sense in time order: a node is crashed before it
/// restarts, paused before it resumes, and so on.
fn validate_faults(s: &Scenario, names: &BTreeMap<&str, usize>) -> Result<(), Invalid> {
    #[derive(Clone, Copy, PartialEq)]
    enum St {
        Up,
        Crashed,
        Paused,
    }
    let mut order: Vec<usize> = (0..s.faults.len()).collect();
    order.sort_by_key(|&i| s.faults[i].at);
    let mut state = vec![St::Up; s.nodes.len()];
    for i in order {
        let f = &s.faults[i];
        let at = |extra: &[Seg]| {
            let mut v = vec![field("faults"), Seg::Index(i), field("fault")];
            v.extend_from_slice(extra);
            v
        };
        let node = |name: &str, pos: &[Seg]| -> Result<usize, Invalid> {
            names
                .get(name)
                .copied()
                .ok_or_else(|| (at(pos), unknown_node(name, names)))
        };
        let (want, next, verb) = match &f.fault {
            Fault::Crash(n) => (
                node(n, &[Seg::Index(0)])?,
                [St::Up, St::Paused],
                St::Crashed,
            ),
            Fault::Restart(n) => (
                node(n, &[Seg::Index(0)])?,
                [St::Crashed, St::Crashed],
                St::Up,
            ),
            Fault::Pause(n) => (node(n, &[Seg::Index(0)])?, [St::Up, St::Up], St::Paused),
            Fault::Resume(n) => (node(n, &[Seg::Index(0)])?, [St::Paused, St::Paused], St::Up),
            Fault::Partition(groups) => {
                let mut seen = BTreeSet::new();
                for (g, group) in groups.iter().enumerate() {
                    for (k, name) in group.iter().enumerate() {
                        let pos = [Seg::Index(0), Seg::Index(g), Seg::Index(k)];
                        node(name, &pos)?;
                        if !seen.insert(name.as_str()) {
                            return Err((
                                at(&pos),
                                format!("node {name:?} is listed twice in the partition"),
                            ));
                        }
                    }
                }
                continue;
            }
            Fault::Block(a, b) | Fault::Unblock(a, b) => {
                node(a, &[Seg::Index(0)])?;
                node(b, &[Seg::Index(1)])?;
                if a == b {
                    return Err((
                        at(&[Seg::Index(1)]),
                        format!("a link joins two different nodes, not {a:?} to itself"),
                    ));
                }
                continue;
            }
            Fault::Heal => continue,
        };
        let name = &s.nodes[want].name;
        if f.at < s.nodes[want].start {
            return Err((
                vec![field("faults"), Seg::Index(i), field("at")],
                format!(
                    "{name:?} starts at {} and cannot be faulted at {}",
                    s.nodes[want].start, f.at
                ),
            ));
        }
        if !next.contains(&state[want]) {
            let is = match state[want] {
                St::Up => "running",
                St::Crashed => "crashed",
                St::Paused => "paused",
            };
            return Err((
                at(&[]),
                format!("{name:?} is {is} at {}, so this fault cannot apply", f.at),
            ));
        }
        state[want] = verb;
    }
    Ok(())
}
