//! The monitor's `/status` page in a real browser: headless Chromium, driven by
//! `tests/browser/status.mjs` with the playwright-core that the reports crate's browser
//! tests install. The table follows a report live, and the form blocks a pair.
//!
//! Needs `/usr/bin/chromium` (or `CHROMIUM`), `node`, and `npm ci` run in
//! `reports/tests/browser`. Without them the test says why and passes, unless
//! `CONCLAVE_BROWSER_TESTS=1`, which makes a missing browser a failure (CI sets it).

use conclave_services::monitor::{self, Options};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// reports/tests/browser: where playwright-core is installed.
fn playwright_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../reports/tests/browser")
}

#[path = "../../reports/tests/browser/support.rs"]
mod support;

/// Whether to go on (see `reports/tests/browser/support.rs`): Chromium, node, playwright-core.
fn browser_or_skip(test: &str) -> bool {
    support::browser_or_skip(test, &playwright_dir(), &["playwright-core"])
}

/// A report from the test itself, before the page opens.
async fn report(addr: std::net::SocketAddr, node: &str, port: u16, role: &str) {
    let body = json!({
        "node": node, "address": format!("127.0.0.1:{port}"), "coordinator": "n2",
        "group": 0, "status": "Normal", "role": role,
    })
    .to_string();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /api/report HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[test]
fn status_page_follows_a_report_live_and_its_form_blocks_a_pair() {
    let test = "status_page_follows_a_report_live_and_its_form_blocks_a_pair";
    if !browser_or_skip(test) {
        return;
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("monitor-browser");
    let _ = std::fs::remove_dir_all(&dir);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let addr = runtime.block_on(async {
        let options = Options {
            listen: "127.0.0.1:0".parse().unwrap(),
            db: dir.join("monitor.sqlite3"),
            token: None,
            stale_after: Duration::from_secs(3),
        };
        let monitor = monitor::bind(options).await.unwrap();
        let addr = monitor.local_addr();
        tokio::spawn(monitor.run());
        report(addr, "n1", 7001, "Follower").await;
        report(addr, "n2", 7002, "Leader").await;
        addr
    });
    let out = Command::new("node")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/status.mjs"))
        .arg(playwright_dir().join("package.json"))
        .arg(format!("http://{addr}"))
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "status.mjs failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_str(stdout.trim()).expect("status.mjs prints JSON");
    assert_eq!(r["errors"], json!([]), "{r}");
    assert_eq!(
        (r["rows_before"].as_u64(), r["rows_after"].as_u64()),
        (Some(2), Some(3)),
        "{r}"
    );
    assert_eq!(r["pairs"], json!(["n1 n2", "n1 n3", "n2 n3"]), "{r}");
    assert!(r["live_ms"].as_u64().unwrap() < 5000, "{r}");
    assert_eq!(r["blocked_text"], "n1-n3", "{r}");
    assert_eq!(r["api_blocks"], json!([["n1", "n3"]]), "{r}");
    eprintln!(
        "{test}: the row appeared {} ms after the report",
        r["live_ms"]
    );
}
