//! `conclave node`: one node of a scenario's cluster on real sockets, run by the same
//! runtime as `conclave-node` (`conclave_algorithms::net::runtime`).
//!
//! The scenario gives the algorithm, its parameters and the members (names, priorities);
//! each node is reached at its `address`, or at `127.0.0.1:(P + index)` with `--base-port P`
//! when it has none. The scenario's network, faults and expectations are the simulator's
//! and are not used here.
//!
//! ```text
//! conclave node --scenario scenarios/bully_coordinator_crash.ron --name n4 --base-port 7000
//! ```
//!
//! `--registry URL` registers the node with a Consul-compatible registry (`conclave
//! registry`), waits `--discovery-wait`, and takes the addresses of the scenario's other
//! nodes from the passing instances (the members stay the scenario's); the node is
//! deregistered when it stops. `--gcd ADDR` does the same with a group coordinator daemon
//! (`conclave gcd`): it JOINs as the identity its priority packs and takes the addresses of
//! the members of the same identities. With either, the real service stands in for the
//! scenario's service process, which is left out of the cluster: the node elects once it
//! has the addresses, as a scenario without the service does. `--monitor URL` reports every view to a monitor each second
//! and copies its block list to the block file (`conclave_algorithms::net::report`).
//!
//! `q` and Enter on stdin, SIGTERM or Ctrl-C stop the node gracefully (and, with
//! `--stop-on-stdin-eof`, the end of stdin). A bad flag or scenario exits with 2, a failure
//! to start (the address is taken) with 1.

use crate::{print_scenario_error, BAD_INPUT, HELD};
use conclave_algorithms::net::discovery::{Peer, Registration, Registry};
use conclave_algorithms::net::flags::{read_token, RuntimeFlags, RuntimeInputs};
use conclave_algorithms::net::ports;
use conclave_algorithms::net::report::{run_node_reporting, Reporting};
use conclave_algorithms::net::runtime::{stop_on_signals, stop_on_stdin, Listen, NodeConfig};
use conclave_algorithms::{Algorithm, Cluster, Pid};
use conclave_sim::scenario::Scenario;
use serde::Serialize;
use std::path::{Path, PathBuf};
use tokio::sync::watch;

/// The node could not start (its address is taken, its trace log cannot be written).
const NOT_STARTED: u8 = 1;

#[derive(clap::Args)]
pub struct Args {
    /// The scenario (RON): algorithm, parameters and nodes.
    #[arg(long, value_name = "FILE")]
    pub scenario: PathBuf,
    /// This node's name in the scenario.
    #[arg(long)]
    pub name: String,
    /// Nodes without an `address` listen on 127.0.0.1:(P + their index in the scenario).
    #[arg(long, value_name = "P")]
    pub base_port: Option<u16>,
    /// Where to accept connections; defaults to this node's address.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// The cluster's seed (default: the scenario's first): it draws the priorities of a
    /// scenario with random ids, the same on every node; node i draws from S + i.
    #[arg(long, value_name = "S")]
    pub seed: Option<u64>,
    /// The cluster key, the role hooks, the trace log, the block file and the monitor.
    #[command(flatten)]
    pub runtime: RuntimeFlags,
    /// Register with the Consul-compatible registry at this URL, and take the other nodes'
    /// addresses from it.
    #[arg(long, value_name = "URL")]
    pub registry: Option<String>,
    /// The service name to register under and list, with --registry.
    #[arg(long, default_value = "conclave", requires = "registry")]
    pub service: String,
    /// A file holding the registry's token, sent as X-Consul-Token.
    #[arg(long, value_name = "FILE", requires = "registry")]
    pub registry_token_file: Option<PathBuf>,
    /// JOIN the group coordinator daemon at this address (seed 003) as the identity the
    /// node's priority packs, and take the other nodes' addresses from its member list.
    #[arg(long, value_name = "ADDR", conflicts_with = "registry")]
    pub gcd: Option<std::net::SocketAddr>,
    /// How long to wait between registering and listing, with --registry or --gcd.
    #[arg(long, value_name = "DUR", default_value = "8s")]
    pub discovery_wait: conclave_algorithms::Duration,
    /// Stop gracefully when stdin ends (`conclave cluster up` holds each node's stdin, so
    /// its nodes stop when it dies).
    #[arg(long)]
    pub stop_on_stdin_eof: bool,
    /// The wire: `lab` speaks seed 003's pickled tuples with a `conclave gcd --wire lab`
    /// daemon (--gcd) and Python lab nodes (the GCD Bully only; its identity is the node's).
    #[arg(long, value_enum, default_value = "conclave")]
    pub wire: Wire,
}

/// `conclave node --wire`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Wire {
    Conclave,
    Lab,
}

/// A scenario's node as a real process sees it.
#[derive(Clone, Debug)]
pub struct Place {
    pub name: String,
    pub address: String,
}

/// Where each node of `scenario` listens: its `address`, else 127.0.0.1:(base + index);
/// an error naming the first node that has neither.
pub fn places(scenario: &Scenario, base_port: Option<u16>) -> Result<Vec<Place>, String> {
    let mut places = Vec::with_capacity(scenario.nodes.len());
    for (i, node) in scenario.nodes.iter().enumerate() {
        let address = match (&node.address, base_port) {
            (Some(address), _) => address.clone(),
            (None, Some(base)) => {
                let port = u16::try_from(u32::from(base) + i as u32).map_err(|_| {
                    format!(
                        "node {:?}: --base-port {base} + {i} is past port 65535",
                        node.name
                    )
                })?;
                format!("127.0.0.1:{port}")
            }
            (None, None) => {
                return Err(format!(
                    "node {:?} has no address in the scenario: give it one, or give --base-port",
                    node.name
                ))
            }
        };
        places.push(Place {
            name: node.name.clone(),
            address,
        });
    }
    Ok(places)
}

/// Loads a scenario, printing its error (with the line) when it has one.
pub fn load(path: &Path) -> Option<Scenario> {
    match Scenario::load(path) {
        Ok(scenario) => Some(scenario),
        Err(e) => {
            print_scenario_error(&e);
            None
        }
    }
}

pub fn cmd_node(args: &Args) -> u8 {
    let Some(scenario) = load(&args.scenario) else {
        return BAD_INPUT;
    };
    if args.wire == Wire::Lab {
        return lab_node(&scenario, args);
    }
    match prepare(&scenario, args) {
        Ok(setup) => conclave_sim::with_algorithm!(&scenario.algorithm, |A, p| {
            run::<A>(setup, p.clone(), args)
        }),
        Err(message) => {
            eprintln!("error: {message}");
            BAD_INPUT
        }
    }
}

/// `--wire lab`: the scenario's GCD Bully node over the lab's pickles
/// (`conclave_algorithms::net::lab`): it JOINs the daemon and learns its members there.
fn lab_node(scenario: &Scenario, args: &Args) -> u8 {
    use conclave_algorithms::net::lab::{run_lab_node, LabConfig};
    use conclave_sim::scenario::AlgorithmSpec;
    let usage = |message: String| {
        eprintln!("error: {message}");
        BAD_INPUT
    };
    let AlgorithmSpec::GcdBully(params) = &scenario.algorithm else {
        return usage(format!(
            "--wire lab is the GCD Bully's, and {} runs {}",
            args.scenario.display(),
            scenario.algorithm.name()
        ));
    };
    let Some(gcd) = args.gcd else {
        return usage("--wire lab needs --gcd ADDR (a `conclave gcd --wire lab` daemon)".into());
    };
    let unsupported = args.runtime.unsupported_by_lab();
    if let Some(flag) = unsupported.or(args.registry.is_some().then_some("--registry")) {
        return usage(format!("{flag} is not supported with --wire lab"));
    }
    let setup = match prepare(scenario, args) {
        Ok(setup) => setup,
        Err(message) => return usage(message),
    };
    let (days, student_id) =
        conclave_algorithms::gcd::unpack_identity(setup.cluster.member(setup.me).priority);
    let (Ok(days), Ok(student_id)) = (u32::try_from(days), u32::try_from(student_id)) else {
        return usage(format!(
            "{}'s identity is not the lab's (days, student id)",
            args.name
        ));
    };
    let identity = (days, student_id);
    let node_seed = setup.seed.wrapping_add(u64::from(setup.me.0));
    eprintln!(
        "conclave node: node={} identity={},{} wire=lab listen={} node_seed={node_seed}",
        args.name, identity.0, identity.1, setup.listen
    );
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return NOT_STARTED;
        }
    };
    let (stop, shutdown) = watch::channel(false);
    let mut config = LabConfig::new(gcd, identity, Listen::Address(setup.listen), shutdown);
    config.params = params.clone();
    config.seed = node_seed;
    args.runtime.configure_lab(&mut config);
    let eof_stops = args.stop_on_stdin_eof;
    let result = runtime.block_on(async move {
        stop_on_stdin(stop.clone(), eof_stops);
        tokio::spawn(stop_on_signals(stop.clone()));
        run_lab_node(config).await
    });
    match result {
        Ok(()) => HELD,
        Err(e) => {
            eprintln!("error: {e}");
            NOT_STARTED
        }
    }
}

/// What every algorithm's node needs from the scenario and the flags.
struct Setup {
    cluster: Cluster,
    me: Pid,
    listen: String,
    seed: u64,
    /// The key, the monitor and the block file.
    inputs: RuntimeInputs,
    registry: Option<Registry>,
    gcd: Option<std::net::SocketAddr>,
}

fn prepare(scenario: &Scenario, args: &Args) -> Result<Setup, String> {
    let index = scenario
        .nodes
        .iter()
        .position(|n| n.name == args.name)
        .ok_or_else(|| {
            let names: Vec<&str> = scenario.nodes.iter().map(|n| n.name.as_str()).collect();
            format!(
                "--name {:?} is not a node of {}: {}",
                args.name,
                args.scenario.display(),
                names.join(", ")
            )
        })?;
    let places = places(scenario, args.base_port)?;
    let seed = args
        .seed
        .unwrap_or_else(|| scenario.seeds.first().copied().unwrap_or(0));
    let mut cluster = conclave_sim::run::cluster_of(scenario, seed);
    for (member, place) in cluster.members.iter_mut().zip(&places) {
        member.address = Some(place.address.clone());
    }
    // A real registry or daemon did the discovery the scenario's service does in the world.
    if args.registry.is_some() || args.gcd.is_some() {
        cluster.members.truncate(places.len());
    }
    for member in &cluster.members[places.len()..] {
        eprintln!(
            "warning: the scenario's service {:?} has no process on real sockets: messages to it are dropped",
            member.name
        );
    }
    let inputs = args.runtime.read()?;
    let registry = match &args.registry {
        Some(url) => Some(Registry::new(
            url,
            &args.service,
            read_token(args.registry_token_file.as_deref(), "--registry-token-file")?,
        )),
        None => None,
    };
    Ok(Setup {
        inputs,
        registry,
        gcd: args.gcd,
        cluster,
        me: Pid(index as u32),
        listen: args
            .listen
            .clone()
            .unwrap_or_else(|| places[index].address.clone()),
        seed,
    })
}

fn run<A>(setup: Setup, params: A::Params, args: &Args) -> u8
where
    A: Algorithm + Send + 'static,
    A::Msg: Send + Sync + 'static,
    A::Timer: Send,
    A::Params: Serialize + Send,
{
    let node_seed = setup.seed.wrapping_add(u64::from(setup.me.0));
    eprintln!(
        "conclave node: node={} listen={} seed={} node_seed={node_seed} (rerun with --seed {} for the same draws)",
        args.name, setup.listen, setup.seed, setup.seed
    );
    let mut cluster = setup.cluster;
    // With a registry the node listens before it registers, so that the check passes (and
    // before it joins a daemon, so that its members can connect at once).
    let listen = if setup.registry.is_some() || setup.gcd.is_some() {
        match std::net::TcpListener::bind(&setup.listen) {
            Ok(listener) => Listen::Listener(listener),
            Err(e) => {
                let hint = ports::listen_hint(&setup.listen, &e);
                eprintln!("error: cannot listen on {}: {e}{hint}", setup.listen);
                return NOT_STARTED;
            }
        }
    } else {
        Listen::Address(setup.listen)
    };
    let registration = match &setup.registry {
        Some(registry) => match register_and_list(registry, &mut cluster, setup.me, args) {
            Ok(registration) => Some(registration),
            Err(e) => {
                eprintln!("error: {e}");
                return NOT_STARTED;
            }
        },
        None => None,
    };
    if let Some(gcd) = setup.gcd {
        if let Err(e) = join_and_list(gcd, &mut cluster, setup.me, args) {
            eprintln!("error: {e}");
            return NOT_STARTED;
        }
    }
    let mut inputs = setup.inputs;
    let reporting = Reporting {
        name: args.name.clone(),
        address: cluster.member(setup.me).address.clone().unwrap_or_default(),
        names: cluster.members.iter().map(|m| m.name.clone()).collect(),
        block_file: inputs.block_file.clone().unwrap_or_default(),
    };
    let (stop, shutdown) = watch::channel(false);
    let mut config = NodeConfig::<A>::new(cluster, setup.me, params, listen, shutdown);
    inputs.configure(&args.runtime, &mut config);
    config.seed = node_seed;
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return NOT_STARTED;
        }
    };
    let eof_stops = args.stop_on_stdin_eof;
    let monitor = inputs.monitor.take();
    let result = runtime.block_on(async move {
        stop_on_stdin(stop.clone(), eof_stops);
        tokio::spawn(stop_on_signals(stop.clone()));
        run_node_reporting(config, monitor.map(|m| (m, reporting)), stop).await
    });
    drop(inputs);
    drop(registration);
    match result {
        Ok(()) => HELD,
        Err(e) => {
            eprintln!("error: {e}");
            NOT_STARTED
        }
    }
}

/// Registers this node, waits, and takes the other nodes' addresses from the passing
/// instances of the same names (the others keep the scenario's).
fn register_and_list(
    registry: &Registry,
    cluster: &mut Cluster,
    me: Pid,
    args: &Args,
) -> Result<Registration, String> {
    let member = cluster.member(me);
    let peer = Peer {
        name: member.name.clone(),
        priority: member.priority,
        address: member.address.clone().unwrap_or_default(),
    };
    let registration = registry
        .register_until_dropped(&peer)
        .map_err(|e| e.to_string())?;
    std::thread::sleep(std::time::Duration::from_micros(
        args.discovery_wait.as_micros(),
    ));
    let mut found = Vec::new();
    for peer in registry.passing().map_err(|e| e.to_string())? {
        if let Some(m) = cluster.members.iter_mut().find(|m| m.name == peer.name) {
            m.address = Some(peer.address);
            found.push(peer.name);
        }
    }
    eprintln!(
        "node={} event=discovered via=registry found={}",
        peer.name,
        found.join(",")
    );
    Ok(registration)
}

/// JOINs the daemon as the identity this node's priority packs, waits, and takes the other
/// nodes' addresses from the members of the same identities (the others keep the
/// scenario's).
fn join_and_list(
    gcd: std::net::SocketAddr,
    cluster: &mut Cluster,
    me: Pid,
    args: &Args,
) -> Result<(), String> {
    let member = cluster.member(me);
    let (days, student_id) = conclave_algorithms::gcd::unpack_identity(member.priority);
    let (days, student_id) = match (u32::try_from(days), u32::try_from(student_id)) {
        (Ok(days), Ok(student_id)) => (days, student_id),
        _ => {
            return Err(format!(
                "node {}: priority {} is no (days, student id) identity",
                member.name, member.priority
            ))
        }
    };
    let address = member.address.clone().unwrap_or_default();
    let wait = std::time::Duration::from_micros(args.discovery_wait.as_micros());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let peers = runtime
        .block_on(conclave_algorithms::net::discovery::join_gcd(
            gcd, days, student_id, &address, wait,
        ))
        .map_err(|e| e.to_string())?;
    let mut found = Vec::new();
    for peer in peers {
        if let Some(m) = cluster
            .members
            .iter_mut()
            .find(|m| m.priority == peer.priority)
        {
            m.address = Some(peer.address);
            found.push(m.name.clone());
        }
    }
    eprintln!(
        "node={} event=discovered via=gcd found={}",
        args.name,
        found.join(",")
    );
    Ok(())
}
