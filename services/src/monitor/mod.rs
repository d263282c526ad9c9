//! `conclave monitor`: seed 002's central log server. Nodes post their state every second;
//! the `/status` page shows the table of their last reports (stale ones marked), updated
//! live over server-sent events, a timeline of leadership changes, and the "Block
//! Connections" form whose pairs the nodes fetch (`/api/blocks.txt`, the runtime's block
//! file format). Reports, role changes and the block history are kept in SQLite, so the
//! log survives a restart.
//!
//! | method and path | what |
//! | --- | --- |
//! | `GET /` | 303 to `/status` |
//! | `GET /status` | the page: table, timeline, form |
//! | `POST /status/blocks` | the form (CSRF token, same origin): block the ticked pairs, or reset |
//! | `GET /log` | the stored log as HTML |
//! | `POST /api/report` | a node's report (JSON, see [`store::NodeReport`]); 400 on a bad body, 413 past 64 KiB |
//! | `GET /api/nodes` | each node's last report, with `at_us` and `stale` |
//! | `GET /api/roles` | every role change |
//! | `GET /api/blocks` | the blocked pairs, `[["a","b"], ...]` |
//! | `GET /api/blocks.txt` | the same, `a b` a line |
//! | `POST /api/blocks` | `{"blocks": [["a","b"], ...]}` replaces the list; 422 for an unknown node |
//! | `GET /api/log` | reports (the last `?limit=`, default 1000), roles and block history |
//! | `GET /api/export` | the log as a run report that `conclave report` draws ([`export`]) |
//! | `GET /api/events` | server-sent events: `state` on every change and every second |
//!
//! Safety: with a token (required when listening on a non-loopback address) every request
//! must carry it: `Authorization: Bearer`, or `?token=` once, which sets a cookie for a
//! browser. A POST whose `Origin` is another site's is refused (403); the JSON POSTs need
//! `Content-Type: application/json` (415), so a cross-site form cannot forge them; the form
//! needs the page's CSRF token (a random value per monitor process).
//!
//! ```no_run
//! use conclave_services::monitor::{serve, Options};
//! let db = ".conclave/monitor.sqlite3".into();
//! let stale_after = std::time::Duration::from_secs(3);
//! let options = Options::new("127.0.0.1:4711".parse().unwrap(), db, None, stale_after).unwrap();
//! serve(options).unwrap();
//! // prints "monitor listening on http://127.0.0.1:4711/status (log in .conclave/monitor.sqlite3)"
//! ```

pub mod export;
pub mod page;
pub mod store;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path as FsPath, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use store::{NodeReport, Pair, Store, StoreError, StoredReport};
use tokio::sync::broadcast;

/// The largest request body taken; a larger one is answered 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// The longest node name taken.
pub const MAX_NAME_BYTES: usize = 128;
/// How many role changes the page and its events show (the log has them all).
const TIMELINE_LEN: usize = 50;
/// The cookie a browser keeps the token in, after `?token=`.
const TOKEN_COOKIE: &str = "conclave_monitor_token";

/// Why the monitor could not start.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error(
        "--listen {0} is not a loopback address: a monitor other machines can reach needs \
         --token-file (nodes send the token as Authorization: Bearer)"
    )]
    NeedsToken(SocketAddr),
    #[error(transparent)]
    Token(#[from] crate::token::TokenFileError),
    #[error("cannot create the folder of {path}: {source}")]
    DbFolder {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Db { path: PathBuf, source: StoreError },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("no random CSRF token: {0}")]
    Random(String),
    #[error("the monitor stopped: {0}")]
    Serve(std::io::Error),
}

impl MonitorError {
    /// A mistake in the flags (or their files), as opposed to a failure while serving.
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, MonitorError::Serve(_) | MonitorError::Random(_))
    }
}

/// How to run the monitor.
#[derive(Debug, Clone)]
pub struct Options {
    pub listen: SocketAddr,
    /// The SQLite file (created, with its folder, if missing).
    pub db: PathBuf,
    /// The token every request must carry; required when `listen` is not loopback.
    pub token: Option<String>,
    /// A node without a report for longer than this is marked stale.
    pub stale_after: Duration,
}

impl Options {
    /// Reads the token file (trimmed) and refuses a non-loopback address without a token.
    pub fn new(
        listen: SocketAddr,
        db: PathBuf,
        token_file: Option<&FsPath>,
        stale_after: Duration,
    ) -> Result<Options, MonitorError> {
        let token = crate::token::read_token(token_file)?;
        if token.is_none() && !listen.ip().is_loopback() {
            return Err(MonitorError::NeedsToken(listen));
        }
        Ok(Options {
            listen,
            db,
            token,
            stale_after,
        })
    }
}

/// What the handlers share.
struct Shared {
    store: Arc<Mutex<Store>>,
    /// The writer of reports ([`spawn_writer`]).
    writer: std::sync::mpsc::Sender<Pending>,
    db_path: String,
    token: Option<String>,
    stale_after: Duration,
    /// The form's CSRF token: random, one per monitor process.
    csrf: String,
    /// A tick on every change, for the event streams.
    changed: broadcast::Sender<()>,
}

impl Shared {
    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn is_stale(&self, at_us: u64, now: u64) -> bool {
        now.saturating_sub(at_us) > self.stale_after.as_micros() as u64
    }
}

/// A monitor bound to its address with its database open, not yet serving.
pub struct Monitor {
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
}

/// Opens the database and binds the address (port 0 picks a free one).
pub async fn bind(options: Options) -> Result<Monitor, MonitorError> {
    let path = options.db.clone();
    if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder).map_err(|source| MonitorError::DbFolder {
            path: path.clone(),
            source,
        })?;
    }
    let store = Store::open(&path).map_err(|source| MonitorError::Db {
        path: path.clone(),
        source,
    })?;
    let addr = options.listen;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| MonitorError::Bind { addr, source })?;
    let mut random = [0u8; 16];
    getrandom::fill(&mut random).map_err(|e| MonitorError::Random(e.to_string()))?;
    let csrf = random.iter().map(|b| format!("{b:02x}")).collect();
    let store = Arc::new(Mutex::new(store));
    let writer = spawn_writer(Arc::clone(&store)).map_err(MonitorError::Serve)?;
    let shared = Arc::new(Shared {
        store,
        writer,
        db_path: path.display().to_string(),
        token: options.token,
        stale_after: options.stale_after,
        csrf,
        changed: broadcast::Sender::new(16),
    });
    Ok(Monitor { listener, shared })
}

impl Monitor {
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves until the process ends.
    pub async fn run(self) -> Result<(), MonitorError> {
        axum::serve(self.listener, router(self.shared))
            .await
            .map_err(MonitorError::Serve)
    }
}

/// Opens, binds, prints "monitor listening on http://ADDR/status" and serves until the
/// process ends.
pub fn serve(options: Options) -> Result<(), MonitorError> {
    let runtime = tokio::runtime::Runtime::new().map_err(MonitorError::Serve)?;
    runtime.block_on(async {
        let db = options.db.display().to_string();
        let monitor = bind(options).await?;
        println!(
            "monitor listening on http://{}/status (log in {db})",
            monitor.local_addr()
        );
        monitor.run().await
    })
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/status") }))
        .route("/status", get(status_page))
        // Browsers ask for it; no icon, and no 404 in their consoles.
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .route("/status/blocks", post(form_blocks))
        .route("/log", get(log_page))
        .route("/api/report", post(report))
        .route("/api/nodes", get(api_nodes))
        .route("/api/roles", get(api_roles))
        .route("/api/blocks", get(api_blocks).post(post_blocks))
        .route("/api/blocks.txt", get(api_blocks_txt))
        .route("/api/log", get(api_log))
        .route("/api/export", get(api_export))
        .route("/api/events", get(events))
        .fallback(unknown_endpoint)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(same_origin))
        .layer(middleware::from_fn_with_state(
            shared.clone(),
            require_token,
        ))
        .with_state(shared)
}

type Shared_ = State<Arc<Shared>>;

fn text(status: StatusCode, message: impl Into<String>) -> Response {
    (status, message.into()).into_response()
}

fn json(body: &impl Serialize) -> Response {
    let body = serde_json::to_string(body).expect("the monitor's answers are JSON");
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// An answer other than 2xx: its status and its plain-text message.
struct Refusal(StatusCode, String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        text(self.0, self.1)
    }
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Refusal {
        Refusal(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

fn internal(e: StoreError) -> Response {
    text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

async fn require_token(State(shared): Shared_, request: Request, next: Next) -> Response {
    let Some(expected) = &shared.token else {
        return next.run(request).await;
    };
    let ok = |t: &str| constant_time_eq(t.as_bytes(), expected.as_bytes());
    let headers = request.headers();
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    if bearer.is_some_and(ok) || cookie(headers, TOKEN_COOKIE).is_some_and(ok) {
        return next.run(request).await;
    }
    let query = Query::<BTreeMap<String, String>>::try_from_uri(request.uri()).ok();
    if query
        .and_then(|q| q.0.get("token").cloned())
        .is_some_and(|t| ok(&t))
    {
        // A browser given the token in a link keeps it in a cookie from then on.
        let mut response = next.run(request).await;
        let cookie = format!("{TOKEN_COOKIE}={expected}; Path=/; HttpOnly; SameSite=Strict");
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
        return response;
    }
    text(
        StatusCode::UNAUTHORIZED,
        "this monitor needs its token: Authorization: Bearer TOKEN (or ?token=TOKEN once, in a browser)",
    )
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Refuses a POST that a page of another site sent: its `Origin` is not this host.
async fn same_origin(request: Request, next: Next) -> Response {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let headers = request.headers();
        let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
        if let Some(origin) = origin {
            let ours = host.is_some_and(|h| {
                origin == format!("http://{h}") || origin == format!("https://{h}")
            });
            if !ours {
                return text(
                    StatusCode::FORBIDDEN,
                    format!("cross-site request refused: Origin {origin} is not this monitor"),
                );
            }
        }
    }
    next.run(request).await
}

async fn unknown_endpoint(method: Method, uri: Uri) -> Response {
    text(
        StatusCode::NOT_FOUND,
        format!(
            "no endpoint {method} {}: see /status, /log and /api/{{report,nodes,roles,blocks,\
             blocks.txt,log,export,events}}",
            uri.path()
        ),
    )
}

/// A JSON body must say so: a cross-site form can only send form types or text/plain.
fn require_json(headers: &HeaderMap) -> Result<(), Refusal> {
    let kind = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = kind.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(Refusal(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Type must be application/json, not {kind:?}"),
        ))
    }
}

/// Parses a JSON body, or the 400 answer that says where it is wrong.
fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, Refusal> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| Refusal(StatusCode::BAD_REQUEST, format!("body is not JSON: {e}")))?;
    serde_path_to_error::deserialize(value).map_err(|e| {
        let at = match e.path().to_string() {
            p if p == "." => String::new(),
            p => format!(" at {p}"),
        };
        Refusal(
            StatusCode::BAD_REQUEST,
            format!("bad JSON body{at}: {}", e.inner()),
        )
    })
}

/// A name a node may have: non-empty, short, no spaces (the block file splits on them).
fn check_name(what: &str, name: &str) -> Result<(), Refusal> {
    let bad = name.is_empty()
        || name.len() > MAX_NAME_BYTES
        || name.chars().any(|c| c.is_whitespace() || c.is_control());
    if bad {
        Err(Refusal(
            StatusCode::BAD_REQUEST,
            format!(
                "bad {what} {name:?}: a name is 1 to {MAX_NAME_BYTES} bytes without spaces \
                 or control characters"
            ),
        ))
    } else {
        Ok(())
    }
}

async fn report(
    State(shared): Shared_,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Refusal> {
    require_json(&headers)?;
    let report: NodeReport = parse(&body)?;
    check_name("node", &report.node)?;
    if let Some(coordinator) = &report.coordinator {
        check_name("coordinator", coordinator)?;
    }
    let (answer, answered) = tokio::sync::oneshot::channel();
    let stopped = || {
        Refusal(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the monitor's writer has stopped".into(),
        )
    };
    let pending = Pending {
        report,
        at_us: now_us(),
        answer,
    };
    shared.writer.send(pending).map_err(|_| stopped())?;
    let role_changed = answered
        .await
        .map_err(|_| stopped())?
        .map_err(|e| Refusal(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    let _ = shared.changed.send(());
    Ok(json(&serde_json::json!({ "role_changed": role_changed })))
}

/// A report for the writer, and where its answer goes: whether it changed the node's role,
/// or why it could not be stored.
struct Pending {
    report: NodeReport,
    at_us: u64,
    answer: tokio::sync::oneshot::Sender<Result<bool, String>>,
}

/// The most reports one transaction takes.
const MAX_BATCH: usize = 256;

/// Starts the thread that stores reports: it takes every report waiting, up to
/// [`MAX_BATCH`], and stores them in one transaction, so that a burst (every node reporting
/// at the same instant) costs a few syncs of the file, not one each; the sync also waits
/// off the async workers. It ends when the monitor (the sender) is dropped.
fn spawn_writer(store: Arc<Mutex<Store>>) -> std::io::Result<std::sync::mpsc::Sender<Pending>> {
    let (sender, receiver) = std::sync::mpsc::channel::<Pending>();
    std::thread::Builder::new()
        .name("monitor-writer".into())
        .spawn(move || {
            while let Ok(first) = receiver.recv() {
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match receiver.try_recv() {
                        Ok(pending) => batch.push(pending),
                        Err(_) => break,
                    }
                }
                let reports: Vec<(&NodeReport, u64)> =
                    batch.iter().map(|p| (&p.report, p.at_us)).collect();
                let stored = store
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert_reports(&reports);
                match stored {
                    Ok(changed) => {
                        for (pending, changed) in batch.into_iter().zip(changed) {
                            let _ = pending.answer.send(Ok(changed));
                        }
                    }
                    Err(e) => {
                        let text = e.to_string();
                        for pending in batch {
                            let _ = pending.answer.send(Err(text.clone()));
                        }
                    }
                }
            }
        })?;
    Ok(sender)
}

/// A node's row in `/api/nodes` and in the events.
#[derive(Serialize)]
struct NodeRow<'a> {
    #[serde(flatten)]
    report: &'a StoredReport,
    stale: bool,
}

fn node_rows<'a>(shared: &Shared, latest: &'a [StoredReport]) -> Vec<NodeRow<'a>> {
    let now = now_us();
    latest
        .iter()
        .map(|report| NodeRow {
            report,
            stale: shared.is_stale(report.at_us, now),
        })
        .collect()
}

async fn api_nodes(State(shared): Shared_) -> Response {
    let latest = shared.store().latest();
    match latest {
        Ok(latest) => json(&node_rows(&shared, &latest)),
        Err(e) => internal(e),
    }
}

async fn api_roles(State(shared): Shared_) -> Response {
    let roles = shared.store().roles();
    match roles {
        Ok(roles) => json(&roles),
        Err(e) => internal(e),
    }
}

async fn api_blocks(State(shared): Shared_) -> Response {
    let blocks = shared.store().blocks();
    match blocks {
        Ok(blocks) => json(&blocks),
        Err(e) => internal(e),
    }
}

/// The block list in the runtime's block-file format: `a b` a line.
async fn api_blocks_txt(State(shared): Shared_) -> Response {
    let blocks = shared.store().blocks();
    match blocks {
        Ok(blocks) => {
            let lines: String = blocks.iter().map(|(a, b)| format!("{a} {b}\n")).collect();
            let mut response = (StatusCode::OK, lines).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            response
        }
        Err(e) => internal(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BlocksBody {
    blocks: Vec<(String, String)>,
}

/// Checks the pairs against the known nodes and puts each in name order.
fn known_pairs(store: &Store, pairs: Vec<Pair>) -> Result<BTreeSet<Pair>, Refusal> {
    let known: BTreeSet<String> = store
        .latest()
        .map_err(Refusal::from)?
        .into_iter()
        .map(|s| s.report.node)
        .collect();
    let mut out = BTreeSet::new();
    for (a, b) in pairs {
        for name in [&a, &b] {
            if !known.contains(name) {
                return Err(Refusal(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("unknown node {name:?}: no node of that name has reported"),
                ));
            }
        }
        if a == b {
            return Err(Refusal(
                StatusCode::BAD_REQUEST,
                format!("the pair ({a}, {a}) names one node twice"),
            ));
        }
        out.insert(if a < b { (a, b) } else { (b, a) });
    }
    Ok(out)
}

/// Stores a new block list and tells the event streams.
fn set_blocks(shared: &Shared, pairs: Vec<Pair>, source: &str) -> Result<(), Refusal> {
    let mut store = shared.store();
    let pairs = known_pairs(&store, pairs)?;
    store
        .set_blocks(&pairs, source, now_us())
        .map_err(Refusal::from)?;
    drop(store);
    let _ = shared.changed.send(());
    Ok(())
}

async fn post_blocks(
    State(shared): Shared_,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Refusal> {
    require_json(&headers)?;
    let parsed: BlocksBody = parse(&body)?;
    set_blocks(&shared, parsed.blocks, "api")?;
    Ok(api_blocks(State(shared)).await)
}

/// The form: `csrf`, `pair=a b` per ticked box, `action=block` or `action=reset`.
async fn form_blocks(State(shared): Shared_, body: Bytes) -> Response {
    let mut csrf = None;
    let mut action = None;
    let mut pairs = Vec::new();
    for (key, value) in form_urlencoded::parse(&body) {
        match &*key {
            "csrf" => csrf = Some(value.into_owned()),
            "action" => action = Some(value.into_owned()),
            "pair" => match value.split_once(' ') {
                Some((a, b)) => pairs.push((a.to_string(), b.to_string())),
                None => {
                    return text(
                        StatusCode::BAD_REQUEST,
                        format!("bad pair {value:?}: want two names and a space"),
                    )
                }
            },
            _ => {}
        }
    }
    let csrf_ok = csrf.is_some_and(|c| constant_time_eq(c.as_bytes(), shared.csrf.as_bytes()));
    if !csrf_ok {
        return text(
            StatusCode::FORBIDDEN,
            "missing or wrong CSRF token: reload /status and submit its form",
        );
    }
    let result = match action.as_deref() {
        Some("reset") => set_blocks(&shared, Vec::new(), "reset"),
        Some("block") | None => set_blocks(&shared, pairs, "form"),
        Some(other) => {
            return text(
                StatusCode::BAD_REQUEST,
                format!("unknown action {other:?}: block or reset"),
            )
        }
    };
    match result {
        Ok(()) => Redirect::to("/status").into_response(),
        Err(answer) => answer.into_response(),
    }
}

async fn status_page(State(shared): Shared_) -> Response {
    let store = shared.store();
    let (latest, roles, blocks) = match (store.latest(), store.roles(), store.blocks()) {
        (Ok(l), Ok(r), Ok(b)) => (l, r, b),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return internal(e),
    };
    drop(store);
    let now = now_us();
    let rows = latest
        .iter()
        .map(|report| page::Row {
            report,
            stale: shared.is_stale(report.at_us, now),
        })
        .collect();
    let timeline = &roles[roles.len().saturating_sub(TIMELINE_LEN)..];
    page::status(&page::Status {
        rows,
        roles: timeline,
        blocks: &blocks,
        csrf: &shared.csrf,
        stale_after_ms: shared.stale_after.as_millis(),
    })
    .into_response()
}

/// How many reports `/log` shows, and `/api/log` gives unless `?limit=` says otherwise.
const LOG_PAGE_REPORTS: u64 = 200;
const API_LOG_REPORTS: u64 = 1000;

async fn log_page(State(shared): Shared_) -> Response {
    let store = shared.store();
    let all = (
        store.roles(),
        store.block_history(),
        store.recent_reports(LOG_PAGE_REPORTS),
    );
    drop(store);
    match all {
        (Ok(roles), Ok(history), Ok(reports)) => {
            page::log(&roles, &history, &reports, LOG_PAGE_REPORTS).into_response()
        }
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => internal(e),
    }
}

async fn api_log(State(shared): Shared_, uri: Uri) -> Response {
    let query = Query::<BTreeMap<String, String>>::try_from_uri(&uri)
        .map(|q| q.0)
        .unwrap_or_default();
    let limit = match query.get("limit").map(|l| l.parse::<u64>()) {
        None => API_LOG_REPORTS,
        Some(Ok(n)) => n,
        Some(Err(_)) => return text(StatusCode::BAD_REQUEST, "?limit= must be a whole number"),
    };
    let store = shared.store();
    let all = (
        store.roles(),
        store.block_history(),
        store.recent_reports(limit),
    );
    drop(store);
    match all {
        (Ok(roles), Ok(blocks), Ok(reports)) => json(&serde_json::json!({
            "reports": reports, "roles": roles, "blocks": blocks,
        })),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => internal(e),
    }
}

async fn api_export(State(shared): Shared_) -> Response {
    let stale_after = shared.stale_after.as_micros() as u64;
    let report = export::run_report(&shared.store(), &shared.db_path, now_us(), stale_after);
    match report {
        Ok(report) => {
            let mut response = json(&report);
            response.headers_mut().insert(
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment; filename=\"monitor.json\""),
            );
            response
        }
        Err(e) => internal(e),
    }
}

/// The state the page draws: nodes, the latest role changes, the blocked pairs.
fn state_json(shared: &Shared) -> Result<String, StoreError> {
    let store = shared.store();
    let (latest, roles, blocks) = (store.latest()?, store.roles()?, store.blocks()?);
    drop(store);
    let timeline = &roles[roles.len().saturating_sub(TIMELINE_LEN)..];
    let state = serde_json::json!({
        "nodes": node_rows(shared, &latest),
        "roles": timeline,
        "blocks": blocks,
    });
    Ok(state.to_string())
}

/// `state` now, then on every change, and every second (so staleness shows).
async fn events(
    State(shared): Shared_,
) -> Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>> {
    let changes = shared.changed.subscribe();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stream = futures_util::stream::unfold(
        (shared, changes, tick),
        |(shared, mut changes, mut tick)| async move {
            tokio::select! {
                _ = tick.tick() => {}
                _ = changes.recv() => {}
            }
            let data = state_json(&shared)
                .unwrap_or_else(|e| serde_json::json!({ "error": e.to_string() }).to_string());
            let event = Event::default().event("state").data(data);
            Some((Ok(event), (shared, changes, tick)))
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::default())
}
