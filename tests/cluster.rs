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
use std::time::Duration;

mod common;
use common::cluster::*;
use common::{conclave, expect_code, stderr, stdout};

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
    for command in [&["heal"][..], &["status"], &["status", "--json"], &["down"]] {
        let mut args = vec!["cluster"];
        args.extend_from_slice(command);
        args.extend_from_slice(&["--dir", &missing]);
        let output = conclave(&args);
        expect_code(&output, 2);
        assert!(stderr(&output).contains("no cluster in"), "{command:?}");
    }
}

/// A cluster.json whose runner and node pids now belong to another process (a `sleep`
/// started after them, as after a reboot): `down` and `kill` leave that process alone,
/// and `status` shows them exited.
#[test]
fn cluster_commands_leave_alone_a_process_that_got_a_recorded_pid() {
    let dir = folder("reused");
    let cluster = dir.join("cluster");
    std::fs::create_dir_all(&cluster).unwrap();
    let mut stranger = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let pid = stranger.id();
    let state = serde_json::json!({
        "runner_pid": pid, "runner_started": 1, "scenario": "/nowhere.ron", "seed": 0,
        "nodes": [{
            "name": "a", "address": "127.0.0.1:1", "pid": pid, "started": 1,
            "trace_log": cluster.join("a.jsonl"), "args": [], "restarts": 0,
        }],
        "services": [],
    });
    std::fs::write(cluster.join("cluster.json"), state.to_string()).unwrap();
    let dir_flag = cluster.to_string_lossy().into_owned();

    let output = conclave(&["cluster", "down", "--dir", &dir_flag]);
    expect_code(&output, 0);
    assert!(
        stdout(&output).contains("is not running: nothing to stop"),
        "{}",
        stdout(&output)
    );
    let output = conclave(&["cluster", "kill", "a", "--dir", &dir_flag]);
    expect_code(&output, 1);
    assert!(
        stderr(&output).contains(&format!("a (pid {pid}) is not running")),
        "{}",
        stderr(&output)
    );
    let output = conclave(&["cluster", "status", "--dir", &dir_flag]);
    expect_code(&output, 0);
    let text = stdout(&output);
    assert!(
        text.contains(" runner=exited\n") && text.contains("process=exited"),
        "{text}"
    );
    assert!(
        stranger.try_wait().unwrap().is_none(),
        "the stranger was signalled"
    );
    stranger.kill().unwrap();
    stranger.wait().unwrap();
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
    // `cluster status` reads the monitor's list too, and shows the service.
    let dir_flag = runner.dir.to_string_lossy().into_owned();
    let output = conclave(&["cluster", "status", "--dir", &dir_flag]);
    expect_code(&output, 0);
    let text = stdout(&output);
    assert!(text.ends_with("blocks: a d, b d, c d\n"), "{text}");
    assert!(
        text.contains("kind=monitor") && text.contains("process=running\n"),
        "{text}"
    );
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

/// A node port in the kernel's ephemeral range: `cluster up` warns of it (a restart may find
/// it taken), and a node whose port an outgoing connection holds as its source port, which
/// is that failure, says so beside the bind error.
#[test]
fn a_port_in_the_ephemeral_range_is_warned_of_and_a_bind_it_fails_says_why() {
    let dir = folder("ephemeral");
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let client = std::net::TcpStream::connect(server.local_addr().unwrap()).unwrap();
    let taken = client.local_addr().unwrap().port();
    let safe = conclave_testkit::ports::port_block(1);
    let scenario = dir.join("two.ron");
    std::fs::write(
        &scenario,
        format!(
            r#"Scenario(
    algorithm: Bully(answer_timeout: "100ms", coordinator_timeout: "300ms"),
    nodes: [
        (name: "a", id: 1, address: "127.0.0.1:{taken}"),
        (name: "b", id: 2, address: "127.0.0.1:{safe}"),
    ],
    run_for: "1s",
)
"#
        ),
    )
    .unwrap();
    let path = scenario.to_string_lossy().into_owned();

    let output = conclave(&["node", "--scenario", &path, "--name", "a"]);
    expect_code(&output, 1);
    let text = stderr(&output);
    assert!(
        text.contains(&format!("error: cannot listen on 127.0.0.1:{taken}: "))
            && text.contains(&format!(
                "(port {taken} is in the kernel's ephemeral range "
            )),
        "{text}"
    );

    // The runner warns before it starts anything; here it cannot make its folder (a file
    // stands in the way), so nothing starts.
    std::fs::write(dir.join("file"), "").unwrap();
    let bad_dir = dir
        .join("file")
        .join("cluster")
        .to_string_lossy()
        .into_owned();
    let output = conclave(&["cluster", "up", &path, "--dir", &bad_dir]);
    expect_code(&output, 1);
    let text = stderr(&output);
    assert!(
        text.contains(&format!(
            "warning: node \"a\" listens on port {taken}, in the kernel's ephemeral range "
        )),
        "{text}"
    );
    assert!(!text.contains("node \"b\""), "{text}");
    drop((client, server));
}

/// `cluster restart` waits for the node to start: when its port is taken while it is down,
/// the command fails (exit 1) with the node's own reason, and the runner's line for the exit
/// carries it; freed, the next restart brings the node back and it leads again.
#[test]
fn cluster_restart_of_a_node_whose_port_is_taken_fails_with_its_reason_then_succeeds() {
    let dir = folder("restart-taken");
    let scenario = dir.join("bully4.ron");
    std::fs::write(&scenario, SCENARIO).unwrap();
    let base = base_port(4);
    let runner = Runner::up(&dir, &scenario, base);
    let all = ["a", "b", "c", "d"];
    runner.wait_for_leader(&all, "d");
    runner.command(&["kill", "d"]);
    runner.wait_for_leader(&["a", "b", "c"], "c");

    let squatter = std::net::TcpListener::bind(("127.0.0.1", base + 3)).unwrap();
    let dir_flag = runner.dir.to_string_lossy().into_owned();
    let output = conclave(&["cluster", "restart", "d", "--dir", &dir_flag]);
    expect_code(&output, 1);
    let text = stderr(&output);
    assert!(
        text.contains("exited as it restarted")
            && text.contains(&format!("cannot listen on 127.0.0.1:{}", base + 3)),
        "{text}"
    );

    // The runner says so too, with the node's error.
    let line = runner.wait_for_output("node=d event=exited status=exit status: 1 ");
    assert!(
        line.contains(&format!(
            "error=\"cannot listen on 127.0.0.1:{}: ",
            base + 3
        )),
        "{line}"
    );

    drop(squatter);
    runner.command(&["restart", "d"]);
    runner.wait_for_leader(&all, "d");
}

/// `cluster status` shows each node's process, last role and leader, and the blocks, as
/// text and as JSON; `cluster down` stops the runner, which stops every node, and says so
/// again (exit 0) when nothing runs.
#[test]
fn cluster_status_shows_processes_roles_and_blocks_and_down_stops_everything() {
    let dir = folder("status");
    let scenario = dir.join("bully4.ron");
    std::fs::write(&scenario, SCENARIO).unwrap();
    let base = base_port(4);
    let runner = Runner::up(&dir, &scenario, base);
    runner.wait_for_leader(&["a", "b", "c", "d"], "d");
    let dir_flag = runner.dir.to_string_lossy().into_owned();
    let status = |json: bool| {
        let mut args = vec!["cluster", "status", "--dir", &dir_flag];
        if json {
            args.push("--json");
        }
        let output = conclave(&args);
        expect_code(&output, 0);
        stdout(&output)
    };

    let text = status(false);
    assert!(text.contains(" runner=running\n"), "{text}");
    assert!(
        text.contains(&format!("node=d address=127.0.0.1:{} pid=", base + 3))
            && text.contains("process=running role=Leader leader=d restarts=0"),
        "{text}"
    );
    assert!(
        text.contains("process=running role=Follower leader=d"),
        "{text}"
    );
    assert!(text.ends_with("blocks: none\n"), "{text}");

    // d frozen still believes it leads; c killed; a and b cut off from each other.
    runner.command(&["pause", "d"]);
    runner.command(&["kill", "c"]);
    runner.command(&["block", "b", "a"]);
    let json: serde_json::Value = serde_json::from_str(&status(true)).unwrap();
    let node = |name: &str| {
        json["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(node("d")["process"], "paused", "{json}");
    assert_eq!(node("d")["role"], "Leader", "{json}");
    assert_eq!(node("c")["process"], "exited", "{json}");
    assert_eq!(node("a")["process"], "running", "{json}");
    assert_eq!(json["blocks"], serde_json::json!([["a", "b"]]), "{json}");
    assert_eq!(json["runner"], "running");

    let pids = node_pids(&runner.dir);
    let output = conclave(&["cluster", "down", "--dir", &dir_flag]);
    expect_code(&output, 0);
    assert!(
        stdout(&output).starts_with("stopped the cluster in "),
        "{}",
        stdout(&output)
    );
    wait_gone(&pids, Duration::from_secs(1));
    let output = conclave(&["cluster", "down", "--dir", &dir_flag]);
    expect_code(&output, 0);
    assert!(stdout(&output).contains("is not running: nothing to stop"));
    let text = status(false);
    assert!(text.contains(" runner=exited\n"), "{text}");
    assert!(
        !text.contains("process=running") && !text.contains("process=paused"),
        "{text}"
    );
}
