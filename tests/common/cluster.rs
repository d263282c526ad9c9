//! A scenario's cluster as `conclave cluster up` runs it, for the tests that drive real
//! node processes (tests/cluster.rs, tests/monitor_browser.rs): free ports, the runner and a
//! guard that kills everything it started, waits on the nodes' trace logs and on the
//! monitor's API. Every wait is bounded.

use super::{conclave, expect_code};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid as OsPid;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long any agreement may take: a few elections on a loaded two-core machine.
pub const BOUND: Duration = Duration::from_secs(10);

/// A fresh folder for one test.
pub fn folder(test: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cluster-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A port P with P..P+n free on 127.0.0.1 and outside the ephemeral range, so that a node
/// killed and restarted finds its port still free (see [`conclave_testkit::ports`]).
pub fn base_port(n: u16) -> u16 {
    conclave_testkit::ports::port_block(n)
}

/// A pid that runs (a zombie, which only waits to be reaped, does not).
pub fn running(pid: u32) -> bool {
    if kill(OsPid::from_raw(pid as i32), None).is_err() {
        return false;
    }
    process_state(pid) != 'Z'
}

/// A process's state letter in /proc (R, S, T for stopped, Z...).
pub fn process_state(pid: u32) -> char {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat.rsplit(')').next().unwrap_or("").trim_start();
    state.chars().next().unwrap_or('?')
}

/// The pids cluster.json lists under `key` ("nodes" or "services").
fn pids(dir: &Path, key: &str) -> Vec<u32> {
    let text = std::fs::read_to_string(dir.join("cluster.json")).unwrap_or_default();
    let state: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    state[key]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n["pid"].as_u64())
        .map(|pid| pid as u32)
        .collect()
}

/// The node pids cluster.json lists.
pub fn node_pids(dir: &Path) -> Vec<u32> {
    pids(dir, "nodes")
}

/// The service pids cluster.json lists.
pub fn service_pids(dir: &Path) -> Vec<u32> {
    pids(dir, "services")
}

/// The runner, and on drop: SIGKILL to it and to every node and service pid of its
/// cluster.json.
pub struct Runner {
    pub child: Child,
    pub dir: PathBuf,
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
    pub fn up(dir: &Path, scenario: &Path, base: u16) -> Runner {
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
    pub fn command(&self, args: &[&str]) {
        let dir = self.dir.to_string_lossy();
        let mut all = vec!["cluster"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--dir", &dir]);
        expect_code(&conclave(&all), 0);
    }

    /// Waits until every named node's trace log shows `leader` leading and followed.
    pub fn wait_for_leader(&self, nodes: &[&str], leader: &str) {
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
                "no agreement of {nodes:?} on {leader} within {BOUND:?}: {roles:?}\n{}",
                self.diagnosis(nodes)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The runner's output and the stderr of `nodes`, their last lines: what a failed wait
    /// prints (a node that could not bind its port says so there).
    pub fn diagnosis(&self, nodes: &[&str]) -> String {
        let tail = |path: PathBuf| {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let last = lines[lines.len().saturating_sub(15)..].join("\n");
            format!("--- {} (last lines):\n{last}\n", path.display())
        };
        let mut out = tail(self.dir.with_file_name("runner.out"));
        for node in nodes {
            out += &tail(self.dir.join(format!("{node}.log")));
        }
        out
    }

    /// Waits until the runner's output has a line containing `text`; that line.
    pub fn wait_for_output(&self, text: &str) -> String {
        let started = Instant::now();
        loop {
            let out =
                std::fs::read_to_string(self.dir.with_file_name("runner.out")).unwrap_or_default();
            if let Some(line) = out.lines().find(|l| l.contains(text)) {
                return line.to_string();
            }
            assert!(
                started.elapsed() < BOUND,
                "no {text:?} in the runner's output within {BOUND:?}: {out}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the runner's exit; its status.
    pub fn wait(&mut self, bound: Duration) -> std::process::ExitStatus {
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
pub fn last_role(path: &Path) -> Option<(String, Option<String>)> {
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
pub fn wait_gone(pids: &[u32], bound: Duration) {
    let started = Instant::now();
    while pids.iter().any(|&pid| running(pid)) {
        let left: Vec<_> = pids.iter().filter(|&&p| running(p)).collect();
        assert!(started.elapsed() < bound, "still running: {left:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The four Bully nodes with seed 002's log server: `cluster up` starts `conclave monitor`.
pub const LOG_SERVER_SCENARIO: &str = r#"// Written by tests/cluster.rs.
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
pub fn monitor_address(dir: &Path) -> String {
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
pub fn get_json(address: &str, path: &str) -> serde_json::Value {
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
pub fn wait_for_reports(monitor: &str, nodes: &[&str], leader: &str) {
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
