//! Checks a real node's trace log against the model (`conclave conform`).
//!
//! A node's trace log (see [`super::runtime`]) holds every input the node took (its start,
//! each delivered message, each timer, each failure-detector verdict, its leave) with the
//! random draws each made, and, after each input, what the node asked for (role change,
//! sends, timer operations). [`replay`] builds the same [`Driver`] from the `start` line,
//! hands it each input at its logged time with the logged draws (a verdict with its logged
//! incarnation), and checks that it asks for exactly what the log says it asked for, in the
//! same order. The first difference is a [`Mismatch`] naming the line, the
//! input and what the model would have done instead.
//!
//! A `member` line (a node on the lab's wire learns the group as it goes) adds a member to
//! the replayed cluster, or changes a known one's address, before the inputs after it.
//!
//! A node killed while writing its log may end in the middle of an input's outputs: what
//! is logged must match, what is missing at the very end is not a mismatch
//! ([`Replayed::cut`] says so).

use crate::driver::{Driver, Env, Output, Ready};
use crate::{Algorithm, Cluster, Member, MemberKind, Pid, Random, Time, View};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::fmt;

/// What a log that conforms held.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replayed {
    /// The node's name, from its `start` line.
    pub node: String,
    /// The parameters the node ran with, as logged.
    pub params: Value,
    /// Inputs replayed (starts, messages, timers, verdicts, leaves).
    pub inputs: usize,
    /// Outputs checked (role changes, sends, timer operations).
    pub outputs: usize,
    /// The log ends before all the outputs of its last input (a killed node).
    pub cut: bool,
}

/// The first place where the log and the model part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// The node, when the log got as far as naming it.
    pub node: Option<String>,
    /// The line, counted from 1.
    pub line: usize,
    /// The input whose outputs differ, as the log has it ("timer Answer at 1.001724s").
    pub input: Option<String>,
    pub what: String,
    /// The text is not a trace log at all (not JSON, no start line, an unknown event), as
    /// opposed to a log the model disagrees with.
    pub malformed: bool,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}", self.line)?;
        if let Some(node) = &self.node {
            write!(f, ", node {node}")?;
        }
        if let Some(input) = &self.input {
            write!(f, ", after the {input}")?;
        }
        write!(f, ": {}", self.what)
    }
}

impl std::error::Error for Mismatch {}

/// The draws an input made, handed back in order; any other draw is noted.
struct Recorded {
    draws: VecDeque<[u64; 3]>,
    wrong: Option<String>,
}

impl Random for Recorded {
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        match self.draws.pop_front() {
            Some([l, h, value]) if (l, h) == (lo, hi) => value,
            Some([l, h, _]) => {
                self.wrong.get_or_insert_with(|| {
                    format!("the model draws in {lo}..={hi}, the log drew in {l}..={h}")
                });
                lo
            }
            None => {
                self.wrong.get_or_insert_with(|| {
                    format!("the model draws in {lo}..={hi}, the log drew nothing more")
                });
                lo
            }
        }
    }
}

/// One logged output, in the form compared.
fn logged_output(event: &str, v: &Value) -> Value {
    match event {
        "role" => json!({"event": "role", "role": v["role"], "leader": v["leader"],
            "status": v["status"], "group": v["group"]}),
        "send" => json!({"event": "send", "to": v["to"], "msg": v["msg_json"]}),
        "set_timer" => json!({"event": "set_timer", "timer": v["timer_json"],
            "token": v["token"], "due_us": v["due_us"]}),
        _ => json!({"event": "cancel_timer", "timer": v["timer_json"]}),
    }
}

fn to_json<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// What the model asked for, in the form compared.
fn model_outputs<A: Algorithm>(ready: &Ready<A::Msg, A::Timer>, cluster: &Cluster) -> Vec<Value> {
    let name = |p: Pid| cluster.members.get(p.index()).map(|m| m.name.clone());
    let mut out = Vec::new();
    if let Some(View {
        role,
        leader,
        status,
        group,
    }) = ready.role
    {
        out.push(json!({"event": "role", "role": to_json(&role),
            "leader": leader.and_then(name), "status": status, "group": group}));
    }
    for o in &ready.outputs {
        out.push(match o {
            Output::Send { to, msg } => {
                json!({"event": "send", "to": name(*to), "msg": to_json(msg)})
            }
            Output::SetTimer { timer, token, due } => json!({"event": "set_timer",
                "timer": to_json(timer), "token": token, "due_us": due.as_micros()}),
            Output::CancelTimer { timer } => {
                json!({"event": "cancel_timer", "timer": to_json(timer)})
            }
        });
    }
    out
}

/// How an output reads in a message: `send to a Coordinator`.
fn describe(v: &Value) -> String {
    let text = |k: &str| match &v[k] {
        Value::String(s) => s.clone(),
        Value::Null => "nobody".to_string(),
        other => other.to_string(),
    };
    match v["event"].as_str() {
        Some("role") => format!(
            "become {} (leader {}, status {})",
            text("role"),
            text("leader"),
            text("status")
        ),
        Some("send") => format!("send {} to {}", text("msg"), text("to")),
        Some("set_timer") => format!(
            "set timer {} (token {}, due at {} µs)",
            text("timer"),
            text("token"),
            text("due_us")
        ),
        _ => format!("cancel timer {}", text("timer")),
    }
}

/// The node being replayed, from its `start` line on.
struct Replaying<A: Algorithm> {
    driver: Driver<A>,
    cluster: Cluster,
    voters: Vec<Pid>,
    params: A::Params,
    incarnation: u64,
}

/// Replays one node's trace log through algorithm `A` (see the module docs).
pub fn replay<A>(log: &str) -> Result<Replayed, Mismatch>
where
    A: Algorithm,
    A::Params: DeserializeOwned,
{
    let mut node: Option<Replaying<A>> = None;
    let mut done = Replayed {
        node: String::new(),
        params: Value::Null,
        inputs: 0,
        outputs: 0,
        cut: false,
    };
    // The outputs the model asked for that the log has not shown yet, and their input.
    let mut pending: VecDeque<Value> = VecDeque::new();
    let mut input: Option<String> = None;
    let mut last = 0;
    for (i, text) in log.lines().enumerate() {
        let line = i + 1;
        last = line;
        if text.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(text)
            .map_err(|e| malformed(line, format!("not a JSON object: {e}")))?;
        let event = v["event"].as_str().unwrap_or("").to_string();
        let now = Time(v["mono_us"].as_u64().unwrap_or(0));
        if matches!(
            event.as_str(),
            "role" | "send" | "set_timer" | "cancel_timer"
        ) {
            let logged = logged_output(&event, &v);
            match pending.pop_front() {
                Some(model) if model == logged => {
                    done.outputs += 1;
                    continue;
                }
                Some(model) => {
                    return Err(mismatch(
                        line,
                        &done.node,
                        &input,
                        format!(
                            "the log has `{}`, the model would `{}`",
                            describe(&logged),
                            describe(&model)
                        ),
                    ))
                }
                None => {
                    return Err(mismatch(
                        line,
                        &done.node,
                        &input,
                        format!(
                            "the log has `{}`, the model asks for nothing more",
                            describe(&logged)
                        ),
                    ))
                }
            }
        }
        // Any other line ends the outputs of the input before it.
        if let Some(model) = pending.front() {
            return Err(mismatch(
                line,
                &done.node,
                &input,
                format!(
                    "the model would also `{}`, which the log does not show",
                    describe(model)
                ),
            ));
        }
        let mut recorded = Recorded {
            draws: serde_json::from_value::<Vec<[u64; 3]>>(v["draws"].clone())
                .unwrap_or_default()
                .into(),
            wrong: None,
        };
        let mut ready = Ready::default();
        match event.as_str() {
            "start" => {
                let started = start::<A>(&v).map_err(|e| malformed(line, e))?;
                done.node = started.cluster.name(started.driver.me()).to_string();
                done.params = v["params"].clone();
                let Replaying {
                    driver,
                    cluster,
                    voters,
                    params,
                    incarnation,
                } = node.insert(started);
                let env = env(cluster, voters, now, *incarnation);
                driver.start(params, env, &mut recorded, &mut ready);
                input = Some(format!("start at {now}"));
            }
            "deliver" | "timer" | "suspect" | "leave" => {
                let Some(r) = node.as_mut() else {
                    return Err(malformed(line, format!("a {event} before the start")));
                };
                let env = env(&r.cluster, &r.voters, now, r.incarnation);
                match event.as_str() {
                    "deliver" => {
                        let from = v["from"].as_str().unwrap_or("");
                        let Some(from) = r.cluster.members.iter().position(|m| m.name == from)
                        else {
                            return Err(mismatch(
                                line,
                                &done.node,
                                &input,
                                format!("a message from {from}, who is not a member"),
                            ));
                        };
                        let msg: A::Msg =
                            serde_json::from_value(v["msg_json"].clone()).map_err(|e| {
                                mismatch(
                                    line,
                                    &done.node,
                                    &input,
                                    format!("a message the model cannot read: {e}"),
                                )
                            })?;
                        input = Some(format!("delivery of {msg:?} from {} at {now}", v["from"]));
                        r.driver
                            .on_message(Pid(from as u32), msg, env, &mut recorded, &mut ready);
                    }
                    "timer" => {
                        let token = v["token"].as_u64().unwrap_or(0);
                        let armed = r
                            .driver
                            .timers()
                            .iter()
                            .find(|a| a.token == token && to_json(&a.timer) == v["timer_json"])
                            .map(|a| a.timer);
                        input = Some(format!("timer {} at {now}", v["timer_json"]));
                        let Some(timer) = armed else {
                            let what = format!(
                                "the timer {} with token {token} fires, \
                                 but the model has no such timer running",
                                v["timer_json"]
                            );
                            return Err(mismatch(line, &done.node, &input, what));
                        };
                        r.driver
                            .on_timer(timer, token, env, &mut recorded, &mut ready);
                    }
                    "suspect" => {
                        let who = v["who"].as_str().unwrap_or("");
                        let Some(who) = r.cluster.members.iter().position(|m| m.name == who) else {
                            return Err(mismatch(
                                line,
                                &done.node,
                                &input,
                                format!("a verdict on {who}, who is not a member"),
                            ));
                        };
                        let suspected = v["suspected"].as_bool().unwrap_or(false);
                        input = Some(format!(
                            "verdict suspected={suspected} on {} at {now}",
                            v["who"]
                        ));
                        let env = Env {
                            incarnation: v["incarnation"].as_u64().unwrap_or(0),
                            ..env
                        };
                        let news = r.driver.on_suspect(
                            Pid(who as u32),
                            suspected,
                            env,
                            &mut recorded,
                            &mut ready,
                        );
                        if !news {
                            let what = "the verdict is no news to the model (a node is told \
                                        only a change)"
                                .to_string();
                            return Err(mismatch(line, &done.node, &input, what));
                        }
                    }
                    _ => {
                        input = Some(format!("leave at {now}"));
                        r.driver.leave(env, &mut recorded, &mut ready);
                    }
                }
            }
            "member" => {
                let Some(r) = node.as_mut() else {
                    return Err(malformed(line, "a member before the start".into()));
                };
                let member = member_of(&v["member"]).map_err(|e| malformed(line, e.into()))?;
                match r.cluster.members.iter().position(|m| m.name == member.name) {
                    Some(known) => r.cluster.members[known].address = member.address,
                    None => {
                        if member.kind == MemberKind::Voter {
                            r.voters.push(Pid(r.cluster.len() as u32));
                        }
                        r.cluster.members.push(member);
                    }
                }
                continue;
            }
            "stop" => {
                if let Some(r) = node.as_mut() {
                    r.driver.stop();
                }
                input = None;
                continue;
            }
            other => {
                let what = if other.is_empty() {
                    "a line without an \"event\"".to_string()
                } else {
                    format!("an event the log format does not have: {other:?}")
                };
                return Err(malformed(line, what));
            }
        }
        done.inputs += 1;
        if let Some(wrong) = recorded.wrong.take() {
            return Err(mismatch(line, &done.node, &input, wrong));
        }
        if let Some(left) = recorded.draws.front() {
            return Err(mismatch(
                line,
                &done.node,
                &input,
                format!(
                    "the log drew in {}..={}, the model draws nothing more",
                    left[0], left[1]
                ),
            ));
        }
        let cluster = &node.as_ref().map(|r| &r.cluster);
        pending.extend(cluster.map_or_else(Vec::new, |c| model_outputs::<A>(&ready, c)));
    }
    if node.is_none() {
        return Err(Mismatch {
            node: None,
            line: last.max(1),
            input: None,
            what: "the log has no start line".into(),
            malformed: true,
        });
    }
    done.cut = !pending.is_empty();
    Ok(done)
}

fn mismatch(line: usize, node: &str, input: &Option<String>, what: String) -> Mismatch {
    Mismatch {
        node: (!node.is_empty()).then(|| node.to_string()),
        line,
        input: input.clone(),
        what,
        malformed: false,
    }
}

/// A line that makes the text no trace log.
fn malformed(line: usize, what: String) -> Mismatch {
    Mismatch {
        node: None,
        line,
        input: None,
        what,
        malformed: true,
    }
}

fn env<'a>(cluster: &'a Cluster, voters: &'a [Pid], now: Time, incarnation: u64) -> Env<'a> {
    Env {
        now,
        cluster,
        voters,
        incarnation,
    }
}

/// The node a `start` line describes.
fn start<A>(v: &Value) -> Result<Replaying<A>, String>
where
    A: Algorithm,
    A::Params: DeserializeOwned,
{
    let members = v["members"]
        .as_array()
        .ok_or("the start line lists no members")?
        .iter()
        .map(member_of)
        .collect::<Result<Vec<_>, &str>>()?;
    let me = v["me"]
        .as_u64()
        .ok_or("the start line names no node (me)")?;
    if me as usize >= members.len() {
        return Err(format!(
            "me = {me}, but there are {} members",
            members.len()
        ));
    }
    let params: A::Params = serde_json::from_value(v["params"].clone())
        .map_err(|e| format!("parameters the model cannot read: {e}"))?;
    let cluster = Cluster::new(members);
    Ok(Replaying {
        driver: Driver::new(Pid(me as u32)),
        voters: cluster.voters().collect(),
        cluster,
        params,
        incarnation: v["incarnation"].as_u64().unwrap_or(0),
    })
}

/// A member as a `start` line lists it, or a `member` line adds it.
fn member_of(m: &Value) -> Result<Member, &'static str> {
    Ok(Member {
        name: m["name"]
            .as_str()
            .ok_or("a member without a name")?
            .to_string(),
        priority: m["priority"]
            .as_u64()
            .ok_or("a member without a priority")?,
        address: m["address"].as_str().map(str::to_string),
        kind: if m["voter"].as_bool().unwrap_or(true) {
            MemberKind::Voter
        } else {
            MemberKind::Service
        },
    })
}
