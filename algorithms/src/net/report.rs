//! Reporting to a monitor (seed 002's central log server, `conclave monitor`) and taking its
//! block list (feature `net`).
//!
//! [`run_reporter`] runs beside a node: every [`Monitor::period`] it POSTs the node's
//! latest view to `URL/api/report` as a [`Report`], and GETs `URL/api/blocks.txt` (one `a b`
//! pair of node names a line) and writes it, when it changed, to the node's block file by a
//! temporary file and a rename, so the runtime, which polls that file, never reads half of
//! it. A failed request is logged (once, until the next success) and tried again the next
//! period: a monitor that is down never stops a node. At shutdown a last report says
//! `status: "Stopped"`.
//!
//! ```no_run
//! use conclave_algorithms::net::report::{run_reporter, Monitor, Reporting};
//! use conclave_algorithms::{Role, View};
//! # async fn f() {
//! let (views_tx, views) = tokio::sync::watch::channel(View::new(Role::Idle, None, "Starting"));
//! let (stop, shutdown) = tokio::sync::watch::channel(false);
//! let monitor = Monitor::new("http://127.0.0.1:4711", None);
//! let node = Reporting {
//!     name: "a".into(),
//!     address: "127.0.0.1:7000".into(),
//!     names: vec!["a".into(), "b".into()],
//!     block_file: "/tmp/a.blocks".into(),
//! };
//! tokio::spawn(run_reporter(monitor, node, views, shutdown));
//! # let _ = (views_tx, stop); }
//! ```

use crate::{Role, View};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::watch;

/// How long one request to the monitor may take.
pub const MONITOR_TIMEOUT: Duration = Duration::from_secs(2);
/// The most of a block list read from the monitor (the runtime reads no more of the file).
pub const BLOCKS_MAX: u64 = 64 * 1024;

/// Where the monitor is, how to authenticate, and how often to talk to it.
#[derive(Clone, Debug)]
pub struct Monitor {
    pub url: String,
    /// Sent as `Authorization: Bearer <token>`.
    pub token: Option<String>,
    pub period: Duration,
    agent: ureq::Agent,
}

impl Monitor {
    /// A monitor at `url` (plain HTTP), reported to every second.
    pub fn new(url: &str, token: Option<String>) -> Self {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(MONITOR_TIMEOUT))
            .http_status_as_error(false)
            .build()
            .into();
        Monitor {
            url: url.trim_end_matches('/').to_string(),
            token,
            period: Duration::from_secs(1),
            agent,
        }
    }

    fn with_token<B>(&self, request: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &self.token {
            Some(token) => request.header("Authorization", format!("Bearer {token}")),
            None => request,
        }
    }

    /// POSTs one report. Blocks.
    pub fn post(&self, report: &Report) -> Result<(), String> {
        let url = format!("{}/api/report", self.url);
        let body = serde_json::to_string(report).map_err(|e| e.to_string())?;
        let mut response = self
            .with_token(self.agent.post(&url))
            .header("Content-Type", "application/json")
            .send(body)
            .map_err(|e| format!("POST {url}: {e}"))?;
        let status = response.status();
        if !status.is_success() {
            let text = response.body_mut().read_to_string().unwrap_or_default();
            return Err(format!("POST {url}: {status}: {}", text.trim()));
        }
        Ok(())
    }

    /// Replaces the monitor's block list with `pairs` (`POST /api/blocks`) and returns the
    /// list it then holds, as JSON. Blocks.
    pub fn set_blocks(&self, pairs: &[(String, String)]) -> Result<String, String> {
        let url = format!("{}/api/blocks", self.url);
        let body = serde_json::json!({ "blocks": pairs }).to_string();
        let mut response = self
            .with_token(self.agent.post(&url))
            .header("Content-Type", "application/json")
            .send(body)
            .map_err(|e| format!("POST {url}: {e}"))?;
        let status = response.status();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        if !status.is_success() {
            return Err(format!("POST {url}: {status}: {}", text.trim()));
        }
        Ok(text)
    }

    /// GETs the block list. Blocks.
    pub fn blocks(&self) -> Result<String, String> {
        let url = format!("{}/api/blocks.txt", self.url);
        let mut response = self
            .with_token(self.agent.get(&url))
            .call()
            .map_err(|e| format!("GET {url}: {e}"))?;
        let status = response.status();
        let text = response
            .body_mut()
            .with_config()
            .limit(BLOCKS_MAX)
            .read_to_string()
            .map_err(|e| format!("GET {url}: reading the answer: {e}"))?;
        if !status.is_success() {
            return Err(format!("GET {url}: {status}: {}", text.trim()));
        }
        Ok(text)
    }
}

/// What a node reports: the monitor's `POST /api/report` body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Report {
    pub node: String,
    pub address: String,
    /// The leader this node names, if any.
    pub coordinator: Option<String>,
    pub group: u64,
    pub status: String,
    /// `Leader`, `Follower`, `Candidate` or `Idle`.
    pub role: &'static str,
}

/// The node a reporter speaks for.
#[derive(Clone, Debug)]
pub struct Reporting {
    pub name: String,
    /// Where the node listens, as the other nodes reach it.
    pub address: String,
    /// Every member's name, by Pid: names the leader of a view.
    pub names: Vec<String>,
    /// The block file the node's runtime reads.
    pub block_file: PathBuf,
}

impl Reporting {
    /// The report of `view`.
    pub fn report(&self, view: &View) -> Report {
        let role = match view.role {
            Role::Leader => "Leader",
            Role::Follower => "Follower",
            Role::Candidate => "Candidate",
            Role::Idle | Role::Service => "Idle",
        };
        Report {
            node: self.name.clone(),
            address: self.address.clone(),
            coordinator: view.leader.and_then(|p| self.names.get(p.index()).cloned()),
            group: view.group,
            status: view.status.to_string(),
            role,
        }
    }
}

/// Reports `views` to the monitor and copies its block list to the node's block file, every
/// period until `shutdown` turns true (or its sender is dropped); then sends a last report.
pub async fn run_reporter(
    monitor: Monitor,
    node: Reporting,
    views: watch::Receiver<View>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(monitor.period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing: Option<String> = None;
    let mut written: Option<String> = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    break;
                }
                continue;
            }
        }
        let report = node.report(&views.borrow());
        let (m, n, last) = (monitor.clone(), node.clone(), written.clone());
        let outcome = tokio::task::spawn_blocking(move || exchange(&m, &n, &report, last)).await;
        let outcome = outcome.unwrap_or_else(|e| Err(format!("reporter task failed: {e}")));
        match outcome {
            Ok(blocks) => {
                if failing.take().is_some() {
                    eprintln!("node={} event=monitor_ok url={}", node.name, monitor.url);
                }
                if blocks != written {
                    if let Some(text) = &blocks {
                        let pairs = text.lines().filter(|l| !l.trim().is_empty()).count();
                        eprintln!(
                            "node={} event=monitor_blocks pairs={pairs} file={}",
                            node.name,
                            node.block_file.display()
                        );
                    }
                    written = blocks;
                }
            }
            Err(e) => {
                if failing.as_deref() != Some(e.as_str()) {
                    eprintln!(
                        "node={} event=monitor_failed error={e:?} (retried every {:?})",
                        node.name, monitor.period
                    );
                }
                failing = Some(e);
            }
        }
    }
    let mut report = node.report(&views.borrow());
    report.status = "Stopped".to_string();
    report.role = "Idle";
    report.coordinator = None;
    let name = node.name.clone();
    let _ = tokio::task::spawn_blocking(move || {
        if let Err(e) = monitor.post(&report) {
            eprintln!("node={name} event=monitor_failed error={e:?} (last report)");
        }
    })
    .await;
}

/// One period's work: post the report, fetch the blocks and write them if they changed.
/// Returns the block list now in the file. Blocks.
fn exchange(
    monitor: &Monitor,
    node: &Reporting,
    report: &Report,
    written: Option<String>,
) -> Result<Option<String>, String> {
    monitor.post(report)?;
    let blocks = monitor.blocks()?;
    if written.as_deref() == Some(blocks.as_str()) && node.block_file.exists() {
        return Ok(written);
    }
    write_atomically(&node.block_file, &blocks)
        .map_err(|e| format!("cannot write {}: {e}", node.block_file.display()))?;
    Ok(Some(blocks))
}

/// Where a node run with a monitor and no block file of its own keeps the monitor's block
/// list: a file of this process in the temporary directory (remove it at exit).
pub fn temp_block_file() -> PathBuf {
    std::env::temp_dir().join(format!("conclave-node-{}.blocks", std::process::id()))
}

/// Writes `text` to `path` through a temporary file beside it and a rename, so a reader
/// sees the old content or the new, never a part.
pub fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "blocks".to_string());
    let temp = path.with_file_name(format!(".{file_name}.{}.tmp", std::process::id()));
    std::fs::write(&temp, text)?;
    std::fs::rename(&temp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&temp);
    })
}

/// Runs the node and, when it reports to a monitor, the reporter beside it: the node's
/// views go to the monitor, and once the node stops (and `stop` is sent) the reporter has
/// up to 3 s for its last report.
pub async fn run_node_reporting<A>(
    mut config: super::runtime::NodeConfig<A>,
    reporting: Option<(Monitor, Reporting)>,
    stop: watch::Sender<bool>,
) -> Result<(), super::runtime::RuntimeError>
where
    A: crate::Algorithm + Send + 'static,
    A::Msg: Send + Sync + 'static,
    A::Timer: Send,
    A::Params: Serialize + Send,
{
    let reporter = reporting.map(|(monitor, node)| {
        let (views_tx, views) = watch::channel(View::new(Role::Idle, None, "Starting"));
        config.views = Some(views_tx);
        tokio::spawn(run_reporter(monitor, node, views, config.shutdown.clone()))
    });
    let result = super::runtime::run_node(config).await;
    stop.send_replace(true);
    if let Some(reporter) = reporter {
        let _ = tokio::time::timeout(Duration::from_secs(3), reporter).await;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Pid;

    #[test]
    fn report_names_the_leader_and_the_role() {
        let node = Reporting {
            name: "b".into(),
            address: "127.0.0.1:7001".into(),
            names: vec!["a".into(), "b".into(), "c".into()],
            block_file: PathBuf::from("unused"),
        };
        let view = View::new(Role::Follower, Some(Pid(2)), "Normal");
        let json = serde_json::to_value(node.report(&view)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"node": "b", "address": "127.0.0.1:7001", "coordinator": "c",
                "group": 0, "status": "Normal", "role": "Follower"})
        );
        let idle = node.report(&View::new(Role::Service, None, "Daemon"));
        assert_eq!((idle.role, idle.coordinator), ("Idle", None));
    }

    #[test]
    fn write_atomically_replaces_the_file() {
        let dir = std::env::temp_dir().join(format!("conclave-report-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("blocks");
        write_atomically(&path, "a b\n").unwrap();
        write_atomically(&path, "a c\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a c\n");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
