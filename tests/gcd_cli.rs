//! `conclave gcd` as a user starts it: the line it prints on start, a lab JOIN answered with
//! the member dict, and its refusals of bad flags (exit 2).

use conclave_services::gcd::pickle::{self, Value};
use std::io::{Read, Write};
use std::net::TcpStream;

mod common;
use common::{conclave, expect_code, start_server, stderr};

#[test]
fn gcd_wire_lab_prints_its_address_and_answers_a_python_join() {
    let (_gcd, line) = start_server(&["gcd", "--listen", "127.0.0.1:0", "--wire", "lab"]);
    let port = line
        .strip_prefix("gcd listening on 127.0.0.1:")
        .and_then(|rest| rest.strip_suffix(" wire=lab\n"))
        .unwrap_or_else(|| panic!("first line: {line:?}"));
    let mut stream = TcpStream::connect(format!("127.0.0.1:{port}")).unwrap();
    // pickle.dumps(('JOIN', ((120, 4123456), ('127.0.0.1', 50001))), 2), as Python 3 writes it.
    stream
        .write_all(b"\x80\x02X\x04\x00\x00\x00JOINq\x00KxJ@\xeb>\x00\x86q\x01X\t\x00\x00\x00127.0.0.1q\x02MQ\xc3\x86q\x03\x86q\x04\x86q\x05.")
        .unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    let t = Value::Tuple;
    assert_eq!(
        pickle::read(&answer, 1024),
        Ok(Value::Dict(vec![(
            t(vec![Value::Int(120), Value::Int(4_123_456)]),
            t(vec![Value::str("127.0.0.1"), Value::Int(50001)]),
        )]))
    );
}

#[test]
fn gcd_refuses_an_unknown_wire_and_an_address_in_use() {
    let o = conclave(&["gcd", "--wire", "json"]);
    expect_code(&o, 2);
    assert!(
        stderr(&o).contains("invalid value 'json' for '--wire <WIRE>'"),
        "{}",
        stderr(&o)
    );
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let o = conclave(&["gcd", "--listen", &addr]);
    expect_code(&o, 2);
    assert!(
        stderr(&o).starts_with(&format!("error: cannot listen on {addr}: ")),
        "{}",
        stderr(&o)
    );
}

/// Kills the nodes it holds when the test ends, passed or failed.
struct Nodes(Vec<std::process::Child>);

impl Drop for Nodes {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn conclave_node_wire_lab_nodes_join_a_lab_daemon_and_elect_the_highest_identity() {
    let dir = std::env::temp_dir().join(format!("conclave-gcd-lab-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (_gcd, line) = start_server(&["gcd", "--listen", "127.0.0.1:0", "--wire", "lab"]);
    let gcd = line
        .strip_prefix("gcd listening on ")
        .and_then(|rest| rest.strip_suffix(" wire=lab\n"))
        .unwrap_or_else(|| panic!("first line: {line:?}"))
        .to_string();
    let ports = conclave_testkit::ports::ports(3);
    // carol's (300, 2345678) is the highest pair, not the highest student id (bob's).
    let scenario = dir.join("lab.ron");
    std::fs::write(
        &scenario,
        format!(
            r#"Scenario(
    algorithm: GcdBully(answer_timeout: "300ms", coordinator_timeout: "600ms", probe_min: "300ms", probe_max: "600ms", probe_timeout: "300ms"),
    nodes: [
        (name: "alice", identity: (120, 4123456), address: "127.0.0.1:{}"),
        (name: "bob", identity: (45, 4987654), address: "127.0.0.1:{}"),
        (name: "carol", identity: (300, 2345678), address: "127.0.0.1:{}"),
    ],
    run_for: "10s",
)"#,
            ports[0], ports[1], ports[2]
        ),
    )
    .unwrap();
    let mut nodes = Nodes(Vec::new());
    for name in ["alice", "bob", "carol"] {
        let roles = dir.join(format!("{name}.roles"));
        let hook = |role: &str| format!("echo {role} $CONCLAVE_LEADER >> '{}'", roles.display());
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_conclave"))
            .args(["node", "--wire", "lab", "--gcd", &gcd, "--name", name])
            .arg("--scenario")
            .arg(&scenario)
            .arg("--trace-log")
            .arg(dir.join(format!("{name}.jsonl")))
            .arg("--stop-on-stdin-eof")
            .args([
                "--on-leader",
                &hook("leader"),
                "--on-follower",
                &hook("follower"),
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        nodes.0.push(child);
        // Each joins before the next, as the lab's students start their nodes.
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    let started = std::time::Instant::now();
    let expected = [
        ("alice", "follower 300,2345678"),
        ("bob", "follower 300,2345678"),
        ("carol", "leader 300,2345678"),
    ];
    loop {
        let seen: Vec<bool> = expected
            .iter()
            .map(|(name, line)| {
                let text = std::fs::read_to_string(dir.join(format!("{name}.roles")));
                text.unwrap_or_default().lines().any(|l| l == *line)
            })
            .collect();
        if seen.iter().all(|s| *s) {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(15),
            "hooks so far: {:?}",
            expected.map(|(name, _)| std::fs::read_to_string(dir.join(format!("{name}.roles"))))
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // Stopped gracefully (the end of their stdin), their trace logs conform to the model,
    // the members each learnt from the daemon and from ELECTION included.
    for child in &mut nodes.0 {
        drop(child.stdin.take());
    }
    for child in &mut nodes.0 {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while child.try_wait().unwrap().is_none() {
            assert!(std::time::Instant::now() < deadline, "a node did not stop");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
    let logs: Vec<String> = ["alice", "bob", "carol"]
        .iter()
        .map(|name| dir.join(format!("{name}.jsonl")).display().to_string())
        .collect();
    let mut args = vec!["conform", "--json", "--scenario"];
    let scenario_arg = scenario.display().to_string();
    args.push(&scenario_arg);
    args.extend(logs.iter().map(String::as_str));
    let output = common::conclave(&args);
    common::expect_code(&output, 0);
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let conforming: Vec<_> = summary["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["node"].as_str().unwrap_or("?").to_string(),
                n["conforms"] == true,
            )
        })
        .collect();
    assert_eq!(
        conforming,
        [
            ("120,4123456".to_string(), true),
            ("45,4987654".to_string(), true),
            ("300,2345678".to_string(), true)
        ],
        "{summary}"
    );
    drop(nodes);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Also the runtime flags (`net::flags`) that a lab node would not carry out: the lab's
/// pickles carry no tag, and its nodes read no block list.
#[test]
fn conclave_node_wire_lab_refuses_another_algorithm_a_missing_daemon_and_runtime_flags() {
    let o = conclave(&[
        "node",
        "--wire",
        "lab",
        "--scenario",
        "scenarios/consul_four_nodes.ron",
        "--name",
        "node1",
        "--gcd",
        "127.0.0.1:1",
    ]);
    expect_code(&o, 2);
    assert!(
        stderr(&o).contains("--wire lab is the GCD Bully's"),
        "{}",
        stderr(&o)
    );
    let lab = [
        "node",
        "--wire",
        "lab",
        "--scenario",
        "scenarios/gcd_lab_feigning.ron",
        "--name",
        "alice",
        "--gcd",
        "127.0.0.1:1",
    ];
    let o = conclave(&lab[..7]);
    expect_code(&o, 2);
    assert!(
        stderr(&o).contains("--wire lab needs --gcd"),
        "{}",
        stderr(&o)
    );
    for (flag, value) in [
        ("--block-file", "blocks.txt"),
        ("--cluster-key-file", "cluster.key"),
        ("--monitor", "http://127.0.0.1:1"),
    ] {
        let o = conclave(&[&lab[..], &[flag, value]].concat());
        expect_code(&o, 2);
        assert_eq!(
            stderr(&o),
            format!("error: {flag} is not supported with --wire lab\n")
        );
    }
}
