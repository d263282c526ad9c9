//! The runtime on real sockets (feature `net`): Bully clusters on 127.0.0.1, in-process and
//! as `conclave-node` processes, elect the highest node, elect again when it leaves or dies,
//! run the role-change hooks, write trace logs that conform to the model, and shrug off
//! garbage and forged frames. Every test is bounded in time and stops what it
//! started, also when it fails.
#![cfg(feature = "net")]

use conclave_algorithms::bully::{Bully, BullyMsg, BullyParams};
use conclave_algorithms::net::conform::replay;
use conclave_algorithms::net::runtime::{run_node, Listen, NodeConfig, RuntimeError, Timing};
use conclave_algorithms::net::{
    handshake, random_nonce, ClusterKey, Envelope, FrameDecoder, FrameEncoder, Hello, WireConfig,
};
use conclave_algorithms::{Cluster, Duration, Member, Pid, Role, View};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration as StdDuration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::timeout;

const NAMES: [&str; 4] = ["a", "b", "c", "d"];

/// Short timeouts, so that elections take a fraction of a second.
fn fast_params() -> BullyParams {
    BullyParams {
        answer_timeout: Duration::from_millis(100),
        coordinator_timeout: Duration::from_millis(300),
        heartbeat_interval: Duration::from_millis(100),
        heartbeat_timeout: Duration::from_millis(150),
        ..BullyParams::default()
    }
}

/// How long a new leader may take once the old one is gone: a heartbeat round to notice,
/// an election with its waits, twice over for a lower node's false start, and a second of
/// slack for a loaded machine.
fn election_bound(p: &BullyParams) -> StdDuration {
    let detect = p.heartbeat_interval + p.heartbeat_timeout;
    let elect = p.answer_timeout + p.coordinator_timeout;
    StdDuration::from_micros(2 * (detect + elect).as_micros()) + StdDuration::from_secs(1)
}

struct Node {
    stop: watch::Sender<bool>,
    view: watch::Receiver<View>,
    task: JoinHandle<Result<(), RuntimeError>>,
}

/// In-process nodes; aborted on drop (a test that fails leaves no task behind).
struct Nodes(Vec<Option<Node>>);

impl Drop for Nodes {
    fn drop(&mut self) {
        for node in self.0.iter().flatten() {
            node.task.abort();
        }
    }
}

impl Nodes {
    /// Four Bully nodes a..d with priorities 1..4, on ports from the OS.
    fn start(key: Option<&ClusterKey>) -> (Nodes, Cluster) {
        Nodes::start_with(key, None)
    }

    /// As [`Nodes::start`], every node obeying the block file `blocks` if given.
    fn start_with(key: Option<&ClusterKey>, blocks: Option<&Path>) -> (Nodes, Cluster) {
        Nodes::start_timed(key, blocks, test_timing())
    }

    /// As [`Nodes::start_with`], with the runtime's waits and sizes `timing`.
    fn start_timed(
        key: Option<&ClusterKey>,
        blocks: Option<&Path>,
        timing: Timing,
    ) -> (Nodes, Cluster) {
        // Outside the ephemeral range: a node restarts on its address.
        let listeners = conclave_testkit::ports::listeners(NAMES.len() as u16);
        let members = NAMES
            .iter()
            .zip(&listeners)
            .enumerate()
            .map(|(i, (name, listener))| {
                let mut member = Member::voter(name, i as u64 + 1);
                member.address = Some(listener.local_addr().unwrap().to_string());
                member
            })
            .collect();
        let cluster = Cluster::new(members);
        let nodes = listeners
            .into_iter()
            .enumerate()
            .map(|(i, listener)| {
                let listen = Listen::Listener(listener);
                let timing = timing.clone();
                Some(start_node(
                    &cluster,
                    Pid(i as u32),
                    listen,
                    key,
                    blocks,
                    timing,
                ))
            })
            .collect();
        (Nodes(nodes), cluster)
    }

    /// The nodes that lead, by Pid.
    fn leaders(&self) -> Vec<Pid> {
        (0..self.0.len())
            .filter(|&i| {
                let node = self.0[i].as_ref();
                node.is_some_and(|n| n.view.borrow().role == Role::Leader)
            })
            .map(|i| Pid(i as u32))
            .collect()
    }

    /// Whether every running node names `leader`, and `leader` is the leader.
    fn agree_on(&self, leader: Pid) -> bool {
        self.0.iter().enumerate().all(|(i, node)| {
            let Some(node) = node else { return true };
            let view = *node.view.borrow();
            let role = if Pid(i as u32) == leader {
                Role::Leader
            } else {
                Role::Follower
            };
            view.role == role && view.leader == Some(leader)
        })
    }

    /// Waits until every running node names `leader`; panics after `bound`.
    async fn wait_for_leader(&self, leader: Pid, bound: StdDuration) -> StdDuration {
        let started = tokio::time::Instant::now();
        let waited = timeout(bound, async {
            while !self.agree_on(leader) {
                tokio::time::sleep(StdDuration::from_millis(10)).await;
            }
        })
        .await;
        let views: Vec<_> = self
            .0
            .iter()
            .map(|n| n.as_ref().map(|n| *n.view.borrow()))
            .collect();
        assert!(
            waited.is_ok(),
            "no agreement on {leader:?} within {bound:?}: {views:?}"
        );
        started.elapsed()
    }
}

/// The runtime's defaults, but a lost peer is tried again within 200 ms.
fn test_timing() -> Timing {
    Timing {
        backoff_max: StdDuration::from_millis(200),
        ..Timing::default()
    }
}

/// One in-process node of `cluster` (fast Bully, seed = its index).
fn start_node(
    cluster: &Cluster,
    me: Pid,
    listen: Listen,
    key: Option<&ClusterKey>,
    blocks: Option<&Path>,
    timing: Timing,
) -> Node {
    let (stop, shutdown) = watch::channel(false);
    let (views, view) = watch::channel(View::DOWN);
    let mut config = NodeConfig::<Bully>::new(cluster.clone(), me, fast_params(), listen, shutdown);
    config.views = Some(views);
    config.key = key.cloned();
    config.seed = me.0 as u64;
    config.block_file = blocks.map(Path::to_path_buf);
    config.timing = timing;
    let task = tokio::spawn(run_node(config));
    Node { stop, view, task }
}

/// Replaces the block file at once (a temporary file renamed over it), as `conclave
/// cluster block` does.
fn write_blocks(path: &Path, text: &str) {
    let temporary = path.with_extension("tmp");
    std::fs::write(&temporary, text).unwrap();
    std::fs::rename(&temporary, path).unwrap();
}

/// Seed 002's "Block Connections": the leader d blocked from everyone is a partition
/// {a, b, c} | {d}. The others elect c while d stays in office: two leaders, as the
/// simulator predicts (bully_partition_split.ron). Emptying the file heals the links, and
/// plain Bully keeps both leaders (bully_partition_heal.ron: nothing makes two coordinators
/// meet); d's restart on the same address makes it the one leader again.
#[tokio::test]
async fn bully_on_sockets_obeys_the_block_file_two_leaders_then_one_after_heal_and_restart() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("runtime-blocks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let blocks = dir.join("blocks");
    let _ = std::fs::remove_file(&blocks);
    let (mut nodes, cluster) = Nodes::start_with(None, Some(&blocks));
    let bound = election_bound(&fast_params());
    nodes.wait_for_leader(Pid(3), bound).await;

    write_blocks(&blocks, "# d cut off\na d\nb d\nc d\n");
    let d = nodes.0[3].take().unwrap();
    nodes.wait_for_leader(Pid(2), bound).await;
    assert_eq!(
        d.view.borrow().role,
        Role::Leader,
        "d stays in office alone"
    );
    nodes.0[3] = Some(d);
    assert_eq!(nodes.leaders(), vec![Pid(2), Pid(3)]);

    // Healed: the two leaders stay (no step of plain Bully makes them meet).
    write_blocks(&blocks, "");
    tokio::time::sleep(bound).await;
    assert_eq!(nodes.leaders(), vec![Pid(2), Pid(3)]);

    // d restarts on its address: its election reaches everyone, and it leads alone.
    let d = nodes.0[3].take().unwrap();
    d.stop.send_replace(true);
    let stopped = timeout(StdDuration::from_secs(2), d.task).await;
    assert!(matches!(stopped, Ok(Ok(Ok(())))), "{stopped:?}");
    let address = cluster.member(Pid(3)).address.clone().unwrap();
    let listen = Listen::Address(address);
    let timing = test_timing();
    nodes.0[3] = Some(start_node(
        &cluster,
        Pid(3),
        listen,
        None,
        Some(&blocks),
        timing,
    ));
    nodes.wait_for_leader(Pid(3), bound).await;
    assert_eq!(nodes.leaders(), vec![Pid(3)]);
}

/// A block between two followers (a b) drops their messages both ways, and nothing else:
/// the leader keeps its office. The positive control of the test above's partition.
#[tokio::test]
async fn a_blocked_pair_of_followers_leaves_the_leader_in_office() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("runtime-blocks-followers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let blocks = dir.join("blocks");
    write_blocks(&blocks, "a b\n");
    let (nodes, _) = Nodes::start_with(None, Some(&blocks));
    let bound = election_bound(&fast_params());
    nodes.wait_for_leader(Pid(3), bound).await;
    tokio::time::sleep(StdDuration::from_secs(1)).await;
    assert!(nodes.agree_on(Pid(3)));
}

#[tokio::test]
async fn bully_on_sockets_elects_the_highest_then_the_next_after_a_graceful_leave() {
    let (mut nodes, _) = Nodes::start(None);
    let bound = election_bound(&fast_params());
    nodes.wait_for_leader(Pid(3), bound).await;

    let d = nodes.0[3].take().unwrap();
    d.stop.send_replace(true);
    let stopped = timeout(StdDuration::from_secs(2), d.task).await;
    assert!(
        matches!(stopped, Ok(Ok(Ok(())))),
        "d did not stop cleanly: {stopped:?}"
    );
    nodes.wait_for_leader(Pid(2), bound).await;

    // The others stop gracefully too, each within the flush bound.
    for node in nodes.0.iter_mut().filter_map(Option::take) {
        node.stop.send_replace(true);
        let stopped = timeout(StdDuration::from_secs(2), node.task).await;
        assert!(matches!(stopped, Ok(Ok(Ok(())))), "{stopped:?}");
    }
}

#[tokio::test]
async fn bully_on_sockets_elects_the_next_highest_after_the_leader_is_killed() {
    let (mut nodes, _) = Nodes::start(None);
    let bound = election_bound(&fast_params());
    nodes.wait_for_leader(Pid(3), bound).await;

    // A crash: the task is aborted, its sockets close, nothing says goodbye.
    let d = nodes.0[3].take().unwrap();
    d.task.abort();
    let _ = d.task.await;
    nodes.wait_for_leader(Pid(2), bound).await;
}

/// A peer that speaks no protocol, and one that forges a frame with the cluster key's
/// Hello right but a wrong tag, change nothing; the same frame rightly tagged does (the
/// positive control: the connection would have carried a message).
#[tokio::test]
async fn garbage_and_forged_frames_leave_the_leader_in_office() {
    let key = ClusterKey::from_bytes(b"a cluster key of 32 bytes, or so").unwrap();
    let (nodes, cluster) = Nodes::start(Some(&key));
    let bound = election_bound(&fast_params());
    nodes.wait_for_leader(Pid(3), bound).await;
    let d_address = cluster.member(Pid(3)).address.clone().unwrap();
    let mut d_view = nodes.0[3].as_ref().unwrap().view.clone();
    d_view.borrow_and_update();

    let mut garbage = TcpStream::connect(&d_address).await.unwrap();
    garbage.write_all(&[0xff; 64]).await.unwrap();
    garbage.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();

    // "a" claims the office in a frame whose tag is broken: refused.
    let mut forged = Peer::connect(&d_address, &key, "a").await;
    let mut frame = forged.coordinator();
    *frame.last_mut().unwrap() ^= 1;
    forged.stream.write_all(&frame).await.unwrap();

    tokio::time::sleep(StdDuration::from_millis(500)).await;
    assert!(
        !d_view.has_changed().unwrap(),
        "d's view changed: {:?}",
        *d_view.borrow()
    );
    assert!(nodes.agree_on(Pid(3)));
    assert!(nodes.0.iter().flatten().all(|n| !n.task.is_finished()));

    // Positive control: the same claim rightly tagged reaches d, which bullies "a" back
    // (it runs an election, so its view changes).
    let mut honest = Peer::connect(&d_address, &key, "a").await;
    let frame = honest.coordinator();
    honest.stream.write_all(&frame).await.unwrap();
    let changed = timeout(StdDuration::from_secs(1), d_view.changed()).await;
    assert!(matches!(changed, Ok(Ok(()))), "d never saw the claim");
    nodes.wait_for_leader(Pid(3), bound).await;
}

/// Whether the node closed `stream` (end of stream or an error) within `wait`.
async fn closed_within(stream: &mut TcpStream, wait: StdDuration) -> bool {
    let mut byte = [0u8; 64];
    loop {
        match timeout(wait, stream.read(&mut byte)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            // The node's Hello: read on.
            Ok(Ok(_)) => {}
        }
    }
}

/// A flood of 200 connections to the leader, with incoming connections capped at 64 and
/// a 1 s handshake: 25 writing garbage, 150 held silent (those past the cap closed at once,
/// the rest at the handshake timeout), 25 closed at once. The leader keeps running and
/// keeps its office (its view never changes), every connection is closed by the node
/// within the handshake timeout and a second, and then an honest peer still gets in (the
/// positive control: the node accepts connections again).
#[tokio::test]
async fn a_flood_of_connections_leaves_the_leader_in_office_and_is_closed_in_bounded_time() {
    let key = ClusterKey::from_bytes(b"a cluster key of 32 bytes, or so").unwrap();
    let timing = Timing {
        handshake_timeout: StdDuration::from_secs(1),
        max_incoming: 64,
        ..test_timing()
    };
    let (nodes, cluster) = Nodes::start_timed(Some(&key), None, timing);
    let bound = election_bound(&fast_params());
    nodes.wait_for_leader(Pid(3), bound).await;
    let d_address = cluster.member(Pid(3)).address.clone().unwrap();
    let mut d_view = nodes.0[3].as_ref().unwrap().view.clone();
    d_view.borrow_and_update();
    let started = tokio::time::Instant::now();

    let mut garbage = Vec::new();
    for i in 0..25u8 {
        let mut stream = TcpStream::connect(&d_address).await.unwrap();
        let _ = stream.write_all(&[i; 256]).await;
        garbage.push(stream);
    }
    let mut silent = Vec::new();
    for _ in 0..150 {
        silent.push(TcpStream::connect(&d_address).await.unwrap());
    }
    for _ in 0..25 {
        drop(TcpStream::connect(&d_address).await.unwrap());
    }

    // Past the cap: closed long before the handshake timeout.
    tokio::time::sleep(StdDuration::from_millis(200)).await;
    let mut early = 0;
    for stream in &mut silent {
        if closed_within(stream, StdDuration::from_millis(1)).await {
            early += 1;
        }
    }
    assert!(early >= 150 - 64, "only {early} of 150 closed at once");

    // Every connection closed within the handshake timeout and a second.
    for stream in garbage.iter_mut().chain(&mut silent) {
        let left = (StdDuration::from_secs(2)).saturating_sub(started.elapsed());
        assert!(
            closed_within(stream, left).await,
            "a connection stayed open"
        );
    }
    assert!(
        !d_view.has_changed().unwrap(),
        "d's view changed: {:?}",
        *d_view.borrow()
    );
    assert!(nodes.agree_on(Pid(3)));
    assert!(nodes.0.iter().flatten().all(|n| !n.task.is_finished()));
    eprintln!(
        "flood: {early} of 150 refused at once, all 200 closed after {:?}",
        started.elapsed()
    );

    let mut honest = Peer::connect(&d_address, &key, "a").await;
    let frame = honest.coordinator();
    honest.stream.write_all(&frame).await.unwrap();
    let changed = timeout(StdDuration::from_secs(1), d_view.changed()).await;
    assert!(matches!(changed, Ok(Ok(()))), "d never saw the claim");
    nodes.wait_for_leader(Pid(3), bound).await;
}

/// A hand-made peer of a keyed cluster, after the handshake.
struct Peer {
    stream: TcpStream,
    encoder: FrameEncoder,
    name: String,
}

impl Peer {
    async fn connect(address: &str, key: &ClusterKey, name: &str) -> Peer {
        let wire = WireConfig::new(Some(key.clone()));
        let mut stream = TcpStream::connect(address).await.unwrap();
        let nonce = random_nonce().unwrap();
        let mut encoder = FrameEncoder::new(&wire);
        let mut decoder = FrameDecoder::<BullyMsg>::new(&wire, nonce);
        let (mut reader, mut writer) = stream.split();
        let hello = Hello::new("conclave", name, nonce);
        let shaken = timeout(
            StdDuration::from_secs(2),
            handshake(&mut reader, &mut writer, &mut encoder, &mut decoder, &hello),
        )
        .await;
        assert!(matches!(shaken, Ok(Ok(_))), "{shaken:?}");
        Peer {
            stream,
            encoder,
            name: name.to_string(),
        }
    }

    fn coordinator(&mut self) -> Vec<u8> {
        let envelope = Envelope::Msg {
            from: self.name.clone(),
            msg: BullyMsg::Coordinator,
        };
        self.encoder.encode(&envelope).unwrap().to_vec()
    }
}

/// `conclave-node` processes, killed on drop.
struct Processes(Vec<Option<Child>>);

impl Drop for Processes {
    fn drop(&mut self) {
        for child in self.0.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The last `role` line of a trace log: (role, leader).
fn last_role(path: &Path) -> Option<(String, Option<String>)> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .rev()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|event| event["event"] == "role")
        .map(|event| {
            let role = event["role"].as_str().unwrap_or_default().to_string();
            (role, event["leader"].as_str().map(str::to_string))
        })
}

/// Waits until every log in `logs` shows `leader` in office (its own) and followed.
fn wait_for_leader_in_logs(logs: &[(&str, PathBuf)], leader: &str, bound: StdDuration) {
    let started = std::time::Instant::now();
    loop {
        let roles: Vec<_> = logs.iter().map(|(_, log)| last_role(log)).collect();
        let agreed = logs.iter().zip(&roles).all(|((name, _), role)| {
            let want = if *name == leader {
                "Leader"
            } else {
                "Follower"
            };
            role.as_ref()
                .is_some_and(|(r, l)| r == want && l.as_deref() == Some(leader))
        });
        if agreed {
            return;
        }
        assert!(
            started.elapsed() < bound,
            "no agreement on {leader} within {bound:?}: {roles:?}"
        );
        std::thread::sleep(StdDuration::from_millis(20));
    }
}

#[test]
fn conclave_node_processes_elect_again_when_the_leaders_process_is_killed() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("runtime-processes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Free ports outside the ephemeral range, released for the processes to bind.
    let ports = conclave_testkit::ports::ports(NAMES.len() as u16);
    let peers: Vec<String> = NAMES
        .iter()
        .zip(&ports)
        .map(|(name, port)| format!("{name}=127.0.0.1:{port}"))
        .collect();
    let params = r#"(answer_timeout: "100ms", coordinator_timeout: "300ms", heartbeat_interval: "100ms", heartbeat_timeout: "150ms")"#;
    let logs: Vec<(&str, PathBuf)> = NAMES
        .iter()
        .map(|name| (*name, dir.join(format!("{name}.jsonl"))))
        .collect();
    let mut processes = Processes(Vec::new());
    for (i, (name, log)) in logs.iter().enumerate() {
        let _ = std::fs::remove_file(log);
        let stderr = std::fs::File::create(dir.join(format!("{name}.stderr"))).unwrap();
        // Seed 004's master and slave scripts: each role change appends a line.
        let roles = dir.join(format!("{name}.roles"));
        let _ = std::fs::remove_file(&roles);
        let hook = |role: &str| {
            format!(
                "echo {role} $CONCLAVE_NODE $CONCLAVE_ROLE $CONCLAVE_LEADER >> '{}'",
                roles.display()
            )
        };
        let child = Command::new(env!("CARGO_BIN_EXE_conclave-node"))
            .args(["--algorithm", "bully", "--name", name])
            .args(["--peers", &peers.join(",")])
            .args(["--params", params, "--seed", &i.to_string()])
            .args([
                "--on-leader",
                &hook("master"),
                "--on-follower",
                &hook("slave"),
            ])
            .arg("--trace-log")
            .arg(log)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        processes.0.push(Some(child));
    }
    let bound = election_bound(&fast_params()) + StdDuration::from_secs(2);
    wait_for_leader_in_logs(&logs, "d", bound);
    // The hooks ran: d's master script, the others' slave scripts. (A hook runs when the
    // role changes: a follower that first followed another node and then d ran its slave
    // script once, naming the first.)
    for name in NAMES {
        let line = if name == "d" {
            "master d Leader d".to_string()
        } else {
            format!("slave {name} Follower ")
        };
        wait_for_line(&dir.join(format!("{name}.roles")), &line, bound);
    }

    let mut d = processes.0[3].take().unwrap();
    d.kill().unwrap();
    d.wait().unwrap();
    wait_for_leader_in_logs(&logs[..3], "c", bound);
    wait_for_line(&dir.join("c.roles"), "master c Leader c", bound);

    // `q` and Enter stops the others gracefully: each exits 0 and logs its stop.
    for (child, (name, log)) in processes.0.iter_mut().zip(&logs) {
        let Some(child) = child else { continue };
        child.stdin.take().unwrap().write_all(b"q\n").unwrap();
        let started = std::time::Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            assert!(
                started.elapsed() < StdDuration::from_secs(5),
                "{name} did not stop"
            );
            std::thread::sleep(StdDuration::from_millis(20));
        };
        assert!(status.success(), "{name}: {status}");
        let text = std::fs::read_to_string(log).unwrap();
        assert!(
            text.lines().last().unwrap().contains("\"event\":\"stop\""),
            "{name}"
        );
    }
    // Every log, the killed d's too, is what the model does with the same inputs.
    for (name, log) in &logs {
        let text = std::fs::read_to_string(log).unwrap();
        let replayed = replay::<Bully>(&text).unwrap_or_else(|m| panic!("{name}: {m}"));
        assert!(
            replayed.inputs > 0 && replayed.outputs > 0,
            "{name}: {replayed:?}"
        );
    }
}

/// Waits until `file` has a line that starts with `line`; panics after `bound`.
fn wait_for_line(file: &Path, line: &str, bound: StdDuration) {
    let started = std::time::Instant::now();
    loop {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        if text.lines().any(|l| l.starts_with(line)) {
            return;
        }
        assert!(
            started.elapsed() < bound,
            "{} has no line {line:?} after {bound:?}: {text:?}",
            file.display()
        );
        std::thread::sleep(StdDuration::from_millis(20));
    }
}

#[test]
fn conclave_node_refuses_bad_params_with_status_2() {
    let output = Command::new(env!("CARGO_BIN_EXE_conclave-node"))
        .args([
            "--algorithm",
            "bully",
            "--name",
            "a",
            "--peers",
            "a=127.0.0.1:1",
        ])
        .args(["--params", "(answer_timeout: 5)"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--params"), "{stderr}");
}

/// Seed 002's `server_config`: one `ip:port` a line, named by it, the last line highest.
/// The highest node alone (the other line never starts) elects itself, and stops on `q`.
#[test]
fn conclave_node_reads_a_server_config_and_the_last_line_is_highest() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("runtime-server-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let addresses: Vec<String> = conclave_testkit::ports::ports(2)
        .into_iter()
        .map(|port| format!("127.0.0.1:{port}"))
        .collect();
    let config = dir.join("server_config");
    let text = format!("# the lab's nodes\n{}\n\n{}\n", addresses[0], addresses[1]);
    std::fs::write(&config, text).unwrap();
    let log = dir.join("highest.jsonl");
    let _ = std::fs::remove_file(&log);
    let child = Command::new(env!("CARGO_BIN_EXE_conclave-node"))
        .args(["--algorithm", "bully", "--name", &addresses[1], "--config"])
        .arg(&config)
        .args(["--params", r#"(answer_timeout: "100ms")"#, "--seed", "7"])
        .arg("--trace-log")
        .arg(&log)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut processes = Processes(vec![Some(child)]);
    let logs = [(addresses[1].as_str(), log.clone())];
    wait_for_leader_in_logs(&logs, &addresses[1], StdDuration::from_secs(3));
    let start = std::fs::read_to_string(&log).unwrap();
    let start: serde_json::Value = serde_json::from_str(start.lines().next().unwrap()).unwrap();
    assert_eq!(start["event"], "start");
    assert_eq!(start["seed"], 7);
    assert_eq!(start["members"][0]["priority"], 1);
    assert_eq!(start["members"][1]["priority"], 2);

    let child = processes.0[0].as_mut().unwrap();
    child.stdin.take().unwrap().write_all(b"q\n").unwrap();
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(
            started.elapsed() < StdDuration::from_secs(5),
            "did not stop"
        );
        std::thread::sleep(StdDuration::from_millis(20));
    }
}

#[test]
fn conclave_node_refuses_priorities_given_to_some_members_only() {
    let output = Command::new(env!("CARGO_BIN_EXE_conclave-node"))
        .args(["--algorithm", "quorum", "--name", "a"])
        .args(["--peers", "a:5=127.0.0.1:1,b=127.0.0.1:2"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("every member a priority"), "{stderr}");
}
