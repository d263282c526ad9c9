//! What a real node is apart from its transport: the [`Driver`] with its random draws, the
//! running timers, the trace log (every input with its draws, every output after it), and a
//! role change's log line, trace line and `on_leader` / `on_follower` command. Both
//! transports drive one: [`super::runtime`] (frames over TCP) and [`super::lab`] (the lab's
//! pickles). A transport carries out the sends and publishes the views ([`Transport`]); the
//! trace log's events are the ones the runtime's module docs list.

use super::runtime::{json, micros, run_hook, Draws, Log, Trace};
use crate::driver::{Driver, Env, Output, Ready};
use crate::{Algorithm, Cluster, Member, MemberKind, Pid, Random, Role, Time, View};
use serde::Serialize;
use std::collections::BTreeMap;
use tokio::time::Instant;

/// Where a node's outputs go beyond the host: its sends, and each view the driver reports.
pub(super) trait Transport<A: Algorithm> {
    /// Carries out one send the driver asked for (already in the trace log).
    fn send(&mut self, cluster: &Cluster, to: Pid, msg: A::Msg);
    /// Publishes a view, after its log line, trace line and command.
    fn publish(&mut self, cluster: &Cluster, view: View);
}

/// A member as the trace's `start` and `member` lines show it.
fn member_json(m: &Member) -> serde_json::Value {
    serde_json::json!({
        "name": m.name, "priority": m.priority, "address": m.address,
        "voter": m.kind == MemberKind::Voter,
    })
}

/// Sleeps until `due` (a [`Time`] since `start`); forever without one.
pub(super) async fn until_due(start: Instant, due: Option<Time>) {
    match due {
        Some(due) => tokio::time::sleep_until(start + micros(due.0)).await,
        None => std::future::pending().await,
    }
}

/// The commands a role change runs (seed 004's master and slave scripts).
#[derive(Default)]
pub(super) struct Hooks {
    pub(super) on_leader: Option<String>,
    pub(super) on_follower: Option<String>,
}

/// The driver of one real node and everything its inputs and outputs touch, bar the
/// transport.
pub(super) struct Host<A: Algorithm> {
    pub(super) driver: Driver<A>,
    /// The members (the lab's transport adds those it learns).
    pub(super) cluster: Cluster,
    voters: Vec<Pid>,
    /// The incarnation in the [`Env`] of every input but a detector's verdict.
    pub(super) incarnation: u64,
    pub(super) log: Log,
    /// When the node started: [`Time`] zero.
    pub(super) start: Instant,
    draws: Draws,
    ready: Ready<A::Msg, A::Timer>,
    /// Running timers by (due, token); a timer set again replaces its entry.
    timers: BTreeMap<(Time, u64), A::Timer>,
    trace: Option<Trace>,
    hooks: Hooks,
    role: Role,
}

impl<A: Algorithm> Host<A>
where
    A::Params: Serialize,
{
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        me: Pid,
        cluster: Cluster,
        incarnation: u64,
        seed: u64,
        trace: Option<Trace>,
        log: Log,
        start: Instant,
        hooks: Hooks,
    ) -> Self {
        Host {
            driver: Driver::new(me),
            voters: cluster.voters().collect(),
            cluster,
            incarnation,
            log,
            start,
            draws: Draws::new(seed),
            ready: Ready::default(),
            timers: BTreeMap::new(),
            trace,
            hooks,
            role: Role::Idle,
        }
    }

    pub(super) fn now(&self) -> Time {
        Time(self.start.elapsed().as_micros() as u64)
    }

    /// When the earliest running timer is due.
    pub(super) fn next_due(&self) -> Option<Time> {
        self.timers.keys().next().map(|&(due, _)| due)
    }

    /// This node's member name.
    pub(super) fn name(&self) -> &str {
        self.cluster.name(self.driver.me())
    }

    /// Hands the driver one input at `now`, with fresh draws.
    pub(super) fn input<R>(
        &mut self,
        now: Time,
        f: impl FnOnce(&mut Driver<A>, Env<'_>, &mut dyn Random, &mut Ready<A::Msg, A::Timer>) -> R,
    ) -> R {
        self.input_in(now, self.incarnation, f)
    }

    /// [`Host::input`] with `incarnation` in the [`Env`] (a detector's verdict has its own).
    pub(super) fn input_in<R>(
        &mut self,
        now: Time,
        incarnation: u64,
        f: impl FnOnce(&mut Driver<A>, Env<'_>, &mut dyn Random, &mut Ready<A::Msg, A::Timer>) -> R,
    ) -> R {
        let env = Env {
            now,
            cluster: &self.cluster,
            voters: &self.voters,
            incarnation,
        };
        self.draws.taken.clear();
        f(&mut self.driver, env, &mut self.draws, &mut self.ready)
    }

    /// Starts the driver; the trace's `start` line has `seed`, `me`, `members`, `params`,
    /// `incarnation` and `fields`.
    pub(super) fn start(
        &mut self,
        params: &A::Params,
        seed: u64,
        fields: Vec<(&'static str, serde_json::Value)>,
        net: &mut impl Transport<A>,
    ) {
        let now = self.now();
        self.input(now, |d, env, random, ready| {
            d.start(params, env, random, ready)
        });
        if self.trace.is_some() {
            let members: Vec<_> = self.cluster.members.iter().map(member_json).collect();
            let mut all = vec![
                ("seed", seed.into()),
                ("me", self.driver.me().0.into()),
                ("members", members.into()),
                ("params", json(params)),
                ("incarnation", self.incarnation.into()),
            ];
            all.extend(fields);
            self.trace_input(now, "start", all);
        }
        self.log.line(format_args!("event=start seed={seed}"));
        self.carry_out(now, net);
    }

    /// A member learnt after the start (the lab's transport learns the group as it goes):
    /// the next [`Pid`], a voter if `member` is one; a `member` line in the trace.
    pub(super) fn add_member(&mut self, member: Member) -> Pid {
        let pid = Pid(self.cluster.len() as u32);
        if member.kind == MemberKind::Voter {
            self.voters.push(pid);
        }
        self.cluster.members.push(member);
        self.trace_member(pid);
        pid
    }

    /// A member's address, when it changed; a `member` line in the trace if so.
    pub(super) fn set_address(&mut self, pid: Pid, address: String) {
        let member = &mut self.cluster.members[pid.index()];
        if member.address.as_deref() != Some(address.as_str()) {
            member.address = Some(address);
            self.trace_member(pid);
        }
    }

    fn trace_member(&mut self, pid: Pid) {
        if self.trace.is_some() {
            let now = self.now();
            let member = member_json(&self.cluster.members[pid.index()]);
            let fields = vec![("member", member)];
            self.trace_line(now, "member", fields);
        }
    }

    /// A message from `from` (this node itself for a message it sent itself).
    pub(super) fn deliver(&mut self, from: Pid, msg: A::Msg, net: &mut impl Transport<A>) {
        let now = self.now();
        let traced = self
            .trace
            .as_ref()
            .map(|_| (format!("{msg:?}"), json(&msg)));
        self.input(now, |d, env, random, ready| {
            d.on_message(from, msg, env, random, ready)
        });
        if let Some((debug, msg_json)) = traced {
            let fields = vec![
                ("from", self.cluster.name(from).into()),
                ("msg", debug.into()),
                ("msg_json", msg_json),
            ];
            self.trace_input(now, "deliver", fields);
        }
        self.carry_out(now, net);
    }

    /// Fires every timer that is due, earliest first.
    pub(super) fn fire_due(&mut self, net: &mut impl Transport<A>) {
        loop {
            let now = self.now();
            let Some(entry) = self.timers.first_entry() else {
                return;
            };
            if entry.key().0 > now {
                return;
            }
            let ((_, token), timer) = entry.remove_entry();
            let live = self.input(now, |d, env, random, ready| {
                d.on_timer(timer, token, env, random, ready)
            });
            if !live {
                continue;
            }
            let fields = vec![
                ("timer", format!("{timer:?}").into()),
                ("timer_json", json(&timer)),
                ("token", token.into()),
            ];
            self.trace_input(now, "timer", fields);
            self.carry_out(now, net);
        }
    }

    /// The failure detector's verdict on `who`, with the incarnation it carries.
    pub(super) fn verdict(
        &mut self,
        who: Pid,
        suspected: bool,
        incarnation: u64,
        net: &mut impl Transport<A>,
    ) {
        let now = self.now();
        self.log.line(format_args!(
            "event=suspect who={} suspected={suspected}",
            self.cluster.name(who)
        ));
        let news = self.input_in(now, incarnation, |d, env, random, ready| {
            d.on_suspect(who, suspected, env, random, ready)
        });
        if !news {
            return;
        }
        let fields = vec![
            ("who", self.cluster.name(who).into()),
            ("suspected", suspected.into()),
            ("incarnation", incarnation.into()),
        ];
        self.trace_input(now, "suspect", fields);
        self.carry_out(now, net);
    }

    /// The graceful stop's first half: the leave handler's outputs; then no timer runs and
    /// the driver takes no input. [`Host::stopped`] ends the trace.
    pub(super) fn leave(&mut self, net: &mut impl Transport<A>) {
        let now = self.now();
        self.log.line(format_args!("event=leave"));
        self.input(now, |d, env, random, ready| d.leave(env, random, ready));
        self.trace_input(now, "leave", Vec::new());
        self.carry_out(now, net);
        self.driver.stop();
        self.timers.clear();
    }

    /// The trace's last line.
    pub(super) fn stopped(&mut self) {
        let now = self.now();
        self.trace_line(now, "stop", Vec::new());
        if let Some(trace) = &mut self.trace {
            trace.flush(&self.log);
        }
    }

    /// Carries out what the last input asked: the role change, then the outputs in order.
    fn carry_out(&mut self, now: Time, net: &mut impl Transport<A>) {
        let mut ready = std::mem::take(&mut self.ready);
        if let Some(view) = ready.role.take() {
            self.role_change(now, view, net);
        }
        for output in ready.outputs.drain(..) {
            match output {
                Output::Send { to, msg } => {
                    if self.trace.is_some() {
                        let fields = vec![
                            ("to", self.cluster.name(to).into()),
                            ("msg", format!("{msg:?}").into()),
                            ("msg_json", json(&msg)),
                        ];
                        self.trace_line(now, "send", fields);
                    }
                    net.send(&self.cluster, to, msg);
                }
                Output::SetTimer { timer, token, due } => {
                    self.timers.retain(|_, t| *t != timer);
                    self.timers.insert((due, token), timer);
                    if self.trace.is_some() {
                        let fields = vec![
                            ("timer", format!("{timer:?}").into()),
                            ("timer_json", json(&timer)),
                            ("token", token.into()),
                            ("due_us", due.0.into()),
                        ];
                        self.trace_line(now, "set_timer", fields);
                    }
                }
                Output::CancelTimer { timer } => {
                    self.timers.retain(|_, t| *t != timer);
                    if self.trace.is_some() {
                        let fields = vec![
                            ("timer", format!("{timer:?}").into()),
                            ("timer_json", json(&timer)),
                        ];
                        self.trace_line(now, "cancel_timer", fields);
                    }
                }
            }
        }
        ready.clear();
        self.ready = ready;
        if let Some(trace) = &mut self.trace {
            trace.flush(&self.log);
        }
    }

    fn role_change(&mut self, now: Time, view: View, net: &mut impl Transport<A>) {
        let leader = view.leader.map(|l| self.cluster.name(l).to_string());
        self.log.line(format_args!(
            "event=role role={:?} leader={} status={} group={}",
            view.role,
            leader.as_deref().unwrap_or("-"),
            view.status,
            view.group
        ));
        if self.trace.is_some() {
            let fields = vec![
                ("role", json(&view.role)),
                ("leader", json(&leader)),
                ("status", view.status.into()),
                ("group", view.group.into()),
            ];
            self.trace_line(now, "role", fields);
        }
        if view.role != self.role {
            let command = match view.role {
                Role::Leader => self.hooks.on_leader.as_deref(),
                Role::Follower => self.hooks.on_follower.as_deref(),
                _ => None,
            };
            if let Some(command) = command {
                let node = self.name();
                run_hook(command, node, view.role, leader.as_deref(), &self.log);
            }
            self.role = view.role;
        }
        net.publish(&self.cluster, view);
    }

    /// An input's trace line, with the draws it took.
    fn trace_input(&mut self, now: Time, event: &str, mut fields: Vec<(&str, serde_json::Value)>) {
        if self.trace.is_none() {
            return;
        }
        if !self.draws.taken.is_empty() {
            fields.push(("draws", json(&self.draws.taken)));
        }
        self.trace_line(now, event, fields);
    }

    fn trace_line(&mut self, now: Time, event: &str, fields: Vec<(&str, serde_json::Value)>) {
        if let Some(trace) = &mut self.trace {
            trace.line(now, event, &fields, &self.log);
        }
    }
}
