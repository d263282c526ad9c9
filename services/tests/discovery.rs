//! Peer discovery against the real services (`conclave_algorithms::net::discovery`, what
//! `conclave-node --registry` and `--gcd` do): four nodes on 127.0.0.1 register with an
//! in-process `conclave registry` (or JOIN an in-process `conclave gcd`), wait, list the
//! members, start with that list and elect the highest. Every test is bounded in time and
//! stops what it started, also when it fails.

mod common;

use conclave_algorithms::bully::{Bully, BullyParams};
use conclave_algorithms::gcd::{GcdBully, GcdParams};
use conclave_algorithms::net::discovery::{cluster_of, gcd_name, join_gcd, Peer, Registry};
use conclave_algorithms::net::runtime::{run_node, Listen, NodeConfig, RuntimeError};
use conclave_algorithms::{Algorithm, Cluster, Duration, Pid, Role, View};
use conclave_services::gcd;
use serde::Serialize;
use std::time::Duration as StdDuration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long discovery gathers: all four nodes register within it.
const WAIT: StdDuration = StdDuration::from_millis(1500);
/// How long the election may take after the nodes start.
const ELECTION_BOUND: StdDuration = StdDuration::from_secs(10);

struct Node {
    name: String,
    stop: watch::Sender<bool>,
    view: watch::Receiver<View>,
    cluster: Cluster,
    task: JoinHandle<Result<(), RuntimeError>>,
}

/// In-process nodes; aborted on drop (a test that fails leaves no task behind).
struct Nodes(Vec<Node>);

impl Drop for Nodes {
    fn drop(&mut self) {
        for node in &self.0 {
            node.task.abort();
        }
    }
}

impl Nodes {
    /// Waits until every node follows or is `leader`; panics with the views past the bound.
    async fn wait_for_leader(&self, leader: &str) {
        let deadline = tokio::time::Instant::now() + ELECTION_BOUND;
        loop {
            let views: Vec<(String, Role, Option<String>)> = self
                .0
                .iter()
                .map(|n| {
                    let view = *n.view.borrow();
                    let named = view.leader.map(|p| n.cluster.name(p).to_string());
                    (n.name.clone(), view.role, named)
                })
                .collect();
            if views
                .iter()
                .all(|(_, role, named)| named.as_deref() == Some(leader) && *role != Role::Idle)
            {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no agreement on {leader} within {ELECTION_BOUND:?}: {views:?}"
            );
            tokio::time::sleep(StdDuration::from_millis(50)).await;
        }
    }

    async fn stop(mut self) {
        for node in std::mem::take(&mut self.0) {
            node.stop.send_replace(true);
            let result = tokio::time::timeout(StdDuration::from_secs(5), node.task)
                .await
                .expect("the node stops within 5 s");
            result.expect("the node task").expect("the node ran");
        }
    }
}

fn start_node<A>(
    cluster: Cluster,
    me: Pid,
    params: A::Params,
    listener: std::net::TcpListener,
) -> Node
where
    A: Algorithm + Send + 'static,
    A::Msg: Send + Sync + 'static,
    A::Timer: Send,
    A::Params: Serialize + Send,
{
    let (stop, shutdown) = watch::channel(false);
    let (views, view) = watch::channel(View::new(Role::Idle, None, "Starting"));
    let mut config = NodeConfig::<A>::new(
        cluster.clone(),
        me,
        params,
        Listen::Listener(listener),
        shutdown,
    );
    config.views = Some(views);
    config.seed = u64::from(me.0);
    Node {
        name: cluster.name(me).to_string(),
        stop,
        view,
        cluster,
        task: tokio::spawn(run_node(config)),
    }
}

fn bind() -> (std::net::TcpListener, String) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let address = listener.local_addr().unwrap().to_string();
    (listener, address)
}

fn fast_bully() -> BullyParams {
    BullyParams {
        answer_timeout: Duration::from_millis(100),
        coordinator_timeout: Duration::from_millis(300),
        heartbeat_interval: Duration::from_millis(100),
        heartbeat_timeout: Duration::from_millis(150),
        ..BullyParams::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_four_bully_nodes_register_wait_list_and_elect_the_highest() {
    let addr = common::start(Some("s3cret")).await;
    let url = format!("http://{addr}");
    // A foreign instance of the same service, without a priority: left out.
    let registry = Registry::new(&url, "conclave", Some("s3cret".into()));
    let foreign = serde_json::json!({"ID": "web", "Name": "conclave", "Port": 80});
    let answer = common::request(
        addr,
        "PUT",
        "/v1/agent/service/register",
        &[("X-Consul-Token", "s3cret")],
        foreign.to_string().as_bytes(),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);

    let mut discoveries = Vec::new();
    for (i, name) in ["n1", "n2", "n3", "n4"].into_iter().enumerate() {
        let (listener, address) = bind();
        let me = Peer {
            name: name.into(),
            priority: i as u64 + 1,
            address,
        };
        let registry = registry.clone();
        discoveries.push(tokio::task::spawn_blocking(move || {
            registry.register(&me).expect("register");
            std::thread::sleep(WAIT);
            let peers = registry.passing().expect("list passing instances");
            (me, peers, listener)
        }));
    }
    let mut nodes = Nodes(Vec::new());
    for discovery in discoveries {
        let (me, peers, listener) = discovery.await.unwrap();
        let (cluster, pid) = cluster_of(&me, peers);
        let names: Vec<_> = cluster.members.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["n1", "n2", "n3", "n4"], "{} found", me.name);
        nodes
            .0
            .push(start_node::<Bully>(cluster, pid, fast_bully(), listener));
    }
    nodes.wait_for_leader("n4").await;
    nodes.stop().await;

    // What the binary does at a graceful stop; the foreign instance stays.
    for name in ["n1", "n2", "n3", "n4"] {
        let registry = registry.clone();
        tokio::task::spawn_blocking(move || registry.deregister(name))
            .await
            .unwrap()
            .expect("deregister");
    }
    let answer = common::request(
        addr,
        "GET",
        "/v1/catalog/service/conclave",
        &[("X-Consul-Token", "s3cret")],
        b"",
    )
    .await;
    let catalog = answer.json();
    let left: Vec<&str> = catalog
        .as_array()
        .expect("a list of instances")
        .iter()
        .map(|i| i["ServiceID"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(left, ["web"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcd_four_gcd_bully_nodes_join_wait_list_and_elect_the_highest_identity() {
    let options = gcd::Options {
        listen: "127.0.0.1:0".parse().unwrap(),
        wire: gcd::Wire::Conclave,
    };
    let daemon = gcd::bind(options).await.expect("bind 127.0.0.1:0");
    let gcd_addr = daemon.local_addr();
    let daemon = tokio::spawn(daemon.run());

    // (days, student id): the highest pair is (300, 1_000_001), not the highest id.
    let identities = [
        (12, 4_000_000),
        (300, 1_000_001),
        (120, 9_999_999),
        (299, 9_000_000),
    ];
    let mut joins = Vec::new();
    for (days, student_id) in identities {
        let (listener, address) = bind();
        joins.push(tokio::spawn(async move {
            let peers = join_gcd(gcd_addr, days, student_id, &address, WAIT)
                .await
                .expect("join the gcd");
            (days, student_id, address, peers, listener)
        }));
    }
    let params = GcdParams {
        answer_timeout: Duration::from_millis(200),
        coordinator_timeout: Duration::from_millis(500),
        ..GcdParams::default()
    };
    let mut nodes = Nodes(Vec::new());
    for join in joins {
        let (days, student_id, address, peers, listener) = join.await.unwrap();
        let me = Peer {
            name: gcd_name(days, student_id),
            priority: conclave_algorithms::gcd::pack_identity(days.into(), student_id.into()),
            address,
        };
        let (cluster, pid) = cluster_of(&me, peers);
        assert_eq!(
            cluster.members.len(),
            4,
            "{} found {:?}",
            me.name,
            cluster.members
        );
        assert!(cluster.services().next().is_none());
        nodes.0.push(start_node::<GcdBully>(
            cluster,
            pid,
            params.clone(),
            listener,
        ));
    }
    nodes.wait_for_leader(&gcd_name(300, 1_000_001)).await;
    nodes.stop().await;
    daemon.abort();
}
