//! `conclave monitor` over real HTTP on 127.0.0.1: reports, role changes, staleness, the
//! block list through the API and through the CSRF-protected form, the log kept across a
//! restart, bad bodies, the token, the live event stream, and the export that the reports
//! crate reads.

mod common;
use common::{get, request, Answer};
use conclave_services::monitor::{self, Options};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A fresh database file of its own for each test.
fn db_file(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("conclave-monitor-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir.join("monitor.sqlite3")
}

/// Starts a monitor in this test's runtime; the handle aborts it.
async fn start_with(
    db: PathBuf,
    token: Option<&str>,
    stale_after: Duration,
) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let options = Options {
        listen: "127.0.0.1:0".parse().unwrap(),
        db,
        token: token.map(String::from),
        stale_after,
    };
    let monitor = monitor::bind(options).await.expect("bind 127.0.0.1:0");
    let addr = monitor.local_addr();
    let task = tokio::spawn(async move {
        let _ = monitor.run().await;
    });
    (addr, task)
}

async fn start(test: &str) -> SocketAddr {
    start_with(db_file(test), None, Duration::from_secs(3))
        .await
        .0
}

const JSON: (&str, &str) = ("Content-Type", "application/json");

async fn post_json(addr: SocketAddr, path: &str, body: &Value) -> Answer {
    request(addr, "POST", path, &[JSON], body.to_string().as_bytes()).await
}

fn report(node: &str, port: u16, coordinator: Option<&str>, status: &str, role: &str) -> Value {
    json!({
        "node": node, "address": format!("127.0.0.1:{port}"), "coordinator": coordinator,
        "group": 0, "status": status, "role": role,
    })
}

async fn send_report(addr: SocketAddr, body: &Value) -> Answer {
    let answer = post_json(addr, "/api/report", body).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer
}

/// Three nodes that agree on c.
async fn three_nodes(addr: SocketAddr) {
    send_report(addr, &report("a", 9000, Some("c"), "Normal", "Follower")).await;
    send_report(addr, &report("b", 9001, Some("c"), "Normal", "Follower")).await;
    send_report(addr, &report("c", 9002, Some("c"), "Normal", "Leader")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_update_the_nodes_and_role_changes_are_recorded_once_each() {
    let addr = start("reports").await;
    three_nodes(addr).await;
    // The same report again is no change; a new coordinator is.
    let again = send_report(addr, &report("a", 9000, Some("c"), "Normal", "Follower")).await;
    assert_eq!(again.json()["role_changed"], false);
    let moved = send_report(addr, &report("a", 9000, None, "Election", "Candidate")).await;
    assert_eq!(moved.json()["role_changed"], true);

    let nodes = get(addr, "/api/nodes").await.json();
    let rows: Vec<(&str, &str, &str, bool)> = nodes
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["node"].as_str().unwrap(),
                n["role"].as_str().unwrap(),
                n["status"].as_str().unwrap(),
                n["stale"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("a", "Candidate", "Election", false),
            ("b", "Follower", "Normal", false),
            ("c", "Leader", "Normal", false)
        ]
    );
    assert_eq!(nodes[0]["address"], "127.0.0.1:9000");
    assert_eq!(nodes[0]["coordinator"], Value::Null);

    let roles = get(addr, "/api/roles").await.json();
    let seen: Vec<(&str, &str)> = roles
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["node"].as_str().unwrap(), r["role"].as_str().unwrap()))
        .collect();
    assert_eq!(
        seen,
        [
            ("a", "Follower"),
            ("b", "Follower"),
            ("c", "Leader"),
            ("a", "Candidate")
        ]
    );
    let log = get(addr, "/api/log").await.json();
    assert_eq!(log["reports"].as_array().unwrap().len(), 5);
    let page = get(addr, "/log").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Candidate") && page.body.contains("127.0.0.1:9002"));
}

/// 64 nodes posting at once, as `conclave node --monitor` does every second: the writer
/// stores them in batches (one transaction each), and every answer and role change is
/// as one at a time would make it, also for two reports of one node in the same burst.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_64_reports_is_stored_with_each_role_change_counted_once() {
    let addr = start("burst").await;
    let name = |i: usize| format!("n{i:02}");
    let burst = |role: &'static str, copies: usize| {
        let tasks: Vec<_> = (0..64)
            .flat_map(|i| std::iter::repeat_n(i, copies))
            .map(|i| {
                let body = report(&name(i), 9000 + i as u16, Some("n63"), "Normal", role);
                tokio::spawn(async move { (i, send_report(addr, &body).await.json()) })
            })
            .collect();
        async move {
            let mut changed = vec![0; 64];
            for task in tasks {
                let (i, answer) = task.await.unwrap();
                changed[i] += usize::from(answer["role_changed"] == true);
            }
            changed
        }
    };
    assert_eq!(burst("Follower", 1).await, vec![1; 64], "first reports");
    assert_eq!(burst("Follower", 1).await, vec![0; 64], "the same again");
    // Two identical reports of a new role per node at once: exactly one is the change.
    assert_eq!(
        burst("Candidate", 2).await,
        vec![1; 64],
        "a new role, twice"
    );

    let log = get(addr, "/api/log?limit=1000").await.json();
    assert_eq!(log["reports"].as_array().unwrap().len(), 64 * 4);
    let roles = get(addr, "/api/roles").await.json();
    assert_eq!(roles.as_array().unwrap().len(), 64 * 2);
    let nodes = get(addr, "/api/nodes").await.json();
    let nodes = nodes.as_array().unwrap();
    assert_eq!(nodes.len(), 64);
    assert!(nodes.iter().all(|n| n["role"] == "Candidate"), "{nodes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_a_report_for_longer_than_stale_after_is_stale() {
    let (addr, _task) = start_with(db_file("stale"), None, Duration::from_millis(300)).await;
    send_report(addr, &report("a", 9000, None, "Normal", "Idle")).await;
    let first = get(addr, "/api/nodes").await.json();
    assert_eq!(first[0]["stale"], false);
    let started = Instant::now();
    loop {
        let page = get(addr, "/status").await;
        let nodes = get(addr, "/api/nodes").await.json();
        if nodes[0]["stale"] == true {
            assert!(started.elapsed() >= Duration::from_millis(250));
            assert!(
                page.body.contains("class=\"stale\"") || {
                    // The page was drawn just before the bound passed: draw it again.
                    get(addr, "/status").await.body.contains("class=\"stale\"")
                }
            );
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "never stale");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A new report makes it fresh again.
    send_report(addr, &report("a", 9000, None, "Normal", "Idle")).await;
    assert_eq!(get(addr, "/api/nodes").await.json()[0]["stale"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_set_through_the_api_are_served_as_json_and_as_the_block_file() {
    let addr = start("api-blocks").await;
    three_nodes(addr).await;
    let set = post_json(
        addr,
        "/api/blocks",
        &json!({"blocks": [["c", "a"], ["b", "c"]]}),
    )
    .await;
    assert_eq!(set.status, 200, "{}", set.body);
    assert_eq!(set.json(), json!([["a", "c"], ["b", "c"]]));
    assert_eq!(
        get(addr, "/api/blocks").await.json(),
        json!([["a", "c"], ["b", "c"]])
    );
    let txt = get(addr, "/api/blocks.txt").await;
    assert_eq!(txt.body, "a c\nb c\n");
    assert_eq!(
        txt.header("content-type"),
        Some("text/plain; charset=utf-8")
    );

    // An unknown node, or one node twice: 4xx, and the list stays.
    let unknown = post_json(addr, "/api/blocks", &json!({"blocks": [["a", "zed"]]})).await;
    assert_eq!(unknown.status, 422);
    assert_eq!(
        unknown.body,
        "unknown node \"zed\": no node of that name has reported"
    );
    let twice = post_json(addr, "/api/blocks", &json!({"blocks": [["a", "a"]]})).await;
    assert_eq!(twice.status, 400);
    assert_eq!(get(addr, "/api/blocks.txt").await.body, "a c\nb c\n");

    let reset = post_json(addr, "/api/blocks", &json!({"blocks": []})).await;
    assert_eq!(reset.json(), json!([]));
    assert_eq!(get(addr, "/api/blocks.txt").await.body, "");
    let history = get(addr, "/api/log").await.json()["blocks"].clone();
    assert_eq!(history.as_array().unwrap().len(), 2, "{history}");
}

/// The form's CSRF token, read from the page as a browser would.
fn csrf_of(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .expect("the form's CSRF field")
        + 19;
    page[at..at + 32].to_string()
}

async fn post_form(addr: SocketAddr, body: &str, origin: Option<String>) -> Answer {
    let mut headers = vec![("Content-Type", "application/x-www-form-urlencoded")];
    if let Some(o) = &origin {
        headers.push(("Origin", o));
    }
    request(addr, "POST", "/status/blocks", &headers, body.as_bytes()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_block_form_needs_the_pages_csrf_token_and_the_same_origin() {
    let addr = start("form").await;
    three_nodes(addr).await;
    let page = get(addr, "/status").await;
    assert_eq!(page.status, 200);
    for pair in ["value=\"a b\"", "value=\"a c\"", "value=\"b c\""] {
        assert!(page.body.contains(pair), "no checkbox {pair}");
    }
    let csrf = csrf_of(&page.body);
    let ours = Some(format!("http://{addr}"));

    let without = post_form(addr, "pair=a+b&action=block", ours.clone()).await;
    assert_eq!(without.status, 403, "{}", without.body);
    let wrong = post_form(addr, "csrf=00&pair=a+b&action=block", ours.clone()).await;
    assert_eq!(wrong.status, 403);
    let body = format!("csrf={csrf}&pair=a+b&action=block");
    let foreign = post_form(addr, &body, Some("http://evil.example".into())).await;
    assert_eq!(foreign.status, 403);
    assert_eq!(
        foreign.body,
        "cross-site request refused: Origin http://evil.example is not this monitor"
    );
    assert_eq!(
        get(addr, "/api/blocks").await.json(),
        json!([]),
        "nothing changed"
    );

    let body = format!("csrf={csrf}&pair=a+b&pair=b+c&action=block");
    let ok = post_form(addr, &body, ours.clone()).await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert_eq!(ok.header("location"), Some("/status"));
    assert_eq!(
        get(addr, "/api/blocks").await.json(),
        json!([["a", "b"], ["b", "c"]])
    );
    let page = get(addr, "/status").await.body;
    assert!(
        page.contains("value=\"a b\" checked"),
        "ticked after the submit"
    );

    let reset = post_form(addr, &format!("csrf={csrf}&action=reset"), None).await;
    assert_eq!(reset.status, 303);
    assert_eq!(get(addr, "/api/blocks").await.json(), json!([]));
    let sources: Vec<String> = get(addr, "/api/log").await.json()["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["source"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(sources, ["form", "reset"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_monitor_restarted_on_the_same_database_still_has_the_log() {
    let db = db_file("restart");
    let (addr, first) = start_with(db.clone(), None, Duration::from_secs(3)).await;
    three_nodes(addr).await;
    let set = post_json(addr, "/api/blocks", &json!({"blocks": [["a", "b"]]})).await;
    assert_eq!(set.status, 200);
    first.abort();
    let _ = first.await;

    let (addr, _second) = start_with(db, None, Duration::from_secs(3)).await;
    assert_eq!(
        get(addr, "/api/roles")
            .await
            .json()
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        get(addr, "/api/nodes")
            .await
            .json()
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(get(addr, "/api/blocks.txt").await.body, "a b\n");
    // Role detection goes on from the stored reports: the same report is no change.
    let again = send_report(addr, &report("c", 9002, Some("c"), "Normal", "Leader")).await;
    assert_eq!(again.json()["role_changed"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_get_clear_4xx_answers_and_change_nothing() {
    let addr = start("bad").await;
    let post = |body: &'static [u8], headers: &'static [(&'static str, &'static str)]| {
        request(addr, "POST", "/api/report", headers, body)
    };
    let a = post(b"{\"node\": ", &[JSON]).await;
    assert_eq!(a.status, 400);
    assert!(a.body.starts_with("body is not JSON: "), "{}", a.body);
    let a = post(
        br#"{"node": "a", "address": "x", "group": 0, "status": "s", "role": "Boss"}"#,
        &[JSON],
    )
    .await;
    assert_eq!(a.status, 400);
    assert!(
        a.body
            .starts_with("bad JSON body at role: unknown variant `Boss`"),
        "{}",
        a.body
    );
    let a = post(
        br#"{"node": "a b", "address": "x", "group": 0, "status": "s", "role": "Idle"}"#,
        &[JSON],
    )
    .await;
    assert_eq!(a.status, 400);
    assert!(a.body.starts_with("bad node \"a b\""), "{}", a.body);
    let a = post(br#"{"node": "a"}"#, &[("Content-Type", "text/plain")]).await;
    assert_eq!(a.status, 415);
    let big = vec![b' '; monitor::MAX_BODY_BYTES + 1];
    let a = request(addr, "POST", "/api/report", &[JSON], &big).await;
    assert_eq!(a.status, 413);
    let a = post_json(addr, "/api/blocks", &json!({"blocks": "a b"})).await;
    assert_eq!(a.status, 400);
    assert_eq!(get(addr, "/nope").await.status, 404);
    assert_eq!(get(addr, "/api/nodes").await.json(), json!([]));
    assert_eq!(get(addr, "/api/log").await.json()["reports"], json!([]));
    let root = get(addr, "/").await;
    assert_eq!(
        (root.status, root.header("location")),
        (303, Some("/status"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_token_every_request_needs_it_and_a_browser_keeps_it_in_a_cookie() {
    let not_loopback = Options::new(
        "0.0.0.0:4711".parse().unwrap(),
        db_file("token-refused"),
        None,
        Duration::from_secs(3),
    );
    assert_eq!(
        not_loopback.unwrap_err().to_string(),
        "--listen 0.0.0.0:4711 is not a loopback address: a monitor other machines can reach \
         needs --token-file (nodes send the token as Authorization: Bearer)"
    );
    let (addr, _task) = start_with(db_file("token"), Some("s3cret"), Duration::from_secs(3)).await;
    let body = report("a", 9000, None, "Normal", "Idle").to_string();
    let none = request(addr, "POST", "/api/report", &[JSON], body.as_bytes()).await;
    assert_eq!(none.status, 401);
    let wrong = [JSON, ("Authorization", "Bearer nope")];
    assert_eq!(
        request(addr, "POST", "/api/report", &wrong, body.as_bytes())
            .await
            .status,
        401
    );
    assert_eq!(get(addr, "/status").await.status, 401);
    assert_eq!(get(addr, "/api/nodes").await.status, 401);
    let right = [JSON, ("Authorization", "Bearer s3cret")];
    assert_eq!(
        request(addr, "POST", "/api/report", &right, body.as_bytes())
            .await
            .status,
        200
    );
    let link = get(addr, "/status?token=s3cret").await;
    assert_eq!(link.status, 200);
    let cookie = link.header("set-cookie").expect("a cookie").to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let kept = cookie.split(';').next().unwrap();
    let nodes = request(addr, "GET", "/api/nodes", &[("Cookie", kept)], b"").await;
    assert_eq!(nodes.json()[0]["node"], "a");
}

/// Reads server-sent events from `/api/events` until one `state` satisfies `done`.
async fn follow_events(addr: SocketAddr, done: impl Fn(&Value) -> bool) -> Value {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head =
        format!("GET /api/events HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 8192];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let n = tokio::time::timeout_at(deadline.into(), stream.read(&mut buf))
            .await
            .expect("an event within 10 s")
            .unwrap();
        assert!(n > 0, "the stream closed");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        for line in seen.lines().filter_map(|l| l.strip_prefix("data: ")) {
            if let Ok(state) = serde_json::from_str::<Value>(line) {
                if done(&state) {
                    return state;
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_pushes_a_report_as_it_arrives() {
    let addr = start("events").await;
    let waiting = tokio::spawn(follow_events(addr, |s| {
        s["nodes"].as_array().is_some_and(|n| !n.is_empty())
    }));
    // The first event (empty) comes at once; the report's comes on its change.
    let empty = follow_events(addr, |s| s["nodes"] == json!([])).await;
    assert_eq!(empty["blocks"], json!([]));
    let started = Instant::now();
    send_report(addr, &report("a", 9000, None, "Election", "Candidate")).await;
    let state = waiting.await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(state["nodes"][0]["status"], "Election");
    assert_eq!(state["roles"][0]["role"], "Candidate");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_export_is_a_run_report_that_conclave_report_reads_and_draws() {
    let addr = start("export").await;
    three_nodes(addr).await;
    send_report(addr, &report("c", 9002, None, "Down?", "Candidate")).await;
    let set = post_json(addr, "/api/blocks", &json!({"blocks": [["a", "c"]]})).await;
    assert_eq!(set.status, 200);
    let export = get(addr, "/api/export").await;
    assert_eq!(export.status, 200);
    let value = export.json();
    assert_eq!(value["scenario"], "monitor");
    let events: Vec<(&str, &str)> = value["trace"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["node"].as_str().unwrap(), e["event"].as_str().unwrap()))
        .collect();
    assert_eq!(
        events,
        [
            ("a", "start"),
            ("a", "role"),
            ("b", "start"),
            ("b", "role"),
            ("c", "start"),
            ("c", "role"),
            ("c", "role"),
            ("a", "block")
        ]
    );
    assert_eq!(value["trace"][0]["time_us"], 0);
    assert_eq!(value["elections"], json!({"started": 1, "won": 1}));

    let loaded = conclave_reports::load_json(&export.body).expect("the reader takes it");
    let source = loaded.source("monitor.json");
    let files = conclave_reports::files(&source);
    let html = &files
        .iter()
        .find(|(name, _)| name.ends_with(".html"))
        .expect("an HTML report")
        .1;
    assert!(html.contains(r#""lanes":["a","b","c"]"#), "a lane per node");
    assert!(
        html.contains("<td>Down?</td>"),
        "the nodes' last status is drawn"
    );
}
