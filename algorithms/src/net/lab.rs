//! The GCD Bully ([`GcdBully`]) on real sockets speaking the SeattleU lab's own wire (seed
//! 003; `conclave-node --algorithm gcd --wire lab`), so that a student's Python lab node and
//! Conclave nodes elect together around one `conclave gcd --wire lab` daemon.
//!
//! Every message is a pickled `(message_name, message_data)` tuple on a TCP connection of its
//! own; an answer, when the message has one, is one pickle sent back on the same connection.
//! Pickles are read by the bounded reader of [`super::pickle`]: a pickle with anything but
//! tuples, lists, dicts, str, int, None and bool (a `GLOBAL os.system`, say) is answered with
//! a `str` saying what was wrong, logged, and never reaches the algorithm.
//!
//! [`run_lab_node`] drives its [`crate::driver::Driver`] through the same host as
//! [`super::runtime`] (`net::host`: timers by (due, token), role changes logged and
//! published first, the `on_leader` / `on_follower` commands, the runtime's log lines and
//! trace-log events), with this transport instead of frames. The
//! daemon is member `gcd` of the node's cluster (a service), so GcdBully joins, and joins
//! again after a failed probe, itself. The cluster starts as the daemon and this node and
//! grows as members are learnt (append only, so Pids stay put; at most [`MAX_MEMBERS`]):
//! from the daemon's member dict and from the dicts ELECTION carries.
//!
//! # How GcdBully's messages map to the lab's
//!
//! | GcdBully ([`GcdMsg`]) | lab tuple | notes |
//! | --- | --- | --- |
//! | `Join { days, student_id }` to the daemon | `('JOIN', ((days, sid), (host, port)))` | the address is this node's advertised one; GcdMsg carries no address (in the simulator a process is its address) |
//! | `Members { members }` from the daemon | the answer `{(days, sid): (host, port), ...}` | a `str` answer (a refusal) is logged and delivers nothing: the Join timer asks again |
//! | `Election { members }` | `('ELECTION', {(days, sid): (host, port), ...})` | the dict holds the members and this node (as the Python node's does); members whose address is unknown are left out |
//! | `Ok` | the answer `('OK', None)` to an ELECTION | received: delivered as `Ok` from the peer asked |
//! | `Coordinator` | `('COORDINATOR', (days, sid))` | the sender's identity; no answer |
//! | `Probe` | `('PROBE', None)` | |
//! | `ProbeOk` | the answer `('OK', None)` to a PROBE | received: delivered as `ProbeOk` from the peer asked |
//!
//! The lab's ELECTION and PROBE do not name their sender (the answer goes back on the
//! connection). They reach the driver as from this node itself: GcdBully's ELECTION handler
//! adds the dict's members and skips itself, and the `Ok` or `ProbeOk` it sends back to
//! "itself" becomes the connection's answer. A node that does not answer (feigning failure)
//! closes the connection without one, which the sender takes as no answer, as in the lab.
//! A COORDINATOR naming this node's own identity is logged and dropped. A message that
//! cannot be sent, or whose answer does not come within [`SEND_TIMEOUT`], is lost (logged).
//!
//! ```no_run
//! use conclave_algorithms::net::lab::{run_lab_node, LabConfig};
//! use conclave_algorithms::net::runtime::Listen;
//! # async fn f() -> Result<(), conclave_algorithms::net::runtime::RuntimeError> {
//! let (stop, shutdown) = tokio::sync::watch::channel(false);
//! let listen = Listen::Address("127.0.0.1:0".into());
//! let config = LabConfig::new("127.0.0.1:50550".parse().unwrap(), (120, 4_123_456), listen, shutdown);
//! let node = tokio::spawn(run_lab_node(config));
//! // prints `t=... node=120,4123456 event=role role=Leader leader=120,4123456 ...` once elected
//! stop.send_replace(true);
//! node.await.unwrap()?;
//! # Ok(()) }
//! ```

use super::discovery::{gcd_name, join_address};
use super::host::{until_due, Hooks, Host, Transport};
use super::pickle::{self, ReadError, Value};
use super::runtime::{bind, Listen, Log, RuntimeError, Trace};
use crate::gcd::{pack_identity, unpack_identity, GcdBully, GcdMsg, GcdParams};
use crate::{Cluster, Member, MemberKind, Pid, View};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration as StdDuration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch, Semaphore};
use tokio::time::{timeout, Instant};

/// The largest pickle read, either way (the Python node reads up to 64 KiB too).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// How long an incoming connection may take to send its message, and the node to answer it.
pub const READ_TIMEOUT: StdDuration = StdDuration::from_secs(5);
/// How long sending one message may take, its answer included (the Python node's
/// `ANSWER_TIMEOUT`).
pub const SEND_TIMEOUT: StdDuration = StdDuration::from_millis(1500);
/// Incoming connections open at once; one more is closed at once, with a log line.
pub const MAX_INCOMING: usize = 256;
/// Members a node learns at most (the daemon and itself included); more are ignored.
pub const MAX_MEMBERS: usize = 1024;

/// A lab identity: (days until a birthday, student id).
pub type Identity = (u32, u32);

/// What a lab node publishes at each role change: the driver's view, and the leader's
/// identity (a [`Pid`] means nothing outside the node).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabView {
    pub view: View,
    pub leader: Option<Identity>,
}

/// Everything a lab node needs to run.
pub struct LabConfig {
    /// The daemon (`conclave gcd --wire lab`).
    pub gcd: SocketAddr,
    pub identity: Identity,
    pub listen: Listen,
    /// The host and port the others reach this node at, sent in JOIN and ELECTION;
    /// `None`: the bound address.
    pub advertise: Option<(String, u16)>,
    pub params: GcdParams,
    /// The seed of the node's random draws (the probe intervals).
    pub seed: u64,
    pub trace_log: Option<PathBuf>,
    pub on_leader: Option<String>,
    pub on_follower: Option<String>,
    /// The node stops when this turns true, or when its sender is dropped.
    pub shutdown: watch::Receiver<bool>,
    /// If given, every view the driver reports is published here.
    pub views: Option<watch::Sender<LabView>>,
}

impl LabConfig {
    /// A node with the lab's timeouts ([`GcdParams::default`]), seed 0, no trace log, no
    /// commands, advertising its bound address.
    pub fn new(
        gcd: SocketAddr,
        identity: Identity,
        listen: Listen,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        LabConfig {
            gcd,
            identity,
            listen,
            advertise: None,
            params: GcdParams::default(),
            seed: 0,
            trace_log: None,
            on_leader: None,
            on_follower: None,
            shutdown,
            views: None,
        }
    }
}

/// A message a lab node serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LabMessage {
    /// The sender's members, itself included.
    Election(Vec<(Identity, (String, u16))>),
    /// The new leader's identity.
    Coordinator(Identity),
    Probe,
}

/// The message in a decoded pickle, or the `str` to answer with.
pub fn parse(message: &Value) -> Result<LabMessage, String> {
    let malformed = || "Malformed message, expected (message_name, message_data)".to_string();
    let Value::Tuple(parts) = message else {
        return Err(malformed());
    };
    let [Value::Str(name), data] = parts.as_slice() else {
        return Err(malformed());
    };
    match name.as_str() {
        "ELECTION" => parse_members(data)
            .map(LabMessage::Election)
            .ok_or_else(|| {
                "Malformed ELECTION data, expected {(days_to_bd, su_id): (host, port)}".into()
            }),
        "COORDINATOR" => parse_identity(data)
            .map(LabMessage::Coordinator)
            .ok_or_else(|| "Malformed COORDINATOR data, expected (days_to_bd, su_id)".into()),
        "PROBE" => Ok(LabMessage::Probe),
        other => Err(format!(
            "Unexpected message: {}",
            other.chars().take(64).collect::<String>()
        )),
    }
}

fn pair(value: &Value) -> Option<(&Value, &Value)> {
    match value {
        Value::Tuple(items) | Value::List(items) if items.len() == 2 => {
            Some((&items[0], &items[1]))
        }
        _ => None,
    }
}

fn parse_identity(value: &Value) -> Option<Identity> {
    match pair(value)? {
        (Value::Int(days), Value::Int(sid)) => {
            Some((u32::try_from(*days).ok()?, u32::try_from(*sid).ok()?))
        }
        _ => None,
    }
}

fn parse_address(value: &Value) -> Option<(String, u16)> {
    match pair(value)? {
        (Value::Str(host), Value::Int(port)) => Some((host.clone(), u16::try_from(*port).ok()?)),
        _ => None,
    }
}

/// A member dict `{(days, sid): (host, port)}`, as the daemon answers a JOIN and ELECTION
/// carries.
pub fn parse_members(value: &Value) -> Option<Vec<(Identity, (String, u16))>> {
    let Value::Dict(entries) = value else {
        return None;
    };
    entries
        .iter()
        .map(|(k, v)| Some((parse_identity(k)?, parse_address(v)?)))
        .collect()
}

fn identity_value((days, sid): Identity) -> Value {
    Value::Tuple(vec![Value::Int(days.into()), Value::Int(sid.into())])
}

/// `(name, data)`, pickled.
fn message(name: &str, data: Value) -> Vec<u8> {
    pickle::write(&Value::Tuple(vec![Value::str(name), data]))
}

/// The answer to an ELECTION or a PROBE: `('OK', None)`.
pub fn ok_value() -> Value {
    Value::Tuple(vec![Value::str("OK"), Value::None])
}

fn is_ok(value: &Value) -> bool {
    matches!(value, Value::Tuple(items) if matches!(items.first(), Some(Value::Str(s)) if s == "OK"))
}

/// Reads one whole pickle of at most `max` bytes: until it parses, the peer stops sending,
/// or the limit.
pub async fn read_pickle(stream: &mut TcpStream, max: usize) -> Result<Value, ReadError> {
    let mut buffer = Vec::with_capacity(256);
    let mut chunk = [0u8; 4096];
    loop {
        match pickle::read(&buffer, max) {
            Err(ReadError::Incomplete) => {}
            done => return done,
        }
        let room = (max + 1 - buffer.len()).min(chunk.len());
        match stream.read(&mut chunk[..room]).await {
            Ok(0) | Err(_) => return Err(ReadError::Incomplete),
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
}

/// What a send asked for, so its answer becomes the right message.
#[derive(Clone, Copy, Debug)]
enum Asked {
    Join,
    Election,
    Probe,
}

/// What reaches the node's loop.
enum Incoming {
    /// A message from a connection; `answer` takes the answer, if the driver gives one.
    Request {
        message: LabMessage,
        answer: oneshot::Sender<Value>,
    },
    /// The answer to a message this node sent to `from`.
    Answer {
        from: Pid,
        asked: Asked,
        value: Value,
    },
}

/// Runs one lab node until its shutdown signal. Errors only when it cannot start.
pub async fn run_lab_node(config: LabConfig) -> Result<(), RuntimeError> {
    let LabConfig {
        gcd,
        identity,
        listen,
        advertise,
        params,
        seed,
        trace_log,
        on_leader,
        on_follower,
        mut shutdown,
        views,
    } = config;
    let listener = bind(listen).await?;
    let bound = listener
        .local_addr()
        .map_err(|source| RuntimeError::Listen {
            address: format!("{listener:?}"),
            source,
        })?;
    let own = advertise.unwrap_or_else(|| (bound.ip().to_string(), bound.port()));
    let name = gcd_name(identity.0, identity.1);
    let start = Instant::now();
    let log = Log {
        start,
        node: name.as_str().into(),
    };
    let mut daemon = Member::voter("gcd", 0);
    daemon.kind = MemberKind::Service;
    daemon.address = Some(gcd.to_string());
    let mut me = Member::voter(&name, pack_identity(identity.0.into(), identity.1.into()));
    me.address = Some(join_address(&own.0, own.1));
    let cluster = Cluster::new(vec![daemon, me]);
    log.line(format_args!(
        "event=listening address={bound} advertise={} wire=lab gcd={gcd} seed={seed}",
        join_address(&own.0, own.1)
    ));
    let trace = match trace_log {
        Some(path) => Some(Trace::create(path, &name)?),
        None => None,
    };
    let (inbox_tx, mut inbox) = mpsc::channel::<Incoming>(1024);
    let server = tokio::spawn(accept(listener, inbox_tx.clone(), log.clone()));
    let hooks = Hooks {
        on_leader,
        on_follower,
    };
    let host = Host::new(ME, cluster, 0, seed, trace, log.clone(), start, hooks);
    let net = LabNet {
        by_identity: BTreeMap::from([(identity, ME)]),
        addresses: BTreeMap::from([(ME, own.clone())]),
        identity,
        gcd,
        inbox: inbox_tx,
        answer: None,
        log: log.clone(),
        views,
    };
    let mut node = LabNode { host, net };
    let fields = vec![("wire", "lab".into())];
    node.host.start(&params, seed, fields, &mut node.net);
    loop {
        let sleep = until_due(start, node.host.next_due());
        tokio::select! {
            biased;
            _ = shutdown.wait_for(|&stop| stop) => break,
            Some(incoming) = inbox.recv() => node.incoming(incoming),
            _ = sleep => node.host.fire_due(&mut node.net),
        }
    }
    node.host.leave(&mut node.net);
    node.host.stopped();
    server.abort();
    log.line(format_args!("event=stopped"));
    Ok(())
}

/// Accepts connections, a task each, at most [`MAX_INCOMING`] at once.
async fn accept(listener: TcpListener, inbox: mpsc::Sender<Incoming>, log: Log) {
    let permits = Arc::new(Semaphore::new(MAX_INCOMING));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                log.line(format_args!("event=accept_failed error={e:?}"));
                tokio::time::sleep(StdDuration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            log.line(format_args!(
                "event=refused peer={peer} reason=too_many_connections"
            ));
            continue;
        };
        let (inbox, log) = (inbox.clone(), log.clone());
        tokio::spawn(async move {
            serve(stream, peer, inbox, log).await;
            drop(permit);
        });
    }
}

/// One incoming connection: read a message, hand it to the loop, write its answer if any.
async fn serve(mut stream: TcpStream, peer: SocketAddr, inbox: mpsc::Sender<Incoming>, log: Log) {
    let read = timeout(READ_TIMEOUT, read_pickle(&mut stream, MAX_MESSAGE_BYTES)).await;
    let parsed = match read {
        Err(_) => Err(format!(
            "Expected a pickled message within {} s",
            READ_TIMEOUT.as_secs()
        )),
        Ok(Err(e)) => Err(format!("Expected a pickled message: {e}")),
        Ok(Ok(value)) => parse(&value),
    };
    let answer = match parsed {
        Err(reason) => {
            log.line(format_args!("event=refused peer={peer} reason={reason:?}"));
            Some(Value::Str(reason))
        }
        Ok(message) => {
            let (answer, answered) = oneshot::channel();
            if inbox
                .send(Incoming::Request { message, answer })
                .await
                .is_err()
            {
                return;
            }
            // No answer (COORDINATOR, or a node feigning failure): the connection closes.
            timeout(READ_TIMEOUT, answered)
                .await
                .ok()
                .and_then(Result::ok)
        }
    };
    if let Some(answer) = answer {
        let _ = stream.write_all(&pickle::write(&answer)).await;
    }
    let _ = stream.shutdown().await;
}

/// Sends one message on a fresh connection; with `want_answer`, reads the answer.
async fn exchange(
    host: String,
    port: u16,
    bytes: Vec<u8>,
    want_answer: bool,
) -> Result<Option<Value>, String> {
    let attempt = async {
        let mut stream = TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| format!("connect: {e}"))?;
        stream
            .write_all(&bytes)
            .await
            .map_err(|e| format!("write: {e}"))?;
        let _ = stream.shutdown().await;
        if !want_answer {
            return Ok(None);
        }
        read_pickle(&mut stream, MAX_MESSAGE_BYTES)
            .await
            .map(Some)
            .map_err(|e| format!("answer: {e}"))
    };
    timeout(SEND_TIMEOUT, attempt)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {SEND_TIMEOUT:?}")))
}

/// The lab's transport: what the node knows of the group's addresses, and the outputs' ends.
struct LabNet {
    by_identity: BTreeMap<Identity, Pid>,
    /// Where each known member listens.
    addresses: BTreeMap<Pid, (String, u16)>,
    identity: Identity,
    gcd: SocketAddr,
    inbox: mpsc::Sender<Incoming>,
    /// The answer of the request being handled, if it has not been given.
    answer: Option<oneshot::Sender<Value>>,
    log: Log,
    views: Option<watch::Sender<LabView>>,
}

/// The loop's state: the driver's host and the lab's transport.
struct LabNode {
    host: Host<GcdBully>,
    net: LabNet,
}

const DAEMON: Pid = Pid(0);
const ME: Pid = Pid(1);

fn identity_of(cluster: &Cluster, pid: Pid) -> Identity {
    let (days, sid) = unpack_identity(cluster.priority(pid));
    (days as u32, sid as u32)
}

impl LabNode {
    /// The member of `identity` (added if new, its address updated if given).
    fn learn(&mut self, identity: Identity, address: Option<(String, u16)>) -> Option<Pid> {
        if identity == self.net.identity {
            return Some(ME);
        }
        let pid = match self.net.by_identity.get(&identity) {
            Some(&pid) => pid,
            None if self.host.cluster.len() >= MAX_MEMBERS => {
                self.net.log.line(format_args!(
                    "event=member_ignored days={} student_id={} reason=max_members",
                    identity.0, identity.1
                ));
                return None;
            }
            None => {
                let priority = pack_identity(identity.0.into(), identity.1.into());
                let mut member = Member::voter(&gcd_name(identity.0, identity.1), priority);
                member.address = address
                    .as_ref()
                    .map(|(host, port)| join_address(host, *port));
                let pid = self.host.add_member(member);
                self.net.by_identity.insert(identity, pid);
                pid
            }
        };
        if let Some((host, port)) = address {
            self.host.set_address(pid, join_address(&host, port));
            self.net.addresses.insert(pid, (host, port));
        }
        Some(pid)
    }

    fn learn_all(&mut self, members: Vec<(Identity, (String, u16))>) -> Vec<Pid> {
        members
            .into_iter()
            .filter_map(|(identity, address)| self.learn(identity, Some(address)))
            .collect()
    }

    fn incoming(&mut self, incoming: Incoming) {
        match incoming {
            Incoming::Request { message, answer } => {
                let (from, msg) = match message {
                    LabMessage::Election(members) => {
                        let members = self.learn_all(members);
                        (ME, GcdMsg::Election { members })
                    }
                    LabMessage::Coordinator(identity) if identity == self.net.identity => {
                        self.net.log.line(format_args!(
                            "event=drop kind=Coordinator reason=own_identity"
                        ));
                        return;
                    }
                    LabMessage::Coordinator(identity) => match self.learn(identity, None) {
                        Some(from) => (from, GcdMsg::Coordinator),
                        None => return,
                    },
                    LabMessage::Probe => (ME, GcdMsg::Probe),
                };
                self.net.answer = Some(answer);
                self.host.deliver(from, msg, &mut self.net);
                self.net.answer = None;
            }
            Incoming::Answer { from, asked, value } => {
                let msg = match asked {
                    Asked::Join => match parse_members(&value) {
                        Some(members) => GcdMsg::Members {
                            members: self.learn_all(members),
                        },
                        None => {
                            self.net.log.line(format_args!(
                                "event=join_refused answer={:?}",
                                format!("{value:?}")
                            ));
                            return;
                        }
                    },
                    Asked::Election if is_ok(&value) => GcdMsg::Ok,
                    Asked::Probe if is_ok(&value) => GcdMsg::ProbeOk,
                    _ => {
                        self.net.log.line(format_args!(
                            "event=bad_answer from={} asked={asked:?} answer={:?}",
                            self.host.cluster.name(from),
                            format!("{value:?}")
                        ));
                        return;
                    }
                };
                self.host.deliver(from, msg, &mut self.net);
            }
        }
    }
}

impl Transport<GcdBully> for LabNet {
    /// Carries out one send: as the answer of the request being handled, or as a lab
    /// message on a connection of its own.
    fn send(&mut self, cluster: &Cluster, to: Pid, msg: GcdMsg) {
        let (bytes, asked) = match msg {
            GcdMsg::Ok | GcdMsg::ProbeOk if to == ME => {
                if let Some(answer) = self.answer.take() {
                    let _ = answer.send(ok_value());
                }
                return;
            }
            GcdMsg::Join { .. } if to == DAEMON => {
                let (host, port) = self.addresses[&ME].clone();
                let data = Value::Tuple(vec![
                    identity_value(self.identity),
                    Value::Tuple(vec![Value::Str(host), Value::Int(port.into())]),
                ]);
                let gcd = (self.gcd.ip().to_string(), self.gcd.port());
                let bytes = message("JOIN", data);
                self.spawn_exchange(cluster, to, gcd, bytes, Some(Asked::Join));
                return;
            }
            GcdMsg::Election { members } => {
                let dict = members
                    .into_iter()
                    .chain([ME])
                    .filter_map(|p| {
                        let (host, port) = self.addresses.get(&p)?.clone();
                        let address = Value::Tuple(vec![Value::Str(host), Value::Int(port.into())]);
                        Some((identity_value(identity_of(cluster, p)), address))
                    })
                    .collect();
                (
                    message("ELECTION", Value::Dict(dict)),
                    Some(Asked::Election),
                )
            }
            GcdMsg::Coordinator => (message("COORDINATOR", identity_value(self.identity)), None),
            GcdMsg::Probe => (message("PROBE", Value::None), Some(Asked::Probe)),
            other => {
                self.log.line(format_args!(
                    "event=drop to={} kind={other:?} reason=not_in_the_lab_protocol",
                    cluster.name(to)
                ));
                return;
            }
        };
        let Some(address) = self.addresses.get(&to).cloned().filter(|_| to != ME) else {
            self.log.line(format_args!(
                "event=drop to={} reason=no_address",
                cluster.name(to)
            ));
            return;
        };
        self.spawn_exchange(cluster, to, address, bytes, asked);
    }

    fn publish(&mut self, cluster: &Cluster, view: View) {
        if let Some(views) = &self.views {
            let leader = view.leader.map(|l| identity_of(cluster, l));
            views.send_replace(LabView { view, leader });
        }
    }
}

impl LabNet {
    /// Sends `bytes` to `to` at `address` in a task of its own; its answer, if `asked` for
    /// one, comes back to the loop.
    fn spawn_exchange(
        &self,
        cluster: &Cluster,
        to: Pid,
        (host, port): (String, u16),
        bytes: Vec<u8>,
        asked: Option<Asked>,
    ) {
        let inbox = self.inbox.clone();
        let log = self.log.clone();
        let peer = cluster.name(to).to_string();
        tokio::spawn(async move {
            match exchange(host, port, bytes, asked.is_some()).await {
                Ok(Some(value)) => {
                    if let Some(asked) = asked {
                        let _ = inbox
                            .send(Incoming::Answer {
                                from: to,
                                asked,
                                value,
                            })
                            .await;
                    }
                }
                Ok(None) => {}
                Err(e) => log.line(format_args!(
                    "event=send_failed to={peer} asked={asked:?} error={e:?}"
                )),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(items: Vec<Value>) -> Value {
        Value::Tuple(items)
    }

    #[test]
    fn parses_the_three_messages_and_refuses_other_shapes_with_a_reason() {
        let members = Value::Dict(vec![(
            t(vec![Value::Int(120), Value::Int(4_123_456)]),
            t(vec![Value::str("localhost"), Value::Int(50001)]),
        )]);
        assert_eq!(
            parse(&t(vec![Value::str("ELECTION"), members])),
            Ok(LabMessage::Election(vec![(
                (120, 4_123_456),
                ("localhost".into(), 50001)
            )]))
        );
        let leader = t(vec![Value::Int(300), Value::Int(2_345_678)]);
        assert_eq!(
            parse(&t(vec![Value::str("COORDINATOR"), leader])),
            Ok(LabMessage::Coordinator((300, 2_345_678)))
        );
        assert_eq!(
            parse(&t(vec![Value::str("PROBE"), Value::None])),
            Ok(LabMessage::Probe)
        );
        let refusals = [
            (Value::str("PROBE"), "Malformed message"),
            (
                t(vec![Value::str("JOIN"), Value::None]),
                "Unexpected message: JOIN",
            ),
            (
                t(vec![Value::str("ELECTION"), Value::None]),
                "Malformed ELECTION",
            ),
            (
                t(vec![
                    Value::str("COORDINATOR"),
                    t(vec![Value::Int(-1), Value::Int(1)]),
                ]),
                "Malformed COORDINATOR",
            ),
        ];
        for (value, reason) in refusals {
            let got = parse(&value).unwrap_err();
            assert!(got.starts_with(reason), "{value:?}: {got}");
        }
        assert!(is_ok(&ok_value()) && !is_ok(&Value::str("OK")));
    }
}
