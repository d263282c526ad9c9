//! A registry on 127.0.0.1 (a port from the OS) and a small HTTP/1.1 client over a plain
//! `TcpStream`, so the tests see exactly the bytes a Consul client would.

#![allow(dead_code)]

use conclave_services::registry::{self, Options};
use serde_json::Value;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Starts a registry in this test's runtime (it ends with the runtime).
pub async fn start(token: Option<&str>) -> SocketAddr {
    let options = Options {
        listen: "127.0.0.1:0".parse().unwrap(),
        token: token.map(String::from),
    };
    let registry = registry::bind(options).await.expect("bind 127.0.0.1:0");
    let addr = registry.local_addr();
    tokio::spawn(registry.run());
    addr
}

#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn index(&self) -> u64 {
        self.header("X-Consul-Index")
            .expect("X-Consul-Index header")
            .parse()
            .expect("X-Consul-Index is a number")
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.body))
    }
}

/// One request on its own connection (`Connection: close`); write errors are ignored so
/// that an answer the server gives early (413) is still read.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Answer {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body).await;
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(_) if !raw.is_empty() => break,
            Err(e) => panic!("{method} {path}: reading the answer: {e}"),
        }
    }
    parse(&String::from_utf8_lossy(&raw))
}

fn parse(raw: &str) -> Answer {
    let (head, body) = raw.split_once("\r\n\r\n").expect("an HTTP answer");
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Answer {
        status,
        headers,
        body: body.to_string(),
    }
}

pub async fn get(addr: SocketAddr, path: &str) -> Answer {
    request(addr, "GET", path, &[], b"").await
}

pub async fn put(addr: SocketAddr, path: &str, body: &str) -> Answer {
    request(addr, "PUT", path, &[], body.as_bytes()).await
}

/// The service IDs of a health or catalog answer, in order.
pub fn ids(answer: &Answer) -> Vec<String> {
    answer
        .json()
        .as_array()
        .expect("a list")
        .iter()
        .map(|e| {
            let id = e.pointer("/Service/ID").or_else(|| e.get("ServiceID"));
            id.and_then(Value::as_str).unwrap().to_string()
        })
        .collect()
}

/// Follows a blocking query on `path` until `done` holds (at most 15 s); returns that answer.
pub async fn wait_for(addr: SocketAddr, path: &str, done: impl Fn(&Answer) -> bool) -> Answer {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let mut answer = get(addr, path).await;
    let sep = if path.contains('?') { '&' } else { '?' };
    while !done(&answer) {
        assert!(
            std::time::Instant::now() < deadline,
            "{path}: still {} after 15 s",
            answer.body
        );
        let blocking = format!("{path}{sep}index={}&wait=5s", answer.index());
        answer = get(addr, &blocking).await;
    }
    answer
}

/// A port nothing listens on (free, outside the ephemeral range where no connection's
/// source port lands).
pub fn closed_port() -> u16 {
    conclave_testkit::ports::port_block(1)
}
