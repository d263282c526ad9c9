//! `conclave-node`: one node of a leader-election algorithm on real sockets.
//!
//! ```text
//! conclave-node --algorithm bully --name a --listen 0.0.0.0:7000 \
//!     --peers a=10.0.0.1:7000,b=10.0.0.2:7000,c=10.0.0.3:7000 \
//!     --params '(answer_timeout: "200ms", heartbeat_interval: "1s", heartbeat_timeout: "1s")'
//! ```
//!
//! The cluster is every member of `--peers` (this node included), or every line of a
//! `--config` file (seed 002's `server_config`). An entry is `[name[:priority]=]address`: the
//! name defaults to the address, the priority to the entry's position counted from 1 (the
//! last entry has the highest priority). Priorities are either all given or none.
//!
//! Or the members are discovered before the node starts (see
//! `conclave_algorithms::net::discovery`; the node binds `--listen` first, so port 0 works):
//!
//! - `--registry URL` (seed 000, Consul's API): register as `--name` with `--priority`, wait
//!   `--discovery-wait` (8 s), list the service's passing instances; deregister at the end;
//! - `--gcd ADDR` (seed 003): JOIN the group coordinator daemon as `--identity DAYS,SID`
//!   (the member is named `DAYS,SID`), wait, ask for the member list;
//! - `--broadcast ADDR:PORT` (seed 004): broadcast a HELLO, gather the answers for the wait,
//!   and answer later HELLOs for as long as the node runs.
//!
//! Membership is fixed once the node starts: a node that starts later is not added to the
//! running ones (restart them). `--monitor URL` reports every view to a monitor each second
//! and copies its block list to the node's block file.
//!
//! With `--wire lab` (GCD Bully only) the node speaks seed 003's own wire instead, pickled
//! `(message_name, message_data)` tuples one per connection, with a `conclave gcd --wire
//! lab` daemon and Python lab nodes: it JOINs the daemon itself, learns members as they come
//! (the daemon's answers, ELECTION's member dicts), and rejoins after a failed probe
//! (`conclave_algorithms::net::lab`).
//!
//! `q` and Enter on stdin, SIGTERM or Ctrl-C stop the node gracefully. A bad flag, file or
//! parameter exits with status 2; a failure to start (the address is taken, discovery
//! failed) with 1.

use clap::{Parser, ValueEnum};
use conclave_algorithms::gcd::GcdParams;
use conclave_algorithms::net::discovery::{
    self, cluster_of, Broadcast, Peer, Registration, Registry,
};
use conclave_algorithms::net::flags::{read_token, RuntimeFlags};
use conclave_algorithms::net::lab::{run_lab_node, LabConfig};
use conclave_algorithms::net::ports;
use conclave_algorithms::net::report::{run_node_reporting, Reporting};
use conclave_algorithms::net::runtime::{stop_on_signals, stop_on_stdin, Listen, NodeConfig};
use conclave_algorithms::{Algorithm, Cluster, Member, Pid};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use tokio::sync::watch;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum AlgorithmName {
    Bully,
    GarciaMolina,
    Invitation,
    AsyncBully,
    Gcd,
    Quorum,
}

/// What the node speaks to its peers and the daemon.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum WireName {
    /// Conclave's frames (`conclave_algorithms::net`).
    Conclave,
    /// The SeattleU lab's pickled tuples, one per connection (GCD Bully with --gcd only).
    Lab,
}

#[derive(Debug, Parser)]
#[command(group = clap::ArgGroup::new("discovery").multiple(false).conflicts_with_all(["peers", "config"]))]
#[command(about = "Runs one node of a leader-election algorithm on real sockets")]
struct Args {
    #[arg(long, value_enum)]
    algorithm: AlgorithmName,
    /// This node's member name (with --config, its line: `ip:port` or its `name=`). With
    /// --gcd the name is the identity, `DAYS,SID`.
    #[arg(long, required_unless_present = "gcd", conflicts_with = "gcd")]
    name: Option<String>,
    /// Where to accept connections; defaults to this node's address in the member list.
    #[arg(long)]
    listen: Option<String>,
    /// The members, this node included: `[name[:priority]=]address,...`.
    #[arg(
        long,
        value_delimiter = ',',
        conflicts_with = "config",
        required_unless_present_any = ["config", "registry", "gcd", "broadcast"]
    )]
    peers: Vec<String>,
    /// A server_config file: one member per line, as in --peers; `#` comments, blank lines.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Discover the members through a Consul-compatible registry at this URL (seed 000).
    #[arg(long, group = "discovery", requires_all = ["listen", "priority"])]
    registry: Option<String>,
    /// The service name to register under and list, with --registry.
    #[arg(long, default_value = "conclave", requires = "registry")]
    service: String,
    /// A file holding the registry's token, sent as X-Consul-Token.
    #[arg(long, requires = "registry")]
    registry_token_file: Option<PathBuf>,
    /// Discover the members through the group coordinator daemon at this address (seed 003).
    #[arg(long, group = "discovery", requires_all = ["listen", "identity"])]
    gcd: Option<SocketAddr>,
    /// This node's identity for --gcd: days until a birthday, student id.
    #[arg(long, value_name = "DAYS,SID", requires = "gcd")]
    identity: Option<String>,
    /// Discover the members by a UDP handshake on this broadcast address and port (seed 004),
    /// such as 255.255.255.255:5595, or 127.255.255.255:5595 on one machine.
    #[arg(long, group = "discovery", requires_all = ["listen", "priority"])]
    broadcast: Option<SocketAddr>,
    /// This node's priority, with --registry or --broadcast.
    #[arg(long)]
    priority: Option<u64>,
    /// The address the other nodes reach this node at; defaults to the bound --listen
    /// address (which then must not be 0.0.0.0).
    #[arg(long)]
    advertise: Option<String>,
    /// How long discovery gathers members before the node starts.
    #[arg(long, default_value = "8s")]
    discovery_wait: conclave_algorithms::Duration,
    /// The algorithm's parameters in RON, such as `(answer_timeout: "200ms")`.
    #[arg(long)]
    params: Option<String>,
    /// The seed of the node's random draws; drawn from the OS and logged when not given.
    #[arg(long)]
    seed: Option<u64>,
    /// The cluster's name, checked in every handshake.
    #[arg(long, default_value = "conclave")]
    cluster: String,
    /// The cluster key, the role hooks, the trace log, the block file and the monitor.
    #[command(flatten)]
    runtime: RuntimeFlags,
    /// The wire: `lab` speaks seed 003's pickles with a `conclave gcd --wire lab` daemon
    /// and Python lab nodes (needs --algorithm gcd, --gcd, --identity, --listen; members
    /// are learnt while the node runs, no --discovery-wait).
    #[arg(long, value_enum, default_value = "conclave")]
    wire: WireName,
}

/// A mistake in the flags or the files they name: exit status 2.
struct Usage(String);

/// Why the node did not run: a usage mistake (exit status 2), or a failure to start, such
/// as an address in use or a registry that cannot be reached (1).
enum Failure {
    Usage(String),
    Start(String),
}

impl From<Usage> for Failure {
    fn from(Usage(message): Usage) -> Self {
        Failure::Usage(message)
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match (args.wire, args.algorithm) {
        (WireName::Lab, AlgorithmName::Gcd) => run_lab(&args),
        (WireName::Lab, other) => Err(Failure::Usage(format!(
            "--wire lab is the GCD Bully's (--algorithm gcd), not {other:?}'s"
        ))),
        (WireName::Conclave, algorithm) => run_algorithm(algorithm, &args),
    };
    match result {
        Ok(code) => code,
        Err(Failure::Usage(message)) => {
            eprintln!("conclave-node: error: {message}");
            ExitCode::from(2)
        }
        Err(Failure::Start(message)) => {
            eprintln!("conclave-node: error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run_algorithm(algorithm: AlgorithmName, args: &Args) -> Result<ExitCode, Failure> {
    match algorithm {
        AlgorithmName::Bully => run::<conclave_algorithms::bully::Bully>(args),
        AlgorithmName::GarciaMolina => {
            run::<conclave_algorithms::garcia_molina::GarciaMolina>(args)
        }
        AlgorithmName::Invitation => run::<conclave_algorithms::invitation::Invitation>(args),
        AlgorithmName::AsyncBully => run::<conclave_algorithms::async_bully::AsyncBully>(args),
        AlgorithmName::Gcd => run::<conclave_algorithms::gcd::GcdBully>(args),
        AlgorithmName::Quorum => run::<conclave_algorithms::quorum::Quorum>(args),
    }
}

/// `--wire lab`: the GCD Bully over the lab's pickles (`conclave_algorithms::net::lab`).
fn run_lab(args: &Args) -> Result<ExitCode, Failure> {
    let (Some(gcd), Some(listen)) = (args.gcd, &args.listen) else {
        return Err(Failure::Usage(
            "--wire lab needs --gcd ADDR, --identity DAYS,SID and --listen".to_string(),
        ));
    };
    if let Some(flag) = args.runtime.unsupported_by_lab() {
        return Err(Failure::Usage(format!(
            "{flag} is not supported with --wire lab"
        )));
    }
    let identity = parse_identity(args.identity.as_deref().unwrap_or_default())?;
    let params: GcdParams = match &args.params {
        Some(text) => {
            ron::from_str(text).map_err(|e| Usage(format!("--params: {e} (in {text:?})")))?
        }
        None => GcdParams::default(),
    };
    let advertise = match &args.advertise {
        Some(address) => Some(discovery::split_address(address).map_err(|e| Usage(e.to_string()))?),
        None => None,
    };
    let seed = seed_of(args)?;
    eprintln!(
        "conclave-node: node={},{} wire=lab seed={seed} (rerun with --seed {seed} for the same draws)",
        identity.0, identity.1
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Start(format!("cannot start the runtime: {e}")))?;
    let (stop, shutdown) = watch::channel(false);
    let mut config = LabConfig::new(gcd, identity, Listen::Address(listen.clone()), shutdown);
    config.advertise = advertise;
    config.params = params;
    config.seed = seed;
    args.runtime.configure_lab(&mut config);
    let result = runtime.block_on(async move {
        stop_on_stdin(stop.clone(), false);
        tokio::spawn(stop_on_signals(stop.clone()));
        run_lab_node(config).await
    });
    Ok(match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("conclave-node: error: {e}");
            ExitCode::FAILURE
        }
    })
}

/// `--seed`, or one drawn from the OS.
fn seed_of(args: &Args) -> Result<u64, Usage> {
    match args.seed {
        Some(seed) => Ok(seed),
        None => {
            let mut bytes = [0; 8];
            getrandom::fill(&mut bytes).map_err(|e| Usage(format!("no seed: {e}")))?;
            Ok(u64::from_le_bytes(bytes))
        }
    }
}

/// The members, this node's Pid and address, where it listens, and what discovery leaves
/// to do while the node runs.
struct Membership {
    cluster: Cluster,
    me: Pid,
    /// Where the other nodes reach this one (for the monitor's reports).
    address: String,
    listen: Listen,
    /// Deregistered when dropped, at the end of `run`.
    registered: Option<Registration>,
    /// Answers the HELLOs of later nodes while the node runs.
    broadcast: Option<Broadcast>,
}

fn run<A>(args: &Args) -> Result<ExitCode, Failure>
where
    A: Algorithm + Send + 'static,
    A::Msg: Send + Sync + 'static,
    A::Timer: Send,
    A::Params: Serialize + DeserializeOwned + Default + Send,
{
    let params: A::Params = match &args.params {
        Some(text) => {
            ron::from_str(text).map_err(|e| Usage(format!("--params: {e} (in {text:?})")))?
        }
        None => A::Params::default(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Start(format!("cannot start the runtime: {e}")))?;
    let membership = if args.registry.is_some() || args.gcd.is_some() || args.broadcast.is_some() {
        discover(args, &runtime)?
    } else {
        static_members(args)?
    };
    let Membership {
        cluster,
        me,
        address,
        listen,
        registered,
        broadcast,
    } = membership;
    let name = cluster.member(me).name.clone();
    // With --monitor and no --block-file, the monitor's block list goes to a file of ours.
    let mut inputs = args.runtime.read().map_err(Usage)?;
    let seed = seed_of(args)?;
    eprintln!(
        "conclave-node: node={name} seed={seed} (rerun with --seed {seed} for the same draws)"
    );
    let names: Vec<String> = cluster.members.iter().map(|m| m.name.clone()).collect();
    let (stop, shutdown) = watch::channel(false);
    let mut config = NodeConfig::<A>::new(cluster, me, params, listen, shutdown);
    inputs.configure(&args.runtime, &mut config);
    config.cluster_name = args.cluster.clone();
    config.seed = seed;
    let (monitor, block_file) = (inputs.monitor.take(), inputs.block_file.clone());

    let result = runtime.block_on(async move {
        stop_on_stdin(stop.clone(), false);
        tokio::spawn(stop_on_signals(stop.clone()));
        if let Some(broadcast) = broadcast {
            tokio::spawn(broadcast.answer_forever(names.clone()));
        }
        let reporting = monitor.map(|monitor| {
            let node = Reporting {
                name,
                address,
                names,
                block_file: block_file.unwrap_or_default(),
            };
            (monitor, node)
        });
        run_node_reporting(config, reporting, stop).await
    });
    drop(inputs);
    drop(registered);
    Ok(match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("conclave-node: error: {e}");
            ExitCode::FAILURE
        }
    })
}

/// The members of `--peers` or `--config`.
fn static_members(args: &Args) -> Result<Membership, Usage> {
    let entries = match &args.config {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| Usage(format!("cannot read --config {}: {e}", path.display())))?
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(str::to_string)
            .collect(),
        None => args.peers.clone(),
    };
    let cluster = cluster_of_entries(&entries)?;
    let name = args.name.clone().unwrap_or_default();
    let me = cluster
        .members
        .iter()
        .position(|m| m.name == name)
        .map(|i| Pid(i as u32))
        .ok_or_else(|| {
            let names: Vec<_> = cluster.members.iter().map(|m| m.name.as_str()).collect();
            Usage(format!("--name {name:?} is not a member: {names:?}"))
        })?;
    let own_address = cluster.member(me).address.clone().unwrap_or_default();
    let listen = args.listen.clone().unwrap_or_else(|| own_address.clone());
    Ok(Membership {
        address: args.advertise.clone().unwrap_or(own_address),
        cluster,
        me,
        listen: Listen::Address(listen),
        registered: None,
        broadcast: None,
    })
}

/// The members found by `--registry`, `--gcd` or `--broadcast`, after binding `--listen`
/// (so that port 0 can be advertised as the port it got).
fn discover(args: &Args, runtime: &tokio::runtime::Runtime) -> Result<Membership, Failure> {
    let start = |e: discovery::DiscoveryError| Failure::Start(e.to_string());
    let listen = args.listen.as_deref().unwrap_or_default();
    let listener = std::net::TcpListener::bind(listen).map_err(|e| {
        let hint = ports::listen_hint(listen, &e);
        Failure::Start(format!("cannot listen on {listen}: {e}{hint}"))
    })?;
    let bound = listener
        .local_addr()
        .map_err(|e| Failure::Start(format!("cannot listen on {listen}: {e}")))?;
    let address = match &args.advertise {
        Some(address) => address.clone(),
        None if bound.ip().is_unspecified() => {
            return Err(Failure::Usage(format!(
                "--listen {bound} is a wildcard address: give --advertise HOST:PORT"
            )))
        }
        None => bound.to_string(),
    };
    let wait = std::time::Duration::from_micros(args.discovery_wait.as_micros());
    let mut me = Peer {
        name: args.name.clone().unwrap_or_default(),
        priority: args.priority.unwrap_or_default(),
        address,
    };
    let (mut registered, mut broadcast) = (None, None);
    let (via, peers) = if let Some(url) = &args.registry {
        let token = read_token(args.registry_token_file.as_deref(), "--registry-token-file")
            .map_err(Usage)?;
        let registry = Registry::new(url, &args.service, token);
        registered = Some(registry.register_until_dropped(&me).map_err(start)?);
        eprintln!(
            "node={} event=registered registry={url} service={} waiting={wait:?}",
            me.name, args.service
        );
        std::thread::sleep(wait);
        ("registry", registry.passing().map_err(start)?)
    } else if let Some(gcd) = args.gcd {
        let (days, student_id) = parse_identity(args.identity.as_deref().unwrap_or_default())?;
        me.name = discovery::gcd_name(days, student_id);
        me.priority =
            conclave_algorithms::gcd::pack_identity(u64::from(days), u64::from(student_id));
        let join = discovery::join_gcd(gcd, days, student_id, &me.address, wait);
        ("gcd", runtime.block_on(join).map_err(start)?)
    } else if let Some(target) = args.broadcast {
        let bound = {
            let _enter = runtime.enter();
            Broadcast::bind(target, &args.cluster, me.clone()).map_err(start)?
        };
        let peers = runtime.block_on(bound.discover(wait));
        broadcast = Some(bound);
        ("broadcast", peers)
    } else {
        return Err(Failure::Usage("no discovery flag".to_string()));
    };
    let (cluster, me_pid) = cluster_of(&me, peers);
    let members: Vec<String> = cluster
        .members
        .iter()
        .map(|m| {
            format!(
                "{}:{}@{}",
                m.name,
                m.priority,
                m.address.as_deref().unwrap_or("-")
            )
        })
        .collect();
    eprintln!(
        "node={} event=discovered via={via} members={} (fixed while the node runs)",
        me.name,
        members.join(",")
    );
    Ok(Membership {
        cluster,
        me: me_pid,
        address: me.address,
        listen: Listen::Listener(listener),
        registered,
        broadcast,
    })
}

/// `DAYS,SID` as two numbers.
fn parse_identity(text: &str) -> Result<(u32, u32), Usage> {
    let bad = || {
        Usage(format!(
            "--identity {text:?}: want DAYS,SID such as 120,4123456"
        ))
    };
    let (days, student_id) = text.split_once(',').ok_or_else(bad)?;
    let days = days.trim().parse().map_err(|_| bad())?;
    let student_id = student_id.trim().parse().map_err(|_| bad())?;
    Ok((days, student_id))
}

/// The members of `entries`, each `[name[:priority]=]address`.
fn cluster_of_entries(entries: &[String]) -> Result<Cluster, Usage> {
    if entries.is_empty() {
        return Err(Usage("the member list is empty".to_string()));
    }
    let mut members = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let (label, address) = match entry.split_once('=') {
            Some((label, address)) => (Some(label.trim()), address.trim()),
            None => (None, entry.trim()),
        };
        if address.is_empty() {
            return Err(Usage(format!("member {entry:?} has no address")));
        }
        let (name, priority) = match label.map(|l| l.split_once(':')) {
            Some(Some((name, priority))) => {
                let priority = priority
                    .trim()
                    .parse::<u64>()
                    .map_err(|e| Usage(format!("member {entry:?}: priority {priority:?}: {e}")))?;
                (name.trim(), Some(priority))
            }
            Some(None) => (label.unwrap_or(address), None),
            None => (address, None),
        };
        if name.is_empty() {
            return Err(Usage(format!("member {entry:?} has an empty name")));
        }
        let mut member = Member::voter(name, priority.unwrap_or(i as u64 + 1));
        member.address = Some(address.to_string());
        members.push((member, priority.is_some()));
    }
    let given = members.iter().filter(|(_, given)| *given).count();
    if given != 0 && given != members.len() {
        return Err(Usage(
            "give every member a priority (name:priority=address), or none".to_string(),
        ));
    }
    let members: Vec<Member> = members.into_iter().map(|(m, _)| m).collect();
    for (i, m) in members.iter().enumerate() {
        if members[..i].iter().any(|other| other.name == m.name) {
            return Err(Usage(format!("member name {:?} appears twice", m.name)));
        }
    }
    Ok(Cluster::new(members))
}
