//! `conclave registry`: a service registry that speaks the subset of Consul's HTTP API the
//! seed's nodes use, with Consul's paths, JSON field names and status codes. It runs the
//! health checks itself and marks failing instances critical: the catalog keeps them,
//! `?passing` leaves them out.
//!
//! | method and path | answer |
//! | --- | --- |
//! | `PUT /v1/agent/service/register` | 200; 400 on a bad body, 413 past 1 MiB |
//! | `PUT /v1/agent/service/deregister/:id` | 200; 404 for an unknown id |
//! | `PUT /v1/agent/check/{pass,warn,fail}/:check_id` | 200; 404 for an unknown check |
//! | `GET /v1/health/service/:name[?passing]` | instances with their checks, blocking |
//! | `GET /v1/catalog/services` | `{"name": ["tag", ...]}`, blocking |
//! | `GET /v1/catalog/service/:name` | every instance of a service, blocking |
//!
//! Unlike Consul, `DeregisterCriticalServiceAfter` is honoured as given (Consul raises it to
//! one minute) and checked every second, so short experiments see it act.
//!
//! Blocking: with `?index=N` an answer waits until the index passes N or `?wait=` (default
//! 5m, at most 10m) runs out; every answer carries `X-Consul-Index`. With a token, every
//! request must carry it (`X-Consul-Token`, `Authorization: Bearer`, or `?token=`), else 403.
//!
//! ```no_run
//! use conclave_services::registry::{serve, Options};
//! let options = Options::new("127.0.0.1:8500".parse().unwrap(), None).unwrap();
//! serve(options).unwrap(); // prints "registry listening on http://127.0.0.1:8500"
//! ```

pub mod checks;
pub mod state;
pub mod wire;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::Router;
use state::{Catalog, NodeInfo};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path as FsPath;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::AbortHandle;
use wire::Status;

/// The largest request body taken; a larger one is answered 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Consul's defaults for a blocking query's `wait`.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(5 * 60);
pub const MAX_WAIT: Duration = Duration::from_secs(10 * 60);

/// Why the registry could not start.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(
        "--listen {0} is not a loopback address: a registry other machines can reach needs \
         --token-file (clients send the token as X-Consul-Token)"
    )]
    NeedsToken(SocketAddr),
    #[error(transparent)]
    Token(#[from] crate::token::TokenFileError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the registry stopped: {0}")]
    Serve(std::io::Error),
}

impl RegistryError {
    /// A mistake in the flags (or their files), as opposed to a failure while serving.
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, RegistryError::Serve(_))
    }
}

/// How to run the registry.
#[derive(Debug, Clone)]
pub struct Options {
    pub listen: SocketAddr,
    /// The token every request must carry; required when `listen` is not loopback.
    pub token: Option<String>,
}

impl Options {
    /// Reads the token file (trimmed) and refuses a non-loopback address without a token.
    pub fn new(listen: SocketAddr, token_file: Option<&FsPath>) -> Result<Options, RegistryError> {
        let token = crate::token::read_token(token_file)?;
        if token.is_none() && !listen.ip().is_loopback() {
            return Err(RegistryError::NeedsToken(listen));
        }
        Ok(Options { listen, token })
    }
}

/// What the handlers and the check tasks share.
pub(crate) struct Shared {
    inner: Mutex<Inner>,
    /// The catalog's index after each change: blocking queries wait on it.
    changed: watch::Sender<u64>,
    node: NodeInfo,
    token: Option<String>,
}

pub(crate) struct Inner {
    pub(crate) catalog: Catalog,
    /// Check id -> the task running it.
    tasks: BTreeMap<String, AbortHandle>,
    /// Rendered health listings (all, `?passing`) of registered service names, valid while
    /// the catalog's index is `answers_at`: every change takes a new index, so a kept
    /// answer is the answer until then. The listing is what nodes poll.
    answers: BTreeMap<String, [Option<Bytes>; 2]>,
    answers_at: u64,
}

impl Inner {
    /// The body of `GET /v1/health/service/:name` (with `?passing` or not), and its
    /// `X-Consul-Index`; rendered once per catalog change.
    fn health_answer(&mut self, name: &str, passing: bool, node: &NodeInfo) -> (u64, Bytes) {
        let catalog = &self.catalog;
        let header = catalog.service_header_index(name);
        if self.answers_at != catalog.index() {
            self.answers.clear();
            self.answers_at = catalog.index();
        }
        if let Some(Some(body)) = self.answers.get(name).map(|a| &a[usize::from(passing)]) {
            return (header, body.clone());
        }
        let body = Bytes::from(catalog.health_json(name, passing, node).to_string());
        // Only names ever registered: a query for any other name is not kept, so the
        // answers stay as few as the registrations.
        if catalog.service_index(name) > 0 {
            self.answers.entry(name.to_string()).or_default()[usize::from(passing)] =
                Some(body.clone());
        }
        (header, body)
    }

    fn stop_checks(&mut self, ids: &[String]) {
        for id in ids {
            if let Some(task) = self.tasks.remove(id) {
                task.abort();
            }
        }
    }

    pub(crate) fn deregister(&mut self, id: &str) -> bool {
        match self.catalog.deregister(id) {
            Some(checks) => {
                self.stop_checks(&checks);
                true
            }
            None => false,
        }
    }
}

impl Shared {
    /// Runs `f` on the state and wakes the blocking queries if the index moved.
    pub(crate) fn update<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let before = inner.catalog.index();
        let result = f(&mut inner);
        let after = inner.catalog.index();
        drop(inner);
        if after != before {
            self.changed.send_replace(after);
        }
        result
    }
}

/// A registry bound to its address, not yet serving.
pub struct Registry {
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
}

/// Binds the address (port 0 picks a free one; see `Registry::local_addr`).
pub async fn bind(options: Options) -> Result<Registry, RegistryError> {
    let addr = options.listen;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| RegistryError::Bind { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| RegistryError::Bind { addr, source })?;
    let node_address = if local.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        local.ip().to_string()
    };
    let shared = Arc::new(Shared {
        inner: Mutex::new(Inner {
            catalog: Catalog::default(),
            tasks: BTreeMap::new(),
            answers: BTreeMap::new(),
            answers_at: 0,
        }),
        changed: watch::Sender::new(1),
        node: NodeInfo {
            name: "conclave-registry".into(),
            address: node_address,
            datacenter: "dc1".into(),
        },
        token: options.token,
    });
    Ok(Registry { listener, shared })
}

impl Registry {
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves until the process ends.
    pub async fn run(self) -> Result<(), RegistryError> {
        tokio::spawn(checks::reap_critical(self.shared.clone()));
        axum::serve(self.listener, router(self.shared))
            .await
            .map_err(RegistryError::Serve)
    }
}

/// Binds, prints "registry listening on http://ADDR" and serves until the process ends.
pub fn serve(options: Options) -> Result<(), RegistryError> {
    let runtime = tokio::runtime::Runtime::new().map_err(RegistryError::Serve)?;
    runtime.block_on(async {
        let registry = bind(options).await?;
        println!("registry listening on http://{}", registry.local_addr());
        registry.run().await
    })
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/agent/service/register", put(register))
        .route("/v1/agent/service/deregister/{id}", put(deregister))
        .route("/v1/agent/check/pass/{id}", put(check_pass))
        .route("/v1/agent/check/warn/{id}", put(check_warn))
        .route("/v1/agent/check/fail/{id}", put(check_fail))
        .route("/v1/health/service/{name}", get(health_service))
        .route("/v1/catalog/services", get(catalog_services))
        .route("/v1/catalog/service/{name}", get(catalog_service))
        .fallback(unknown_endpoint)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(
            shared.clone(),
            require_token,
        ))
        .with_state(shared)
}

/// An error answer: Consul answers errors as plain text.
fn text(status: StatusCode, message: impl Into<String>) -> Response {
    (status, message.into()).into_response()
}

async fn require_token(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(expected) = &shared.token else {
        return next.run(request).await;
    };
    let given = token_of(request.headers(), request.uri());
    if given.is_some_and(|t| constant_time_eq(t.as_bytes(), expected.as_bytes())) {
        next.run(request).await
    } else {
        text(StatusCode::FORBIDDEN, "Permission denied")
    }
}

fn token_of(headers: &HeaderMap, uri: &Uri) -> Option<String> {
    if let Some(t) = headers.get("x-consul-token").and_then(|v| v.to_str().ok()) {
        return Some(t.to_string());
    }
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if let Some(t) = bearer {
        return Some(t.trim().to_string());
    }
    let Query(query) = Query::<BTreeMap<String, String>>::try_from_uri(uri).ok()?;
    query.get("token").cloned()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn unknown_endpoint(method: Method, uri: Uri) -> Response {
    text(
        StatusCode::NOT_FOUND,
        format!(
            "no endpoint {method} {}: conclave registry speaks Consul's agent service \
             register and deregister, agent check pass/warn/fail, health service and catalog \
             endpoints",
            uri.path()
        ),
    )
}

async fn register(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let reg = match wire::parse_registration(&body) {
        Ok(reg) => reg,
        Err(e) => return text(StatusCode::BAD_REQUEST, e.0),
    };
    let defs = reg.checks.clone();
    shared.update(|inner| {
        let old = inner.catalog.register(reg);
        inner.stop_checks(&old);
        for def in defs {
            let id = def.id.clone();
            let task = checks::spawn(shared.clone(), def);
            if let Some(previous) = inner.tasks.insert(id, task) {
                previous.abort();
            }
        }
    });
    StatusCode::OK.into_response()
}

async fn deregister(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    if shared.update(|inner| inner.deregister(&id)) {
        StatusCode::OK.into_response()
    } else {
        let message = format!(
            "Unknown service ID {id:?}. Ensure that the service ID is passed, not the service name."
        );
        text(StatusCode::NOT_FOUND, message)
    }
}

type Params = Query<BTreeMap<String, String>>;

async fn check_pass(state: State<Arc<Shared>>, id: Path<String>, params: Params) -> Response {
    update_ttl(state, id, params, Status::Passing)
}

async fn check_warn(state: State<Arc<Shared>>, id: Path<String>, params: Params) -> Response {
    update_ttl(state, id, params, Status::Warning)
}

async fn check_fail(state: State<Arc<Shared>>, id: Path<String>, params: Params) -> Response {
    update_ttl(state, id, params, Status::Critical)
}

fn update_ttl(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    Query(params): Params,
    status: Status,
) -> Response {
    let note = params.get("note").cloned().unwrap_or_default();
    match shared.update(|inner| inner.catalog.update_ttl(&id, status, note)) {
        Ok(()) => StatusCode::OK.into_response(),
        Err(message) => text(StatusCode::NOT_FOUND, message),
    }
}

/// `?index=` and `?wait=` of a blocking query.
struct Blocking {
    index: Option<u64>,
    wait: Duration,
}

/// A bad query parameter: the message of a 400 answer.
fn blocking_params(params: &BTreeMap<String, String>) -> Result<Blocking, String> {
    let index = match params.get("index").map(String::as_str) {
        None | Some("") => None,
        Some(i) => Some(
            i.parse::<u64>()
                .map_err(|_| format!("Invalid index {i:?}: not a whole number"))?,
        ),
    };
    let wait = match params.get("wait").map(String::as_str) {
        None | Some("") => DEFAULT_WAIT,
        Some(w) => wire::parse_duration(w).map_err(|e| format!("Invalid wait time {w:?}: {e}"))?,
    };
    Ok(Blocking {
        index,
        wait: wait.min(MAX_WAIT),
    })
}

/// Waits, for a blocking query, until `index_of` the catalog passes the query's index or the
/// wait runs out. Without `?index=` (or with 0) it returns at once.
async fn block(shared: &Shared, blocking: &Blocking, index_of: impl Fn(&Catalog) -> u64) {
    let Some(seen) = blocking.index.filter(|i| *i > 0) else {
        return;
    };
    let deadline = tokio::time::Instant::now() + blocking.wait;
    // Subscribed before the first look, so a change between the look and the wait wakes it.
    let mut changes = shared.changed.subscribe();
    loop {
        if shared.update(|inner| index_of(&inner.catalog)) > seen {
            return;
        }
        match tokio::time::timeout_at(deadline, changes.changed()).await {
            Ok(Ok(())) => continue,
            _ => return,
        }
    }
}

/// A JSON answer with the headers Consul's clients read.
fn json_answer(index: u64, body: Bytes) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert("X-Consul-Index", HeaderValue::from(index));
    headers.insert("X-Consul-KnownLeader", HeaderValue::from_static("true"));
    headers.insert("X-Consul-LastContact", HeaderValue::from_static("0"));
    response
}

/// `?passing`, `?passing=true` and `?passing=1` filter; `false` and `0` do not.
fn passing_param(params: &BTreeMap<String, String>) -> Result<bool, String> {
    match params.get("passing").map(String::as_str) {
        None | Some("false") | Some("0") => Ok(false),
        Some("") | Some("true") | Some("1") => Ok(true),
        Some(other) => Err(format!(
            "Invalid value for ?passing: {other:?} (true, false, 1 or 0)"
        )),
    }
}

async fn health_service(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    Query(params): Params,
) -> Response {
    let (blocking, passing) = match (blocking_params(&params), passing_param(&params)) {
        (Ok(b), Ok(p)) => (b, p),
        (Err(e), _) | (_, Err(e)) => return text(StatusCode::BAD_REQUEST, e),
    };
    block(&shared, &blocking, |c| c.service_index(&name)).await;
    let (index, body) = shared.update(|inner| inner.health_answer(&name, passing, &shared.node));
    json_answer(index, body)
}

async fn catalog_service(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    Query(params): Params,
) -> Response {
    let blocking = match blocking_params(&params) {
        Ok(b) => b,
        Err(e) => return text(StatusCode::BAD_REQUEST, e),
    };
    block(&shared, &blocking, |c| c.service_index(&name)).await;
    let (index, body) = shared.update(|inner| {
        let c = &inner.catalog;
        (
            c.service_header_index(&name),
            c.catalog_service_json(&name, &shared.node),
        )
    });
    json_answer(index, Bytes::from(body.to_string()))
}

async fn catalog_services(State(shared): State<Arc<Shared>>, Query(params): Params) -> Response {
    let blocking = match blocking_params(&params) {
        Ok(b) => b,
        Err(e) => return text(StatusCode::BAD_REQUEST, e),
    };
    block(&shared, &blocking, Catalog::index).await;
    let (index, body) =
        shared.update(|inner| (inner.catalog.index(), inner.catalog.catalog_services_json()));
    json_answer(index, Bytes::from(body.to_string()))
}
