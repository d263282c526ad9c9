//! Peer discovery: how a node learns its member list before it starts, in the three ways
//! the seeds use (feature `net`).
//!
//! - **A service registry** (seed 000, Consul): [`Registry`] registers the node with a TCP
//!   health check on its address and its priority in `Meta`, and lists the instances whose
//!   checks pass. The node waits between the two (seed 000 waits 8 s) so that the nodes
//!   started together see each other.
//! - **A group coordinator daemon** (seed 003): [`join_gcd`] JOINs `conclave gcd` with the
//!   lab's identity (days, student id) and the node's address, waits, and asks for the
//!   member list. Members are named after their identity ([`gcd_name`]) and their priority
//!   packs it ([`crate::gcd::pack_identity`]).
//! - **A UDP broadcast handshake** (seed 004): [`Broadcast`] sends a HELLO with the node's
//!   name, priority and address to a broadcast address, every node that listens on the port
//!   answers with its own, and HELLOs of nodes starting at the same time count too. Every
//!   node's socket on the port is bound with `SO_REUSEADDR` and `SO_REUSEPORT`, so several
//!   nodes of one machine share it; on loopback the broadcast address is `127.255.255.255`.
//!
//! Discovery yields [`Peer`]s, and [`cluster_of`] turns them into the [`Cluster`] a
//! [`NodeConfig`](super::runtime::NodeConfig) takes. **Membership is fixed once the node
//! starts**: a node that starts later is found by the ones that start after it, not by the
//! running ones (they log it, `event=discovery_late_joiner`); restart those to include it.
//!
//! ```no_run
//! use conclave_algorithms::net::discovery::{cluster_of, Peer, Registry};
//! let me = Peer { name: "node1".into(), priority: 1, address: "127.0.0.1:5001".into() };
//! let registry = Registry::new("http://127.0.0.1:8500", "conclave", None);
//! registry.register(&me).unwrap();
//! std::thread::sleep(std::time::Duration::from_secs(8));
//! let (cluster, me_pid) = cluster_of(&me, registry.passing().unwrap());
//! # let _ = (cluster, me_pid);
//! ```

use crate::gcd::pack_identity;
use crate::{Cluster, Member, Pid};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;
use tokio::net::UdpSocket;

/// How long one HTTP request to the registry may take.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the registry checks a node's TCP port. The check also opens a connection to
/// the node, which logs it as a failed handshake: rarely is enough, the first check runs at
/// registration.
pub const CHECK_INTERVAL: &str = "10s";
/// How long one request to the group coordinator daemon may take.
pub const GCD_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a node starting with `--broadcast` sends its HELLO again while it listens.
pub const HELLO_INTERVAL: Duration = Duration::from_millis(500);
/// The largest datagram of the handshake read; longer ones are cut and then refused.
pub const DATAGRAM_MAX: usize = 2048;

/// A member as discovery finds it: its name, priority, and the address it listens on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    pub name: String,
    pub priority: u64,
    pub address: String,
}

/// Why discovery failed: the node does not start.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("registry {url}: {message}")]
    Registry { url: String, message: String },
    #[error("gcd {addr}: {message}")]
    Gcd { addr: SocketAddr, message: String },
    #[error("broadcast {target}: {source}")]
    Broadcast {
        target: SocketAddr,
        source: std::io::Error,
    },
    #[error("address {0:?} is not host:port")]
    Address(String),
}

/// The cluster of `peers` and `me`, ordered by priority then name (so every node that found
/// the same peers numbers them alike), and `me`'s Pid. A name found twice keeps its last
/// entry; `me` is always in, as given.
pub fn cluster_of(me: &Peer, peers: impl IntoIterator<Item = Peer>) -> (Cluster, Pid) {
    let mut by_name: BTreeMap<String, Peer> = BTreeMap::new();
    for peer in peers {
        by_name.insert(peer.name.clone(), peer);
    }
    by_name.insert(me.name.clone(), me.clone());
    let mut peers: Vec<Peer> = by_name.into_values().collect();
    peers.sort_by(|a, b| (a.priority, &a.name).cmp(&(b.priority, &b.name)));
    let me_pid = peers.iter().position(|p| p.name == me.name).unwrap_or(0);
    let members = peers
        .into_iter()
        .map(|p| {
            let mut member = Member::voter(&p.name, p.priority);
            member.address = Some(p.address);
            member
        })
        .collect();
    (Cluster::new(members), Pid(me_pid as u32))
}

/// `host:port` split in two; the host loses IPv6 brackets.
pub fn split_address(address: &str) -> Result<(String, u16), DiscoveryError> {
    let bad = || DiscoveryError::Address(address.to_string());
    let (host, port) = address.rsplit_once(':').ok_or_else(bad)?;
    let port = port.parse::<u16>().map_err(|_| bad())?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(bad());
    }
    Ok((host.to_string(), port))
}

/// `host` and `port` as an address (IPv6 hosts in brackets).
pub fn join_address(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// A Consul-compatible registry (`conclave registry`, or a Consul agent) and the service
/// name the nodes register under. Plain HTTP; every call blocks (at most [`HTTP_TIMEOUT`]).
#[derive(Clone, Debug)]
pub struct Registry {
    pub url: String,
    pub service: String,
    /// Sent as `X-Consul-Token`.
    pub token: Option<String>,
    agent: ureq::Agent,
}

impl Registry {
    pub fn new(url: &str, service: &str, token: Option<String>) -> Self {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(HTTP_TIMEOUT))
            .http_status_as_error(false)
            .build()
            .into();
        Registry {
            url: url.trim_end_matches('/').to_string(),
            service: service.to_string(),
            token,
            agent,
        }
    }

    fn error(&self, message: impl Into<String>) -> DiscoveryError {
        DiscoveryError::Registry {
            url: self.url.clone(),
            message: message.into(),
        }
    }

    fn with_token<B>(&self, request: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &self.token {
            Some(token) => request.header("X-Consul-Token", token),
            None => request,
        }
    }

    /// Registers `me` as an instance of the service (ID = its name), with a TCP check on
    /// its address and its priority as `Meta.priority`.
    pub fn register(&self, me: &Peer) -> Result<(), DiscoveryError> {
        let body = registration_body(&self.service, me)?;
        let url = format!("{}/v1/agent/service/register", self.url);
        let request = self.with_token(self.agent.put(&url));
        let response = request
            .header("Content-Type", "application/json")
            .send(body.to_string())
            .map_err(|e| self.error(format!("PUT {url}: {e}")))?;
        self.expect_ok(response, "PUT", &url).map(|_| ())
    }

    /// Registers `me` as [`Registry::register`] does, and deregisters it when the returned
    /// guard is dropped (a graceful stop, or any return after registering).
    pub fn register_until_dropped(&self, me: &Peer) -> Result<Registration, DiscoveryError> {
        self.register(me)?;
        Ok(Registration {
            registry: self.clone(),
            id: me.name.clone(),
        })
    }

    /// The instances of the service whose checks all pass, as peers. An instance without
    /// a numeric `Meta.priority` is not a Conclave node and is left out.
    pub fn passing(&self) -> Result<Vec<Peer>, DiscoveryError> {
        let url = format!("{}/v1/health/service/{}?passing", self.url, self.service);
        let response = self
            .with_token(self.agent.get(&url))
            .call()
            .map_err(|e| self.error(format!("GET {url}: {e}")))?;
        let text = self.expect_ok(response, "GET", &url)?;
        peers_of_health(&text).map_err(|e| self.error(format!("GET {url}: {e}")))
    }

    /// Removes the instance named `id`.
    pub fn deregister(&self, id: &str) -> Result<(), DiscoveryError> {
        let url = format!("{}/v1/agent/service/deregister/{id}", self.url);
        let response = self
            .with_token(self.agent.put(&url))
            .send_empty()
            .map_err(|e| self.error(format!("PUT {url}: {e}")))?;
        self.expect_ok(response, "PUT", &url).map(|_| ())
    }

    fn expect_ok(
        &self,
        mut response: ureq::http::Response<ureq::Body>,
        method: &str,
        url: &str,
    ) -> Result<String, DiscoveryError> {
        let status = response.status();
        let text = response
            .body_mut()
            .with_config()
            .limit(4 * 1024 * 1024)
            .read_to_string()
            .map_err(|e| self.error(format!("{method} {url}: reading the answer: {e}")))?;
        if !status.is_success() {
            return Err(self.error(format!("{method} {url}: {status}: {}", text.trim())));
        }
        Ok(text)
    }
}

/// An instance in the registry, deregistered on drop (the outcome is logged).
pub struct Registration {
    registry: Registry,
    id: String,
}

impl Drop for Registration {
    fn drop(&mut self) {
        match self.registry.deregister(&self.id) {
            Ok(()) => eprintln!(
                "node={} event=deregistered registry={}",
                self.id, self.registry.url
            ),
            Err(e) => eprintln!("node={} event=deregister_failed error={e}", self.id),
        }
    }
}

/// The body of `PUT /v1/agent/service/register` for `me`.
pub fn registration_body(service: &str, me: &Peer) -> Result<serde_json::Value, DiscoveryError> {
    let (host, port) = split_address(&me.address)?;
    Ok(serde_json::json!({
        "ID": me.name,
        "Name": service,
        "Address": host,
        "Port": port,
        "Meta": { "priority": me.priority.to_string() },
        "Check": {
            "TCP": me.address,
            "Interval": CHECK_INTERVAL,
            "Timeout": "2s",
            "DeregisterCriticalServiceAfter": "1m",
        },
    }))
}

/// The peers of an answer to `GET /v1/health/service/:name`: the service's `ID` as name,
/// `Meta.priority` as priority, `Address` (or the node's, when empty, as Consul does) and
/// `Port` as address.
pub fn peers_of_health(text: &str) -> Result<Vec<Peer>, String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Entry {
        node: Option<NodeEntry>,
        service: ServiceEntry,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct NodeEntry {
        #[serde(default)]
        address: String,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct ServiceEntry {
        #[serde(rename = "ID")]
        id: String,
        #[serde(default)]
        address: String,
        #[serde(default)]
        port: u16,
        #[serde(default)]
        meta: Option<BTreeMap<String, String>>,
    }
    let entries: Vec<Entry> = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let peers = entries
        .into_iter()
        .filter_map(|entry| {
            let service = entry.service;
            let priority = service
                .meta
                .as_ref()?
                .get("priority")?
                .parse::<u64>()
                .ok()?;
            let host = match service.address.as_str() {
                "" => entry.node.map(|n| n.address).unwrap_or_default(),
                address => address.to_string(),
            };
            (!host.is_empty()).then(|| Peer {
                name: service.id,
                priority,
                address: join_address(&host, service.port),
            })
        })
        .collect();
    Ok(peers)
}

/// The member name of a lab identity: `DAYS,SID`.
pub fn gcd_name(days: u32, student_id: u32) -> String {
    format!("{days},{student_id}")
}

/// JOINs the group coordinator daemon at `gcd` as (days, student id) listening on
/// `address`, waits `wait` for the others that start now to join too, and returns every
/// member the daemon then lists (this node included).
pub async fn join_gcd(
    gcd: SocketAddr,
    days: u32,
    student_id: u32,
    address: &str,
    wait: Duration,
) -> Result<Vec<Peer>, DiscoveryError> {
    use super::gcd_wire::{request, GcdAnswer, GcdRequest};
    let (host, port) = split_address(address)?;
    let name = gcd_name(days, student_id);
    let ask = |req: GcdRequest| {
        let name = name.clone();
        async move {
            let answer = tokio::time::timeout(GCD_TIMEOUT, request(gcd, &name, &req)).await;
            let message = match answer {
                Ok(Ok(GcdAnswer::Members(members))) => return Ok(members),
                Ok(Ok(GcdAnswer::Refused(why))) => format!("refused: {why}"),
                Ok(Err(e)) => e.to_string(),
                Err(_) => format!("no answer within {GCD_TIMEOUT:?}"),
            };
            Err(DiscoveryError::Gcd { addr: gcd, message })
        }
    };
    ask(GcdRequest::Join {
        days,
        student_id,
        host,
        port,
    })
    .await?;
    tokio::time::sleep(wait).await;
    let members = ask(GcdRequest::Members).await?;
    Ok(members
        .into_iter()
        .map(|m| Peer {
            name: gcd_name(m.days, m.student_id),
            priority: pack_identity(u64::from(m.days), u64::from(m.student_id)),
            address: join_address(&m.host, m.port),
        })
        .collect())
}

/// One datagram of the broadcast handshake, in JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Datagram {
    /// `hello` from a node that is starting, `here` in answer to one.
    pub kind: DatagramKind,
    /// The cluster's name: datagrams of other clusters are ignored.
    pub cluster: String,
    #[serde(flatten)]
    pub peer: Peer,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DatagramKind {
    Hello,
    Here,
}

/// Seed 004's handshake: a socket on the broadcast port shared with the other nodes of the
/// machine, where HELLOs arrive, and one of its own that sends HELLOs and gets answers.
pub struct Broadcast {
    target: SocketAddr,
    cluster: String,
    me: Peer,
    /// Bound to the wildcard address on the target's port, shared (`SO_REUSEPORT`).
    listener: UdpSocket,
    /// An ephemeral port, with `SO_BROADCAST`: HELLOs leave from here, answers come here.
    sender: UdpSocket,
}

impl Broadcast {
    /// Binds both sockets. Call from within a tokio runtime.
    pub fn bind(target: SocketAddr, cluster: &str, me: Peer) -> Result<Self, DiscoveryError> {
        let err = |source| DiscoveryError::Broadcast { target, source };
        let any: IpAddr = match target {
            SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
            SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
        };
        let listener = shared_udp(SocketAddr::new(any, target.port())).map_err(err)?;
        let sender = std::net::UdpSocket::bind(SocketAddr::new(any, 0)).map_err(err)?;
        sender.set_broadcast(true).map_err(err)?;
        sender.set_nonblocking(true).map_err(err)?;
        Ok(Broadcast {
            target,
            cluster: cluster.to_string(),
            me,
            listener: UdpSocket::from_std(listener).map_err(err)?,
            sender: UdpSocket::from_std(sender).map_err(err)?,
        })
    }

    fn datagram(&self, kind: DatagramKind) -> Vec<u8> {
        let datagram = Datagram {
            kind,
            cluster: self.cluster.clone(),
            peer: self.me.clone(),
        };
        serde_json::to_vec(&datagram).unwrap_or_default()
    }

    /// A datagram of this cluster from another node, or `None` (logged when malformed).
    fn parse(&self, bytes: &[u8], from: SocketAddr) -> Option<Datagram> {
        match serde_json::from_slice::<Datagram>(bytes) {
            Ok(d) if d.cluster == self.cluster && d.peer.name != self.me.name => Some(d),
            Ok(_) => None,
            Err(e) => {
                eprintln!(
                    "node={} event=discovery_bad_datagram from={from} error={e}",
                    self.me.name
                );
                None
            }
        }
    }

    /// Sends a HELLO every [`HELLO_INTERVAL`] for `wait`, answers the HELLOs of other
    /// starting nodes, and returns every node heard from (by HELLO or answer).
    pub async fn discover(&self, wait: Duration) -> Vec<Peer> {
        let mut found: BTreeMap<String, Peer> = BTreeMap::new();
        let deadline = tokio::time::sleep(wait);
        tokio::pin!(deadline);
        let mut hello = tokio::time::interval(HELLO_INTERVAL);
        let (mut in_buf, mut out_buf) = ([0; DATAGRAM_MAX], [0; DATAGRAM_MAX]);
        loop {
            tokio::select! {
                _ = &mut deadline => break,
                _ = hello.tick() => {
                    let bytes = self.datagram(DatagramKind::Hello);
                    if let Err(e) = self.sender.send_to(&bytes, self.target).await {
                        eprintln!("node={} event=discovery_send_failed to={} error={e}", self.me.name, self.target);
                    }
                }
                Ok((n, from)) = self.listener.recv_from(&mut in_buf) => {
                    if let Some(d) = self.parse(&in_buf[..n], from) {
                        if d.kind == DatagramKind::Hello {
                            self.answer(from).await;
                        }
                        found.insert(d.peer.name.clone(), d.peer);
                    }
                }
                Ok((n, from)) = self.sender.recv_from(&mut out_buf) => {
                    if let Some(d) = self.parse(&out_buf[..n], from) {
                        found.insert(d.peer.name.clone(), d.peer);
                    }
                }
            }
        }
        found.into_values().collect()
    }

    async fn answer(&self, to: SocketAddr) {
        let bytes = self.datagram(DatagramKind::Here);
        if let Err(e) = self.sender.send_to(&bytes, to).await {
            eprintln!(
                "node={} event=discovery_send_failed to={to} error={e}",
                self.me.name
            );
        }
    }

    /// Answers every HELLO, for as long as the node runs. A HELLO from a node not in
    /// `members` is a late joiner: answered, and logged, since this node's membership is
    /// fixed.
    pub async fn answer_forever(self, members: Vec<String>) {
        let mut buf = [0; DATAGRAM_MAX];
        loop {
            let Ok((n, from)) = self.listener.recv_from(&mut buf).await else {
                continue;
            };
            let Some(d) = self.parse(&buf[..n], from) else {
                continue;
            };
            if d.kind != DatagramKind::Hello {
                continue;
            }
            self.answer(from).await;
            if !members.contains(&d.peer.name) {
                eprintln!(
                    "node={} event=discovery_late_joiner name={} address={} (membership is fixed: restart this node to include it)",
                    self.me.name, d.peer.name, d.peer.address
                );
            }
        }
    }
}

/// A UDP socket on `addr` that other processes may bind too (`SO_REUSEADDR`, and
/// `SO_REUSEPORT` on Unix), so that each gets a copy of every broadcast.
fn shared_udp(addr: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    #[cfg(unix)]
    socket.set_reuse_port(true)?;
    socket.set_broadcast(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(name: &str, priority: u64, address: &str) -> Peer {
        Peer {
            name: name.into(),
            priority,
            address: address.into(),
        }
    }

    #[test]
    fn cluster_of_orders_by_priority_and_keeps_me() {
        let me = peer("b", 2, "127.0.0.1:2");
        let found = vec![
            peer("c", 3, "127.0.0.1:3"),
            peer("a", 1, "127.0.0.1:1"),
            peer("b", 9, "stale:9"),
        ];
        let (cluster, me_pid) = cluster_of(&me, found);
        let names: Vec<_> = cluster.members.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(me_pid, Pid(1));
        assert_eq!(cluster.members[1].address.as_deref(), Some("127.0.0.1:2"));
    }

    #[test]
    fn health_answer_gives_peers_and_skips_foreign_instances() {
        let text = r#"[
          {"Node": {"Address": "10.0.0.9"}, "Service": {"ID": "n1", "Address": "", "Port": 5001, "Meta": {"priority": "1"}}, "Checks": []},
          {"Node": {"Address": "10.0.0.9"}, "Service": {"ID": "n2", "Address": "127.0.0.1", "Port": 5002, "Meta": {"priority": "7"}}, "Checks": []},
          {"Node": {"Address": "10.0.0.9"}, "Service": {"ID": "web", "Address": "127.0.0.1", "Port": 80, "Meta": null}, "Checks": []}
        ]"#;
        assert_eq!(
            peers_of_health(text).unwrap(),
            vec![
                peer("n1", 1, "10.0.0.9:5001"),
                peer("n2", 7, "127.0.0.1:5002")
            ]
        );
    }

    #[test]
    fn registration_body_carries_the_check_and_priority() {
        let body = registration_body("conclave", &peer("n1", 4, "127.0.0.1:5001")).unwrap();
        assert_eq!(body["ID"], "n1");
        assert_eq!(body["Port"], 5001);
        assert_eq!(body["Meta"]["priority"], "4");
        assert_eq!(body["Check"]["TCP"], "127.0.0.1:5001");
    }

    #[test]
    fn addresses_split_and_join() {
        assert_eq!(
            split_address("[::1]:7000").unwrap(),
            ("::1".to_string(), 7000)
        );
        assert_eq!(join_address("::1", 7000), "[::1]:7000");
        assert!(split_address("nohost").is_err());
        assert!(split_address(":7000").is_err());
    }

    #[test]
    fn datagram_is_flat_json() {
        let d = Datagram {
            kind: DatagramKind::Hello,
            cluster: "c".into(),
            peer: peer("a", 1, "127.0.0.1:1"),
        };
        assert_eq!(
            serde_json::to_string(&d).unwrap(),
            r#"{"kind":"hello","cluster":"c","name":"a","priority":1,"address":"127.0.0.1:1"}"#
        );
    }
}
