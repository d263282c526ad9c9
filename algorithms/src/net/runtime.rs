//! The runtime of one node on real sockets: the same [`Driver`](crate::driver::Driver) the simulator uses, fed by
//! TCP connections, tokio timers and a shutdown signal (feature `net`).
//!
//! [`run_node`] owns one [`Driver`](crate::driver::Driver) in a single loop that takes, one at a time: the start,
//! a message from a peer, a due timer, the shutdown signal. What the driver asks for is
//! carried out as the simulator's world does: the role change first (logged, recorded, and
//! the `on_leader` / `on_follower` command started), then the sends and timer operations in
//! order. No algorithm logic lives here.
//!
//! - **Time** is microseconds since the node started (a tokio `Instant`), handed to the
//!   driver as [`Time`]. Timers wait in a map by (due, token); the driver ignores a stale
//!   token.
//! - **Sending**: one writer task per peer with a bounded queue. It connects on the first
//!   message, does the [`handshake`] (bounded by
//!   [`Timing::handshake_timeout`]), and reconnects with a doubling backoff when the
//!   connection breaks. A message to a peer that cannot be reached, or whose queue is full,
//!   is dropped (a lost message) with a log line; the node's loop never waits on a peer.
//! - **Receiving**: a reader task per incoming connection does the handshake, refuses a
//!   name that is not a member (log line, connection closed), then passes each message to
//!   the loop. A bad frame is logged and closes that connection; it never reaches the
//!   algorithm. A connection that has not finished its handshake within
//!   [`Timing::handshake_timeout`] is closed; at most [`Timing::max_incoming`] incoming
//!   connections are open at once (default [`MAX_INCOMING`]), and one more is closed as
//!   soon as it is accepted, with a log line (`event=refused ... reason=too_many_connections`).
//!   So a flood of connections costs a bounded number of tasks for a bounded time. When a
//!   peer's connection passes the handshake, this node's writer to that peer stops waiting
//!   out its backoff: the peer is up (perhaps restarted), and the next message to it is not
//!   dropped as unreachable.
//! - **Failure detector**: for an algorithm whose [`Algorithm::detector`] is `Some`
//!   (Stoller's), the node sends an [`Envelope::Heartbeat`] to every peer every
//!   `delay / `[`HEARTBEATS_PER_DELAY`] (at least 1 ms), where `delay` is the detector's
//!   [`delay`](crate::Detector::delay). A peer from which nothing (heartbeat or message) has
//!   come for longer than `delay` is suspected; the first frame from it afterwards trusts it
//!   again. Each verdict goes to [`Driver::on_suspect`](crate::driver::Driver::on_suspect) (which passes on news only) and to the
//!   trace log as a `suspect` input. So a crash, or a block, is suspected between `delay` and
//!   `delay` plus a heartbeat period after the last frame, and a restart is trusted at its
//!   first heartbeat: the simulator's detector reports both exactly `delay` late. An
//!   `EventuallyPerfect` detector's planned mistakes are not made here: a real detector
//!   makes its own (a heartbeat late by more than `delay` on a loaded machine). Blocked
//!   links carry no heartbeats, so the two sides of a block suspect each other.
//! - **Incarnations**: [`NodeConfig::new`] sets [`NodeConfig::incarnation`] to the wall
//!   clock in microseconds ([`clock_incarnation`]): a restarted node's is greater than any
//!   of its earlier lives' on the same machine, unless the clock is set back, without a
//!   file to keep (the simulator counts restarts instead; the algorithms only compare
//!   incarnations). A verdict's incarnation (what [`crate::Context::incarnation`] says in
//!   `on_suspect`) is the wall clock at the verdict, at least that of any life of the
//!   suspected peer that began before it, clocks agreeing.
//! - **Stopping**: on the shutdown signal the driver's leave handler runs, its sends go out,
//!   every connection gets an [`Envelope::Leave`], the writers get
//!   [`Timing::flush_timeout`] to finish, then the node stops.
//! - **Blocked links** (seed 002's "Block Connections"): with [`NodeConfig::block_file`],
//!   a file of node-name pairs (`a b`, one a line, `#` comments) is read at start and again
//!   when its modification time or length changes (polled every [`BLOCK_POLL`]; a missing
//!   file blocks nothing; at most [`BLOCK_FILE_MAX`] bytes are read). A message between a
//!   blocked pair, either way, is dropped with a log line (`event=drop ... reason=blocked`):
//!   at send it is not queued, at receive it never reaches the driver. The trace log still
//!   shows the `send`, as it does for any message that is lost.
//! - **Randomness**: a ChaCha8 stream from [`NodeConfig::seed`] (stream 3, the simulator's
//!   algorithm stream), logged at start.
//!
//! Log lines go to stderr as `t=<time since start> node=<name> event=<what> key=value...`.
//!
//! ```no_run
//! use conclave_algorithms::bully::{Bully, BullyParams};
//! use conclave_algorithms::net::runtime::{run_node, Listen, NodeConfig};
//! use conclave_algorithms::{Cluster, Member, Pid};
//!
//! # async fn example() -> Result<(), conclave_algorithms::net::runtime::RuntimeError> {
//! let mut members = vec![Member::voter("a", 1), Member::voter("b", 2)];
//! members[1].address = Some("10.0.0.2:7000".to_string());
//! let cluster = Cluster::new(members);
//! let (stop, shutdown) = tokio::sync::watch::channel(false);
//! let listen = Listen::Address("0.0.0.0:7000".to_string());
//! let config = NodeConfig::<Bully>::new(cluster, Pid(0), BullyParams::default(), listen, shutdown);
//! let node = tokio::spawn(run_node(config));
//! // ... later: a graceful stop.
//! stop.send_replace(true);
//! node.await.unwrap()?;
//! # Ok(()) }
//! ```
//!
//! # The trace log
//!
//! With [`NodeConfig::trace_log`], every event is one JSON object on one line, in the order
//! the node saw them. Every line starts with
//!
//! | key | value |
//! | --- | --- |
//! | `mono_us` | microseconds since the node started: the [`Time`] the driver was given |
//! | `wall_us` | microseconds since the Unix epoch, from the system clock |
//! | `node` | this node's member name |
//! | `event` | the event, in the simulator's trace vocabulary (below) |
//!
//! The events, and their other keys:
//!
//! | `event` | keys | what |
//! | --- | --- | --- |
//! | `start` | `seed`, `me`, `members` (`name`, `priority`, `address`, `voter`), `params`, `incarnation` | the node starts: everything a replayer needs to build the same [`Driver`](crate::driver::Driver) |
//! | `deliver` | `from`, `msg`, `msg_json`, `draws` | a message from `from` is handed to the driver |
//! | `timer` | `timer`, `timer_json`, `token`, `draws` | a timer fires with a live token |
//! | `suspect` | `who`, `suspected`, `incarnation`, `draws` | the failure detector's verdict on `who` (see above), with the incarnation handed to the driver |
//! | `leave` | `draws` | the shutdown signal: the leave handler runs |
//! | `role` | `role`, `leader`, `status`, `group` | the driver reports a new view |
//! | `send` | `to`, `msg`, `msg_json` | the driver asks for a send (whether or not it arrives) |
//! | `set_timer` | `timer`, `timer_json`, `token`, `due_us` | the driver sets a timer |
//! | `cancel_timer` | `timer`, `timer_json` | the driver cancels a timer |
//! | `member` | `member` (`name`, `priority`, `address`, `voter`) | a member learnt after the start, or a new address of one (only the lab's wire, [`super::lab`], learns the group as it goes); the inputs after it see the new cluster |
//! | `stop` | none | the node stopped after leaving |
//!
//! `msg` and `timer` are the Debug renderings the simulator's traces show; `msg_json` and
//! `timer_json` are the values in serde's JSON form, which a replayer decodes into the
//! algorithm's types. `draws` lists each random number the input drew as `[lo, hi, value]`
//! (omitted when none was drawn).
//!
//! The input lines (`start`, `deliver`, `timer`, `suspect`, `leave`) are the whole input of
//! the node: a replayer builds a `Driver` from the `start` line, hands it each input at its
//! `mono_us` with a `Random` that returns the recorded draws, and checks that the lines
//! after each input (`role`, `send`, `set_timer`, `cancel_timer`, up to the next input line)
//! are what the driver asks for again. An input line comes before the outputs it caused.

use super::host::{until_due, Hooks, Host, Transport};
use super::{
    handshake, random_nonce, read_frame, write_frame, ClusterKey, Envelope, FrameDecoder,
    FrameEncoder, Hello, WireConfig,
};
use crate::{Algorithm, Cluster, Message, Pid, Random, Role, Time, View};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration as StdDuration;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::{timeout, Instant};

/// The ChaCha stream of the algorithm's draws (the simulator's `ALGORITHM_STREAM`).
pub const ALGORITHM_STREAM: u64 = 3;

/// How often a node looks at its block file for a change.
pub const BLOCK_POLL: StdDuration = StdDuration::from_millis(100);

/// The most of a block file a node reads; the rest is ignored, with a log line.
pub const BLOCK_FILE_MAX: u64 = 64 * 1024;

/// The default cap on incoming connections open at once ([`Timing::max_incoming`]).
pub const MAX_INCOMING: usize = 256;

/// How many heartbeats the failure detector sends per detector delay: a peer silent for
/// the delay has missed this many.
pub const HEARTBEATS_PER_DELAY: u32 = 4;

/// Microseconds since the Unix epoch: the incarnation [`NodeConfig::new`] gives a node.
pub fn clock_incarnation() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Where a node accepts connections.
#[derive(Debug)]
pub enum Listen {
    /// An address to bind, such as `0.0.0.0:7000`.
    Address(String),
    /// A listener bound already (tests bind port 0 to learn the port before starting).
    Listener(std::net::TcpListener),
}

/// The waits and sizes of the runtime. The defaults suit a LAN.
#[derive(Clone, Debug)]
pub struct Timing {
    /// How long a connection may take to open.
    pub connect_timeout: StdDuration,
    /// How long the exchange of Hellos may take, on either side.
    pub handshake_timeout: StdDuration,
    /// How long one frame may take to write before the connection is given up.
    pub write_timeout: StdDuration,
    /// The first wait before reconnecting to a peer that could not be reached.
    pub backoff_min: StdDuration,
    /// The longest such wait (it doubles on every failure).
    pub backoff_max: StdDuration,
    /// How long the last messages may take to leave at a graceful stop.
    pub flush_timeout: StdDuration,
    /// Messages waiting per peer before new ones are dropped.
    pub queue_len: usize,
    /// Incoming connections open at once (handshaking or reading); one more is closed at
    /// once, with a log line (`event=refused ... reason=too_many_connections`).
    pub max_incoming: usize,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            connect_timeout: StdDuration::from_secs(1),
            handshake_timeout: StdDuration::from_secs(2),
            write_timeout: StdDuration::from_secs(2),
            backoff_min: StdDuration::from_millis(50),
            backoff_max: StdDuration::from_secs(2),
            flush_timeout: StdDuration::from_millis(500),
            queue_len: 256,
            max_incoming: MAX_INCOMING,
        }
    }
}

/// Everything one node needs to run.
pub struct NodeConfig<A: Algorithm> {
    /// Every member, with names and priorities; `Member::address` is where peers are reached
    /// unless [`NodeConfig::peers`] says otherwise.
    pub cluster: Cluster,
    pub me: Pid,
    pub params: A::Params,
    pub listen: Listen,
    /// Peers' addresses by Pid, over the members' own; a peer with neither is unreachable.
    pub peers: BTreeMap<Pid, String>,
    /// With a key every frame is authenticated, and peers without it are refused.
    pub key: Option<ClusterKey>,
    /// The cluster's name, checked in every Hello.
    pub cluster_name: String,
    /// The seed of the node's random draws.
    pub seed: u64,
    /// What [`crate::Context::incarnation`] says: by default the wall clock in microseconds
    /// at [`NodeConfig::new`] ([`clock_incarnation`]), so a restarted node's is greater
    /// than its earlier lives' (see the module docs).
    pub incarnation: u64,
    /// Where to write the trace log (see the module docs), if anywhere.
    pub trace_log: Option<PathBuf>,
    /// A file of blocked pairs of members (see the module docs), if any.
    pub block_file: Option<PathBuf>,
    /// A shell command (`sh -c`) started when the node becomes leader.
    pub on_leader: Option<String>,
    /// A shell command started when the node becomes a follower.
    pub on_follower: Option<String>,
    /// The node stops gracefully when this turns true, or when its sender is dropped.
    pub shutdown: watch::Receiver<bool>,
    /// If given, every view the driver reports is published here.
    pub views: Option<watch::Sender<View>>,
    pub timing: Timing,
}

impl<A: Algorithm> NodeConfig<A> {
    /// A node of `cluster` with the defaults: no key, cluster name "conclave", seed 0,
    /// peers at the members' addresses, no trace log, no commands.
    pub fn new(
        cluster: Cluster,
        me: Pid,
        params: A::Params,
        listen: Listen,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        NodeConfig {
            cluster,
            me,
            params,
            listen,
            peers: BTreeMap::new(),
            key: None,
            cluster_name: "conclave".to_string(),
            seed: 0,
            incarnation: clock_incarnation(),
            trace_log: None,
            block_file: None,
            on_leader: None,
            on_follower: None,
            shutdown,
            views: None,
            timing: Timing::default(),
        }
    }
}

/// Why a node could not run.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("node {me:?} is not one of the cluster's {len} members")]
    NotAMember { me: Pid, len: usize },
    #[error(
        "cannot listen on {address}: {source}{}",
        super::ports::listen_hint(address, source)
    )]
    Listen {
        address: String,
        source: std::io::Error,
    },
    #[error("cannot open the trace log {}: {source}", path.display())]
    TraceLog {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Runs one node until its shutdown signal, then leaves gracefully. Errors only when it
/// cannot start; everything after (a lost peer, a bad frame, a failed trace write) is
/// logged and the node goes on.
pub async fn run_node<A>(config: NodeConfig<A>) -> Result<(), RuntimeError>
where
    A: Algorithm + Send + 'static,
    A::Msg: Send + Sync + 'static,
    A::Timer: Send,
    A::Params: Serialize + Send,
{
    let NodeConfig {
        cluster,
        me,
        params,
        listen,
        peers,
        key,
        cluster_name,
        seed,
        incarnation,
        trace_log,
        block_file,
        on_leader,
        on_follower,
        mut shutdown,
        views,
        timing,
    } = config;
    if me.index() >= cluster.len() {
        return Err(RuntimeError::NotAMember {
            me,
            len: cluster.len(),
        });
    }
    let start = Instant::now();
    let log = Log {
        start,
        node: cluster.name(me).into(),
    };
    let listener = bind(listen).await?;
    let address = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    log.line(format_args!(
        "event=listening address={address} seed={seed} members={}",
        cluster.len()
    ));
    let trace = match trace_log {
        Some(path) => Some(Trace::create(path, cluster.name(me))?),
        None => None,
    };
    let wire = Arc::new(WireConfig::new(key));
    let (inbox_tx, mut inbox) = mpsc::channel::<Incoming<A::Msg>>(1024);

    let mut tasks = JoinSet::new();
    let greeted: Arc<Vec<AtomicU64>> =
        Arc::new((0..cluster.len()).map(|_| AtomicU64::new(0)).collect());
    let inbound = Arc::new(Inbound {
        greeted: greeted.clone(),
        wire: wire.clone(),
        cluster_name: cluster_name.clone(),
        me,
        names: cluster
            .members
            .iter()
            .enumerate()
            .map(|(i, m)| (m.name.clone(), Pid(i as u32)))
            .collect(),
        log: log.clone(),
        timing: timing.clone(),
    });
    tasks.spawn(accept(listener, inbound, inbox_tx.clone()));

    let mut writers = JoinSet::new();
    let outboxes = (0..cluster.len() as u32)
        .map(Pid)
        .map(|pid| {
            let address = peers
                .get(&pid)
                .cloned()
                .or_else(|| cluster.member(pid).address.clone());
            let address = address.filter(|_| pid != me)?;
            let (tx, rx) = mpsc::channel(timing.queue_len);
            let link = Outbound {
                wire: wire.clone(),
                cluster_name: cluster_name.clone(),
                me: cluster.name(me).to_string(),
                peer: cluster.name(pid).to_string(),
                address,
                log: log.clone(),
                timing: timing.clone(),
                greeted: greeted.clone(),
                pid,
            };
            writers.spawn(write_to_peer(link, rx));
            Some(tx)
        })
        .collect();

    let net = Net {
        me,
        name: cluster.name(me).to_string(),
        outboxes,
        inbox: inbox_tx,
        log: log.clone(),
        views,
        blocks: block_file.map(Blocks::new),
    };
    let hooks = Hooks {
        on_leader,
        on_follower,
    };
    let host = Host::new(
        me,
        cluster,
        incarnation,
        seed,
        trace,
        log.clone(),
        start,
        hooks,
    );
    let mut node = Node::<A> {
        host,
        net,
        detector: None,
    };
    if let Some(detector) = A::detector(&params) {
        let members = node.host.cluster.len();
        let heartbeats = Heartbeats::new(&detector, members, node.host.now());
        log.line(format_args!(
            "event=detector delay={} heartbeat_every_ms={}",
            heartbeats.silence,
            heartbeats.every.as_millis()
        ));
        node.detector = Some(heartbeats);
    }
    node.net.reload_blocks();
    node.host.start(&params, seed, Vec::new(), &mut node.net);
    let mut block_poll = tokio::time::interval(BLOCK_POLL);
    block_poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let every = node.detector.as_ref().map_or(BLOCK_POLL, |d| d.every);
    let mut heartbeat = tokio::time::interval(every);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let sleep = until_due(start, node.host.next_due());
        tokio::select! {
            biased;
            _ = shutdown.wait_for(|&stop| stop) => break,
            Some(incoming) = inbox.recv() => node.incoming(incoming),
            _ = sleep => node.host.fire_due(&mut node.net),
            _ = block_poll.tick(), if node.net.blocks.is_some() => node.net.reload_blocks(),
            _ = heartbeat.tick(), if node.detector.is_some() => node.heartbeat(),
        }
    }
    node.leave();
    drop(node);
    let flushed = timeout(timing.flush_timeout, async {
        while writers.join_next().await.is_some() {}
    })
    .await;
    if flushed.is_err() {
        log.line(format_args!(
            "event=flush_timeout after_ms={}",
            timing.flush_timeout.as_millis()
        ));
    }
    log.line(format_args!("event=stopped"));
    Ok(())
}

pub(super) async fn bind(listen: Listen) -> Result<TcpListener, RuntimeError> {
    let (address, bound) = match listen {
        Listen::Address(address) => {
            let bound = TcpListener::bind(&address).await;
            (address, bound)
        }
        Listen::Listener(listener) => {
            let address = format!("{listener:?}");
            let bound = listener
                .set_nonblocking(true)
                .and_then(|()| TcpListener::from_std(listener));
            (address, bound)
        }
    };
    bound.map_err(|source| RuntimeError::Listen { address, source })
}

/// Stops the node on `q` and Enter on stdin (read by a thread of its own). With
/// `eof_stops`, the end of stdin stops it too: a parent holding the node's stdin as a pipe
/// then stops it by exiting, even when killed. Without, stdin may be /dev/null.
pub fn stop_on_stdin(stop: watch::Sender<bool>, eof_stops: bool) {
    std::thread::spawn(move || {
        let mut line = String::new();
        loop {
            line.clear();
            match std::io::stdin().read_line(&mut line) {
                Ok(0) | Err(_) => {
                    if eof_stops {
                        stop.send_replace(true);
                    }
                    return;
                }
                Ok(_) if line.trim() == "q" => {
                    stop.send_replace(true);
                    return;
                }
                Ok(_) => {}
            }
        }
    });
}

/// Stops the node on SIGTERM or Ctrl-C (SIGINT).
pub async fn stop_on_signals(stop: watch::Sender<bool>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        stop.send_replace(true);
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    stop.send_replace(true);
}

pub(super) fn micros(us: u64) -> StdDuration {
    StdDuration::from_micros(us)
}

/// The node's log lines, to stderr, with the time since the node started first.
#[derive(Clone)]
pub(super) struct Log {
    pub(super) start: Instant,
    pub(super) node: Arc<str>,
}

impl Log {
    pub(super) fn line(&self, rest: fmt::Arguments<'_>) {
        let now = Time(self.start.elapsed().as_micros() as u64);
        eprintln!("t={now} node={} {rest}", self.node);
    }
}

/// The node's random draws: a ChaCha8 stream from the seed, each draw kept for the trace.
pub(super) struct Draws {
    rng: ChaCha8Rng,
    pub(super) taken: Vec<[u64; 3]>,
}

impl Draws {
    pub(super) fn new(seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(ALGORITHM_STREAM);
        Draws {
            rng,
            taken: Vec::new(),
        }
    }
}

impl Random for Draws {
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        let value = if hi > lo {
            self.rng.random_range(lo..=hi)
        } else {
            lo
        };
        self.taken.push([lo, hi, value]);
        value
    }
}

/// What a peer's connection hands the node's loop.
enum Incoming<M> {
    /// A message of the algorithm.
    Msg { from: Pid, msg: M },
    /// A heartbeat of the failure detector: `from` is alive.
    Heartbeat { from: Pid },
}
/// The runtime's transport: each peer's writer queue, the block file, and where views go.
struct Net<A: Algorithm> {
    me: Pid,
    /// This node's member name (its frames' sender, its side of a blocked pair).
    name: String,
    /// Each peer's writer queue, by Pid (`None`: this node, or no address).
    outboxes: Vec<Option<mpsc::Sender<Envelope<A::Msg>>>>,
    /// The loop's own inbox, for a message the node sends itself.
    inbox: mpsc::Sender<Incoming<A::Msg>>,
    log: Log,
    views: Option<watch::Sender<View>>,
    blocks: Option<Blocks>,
}

/// The node's loop state: the driver's host, the transport, and the failure detector.
struct Node<A: Algorithm> {
    host: Host<A>,
    net: Net<A>,
    detector: Option<Heartbeats>,
}

/// The failure detector of an algorithm that assumes one: when each peer was last heard
/// from (any frame after its Hello), and the verdict the node was last given on it.
struct Heartbeats {
    /// A peer silent for longer than this is suspected: the detector's delay.
    silence: crate::Duration,
    /// How often heartbeats go out and silences are looked at.
    every: StdDuration,
    heard: Vec<Time>,
    suspected: Vec<bool>,
}

impl Heartbeats {
    /// Every peer heard from at `now` (the start): none is suspected before `delay`.
    fn new(detector: &crate::Detector, members: usize, now: Time) -> Self {
        let silence = detector.delay();
        let every = micros(silence.as_micros() / u64::from(HEARTBEATS_PER_DELAY))
            .max(StdDuration::from_millis(1));
        Heartbeats {
            silence,
            every,
            heard: vec![now; members],
            suspected: vec![false; members],
        }
    }
}

/// The blocked pairs of a block file, and what the file looked like when last read.
struct Blocks {
    path: PathBuf,
    /// (modification time, length) at the last read; `None` when the file was missing.
    stamp: Option<(std::time::SystemTime, u64)>,
    read_once: bool,
    /// Each pair with the smaller name first.
    pairs: BTreeSet<(String, String)>,
    /// Messages dropped because of a block, both ways.
    dropped: u64,
}

impl Blocks {
    fn new(path: PathBuf) -> Self {
        Blocks {
            path,
            stamp: None,
            read_once: false,
            pairs: BTreeSet::new(),
            dropped: 0,
        }
    }

    fn blocks(&self, a: &str, b: &str) -> bool {
        let pair = if a <= b { (a, b) } else { (b, a) };
        self.pairs
            .iter()
            .any(|(x, y)| x.as_str() == pair.0 && y.as_str() == pair.1)
    }

    /// Reads the file again if it changed; whether the pairs changed.
    fn reload(&mut self, log: &Log) -> bool {
        let stamp = std::fs::metadata(&self.path)
            .ok()
            .map(|m| (m.modified().unwrap_or(std::time::UNIX_EPOCH), m.len()));
        if self.read_once && stamp == self.stamp {
            return false;
        }
        self.read_once = true;
        self.stamp = stamp;
        let text = match stamp {
            None => String::new(),
            Some(_) => match read_bounded(&self.path) {
                Ok(text) => text,
                Err(e) => {
                    log.line(format_args!(
                        "event=block_file_unreadable path={} error={e:?} (blocks kept)",
                        self.path.display()
                    ));
                    return false;
                }
            },
        };
        let pairs = parse_blocks(&text, &self.path, log);
        if pairs == self.pairs {
            return false;
        }
        self.pairs = pairs;
        true
    }
}

fn read_bounded(path: &std::path::Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(BLOCK_FILE_MAX)
        .read_to_end(&mut bytes)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The pairs of a block file: `a b` a line; blank lines and `#` comments skipped, a line
/// of another shape logged and skipped.
fn parse_blocks(text: &str, path: &std::path::Path, log: &Log) -> BTreeSet<(String, String)> {
    let mut pairs = BTreeSet::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let names: Vec<&str> = line.split_whitespace().collect();
        match names[..] {
            [a, b] if a != b => {
                let (a, b) = if a <= b { (a, b) } else { (b, a) };
                pairs.insert((a.to_string(), b.to_string()));
            }
            _ => log.line(format_args!(
                "event=block_file_bad_line path={} line={} text={line:?} (want two different names)",
                path.display(),
                i + 1
            )),
        }
    }
    pairs
}

impl<A: Algorithm> Net<A> {
    /// Reads the block file again if it changed, and logs the new pairs.
    fn reload_blocks(&mut self) {
        let Some(blocks) = &mut self.blocks else {
            return;
        };
        if blocks.reload(&self.log) {
            let pairs: Vec<String> = blocks
                .pairs
                .iter()
                .map(|(a, b)| format!("{a}-{b}"))
                .collect();
            self.log.line(format_args!(
                "event=blocks pairs={}",
                if pairs.is_empty() {
                    "-".to_string()
                } else {
                    pairs.join(",")
                }
            ));
        }
    }

    /// Whether the link to or from `peer` is blocked; counts and logs the drop if so.
    fn blocked(&mut self, peer: &str, direction: &str, kind: &str) -> bool {
        let Some(blocks) = &mut self.blocks else {
            return false;
        };
        if !blocks.blocks(&self.name, peer) {
            return false;
        }
        blocks.dropped += 1;
        self.log.line(format_args!(
            "event=drop {direction}={peer} reason=blocked kind={kind} blocked_total={}",
            blocks.dropped
        ));
        true
    }

    /// Whether the link with `peer` is blocked, without a log line (heartbeats are many).
    fn blocked_quietly(&self, peer: &str) -> bool {
        self.blocks
            .as_ref()
            .is_some_and(|b| b.blocks(&self.name, peer))
    }

    /// The graceful stop's last word: a Leave to every peer.
    fn leave(&mut self) {
        for outbox in self.outboxes.iter_mut().filter_map(Option::take) {
            // A full queue means the peer is not taking messages: it will see the
            // connection close instead.
            let _ = outbox.try_send(Envelope::Leave);
        }
    }
}

impl<A: Algorithm> Transport<A> for Net<A> {
    fn send(&mut self, cluster: &Cluster, to: Pid, msg: A::Msg) {
        if to == self.me {
            let _ = self.inbox.try_send(Incoming::Msg { from: to, msg });
            return;
        }
        if self.blocked(cluster.name(to), "to", msg.kind()) {
            return;
        }
        let Some(outbox) = self.outboxes.get(to.index()).and_then(Option::as_ref) else {
            self.log.line(format_args!(
                "event=drop to={} reason=no_address",
                cluster.name(to)
            ));
            return;
        };
        let envelope = Envelope::Msg {
            from: self.name.clone(),
            msg,
        };
        if outbox.try_send(envelope).is_err() {
            self.log.line(format_args!(
                "event=drop to={} reason=queue_full",
                cluster.name(to)
            ));
        }
    }

    fn publish(&mut self, _: &Cluster, view: View) {
        if let Some(views) = &self.views {
            views.send_replace(view);
        }
    }
}

impl<A: Algorithm> Node<A>
where
    A::Params: Serialize,
{
    /// Whether the link with `peer` is blocked, without a log line.
    fn blocked_quietly(&self, peer: Pid) -> bool {
        self.net.blocked_quietly(self.host.cluster.name(peer))
    }

    /// `peer` was heard from: the detector notes it, and trusts it again if it suspected it.
    fn heard(&mut self, peer: Pid) {
        let now = self.host.now();
        let Some(detector) = &mut self.detector else {
            return;
        };
        detector.heard[peer.index()] = now;
        if detector.suspected[peer.index()] {
            detector.suspected[peer.index()] = false;
            self.verdict(peer, false);
        }
    }

    /// The detector's round: a heartbeat to every peer whose link is not blocked, then a
    /// suspicion of every peer silent for longer than the detector's delay.
    fn heartbeat(&mut self) {
        let now = self.host.now();
        for peer in (0..self.host.cluster.len() as u32).map(Pid) {
            if self.blocked_quietly(peer) {
                continue;
            }
            if let Some(outbox) = self.net.outboxes.get(peer.index()).and_then(Option::as_ref) {
                // A full queue or an unreachable peer: this heartbeat is lost, as on a
                // network; the peer's detector sees the silence.
                let _ = outbox.try_send(Envelope::Heartbeat);
            }
        }
        let Some(detector) = &mut self.detector else {
            return;
        };
        let me = self.host.driver.me();
        let silence = detector.silence.as_micros();
        let silent: Vec<Pid> = (0..detector.heard.len())
            .map(|i| Pid(i as u32))
            .filter(|&p| p != me && !detector.suspected[p.index()])
            .filter(|&p| {
                now.as_micros()
                    .saturating_sub(detector.heard[p.index()].as_micros())
                    > silence
            })
            .collect();
        for &peer in &silent {
            detector.suspected[peer.index()] = true;
        }
        for peer in silent {
            self.verdict(peer, true);
        }
    }

    /// Hands the driver the detector's verdict on `who`, its incarnation the wall clock's
    /// microseconds now (a life of `who` that began before the verdict has a smaller one).
    fn verdict(&mut self, who: Pid, suspected: bool) {
        let incarnation = clock_incarnation();
        self.host
            .verdict(who, suspected, incarnation, &mut self.net);
    }

    /// A message or a heartbeat from a peer (or a message from this node to itself).
    fn incoming(&mut self, incoming: Incoming<A::Msg>) {
        match incoming {
            Incoming::Msg { from, msg } => self.deliver(from, msg),
            Incoming::Heartbeat { from } => {
                if !self.blocked_quietly(from) {
                    self.heard(from);
                }
            }
        }
    }

    fn deliver(&mut self, from: Pid, msg: A::Msg) {
        if from != self.host.driver.me() {
            if self
                .net
                .blocked(self.host.cluster.name(from), "from", msg.kind())
            {
                return;
            }
            // Heard from: the detector trusts it again first, then the message counts.
            self.heard(from);
        }
        self.host.deliver(from, msg, &mut self.net);
    }

    /// The graceful stop: the leave handler's outputs, then a Leave to every peer.
    fn leave(&mut self) {
        self.host.leave(&mut self.net);
        self.net.leave();
        self.host.stopped();
    }
}

pub(super) fn json<T: Serialize + ?Sized>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or_else(|e| format!("unserializable: {e}").into())
}

/// Starts `sh -c command` for a role change, without waiting for it in the node's loop.
pub(super) fn run_hook(command: &str, node: &str, role: Role, leader: Option<&str>, log: &Log) {
    let mut child = tokio::process::Command::new("sh");
    child
        .arg("-c")
        .arg(command)
        .env("CONCLAVE_NODE", node)
        .env("CONCLAVE_ROLE", format!("{role:?}"))
        .env("CONCLAVE_LEADER", leader.unwrap_or(""))
        .kill_on_drop(false);
    match child.spawn() {
        Ok(mut child) => {
            let log = log.clone();
            let command = command.to_string();
            tokio::spawn(async move {
                match child.wait().await {
                    Ok(status) if status.success() => {}
                    Ok(status) => log.line(format_args!(
                        "event=hook_failed command={command:?} status={status}"
                    )),
                    Err(e) => log.line(format_args!(
                        "event=hook_failed command={command:?} error={e}"
                    )),
                }
            });
        }
        Err(e) => log.line(format_args!(
            "event=hook_failed command={command:?} error={e}"
        )),
    }
}

/// The trace log's file.
pub(super) struct Trace {
    out: std::io::BufWriter<std::fs::File>,
    node: String,
    path: PathBuf,
    failed: bool,
}

impl Trace {
    pub(super) fn create(path: PathBuf, node: &str) -> Result<Self, RuntimeError> {
        match std::fs::File::create(&path) {
            Ok(file) => Ok(Trace {
                out: std::io::BufWriter::new(file),
                node: node.to_string(),
                path,
                failed: false,
            }),
            Err(source) => Err(RuntimeError::TraceLog { path, source }),
        }
    }

    pub(super) fn line(
        &mut self,
        now: Time,
        event: &str,
        fields: &[(&str, serde_json::Value)],
        log: &Log,
    ) {
        if self.failed {
            return;
        }
        let wall_us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0);
        let mut line = format!(
            "{{\"mono_us\":{},\"wall_us\":{wall_us},\"node\":{},\"event\":{}",
            now.0,
            json(&self.node),
            json(event)
        );
        for (key, value) in fields {
            line.push_str(&format!(",{}:{value}", json(key)));
        }
        line.push_str("}\n");
        if let Err(e) = self.out.write_all(line.as_bytes()) {
            self.fail(e, log);
        }
    }

    /// Lines reach the file after every input, so a killed node's log is whole.
    pub(super) fn flush(&mut self, log: &Log) {
        if !self.failed {
            if let Err(e) = self.out.flush() {
                self.fail(e, log);
            }
        }
    }

    fn fail(&mut self, e: std::io::Error, log: &Log) {
        self.failed = true;
        log.line(format_args!(
            "event=trace_failed path={} error={e:?} (no more trace lines)",
            self.path.display()
        ));
    }
}

/// What reader tasks share: who may connect, and where their messages go.
struct Inbound {
    wire: Arc<WireConfig>,
    cluster_name: String,
    me: Pid,
    names: BTreeMap<String, Pid>,
    log: Log,
    timing: Timing,
    /// Per member, how many connections from it have passed the handshake (see [`Outbound`]).
    greeted: Arc<Vec<AtomicU64>>,
}

/// Accepts connections, a reader task each; the readers end with this task.
async fn accept<M>(listener: TcpListener, inbound: Arc<Inbound>, inbox: mpsc::Sender<Incoming<M>>)
where
    M: crate::Message + Send + Sync + 'static,
{
    let mut readers = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, address)) if readers.len() >= inbound.timing.max_incoming => {
                    inbound.log.line(format_args!(
                        "event=refused from={address} reason=too_many_connections open={}",
                        readers.len()
                    ));
                    drop(stream);
                }
                Ok((stream, address)) => {
                    readers.spawn(read_from_peer(stream, address, inbound.clone(), inbox.clone()));
                }
                Err(e) => {
                    inbound.log.line(format_args!("event=accept_failed error={e:?}"));
                    tokio::time::sleep(StdDuration::from_millis(100)).await;
                }
            },
            Some(_) = readers.join_next() => {}
        }
    }
}

/// One incoming connection: the handshake, then each message to the node's loop.
async fn read_from_peer<M>(
    stream: TcpStream,
    address: std::net::SocketAddr,
    inbound: Arc<Inbound>,
    inbox: mpsc::Sender<Incoming<M>>,
) where
    M: crate::Message + Send + 'static,
{
    let log = &inbound.log;
    let _ = stream.set_nodelay(true);
    let (mut reader, mut writer) = stream.into_split();
    let Ok(nonce) = random_nonce() else {
        log.line(format_args!("event=refused from={address} reason=no_nonce"));
        return;
    };
    let mut encoder = FrameEncoder::new(&inbound.wire);
    let mut decoder = FrameDecoder::<M>::new(&inbound.wire, nonce);
    let me = inbound.names.iter().find(|(_, &p)| p == inbound.me);
    let hello = Hello::new(&inbound.cluster_name, me.map_or("", |(n, _)| n), nonce);
    let shaken = timeout(
        inbound.timing.handshake_timeout,
        handshake(&mut reader, &mut writer, &mut encoder, &mut decoder, &hello),
    )
    .await;
    let peer = match shaken {
        Ok(Ok(peer)) => peer,
        Ok(Err(e)) => {
            log.line(format_args!("event=refused from={address} error={e:?}"));
            return;
        }
        Err(_) => {
            log.line(format_args!(
                "event=refused from={address} reason=handshake_timeout"
            ));
            return;
        }
    };
    let from = match inbound.names.get(&peer.node) {
        Some(&from) if from != inbound.me => from,
        _ => {
            log.line(format_args!(
                "event=refused from={address} node={:?} reason=not_a_peer",
                peer.node
            ));
            return;
        }
    };
    inbound.greeted[from.index()].fetch_add(1, Ordering::Relaxed);
    loop {
        match read_frame(&mut reader, &mut decoder).await {
            Ok(Some(Envelope::Msg { msg, .. })) => {
                if inbox.send(Incoming::Msg { from, msg }).await.is_err() {
                    return;
                }
            }
            Ok(Some(Envelope::Heartbeat)) => {
                if inbox.send(Incoming::Heartbeat { from }).await.is_err() {
                    return;
                }
            }
            Ok(Some(Envelope::Leave)) => {
                log.line(format_args!("event=peer_left peer={}", peer.node));
                return;
            }
            Ok(Some(Envelope::Hello(_))) => return,
            Ok(None) => {
                log.line(format_args!("event=peer_closed peer={}", peer.node));
                return;
            }
            Err(e) => {
                log.line(format_args!(
                    "event=bad_frame peer={} from={address} error={e:?} (connection closed)",
                    peer.node
                ));
                return;
            }
        }
    }
}

/// What a writer task needs to reach one peer.
struct Outbound {
    wire: Arc<WireConfig>,
    cluster_name: String,
    me: String,
    peer: String,
    address: String,
    log: Log,
    timing: Timing,
    /// Connections from this peer that passed the handshake, by Pid (shared with the
    /// readers): when the count moves, the peer is up (perhaps restarted), and a writer
    /// waiting out its backoff connects at once instead of dropping the next message.
    greeted: Arc<Vec<AtomicU64>>,
    pid: Pid,
}

/// An open connection to a peer. The read half is kept so the connection stays whole.
struct Connection {
    writer: OwnedWriteHalf,
    _reader: OwnedReadHalf,
    encoder: FrameEncoder,
}

/// Sends one peer's queue on one connection, opened on demand and again after a failure
/// (not sooner than the backoff); what cannot be sent is dropped.
async fn write_to_peer<M>(link: Outbound, mut queue: mpsc::Receiver<Envelope<M>>)
where
    M: crate::Message + Send + 'static,
{
    let log = &link.log;
    let mut connection: Option<Connection> = None;
    let mut retry_at = Instant::now();
    let mut backoff = link.timing.backoff_min;
    let mut greeted = link.greeted[link.pid.index()].load(Ordering::Relaxed);
    while let Some(envelope) = queue.recv().await {
        let now_greeted = link.greeted[link.pid.index()].load(Ordering::Relaxed);
        if now_greeted != greeted {
            // The peer just connected to this node: it is up, whatever the backoff says.
            // (An open connection is kept: dropping it here would make the two sides'
            // reconnections greet each other for ever.)
            greeted = now_greeted;
            retry_at = Instant::now();
            backoff = link.timing.backoff_min;
        }
        let leaving = matches!(envelope, Envelope::Leave);
        // A heartbeat lost is the detector's business: no log line for it.
        let quiet = matches!(envelope, Envelope::Heartbeat);
        if connection.is_none() {
            if leaving {
                return;
            }
            if Instant::now() < retry_at {
                if quiet {
                    continue;
                }
                log.line(format_args!(
                    "event=drop to={} reason=unreachable kind={}",
                    link.peer,
                    envelope_kind(&envelope)
                ));
                continue;
            }
            match connect::<M>(&link).await {
                Ok(opened) => {
                    log.line(format_args!(
                        "event=connected peer={} address={}",
                        link.peer, link.address
                    ));
                    connection = Some(opened);
                    backoff = link.timing.backoff_min;
                }
                Err(e) => {
                    if !quiet {
                        log.line(format_args!(
                            "event=drop to={} reason=unreachable kind={} error={e:?} retry_ms={}",
                            link.peer,
                            envelope_kind(&envelope),
                            backoff.as_millis()
                        ));
                    }
                    retry_at = Instant::now() + backoff;
                    backoff = (backoff * 2).min(link.timing.backoff_max);
                    continue;
                }
            }
        }
        let Some(open) = connection.as_mut() else {
            continue;
        };
        let written = timeout(
            link.timing.write_timeout,
            write_frame(&mut open.writer, &mut open.encoder, &envelope),
        )
        .await;
        let error = match written {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(format!("{e:?}")),
            Err(_) => Some("write_timeout".to_string()),
        };
        if let Some(error) = error {
            log.line(format_args!(
                "event=drop to={} reason=connection_lost kind={} error={error}",
                link.peer,
                envelope_kind(&envelope)
            ));
            connection = None;
        }
        if leaving {
            return;
        }
    }
}

fn envelope_kind<M: crate::Message>(envelope: &Envelope<M>) -> &'static str {
    match envelope {
        Envelope::Msg { msg, .. } => msg.kind(),
        other => other.kind(),
    }
}

/// Opens a connection to the peer and exchanges Hellos, each step bounded in time.
async fn connect<M>(link: &Outbound) -> Result<Connection, String>
where
    M: crate::Message,
{
    let stream = timeout(
        link.timing.connect_timeout,
        TcpStream::connect(&link.address),
    )
    .await
    .map_err(|_| "connect_timeout".to_string())?
    .map_err(|e| e.to_string())?;
    let _ = stream.set_nodelay(true);
    let (mut reader, mut writer) = stream.into_split();
    let nonce = random_nonce().map_err(|e| e.to_string())?;
    let mut encoder = FrameEncoder::new(&link.wire);
    let mut decoder = FrameDecoder::<M>::new(&link.wire, nonce);
    let hello = Hello::new(&link.cluster_name, &link.me, nonce);
    let peer = timeout(
        link.timing.handshake_timeout,
        handshake(&mut reader, &mut writer, &mut encoder, &mut decoder, &hello),
    )
    .await
    .map_err(|_| "handshake_timeout".to_string())?
    .map_err(|e| e.to_string())?;
    if peer.node != link.peer {
        return Err(format!(
            "{} answered as {:?}, not {:?}",
            link.address, peer.node, link.peer
        ));
    }
    Ok(Connection {
        writer,
        _reader: reader,
        encoder,
    })
}
