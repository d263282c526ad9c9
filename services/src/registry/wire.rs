//! What clients send: the body of `PUT /v1/agent/service/register`, read as Consul reads it.
//!
//! Consul matches JSON keys without regard to letter case and also takes snake_case
//! (`py-consul` sends `name`, `check`, `DeregisterCriticalServiceAfter`; Go's client sends
//! `Name`, `Check`), so keys are folded to lower case without underscores before the body is
//! deserialized; the keys of user maps (`Meta`, a check's `Header`) are kept as written.
//! Durations are Go's (`"10s"`, `"1m30s"`, `"500ms"`), or a number of nanoseconds.
//!
//! ```
//! use conclave_services::registry::wire::parse_registration;
//! let r = parse_registration(br#"{"name": "web", "Port": 80,
//!     "check": {"TCP": "127.0.0.1:80", "interval": "1m30s"}}"#).unwrap();
//! assert_eq!(r.id, "web");
//! assert_eq!(r.checks[0].interval.as_secs(), 90);
//! ```

use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// Consul raises shorter intervals to one second.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// Consul's default timeout of a TCP or HTTP check.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A refused body: the message Consul-like clients show their user (answered with 400).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct BadRequest(pub String);

/// A registration, checked: what the registry stores and runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub id: String,
    pub name: String,
    pub tags: Vec<String>,
    pub address: String,
    pub port: u16,
    pub meta: BTreeMap<String, String>,
    pub checks: Vec<CheckDef>,
}

/// One health check of a registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckDef {
    /// `service:<id>` (`service:<id>:<n>` when a registration has several), or `CheckID`.
    pub id: String,
    pub name: String,
    pub kind: CheckKind,
    pub interval: Duration,
    pub timeout: Duration,
    pub deregister_critical_after: Option<Duration>,
    /// The status it starts with: `critical` unless the body says otherwise, as in Consul.
    pub status: Status,
    pub notes: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckKind {
    /// Passing while a TCP connection to `host:port` opens.
    Tcp(String),
    /// Passing on a 2xx answer to a GET (or `Method`), warning on 429, else critical.
    Http { url: String, method: String },
    /// Critical unless `PUT /v1/agent/check/pass/<id>` comes within each `ttl`.
    Ttl(Duration),
}

impl CheckKind {
    /// The `Type` field Consul gives a check.
    pub fn type_name(&self) -> &'static str {
        match self {
            CheckKind::Tcp(_) => "tcp",
            CheckKind::Http { .. } => "http",
            CheckKind::Ttl(_) => "ttl",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Passing,
    Warning,
    Critical,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Passing => "passing",
            Status::Warning => "warning",
            Status::Critical => "critical",
        }
    }

    fn parse(s: &str) -> Option<Status> {
        match s {
            "passing" => Some(Status::Passing),
            "warning" => Some(Status::Warning),
            "critical" => Some(Status::Critical),
            _ => None,
        }
    }
}

#[derive(Deserialize)]
struct RegisterBody {
    id: Option<String>,
    name: Option<String>,
    tags: Option<Vec<String>>,
    address: Option<String>,
    port: Option<u16>,
    meta: Option<BTreeMap<String, String>>,
    check: Option<CheckBody>,
    checks: Option<Vec<CheckBody>>,
}

#[derive(Deserialize, Default)]
struct CheckBody {
    checkid: Option<String>,
    name: Option<String>,
    tcp: Option<String>,
    http: Option<String>,
    method: Option<String>,
    ttl: Option<Value>,
    interval: Option<Value>,
    timeout: Option<Value>,
    deregistercriticalserviceafter: Option<Value>,
    status: Option<String>,
    notes: Option<String>,
    // The kinds of check this registry does not run: named to refuse them clearly.
    args: Option<Value>,
    script: Option<Value>,
    grpc: Option<Value>,
    h2ping: Option<Value>,
    dockercontainerid: Option<Value>,
    aliasservice: Option<Value>,
    aliasnode: Option<Value>,
    udp: Option<Value>,
    oscservice: Option<Value>,
}

/// Reads a register body: any key case, Consul's field names and defaults.
pub fn parse_registration(body: &[u8]) -> Result<Registration, BadRequest> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| BadRequest(format!("Request decode failed: {e}")))?;
    if !value.is_object() {
        return Err(BadRequest(format!(
            "Request decode failed: a service definition is a JSON object, not {}",
            json_kind(&value)
        )));
    }
    let value = fold_keys(value);
    let body: RegisterBody = serde_path_to_error::deserialize(value).map_err(|e| {
        BadRequest(format!(
            "Request decode failed: {}: {}",
            e.path(),
            e.inner()
        ))
    })?;
    let name = match body.name {
        Some(n) if !n.is_empty() => n,
        _ => return Err(BadRequest("Missing service name".into())),
    };
    let id = body
        .id
        .filter(|i| !i.is_empty())
        .unwrap_or_else(|| name.clone());
    let mut bodies: Vec<(String, CheckBody)> = Vec::new();
    if let Some(c) = body.check {
        bodies.push(("Check".into(), c));
    }
    for (i, c) in body.checks.into_iter().flatten().enumerate() {
        bodies.push((format!("Checks[{i}]"), c));
    }
    bodies.retain(|(_, c)| !c.is_empty());
    let several = bodies.len() > 1;
    let mut checks = Vec::new();
    for (n, (field, c)) in bodies.into_iter().enumerate() {
        let default_id = if several {
            format!("service:{id}:{}", n + 1)
        } else {
            format!("service:{id}")
        };
        let check = c
            .into_def(default_id, &name)
            .map_err(|e| BadRequest(format!("Invalid check: {field}: {e}")))?;
        checks.push(check);
    }
    Ok(Registration {
        id,
        name,
        tags: body.tags.unwrap_or_default(),
        address: body.address.unwrap_or_default(),
        port: body.port.unwrap_or(0),
        meta: body.meta.unwrap_or_default(),
        checks,
    })
}

impl CheckBody {
    /// A `"Check": {}` registers no check, as in Consul.
    fn is_empty(&self) -> bool {
        self.tcp.is_none()
            && self.http.is_none()
            && self.ttl.is_none()
            && self.unsupported().is_none()
            && self.interval.is_none()
    }

    fn unsupported(&self) -> Option<&'static str> {
        let kinds = [
            ("script (Args)", &self.args),
            ("script", &self.script),
            ("gRPC", &self.grpc),
            ("H2 ping", &self.h2ping),
            ("Docker", &self.dockercontainerid),
            ("alias", &self.aliasservice),
            ("alias", &self.aliasnode),
            ("UDP", &self.udp),
            ("OS service", &self.oscservice),
        ];
        kinds
            .into_iter()
            .find(|(_, v)| v.as_ref().is_some_and(|v| !v.is_null() && v != ""))
            .map(|(k, _)| k)
    }

    fn into_def(self, default_id: String, service: &str) -> Result<CheckDef, String> {
        if let Some(kind) = self.unsupported() {
            return Err(format!(
                "a {kind} check: conclave registry runs TCP, HTTP and TTL checks only"
            ));
        }
        let ttl = opt_duration("TTL", self.ttl.as_ref())?;
        let interval = opt_duration("Interval", self.interval.as_ref())?;
        let kind = match (self.tcp, self.http, ttl) {
            (Some(addr), None, None) => CheckKind::Tcp(addr),
            (None, Some(url), None) => {
                let method = self.method.filter(|m| !m.is_empty());
                let method = method.unwrap_or_else(|| "GET".into());
                if !method.bytes().all(|b| b.is_ascii_uppercase()) {
                    return Err(format!(
                        "Method {method:?} is not an HTTP method (GET, HEAD...)"
                    ));
                }
                if url
                    .bytes()
                    .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
                {
                    return Err(format!("HTTP {url:?} has a space or a control character"));
                }
                CheckKind::Http { url, method }
            }
            (None, None, Some(ttl)) if ttl > Duration::ZERO => CheckKind::Ttl(ttl),
            (None, None, Some(_)) => return Err("TTL must be > 0 for TTL checks".into()),
            (None, None, None) => {
                return Err("one of TCP, HTTP or TTL is needed with an Interval".into())
            }
            _ => return Err("give only one of TCP, HTTP and TTL".into()),
        };
        let interval = match (&kind, interval) {
            (CheckKind::Ttl(ttl), _) => *ttl,
            (_, Some(i)) if i > Duration::ZERO => i.max(MIN_INTERVAL),
            _ => return Err("Interval must be > 0 for Script, HTTP, or TCP checks".into()),
        };
        let timeout = opt_duration("Timeout", self.timeout.as_ref())?
            .filter(|t| *t > Duration::ZERO)
            .unwrap_or(DEFAULT_TIMEOUT);
        let deregister_critical_after = opt_duration(
            "DeregisterCriticalServiceAfter",
            self.deregistercriticalserviceafter.as_ref(),
        )?
        .filter(|d| *d > Duration::ZERO);
        let status = match self.status.as_deref() {
            None | Some("") => Status::Critical,
            Some(s) => Status::parse(s).ok_or_else(|| {
                format!("Status {s:?} is not one of \"passing\", \"warning\", \"critical\"")
            })?,
        };
        Ok(CheckDef {
            id: self.checkid.filter(|i| !i.is_empty()).unwrap_or(default_id),
            name: self
                .name
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| format!("Service '{service}' check")),
            kind,
            interval,
            timeout,
            deregister_critical_after,
            status,
            notes: self.notes.unwrap_or_default(),
        })
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Folds every object key to lower case without `_` or `-`, except the keys of user maps.
pub fn fold_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let folded: String = k
                        .chars()
                        .filter(|c| *c != '_' && *c != '-')
                        .flat_map(char::to_lowercase)
                        .collect();
                    let keep_inner_keys = matches!(folded.as_str(), "meta" | "header");
                    (folded, if keep_inner_keys { v } else { fold_keys(v) })
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(fold_keys).collect()),
        other => other,
    }
}

fn opt_duration(field: &str, value: Option<&Value>) -> Result<Option<Duration>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => parse_duration(s)
            .map(Some)
            .map_err(|e| format!("{field}: invalid duration {s:?}: {e}")),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(ns) => Ok(Some(Duration::from_nanos(ns))),
            None => Err(format!(
                "{field}: {n} is no duration (a string like \"10s\", or nanoseconds)"
            )),
        },
        Some(other) => Err(format!(
            "{field}: {other} is no duration (a string like \"10s\", or nanoseconds)"
        )),
    }
}

/// Parses a duration as Go's `time.ParseDuration` does: `"10s"`, `"1m30s"`, `"1.5h"`, `"0"`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.starts_with('-') {
        return Err("durations cannot be negative".into());
    }
    let mut rest = text.strip_prefix('+').unwrap_or(text);
    if rest.is_empty() {
        return Err("empty".into());
    }
    let mut total_ns: f64 = 0.0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..number_len]
            .parse()
            .map_err(|_| format!("expected a number at {rest:?}"))?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit_ns = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => return Err("missing unit (ns, us, ms, s, m, h)".into()),
            u => return Err(format!("unknown unit {u:?} (ns, us, ms, s, m, h)")),
        };
        rest = &rest[unit_len..];
        total_ns += number * unit_ns;
    }
    if total_ns > u64::MAX as f64 {
        return Err("too long".into());
    }
    Ok(Duration::from_nanos(total_ns.round() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_as_go_writes_them() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("10").unwrap_err().contains("missing unit"));
        assert!(parse_duration("10x").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn keys_in_any_case_and_snake_case_meta_kept() {
        let r = parse_registration(
            br#"{"NAME": "db", "id": "db-1", "Tags": ["a"], "ADDRESS": "10.0.0.1", "port": 5432,
                 "Meta": {"Zone_A": "x"},
                 "checks": [{"http": "http://10.0.0.1/h", "Interval": "5s",
                             "deregister_critical_service_after": "1m"},
                            {"TTL": "30s", "status": "passing"}]}"#,
        )
        .unwrap();
        assert_eq!(
            (r.id.as_str(), r.name.as_str(), r.port),
            ("db-1", "db", 5432)
        );
        assert_eq!(r.meta.keys().collect::<Vec<_>>(), ["Zone_A"]);
        assert_eq!(r.checks[0].id, "service:db-1:1");
        assert_eq!(
            r.checks[0].deregister_critical_after,
            Some(Duration::from_secs(60))
        );
        assert_eq!(r.checks[0].status, Status::Critical);
        assert_eq!(r.checks[1].kind, CheckKind::Ttl(Duration::from_secs(30)));
        assert_eq!(r.checks[1].status, Status::Passing);
    }

    #[test]
    fn refusals_say_what_is_wrong() {
        let err = |b: &str| parse_registration(b.as_bytes()).unwrap_err().0;
        assert!(err("{").starts_with("Request decode failed: EOF while parsing"));
        assert_eq!(err(r#"{"port": 1}"#), "Missing service name");
        assert_eq!(
            err(r#"{"name": "a", "port": "x"}"#),
            "Request decode failed: port: invalid type: string \"x\", expected u16"
        );
        assert_eq!(
            err(r#"{"name": "a", "check": {"tcp": "h:1"}}"#),
            "Invalid check: Check: Interval must be > 0 for Script, HTTP, or TCP checks"
        );
        assert_eq!(
            err(r#"{"name": "a", "check": {"args": ["/bin/true"], "interval": "1s"}}"#),
            "Invalid check: Check: a script (Args) check: conclave registry runs TCP, HTTP and TTL checks only"
        );
        assert_eq!(
            err(r#"{"name": "a", "check": {"http": "http://h/\r\nX: y", "interval": "1s"}}"#),
            "Invalid check: Check: HTTP \"http://h/\\r\\nX: y\" has a space or a control character"
        );
        assert_eq!(
            err(r#"{"name": "a", "check": {"tcp": "h:1", "interval": "5"}}"#),
            "Invalid check: Check: Interval: invalid duration \"5\": missing unit (ns, us, ms, s, m, h)"
        );
    }
}
