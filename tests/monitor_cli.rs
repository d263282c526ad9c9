//! `conclave monitor` as a user starts it: the line it prints, a report posted to it, and
//! its export handed to `conclave report`; its refusals of bad flags (exit 2).

use std::io::{Read, Write};
use std::net::TcpStream;

mod common;
use common::{conclave, expect_code, start_server, stderr};

fn scratch(test: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "conclave-monitor-cli-{}-{test}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// One request on its own connection; the answer's body.
fn http(port: &str, method: &str, path: &str, body: &str) -> String {
    let mut stream = TcpStream::connect(format!("127.0.0.1:{port}")).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    answer.split_once("\r\n\r\n").unwrap().1.to_string()
}

#[test]
fn monitor_takes_a_report_and_conclave_report_draws_its_export() {
    let dir = scratch("export");
    let db = dir.join("log/monitor.sqlite3");
    let db_arg = db.display().to_string();
    let (monitor, line) = start_server(&["monitor", "--listen", "127.0.0.1:0", "--db", &db_arg]);
    let rest = line
        .strip_prefix("monitor listening on http://127.0.0.1:")
        .unwrap_or_else(|| panic!("first line: {line:?}"));
    let (port, tail) = rest.split_once("/status").unwrap();
    assert_eq!(tail.trim(), format!("(log in {})", db.display()));
    let report = r#"{"node": "n1", "address": "127.0.0.1:7001", "coordinator": "n1",
                     "group": 0, "status": "Normal", "role": "Leader"}"#;
    assert_eq!(
        http(port, "POST", "/api/report", report),
        r#"{"role_changed":true}"#
    );
    let export = http(port, "GET", "/api/export", "");
    let file = dir.join("export.json");
    std::fs::write(&file, export).unwrap();
    let out = dir.join("report");
    let o = conclave(&[
        "report",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    expect_code(&o, 0);
    let html =
        std::fs::read_to_string(out.join("monitor.seed-0.html")).expect("monitor.seed-0.html");
    assert!(html.contains("n1"));
    assert!(db.exists(), "the database is created with its folder");
    drop(monitor);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn monitor_refuses_a_non_loopback_address_without_a_token_and_a_bad_duration() {
    let o = conclave(&["monitor", "--listen", "0.0.0.0:0"]);
    expect_code(&o, 2);
    assert_eq!(
        stderr(&o),
        "error: --listen 0.0.0.0:0 is not a loopback address: a monitor other machines can \
         reach needs --token-file (nodes send the token as Authorization: Bearer)\n"
    );
    let o = conclave(&["monitor", "--stale-after", "soon"]);
    expect_code(&o, 2);
    assert!(
        stderr(&o).contains("invalid value 'soon' for '--stale-after <DUR>'"),
        "{}",
        stderr(&o)
    );
}
