//! `conclave gcd` over real TCP on 127.0.0.1: JOIN and the member list over issue 9's frames
//! and over the lab's pickles, joins again, hostile pickles refused while the daemon keeps
//! serving, and Python lab nodes (standard library only) that join and elect the leader the
//! simulator predicts for the same identities, alone and together with Conclave nodes on the
//! lab's wire (`conclave_algorithms::net::lab`).

use conclave_algorithms::gcd::GcdBully;
use conclave_algorithms::net::conform::replay;
use conclave_algorithms::net::lab::{run_lab_node, LabConfig, LabView};
use conclave_algorithms::net::runtime::{Listen, RuntimeError};
use conclave_algorithms::{Role, View};
use conclave_services::gcd::pickle::{self, Value};
use conclave_services::gcd::wire::{request, GcdAnswer, GcdRequest, Member};
use conclave_services::gcd::{bind, Options, Wire};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn start(wire: Wire) -> SocketAddr {
    let options = Options {
        listen: "127.0.0.1:0".parse().unwrap(),
        wire,
    };
    let gcd = bind(options).await.expect("bind 127.0.0.1:0");
    let addr = gcd.local_addr();
    tokio::spawn(gcd.run());
    addr
}

fn join(days: u32, student_id: u32, port: u16) -> GcdRequest {
    GcdRequest::Join {
        days,
        student_id,
        host: "localhost".into(),
        port,
    }
}

fn member(days: u32, student_id: u32, port: u16) -> Member {
    Member {
        days,
        student_id,
        host: "127.0.0.1".into(),
        port,
    }
}

#[tokio::test]
async fn conclave_wire_join_answers_every_member_and_a_rejoin_updates_the_address() {
    let gcd = start(Wire::Conclave).await;
    let a = request(gcd, "alice", &join(120, 4_123_456, 50001))
        .await
        .unwrap();
    assert_eq!(a, GcdAnswer::Members(vec![member(120, 4_123_456, 50001)]));
    let b = request(gcd, "bob", &join(45, 4_987_654, 50002))
        .await
        .unwrap();
    let both = vec![member(45, 4_987_654, 50002), member(120, 4_123_456, 50001)];
    assert_eq!(b, GcdAnswer::Members(both));
    let again = request(gcd, "alice", &join(120, 4_123_456, 50009))
        .await
        .unwrap();
    let moved = vec![member(45, 4_987_654, 50002), member(120, 4_123_456, 50009)];
    assert_eq!(again, GcdAnswer::Members(moved.clone()));
    // Refused requests change nothing.
    let bad = request(gcd, "eve", &join(0, 4_000_000, 50003))
        .await
        .unwrap();
    assert_eq!(
        bad,
        GcdAnswer::Refused(
            "malformed process id (0, 4000000), expected (days_to_next_birthday in 1..=365, \
             student_id in 1000000..=9999999)"
                .into()
        )
    );
    let bad_port = request(gcd, "eve", &join(1, 4_000_000, 0)).await.unwrap();
    assert_eq!(
        bad_port,
        GcdAnswer::Refused("invalid port number 0, expected 1..=65535".into())
    );
    // Garbage instead of frames: the connection is closed, the daemon keeps serving.
    let mut s = TcpStream::connect(gcd).await.unwrap();
    s.write_all(b"\x00\x00\x00\x05\x07\x00junk").await.unwrap();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest).await;
    let list = request(gcd, "carol", &GcdRequest::Members).await.unwrap();
    assert_eq!(list, GcdAnswer::Members(moved));
}

/// One lab message on its own connection: `bytes`, then the daemon's answer until it closes.
async fn lab_exchange(gcd: SocketAddr, bytes: &[u8], half_close: bool) -> Value {
    let mut s = TcpStream::connect(gcd).await.unwrap();
    let _ = s.write_all(bytes).await;
    if half_close {
        let _ = s.shutdown().await;
    }
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut answer))
        .await
        .expect("the daemon answers within 10 s")
        .expect("read the answer");
    pickle::read(&answer, 1 << 16).unwrap_or_else(|e| panic!("answer {answer:?}: {e}"))
}

fn lab_join(days: i64, student_id: i64, host: &str, port: i64) -> Vec<u8> {
    let t = Value::Tuple;
    pickle::write(&t(vec![
        Value::str("JOIN"),
        t(vec![
            t(vec![Value::Int(days), Value::Int(student_id)]),
            t(vec![Value::str(host), Value::Int(port)]),
        ]),
    ]))
}

fn lab_members(pairs: &[(i64, i64, i64)]) -> Value {
    Value::Dict(
        pairs
            .iter()
            .map(|&(d, s, p)| {
                (
                    Value::Tuple(vec![Value::Int(d), Value::Int(s)]),
                    Value::Tuple(vec![Value::str("127.0.0.1"), Value::Int(p)]),
                )
            })
            .collect(),
    )
}

#[tokio::test]
async fn lab_wire_join_answers_the_member_dict_and_a_rejoin_updates_the_address() {
    let gcd = start(Wire::Lab).await;
    // Python 3.11's default pickle (protocol 4) of ('JOIN', ((120, 4123456), ('127.0.0.1', 50001))),
    // sent without closing the sending half, as a lab node does.
    let p4 = b"\x80\x04\x95&\x00\x00\x00\x00\x00\x00\x00\x8c\x04JOIN\x94KxJ@\xeb>\x00\x86\x94\x8c\t127.0.0.1\x94MQ\xc3\x86\x94\x86\x94\x86\x94.";
    let a = lab_exchange(gcd, p4, false).await;
    assert_eq!(a, lab_members(&[(120, 4_123_456, 50001)]));
    let b = lab_exchange(gcd, &lab_join(45, 4_987_654, "localhost", 50002), false).await;
    assert_eq!(
        b,
        lab_members(&[(45, 4_987_654, 50002), (120, 4_123_456, 50001)])
    );
    let again = lab_exchange(gcd, &lab_join(120, 4_123_456, "localhost", 50009), true).await;
    assert_eq!(
        again,
        lab_members(&[(45, 4_987_654, 50002), (120, 4_123_456, 50009)])
    );
}

/// Each hostile or malformed request gets a `str` answer, and the member list is unchanged.
#[tokio::test]
async fn lab_wire_refuses_hostile_pickles_and_keeps_serving() {
    let gcd = start(Wire::Lab).await;
    let one = lab_exchange(gcd, &lab_join(10, 1_000_001, "localhost", 40001), false).await;
    let mut huge_len = b"\x80\x04\x8d".to_vec();
    huge_len.extend_from_slice(&u64::MAX.to_le_bytes());
    let mut deep = b"\x80\x02".to_vec();
    deep.extend(std::iter::repeat_n(b'(', 200));
    let mut nested = b"\x80\x02)".to_vec();
    nested.extend(std::iter::repeat_n(0x85, 100));
    nested.push(b'.');
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            // pickle.dumps(os.system, 2)
            "GLOBAL os.system",
            b"\x80\x02cposix\nsystem\nq\x00.".to_vec(),
            "Expected a pickled message: opcode 0x63 (GLOBAL) at byte 2 is not allowed",
        ),
        (
            // class E: __reduce__ = lambda self: (os.system, ('true',)); pickle.dumps(E(), 4)
            "STACK_GLOBAL and REDUCE",
            b"\x80\x04\x95\x1f\x00\x00\x00\x00\x00\x00\x00\x8c\x05posix\x94\x8c\x06system\x94\x93\x94\x8c\x04true\x94\x85\x94R\x94.".to_vec(),
            "Expected a pickled message: opcode 0x93 (STACK_GLOBAL) at byte 28 is not allowed",
        ),
        ("a string of 2^64 - 1 bytes", huge_len, "Expected a pickled message: the pickle ends before its STOP opcode"),
        ("200 MARKs", deep, "Expected a pickled message: containers nested deeper than 16"),
        ("100 nested tuples", nested, "Expected a pickled message: containers nested deeper than 16"),
        ("truncated", lab_join(10, 1_000_002, "localhost", 40002)[..20].to_vec(), "Expected a pickled message: the pickle ends before its STOP opcode"),
        ("over 1024 bytes", lab_join(10, 1_000_002, &"a".repeat(2000), 40002), "Expected a pickled message: the pickle is longer than 1024 bytes"),
        ("not a pickle", b"HEAD / HTTP/1.0\r\n\r\n".to_vec(), "Expected a pickled message: unknown opcode 0x48 at byte 0"),
        ("ELECTION to the daemon", pickle::write(&Value::Tuple(vec![Value::str("ELECTION"), Value::Dict(vec![])])), "Unexpected message: ELECTION"),
        ("a bare 'JOIN'", pickle::write(&Value::str("JOIN")), "Malformed message, expected (message_name, message_data)"),
        ("student id out of range", lab_join(10, 999, "localhost", 40002), "malformed process id (10, 999), expected (days_to_next_birthday in 1..=365, student_id in 1000000..=9999999)"),
        ("port out of range", lab_join(10, 1_000_002, "localhost", 70000), "invalid port number 70000, expected 1..=65535"),
    ];
    for (what, bytes, expected) in cases {
        let answer = lab_exchange(gcd, &bytes, true).await;
        let Value::Str(text) = &answer else {
            panic!("{what}: answered {answer:?}, expected a str");
        };
        assert!(text.starts_with(expected), "{what}: answered {text:?}");
    }
    let after = lab_exchange(gcd, &lab_join(10, 1_000_001, "localhost", 40001), false).await;
    assert_eq!(after, one);
}

/// Kills the Python nodes when the test ends, passed or failed.
struct Nodes(Vec<Child>);

impl Drop for Nodes {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts the Python lab node (`tests/py/gcd_lab_node.py`) of `identity` against the
/// daemon; a thread sends its stdout lines, tagged `i`, to `lines`.
fn python_lab_node(
    gcd: SocketAddr,
    (days, student_id): (u32, u32),
    i: usize,
    lines: &mpsc::Sender<(usize, String)>,
) -> Child {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/gcd_lab_node.py");
    let mut child = Command::new("python3")
        .args([
            script,
            "127.0.0.1",
            &gcd.port().to_string(),
            &days.to_string(),
            &student_id.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3 runs");
    let stdout = child.stdout.take().unwrap();
    let tx = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send((i, line));
        }
    });
    child
}

/// The leader the simulator predicts for lab nodes of these identities joining in this order,
/// one second apart.
fn predicted_leader(identities: &[(u32, u32)]) -> (u32, u32) {
    use conclave_sim::run::{run_scenario, RunOptions};
    use conclave_sim::scenario::Scenario;
    let nodes: Vec<String> = identities
        .iter()
        .enumerate()
        .map(|(i, (d, s))| format!(r#"(name: "n{i}", identity: ({d}, {s}), start: "{i}s")"#))
        .collect();
    let src = format!(
        r#"Scenario(
            algorithm: GcdBully(answer_timeout: "1.5s", coordinator_timeout: "3s"),
            nodes: [{}],
            network: (delay: Constant("1ms")),
            run_for: "20s",
            expect: [Agreement],
        )"#,
        nodes.join(", ")
    );
    let scenario = Scenario::from_str(&src, "gcd_lab.ron").unwrap_or_else(|e| panic!("{e}"));
    let report = run_scenario(&scenario, "gcd_lab.ron", 0, &RunOptions::default());
    assert!(report.ok, "{:?}", report.expectations);
    let leader = report.leaders["n0"].clone().expect("the simulator elects");
    let index: usize = leader[1..].parse().unwrap();
    identities[index]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_lab_nodes_join_the_daemon_and_elect_the_leader_the_simulator_predicts() {
    let gcd = start(Wire::Lab).await;
    // carol (300 days) is highest; two share 120 days, so the student id decides between
    // them; the highest joins third, the lowest last.
    let identities = [
        (120, 4_123_456),
        (45, 4_987_654),
        (300, 2_345_678),
        (120, 4_500_000),
        (10, 9_999_999),
    ];
    let expected = predicted_leader(&identities);
    assert_eq!(expected, (300, 2_345_678), "highest identity pair wins");
    let (lines_tx, lines) = mpsc::channel::<(usize, String)>();
    let mut nodes = Nodes(Vec::new());
    let started = Instant::now();
    let mut leaders = vec![None; identities.len()];
    for (i, (days, student_id)) in identities.iter().enumerate() {
        nodes
            .0
            .push(python_lab_node(gcd, (*days, *student_id), i, &lines_tx));
        // The next node starts once this one has joined (the simulator's order).
        wait_for_lines(&lines, &mut leaders, |from, line, _| {
            from == i && line.starts_with("joined ")
        });
    }
    let want = format!("leader days={} student_id={}", expected.0, expected.1);
    wait_for_lines(&lines, &mut leaders, |_, _, leaders| {
        leaders.iter().all(|l| l.as_deref() == Some(want.as_str()))
    });
    eprintln!(
        "every node names {want} {:.1} s after the first started",
        started.elapsed().as_secs_f64()
    );
}

/// Reads node lines until `done`, recording each node's latest leader; panics after 30 s.
fn wait_for_lines(
    lines: &mpsc::Receiver<(usize, String)>,
    leaders: &mut [Option<String>],
    mut done: impl FnMut(usize, &str, &[Option<String>]) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let (i, line) = lines
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no expected line within 30 s; leaders {leaders:?}"));
        eprintln!("node{i} {line}");
        if line.starts_with("leader ") {
            leaders[i] = Some(line.clone());
        }
        if done(i, &line, leaders) {
            return;
        }
    }
}

/// A Conclave node on the lab's wire in this process (`conclave-node --wire lab`'s loop);
/// stopped when dropped.
struct ConclaveLabNode {
    port: u16,
    views: tokio::sync::watch::Receiver<LabView>,
    stop: tokio::sync::watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<Result<(), RuntimeError>>>,
    trace_log: std::path::PathBuf,
}

impl ConclaveLabNode {
    /// Stops the node gracefully and waits (at most 10 s) until its trace log is whole.
    async fn stop(mut self) -> std::path::PathBuf {
        self.stop.send_replace(true);
        let task = self.task.take().unwrap();
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("the lab node stops within 10 s")
            .unwrap()
            .expect("the lab node ran");
        self.trace_log.clone()
    }
}

impl Drop for ConclaveLabNode {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

fn start_conclave_lab_node(gcd: SocketAddr, identity: (u32, u32)) -> ConclaveLabNode {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let port = listener.local_addr().unwrap().port();
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let starting = LabView {
        view: View::new(Role::Idle, None, "Starting"),
        leader: None,
    };
    let (views_tx, views) = tokio::sync::watch::channel(starting);
    // Tests run side by side in this process, some with the same identities: a file each.
    static NODES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NODES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let trace_log = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "gcd-lab-{}-{}-{}-{n}.jsonl",
        identity.0,
        identity.1,
        std::process::id()
    ));
    let mut config = LabConfig::new(gcd, identity, Listen::Listener(listener), shutdown);
    config.views = Some(views_tx);
    config.trace_log = Some(trace_log.clone());
    let task = Some(tokio::spawn(run_lab_node(config)));
    ConclaveLabNode {
        port,
        views,
        stop,
        task,
        trace_log,
    }
}

/// A node of the mixed group: a Python lab process, or a Conclave lab node.
enum Kind {
    Python,
    Conclave,
}

/// What the test knows of each node: whether it joined, and the leader it last named.
#[derive(Clone, Debug, Default)]
struct Seen {
    joined: bool,
    leader: Option<(u32, u32)>,
}

/// Takes in the Python nodes' lines and the Conclave nodes' views until `done`, polling
/// every 20 ms; panics after 30 s.
async fn wait_mixed(
    lines: &mpsc::Receiver<(usize, String)>,
    conclave: &[(usize, &ConclaveLabNode)],
    seen: &mut [Seen],
    done: impl Fn(&[Seen]) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        while let Ok((i, line)) = lines.try_recv() {
            eprintln!("python node{i} {line}");
            if line.starts_with("joined ") {
                seen[i].joined = true;
            }
            if let Some(rest) = line.strip_prefix("leader ") {
                let numbers: Vec<u32> = rest
                    .split(' ')
                    .filter_map(|kv| kv.split_once('=')?.1.parse().ok())
                    .collect();
                seen[i].leader = Some((numbers[0], numbers[1]));
            }
        }
        for &(i, node) in conclave {
            let view = node.views.borrow().clone();
            seen[i].joined |= !matches!(view.view.status, "Starting" | "Joining");
            seen[i].leader = view.leader;
        }
        if done(seen) {
            return;
        }
        assert!(Instant::now() < deadline, "not done within 30 s: {seen:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_and_conclave_lab_nodes_join_one_daemon_and_elect_the_predicted_leader() {
    let gcd = start(Wire::Lab).await;
    // Python, Conclave, Python, Conclave, Python, joining in this order: a Conclave node
    // follows a Python leader first, and the highest identity (a Conclave node) joins fourth.
    let group = [
        (Kind::Python, (120, 4_123_456)),
        (Kind::Conclave, (45, 4_987_654)),
        (Kind::Python, (120, 4_500_000)),
        (Kind::Conclave, (300, 2_345_678)),
        (Kind::Python, (10, 9_999_999)),
    ];
    let identities: Vec<(u32, u32)> = group.iter().map(|(_, id)| *id).collect();
    let expected = predicted_leader(&identities);
    assert_eq!(expected, (300, 2_345_678), "highest identity pair wins");
    let (lines_tx, lines) = mpsc::channel::<(usize, String)>();
    let mut python = Nodes(Vec::new());
    let mut conclave = Vec::new();
    let mut seen = vec![Seen::default(); group.len()];
    let started = Instant::now();
    for (i, (kind, (days, student_id))) in group.iter().enumerate() {
        match kind {
            Kind::Python => {
                python
                    .0
                    .push(python_lab_node(gcd, (*days, *student_id), i, &lines_tx));
            }
            Kind::Conclave => {
                conclave.push((i, start_conclave_lab_node(gcd, (*days, *student_id))));
            }
        }
        let watched: Vec<(usize, &ConclaveLabNode)> =
            conclave.iter().map(|(i, n)| (*i, n)).collect();
        // The next node starts once this one has joined (the simulator's order).
        wait_mixed(&lines, &watched, &mut seen, |seen| seen[i].joined).await;
    }
    let watched: Vec<(usize, &ConclaveLabNode)> = conclave.iter().map(|(i, n)| (*i, n)).collect();
    wait_mixed(&lines, &watched, &mut seen, |seen| {
        seen.iter().all(|s| s.leader == Some(expected))
    })
    .await;
    let leader_view = conclave[1].1.views.borrow().view;
    assert_eq!(leader_view.role, Role::Leader);
    assert_eq!(conclave[0].1.views.borrow().view.role, Role::Follower);
    // Each Conclave node's trace log replays through the model, the members it learnt from
    // the daemon and from ELECTION included (`conclave conform`'s check).
    for (_, node) in conclave {
        let path = node.stop().await;
        let text = std::fs::read_to_string(&path).unwrap();
        let replayed =
            replay::<GcdBully>(&text).unwrap_or_else(|m| panic!("{}: {m}", path.display()));
        let learnt = text
            .lines()
            .filter(|l| l.contains(r#""event":"member""#))
            .count();
        assert!(
            replayed.inputs > 2 && replayed.outputs > 2 && !replayed.cut && learnt >= 4,
            "{}: {replayed:?}, {learnt} member lines",
            path.display()
        );
    }
    eprintln!(
        "all five nodes (three Python, two Conclave) name {expected:?} {:.1} s after the first started",
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conclave_lab_node_answers_a_hostile_pickle_with_a_str_and_keeps_its_role() {
    let gcd = start(Wire::Lab).await;
    let mut node = start_conclave_lab_node(gcd, (300, 2_345_678));
    let deadline = Instant::now() + Duration::from_secs(10);
    while node.views.borrow_and_update().view.role != Role::Leader {
        assert!(Instant::now() < deadline, "alone, it leads within 10 s");
        let _ = tokio::time::timeout(Duration::from_secs(1), node.views.changed()).await;
    }
    let addr: SocketAddr = ([127, 0, 0, 1], node.port).into();
    // pickle.dumps(os.system, 2): refused by name, never unpickled.
    let answer = lab_exchange(addr, b"\x80\x02cposix\nsystem\nq\x00.", true).await;
    assert_eq!(
        answer,
        Value::str(
            "Expected a pickled message: opcode 0x63 (GLOBAL) at byte 2 is not allowed: the \
             protocol has only tuples, lists, dicts, str, int, None and bool"
        )
    );
    let join = lab_exchange(addr, &lab_join(10, 1_000_001, "localhost", 1), true).await;
    assert_eq!(join, Value::str("Unexpected message: JOIN"));
    // It still serves, and its view has not changed since it became leader.
    let probe = pickle::write(&Value::Tuple(vec![Value::str("PROBE"), Value::None]));
    let ok = lab_exchange(addr, &probe, true).await;
    assert_eq!(ok, Value::Tuple(vec![Value::str("OK"), Value::None]));
    assert!(!node.views.has_changed().unwrap(), "no role change");
    assert_eq!(node.views.borrow().view.role, Role::Leader);
    assert_eq!(node.views.borrow().leader, Some((300, 2_345_678)));
}
