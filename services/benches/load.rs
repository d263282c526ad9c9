//! Bounded load on loopback against the registry and the monitor, both started
//! in-process on 127.0.0.1 with a port from the OS, in one tokio runtime of two worker
//! threads that also runs the clients (the machine has two cores: clients and server share
//! them, so the figures are a floor for a server with the machine to itself).
//!
//! - `registry/health_passing/clients=K`: the registry holds 4 instances of `voter`, each
//!   with a passing TTL check. K keep-alive HTTP/1.1 connections (raw `TcpStream`s, one
//!   request in flight on each) share a batch of [`HEALTH_REQUESTS`] requests
//!   `GET /v1/health/service/voter?passing`; a sample is the wall time of one batch, so the
//!   throughput line is requests per second. Before timing, one answer is checked: 200,
//!   four instances, every check passing; during timing each answer must be 200 with the
//!   same body length (a cheap guard that the registry kept answering the same list).
//! - `monitor/report_round/nodes=64`: 64 keep-alive connections each post one report
//!   (`POST /api/report`) at the same instant; a sample is the time until the last answer.
//!   Throughput is reports per second.
//!
//! Then, outside criterion, the claim itself: 64 simulated nodes each post a report every
//! second for [`RUN_SECONDS`] s against a fresh monitor (its SQLite file in a temp folder),
//! once with all 64 reporting at the same instant each second (the worst case: a burst)
//! and once with their phases spread over the second. Each report's latency is measured
//! from its scheduled instant to its answer (so a report held up behind a slow previous one
//! counts its wait); a report is late if that exceeds one second. The summary line gives
//! p50, p99 and max, the late count, and the rows `/api/log` holds afterwards (every report
//! must be there, ten per node). It panics if a report is refused, late or missing.
//!
//! ```text
//! monitor/64_nodes_every_second/burst: 640 reports in 10 s: latency p50 22.3 ms, p99 30.8 ms, max 32.6 ms; 0 late (> 1 s); 640 of 640 stored (10 per node)
//! monitor/64_nodes_every_second/spread: 640 reports in 10 s: latency p50 2.1 ms, p99 6.6 ms, max 16.9 ms; 0 late (> 1 s); 640 of 640 stored (10 per node)
//! ```
//!
//! Run: `cargo bench -p conclave-services --bench load` (under two minutes).

use conclave_services::{monitor, registry};
use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;

/// Requests in one registry batch, shared evenly by the clients.
const HEALTH_REQUESTS: usize = 32_000;
const HEALTH_CLIENTS: [usize; 2] = [16, 32];
const INSTANCES: usize = 4;
const NODES: usize = 64;
const RUN_SECONDS: u32 = 10;

/// One keep-alive HTTP/1.1 connection, one request at a time.
struct Conn {
    stream: BufReader<TcpStream>,
    line: String,
    body: Vec<u8>,
}

impl Conn {
    async fn open(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr)
            .await
            .expect("connect to 127.0.0.1");
        stream.set_nodelay(true).expect("TCP_NODELAY");
        Conn {
            stream: BufReader::new(stream),
            line: String::new(),
            body: Vec::new(),
        }
    }

    /// Sends `request` (whole, head and body) and reads the answer into `self.body`;
    /// returns the status code.
    async fn exchange(&mut self, request: &[u8]) -> u16 {
        self.stream
            .get_mut()
            .write_all(request)
            .await
            .expect("send");
        self.line.clear();
        self.stream
            .read_line(&mut self.line)
            .await
            .expect("status line");
        let status: u16 = self
            .line
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("not an HTTP status line: {:?}", self.line));
        let mut length = None;
        loop {
            self.line.clear();
            self.stream.read_line(&mut self.line).await.expect("header");
            let header = self.line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse::<usize>().ok();
                }
            }
        }
        let length = length.expect("every answer here carries Content-Length");
        self.body.resize(length, 0);
        self.stream.read_exact(&mut self.body).await.expect("body");
        status
    }
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn put_request(path: &str, body: &str) -> Vec<u8> {
    format!(
        "PUT {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn post_json_request(path: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn get_request(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").into_bytes()
}

/// Starts the registry with [`INSTANCES`] passing instances of `voter`; returns its address
/// and the length of the checked answer to the health listing.
async fn start_registry() -> (SocketAddr, usize) {
    let options = registry::Options::new("127.0.0.1:0".parse().unwrap(), None).unwrap();
    let registry = registry::bind(options).await.expect("bind 127.0.0.1:0");
    let addr = registry.local_addr();
    tokio::spawn(registry.run());
    let mut conn = Conn::open(addr).await;
    for i in 0..INSTANCES {
        let body = format!(
            r#"{{"Name": "voter", "ID": "voter-{i}", "Address": "127.0.0.1", "Port": {},
                "Check": {{"TTL": "10m", "Status": "passing"}}}}"#,
            9000 + i
        );
        let status = conn
            .exchange(&put_request("/v1/agent/service/register", &body))
            .await;
        assert_eq!(status, 200, "registering voter-{i}");
    }
    let status = conn.exchange(&get_request(HEALTH_PATH)).await;
    assert_eq!(status, 200, "GET {HEALTH_PATH}");
    let answer: Value = serde_json::from_slice(&conn.body).expect("a JSON answer");
    let entries = answer.as_array().expect("a JSON list");
    assert_eq!(entries.len(), INSTANCES, "{answer}");
    for entry in entries {
        for check in entry["Checks"].as_array().expect("Checks") {
            assert_eq!(check["Status"], "passing", "{entry}");
        }
    }
    (addr, conn.body.len())
}

const HEALTH_PATH: &str = "/v1/health/service/voter?passing";

/// One batch: each connection sends `per_client` requests in turn; returns the wall time.
async fn health_batch(conns: &mut Vec<Conn>, per_client: usize, body_len: usize) -> Duration {
    let request: &'static [u8] = get_request(HEALTH_PATH).leak();
    let start = Instant::now();
    let tasks: Vec<_> = conns
        .drain(..)
        .map(|mut conn| {
            tokio::spawn(async move {
                for _ in 0..per_client {
                    let status = conn.exchange(request).await;
                    assert!(status == 200 && conn.body.len() == body_len);
                }
                conn
            })
        })
        .collect();
    for task in tasks {
        conns.push(task.await.expect("a client task"));
    }
    start.elapsed()
}

fn registry_health(c: &mut Criterion) {
    let rt = runtime();
    let (addr, body_len) = rt.block_on(start_registry());
    println!("registry/health_passing: checked: 200, {INSTANCES} instances, all checks passing ({body_len} bytes)");
    let mut group = c.benchmark_group("registry/health_passing");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10))
        .throughput(Throughput::Elements(HEALTH_REQUESTS as u64));
    for clients in HEALTH_CLIENTS {
        let per_client = HEALTH_REQUESTS / clients;
        assert_eq!(per_client * clients, HEALTH_REQUESTS);
        let mut conns = rt.block_on(async {
            let mut conns = Vec::new();
            for _ in 0..clients {
                conns.push(Conn::open(addr).await);
            }
            conns
        });
        group.bench_function(BenchmarkId::new("clients", clients), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| rt.block_on(health_batch(&mut conns, per_client, body_len)))
                    .sum()
            })
        });
    }
    group.finish();
}

/// A fresh database file in a temp folder of its own.
fn db_file(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("conclave-bench-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir.join("monitor.sqlite3")
}

async fn start_monitor(db: PathBuf) -> SocketAddr {
    let options = monitor::Options::new(
        "127.0.0.1:0".parse().unwrap(),
        db,
        None,
        Duration::from_secs(3),
    )
    .unwrap();
    let monitor = monitor::bind(options).await.expect("bind 127.0.0.1:0");
    let addr = monitor.local_addr();
    tokio::spawn(monitor.run());
    addr
}

fn node_name(i: usize) -> String {
    format!("n{i:02}")
}

/// Node `i`'s report, as `conclave node --monitor` posts it: all follow the highest.
fn report_request(i: usize) -> Vec<u8> {
    let body = serde_json::json!({
        "node": node_name(i), "address": format!("127.0.0.1:{}", 9000 + i),
        "coordinator": node_name(NODES - 1), "group": 0, "status": "Normal",
        "role": if i == NODES - 1 { "Leader" } else { "Follower" },
    });
    post_json_request("/api/report", &body.to_string())
}

async fn open_nodes(addr: SocketAddr) -> Vec<(Conn, Vec<u8>)> {
    let mut nodes = Vec::new();
    for i in 0..NODES {
        nodes.push((Conn::open(addr).await, report_request(i)));
    }
    nodes
}

/// One round: every node posts one report at once; returns the time to the last answer.
async fn report_round(nodes: &mut Vec<(Conn, Vec<u8>)>) -> Duration {
    let start = Instant::now();
    let tasks: Vec<_> = nodes
        .drain(..)
        .map(|(mut conn, request)| {
            tokio::spawn(async move {
                assert_eq!(conn.exchange(&request).await, 200);
                (conn, request)
            })
        })
        .collect();
    for task in tasks {
        nodes.push(task.await.expect("a node task"));
    }
    start.elapsed()
}

fn monitor_round(c: &mut Criterion) {
    let rt = runtime();
    let db = db_file("round");
    let addr = rt.block_on(start_monitor(db.clone()));
    let mut nodes = rt.block_on(open_nodes(addr));
    let mut group = c.benchmark_group("monitor/report_round");
    group
        .sample_size(20)
        .throughput(Throughput::Elements(NODES as u64));
    group.bench_function(BenchmarkId::new("nodes", NODES), |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| rt.block_on(report_round(&mut nodes)))
                .sum()
        })
    });
    group.finish();
    drop(rt);
    let _ = std::fs::remove_dir_all(db.parent().unwrap());
}

/// Node `i` of the every-second run: returns each report's latency from its scheduled
/// instant to its answer.
async fn node_every_second(
    mut conn: Conn,
    request: Vec<u8>,
    first: tokio::time::Instant,
) -> Vec<Duration> {
    let mut latencies = Vec::new();
    for k in 0..RUN_SECONDS {
        let due = first + Duration::from_secs(k.into());
        tokio::time::sleep_until(due).await;
        assert_eq!(conn.exchange(&request).await, 200);
        latencies.push(due.elapsed());
    }
    latencies
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// 64 nodes reporting every second for [`RUN_SECONDS`] s; prints the summary line.
fn monitor_every_second(spread: bool) {
    let name = if spread { "spread" } else { "burst" };
    let rt = runtime();
    let db = db_file(name);
    rt.block_on(async {
        let addr = start_monitor(db.clone()).await;
        let start = tokio::time::Instant::now() + Duration::from_millis(100);
        let tasks: Vec<_> = open_nodes(addr)
            .await
            .into_iter()
            .enumerate()
            .map(|(i, (conn, request))| {
                let phase = if spread {
                    Duration::from_secs(1) * i as u32 / NODES as u32
                } else {
                    Duration::ZERO
                };
                tokio::spawn(node_every_second(conn, request, start + phase))
            })
            .collect();
        let mut latencies = Vec::new();
        for task in tasks {
            latencies.extend(task.await.expect("a node task"));
        }
        latencies.sort();
        let late = latencies
            .iter()
            .filter(|l| **l > Duration::from_secs(1))
            .count();
        let mut conn = Conn::open(addr).await;
        assert_eq!(
            conn.exchange(&get_request("/api/log?limit=100000")).await,
            200
        );
        let log: Value = serde_json::from_slice(&conn.body).expect("JSON log");
        let reports = log["reports"].as_array().expect("reports");
        let per_node_ok = (0..NODES).all(|i| {
            let node = node_name(i);
            reports
                .iter()
                .filter(|r| r["node"] == node.as_str())
                .count()
                == RUN_SECONDS as usize
        });
        let expected = NODES * RUN_SECONDS as usize;
        println!(
            "monitor/64_nodes_every_second/{name}: {expected} reports in {RUN_SECONDS} s: \
             latency p50 {}, p99 {}, max {}; {late} late (> 1 s); {} of {expected} stored{}",
            ms(percentile(&latencies, 50.0)),
            ms(percentile(&latencies, 99.0)),
            ms(*latencies.last().unwrap()),
            reports.len(),
            if per_node_ok {
                format!(" ({RUN_SECONDS} per node)")
            } else {
                format!(" (NOT {RUN_SECONDS} per node)")
            },
        );
        assert_eq!(late, 0, "reports later than a second");
        assert!(
            reports.len() == expected && per_node_ok,
            "reports missing from the log"
        );
    });
    drop(rt);
    let _ = std::fs::remove_dir_all(db.parent().unwrap());
}

fn monitor_reports(c: &mut Criterion) {
    monitor_round(c);
    monitor_every_second(false);
    monitor_every_second(true);
}

criterion_group!(benches, registry_health, monitor_reports);
criterion_main!(benches);
