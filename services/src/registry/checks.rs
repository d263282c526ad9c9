//! The health checks the registry runs itself, as a Consul agent does: one tokio task per
//! check, each probe bounded by the check's timeout, and a reaper for
//! `DeregisterCriticalServiceAfter`.
//!
//! - TCP: passing when a connection opens ("TCP connect 127.0.0.1:80: Success"), else
//!   critical with the error ("dial tcp 127.0.0.1:80: Connection refused ...").
//! - HTTP (`http://` only): passing on 2xx, warning on 429, critical otherwise, with Consul's
//!   output ("HTTP GET http://h/p: 200 OK Output: ...").
//! - TTL: critical once the TTL passes without `PUT /v1/agent/check/pass/<id>`.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use conclave_services::registry::checks::probe;
//! use conclave_services::registry::wire::{CheckKind, Status};
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
//! let kind = CheckKind::Tcp(listener.local_addr().unwrap().to_string());
//! let (status, _) = probe(&kind, std::time::Duration::from_secs(1)).await;
//! assert_eq!(status, Status::Passing);
//! # });
//! ```

use super::wire::{CheckDef, CheckKind, Status};
use super::Shared;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::AbortHandle;

/// How much of an HTTP check's answer is kept as its output (Consul keeps 4 KiB).
const HTTP_OUTPUT_BYTES: usize = 4096;

/// Starts the task that keeps one check's status; the caller aborts it on deregistration.
pub(crate) fn spawn(shared: Arc<Shared>, def: CheckDef) -> AbortHandle {
    let task = async move {
        match def.kind {
            CheckKind::Ttl(ttl) => watch_ttl(&shared, &def.id, ttl).await,
            _ => run_probes(&shared, &def).await,
        }
    };
    tokio::spawn(task).abort_handle()
}

/// Probes at once, then every interval, until the check is gone.
async fn run_probes(shared: &Shared, def: &CheckDef) {
    loop {
        let (status, output) = probe(&def.kind, def.timeout).await;
        if !shared.update(|inner| inner.catalog.set_check(&def.id, status, output)) {
            return;
        }
        tokio::time::sleep(def.interval).await;
    }
}

/// Marks a TTL check critical whenever its deadline passes without an update.
async fn watch_ttl(shared: &Shared, id: &str, ttl: Duration) {
    loop {
        let deadline = shared.update(|inner| inner.catalog.check(id).and_then(|c| c.ttl_deadline));
        let Some(deadline) = deadline else { return };
        if Instant::now() >= deadline {
            let expired = "TTL expired".to_string();
            shared.update(|inner| inner.catalog.set_check(id, Status::Critical, expired));
            tokio::time::sleep(ttl).await;
        } else {
            tokio::time::sleep_until(deadline.into()).await;
        }
    }
}

/// Deregisters, once a second, every instance critical longer than its check allows.
pub(crate) async fn reap_critical(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        shared.update(|inner| {
            for id in inner.catalog.critical_too_long(Instant::now()) {
                inner.deregister(&id);
            }
        });
    }
}

/// Runs one probe of a TCP or HTTP check within `timeout`.
pub async fn probe(kind: &CheckKind, timeout: Duration) -> (Status, String) {
    match kind {
        CheckKind::Tcp(addr) => probe_tcp(addr, timeout).await,
        CheckKind::Http { url, method } => probe_http(url, method, timeout).await,
        CheckKind::Ttl(_) => (Status::Critical, "a TTL check is not probed".into()),
    }
}

async fn probe_tcp(addr: &str, timeout: Duration) -> (Status, String) {
    match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(_)) => (Status::Passing, format!("TCP connect {addr}: Success")),
        Ok(Err(e)) => (Status::Critical, format!("dial tcp {addr}: {e}")),
        Err(_) => (Status::Critical, format!("dial tcp {addr}: i/o timeout")),
    }
}

async fn probe_http(url: &str, method: &str, timeout: Duration) -> (Status, String) {
    let Some(rest) = url.strip_prefix("http://") else {
        let why = "conclave registry runs http:// checks only (no TLS)";
        return (Status::Critical, format!("{method} {url}: {why}"));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| !p.contains(']'))
    {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let exchange = async {
        let mut stream = TcpStream::connect(&addr).await?;
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: Consul Health Check\r\n\
             Accept: text/plain, text/*, */*\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await?;
        let mut answer = Vec::new();
        let mut buf = [0u8; 1024];
        while answer.len() < HTTP_OUTPUT_BYTES + 1024 {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
        }
        Ok::<_, std::io::Error>(answer)
    };
    let answer = match tokio::time::timeout(timeout, exchange).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(e)) => return (Status::Critical, format!("{method} {url}: {e}")),
        Err(_) => {
            let why = "request canceled (Client.Timeout exceeded while awaiting headers)";
            return (Status::Critical, format!("{method} {url}: {why}"));
        }
    };
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status_line = head.lines().next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    let code: Option<u16> = match (parts.next(), parts.next()) {
        (Some(v), Some(code)) if v.starts_with("HTTP/") => code.parse().ok(),
        _ => None,
    };
    let Some(code) = code else {
        return (
            Status::Critical,
            format!("{method} {url}: malformed HTTP answer"),
        );
    };
    let reason = parts.next().unwrap_or("");
    let body: String = body.chars().take(HTTP_OUTPUT_BYTES).collect();
    let output = format!("HTTP {method} {url}: {code} {reason} Output: {body}");
    let status = match code {
        200..=299 => Status::Passing,
        429 => Status::Warning,
        _ => Status::Critical,
    };
    (status, output)
}
