//! Seed 002's log server page with real nodes: `conclave cluster up` runs four Bully nodes
//! and `conclave monitor`, and headless Chromium drives the monitor's `/status` page as a
//! user would (`services/tests/browser/follow.mjs`, one step at a time). The table lists the
//! nodes and their coordinator; ticking a pair and pressing Block stops those two nodes
//! exchanging messages (their trace logs show no delivery between them, while they still
//! hear the others); Reset lets them talk again; when the leader is killed the page, never
//! reloaded, shows the new leader and the dead node's row stale.
//!
//! Needs Chromium, node and playwright-core (see `reports/tests/browser/support.rs`);
//! without them the test says why and passes, unless `CONCLAVE_BROWSER_TESTS=1` (CI).

mod common;

#[path = "../reports/tests/browser/support.rs"]
mod support;

use common::cluster::*;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// reports/tests/browser: where playwright-core is installed.
fn playwright_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("reports/tests/browser")
}

/// How long one page step may take: the script's own waits are 30 s, plus Chromium's start.
const STEP_BOUND: Duration = Duration::from_secs(60);

/// follow.mjs in Chromium: steps in on its stdin, one JSON answer a step on its stdout
/// (read by a thread, so that a hung browser fails the test instead of hanging it).
struct Page {
    child: Child,
    steps: Option<ChildStdin>,
    answers: Receiver<String>,
}

impl Page {
    fn open(monitor: &str) -> Page {
        let mut child = Command::new("node")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("services/tests/browser/follow.mjs"))
            .arg(playwright_dir().join("package.json"))
            .arg(format!("http://{monitor}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node runs");
        let stdout = child.stdout.take().unwrap();
        let (tx, answers) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let steps = child.stdin.take();
        Page {
            child,
            steps,
            answers,
        }
    }

    /// Sends one step and returns the page's answer; a failed step fails the test.
    fn step(&mut self, step: Value) -> Value {
        let stdin = self.steps.as_mut().unwrap();
        writeln!(stdin, "{step}").expect("follow.mjs takes a step");
        stdin.flush().unwrap();
        let line = self
            .answers
            .recv_timeout(STEP_BOUND)
            .unwrap_or_else(|e| panic!("no answer to {step} within {STEP_BOUND:?}: {e}"));
        let answer: Value = serde_json::from_str(&line).expect("follow.mjs prints JSON");
        assert_ne!(answer["step"], "error", "{step}: {answer}");
        answer
    }

    /// Ends the script (EOF on its stdin) and returns its last line.
    fn close(&mut self) -> Value {
        drop(self.steps.take());
        let line = self
            .answers
            .recv_timeout(STEP_BOUND)
            .expect("follow.mjs says done");
        serde_json::from_str(&line).unwrap()
    }
}

impl Drop for Page {
    fn drop(&mut self) {
        drop(self.steps.take());
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wall_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

/// The deliveries of a node's trace log: (wall clock in µs, sender).
fn deliveries(dir: &Path, node: &str) -> Vec<(u64, String)> {
    let text = std::fs::read_to_string(dir.join(format!("{node}.jsonl"))).unwrap_or_default();
    text.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|event| event["event"] == "deliver")
        .map(|event| {
            let at = event["wall_us"].as_u64().unwrap();
            (at, event["from"].as_str().unwrap().to_string())
        })
        .collect()
}

/// How many messages `node` took from `from` in the wall-clock window `[since, until)`.
fn heard(dir: &Path, node: &str, from: &str, since: u64, until: u64) -> usize {
    deliveries(dir, node)
        .iter()
        .filter(|(at, sender)| sender == from && (since..until).contains(at))
        .count()
}

/// Waits until a node's own log (its stderr) has a line containing `text`.
fn wait_for_log(dir: &Path, node: &str, text: &str) {
    let path = dir.join(format!("{node}.log"));
    let started = Instant::now();
    loop {
        let log = std::fs::read_to_string(&path).unwrap_or_default();
        if log.lines().any(|l| l.contains(text)) {
            return;
        }
        assert!(
            started.elapsed() < BOUND,
            "{node} logged no {text:?} within {BOUND:?}:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until `node` has a message from `from` delivered after `since` (wall clock, µs).
fn wait_for_delivery(dir: &Path, node: &str, from: &str, since: u64) {
    let started = Instant::now();
    while heard(dir, node, from, since, u64::MAX) == 0 {
        assert!(
            started.elapsed() < BOUND,
            "{node} heard nothing from {from} within {BOUND:?} of the reset"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_monitor_page_blocks_a_pair_of_real_nodes_resets_it_and_follows_a_killed_leader() {
    let test = "the_monitor_page_blocks_a_pair_of_real_nodes_resets_it_and_follows_a_killed_leader";
    if !support::browser_or_skip(test, &playwright_dir(), &["playwright-core"]) {
        return;
    }
    let dir = folder("monitor-browser");
    let scenario = dir.join("bully4_logserver.ron");
    std::fs::write(&scenario, LOG_SERVER_SCENARIO).unwrap();
    let runner = Runner::up(&dir, &scenario, base_port(5));
    let monitor = monitor_address(&dir);
    let all = ["a", "b", "c", "d"];
    runner.wait_for_leader(&all, "d");
    wait_for_reports(&monitor, &all, "d");
    let logs = &runner.dir;

    // The table: every node, each following d.
    let mut page = Page::open(&monitor);
    let table = page.step(json!({"do": "table", "nodes": all, "leader": "d"}));
    let roles: Vec<(&str, &str)> = table["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["node"].as_str().unwrap(), r["role"].as_str().unwrap()))
        .collect();
    assert_eq!(
        roles,
        [
            ("a", "Follower"),
            ("b", "Follower"),
            ("c", "Follower"),
            ("d", "Leader")
        ],
        "{table}"
    );

    // a heartbeats its leader d every 100 ms: they talk before the block.
    let before = wall_us();
    std::thread::sleep(Duration::from_millis(500));
    let talk = wall_us();
    assert!(
        heard(logs, "a", "d", before, talk) > 0,
        "a heard nothing from d"
    );
    assert!(
        heard(logs, "d", "a", before, talk) > 0,
        "d heard nothing from a"
    );

    // Tick (a, d), press Block: the monitor's list, then both nodes, have the pair.
    let blocked = page.step(json!({"do": "block", "pair": "a d"}));
    assert_eq!(blocked["blocked"], "a-d", "{blocked}");
    assert_eq!(get_json(&monitor, "/api/blocks"), json!([["a", "d"]]));
    wait_for_log(logs, "a", "event=blocks pairs=a-d");
    wait_for_log(logs, "d", "event=blocks pairs=a-d");
    let cut = wall_us();
    std::thread::sleep(Duration::from_secs(2));
    let later = wall_us();
    // Neither hears the other, though both still hear b and c (a calls elections, d leads).
    assert_eq!(
        heard(logs, "a", "d", cut, later),
        0,
        "a heard d while blocked"
    );
    assert_eq!(
        heard(logs, "d", "a", cut, later),
        0,
        "d heard a while blocked"
    );
    let a_heard_others = heard(logs, "a", "b", cut, later) + heard(logs, "a", "c", cut, later);
    let d_heard_others = heard(logs, "d", "b", cut, later) + heard(logs, "d", "c", cut, later);
    assert!(a_heard_others > 0, "a heard no one while blocked from d");
    assert!(d_heard_others > 0, "d heard no one while blocked from a");
    // Their messages to each other were sent and dropped by the block, not never sent.
    wait_for_log(logs, "a", "reason=blocked");
    wait_for_log(logs, "d", "reason=blocked");

    // Reset: the list is empty again, and a and d talk again.
    let reset = page.step(json!({"do": "reset"}));
    assert_eq!(reset["blocked"], "none", "{reset}");
    assert_eq!(get_json(&monitor, "/api/blocks"), json!([]));
    wait_for_log(logs, "a", "event=blocks pairs=-");
    wait_for_log(logs, "d", "event=blocks pairs=-");
    let healed = wall_us();
    wait_for_delivery(logs, "a", "d", healed);
    wait_for_delivery(logs, "d", "a", healed);
    runner.wait_for_leader(&all, "d");

    // The leader dies; the page, not reloaded since it was marked, follows.
    let watch = page.step(json!({"do": "watch"}));
    runner.command(&["kill", "d"]);
    let killed = page.step(json!({"do": "killed", "node": "d", "leader": "c"}));
    assert_eq!(killed["not_reloaded"], true, "{killed}");
    assert!(
        killed["updates"].as_u64() > watch["updates"].as_u64(),
        "no live update: {watch} then {killed}"
    );
    let rows = killed["rows"].as_array().unwrap();
    let of = |node: &str| rows.iter().find(|r| r["node"] == node).unwrap();
    assert_eq!(of("c")["role"], "Leader", "{killed}");
    assert_eq!(of("d")["stale"], true, "{killed}");
    assert!(
        killed["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .any(|li| li.as_str().unwrap().contains("c: Leader, coordinator c")),
        "the timeline shows no c leading: {killed}"
    );
    let done = page.close();
    assert_eq!(done["step"], "done", "{done}");
    assert_eq!(done["errors"], json!([]), "{done}");
    eprintln!(
        "{test}: the page showed c leading and d stale {} ms after the kill",
        killed["ms"]
    );
}
