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
pub use crate::sweep::SweepSpec;
use conclave_algorithms::async_bully::AsyncBullyParams;
use conclave_algorithms::bully::{BullyParams, Discovery};
use conclave_algorithms::garcia_molina::GarciaMolinaParams;
use conclave_algorithms::gcd::{pack_identity, GcdParams};
use conclave_algorithms::invitation::InvitationParams;
use conclave_algorithms::quorum::{port_of, QuorumParams};
pub use conclave_algorithms::Duration;
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
    /// Node priorities from a `server_config` (seed 002): one `ip:port` per line, later
    /// lines higher; each node's `address` must be one of the lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_config: Option<ServerConfig>,
    /// Draw node ids from the run's seed instead of the `id` fields (seed 000).
    #[serde(default)]
    pub random_ids: bool,
    /// A central log server that every node reports its state to (seed 002).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_server: Option<LogServerSpec>,
    /// How `conclave explore` checks this cluster exhaustively, and what it expects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explore: Option<ExploreSpec>,
    /// Random faults each seed adds to `faults` (`conclave sweep`; see `crate::sweep`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<SweepSpec>,
    /// Each node's priority, resolved when the scenario is loaded.
    #[serde(skip)]
    pub priorities: Vec<u64>,
    /// The `server_config` addresses, in order, when it names a file (read at load).
    #[serde(skip)]
    pub resolved_server_config: Option<Vec<String>>,
}

/// The exhaustive explorer's model of a scenario (see `scenarios/README.md`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ExploreSpec {
    pub timing: Timing,
    /// Fault budgets: how many of each the whole exploration may inject.
    #[serde(default)]
    pub crashes: u32,
    #[serde(default)]
    pub restarts: u32,
    #[serde(default)]
    pub drops: u32,
    #[serde(default)]
    pub duplicates: u32,
    /// The splits the explorer may impose (each a list of groups), and how many splits or
    /// heals it may make in all.
    #[serde(default)]
    pub partitions: Vec<Vec<Vec<String>>>,
    #[serde(default)]
    pub partition_changes: u32,
    /// Timers due after this never fire; `run_for` if left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub horizon: Option<Duration>,
    /// No fault before this time (Bounded timing only): e.g. let nodes meet first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faults_from: Option<Duration>,
    /// No fault after this time (Bounded timing only): e.g. cut the network at one instant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faults_until: Option<Duration>,
    /// The cap on unique states for `conclave explore` without `--max-states`, for a
    /// scenario whose space is known to pass the default (`0`: no cap).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_states: Option<u64>,
    /// Verdicts expected from the explorer: `AtMostOneLeader` and `OneLeaderPerComponent`
    /// are checked in every state; `EventualLeader(_)` as liveness (see the README).
    #[serde(default)]
    pub expect: Vec<Property>,
    #[serde(default)]
    pub expect_violated: Vec<Property>,
}

/// What the explorer assumes about time.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub enum Timing {
    /// Any pending timer may fire at any point, however many messages are in flight.
    Asynchronous,
    /// Every message arrives within `max_delay` of being sent (any delay from 0), time
    /// passing on deliveries as on timers, in steps of [`Scenario::quantum`]: exactly the
    /// simulator's runs with such delays.
    Bounded { max_delay: Duration },
}

/// Where a `server_config` comes from.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub enum ServerConfig {
    /// A file, relative to the scenario file.
    File(String),
    /// The lines themselves.
    Lines(Vec<String>),
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogServerSpec {
    #[serde(default = "default_log_server_name")]
    pub name: String,
    /// How often each node reports (seed 002: every second).
    #[serde(default = "default_report_interval")]
    pub interval: Duration,
}

fn default_log_server_name() -> String {
    "logserver".into()
}
fn default_report_interval() -> Duration {
    Duration::from_secs(1)
}

/// What part a service process plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServiceKind {
    Registry,
    GroupCoordinatorDaemon,
    LogServer,
}

fn default_seeds() -> Vec<u64> {
    vec![0]
}

/// The most nodes a scenario may have (FIFO links keep one slot per ordered pair).
pub const MAX_NODES: usize = 4096;

/// The algorithm and its parameters.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub enum AlgorithmSpec {
    /// The textbook Bully algorithm with heartbeats (seeds 000, 001), optionally with a
    /// registry service (seed 000's Consul).
    Bully(#[serde(default)] BullyParams),
    /// Garcia-Molina's Bully (1982; seed 002).
    GarciaMolinaBully(#[serde(default)] GarciaMolinaParams),
    /// Garcia-Molina's Invitation algorithm (1982; seed 002).
    Invitation(#[serde(default)] InvitationParams),
    /// Stoller's asynchronous Bully with a failure detector (1997/2000; seed 002).
    AsyncBully(#[serde(default)] AsyncBullyParams),
    /// The SeattleU lab's Bully with a group coordinator daemon (seed 003).
    GcdBully(#[serde(default)] GcdParams),
    /// Majority election (seed 004).
    Quorum(#[serde(default)] QuorumParams),
}

/// Runs `$body` with `$A` the algorithm type of `$spec` and `$params` its parameters: the
/// one place that maps a scenario's algorithm to its code. A new algorithm is one arm here.
#[macro_export]
macro_rules! with_algorithm {
    ($spec:expr, |$A:ident, $params:ident| $body:expr) => {{
        use $crate::algorithms as alg;
        use $crate::scenario::AlgorithmSpec as Spec;
        match $spec {
            Spec::Bully($params) => {
                type $A = alg::bully::Bully;
                $body
            }
            Spec::GarciaMolinaBully($params) => {
                type $A = alg::garcia_molina::GarciaMolina;
                $body
            }
            Spec::Invitation($params) => {
                type $A = alg::invitation::Invitation;
                $body
            }
            Spec::AsyncBully($params) => {
                type $A = alg::async_bully::AsyncBully;
                $body
            }
            Spec::GcdBully($params) => {
                type $A = alg::gcd::GcdBully;
                $body
            }
            Spec::Quorum($params) => {
                type $A = alg::quorum::Quorum;
                $body
            }
        }
    }};
}

impl AlgorithmSpec {
    /// Every duration of the algorithm's parameters, named by its field: the constants
    /// the explorer's clock must divide (see [`Scenario::quantum`]).
    pub fn durations(&self) -> Vec<(&'static str, Duration)> {
        use conclave_algorithms::Detector;
        let detector = |d: &Detector| match d {
            Detector::Perfect { delay } => vec![("detector.delay", *delay)],
            Detector::EventuallyPerfect {
                delay,
                mistakes_until,
                mistake_every,
            } => vec![
                ("detector.delay", *delay),
                ("detector.mistakes_until", *mistakes_until),
                ("detector.mistake_every", *mistake_every),
            ],
        };
        match self {
            AlgorithmSpec::Bully(BullyParams {
                answer_timeout,
                coordinator_timeout,
                heartbeat_interval,
                heartbeat_timeout,
                discovery,
            }) => {
                let mut out = vec![
                    ("answer_timeout", *answer_timeout),
                    ("coordinator_timeout", *coordinator_timeout),
                    ("heartbeat_interval", *heartbeat_interval),
                    ("heartbeat_timeout", *heartbeat_timeout),
                ];
                if let Discovery::Registry {
                    name: _,
                    wait,
                    health_interval,
                    health_timeout,
                } = discovery
                {
                    out.extend([
                        ("discovery.wait", *wait),
                        ("discovery.health_interval", *health_interval),
                        ("discovery.health_timeout", *health_timeout),
                    ]);
                }
                out
            }
            AlgorithmSpec::GarciaMolinaBully(GarciaMolinaParams {
                call_timeout,
                check_interval,
                election_timeout,
            }) => vec![
                ("call_timeout", *call_timeout),
                ("check_interval", *check_interval),
                ("election_timeout", *election_timeout),
            ],
            AlgorithmSpec::Invitation(InvitationParams {
                check_interval,
                call_timeout,
                merge_unit,
            }) => vec![
                ("check_interval", *check_interval),
                ("call_timeout", *call_timeout),
                ("merge_unit", *merge_unit),
            ],
            AlgorithmSpec::AsyncBully(AsyncBullyParams {
                norm_interval,
                detector: d,
            }) => {
                let mut out = vec![("norm_interval", *norm_interval)];
                out.extend(detector(d));
                out
            }
            AlgorithmSpec::GcdBully(GcdParams {
                gcd: _,
                answer_timeout,
                coordinator_timeout,
                probe_min,
                probe_max,
                probe_timeout,
                feign,
            }) => {
                let mut out = vec![
                    ("answer_timeout", *answer_timeout),
                    ("coordinator_timeout", *coordinator_timeout),
                    ("probe_min", *probe_min),
                    ("probe_max", *probe_max),
                    ("probe_timeout", *probe_timeout),
                ];
                if let Some(conclave_algorithms::gcd::Feign {
                    next_min,
                    next_max,
                    length_min,
                    length_max,
                    until,
                }) = feign
                {
                    out.extend([
                        ("feign.next_min", *next_min),
                        ("feign.next_max", *next_max),
                        ("feign.length_min", *length_min),
                        ("feign.length_max", *length_max),
                    ]);
                    out.extend(until.map(|u| ("feign.until", u)));
                }
                out
            }
            AlgorithmSpec::Quorum(QuorumParams {
                vote_interval,
                vote_timeout,
                lost_timeout,
                use_port: _,
                count_lost: _,
            }) => vec![
                ("vote_interval", *vote_interval),
                ("vote_timeout", *vote_timeout),
                ("lost_timeout", *lost_timeout),
            ],
        }
    }

    /// Whether the parameter `name` (as [`AlgorithmSpec::durations`] names it) may be zero:
    /// a period whose zero turns something off, a wait that may be none, the low end of a
    /// range, an instantaneous failure detector. Every other duration must be positive.
    fn may_be_zero(&self, name: &str) -> bool {
        matches!(
            (self, name),
            (
                AlgorithmSpec::Bully(_),
                "heartbeat_interval" | "discovery.health_interval"
            ) | (AlgorithmSpec::GarciaMolinaBully(_), "check_interval")
                | (AlgorithmSpec::Invitation(_), "merge_unit")
                | (
                    AlgorithmSpec::AsyncBully(_),
                    "detector.delay" | "detector.mistakes_until"
                )
                | (
                    AlgorithmSpec::GcdBully(_),
                    "probe_min" | "feign.next_min" | "feign.length_min" | "feign.until"
                )
        )
    }

    pub fn name(&self) -> &'static str {
        match self {
            AlgorithmSpec::Bully(_) => "Bully",
            AlgorithmSpec::GarciaMolinaBully(_) => "GarciaMolinaBully",
            AlgorithmSpec::Invitation(_) => "Invitation",
            AlgorithmSpec::AsyncBully(_) => "AsyncBully",
            AlgorithmSpec::GcdBully(_) => "GcdBully",
            AlgorithmSpec::Quorum(_) => "Quorum",
        }
    }

    /// The service processes this algorithm's world needs, by name.
    fn services(&self) -> Vec<(String, ServiceKind)> {
        match self {
            AlgorithmSpec::Bully(BullyParams {
                discovery: Discovery::Registry { name, .. },
                ..
            }) => vec![(name.clone(), ServiceKind::Registry)],
            AlgorithmSpec::GcdBully(p) => {
                vec![(p.gcd.clone(), ServiceKind::GroupCoordinatorDaemon)]
            }
            _ => Vec::new(),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    pub name: String,
    /// Priority: the highest id wins. Not used with `identity`, `server_config`,
    /// `random_ids` or `Quorum`, which set priorities their own way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    /// The GCD lab's identity: (days until a birthday, student id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<(u64, u64)>,
    /// The node's address as the seed gives it ("localhost:5001"); informational in the
    /// simulator, used by the real-socket runtime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
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
    /// The node leaves gracefully: it announces it (seed 004's `q`), then stops. It may
    /// come back with `Restart`.
    Leave(String),
}

impl Fault {
    /// The kind of fault: `Crash`, `Partition`, `Heal`...
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Crash(_) => "Crash",
            Fault::Restart(_) => "Restart",
            Fault::Pause(_) => "Pause",
            Fault::Resume(_) => "Resume",
            Fault::Partition(_) => "Partition",
            Fault::Block(..) => "Block",
            Fault::Unblock(..) => "Unblock",
            Fault::Heal => "Heal",
            Fault::Leave(_) => "Leave",
        }
    }
}

/// As a scenario writes it: `Crash("n1")`, `Partition([["a"], ["b", "c"]])`, `Heal`.
impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = self.kind();
        match self {
            Fault::Crash(n)
            | Fault::Restart(n)
            | Fault::Pause(n)
            | Fault::Resume(n)
            | Fault::Leave(n) => {
                write!(f, "{kind}({n:?})")
            }
            Fault::Partition(groups) => write!(f, "{kind}({groups:?})"),
            Fault::Block(a, b) | Fault::Unblock(a, b) => write!(f, "{kind}({a:?}, {b:?})"),
            Fault::Heal => f.write_str(kind),
        }
    }
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

/// The most steps of the explorer's clock a message's maximum delay may span: beyond it a
/// scenario's times have no usable common step (every message would have more arrival
/// times than any search can follow).
pub const MAX_TICKS_PER_DELAY: u64 = 200;

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

impl Scenario {
    /// The time constants the explorer's clock must divide under `Bounded` timing, named
    /// by their field: the maximum delay, the horizon, `faults_from` and every duration of
    /// the algorithm's parameters (the failure detector's delay among them).
    pub fn timing_constants(&self) -> Vec<(String, Duration)> {
        let Some(e) = &self.explore else {
            return Vec::new();
        };
        let Timing::Bounded { max_delay } = e.timing else {
            return Vec::new();
        };
        let mut out = vec![
            ("explore.timing.max_delay".to_string(), max_delay),
            (
                if e.horizon.is_some() {
                    "explore.horizon"
                } else {
                    "run_for"
                }
                .to_string(),
                e.horizon.unwrap_or(self.run_for),
            ),
        ];
        out.extend(
            e.faults_from
                .map(|f| ("explore.faults_from".to_string(), f)),
        );
        out.extend(
            e.faults_until
                .map(|f| ("explore.faults_until".to_string(), f)),
        );
        out.extend(
            self.algorithm
                .durations()
                .into_iter()
                .map(|(name, d)| (format!("algorithm.{name}"), d)),
        );
        out
    }

    /// The explorer's clock step under `Bounded` timing: the greatest common divisor of
    /// [`Scenario::timing_constants`] (1 µs if every one is zero). Time in the explorer
    /// moves in whole steps, which is exact for every timing constraint of a timer or a
    /// message delay, since each is a whole number of steps. `None` under `Asynchronous`.
    pub fn quantum(&self) -> Option<Duration> {
        let constants = self.timing_constants();
        if constants.is_empty() {
            return None;
        }
        let g = constants.iter().fold(0, |g, (_, d)| gcd(g, d.as_micros()));
        Some(Duration(g.max(1)))
    }

    /// Reads, parses and validates a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let src = read_text(path).map_err(|e| ScenarioError {
            kind: ErrorKind::Io,
            file: path.to_path_buf(),
            position: None,
            path: String::new(),
            message: format!("cannot read scenario: {e}"),
        })?;
        Scenario::parse_and_check(&src, &path.to_string_lossy(), path.parent())
    }

    /// Parses and validates scenario text; `file` is the name errors report.
    /// A `server_config` file is read relative to the current directory.
    #[allow(clippy::should_implement_trait)]
    pub fn from_str(src: &str, file: &str) -> Result<Scenario, ScenarioError> {
        Scenario::parse_and_check(src, file, None)
    }

    fn parse_and_check(
        src: &str,
        file: &str,
        dir: Option<&Path>,
    ) -> Result<Scenario, ScenarioError> {
        // A byte-order mark (some editors on Windows write one) is no part of the RON text;
        // columns are counted without it, as an editor shows the line.
        let src = strip_bom(src);
        let mut scenario = parse(src, file)?;
        if scenario.name.is_empty() {
            scenario.name = Path::new(file)
                .file_stem()
                .map_or_else(|| "scenario".into(), |s| s.to_string_lossy().into_owned());
        }
        let invalid = |(segs, message): Invalid| ScenarioError {
            kind: ErrorKind::Invalid,
            file: file.into(),
            position: locate(src, &segs),
            path: display_path(&segs),
            message,
        };
        validate(&scenario).map_err(invalid)?;
        let config = match &scenario.server_config {
            None => None,
            Some(ServerConfig::Lines(lines)) => Some(
                parse_server_config(lines.iter().map(String::as_str), None).map_err(
                    |(line, message)| {
                        let segs =
                            vec![field("server_config"), Seg::Index(0), Seg::Index(line - 1)];
                        invalid((segs, message))
                    },
                )?,
            ),
            Some(ServerConfig::File(name)) => {
                let path = dir.map_or_else(|| PathBuf::from(name), |d| d.join(name));
                let text = read_text(&path).map_err(|e| {
                    let segs = vec![field("server_config")];
                    invalid((
                        segs,
                        format!("cannot read server_config {}: {e}", path.display()),
                    ))
                })?;
                Some(
                    parse_server_config(strip_bom(&text).lines(), Some(&path)).map_err(
                        |(line, message)| ScenarioError {
                            kind: ErrorKind::Invalid,
                            file: path.clone(),
                            position: Some((line, 1)),
                            path: String::new(),
                            message: format!("{message} (the server_config of {file})"),
                        },
                    )?,
                )
            }
        };
        scenario.priorities = priorities(&scenario, config.as_deref()).map_err(invalid)?;
        if matches!(scenario.server_config, Some(ServerConfig::File(_))) {
            scenario.resolved_server_config = config;
        }
        Ok(scenario)
    }

    /// The scenario as RON text that loads back to the same scenario (the same runs, the
    /// same trace hashes); `header` is written first as `//` comments. A `server_config`
    /// file is written in as its lines, so the text runs from any folder. Options are
    /// written bare, as people write them (`at: "2s"`, not `at: Some("2s")`).
    pub fn to_ron(&self, header: &str) -> String {
        let mut s = self.clone();
        if let Some(addresses) = &self.resolved_server_config {
            s.server_config = Some(ServerConfig::Lines(addresses.clone()));
        }
        let pretty = ron::ser::PrettyConfig::new().extensions(
            ron::extensions::Extensions::IMPLICIT_SOME
                | ron::extensions::Extensions::UNWRAP_VARIANT_NEWTYPES,
        );
        let body = ron::Options::default()
            .to_string_pretty(&s, pretty)
            .unwrap_or_else(|e| panic!("a scenario always serializes: {e}"));
        // Scenarios are read with both extensions on: the lines that turn them on are noise.
        let mut body = body.as_str();
        while let Some(rest) = body.strip_prefix("#![enable(") {
            body = rest.split_once('\n').map_or("", |(_, r)| r);
        }
        let mut out: String = header.lines().map(|l| format!("// {l}\n")).collect();
        out.push_str("Scenario");
        out.push_str(body);
        out.push('\n');
        out
    }

    /// The name of each service process, in process order, with the field that sets it
    /// (even when the field is left out and the name is its default).
    fn service_fields(&self) -> Vec<(String, Vec<Seg>, &'static str)> {
        let mut all = Vec::new();
        match &self.algorithm {
            AlgorithmSpec::Bully(BullyParams {
                discovery: Discovery::Registry { name, .. },
                ..
            }) => all.push((
                name.clone(),
                vec![field("algorithm"), field("discovery"), field("name")],
                "registry",
            )),
            AlgorithmSpec::GcdBully(p) => all.push((
                p.gcd.clone(),
                vec![field("algorithm"), field("gcd")],
                "daemon",
            )),
            _ => {}
        }
        if let Some(log) = &self.log_server {
            all.push((
                log.name.clone(),
                vec![field("log_server"), field("name")],
                "log server",
            ));
        }
        debug_assert_eq!(all.len(), self.services().len());
        all
    }

    /// The service processes, after the nodes in process order.
    pub fn services(&self) -> Vec<(String, ServiceKind)> {
        let mut all = self.algorithm.services();
        if let Some(log) = &self.log_server {
            all.push((log.name.clone(), ServiceKind::LogServer));
        }
        all
    }

    /// The process index of each node and service, by name.
    pub fn node_index(&self) -> BTreeMap<String, usize> {
        self.nodes
            .iter()
            .map(|n| n.name.clone())
            .chain(self.services().into_iter().map(|(name, _)| name))
            .enumerate()
            .map(|(i, n)| (n, i))
            .collect()
    }
}

/// The most bytes a scenario or `server_config` file may hold: far more than any cluster
/// needs, and a bound on what a mistaken path (`/dev/zero`, a disk image) makes us read.
pub const MAX_FILE_BYTES: u64 = 16 << 20;

/// Reads a UTF-8 text file of at most [`MAX_FILE_BYTES`].
pub fn read_text(path: &Path) -> std::io::Result<String> {
    read_text_at_most(path, MAX_FILE_BYTES, "a scenario or server_config file")
}

/// Reads a UTF-8 text file of at most `max` bytes; a larger one is an error that names the
/// limit as the one for `what`.
pub fn read_text_at_most(path: &Path, max: u64, what: &str) -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(max + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::FileTooLarge,
            format!("larger than {} MiB, the limit for {what}", max >> 20),
        ));
    }
    String::from_utf8(bytes).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        )
    })
}

/// The text without its UTF-8 byte-order mark, if it starts with one.
pub fn strip_bom(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}

/// Parses `server_config` lines (`ip:port`, blank lines and `#` comments skipped) into the
/// addresses in order. Errors carry the 1-based line number.
fn parse_server_config<'a>(
    lines: impl Iterator<Item = &'a str>,
    file: Option<&Path>,
) -> Result<Vec<String>, (usize, String)> {
    let mut out: Vec<String> = Vec::new();
    let mut last = 0;
    for (i, raw) in lines.enumerate() {
        last = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let ok = line
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !ok {
            return Err((
                i + 1,
                format!("server_config line {}: {line:?} is not ip:port", i + 1),
            ));
        }
        if out.iter().any(|a| a == line) {
            return Err((
                i + 1,
                format!("server_config line {}: {line} is listed twice", i + 1),
            ));
        }
        out.push(line.to_string());
    }
    if out.is_empty() {
        let what = file.map_or("the server_config list".to_string(), |f| {
            format!("server_config {}", f.display())
        });
        return Err((last.max(1), format!("{what} lists no server")));
    }
    Ok(out)
}

/// Each node's priority, by the rule of the scenario's algorithm.
fn priorities(s: &Scenario, config: Option<&[String]>) -> Result<Vec<u64>, Invalid> {
    let mut out = Vec::with_capacity(s.nodes.len());
    let mut seen: BTreeMap<u64, usize> = BTreeMap::new();
    for (i, n) in s.nodes.iter().enumerate() {
        let at = |f: &str| vec![field("nodes"), Seg::Index(i), field(f)];
        let whole = vec![field("nodes"), Seg::Index(i)];
        let p = match (&s.algorithm, config) {
            (AlgorithmSpec::GcdBully(_), _) => {
                let (days, sid) = n.identity.ok_or_else(|| {
                    (
                        whole.clone(),
                        "GcdBully needs identity: (days until a birthday, student id)".to_string(),
                    )
                })?;
                if !(1..=365).contains(&days) {
                    return Err((at("identity"), format!("days {days} is outside 1..=365")));
                }
                if !(1_000_000..=10_000_000).contains(&sid) {
                    return Err((
                        at("identity"),
                        format!("student id {sid} is outside 1000000..=10000000"),
                    ));
                }
                pack_identity(days, sid)
            }
            (AlgorithmSpec::Quorum(q), _) => {
                // The most preferred (lowest birth time or port, ties to the first listed, as
                // the algorithm breaks them) gets the highest priority.
                let key = if q.use_port {
                    n.address.as_deref().and_then(port_of).ok_or_else(|| {
                        (
                            at("address"),
                            "use_port needs an address ending in :port".to_string(),
                        )
                    })?
                } else {
                    n.start.as_micros()
                };
                u64::MAX - (key.min(u64::MAX >> 13) << 12 | i as u64)
            }
            (_, Some(lines)) => {
                let addr = n.address.as_deref().ok_or_else(|| {
                    (
                        whole.clone(),
                        "with a server_config every node needs an address".to_string(),
                    )
                })?;
                let pos = lines.iter().position(|l| l == addr).ok_or_else(|| {
                    (
                        at("address"),
                        format!("address {addr} is not in the server_config"),
                    )
                })?;
                pos as u64 + 1
            }
            _ if s.random_ids => 0,
            _ => {
                n.id.ok_or_else(|| (whole.clone(), "node needs an id (its priority)".to_string()))?
            }
        };
        if !s.random_ids {
            if let Some(j) = seen.insert(p, i) {
                let (f, what) = match n.id {
                    Some(id) => ("id", format!("duplicate node id {id}")),
                    None => ("name", "duplicate priority".to_string()),
                };
                return Err((
                    at(f),
                    format!("{what} (also nodes[{j}]): priorities must be distinct"),
                ));
            }
        }
        out.push(p);
    }
    Ok(out)
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
            let path = err.path().to_string().replace(".?", "");
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

pub(crate) type Invalid = (Vec<Seg>, String);

pub(crate) fn field(name: &str) -> Seg {
    Seg::Field(name.to_string())
}

/// The longest name a node or service may have, in characters.
pub const MAX_NAME_CHARS: usize = 64;

/// Whether `c` may appear in a node or service name: ASCII letters and digits, `_`, `-`,
/// `.` and `:`. The trace writes `key=value` pairs separated by spaces, one event a line,
/// so a name must hold no space, `=`, quote or line break.
pub fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':')
}

/// A node or service name is 1 to [`MAX_NAME_CHARS`] characters for which
/// [`is_name_char`] holds.
fn check_name(name: &str, what: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!("{what} name is empty"));
    }
    let chars = name.chars().count();
    if chars > MAX_NAME_CHARS {
        return Err(format!(
            "{what} name is {chars} characters long: at most {MAX_NAME_CHARS}"
        ));
    }
    match name.chars().find(|&c| !is_name_char(c)) {
        Some(c) => Err(format!(
            "{what} name {name:?} has the character {c:?}: a name is made of ASCII letters, digits, '_', '-', '.' and ':'"
        )),
        None => Ok(()),
    }
}

fn validate(s: &Scenario) -> Result<(), Invalid> {
    if s.nodes.is_empty() {
        return Err((
            vec![field("nodes")],
            "a scenario needs at least one node".into(),
        ));
    }
    if s.nodes.len() > MAX_NODES {
        let msg = format!("{} nodes: at most {MAX_NODES} are supported", s.nodes.len());
        return Err((vec![field("nodes")], msg));
    }
    let mut names = BTreeMap::new();
    for (i, n) in s.nodes.iter().enumerate() {
        let at = |f: &str| vec![field("nodes"), Seg::Index(i), field(f)];
        check_name(&n.name, "node").map_err(|m| (at("name"), m))?;
        if let Some(j) = names.insert(n.name.as_str(), i) {
            return Err((
                at("name"),
                format!("duplicate node name {:?} (also nodes[{j}])", n.name),
            ));
        }
        if n.identity.is_some() && !matches!(s.algorithm, AlgorithmSpec::GcdBully(_)) {
            let msg = format!("identity belongs to GcdBully, not {}", s.algorithm.name());
            return Err((at("identity"), msg));
        }
    }
    // Every process, node or service, needs a name of its own: faults, expectations and
    // the trace name processes, and one name must not stand for two.
    let services = s.service_fields();
    for (k, (name, path, what)) in services.iter().enumerate() {
        check_name(name, what).map_err(|m| (path.clone(), m))?;
        let also = match names.get(name.as_str()) {
            Some(&j) if j < s.nodes.len() => format!("nodes[{j}]"),
            Some(&j) => display_path(&services[j - s.nodes.len()].1),
            None => {
                names.insert(name.as_str(), s.nodes.len() + k);
                continue;
            }
        };
        return Err((
            path.clone(),
            format!(
                "duplicate process name {name:?} (also {also}): every node and service needs a name of its own"
            ),
        ));
    }
    let seed_002 = matches!(
        s.algorithm,
        AlgorithmSpec::GarciaMolinaBully(_)
            | AlgorithmSpec::Invitation(_)
            | AlgorithmSpec::AsyncBully(_)
    );
    if s.server_config.is_some() && !seed_002 {
        let msg = format!(
            "server_config belongs to the seed 002 algorithms, not {}",
            s.algorithm.name()
        );
        return Err((vec![field("server_config")], msg));
    }
    if s.random_ids && !matches!(s.algorithm, AlgorithmSpec::Bully(_)) {
        let msg = format!("random_ids belongs to Bully, not {}", s.algorithm.name());
        return Err((vec![field("random_ids")], msg));
    }
    validate_algorithm(&s.algorithm)?;
    if let Some(log) = &s.log_server {
        if log.interval == Duration::ZERO {
            let segs = vec![field("log_server"), field("interval")];
            return Err((segs, "interval must be longer than zero".into()));
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
    validate_faults(&s.faults, s, &names)?;
    if let Some(sweep) = &s.sweep {
        crate::sweep::validate_sweep(s, sweep)?;
    }
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
    if let Some(e) = &s.explore {
        validate_explore(e, &names)?;
        validate_quantum(s)?;
        validate_explored_detector(s)?;
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

/// Every duration of the algorithm's parameters must be longer than zero, except those
/// for which zero means "off" or "no wait" (scenarios/README.md lists them): a timeout of
/// zero waits for no reply, and a period of zero repeats at one instant for ever. The
/// ranges drawn from must have their minimum at most their maximum.
fn validate_algorithm(a: &AlgorithmSpec) -> Result<(), Invalid> {
    let path = |name: &str| {
        let mut segs = vec![field("algorithm")];
        segs.extend(name.split('.').map(field));
        segs
    };
    for (name, d) in a.durations() {
        if d == Duration::ZERO && !a.may_be_zero(name) {
            let last = name.rsplit('.').next().unwrap_or(name);
            return Err((path(name), format!("{last} must be longer than zero")));
        }
    }
    if let AlgorithmSpec::GcdBully(p) = a {
        let mut ranges = vec![("probe_min", "probe interval", p.probe_min, p.probe_max)];
        if let Some(f) = &p.feign {
            ranges.push((
                "feign.next_min",
                "time to a feigned failure",
                f.next_min,
                f.next_max,
            ));
            ranges.push((
                "feign.length_min",
                "feigned failure's length",
                f.length_min,
                f.length_max,
            ));
        }
        for (name, what, min, max) in ranges {
            if min > max {
                return Err((path(name), format!("{what} has min {min} above max {max}")));
            }
        }
    }
    Ok(())
}

fn validate_explore(e: &ExploreSpec, names: &BTreeMap<&str, usize>) -> Result<(), Invalid> {
    let at = |extra: Vec<Seg>| {
        let mut v = vec![field("explore")];
        v.extend(extra);
        v
    };
    for (i, split) in e.partitions.iter().enumerate() {
        let mut seen = BTreeSet::new();
        for (g, group) in split.iter().enumerate() {
            for (k, name) in group.iter().enumerate() {
                let segs = at(vec![
                    field("partitions"),
                    Seg::Index(i),
                    Seg::Index(g),
                    Seg::Index(k),
                ]);
                if !names.contains_key(name.as_str()) {
                    return Err((segs, unknown_node(name, names)));
                }
                if !seen.insert(name.as_str()) {
                    return Err((
                        segs,
                        format!("node {name:?} is listed twice in the partition"),
                    ));
                }
            }
        }
    }
    if e.partition_changes > 0 && e.partitions.is_empty() {
        let msg = "partition_changes needs at least one split in partitions".to_string();
        return Err((at(vec![field("partition_changes")]), msg));
    }
    if e.duplicates > 0 && e.timing == Timing::Asynchronous {
        let msg = "duplicates needs Bounded timing: asynchronous exploration keeps the messages in flight as a set, where a copy adds nothing".to_string();
        return Err((at(vec![field("duplicates")]), msg));
    }
    if e.faults_from.is_some() && e.timing == Timing::Asynchronous {
        let msg =
            "faults_from needs Bounded timing: asynchronous exploration has no clock".to_string();
        return Err((at(vec![field("faults_from")]), msg));
    }
    if e.faults_until.is_some() && e.timing == Timing::Asynchronous {
        let msg =
            "faults_until needs Bounded timing: asynchronous exploration has no clock".to_string();
        return Err((at(vec![field("faults_until")]), msg));
    }
    if let (Some(from), Some(until)) = (e.faults_from, e.faults_until) {
        if until < from {
            let msg = format!("faults_until {until} is before faults_from {from}");
            return Err((at(vec![field("faults_until")]), msg));
        }
    }
    if e.partitions.len() > 250 {
        return Err((at(vec![field("partitions")]), "at most 250 splits".into()));
    }
    for (list, props) in [
        ("expect", &e.expect),
        ("expect_violated", &e.expect_violated),
    ] {
        for (i, p) in props.iter().enumerate() {
            let checked = matches!(
                p,
                Property::AtMostOneLeader
                    | Property::OneLeaderPerComponent
                    | Property::EventualLeader(_)
            );
            if !checked {
                let msg = format!(
                    "the explorer checks AtMostOneLeader, OneLeaderPerComponent and EventualLeader, not {p}"
                );
                return Err((at(vec![field(list), Seg::Index(i)]), msg));
            }
        }
    }
    Ok(())
}

/// Under `Bounded` timing the scenario's times must share a step coarse enough to explore.
fn validate_quantum(s: &Scenario) -> Result<(), Invalid> {
    let (Some(q), Some(e)) = (s.quantum(), &s.explore) else {
        return Ok(());
    };
    let Timing::Bounded { max_delay } = e.timing else {
        return Ok(());
    };
    let ticks = max_delay.as_micros() / q.as_micros();
    if ticks <= MAX_TICKS_PER_DELAY {
        return Ok(());
    }
    // The constant that shares the least with the maximum delay is the one to round.
    let culprit = s
        .timing_constants()
        .into_iter()
        .filter(|(_, d)| d.as_micros() > 0)
        .min_by_key(|(_, d)| gcd(d.as_micros(), max_delay.as_micros()))
        .map(|(name, d)| format!(" ({name} is {d})"))
        .unwrap_or_default();
    let msg = format!(
        "the scenario's times have no common step coarser than {q}{culprit}: the explorer's clock moves in such steps, and max_delay {max_delay} would be {ticks} of them (at most {MAX_TICKS_PER_DELAY}); make every duration a multiple of a coarser step"
    );
    Err((vec![field("explore"), field("timing")], msg))
}

/// The explorer models a perfect failure detector, for a few processes.
fn validate_explored_detector(s: &Scenario) -> Result<(), Invalid> {
    use conclave_algorithms::{Algorithm, Detector};
    let Some(detector) = crate::with_algorithm!(&s.algorithm, |A, p| A::detector(p)) else {
        return Ok(());
    };
    if matches!(detector, Detector::EventuallyPerfect { .. }) {
        let msg = "the explorer models a Perfect failure detector only: its false suspicions are not explored".to_string();
        return Err((vec![field("algorithm"), field("detector")], msg));
    }
    let processes = s.nodes.len() + s.services().len();
    let max = crate::explore::MAX_DETECTED;
    if processes > max {
        let msg = format!(
            "{processes} processes: the explorer keeps a failure detector's verdicts for at most {max}"
        );
        return Err((vec![field("nodes")], msg));
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

/// Whether `faults` is a schedule the simulator can carry out in scenario `s` (which was
/// validated): names that exist, and no restart of a running node and the like.
pub(crate) fn validate_fault_list(faults: &[FaultSpec], s: &Scenario) -> Result<(), Invalid> {
    let index = s.node_index();
    let names = index.iter().map(|(n, &i)| (n.as_str(), i)).collect();
    validate_faults(faults, s, &names)
}

/// Checks names, and that the schedule makes sense in time order: a node is crashed before it
/// restarts, paused before it resumes, and so on.
fn validate_faults(
    faults: &[FaultSpec],
    s: &Scenario,
    names: &BTreeMap<&str, usize>,
) -> Result<(), Invalid> {
    #[derive(Clone, Copy, PartialEq)]
    enum St {
        Up,
        Crashed,
        Paused,
    }
    let mut order: Vec<usize> = (0..faults.len()).collect();
    order.sort_by_key(|&i| faults[i].at);
    let mut state = vec![St::Up; names.len()];
    let start_of = |i: usize| s.nodes.get(i).map_or(Duration::ZERO, |n| n.start);
    for i in order {
        let f = &faults[i];
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
            Fault::Leave(n) => (node(n, &[Seg::Index(0)])?, [St::Up, St::Up], St::Crashed),
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
        let name = names
            .iter()
            .find(|(_, &k)| k == want)
            .map_or("?", |(n, _)| *n);
        if f.at < start_of(want) {
            return Err((
                vec![field("faults"), Seg::Index(i), field("at")],
                format!(
                    "{name:?} starts at {} and cannot be faulted at {}",
                    start_of(want),
                    f.at
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
