//! `conclave node` and `conclave cluster` as users drive them: a four-node Bully scenario
//! as real processes on 127.0.0.1 elects its highest node, elects the next when the leader
//! is killed, splits in two under blocks (plain Bully keeps both leaders after the heal, as
//! the simulator's bully_partition_heal.ron says), takes the old leader back on restart,
//! elects again while it is paused, and leaves no process behind when the runner stops or dies;
//! with a scenario's services (log server, registry, group coordinator daemon) it starts
//! them, blocks through the monitor, elects through the registry and the daemon. Every wait
//! is bounded; a guard kills everything the test started, also when it fails.

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid as OsPid;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{conclave, expect_code, stderr};

/// Four Bully nodes a..d (d highest) with short timeouts: an election takes well under a
/// second on an idle machine.
const SCENARIO: &str = r#"// Written by tests/cluster.rs.
Scenario(
    algorithm: Bully(
        answer_timeout: "100ms",
        coordinator_timeout: "300ms",
        heartbeat_interval: "100ms",
        heartbeat_timeout: "150ms",
    ),
    nodes: [(name: "a", id: 1), (name: "b", id: 2), (name: "c", id: 3), (name: "d", id: 4)],
    run_for: "10s",
)
"#;

/// How long any agreement may take: a few elections on a loaded two-core machine.
const BOUND: Duration = Duration::from_secs(10);

/// A fresh folder for one test.
fn folder(test: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cluster-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A port P with P..P+n free on 127.0.0.1 (the OS picks P; a short race, as usual).
fn base_port(n: u16) -> u16 {
    for _ in 0..50 {
        let first = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = first.local_addr().unwrap().port();
        if base.checked_add(n).is_none() {
            continue;
        }
        let rest: Vec<_> = (1..n)
            .map(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)))
            .collect();
        if rest.iter().all(Result::is_ok) {
            return base;
        }
    }
    panic!("no {n} free ports in a row");
}

/// A pid that runs (a zombie, which only waits to be reaped, does not).
fn running(pid: u32) -> bool {
    if kill(OsPid::from_raw(pid as i32), None).is_err() {
        return false;
    }
    process_state(pid) != 'Z'
}

/// A process's state letter in /proc (R, S, T for stopped, Z...).
fn process_state(pid: u32) -> char {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat.rsplit(')').next().unwrap_or("").trim_start();
    state.chars().next().unwrap_or('?')
}

/// The node pids cluster.json lists.
fn node_pids(dir: &Path) -> Vec<u32> {
    let text = std::fs::read_to_string(dir.join("cluster.json")).unwrap_or_default();
    let state: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    state["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n["pid"].as_u64())
        .map(|pid| pid as u32)
        .collect()
}

/// The service pids cluster.json lists.
fn service_pids(dir: &Path) -> Vec<u32> {
    let text = std::fs::read_to_string(dir.join("cluster.json")).unwrap_or_default();
    let state: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    state["services"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n["pid"].as_u64())
        .map(|pid| pid as u32)
        .collect()
}

/// The runner, and on drop: SIGKILL to it and to every node and service pid of its
/// cluster.json.
struct Runner {
    child: Child,
    dir: PathBuf,
}

impl Drop for Runner {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for pid in node_pids(&self.dir)
            .into_iter()
            .chain(service_pids(&self.dir))
        {
            let _ = kill(OsPid::from_raw(pid as i32), Signal::SIGKILL);
        }
    }
}

impl Runner {
    fn up(dir: &Path, scenario: &Path, base: u16) -> Runner {
        let cluster = dir.join("cluster");
        let out = std::fs::File::create(dir.join("runner.out")).unwrap();
        let err = std::fs::File::create(dir.join("runner.err")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_conclave"))
            .args(["cluster", "up"])
            .arg(scenario)
            .args(["--base-port", &base.to_string(), "--dir"])
            .arg(&cluster)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap();
        Runner {
            child,
            dir: cluster,
        }
    }

    /// Runs `conclave cluster <args> --dir DIR` and expects exit 0.
    fn command(&self, args: &[&str]) {
        let dir = self.dir.to_string_lossy();
        let mut all = vec!["cluster"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--dir", &dir]);
        expect_code(&conclave(&all), 0);
    }

    /// Waits until every named node's trace log shows `leader` leading and followed.
    fn wait_for_leader(&self, nodes: &[&str], leader: &str) {
        let started = Instant::now();
        loop {
            let roles: Vec<_> = nodes
                .iter()
                .map(|n| last_role(&self.dir.join(format!("{n}.jsonl"))))
                .collect();
            let agreed = nodes.iter().zip(&roles).all(|(node, role)| {
                let want = if *node == leader {
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
                started.elapsed() < BOUND,
                "no agreement of {nodes:?} on {leader} within {BOUND:?}: {roles:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the runner's exit; its status.
    fn wait(&mut self, bound: Duration) -> std::process::ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(started.elapsed() < bound, "the runner did not exit");
            std::thread::sleep(Duration::from_millis(20));
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

/// Waits until none of `pids` runs.
fn wait_gone(pids: &[u32], bound: Duration) {
    let started = Instant::now();
    while pids.iter().any(|&pid| running(pid)) {
        let left: Vec<_> = pids.iter().filter(|&&p| running(p)).collect();
        assert!(started.elapsed() < bound, "still running: {left:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn cluster_of_four_bully_processes_kill_block_heal_restart_pause_then_stop_leaves_no_process() {
    let dir = folder("bully");
    let scenario = dir.join("bully4.ron");
    std::fs::write(&scenario, SCENARIO).unwrap();
    let mut runner = Runner::up(&dir, &scenario, base_port(4));
    let all = ["a", "b", "c", "d"];
    runner.wait_for_leader(&all, "d");
    let pids = node_pids(&runner.dir);
    assert_eq!(pids.len(), 4, "{pids:?}");

    // A crash of the leader: the others elect c.
    runner.command(&["kill", "d"]);
    runner.wait_for_leader(&["a", "b", "c"], "c");

    // c cut off from a and b: they elect b, c stays in office alone.
    runner.command(&["block", "a", "c"]);
    runner.command(&["block", "c", "b"]);
    assert_eq!(
        std::fs::read_to_string(runner.dir.join("blocks")).unwrap(),
        "a c\nb c\n"
    );
    runner.wait_for_leader(&["a", "b"], "b");
    runner.wait_for_leader(&["c"], "c");

    // Healed, the two leaders stay: plain Bully has no step that makes them meet.
    runner.command(&["heal"]);
    assert_eq!(
        std::fs::read_to_string(runner.dir.join("blocks")).unwrap(),
        ""
    );
    std::thread::sleep(Duration::from_secs(1));
    runner.wait_for_leader(&["a", "b"], "b");
    runner.wait_for_leader(&["c"], "c");

    // d restarted with its flags: its election bullies everyone, one leader again.
    runner.command(&["restart", "d"]);
    runner.wait_for_leader(&all, "d");

    // d frozen (SIGSTOP): the others elect c; thawed, it runs again; frozen again, the
    // runner's stop below must still end it (SIGCONT before SIGTERM).
    runner.command(&["pause", "d"]);
    runner.wait_for_leader(&["a", "b", "c"], "c");
    let d = *node_pids(&runner.dir).last().unwrap();
    assert_eq!(process_state(d), 'T');
    runner.command(&["resume", "d"]);
    assert_ne!(process_state(d), 'T');
    runner.command(&["pause", "d"]);

    // Unknown nodes are refused.
    let dir_flag = runner.dir.to_string_lossy().into_owned();
    let output = conclave(&["cluster", "kill", "zed", "--dir", &dir_flag]);
    expect_code(&output, 2);
    assert!(
        stderr(&output).contains("unknown node \"zed\""),
        "{}",
        stderr(&output)
    );

    // SIGTERM to the runner stops every node (the last pids, d's new one included).
    let pids = node_pids(&runner.dir);
    kill(OsPid::from_raw(runner.child.id() as i32), Signal::SIGTERM).unwrap();
    let status = runner.wait(Duration::from_secs(10));
    assert!(status.success(), "{status}");
    wait_gone(&pids, Duration::from_secs(1));
    let out = std::fs::read_to_string(dir.join("runner.out")).unwrap();
    assert!(out.contains("node=d role=Leader leader=d"), "{out}");
    assert!(out.contains("node=d event=exited"), "{out}");
    assert!(out.contains("node=d event=restarted"), "{out}");
    assert!(out.contains("cluster: stopped"), "{out}");
}

/// The nodes hold a pipe from the runner on stdin and stop when it ends: a runner killed
/// with SIGKILL (no chance to stop them) orphans nothing.
#[test]
fn cluster_nodes_stop_when_the_runner_is_killed() {
    let dir = folder("orphans");
    let scenario = dir.join("bully4.ron");
    std::fs::write(&scenario, SCENARIO).unwrap();
    let mut runner = Runner::up(&dir, &scenario, base_port(4));
    runner.wait_for_leader(&["a", "b", "c", "d"], "d");
    let pids = node_pids(&runner.dir);
    assert_eq!(pids.len(), 4);
    runner.child.kill().unwrap();
    runner.wait(Duration::from_secs(5));
    wait_gone(&pids, Duration::from_secs(5));
}

#[test]
fn conclave_node_refuses_an_unknown_name_and_a_node_without_address_with_status_2() {
    let dir = folder("node-bad");
    let scenario = dir.join("bully4.ron");
    std::fs::write(&scenario, SCENARIO).unwrap();
    let path = scenario.to_string_lossy().into_owned();

    let output = conclave(&["node", "--scenario", &path, "--name", "zed"]);
    expect_code(&output, 2);
    assert!(
        stderr(&output).contains("--name \"zed\" is not a node of")
            && stderr(&output).contains("a, b, c, d"),
        "{}",
        stderr(&output)
    );

    let output = conclave(&["node", "--scenario", &path, "--name", "a"]);
    expect_code(&output, 2);
    assert!(
        stderr(&output).contains("node \"a\" has no address"),
        "{}",
        stderr(&output)
    );

    let output = conclave(&["node", "--scenario", "no/such.ron", "--name", "a"]);
    expect_code(&output, 2);
}

#[test]
fn cluster_commands_without_a_cluster_exit_2() {
    let dir = folder("none");
    let missing = dir.join("cluster").to_string_lossy().into_owned();
    let output = conclave(&["cluster", "kill", "a", "--dir", &missing]);
    expect_code(&output, 2);
    assert!(
        stderr(&output).contains("no cluster in"),
        "{}",
        stderr(&output)
    );
    let output = conclave(&["cluster", "heal", "--dir", &missing]);
    expect_code(&output, 2);
}

/// The four Bully nodes with seed 002's log server: `cluster up` starts `conclave monitor`.
const LOG_SERVER_SCENARIO: &str = r#"// Written by tests/cluster.rs.
Scenario(
    algorithm: Bully(
        answer_timeout: "100ms",
        coordinator_timeout: "300ms",
        heartbeat_interval: "100ms",
        heartbeat_timeout: "150ms",
    ),
    log_server: (interval: "1s"),
    nodes: [(name: "a", id: 1), (name: "b", id: 2), (name: "c", id: 3), (name: "d", id: 4)],
    run_for: "10s",
)
"#;

/// The runner's line `monitor: http://ADDR/status`, waited for: ADDR.
fn monitor_address(dir: &Path) -> String {
    let started = Instant::now();
    loop {
        let out = std::fs::read_to_string(dir.join("runner.out")).unwrap_or_default();
        if let Some(line) = out.lines().find(|l| l.starts_with("monitor: ")) {
            let url = line.trim_start_matches("monitor: http://");
            return url.trim_end_matches("/status").to_string();
        }
        assert!(
            started.elapsed() < BOUND,
            "no monitor line within {BOUND:?}: {out}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `GET path` from `address` over HTTP/1.1: the body as JSON.
fn get_json(address: &str, path: &str) -> serde_json::Value {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body:?}"))
}

/// Waits until the monitor's last report of each of `nodes` names `leader`.
fn wait_for_reports(monitor: &str, nodes: &[&str], leader: &str) {
    let started = Instant::now();
    loop {
        let reports = get_json(monitor, "/api/nodes");
        let reported: Vec<(String, String)> = reports
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let text = |key: &str| r[key].as_str().unwrap_or("-").to_string();
                (text("node"), text("coordinator"))
            })
            .collect();
        if nodes
            .iter()
            .all(|n| reported.contains(&(n.to_string(), leader.to_string())))
        {
            return;
        }
        assert!(
            started.elapsed() < BOUND,
            "the monitor shows no {leader} for {nodes:?} within {BOUND:?}: {reported:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn cluster_with_a_log_server_starts_the_monitor_blocks_through_it_and_stops_it() {
    let dir = folder("monitor");
    let scenario = dir.join("bully4_logserver.ron");
    std::fs::write(&scenario, LOG_SERVER_SCENARIO).unwrap();
    // Four node ports, then the monitor's.
    let base = base_port(5);
    let mut runner = Runner::up(&dir, &scenario, base);
    let monitor = monitor_address(&dir);
    assert_eq!(monitor, format!("127.0.0.1:{}", base + 4));
    let all = ["a", "b", "c", "d"];
    runner.wait_for_leader(&all, "d");
    wait_for_reports(&monitor, &all, "d");
    let services = service_pids(&runner.dir);
    assert_eq!(services.len(), 1, "{services:?}");

    // d cut off from the others, through the monitor: its list, not a blocks file.
    for node in ["a", "b", "c"] {
        runner.command(&["block", node, "d"]);
    }
    assert_eq!(
        get_json(&monitor, "/api/blocks"),
        serde_json::json!([["a", "d"], ["b", "d"], ["c", "d"]])
    );
    assert!(!runner.dir.join("blocks").exists());
    runner.wait_for_leader(&["a", "b", "c"], "c");
    runner.wait_for_leader(&["d"], "d");
    wait_for_reports(&monitor, &["a", "b", "c"], "c");

    runner.command(&["unblock", "d", "a"]);
    assert_eq!(
        get_json(&monitor, "/api/blocks"),
        serde_json::json!([["b", "d"], ["c", "d"]])
    );
    runner.command(&["heal"]);
    assert_eq!(get_json(&monitor, "/api/blocks"), serde_json::json!([]));

    // SIGTERM to the runner stops the nodes, then the monitor.
    let pids: Vec<u32> = node_pids(&runner.dir).into_iter().chain(services).collect();
    kill(OsPid::from_raw(runner.child.id() as i32), Signal::SIGTERM).unwrap();
    let status = runner.wait(Duration::from_secs(10));
    assert!(status.success(), "{status}");
    wait_gone(&pids, Duration::from_secs(1));
    let out = std::fs::read_to_string(dir.join("runner.out")).unwrap();
    assert!(out.contains("service=logserver kind=monitor"), "{out}");
    assert!(out.contains("cluster: stopping 1 service(s)"), "{out}");
}

/// A runner killed with SIGKILL orphans no service either (their stdin is its pipe too).
#[test]
fn cluster_services_stop_when_the_runner_is_killed() {
    let dir = folder("service-orphans");
    let scenario = dir.join("bully4_logserver.ron");
    std::fs::write(&scenario, LOG_SERVER_SCENARIO).unwrap();
    let mut runner = Runner::up(&dir, &scenario, base_port(5));
    monitor_address(&dir);
    runner.wait_for_leader(&["a", "b", "c", "d"], "d");
    let pids: Vec<u32> = node_pids(&runner.dir)
        .into_iter()
        .chain(service_pids(&runner.dir))
        .collect();
    assert_eq!(pids.len(), 5);
    runner.child.kill().unwrap();
    runner.wait(Duration::from_secs(5));
    wait_gone(&pids, Duration::from_secs(5));
}

/// Seed 000's shape (Consul) with short waits: the nodes register with `conclave registry`,
/// wait a second, find each other there and elect.
const REGISTRY_SCENARIO: &str = r#"// Written by tests/cluster.rs.
Scenario(
    algorithm: Bully(
        answer_timeout: "100ms",
        coordinator_timeout: "300ms",
        heartbeat_interval: "100ms",
        heartbeat_timeout: "150ms",
        discovery: Registry(name: "consul", wait: "1s", health_interval: "1s", health_timeout: "500ms"),
    ),
    nodes: [(name: "a", id: 1), (name: "b", id: 2), (name: "c", id: 3), (name: "d", id: 4)],
    run_for: "10s",
)
"#;

/// Seed 003's shape: three nodes JOIN `conclave gcd` with their identities and elect carol.
const GCD_SCENARIO: &str = r#"// Written by tests/cluster.rs.
Scenario(
    algorithm: GcdBully(gcd: "gcd", answer_timeout: "200ms", coordinator_timeout: "500ms",
        probe_min: "100ms", probe_max: "300ms", probe_timeout: "200ms"),
    nodes: [
        (name: "alice", identity: (120, 4123456)),
        (name: "bob", identity: (45, 4987654)),
        (name: "carol", identity: (300, 2345678)),
    ],
    run_for: "10s",
)
"#;

/// Starts `text`'s cluster, waits for `leader`, checks each node's discovery line and the
/// runner's service line, and stops the runner: no node or service left.
fn elect_through_a_service(test: &str, text: &str, nodes: &[&str], leader: &str, via: &str) {
    let dir = folder(test);
    let scenario = dir.join(format!("{test}.ron"));
    std::fs::write(&scenario, text).unwrap();
    let mut runner = Runner::up(&dir, &scenario, base_port(nodes.len() as u16 + 1));
    runner.wait_for_leader(nodes, leader);
    let found = nodes.join(",");
    for node in nodes {
        let log = std::fs::read_to_string(runner.dir.join(format!("{node}.log"))).unwrap();
        let line = log
            .lines()
            .find(|l| l.contains("event=discovered"))
            .unwrap_or_else(|| panic!("{node} discovered nothing: {log}"));
        let mut names: Vec<&str> = line.rsplit("found=").next().unwrap().split(',').collect();
        names.sort();
        assert!(
            line.contains(&format!("via={via}")) && names.join(",") == found,
            "{line}"
        );
    }
    let pids: Vec<u32> = node_pids(&runner.dir)
        .into_iter()
        .chain(service_pids(&runner.dir))
        .collect();
    assert_eq!(pids.len(), nodes.len() + 1, "{pids:?}");
    kill(OsPid::from_raw(runner.child.id() as i32), Signal::SIGTERM).unwrap();
    assert!(runner.wait(Duration::from_secs(10)).success());
    wait_gone(&pids, Duration::from_secs(1));
    let out = std::fs::read_to_string(dir.join("runner.out")).unwrap();
    assert!(
        out.contains(&format!("kind={via} address=127.0.0.1:")),
        "{out}"
    );
}

#[test]
fn cluster_with_a_registry_starts_conclave_registry_and_the_nodes_elect_through_it() {
    elect_through_a_service(
        "registry",
        REGISTRY_SCENARIO,
        &["a", "b", "c", "d"],
        "d",
        "registry",
    );
}

#[test]
fn cluster_of_gcd_bully_starts_conclave_gcd_and_the_nodes_join_it_then_elect() {
    elect_through_a_service(
        "gcd",
        GCD_SCENARIO,
        &["alice", "bob", "carol"],
        "carol",
        "gcd",
    );
}
