//! `net::conform`: real trace logs (four `conclave-node` processes of the textbook Bully, the
//! leader d killed after 1.2 s, the others stopped with `q` later; written by the runtime and
//! kept under tests/data/conform) replay through the model exactly, and doctored copies are
//! caught with the line, the input and what the model would have done.
#![cfg(feature = "net")]

use conclave_algorithms::bully::Bully;
use conclave_algorithms::net::conform::replay;

fn log(node: &str) -> String {
    let path = format!(
        "{}/tests/data/conform/{node}.jsonl",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The log with line `n` (from 1) replaced by what `edit` makes of it.
fn doctored(text: &str, n: usize, edit: impl Fn(&str) -> String) -> String {
    text.lines()
        .enumerate()
        .map(|(i, l)| if i + 1 == n { edit(l) } else { l.to_string() })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The number of the first line holding every one of `parts`.
fn line_with(text: &str, parts: &[&str]) -> usize {
    text.lines()
        .position(|l| parts.iter().all(|p| l.contains(p)))
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("no line with {parts:?}"))
}

#[test]
fn every_real_log_replays_through_the_model() {
    for node in ["a", "b", "c", "d"] {
        let r = replay::<Bully>(&log(node)).unwrap_or_else(|m| panic!("{node}: {m}"));
        assert_eq!(r.node, node);
        assert!(r.inputs > 20 && r.outputs > r.inputs, "{node}: {r:?}");
        // The survivors stopped gracefully: their logs end with every output.
        if node != "d" {
            assert!(!r.cut, "{node}");
        }
        assert_eq!(r.params["answer_timeout"], "100ms");
    }
}

#[test]
fn a_send_the_model_would_not_make_is_caught() {
    let text = log("c");
    let n = line_with(&text, &[r#""event":"send""#, r#""to":"a""#]);
    let bad = doctored(&text, n, |l| l.replace(r#""to":"a""#, r#""to":"b""#));
    let m = replay::<Bully>(&bad).expect_err("a doctored send");
    assert_eq!((m.line, m.node.as_deref()), (n, Some("c")));
    assert!(m.what.starts_with("the log has `send"), "{m}");
    assert!(
        m.what.contains("to b`, the model would `send") && m.what.contains("to a`"),
        "{m}"
    );
    assert!(m.input.is_some(), "{m}");
}

#[test]
fn an_extra_send_and_a_missing_one_are_caught() {
    let text = log("a");
    let n = line_with(&text, &[r#""event":"send""#]);
    let line = text.lines().nth(n - 1).unwrap().to_string();
    // The send twice: the model asks for it once.
    let twice = doctored(&text, n, |l| format!("{l}\n{line}"));
    let m = replay::<Bully>(&twice).expect_err("an extra send");
    assert_eq!(m.line, n + 1);
    assert!(m.what.contains("the model"), "{m}");
    // The send left out: the model asks for it and the log goes on without it.
    let without = doctored(&text, n, |_| String::new());
    let m = replay::<Bully>(&without).expect_err("a missing send");
    assert!(m.what.contains("send"), "{m}");
}

#[test]
fn a_role_change_the_model_would_not_make_is_caught() {
    let text = log("b");
    let n = line_with(&text, &[r#""event":"role""#, r#""role":"Follower""#]);
    let bad = doctored(&text, n, |l| {
        l.replace(r#""role":"Follower""#, r#""role":"Leader""#)
    });
    let m = replay::<Bully>(&bad).expect_err("a doctored role");
    assert_eq!(m.line, n);
    assert!(
        m.what.contains("become Leader") && m.what.contains("become Follower"),
        "{m}"
    );
}

#[test]
fn a_timer_the_model_does_not_run_is_caught() {
    let text = log("a");
    let n = line_with(&text, &[r#""event":"timer""#]);
    let bad = doctored(&text, n, |l| {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        let token = v["token"].as_u64().unwrap();
        l.replace(&format!(r#""token":{token}"#), r#""token":99999"#)
    });
    let m = replay::<Bully>(&bad).expect_err("a stale timer");
    assert_eq!(m.line, n);
    assert!(m.what.contains("no such timer running"), "{m}");
}

#[test]
fn a_log_without_a_start_or_with_garbage_is_refused_with_its_line() {
    let m = replay::<Bully>("").expect_err("empty");
    assert!(m.what.contains("no start line"), "{m}");
    let text = log("a");
    let bad = doctored(&text, 3, |_| "{not json".to_string());
    let m = replay::<Bully>(&bad).expect_err("garbage");
    assert_eq!(m.line, 3);
    assert!(m.what.starts_with("not a JSON object"), "{m}");
}

/// The log with `line` inserted before line `n` (from 1).
fn inserted(text: &str, n: usize, line: &str) -> String {
    let mut lines: Vec<&str> = text.lines().collect();
    lines.insert(n - 1, line);
    lines.join("\n")
}

#[test]
fn member_lines_change_the_replayed_cluster_and_bad_ones_are_refused() {
    let text = log("a");
    let member = |json: &str| {
        format!(r#"{{"mono_us":153000,"wall_us":0,"node":"a","event":"member","member":{json}}}"#)
    };
    // d's COORDINATOR, as if from e: without e a member, the model cannot take it.
    let coordinator = line_with(
        &text,
        &[r#""event":"deliver","from":"d","msg":"Coordinator""#],
    );
    let from_e = doctored(&text, coordinator, |l| {
        l.replace(r#""from":"d""#, r#""from":"e""#)
    });
    let m = replay::<Bully>(&from_e).expect_err("e is no member");
    assert!(m.what.contains("from e, who is not a member"), "{m}");
    // With a `member` line for e before it, the model takes it and follows e, where the
    // log (really d's COORDINATOR) follows d.
    let e = member(r#"{"name":"e","priority":5,"address":null,"voter":true}"#);
    let m = replay::<Bully>(&inserted(&from_e, coordinator, &e)).expect_err("e leads");
    assert_eq!(m.line, coordinator + 2, "{m}");
    assert!(
        m.what
            .ends_with("the model would `become Follower (leader e, status Follower)`"),
        "{m}"
    );
    // A known member at another address: Bully does not care, the log still conforms.
    let moved = member(r#"{"name":"b","priority":2,"address":"127.0.0.1:9999","voter":true}"#);
    let r =
        replay::<Bully>(&inserted(&text, coordinator, &moved)).unwrap_or_else(|m| panic!("{m}"));
    assert!(r.inputs > 20, "{r:?}");
    // A member without a name, or one before the start, makes the text no trace log.
    let nameless = member(r#"{"priority":5}"#);
    let m = replay::<Bully>(&inserted(&text, coordinator, &nameless)).expect_err("nameless");
    assert!(m.malformed && m.line == coordinator, "{m}");
    assert!(m.what.contains("without a name"), "{m}");
    let m = replay::<Bully>(&inserted(&text, 1, &moved)).expect_err("before the start");
    assert!(m.malformed && m.line == 1, "{m}");
}
