//! `conclave registry` over real HTTP on 127.0.0.1: Consul's paths, field names, status codes
//! and blocking queries, and the health checks the registry runs itself.

mod common;
use common::{closed_port, get, ids, put, request, start, wait_for};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Answers every request with `status_line` (for HTTP checks), after reading it: closing a
/// socket with unread bytes resets the connection.
async fn http_server(status_line: &'static str) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.ends_with(b"\r\n\r\n") {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let answer = format!("HTTP/1.1 {status_line}\r\nContent-Length: 2\r\n\r\nok");
            let _ = stream.write_all(answer.as_bytes()).await;
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_passing_leaves_out_a_failing_tcp_check_and_the_catalog_keeps_it() {
    let addr = start(None).await;
    let up = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up_port = up.local_addr().unwrap().port();
    // py-consul's keys (lower case), then Go's (Consul's own case), then shouting.
    let body = format!(
        r#"{{"name": "voter", "id": "node1", "address": "127.0.0.1", "port": {up_port},
            "tags": ["bully"], "meta": {{"Priority": "1"}},
            "checks": [{{"tcp": "127.0.0.1:{up_port}", "interval": "1s", "timeout": "500ms"}}]}}"#
    );
    assert_eq!(
        put(addr, "/v1/agent/service/register", &body).await.status,
        200
    );
    let down = closed_port();
    let body = format!(
        r#"{{"Name": "voter", "ID": "node2", "Port": {down}, "Tags": ["bully", "b"],
            "Check": {{"TCP": "127.0.0.1:{down}", "Interval": "1s"}}}}"#
    );
    assert_eq!(
        put(addr, "/v1/agent/service/register", &body).await.status,
        200
    );
    let body = r#"{"NAME": "other", "CHECK": {"TTL": "1m", "STATUS": "passing"}}"#;
    assert_eq!(
        put(addr, "/v1/agent/service/register", body).await.status,
        200
    );

    let passing = wait_for(addr, "/v1/health/service/voter?passing", |a| {
        ids(a) == ["node1"]
    })
    .await;
    let entry = &passing.json()[0];
    assert_eq!(entry["Service"]["Port"], up_port);
    assert_eq!(
        entry["Service"]["Meta"]["Priority"], "1",
        "Meta keys keep their case"
    );
    assert_eq!(entry["Node"]["Node"], "conclave-registry");
    let checks = entry["Checks"].as_array().unwrap();
    assert_eq!(checks[0]["CheckID"], "serfHealth");
    assert_eq!(checks[1]["CheckID"], "service:node1");
    assert_eq!(checks[1]["Status"], "passing");
    assert_eq!(
        checks[1]["Output"],
        format!("TCP connect 127.0.0.1:{up_port}: Success")
    );

    let all = wait_for(addr, "/v1/health/service/voter", |a| {
        a.json()[1]["Checks"][1]["Output"] != ""
    })
    .await;
    assert_eq!(ids(&all), ["node1", "node2"]);
    let failing = &all.json()[1]["Checks"][1];
    assert_eq!(failing["Status"], "critical");
    assert!(failing["Output"]
        .as_str()
        .unwrap()
        .starts_with(&format!("dial tcp 127.0.0.1:{down}: ")));
    for flag in ["passing=true", "passing=1"] {
        let a = get(addr, &format!("/v1/health/service/voter?{flag}")).await;
        assert_eq!(ids(&a), ["node1"], "?{flag}");
    }
    assert_eq!(
        ids(&get(addr, "/v1/health/service/voter?passing=false").await).len(),
        2
    );

    let catalog = get(addr, "/v1/catalog/service/voter").await;
    assert!(catalog.header("X-Consul-Index").is_some());
    assert_eq!(
        ids(&catalog),
        ["node1", "node2"],
        "the catalog keeps critical instances"
    );
    assert_eq!(catalog.json()[1]["ServicePort"], down);
    assert_eq!(catalog.json()[0]["ServiceAddress"], "127.0.0.1");
    assert_eq!(catalog.json()[0]["Address"], "127.0.0.1");
    let services = get(addr, "/v1/catalog/services").await;
    assert_eq!(
        services.json(),
        serde_json::json!({"other": [], "voter": ["bully", "b"]})
    );
    assert_eq!(
        ids(&get(addr, "/v1/health/service/nobody?passing").await).len(),
        0
    );
    drop(up);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_checks_pass_on_2xx_warn_on_429_and_fail_otherwise() {
    let addr = start(None).await;
    for (id, status_line) in [
        ("ok", "200 OK"),
        ("busy", "429 Too Many Requests"),
        ("bad", "503 Service Unavailable"),
    ] {
        let port = http_server(status_line).await;
        let body = format!(
            r#"{{"Name": "web", "ID": "{id}", "Check": {{"HTTP": "http://127.0.0.1:{port}/health", "Interval": "1s"}}}}"#
        );
        assert_eq!(
            put(addr, "/v1/agent/service/register", &body).await.status,
            200
        );
    }
    let all = wait_for(addr, "/v1/health/service/web", |a| {
        a.json()
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["Checks"][1]["Output"] != "")
    })
    .await;
    let statuses: Vec<(String, String)> = all
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["Service"]["ID"].to_string(),
                e["Checks"][1]["Status"].to_string(),
            )
        })
        .collect();
    let expected = [("bad", "critical"), ("busy", "warning"), ("ok", "passing")];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(i, s)| (format!("{i:?}"), format!("{s:?}")))
        .collect();
    assert_eq!(statuses, expected);
    let output = all.json()[2]["Checks"][1]["Output"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(output.starts_with("HTTP GET http://127.0.0.1:"), "{output}");
    assert!(output.ends_with("/health: 200 OK Output: ok"), "{output}");
    assert_eq!(
        ids(&get(addr, "/v1/health/service/web?passing").await),
        ["ok"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ttl_check_starts_critical_and_passes_when_updated() {
    let addr = start(None).await;
    let body = r#"{"name": "leader", "id": "n1", "check": {"ttl": "30s"}}"#;
    assert_eq!(
        put(addr, "/v1/agent/service/register", body).await.status,
        200
    );
    let health = get(addr, "/v1/health/service/leader").await;
    assert_eq!(health.json()[0]["Checks"][1]["Status"], "critical");
    assert_eq!(health.json()[0]["Checks"][1]["Type"], "ttl");
    assert!(ids(&get(addr, "/v1/health/service/leader?passing").await).is_empty());

    let pass = put(addr, "/v1/agent/check/pass/service:n1?note=alive", "").await;
    assert_eq!(pass.status, 200);
    let passing = get(addr, "/v1/health/service/leader?passing").await;
    assert_eq!(ids(&passing), ["n1"]);
    assert_eq!(passing.json()[0]["Checks"][1]["Output"], "alive");
    // Registered again unchanged, the check keeps its status; changed, it starts over.
    assert_eq!(
        put(addr, "/v1/agent/service/register", body).await.status,
        200
    );
    assert_eq!(
        ids(&get(addr, "/v1/health/service/leader?passing").await),
        ["n1"]
    );
    let changed = r#"{"name": "leader", "id": "n1", "check": {"ttl": "40s"}}"#;
    assert_eq!(
        put(addr, "/v1/agent/service/register", changed)
            .await
            .status,
        200
    );
    assert!(ids(&get(addr, "/v1/health/service/leader?passing").await).is_empty());
    let warn = "/v1/agent/check/warn/service:n1";
    for path in ["/v1/agent/check/pass/service:n1", warn] {
        assert_eq!(put(addr, path, "").await.status, 200);
    }
    assert!(ids(&get(addr, "/v1/health/service/leader?passing").await).is_empty());

    let unknown = put(addr, "/v1/agent/check/pass/service:nope", "").await;
    assert_eq!(unknown.status, 404);
    assert_eq!(
        unknown.body,
        "Unknown check ID \"service:nope\". Ensure that the check ID is passed, not the check name."
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deregister_removes_an_instance_and_an_unknown_id_is_404() {
    let addr = start(None).await;
    let body = r#"{"Name": "voter", "ID": "node1", "Check": {"TTL": "1m"}}"#;
    assert_eq!(
        put(addr, "/v1/agent/service/register", body).await.status,
        200
    );
    assert_eq!(
        ids(&get(addr, "/v1/catalog/service/voter").await),
        ["node1"]
    );
    let gone = put(addr, "/v1/agent/service/deregister/node1", "").await;
    assert_eq!((gone.status, gone.body.as_str()), (200, ""));
    assert!(ids(&get(addr, "/v1/catalog/service/voter").await).is_empty());
    assert_eq!(
        get(addr, "/v1/catalog/services").await.json(),
        serde_json::json!({})
    );
    // The check went with its instance.
    assert_eq!(
        put(addr, "/v1/agent/check/pass/service:node1", "")
            .await
            .status,
        404
    );

    let again = put(addr, "/v1/agent/service/deregister/node1", "").await;
    assert_eq!(again.status, 404);
    assert_eq!(
        again.body,
        "Unknown service ID \"node1\". Ensure that the service ID is passed, not the service name."
    );
    // Consul takes PUT for agent writes; GET (as python-consul 0.7 sent) is refused.
    let get_deregister = get(addr, "/v1/agent/service/deregister/node1").await;
    assert_eq!(get_deregister.status, 405);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_get_4xx_and_change_nothing() {
    let addr = start(None).await;
    let before = get(addr, "/v1/catalog/services").await.index();
    let cases: &[(&[u8], u16, &str)] = &[
        (b"{\"Name\": ", 400, "Request decode failed: EOF while parsing a value at line 1 column 9"),
        (b"[1, 2]", 400, "Request decode failed: a service definition is a JSON object, not an array"),
        (b"{\"Port\": 80}", 400, "Missing service name"),
        (b"{\"Name\": \"a\", \"Port\": 70000}", 400, "Request decode failed: port: invalid value: integer `70000`, expected u16"),
        (
            b"{\"Name\": \"a\", \"Check\": {\"TCP\": \"h:1\", \"Interval\": \"soon\"}}",
            400,
            "Invalid check: Check: Interval: invalid duration \"soon\": expected a number at \"soon\"",
        ),
        (
            b"{\"Name\": \"a\", \"Check\": {\"GRPC\": \"h:1\", \"Interval\": \"1s\"}}",
            400,
            "Invalid check: Check: a gRPC check: conclave registry runs TCP, HTTP and TTL checks only",
        ),
    ];
    for (body, status, message) in cases {
        let a = request(addr, "PUT", "/v1/agent/service/register", &[], body).await;
        assert_eq!(
            (a.status, a.body.as_str()),
            (*status, *message),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
    let oversized = format!(
        r#"{{"Name": "a", "Meta": {{"x": "{}"}}}}"#,
        "x".repeat(2 << 20)
    );
    let a = put(addr, "/v1/agent/service/register", &oversized).await;
    assert_eq!(a.status, 413, "{}", a.body);
    let a = get(addr, "/v1/health/service/a?index=abc").await;
    assert_eq!(
        (a.status, a.body.as_str()),
        (400, "Invalid index \"abc\": not a whole number")
    );
    let a = get(addr, "/v1/health/service/a?index=1&wait=forever").await;
    assert_eq!(a.status, 400, "{}", a.body);
    let a = get(addr, "/v1/agent/members").await;
    assert_eq!(a.status, 404);
    assert!(
        a.body.starts_with("no endpoint GET /v1/agent/members: "),
        "{}",
        a.body
    );

    let after = get(addr, "/v1/catalog/services").await;
    assert_eq!((after.index(), after.body.as_str()), (before, "{}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocking_query_returns_on_a_change_and_otherwise_times_out_with_the_same_index() {
    let addr = start(None).await;
    let first = get(addr, "/v1/health/service/voter?passing").await;
    let index = first.index();
    let waiting = tokio::spawn(async move {
        let started = Instant::now();
        let path = format!("/v1/health/service/voter?passing&index={index}&wait=30s");
        (get(addr, &path).await, started.elapsed())
    });
    let body = r#"{"Name": "voter", "ID": "node1", "Check": {"TTL": "1m", "Status": "passing"}}"#;
    assert_eq!(
        put(addr, "/v1/agent/service/register", body).await.status,
        200
    );
    let (answer, took) = waiting.await.unwrap();
    assert!(took < Duration::from_secs(10), "woke after {took:?}");
    assert!(answer.index() > index);
    assert_eq!(ids(&answer), ["node1"]);

    // A change to another service does not wake it; the wait runs out, same index.
    let index = answer.index();
    let waiting = tokio::spawn(async move {
        let started = Instant::now();
        let path = format!("/v1/health/service/voter?index={index}&wait=700ms");
        (get(addr, &path).await, started.elapsed())
    });
    let other = r#"{"Name": "other"}"#;
    assert_eq!(
        put(addr, "/v1/agent/service/register", other).await.status,
        200
    );
    let (answer, took) = waiting.await.unwrap();
    assert!(
        took >= Duration::from_millis(700),
        "returned after {took:?}"
    );
    assert_eq!(answer.index(), index);
    assert_eq!(ids(&answer), ["node1"]);

    // The catalog's listing blocks on every change.
    let services = get(addr, "/v1/catalog/services").await;
    let index = services.index();
    let waiting = tokio::spawn(async move {
        get(
            addr,
            &format!("/v1/catalog/services?index={index}&wait=30s"),
        )
        .await
    });
    let third = r#"{"Name": "third"}"#;
    assert_eq!(
        put(addr, "/v1/agent/service/register", third).await.status,
        200
    );
    let answer = waiting.await.unwrap();
    assert!(answer.index() > index);
    assert_eq!(
        answer.json(),
        serde_json::json!({"other": [], "third": [], "voter": []})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_critical_past_deregister_critical_service_after_is_removed() {
    let addr = start(None).await;
    let down = closed_port();
    let body = format!(
        r#"{{"Name": "voter", "ID": "gone", "Check": {{"TCP": "127.0.0.1:{down}", "Interval": "1s",
            "DeregisterCriticalServiceAfter": "1s"}}}}"#
    );
    assert_eq!(
        put(addr, "/v1/agent/service/register", &body).await.status,
        200
    );
    assert_eq!(ids(&get(addr, "/v1/catalog/service/voter").await), ["gone"]);
    wait_for(addr, "/v1/catalog/service/voter", |a| ids(a).is_empty()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_token_every_request_must_carry_it() {
    let addr = start(Some("s3cret")).await;
    let body = r#"{"Name": "voter"}"#.as_bytes();
    let register = "/v1/agent/service/register";
    for headers in [vec![], vec![("X-Consul-Token", "wrong")]] {
        let a = request(addr, "PUT", register, &headers, body).await;
        assert_eq!((a.status, a.body.as_str()), (403, "Permission denied"));
        let a = request(addr, "GET", "/v1/catalog/services", &headers, b"").await;
        assert_eq!(a.status, 403);
    }
    let ok = request(addr, "PUT", register, &[("X-Consul-Token", "s3cret")], body).await;
    assert_eq!(ok.status, 200);
    let bearer = [("Authorization", "Bearer s3cret")];
    let a = request(addr, "GET", "/v1/catalog/services", &bearer, b"").await;
    assert_eq!(a.json(), serde_json::json!({"voter": []}));
    let a = get(addr, "/v1/catalog/services?token=s3cret").await;
    assert_eq!(a.status, 200);
}
