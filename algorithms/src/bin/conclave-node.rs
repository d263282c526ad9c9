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
//! `q` and Enter on stdin, SIGTERM or Ctrl-C stop the node gracefully. A bad flag, file or
//! parameter exits with status 2; a failure to start (the address is taken) with 1.

use clap::{Parser, ValueEnum};
use conclave_algorithms::net::runtime::{
    run_node, stop_on_signals, stop_on_stdin, Listen, NodeConfig,
};
use conclave_algorithms::net::ClusterKey;
use conclave_algorithms::{Algorithm, Cluster, Member, Pid};
use serde::de::DeserializeOwned;
use serde::Serialize;
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

#[derive(Debug, Parser)]
#[command(about = "Runs one node of a leader-election algorithm on real sockets")]
struct Args {
    #[arg(long, value_enum)]
    algorithm: AlgorithmName,
    /// This node's member name (with --config, its line: `ip:port` or its `name=`).
    #[arg(long)]
    name: String,
    /// Where to accept connections; defaults to this node's address in the member list.
    #[arg(long)]
    listen: Option<String>,
    /// The members, this node included: `[name[:priority]=]address,...`.
    #[arg(
        long,
        value_delimiter = ',',
        conflicts_with = "config",
        required_unless_present = "config"
    )]
    peers: Vec<String>,
    /// A server_config file: one member per line, as in --peers; `#` comments, blank lines.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The algorithm's parameters in RON, such as `(answer_timeout: "200ms")`.
    #[arg(long)]
    params: Option<String>,
    /// The seed of the node's random draws; drawn from the OS and logged when not given.
    #[arg(long)]
    seed: Option<u64>,
    /// The cluster's name, checked in every handshake.
    #[arg(long, default_value = "conclave")]
    cluster: String,
    /// A file holding the cluster key (at least 16 bytes): every frame is authenticated.
    #[arg(long)]
    cluster_key_file: Option<PathBuf>,
    /// A command (`sh -c`) started when this node becomes leader.
    #[arg(long)]
    on_leader: Option<String>,
    /// A command (`sh -c`) started when this node becomes a follower.
    #[arg(long)]
    on_follower: Option<String>,
    /// Where to write the trace log, one JSON object per event.
    #[arg(long)]
    trace_log: Option<PathBuf>,
    /// A file of blocked links, `a b` a line (node names): messages between them are
    /// dropped both ways. Read again when it changes.
    #[arg(long)]
    block_file: Option<PathBuf>,
}

/// A mistake in the flags or the files they name: exit status 2.
struct Usage(String);

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match args.algorithm {
        AlgorithmName::Bully => run::<conclave_algorithms::bully::Bully>(&args),
        AlgorithmName::GarciaMolina => {
            run::<conclave_algorithms::garcia_molina::GarciaMolina>(&args)
        }
        AlgorithmName::Invitation => run::<conclave_algorithms::invitation::Invitation>(&args),
        AlgorithmName::AsyncBully => run::<conclave_algorithms::async_bully::AsyncBully>(&args),
        AlgorithmName::Gcd => run::<conclave_algorithms::gcd::GcdBully>(&args),
        AlgorithmName::Quorum => run::<conclave_algorithms::quorum::Quorum>(&args),
    };
    match result {
        Ok(code) => code,
        Err(Usage(message)) => {
            eprintln!("conclave-node: error: {message}");
            ExitCode::from(2)
        }
    }
}

fn run<A>(args: &Args) -> Result<ExitCode, Usage>
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
    let cluster = cluster_of(&entries)?;
    let me = cluster
        .members
        .iter()
        .position(|m| m.name == args.name)
        .map(|i| Pid(i as u32))
        .ok_or_else(|| {
            let names: Vec<_> = cluster.members.iter().map(|m| m.name.as_str()).collect();
            Usage(format!("--name {:?} is not a member: {names:?}", args.name))
        })?;
    let listen = match &args.listen {
        Some(listen) => listen.clone(),
        None => cluster.member(me).address.clone().unwrap_or_default(),
    };
    let key = match &args.cluster_key_file {
        Some(path) => Some(ClusterKey::load(path).map_err(|e| Usage(e.to_string()))?),
        None => None,
    };
    let seed = match args.seed {
        Some(seed) => seed,
        None => {
            let mut bytes = [0; 8];
            getrandom::fill(&mut bytes).map_err(|e| Usage(format!("no seed: {e}")))?;
            u64::from_le_bytes(bytes)
        }
    };
    eprintln!(
        "conclave-node: node={} seed={seed} (rerun with --seed {seed} for the same draws)",
        args.name
    );
    let (stop, shutdown) = watch::channel(false);
    let mut config = NodeConfig::<A>::new(cluster, me, params, Listen::Address(listen), shutdown);
    config.key = key;
    config.cluster_name = args.cluster.clone();
    config.seed = seed;
    config.trace_log = args.trace_log.clone();
    config.block_file = args.block_file.clone();
    config.on_leader = args.on_leader.clone();
    config.on_follower = args.on_follower.clone();

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Usage(format!("cannot start the runtime: {e}")))?;
    let result = runtime.block_on(async move {
        stop_on_stdin(stop.clone(), false);
        tokio::spawn(stop_on_signals(stop));
        run_node(config).await
    });
    Ok(match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("conclave-node: error: {e}");
            ExitCode::FAILURE
        }
    })
}

/// The members of `entries`, each `[name[:priority]=]address`.
fn cluster_of(entries: &[String]) -> Result<Cluster, Usage> {
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
