//! `conclave-node --broadcast` and `--monitor` (feature `net`): four processes on 127.0.0.1
//! find each other by seed 004's UDP handshake on 127.255.255.255, report to a stand-in
//! monitor (axum, in this test) that records the reports and serves a block list, elect the
//! highest, and split when the monitor blocks the leader's links. Bounded in time; the
//! processes are killed on drop, also when the test fails.
#![cfg(feature = "net")]

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const NAMES: [&str; 4] = ["n1", "n2", "n3", "n4"];
const TOKEN: &str = "monitor-token";
const PARAMS: &str = r#"(answer_timeout: "100ms", coordinator_timeout: "300ms", heartbeat_interval: "100ms", heartbeat_timeout: "150ms")"#;

/// What the stand-in monitor holds: every report by node, and the block list it serves.
#[derive(Default)]
struct Monitor {
    reports: BTreeMap<String, Vec<serde_json::Value>>,
    blocks: String,
    unauthorized: usize,
}

type Shared = Arc<Mutex<Monitor>>;

async fn report(State(monitor): State<Shared>, headers: HeaderMap, body: String) -> StatusCode {
    let Ok(report) = serde_json::from_str::<serde_json::Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let mut monitor = monitor.lock().unwrap();
    let bearer = format!("Bearer {TOKEN}");
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(bearer.as_str()) {
        monitor.unauthorized += 1;
        return StatusCode::UNAUTHORIZED;
    }
    let node = report["node"].as_str().unwrap_or_default().to_string();
    monitor.reports.entry(node).or_default().push(report);
    StatusCode::NO_CONTENT
}

async fn blocks(State(monitor): State<Shared>) -> String {
    monitor.lock().unwrap().blocks.clone()
}

/// Starts the stand-in monitor on a thread of its own; returns its URL.
fn start_monitor(monitor: Shared) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let app = Router::new()
                .route("/api/report", post(report))
                .route("/api/blocks.txt", get(blocks))
                .with_state(monitor);
            axum::serve(listener, app).await.unwrap();
        });
    });
    url
}

/// `conclave-node` processes, killed on drop.
struct Processes(Vec<Child>);

impl Drop for Processes {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A free UDP port outside the ephemeral range, released for the nodes to share.
fn free_udp_port() -> u16 {
    conclave_testkit::ports::udp_port()
}

/// The latest report of each node: (role, coordinator).
fn latest(monitor: &Shared) -> BTreeMap<String, (String, Option<String>)> {
    let monitor = monitor.lock().unwrap();
    monitor
        .reports
        .iter()
        .filter_map(|(node, reports)| {
            let last = reports.last()?;
            let role = last["role"].as_str().unwrap_or_default().to_string();
            Some((
                node.clone(),
                (role, last["coordinator"].as_str().map(String::from)),
            ))
        })
        .collect()
}

fn logs(dir: &Path) -> String {
    NAMES
        .iter()
        .map(|n| {
            let text = std::fs::read_to_string(dir.join(format!("{n}.log"))).unwrap_or_default();
            format!("--- {n}\n{text}")
        })
        .collect()
}

/// Waits until `want` holds for the latest reports; panics with them and the logs.
fn wait_for(
    monitor: &Shared,
    dir: &Path,
    what: &str,
    bound: Duration,
    want: impl Fn(&BTreeMap<String, (String, Option<String>)>) -> bool,
) {
    let started = Instant::now();
    loop {
        let reports = latest(monitor);
        if want(&reports) {
            return;
        }
        assert!(
            started.elapsed() < bound,
            "{what}: not within {bound:?}; latest reports {reports:?}\n{}",
            logs(dir)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn follows(
    reports: &BTreeMap<String, (String, Option<String>)>,
    node: &str,
    role: &str,
    leader: &str,
) -> bool {
    reports
        .get(node)
        .is_some_and(|(r, l)| r == role && l.as_deref() == Some(leader))
}

#[test]
fn broadcast_four_processes_find_each_other_report_to_the_monitor_and_obey_its_blocks() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("discovery-broadcast-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let token_file = dir.join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let monitor: Shared = Arc::default();
    let url = start_monitor(monitor.clone());
    let target = format!("127.255.255.255:{}", free_udp_port());

    let mut processes = Processes(Vec::new());
    for (i, name) in NAMES.iter().enumerate() {
        let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_conclave-node"))
            .args([
                "--algorithm",
                "bully",
                "--name",
                name,
                "--listen",
                "127.0.0.1:0",
            ])
            .args(["--priority", &(i + 1).to_string(), "--broadcast", &target])
            .args([
                "--discovery-wait",
                "1500ms",
                "--params",
                PARAMS,
                "--seed",
                "1",
            ])
            .args(["--monitor", &url, "--monitor-token-file"])
            .arg(&token_file)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start conclave-node");
        processes.0.push(child);
    }

    // Found by the handshake, elected, reported: 1.5 s of discovery and a second of reports.
    wait_for(
        &monitor,
        &dir,
        "all follow n4",
        Duration::from_secs(15),
        |r| {
            follows(r, "n4", "Leader", "n4")
                && ["n1", "n2", "n3"]
                    .iter()
                    .all(|n| follows(r, n, "Follower", "n4"))
        },
    );
    for name in NAMES {
        let text = std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap();
        let found = text
            .lines()
            .find(|l| l.contains("event=discovered"))
            .unwrap_or_else(|| panic!("{name} logs no discovery:\n{text}"));
        for other in NAMES {
            assert!(found.contains(&format!("{other}:")), "{name}: {found}");
        }
    }
    {
        let monitor = monitor.lock().unwrap();
        assert_eq!(monitor.unauthorized, 0);
        let address = monitor.reports["n4"][0]["address"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            address.starts_with("127.0.0.1:") && !address.ends_with(":0"),
            "{address}"
        );
    }

    // The monitor blocks n4's links: the others stop hearing it and elect n3; plain Bully
    // keeps n4 in office on its side of the cut.
    monitor.lock().unwrap().blocks = "n4 n1\nn4 n2\nn4 n3\n".to_string();
    wait_for(
        &monitor,
        &dir,
        "n1-n3 follow n3",
        Duration::from_secs(15),
        |r| {
            follows(r, "n3", "Leader", "n3")
                && follows(r, "n1", "Follower", "n3")
                && follows(r, "n2", "Follower", "n3")
                && follows(r, "n4", "Leader", "n4")
        },
    );
    // n1 takes the list too (it may follow n3 before that, when n4 took it first and
    // dropped n1's heartbeats), and the cut links carried messages that were dropped, on
    // whichever side took the list first.
    let started = Instant::now();
    loop {
        let n1_log = std::fs::read_to_string(dir.join("n1.log")).unwrap();
        let took = n1_log
            .lines()
            .any(|l| l.contains("event=blocks pairs=") && l.contains("n4"));
        if took && logs(&dir).contains("reason=blocked") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "n1 took no block list naming n4, or nothing was dropped:\n{}",
            logs(&dir)
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // A graceful stop (`q` on stdin): a last report says Stopped, and the process exits 0.
    for child in &mut processes.0 {
        use std::io::Write;
        let _ = child.stdin.as_mut().unwrap().write_all(b"q\n");
    }
    let started = Instant::now();
    for child in &mut processes.0 {
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(status.success(), "{status}\n{}", logs(&dir));
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "no exit\n{}",
                logs(&dir)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let monitor = monitor.lock().unwrap();
    for name in NAMES {
        let last = monitor.reports[name].last().unwrap();
        assert_eq!(last["status"], "Stopped", "{name}: {last}");
    }
    drop(monitor);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `conclave-node` takes the runtime flags `conclave node` takes (`net::flags`): an empty
/// monitor token is refused naming its flag, and `--wire lab` refuses `--monitor`. Nothing
/// starts: exit 2.
#[test]
fn conclave_node_refuses_an_empty_monitor_token_and_a_lab_node_with_a_monitor() {
    let dir = std::env::temp_dir().join(format!("conclave-node-flags-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let empty = dir.join("empty.token");
    std::fs::write(&empty, "\n").unwrap();
    let run = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_conclave-node"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("conclave-node runs");
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let empty = empty.to_str().unwrap();
    let (code, err) = run(&[
        "--algorithm",
        "bully",
        "--name",
        "a",
        "--peers",
        "a=127.0.0.1:1,b=127.0.0.1:2",
        "--monitor",
        "http://127.0.0.1:1",
        "--monitor-token-file",
        empty,
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.ends_with(&format!("--monitor-token-file {empty} is empty\n")),
        "{err}"
    );
    let (code, err) = run(&[
        "--algorithm",
        "gcd",
        "--wire",
        "lab",
        "--gcd",
        "127.0.0.1:1",
        "--identity",
        "120,4123456",
        "--listen",
        "127.0.0.1:0",
        "--monitor",
        "http://127.0.0.1:1",
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("--monitor is not supported with --wire lab"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
