//! `conclave cluster`: a scenario's nodes as `conclave node` processes on this machine
//! (seed 002's process runner), and the commands that kill, restart, pause and cut them off
//! from each other while they run (its log server's "Block Connections").
//!
//! `cluster up` starts one process per node, each with `--trace-log DIR/<name>.jsonl`,
//! `--block-file DIR/blocks` and `--stop-on-stdin-eof` (its stdin is a pipe from the runner,
//! so the nodes stop when the runner dies, however it dies); writes `DIR/cluster.json`;
//! prints each role change the trace logs show; on Ctrl-C or SIGTERM stops every node
//! (SIGTERM, SIGKILL after [`STOP_BOUND`]) and exits. The other commands read
//! `DIR/cluster.json`; `restart` asks the runner (a file in `DIR/requests/`), so that every
//! node stays the runner's child, and waits for the node's first trace-log line: a node that
//! exits first (its port taken) fails the command with the end of its stderr. `status`
//! shows the processes, their last roles and the blocks; `down` is SIGTERM to the runner.
//!
//! The scenario's services start first, each as a `conclave` process on 127.0.0.1 (after the
//! nodes' ports with `--base-port`, else on a port the OS picks), also with their stdin the
//! runner's pipe, and stop after the nodes: a registry (Bully with `discovery:
//! Registry(..)`: `conclave registry`, every node gets `--registry`), a log server
//! (`log_server`: `conclave monitor`, every node gets `--monitor`) and a group coordinator
//! daemon (GcdBully: `conclave gcd`, every node gets `--gcd`). With a monitor there is one
//! block list, the monitor's: `block`, `unblock` and `heal` edit it through its API, as its
//! form does, and the nodes take it from there; without one, they edit `DIR/blocks`.
//!
//! ```text
//! conclave cluster up scenarios/bully_coordinator_crash.ron --base-port 7000
//! conclave cluster kill n4
//! conclave cluster block n1 n3
//! conclave cluster heal
//! conclave cluster status
//! conclave cluster down
//! ```

use crate::node::{self, Place};
use crate::{BAD_INPUT, HELD};
use conclave_algorithms::bully::{BullyParams, Discovery};
use conclave_algorithms::net::ports;
use conclave_algorithms::net::report::Monitor;
use conclave_sim::scenario::{AlgorithmSpec, Scenario, ServiceKind};
use nix::sys::signal::{kill, Signal};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};
use std::time::{Duration, Instant};

/// How long stopped nodes get to leave gracefully before SIGKILL.
pub const STOP_BOUND: Duration = Duration::from_secs(3);
/// How often the runner reads the trace logs, reaps its children and takes requests.
const POLL: Duration = Duration::from_millis(100);
/// How long `cluster restart` waits for the runner to start the node again.
const RESTART_BOUND: Duration = Duration::from_secs(10);
/// How long a service gets to print the address it listens on.
const SERVICE_BOUND: Duration = Duration::from_secs(10);
/// How long a node waits between joining the group coordinator daemon and asking for its
/// members: the runner starts every node within milliseconds.
const GCD_WAIT: &str = "1s";
/// A command failed on a cluster that exists (a signal could not be sent, the runner is
/// gone).
const FAILED: u8 = 1;

#[derive(clap::Args)]
pub struct Args {
    /// The cluster's folder: cluster.json, blocks, each node's trace log (.jsonl) and
    /// stderr (.log).
    #[arg(
        long,
        global = true,
        default_value = ".conclave/cluster",
        value_name = "DIR"
    )]
    pub dir: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(clap::Subcommand)]
pub enum Command {
    /// Start every node of a scenario as a `conclave node` process and follow their roles
    /// until Ctrl-C or SIGTERM, which stops them all.
    Up {
        scenario: PathBuf,
        /// Nodes without an `address` listen on 127.0.0.1:(P + their index).
        #[arg(long, value_name = "P")]
        base_port: Option<u16>,
        /// Start only the nodes whose address is on this machine.
        #[arg(long)]
        local_only: bool,
        /// The cluster's seed (default: the scenario's first).
        #[arg(long, value_name = "S")]
        seed: Option<u64>,
    },
    /// Kill a node's process (SIGKILL): a crash.
    Kill { node: String },
    /// Start a node again with the same flags (stopping it first if it runs).
    Restart { node: String },
    /// Freeze a node's process (SIGSTOP).
    Pause { node: String },
    /// Thaw a paused node (SIGCONT).
    Resume { node: String },
    /// Drop every message between two nodes, both ways.
    Block { a: String, b: String },
    /// Let two nodes talk again.
    Unblock { a: String, b: String },
    /// Remove every block.
    Heal,
    /// Print each node's process (running, paused, exited), last role and leader (from its
    /// trace log) and restarts; each service; the blocks; the runner.
    Status {
        /// One JSON object instead of lines of text.
        #[arg(long)]
        json: bool,
    },
    /// Stop the cluster: SIGTERM to the runner, which stops every node and service; waits
    /// for it to exit.
    Down,
}

/// DIR/cluster.json.
#[derive(Debug, Serialize, Deserialize)]
pub struct State {
    pub runner_pid: u32,
    /// When the runner started ([`start_time`]): with the pid, which process it is (a pid
    /// can be another process's after the runner has gone).
    #[serde(default)]
    pub runner_started: Option<u64>,
    pub scenario: PathBuf,
    pub seed: u64,
    pub nodes: Vec<NodeState>,
    /// The scenario's services, started before the nodes and stopped after them.
    #[serde(default)]
    pub services: Vec<ServiceState>,
}

impl State {
    /// The cluster's monitor, when its scenario has a log server.
    pub fn monitor(&self) -> Option<&ServiceState> {
        self.services.iter().find(|s| s.kind == "monitor")
    }
}

/// A service process of the cluster.
#[derive(Debug, Serialize, Deserialize)]
pub struct ServiceState {
    /// The scenario's name for it (`consul`, `logserver`, `gcd`...).
    pub name: String,
    /// `registry`, `monitor` or `gcd`: the `conclave` command it runs.
    pub kind: String,
    /// Where it listens.
    pub address: String,
    /// `http://ADDR` for the registry and the monitor.
    pub url: Option<String>,
    pub pid: u32,
    /// When the process started ([`start_time`]).
    #[serde(default)]
    pub started: Option<u64>,
    pub args: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct NodeState {
    pub name: String,
    pub address: String,
    /// The process's pid, the last one started; none for a node not started here.
    pub pid: Option<u32>,
    /// When that process started ([`start_time`]).
    #[serde(default)]
    pub started: Option<u64>,
    pub trace_log: PathBuf,
    /// The `conclave` arguments the node runs with.
    pub args: Vec<String>,
    pub restarts: u32,
}

pub fn cmd_cluster(args: &Args) -> u8 {
    let dir = &args.dir;
    let result = match &args.command {
        Command::Up {
            scenario,
            base_port,
            local_only,
            seed,
        } => return up(dir, scenario, *base_port, *local_only, *seed),
        Command::Kill { node } => signal_node(dir, node, Signal::SIGKILL, "killed"),
        Command::Pause { node } => signal_node(dir, node, Signal::SIGSTOP, "paused"),
        Command::Resume { node } => signal_node(dir, node, Signal::SIGCONT, "resumed"),
        Command::Restart { node } => restart(dir, node),
        Command::Block { a, b } => edit_blocks(dir, |pairs, state| {
            let pair = pair_of(state, a, b)?;
            pairs.retain(|p| *p != pair);
            pairs.push(pair);
            Ok(format!("blocked {a} <-> {b}"))
        }),
        Command::Unblock { a, b } => edit_blocks(dir, |pairs, state| {
            let pair = pair_of(state, a, b)?;
            pairs.retain(|p| *p != pair);
            Ok(format!("unblocked {a} <-> {b}"))
        }),
        Command::Heal => edit_blocks(dir, |pairs, _| {
            pairs.clear();
            Ok("healed: no blocks".to_string())
        }),
        Command::Status { json } => status(dir, *json),
        Command::Down => down(dir),
    };
    match result {
        Ok(message) => {
            println!("{message}");
            HELD
        }
        Err((code, message)) => {
            eprintln!("error: {message}");
            code
        }
    }
}

type Outcome = Result<String, (u8, String)>;

fn bad(message: String) -> (u8, String) {
    (BAD_INPUT, message)
}

fn state_path(dir: &Path) -> PathBuf {
    dir.join("cluster.json")
}

fn read_state(dir: &Path) -> Result<State, (u8, String)> {
    let path = state_path(dir);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        bad(format!(
            "no cluster in {} ({}: {e}); start one with `conclave cluster up SCENARIO --dir {}`",
            dir.display(),
            path.display(),
            dir.display()
        ))
    })?;
    serde_json::from_str(&text).map_err(|e| bad(format!("{}: {e}", path.display())))
}

/// Writes a file at once: a temporary file in the same folder, renamed over it.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(format!(".tmp.{}", std::process::id()));
    let temporary = PathBuf::from(temporary);
    std::fs::write(&temporary, bytes)?;
    std::fs::rename(&temporary, path)
}

fn write_state(dir: &Path, state: &State) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(state).map_err(std::io::Error::other)?;
    write_atomically(&state_path(dir), format!("{text}\n").as_bytes())
}

fn find<'s>(state: &'s State, name: &str) -> Result<&'s NodeState, (u8, String)> {
    state.nodes.iter().find(|n| n.name == name).ok_or_else(|| {
        let names: Vec<&str> = state.nodes.iter().map(|n| n.name.as_str()).collect();
        bad(format!(
            "unknown node {name:?}: the cluster's nodes are {}",
            names.join(", ")
        ))
    })
}

fn alive(pid: u32) -> bool {
    kill(nix::unistd::Pid::from_raw(pid as i32), None).is_ok()
}

/// A process as /proc/PID/stat shows it.
struct ProcStat {
    /// The state letter (R, S, T for stopped, Z for a zombie...).
    state: char,
    /// When it started, in clock ticks after boot (the 22nd field).
    started: Option<u64>,
}

/// `pid`'s /proc/PID/stat, where /proc has it.
fn proc_stat(pid: u32) -> Option<ProcStat> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command's `(name)`, the state (field 3) first.
    let mut fields = stat.rsplit(')').next()?.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let started = fields.nth(18).and_then(|f| f.parse().ok());
    Some(ProcStat { state, started })
}

/// When a process started ([`ProcStat::started`]).
fn start_time(pid: u32) -> Option<u64> {
    proc_stat(pid)?.started
}

/// `pid`'s state letter if it runs and is the process that `cluster.json` recorded: started
/// at `started` (when that was recorded), not another that got the pid since; not a zombie.
fn ours(pid: u32, started: Option<u64>) -> Option<char> {
    if !alive(pid) {
        return None;
    }
    match proc_stat(pid) {
        Some(stat) if stat.state == 'Z' => None,
        Some(stat) if started.is_some_and(|s| stat.started != Some(s)) => None,
        Some(stat) => Some(stat.state),
        // No /proc: alive is all there is to know.
        None => Some('R'),
    }
}

/// Whether `pid` runs and is the process `cluster.json` recorded ([`ours`]).
fn is_ours(pid: u32, started: Option<u64>) -> bool {
    ours(pid, started).is_some()
}

fn signal_node(dir: &Path, name: &str, signal: Signal, done: &str) -> Outcome {
    let state = read_state(dir)?;
    let node = find(&state, name)?;
    let Some(pid) = node.pid else {
        return Err(bad(format!(
            "{name} was not started by this cluster's runner"
        )));
    };
    if !is_ours(pid, node.started) {
        return Err((FAILED, format!("{name} (pid {pid}) is not running")));
    }
    kill(nix::unistd::Pid::from_raw(pid as i32), signal)
        .map_err(|e| (FAILED, format!("{name} (pid {pid}): {signal}: {e}")))?;
    Ok(format!("{done} {name} (pid {pid}, {signal})"))
}

fn restart(dir: &Path, name: &str) -> Outcome {
    let state = read_state(dir)?;
    let node = find(&state, name)?;
    if node.pid.is_none() {
        return Err(bad(format!(
            "{name} was not started by this cluster's runner"
        )));
    }
    if !is_ours(state.runner_pid, state.runner_started) {
        return Err((
            FAILED,
            format!(
                "the cluster's runner (pid {}) is not running",
                state.runner_pid
            ),
        ));
    }
    let restarts = node.restarts;
    let requests = dir.join("requests");
    std::fs::create_dir_all(&requests)
        .and_then(|()| write_atomically(&requests.join(name), b"restart\n"))
        .map_err(|e| (FAILED, format!("{}: {e}", requests.display())))?;
    let asked = Instant::now();
    while asked.elapsed() < RESTART_BOUND {
        std::thread::sleep(POLL);
        let state = read_state(dir)?;
        let node = find(&state, name)?;
        if node.restarts > restarts {
            let pid = node.pid.unwrap_or_default();
            return started(dir, node, pid, asked);
        }
    }
    Err((
        FAILED,
        format!("the runner did not restart {name} within {RESTART_BOUND:?}"),
    ))
}

/// Waits, within [`RESTART_BOUND`] of `asked`, for a restarted node's first trace-log line
/// (written once it listens): an error if its process exits first (its port taken, say),
/// with the last lines of its stderr, which say why.
fn started(dir: &Path, node: &NodeState, pid: u32, asked: Instant) -> Outcome {
    let name = &node.name;
    loop {
        let has_started = std::fs::metadata(&node.trace_log).is_ok_and(|m| m.len() > 0);
        if has_started {
            return Ok(format!("restarted {name} (pid {pid})"));
        }
        if !running(pid) {
            let log = stderr_log(dir, name);
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let last = lines[lines.len().saturating_sub(5)..].join("\n");
            return Err((
                FAILED,
                format!(
                    "{name} (pid {pid}) exited as it restarted; the end of {}:\n{last}",
                    log.display()
                ),
            ));
        }
        if asked.elapsed() >= RESTART_BOUND {
            return Ok(format!(
                "restarted {name} (pid {pid}), which has not started within {RESTART_BOUND:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A process that runs: alive, and not a zombie (an exited child the runner has not
/// reaped yet).
fn running(pid: u32) -> bool {
    is_ours(pid, None)
}

/// How long `down` waits for the runner: it stops the nodes, then the services, each
/// within [`STOP_BOUND`].
const DOWN_BOUND: Duration = Duration::from_secs(10);

fn down(dir: &Path) -> Outcome {
    let state = read_state(dir)?;
    let runner = state.runner_pid;
    if !is_ours(runner, state.runner_started) {
        return Ok(format!(
            "the cluster's runner (pid {runner}) is not running: nothing to stop"
        ));
    }
    let pid = nix::unistd::Pid::from_raw(runner as i32);
    kill(pid, Signal::SIGTERM)
        .map_err(|e| (FAILED, format!("the runner (pid {runner}): SIGTERM: {e}")))?;
    // A runner stopped (Ctrl-Z) takes the SIGTERM once it runs again.
    let _ = kill(pid, Signal::SIGCONT);
    // The runner first, then whatever it started: a runner ended before it could stop them
    // leaves them to stop at the end of their stdin.
    let processes = state
        .nodes
        .iter()
        .filter_map(|n| Some((n.pid?, n.started)))
        .chain(state.services.iter().map(|s| (s.pid, s.started)));
    let all: Vec<(u32, Option<u64>)> = std::iter::once((runner, state.runner_started))
        .chain(processes)
        .collect();
    let asked = Instant::now();
    while let Some((left, _)) = all.iter().find(|(pid, started)| is_ours(*pid, *started)) {
        if asked.elapsed() > DOWN_BOUND {
            return Err((
                FAILED,
                format!("pid {left} still runs {DOWN_BOUND:?} after SIGTERM to the runner (pid {runner})"),
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(format!(
        "stopped the cluster in {} (runner pid {runner})",
        dir.display()
    ))
}

/// A node or service process as `status` shows it.
fn process_of(pid: Option<u32>, started: Option<u64>) -> &'static str {
    let Some(pid) = pid else {
        return "not started";
    };
    match ours(pid, started) {
        None => "exited",
        Some('T' | 't') => "paused",
        Some(_) => "running",
    }
}

/// The last role line of a trace log: (role, leader).
fn last_role(trace_log: &Path) -> Option<(String, Option<String>)> {
    let text = std::fs::read_to_string(trace_log).ok()?;
    text.lines()
        .rev()
        .filter(|line| line.contains("\"role\""))
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|event| event["event"] == "role")
        .map(|event| {
            let role = event["role"].as_str().unwrap_or("-").to_string();
            (role, event["leader"].as_str().map(str::to_string))
        })
}

#[derive(Serialize)]
struct NodeStatus<'a> {
    name: &'a str,
    address: &'a str,
    pid: Option<u32>,
    process: &'static str,
    role: Option<String>,
    leader: Option<String>,
    restarts: u32,
}

#[derive(Serialize)]
struct ServiceStatus<'a> {
    name: &'a str,
    kind: &'a str,
    address: &'a str,
    url: Option<&'a str>,
    pid: u32,
    process: &'static str,
}

#[derive(Serialize)]
struct Status<'a> {
    dir: String,
    scenario: String,
    seed: u64,
    runner_pid: u32,
    runner: &'static str,
    nodes: Vec<NodeStatus<'a>>,
    services: Vec<ServiceStatus<'a>>,
    /// The blocked pairs; `None` when the monitor that holds them cannot be asked.
    blocks: Option<Vec<(String, String)>>,
    /// Why `blocks` is `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    blocks_error: Option<String>,
}

fn status(dir: &Path, json: bool) -> Outcome {
    let state = read_state(dir)?;
    let nodes = state
        .nodes
        .iter()
        .map(|node| {
            let (role, leader) = last_role(&node.trace_log).unzip();
            let leader = leader.flatten();
            NodeStatus {
                name: &node.name,
                address: &node.address,
                pid: node.pid,
                process: process_of(node.pid, node.started),
                role,
                leader,
                restarts: node.restarts,
            }
        })
        .collect();
    let services = state
        .services
        .iter()
        .map(|service| ServiceStatus {
            name: &service.name,
            kind: &service.kind,
            address: &service.address,
            url: service.url.as_deref(),
            pid: service.pid,
            process: process_of(Some(service.pid), service.started),
        })
        .collect();
    let (blocks, blocks_error) = match state.monitor() {
        Some(monitor) => {
            let url = monitor.url.clone().unwrap_or_default();
            match Monitor::new(&url, None).blocks() {
                Ok(text) => (Some(pairs_of(&text)), None),
                Err(e) => (None, Some(format!("the monitor at {url}: {e}"))),
            }
        }
        None => {
            let text = std::fs::read_to_string(dir.join("blocks")).unwrap_or_default();
            (Some(pairs_of(&text)), None)
        }
    };
    let status = Status {
        dir: dir.display().to_string(),
        scenario: state.scenario.display().to_string(),
        seed: state.seed,
        runner_pid: state.runner_pid,
        runner: if is_ours(state.runner_pid, state.runner_started) {
            "running"
        } else {
            "exited"
        },
        nodes,
        services,
        blocks,
        blocks_error,
    };
    if json {
        return serde_json::to_string(&status).map_err(|e| (FAILED, e.to_string()));
    }
    Ok(status_text(&status))
}

fn status_text(status: &Status) -> String {
    let mut out = format!(
        "cluster: dir={} scenario={} seed={} runner_pid={} runner={}\n",
        status.dir, status.scenario, status.seed, status.runner_pid, status.runner
    );
    let dash = |s: &Option<String>| s.clone().unwrap_or_else(|| "-".into());
    for n in &status.nodes {
        let pid = n.pid.map_or_else(|| "-".into(), |p| p.to_string());
        out += &format!(
            "node={} address={} pid={pid} process={} role={} leader={} restarts={}\n",
            n.name,
            n.address,
            n.process,
            dash(&n.role),
            dash(&n.leader),
            n.restarts
        );
    }
    for s in &status.services {
        out += &format!(
            "service={} kind={} address={} pid={} process={}\n",
            s.name, s.kind, s.address, s.pid, s.process
        );
    }
    match (&status.blocks, &status.blocks_error) {
        (Some(pairs), _) if pairs.is_empty() => out += "blocks: none",
        (Some(pairs), _) => {
            let pairs: Vec<String> = pairs.iter().map(|(a, b)| format!("{a} {b}")).collect();
            out += &format!("blocks: {}", pairs.join(", "));
        }
        (None, error) => out += &format!("blocks: unknown ({})", dash(error)),
    }
    out
}

/// A blocked pair, its names in order; an error unless both are nodes, and different.
fn pair_of(state: &State, a: &str, b: &str) -> Result<(String, String), (u8, String)> {
    find(state, a)?;
    find(state, b)?;
    if a == b {
        return Err(bad(format!("cannot block {a} from itself")));
    }
    Ok(if a <= b {
        (a.to_string(), b.to_string())
    } else {
        (b.to_string(), a.to_string())
    })
}

/// The pairs of a block list, `a b` a line (`#` starts a comment), each in name order.
fn pairs_of(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| {
            let mut names = line.split('#').next()?.split_whitespace();
            let (a, b) = (names.next()?, names.next()?);
            Some(if a <= b { (a, b) } else { (b, a) })
        })
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// Changes the cluster's block list: the monitor's, when it has one, else DIR/blocks (read,
/// changed and written back at once).
fn edit_blocks(
    dir: &Path,
    change: impl FnOnce(&mut Vec<(String, String)>, &State) -> Outcome,
) -> Outcome {
    let state = read_state(dir)?;
    if let Some(monitor) = state.monitor() {
        let url = monitor.url.clone().unwrap_or_default();
        return edit_monitor_blocks(&Monitor::new(&url, None), &state, change);
    }
    let path = dir.join("blocks");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let mut pairs = pairs_of(&text);
    let message = change(&mut pairs, &state)?;
    pairs.sort();
    pairs.dedup();
    let text: String = pairs.iter().map(|(a, b)| format!("{a} {b}\n")).collect();
    write_atomically(&path, text.as_bytes())
        .map_err(|e| (FAILED, format!("{}: {e}", path.display())))?;
    Ok(message)
}

/// Reads the monitor's block list, changes its pairs, and sets it (`POST /api/blocks`).
fn edit_monitor_blocks(
    monitor: &Monitor,
    state: &State,
    change: impl FnOnce(&mut Vec<(String, String)>, &State) -> Outcome,
) -> Outcome {
    let text = monitor.blocks().map_err(|e| (FAILED, e))?;
    let mut pairs = pairs_of(&text);
    let message = change(&mut pairs, state)?;
    pairs.sort();
    pairs.dedup();
    let now = monitor.set_blocks(&pairs).map_err(|e| (FAILED, e))?;
    Ok(format!(
        "{message} (the monitor's list at {}: {})",
        monitor.url,
        now.trim()
    ))
}

/// Whether `address`'s host is this machine: a loopback address, or one a UDP socket can
/// bind to.
pub fn is_local(address: &str) -> bool {
    use std::net::ToSocketAddrs;
    let Ok(resolved) = address.to_socket_addrs() else {
        return false;
    };
    resolved
        .into_iter()
        .any(|a| a.ip().is_loopback() || std::net::UdpSocket::bind((a.ip(), 0)).is_ok())
}

/// One node process of the runner.
struct Running {
    child: Option<Child>,
    tail: Tail,
}

fn up(
    dir: &Path,
    scenario_path: &Path,
    base_port: Option<u16>,
    local_only: bool,
    seed: Option<u64>,
) -> u8 {
    let Some(scenario) = node::load(scenario_path) else {
        return BAD_INPUT;
    };
    let places = match node::places(&scenario, base_port) {
        Ok(places) => places,
        Err(e) => {
            eprintln!("error: {e}");
            return BAD_INPUT;
        }
    };
    if let Ok(old) = read_state(dir) {
        if old.runner_pid != std::process::id() && is_ours(old.runner_pid, old.runner_started) {
            eprintln!(
                "error: a cluster runs in {} already (runner pid {}); stop it, or give another --dir",
                dir.display(),
                old.runner_pid
            );
            return BAD_INPUT;
        }
    }
    // Only the nodes started here: another machine has its own ephemeral range.
    for place in places
        .iter()
        .filter(|p| !local_only || is_local(&p.address))
    {
        if let Some(warning) = ports::restart_warning(&place.name, &place.address) {
            eprintln!("{warning}");
        }
    }
    let seed = seed.unwrap_or_else(|| scenario.seeds.first().copied().unwrap_or(0));
    let plan = Plan {
        scenario: &scenario,
        scenario_path,
        places: &places,
        base_port,
        local_only,
        seed,
    };
    match start_all(dir, &plan) {
        Ok((state, running, services)) => follow(dir, state, running, services),
        Err(e) => {
            eprintln!("error: {e}");
            FAILED
        }
    }
}

/// What `cluster up` starts.
struct Plan<'a> {
    scenario: &'a Scenario,
    scenario_path: &'a Path,
    places: &'a [Place],
    base_port: Option<u16>,
    local_only: bool,
    seed: u64,
}

fn start_all(dir: &Path, plan: &Plan) -> Result<(State, Vec<Running>, Vec<Running>), String> {
    let (places, base_port, seed) = (plan.places, plan.base_port, plan.seed);
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let dir = std::fs::canonicalize(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let scenario = std::fs::canonicalize(plan.scenario_path)
        .map_err(|e| format!("{}: {e}", plan.scenario_path.display()))?;
    let mut state = State {
        runner_pid: std::process::id(),
        runner_started: start_time(std::process::id()),
        scenario: scenario.clone(),
        seed,
        nodes: Vec::new(),
        services: Vec::new(),
    };
    println!(
        "cluster: scenario={} dir={} seed={seed} runner_pid={}",
        scenario.display(),
        dir.display(),
        std::process::id()
    );
    let services = start_services(&dir, plan, &mut state.services)?;
    let service_args = node_args_for_services(plan.scenario, &state.services);
    // One block list: the monitor's when there is one (each node copies it to a file of its
    // own), else DIR/blocks.
    let blocks = dir.join("blocks");
    if state.monitor().is_some() {
        let _ = std::fs::remove_file(&blocks);
    } else {
        write_atomically(&blocks, b"").map_err(|e| format!("{}: {e}", blocks.display()))?;
    }
    let mut running = Vec::new();
    for place in places {
        let trace_log = dir.join(format!("{}.jsonl", place.name));
        let mut args: Vec<String> = vec!["node".into(), "--scenario".into()];
        args.push(scenario.display().to_string());
        args.extend(["--name".into(), place.name.clone()]);
        if let Some(base) = base_port {
            args.extend(["--base-port".into(), base.to_string()]);
        }
        args.extend(["--seed".into(), seed.to_string()]);
        args.extend(["--trace-log".into(), trace_log.display().to_string()]);
        if state.monitor().is_none() {
            args.extend(["--block-file".into(), blocks.display().to_string()]);
        }
        args.extend(service_args.iter().cloned());
        args.push("--stop-on-stdin-eof".into());
        let start = !plan.local_only || is_local(&place.address);
        let child = if start {
            let _ = std::fs::remove_file(&trace_log);
            Some(spawn(&dir, &place.name, &args)?)
        } else {
            None
        };
        match &child {
            Some(child) => println!(
                "node={} address={} pid={} trace_log={}",
                place.name,
                place.address,
                child.id(),
                trace_log.display()
            ),
            None => println!(
                "node={} address={} not started (not an address of this machine)",
                place.name, place.address
            ),
        }
        state.nodes.push(NodeState {
            name: place.name.clone(),
            address: place.address.clone(),
            pid: child.as_ref().map(Child::id),
            started: child.as_ref().and_then(|c| start_time(c.id())),
            trace_log: trace_log.clone(),
            args,
            restarts: 0,
        });
        running.push(Running {
            child,
            tail: Tail::new(trace_log),
        });
    }
    write_state(&dir, &state).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok((state, running, services))
}

/// The `conclave` command and kind of a scenario's service.
fn command_of(kind: ServiceKind) -> &'static str {
    match kind {
        ServiceKind::Registry => "registry",
        ServiceKind::GroupCoordinatorDaemon => "gcd",
        ServiceKind::LogServer => "monitor",
    }
}

/// Starts the scenario's services, in its order, each on 127.0.0.1: the port after the
/// nodes' with `--base-port`, else one the OS picks. Waits for each to print the address it
/// listens on. Prints and records each; a dropped [`Running`] ends its service (stdin).
fn start_services(
    dir: &Path,
    plan: &Plan,
    states: &mut Vec<ServiceState>,
) -> Result<Vec<Running>, String> {
    let mut running = Vec::new();
    for (i, (name, kind)) in plan.scenario.services().into_iter().enumerate() {
        let port = match plan.base_port {
            Some(base) => {
                let port = u32::from(base) + (plan.places.len() + i) as u32;
                u16::try_from(port).map_err(|_| {
                    format!("service {name:?}: --base-port {base} leaves no port for it")
                })?
            }
            None => 0,
        };
        let command = command_of(kind);
        let mut args: Vec<String> = vec![command.into(), "--listen".into()];
        args.push(format!("127.0.0.1:{port}"));
        if kind == ServiceKind::LogServer {
            // A fresh log, so that no block list of an earlier cluster comes back.
            let db = dir.join("monitor.sqlite3");
            for suffix in ["", "-wal", "-shm", "-journal"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
            }
            args.extend(["--db".into(), db.display().to_string()]);
        }
        args.push("--stop-on-stdin-eof".into());
        let (child, address) = spawn_service(dir, &name, &args)?;
        let url =
            (kind != ServiceKind::GroupCoordinatorDaemon).then(|| format!("http://{address}"));
        println!(
            "service={name} kind={command} address={address} pid={}",
            child.id()
        );
        if kind == ServiceKind::LogServer {
            println!("monitor: http://{address}/status");
        }
        states.push(ServiceState {
            name,
            kind: command.into(),
            address,
            url,
            pid: child.id(),
            started: start_time(child.id()),
            args,
        });
        running.push(Running {
            child: Some(child),
            tail: Tail::new(PathBuf::new()),
        });
    }
    Ok(running)
}

/// The flags that point a node at the cluster's services.
fn node_args_for_services(scenario: &Scenario, services: &[ServiceState]) -> Vec<String> {
    let mut args = Vec::new();
    for service in services {
        match (service.kind.as_str(), &service.url) {
            ("registry", Some(url)) => {
                args.extend(["--registry".into(), url.clone()]);
                if let AlgorithmSpec::Bully(BullyParams {
                    discovery: Discovery::Registry { wait, .. },
                    ..
                }) = &scenario.algorithm
                {
                    args.extend(["--discovery-wait".into(), format!("{}us", wait.as_micros())]);
                }
            }
            ("monitor", Some(url)) => args.extend(["--monitor".into(), url.clone()]),
            ("gcd", _) => args.extend([
                "--gcd".into(),
                service.address.clone(),
                "--discovery-wait".into(),
                GCD_WAIT.into(),
            ]),
            _ => {}
        }
    }
    args
}

/// Starts a service with its stdin a pipe held by the runner, its stderr in
/// DIR/<name>.log, and returns it with the address its first stdout line names
/// ("... listening on [http://]ADDR[/status] ..."); the rest of its stdout is discarded.
fn spawn_service(dir: &Path, name: &str, args: &[String]) -> Result<(Child, String), String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find conclave itself: {e}"))?;
    let log = stderr_log(dir, name);
    let stderr = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let mut child = Process::new(exe)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .map_err(|e| format!("cannot start service {name}: {e}"))?;
    let stdout = child.stdout.take().expect("piped");
    let (first_line, line) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = std::io::BufReader::new(stdout);
        let mut first = String::new();
        let _ = lines.read_line(&mut first);
        let _ = first_line.send(first);
        let _ = std::io::copy(&mut lines, &mut std::io::sink());
    });
    let address = line
        .recv_timeout(SERVICE_BOUND)
        .ok()
        .and_then(|line| listening_address(&line));
    match address {
        Some(address) => Ok((child, address)),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            Err(format!(
                "service {name} ({}) did not say where it listens within {SERVICE_BOUND:?}; see {}",
                args.join(" "),
                log.display()
            ))
        }
    }
}

/// The address in a service's "... listening on [http://]ADDR[/status] ..." line.
fn listening_address(line: &str) -> Option<String> {
    let (_, rest) = line.split_once("listening on ")?;
    let word = rest.split_whitespace().next()?;
    let word = word.strip_prefix("http://").unwrap_or(word);
    Some(word.split('/').next()?.to_string())
}

/// Starts `conclave <args>` with its stdin a pipe held by the runner, its stderr in
/// DIR/<name>.log.
fn spawn(dir: &Path, name: &str, args: &[String]) -> Result<Child, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find conclave itself: {e}"))?;
    let log = stderr_log(dir, name);
    let stderr = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    Process::new(exe)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .map_err(|e| format!("cannot start node {name}: {e}"))
}

/// Follows the nodes until Ctrl-C or SIGTERM, then stops them.
fn follow(
    dir: &Path,
    mut state: State,
    mut running: Vec<Running>,
    mut services: Vec<Running>,
) -> u8 {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            stop_all(&mut running);
            stop_all(&mut services);
            return FAILED;
        }
    };
    let started_us = wall_us();
    runtime.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).ok();
        let mut tick = tokio::time::interval(POLL);
        loop {
            tokio::select! {
                _ = async {
                    match term.as_mut() {
                        Some(term) => term.recv().await,
                        None => std::future::pending().await,
                    }
                } => break,
                _ = tokio::signal::ctrl_c() => break,
                _ = tick.tick() => {
                    print_role_changes(&mut running, started_us);
                    reap(&dir, &state, &mut running, started_us);
                    reap_services(&state, &mut services);
                    take_requests(&dir, &mut state, &mut running, started_us);
                }
            }
        }
    });
    print_role_changes(&mut running, started_us);
    let left = running.iter().filter(|r| r.child.is_some()).count();
    println!("cluster: stopping {left} node(s)");
    stop_all(&mut running);
    print_role_changes(&mut running, started_us);
    if !services.is_empty() {
        let left = services.iter().filter(|r| r.child.is_some()).count();
        println!("cluster: stopping {left} service(s)");
        stop_all(&mut services);
    }
    println!("cluster: stopped");
    HELD
}

fn wall_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Notes each node process that has exited; one that failed (an exit code other than 0)
/// with the error its stderr ends with, as `error="..."`.
fn reap(dir: &Path, state: &State, running: &mut [Running], started_us: u64) {
    for (node, run) in state.nodes.iter().zip(running.iter_mut()) {
        let Some(child) = &mut run.child else {
            continue;
        };
        if let Ok(Some(status)) = child.try_wait() {
            print_role_changes(std::slice::from_mut(run), started_us);
            let error = match status.code() {
                Some(code) if code != 0 => last_error(&stderr_log(dir, &node.name)),
                _ => None,
            };
            match error {
                Some(error) => println!(
                    "node={} event=exited status={status} error={error:?}",
                    node.name
                ),
                None => println!("node={} event=exited status={status}", node.name),
            }
            run.child = None;
        }
    }
}

/// Where a node's or service's stderr goes: DIR/<name>.log.
fn stderr_log(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.log"))
}

/// The last `error: ` line of a node's stderr, without the prefix.
fn last_error(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines()
        .rev()
        .find_map(|line| line.strip_prefix("error: "))
        .map(str::to_string)
}

/// Notes each service process that has exited.
fn reap_services(state: &State, services: &mut [Running]) {
    for (service, run) in state.services.iter().zip(services.iter_mut()) {
        let Some(child) = &mut run.child else {
            continue;
        };
        if let Ok(Some(status)) = child.try_wait() {
            println!("service={} event=exited status={status}", service.name);
            run.child = None;
        }
    }
}

/// Carries out each `cluster restart` request in DIR/requests.
fn take_requests(dir: &Path, state: &mut State, running: &mut [Running], started_us: u64) {
    let requests = dir.join("requests");
    let Ok(entries) = std::fs::read_dir(&requests) else {
        return;
    };
    let names: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| !name.contains(".tmp."))
        .collect();
    for name in names {
        let _ = std::fs::remove_file(requests.join(&name));
        let Some(i) = state.nodes.iter().position(|n| n.name == name) else {
            continue;
        };
        if let Some(child) = running[i].child.take() {
            stop_all(&mut [Running {
                child: Some(child),
                tail: Tail::new(PathBuf::new()),
            }]);
        }
        print_role_changes(&mut running[i..=i], started_us);
        let node = &mut state.nodes[i];
        let _ = std::fs::remove_file(&node.trace_log);
        match spawn(dir, &node.name, &node.args) {
            Ok(child) => {
                println!("node={name} event=restarted pid={}", child.id());
                node.pid = Some(child.id());
                node.started = start_time(child.id());
                node.restarts += 1;
                running[i] = Running {
                    child: Some(child),
                    tail: Tail::new(node.trace_log.clone()),
                };
            }
            Err(e) => println!("node={name} event=restart_failed error={e:?}"),
        }
        if let Err(e) = write_state(dir, state) {
            eprintln!("error: cannot update cluster.json: {e}");
        }
    }
}

/// Stops node processes: SIGCONT (a paused one) and SIGTERM, then SIGKILL those left after
/// [`STOP_BOUND`]; every one is waited for.
fn stop_all(running: &mut [Running]) {
    for child in running.iter_mut().filter_map(|r| r.child.as_mut()) {
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let _ = kill(pid, Signal::SIGCONT);
        let _ = kill(pid, Signal::SIGTERM);
    }
    let asked = Instant::now();
    while asked.elapsed() < STOP_BOUND {
        let mut left = 0;
        for child in running.iter_mut().filter_map(|r| r.child.as_mut()) {
            if !matches!(child.try_wait(), Ok(Some(_))) {
                left += 1;
            }
        }
        if left == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    for child in running.iter_mut().filter_map(|r| r.child.as_mut()) {
        if !matches!(child.try_wait(), Ok(Some(_))) {
            let _ = child.kill();
        }
        let _ = child.wait();
    }
    for run in running.iter_mut() {
        run.child = None;
    }
}

/// The unread end of a trace log.
struct Tail {
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
    /// The last (role, leader) seen.
    last: Option<(String, String)>,
}

/// The most of a trace log read in one poll.
const TAIL_CHUNK: u64 = 1 << 20;

impl Tail {
    fn new(path: PathBuf) -> Self {
        Tail {
            path,
            offset: 0,
            partial: Vec::new(),
            last: None,
        }
    }

    /// The role changes of the new lines: a `role` line whose role or leader differs from
    /// the last one's (a status change alone is left out).
    fn role_changes(&mut self) -> Vec<RoleChange> {
        let Ok(mut file) = std::fs::File::open(&self.path) else {
            return Vec::new();
        };
        let mut bytes = Vec::new();
        let read = file
            .seek(SeekFrom::Start(self.offset))
            .and_then(|_| file.take(TAIL_CHUNK).read_to_end(&mut bytes));
        if read.is_err() {
            return Vec::new();
        }
        self.offset += bytes.len() as u64;
        self.partial.extend_from_slice(&bytes);
        let Some(end) = self.partial.iter().rposition(|&b| b == b'\n') else {
            return Vec::new();
        };
        let lines: Vec<u8> = self.partial.drain(..=end).collect();
        let mut changes = Vec::new();
        for line in lines.split(|&b| b == b'\n') {
            let Ok(event) = serde_json::from_slice::<serde_json::Value>(line) else {
                continue;
            };
            if event["event"] != "role" {
                continue;
            }
            let text = |key: &str| event[key].as_str().unwrap_or("-").to_string();
            let now = (text("role"), text("leader"));
            if self.last.as_ref() == Some(&now) {
                continue;
            }
            self.last = Some(now.clone());
            changes.push(RoleChange {
                wall_us: event["wall_us"].as_u64().unwrap_or(0),
                node: text("node"),
                role: now.0,
                leader: now.1,
            });
        }
        changes
    }
}

/// A node's new role, as its trace log says.
struct RoleChange {
    wall_us: u64,
    node: String,
    role: String,
    leader: String,
}

/// Prints every node's new role changes in time order, times since `started_us`.
fn print_role_changes(running: &mut [Running], started_us: u64) {
    let mut changes: Vec<RoleChange> = running
        .iter_mut()
        .flat_map(|r| r.tail.role_changes())
        .collect();
    changes.sort_by_key(|c| c.wall_us);
    for c in changes {
        let t = c.wall_us.saturating_sub(started_us) as f64 / 1e6;
        println!(
            "t={t:.3}s node={} role={} leader={}",
            c.node, c.role, c.leader
        );
    }
}
