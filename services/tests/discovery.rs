//! Peer discovery against the real services (`conclave_algorithms::net::discovery`, what
//! `conclave-node --registry` and `--gcd` do): four nodes on 127.0.0.1 register with an
//! in-process `conclave registry` (or JOIN an in-process `conclave gcd`), wait, list the
//! members, start with that list and elect the node the simulator elects for the seeds' own
//! clusters: seed 000's four nodes with their ids (`scenarios/consul_four_nodes.ron`: node2),
//! seed 003's four students with their identities (`scenarios/gcd_lab_feigning.ron`: carol).
//! Every test is bounded in time and stops what it started, also when it fails.

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
/// The leaders the simulator ends `file` (under scenarios/) with, seed 0, by node name.
fn simulated_leader(file: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios")
        .join(file);
    let scenario = conclave_sim::scenario::Scenario::load(&path).expect("the seed's scenario");
    let report = conclave_sim::run::run_scenario(
        &scenario,
        file,
        0,
        &conclave_sim::run::RunOptions::default(),
    );
    assert!(report.ok, "{file}: {:?}", report.expectations);
    let leaders: std::collections::BTreeSet<_> =
        report.leaders.values().flatten().cloned().collect();
    assert_eq!(leaders.len(), 1, "{file}: {:?}", report.leaders);
    leaders.into_iter().next().unwrap()
}

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
async fn registry_seed_000s_four_nodes_register_wait_list_and_elect_the_simulators_leader() {
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

    // Seed 000's nodes and their ids, as consul_four_nodes.ron has them.
    let ids = [
        ("node1", 41_829_377),
        ("node2", 97_300_114),
        ("node3", 63_553_190),
        ("node4", 12_774_925),
    ];
    let mut discoveries = Vec::new();
    for (name, priority) in ids {
        let (listener, address) = bind();
        let me = Peer {
            name: name.into(),
            priority,
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
        // Members in the order of their priorities, lowest first.
        let names: Vec<_> = cluster.members.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            ["node4", "node1", "node3", "node2"],
            "{} found",
            me.name
        );
        nodes
            .0
            .push(start_node::<Bully>(cluster, pid, fast_bully(), listener));
    }
    let leader = simulated_leader("consul_four_nodes.ron");
    assert_eq!(leader, "node2");
    nodes.wait_for_leader(&leader).await;
    nodes.stop().await;

    // What the binary does at a graceful stop; the foreign instance stays.
    for (name, _) in ids {
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
async fn gcd_seed_003s_four_students_join_wait_list_and_elect_the_simulators_leader() {
    let options = gcd::Options {
        listen: "127.0.0.1:0".parse().unwrap(),
        wire: gcd::Wire::Conclave,
    };
    let daemon = gcd::bind(options).await.expect("bind 127.0.0.1:0");
    let gcd_addr = daemon.local_addr();
    let daemon = tokio::spawn(daemon.run());

    // (days, student id) of gcd_lab_feigning.ron's alice, bob, carol and dave: the highest
    // pair is carol's (300, 2345678), not the highest student id (bob's).
    let identities = [
        (120, 4_123_456),
        (45, 4_987_654),
        (300, 2_345_678),
        (120, 4_500_000),
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
    // The simulator names its students; here a node's name is its identity pair.
    assert_eq!(simulated_leader("gcd_lab_feigning.ron"), "carol");
    nodes.wait_for_leader(&gcd_name(300, 2_345_678)).await;
    nodes.stop().await;
    daemon.abort();
}
