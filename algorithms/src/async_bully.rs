//! Stoller's asynchronous Bully algorithm: S. Stoller, "Leader Election in Distributed
//! Systems with Crash Failures" (Indiana University TR 481, 1997), specification revised in
//! IEEE Transactions on Computers 49(3), 2000; seed 002's `bully_async.py`.
//!
//! The Bully algorithm with a failure detector instead of timeouts. The world runs the
//! detector ([`crate::Detector`]: perfect, or eventually perfect with false suspicions for a
//! while) and tells each node when it suspects or trusts another.
//!
//! - **Stage 1**: a node that must elect (it starts, its leader or its halter is suspected,
//!   a lower node tries to halt it) looks at the higher nodes. If one is not suspected, it
//!   waits: that node, or one above it, will halt it (or be suspected, and stage 1 runs
//!   again).
//! - **Stage 2**: every higher node is suspected. The node halts the unsuspected lower nodes
//!   one at a time, highest first: Halt(e), then wait for Ack(e), Reject(e) or a suspicion of
//!   that node before the next. A Reject means a higher election is under way: back to
//!   stage 1. Then Leader(e) to every node that acked; the node is Normal and leads.
//! - A node accepts Halt(e) from a higher node unless it is halted by a still-trusted node
//!   of even higher priority; halted, it acts dead towards its own lower nodes (it rejects
//!   their Halts) until Leader(e) arrives. A Halt from a lower node is rejected, and the
//!   node starts an election of its own unless it leads or is halted.
//! - A Halt from a higher node that the node suspects is rejected (our choice; the papers
//!   leave it open). Its sender is either dead (the Halt was in flight when it crashed) or
//!   alive again before the detector has said so (it recovered or resumed). Accepting would
//!   leave the node halted by a dead node in the first case; ignoring would leave a
//!   recovering node waiting in stage 2 for ever in the second. A Reject is harmless in the
//!   first (lost, or ignored by the sender's new incarnation, whose election ids differ)
//!   and, in the second, sends the sender back to stage 1 until the detector has caught
//!   up; its next Halt is then judged like any other.
//! - Election ids e = (node, incarnation, election number) make stale messages harmless.
//!   The incarnation is the driver's count of restarts when the node (re)started
//!   ([`crate::Context::incarnation`], a counter in stable storage), unique per life.
//! - The leader sends Norm(e) to the lower nodes every `norm_interval`; a node that does not
//!   follow that leader answers NotNorm(e), and the leader runs stage 2 again. This is also
//!   how two leaders meet after a partition heals: the higher one bullies the lower.
//!
//! Specification (SLE1): two Normal nodes agree on the leader; (SLE2): if no failures or
//! recoveries happen for long enough, a leader is elected. SLE1 needs an accurate failure
//! detector; with false suspicions the simulator shows what goes wrong.

use crate::pidset::PidSet;
use crate::{Algorithm, Cluster, Ctx, Detector, Duration, Message, Pid, Role, View};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AsyncBullyParams {
    /// How often the leader checks that the lower nodes follow it.
    pub norm_interval: Duration,
    /// The failure detector the world runs for these nodes.
    pub detector: Detector,
}

impl Default for AsyncBullyParams {
    fn default() -> Self {
        AsyncBullyParams {
            norm_interval: Duration::from_secs(2),
            detector: Detector::Perfect {
                delay: Duration::from_millis(100),
            },
        }
    }
}

/// An election id: who runs it, in which incarnation, and its number there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Eid {
    pub node: Pid,
    pub incarnation: u64,
    pub number: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AsyncMsg {
    Halt { eid: Eid },
    Ack { eid: Eid },
    Reject { eid: Eid },
    Leader { eid: Eid },
    Norm { eid: Eid },
    NotNorm { eid: Eid },
}

impl Message for AsyncMsg {
    fn kind(&self) -> &'static str {
        match self {
            AsyncMsg::Halt { .. } => "Halt",
            AsyncMsg::Ack { .. } => "Ack",
            AsyncMsg::Reject { .. } => "Reject",
            AsyncMsg::Leader { .. } => "Leader",
            AsyncMsg::Norm { .. } => "Norm",
            AsyncMsg::NotNorm { .. } => "NotNorm",
        }
    }
    fn is_election(&self) -> bool {
        !matches!(self, AsyncMsg::Norm { .. })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum AsyncTimer {
    Norm,
    /// After a Reject: look at the higher nodes again (see `on_message`).
    Retry,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Status {
    /// Stage 1: waiting for a live higher node to act.
    Waiting,
    /// Stage 2: halting `current`, then the nodes in `rest` (highest first).
    Halting {
        current: Option<Pid>,
        rest: Vec<Pid>,
        acked: PidSet,
    },
    /// Halted by election `by`.
    Halted { by: Eid },
    /// Following `leader`'s election, or leading it.
    Normal { eid: Eid },
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AsyncBully {
    me: Pid,
    priority: u64,
    params: AsyncBullyParams,
    incarnation: u64,
    number: u64,
    suspected: PidSet,
    status: Status,
}

impl AsyncBully {
    fn eid(&self) -> Eid {
        Eid {
            node: self.me,
            incarnation: self.incarnation,
            number: self.number,
        }
    }

    fn leader(&self) -> Option<Pid> {
        match self.status {
            Status::Normal { eid } => Some(eid.node),
            _ => None,
        }
    }

    /// Stage 1: wait while a higher node is trusted, else stage 2.
    fn elect(&mut self, ctx: &mut Ctx<'_, Self>) {
        let cluster = ctx.cluster();
        let higher_alive = cluster
            .voters()
            .any(|p| cluster.priority(p) > self.priority && !self.suspected.contains(p));
        if higher_alive {
            self.status = Status::Waiting;
        } else {
            self.stage2(ctx);
        }
    }

    fn stage2(&mut self, ctx: &mut Ctx<'_, Self>) {
        self.number += 1;
        let cluster = ctx.cluster();
        let mut lower: Vec<Pid> = cluster
            .voters()
            .filter(|&p| cluster.priority(p) < self.priority)
            .collect();
        // Highest first; popped from the back.
        lower.sort_by_key(|&p| cluster.priority(p));
        self.status = Status::Halting {
            current: None,
            rest: lower,
            acked: PidSet::new(),
        };
        self.halt_next(ctx);
    }

    /// Halts the next unsuspected lower node, or, when none is left, announces.
    fn halt_next(&mut self, ctx: &mut Ctx<'_, Self>) {
        let eid = self.eid();
        let Status::Halting {
            current,
            rest,
            acked,
        } = &mut self.status
        else {
            return;
        };
        while let Some(p) = rest.pop() {
            if !self.suspected.contains(p) {
                *current = Some(p);
                ctx.send(p, AsyncMsg::Halt { eid });
                return;
            }
        }
        for p in acked.iter() {
            ctx.send(p, AsyncMsg::Leader { eid });
        }
        self.status = Status::Normal { eid };
        ctx.set_timer(AsyncTimer::Norm, self.params.norm_interval);
    }

    fn halting_target(&self) -> Option<Pid> {
        match &self.status {
            Status::Halting { current, .. } => *current,
            _ => None,
        }
    }
}

impl Algorithm for AsyncBully {
    type Msg = AsyncMsg;
    type Timer = AsyncTimer;
    type Params = AsyncBullyParams;

    fn new(me: Pid, cluster: &Cluster, params: &AsyncBullyParams) -> Self {
        AsyncBully {
            me,
            priority: cluster.priority(me),
            params: params.clone(),
            incarnation: 0,
            number: 0,
            suspected: PidSet::new(),
            status: Status::Waiting,
        }
    }

    fn detector(params: &AsyncBullyParams) -> Option<Detector> {
        Some(params.detector.clone())
    }

    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
        self.incarnation = ctx.incarnation();
        self.elect(ctx);
    }

    fn on_message(&mut self, from: Pid, msg: AsyncMsg, ctx: &mut Ctx<'_, Self>) {
        let from_higher = ctx.cluster().priority(from) > self.priority;
        match msg {
            AsyncMsg::Halt { eid } => {
                if !from_higher {
                    ctx.send(from, AsyncMsg::Reject { eid });
                    // Someone lower thinks every node above it is gone: if this node was
                    // waiting on a higher one, look again.
                    if self.status == Status::Waiting {
                        self.elect(ctx);
                    }
                    return;
                }
                if self.suspected.contains(from) {
                    // The detector says the sender failed, yet a message from it arrived.
                    // Either it is stale (in flight when its sender crashed) or fresh (the
                    // sender recovered, or resumed, and the detector, being late, has not
                    // said so yet); the verdict cannot tell which. Accepting is wrong for a
                    // stale one: no later suspicion would come to free a node halted by a
                    // dead node (the explorer found this:
                    // scenarios/explore/async_bully5_crash2_bounded.ron). Ignoring is wrong
                    // for a fresh one: its sender waits for an answer that never comes, in
                    // stage 2 for ever (scenarios/async_bully_recovery.ron). So reject it:
                    // the election id tells them apart at the sender. A stale Reject is
                    // lost with its dead sender, or ignored by its new incarnation (the
                    // id's incarnation differs); a fresh one sends the sender back to
                    // stage 1, and it looks again after twice the detector's delay, by
                    // which time this node has been told that it is up.
                    ctx.send(from, AsyncMsg::Reject { eid });
                    return;
                }
                let cluster = ctx.cluster();
                let held_by_higher = match self.status {
                    Status::Halted { by } | Status::Normal { eid: by } => {
                        by.node != self.me
                            && cluster.priority(by.node) > cluster.priority(from)
                            && !self.suspected.contains(by.node)
                    }
                    _ => false,
                };
                if held_by_higher {
                    ctx.send(from, AsyncMsg::Reject { eid });
                } else {
                    ctx.cancel_timer(AsyncTimer::Norm);
                    self.status = Status::Halted { by: eid };
                    ctx.send(from, AsyncMsg::Ack { eid });
                }
            }
            AsyncMsg::Ack { eid } => {
                if eid == self.eid() && self.halting_target() == Some(from) {
                    if let Status::Halting { current, acked, .. } = &mut self.status {
                        acked.insert(from);
                        *current = None;
                    }
                    self.halt_next(ctx);
                }
            }
            AsyncMsg::Reject { eid } => {
                if eid == self.eid() && self.halting_target() == Some(from) {
                    // A higher election holds that node: defer to it. If that election's
                    // node has failed, the rejecting node may simply not have been told yet,
                    // and nothing else would wake this one: look again once the detector
                    // has told everyone (twice its delay), a case the explorer found. The
                    // same wait serves when the rejecting node still suspects this one
                    // (this node recovered or resumed within the detector's delay): by
                    // then it has been told that this node is up.
                    self.status = Status::Waiting;
                    let delay = self.params.detector.delay();
                    ctx.set_timer(AsyncTimer::Retry, delay + delay);
                }
            }
            AsyncMsg::Leader { eid } => {
                if self.status == (Status::Halted { by: eid }) {
                    self.status = Status::Normal { eid };
                }
            }
            AsyncMsg::Norm { eid } => {
                if self.status != (Status::Normal { eid }) {
                    ctx.send(from, AsyncMsg::NotNorm { eid });
                }
            }
            AsyncMsg::NotNorm { eid } => {
                if self.status == (Status::Normal { eid }) && eid.node == self.me {
                    ctx.cancel_timer(AsyncTimer::Norm);
                    self.stage2(ctx);
                }
            }
        }
    }

    fn on_timer(&mut self, timer: AsyncTimer, ctx: &mut Ctx<'_, Self>) {
        match timer {
            AsyncTimer::Retry => {
                if self.status == Status::Waiting {
                    self.elect(ctx);
                }
            }
            AsyncTimer::Norm => {
                if let Status::Normal { eid } = self.status {
                    if eid.node == self.me {
                        let cluster = ctx.cluster();
                        for p in cluster.voters() {
                            if cluster.priority(p) < self.priority && !self.suspected.contains(p) {
                                ctx.send(p, AsyncMsg::Norm { eid });
                            }
                        }
                        ctx.set_timer(AsyncTimer::Norm, self.params.norm_interval);
                    }
                }
            }
        }
    }

    fn on_suspect(&mut self, who: Pid, suspected: bool, ctx: &mut Ctx<'_, Self>) {
        if !suspected {
            self.suspected.remove(who);
            return;
        }
        self.suspected.insert(who);
        // The verdict is about a life of `who` no later than this; an election of a later
        // life (it restarted before the verdict arrived) is not what it suspects.
        let current = |eid: &Eid| eid.incarnation <= ctx.incarnation();
        match self.status.clone() {
            Status::Normal { eid } if eid.node == who && current(&eid) => self.elect(ctx),
            Status::Halted { by } if by.node == who && current(&by) => self.elect(ctx),
            Status::Waiting => self.elect(ctx),
            Status::Halting {
                current: Some(c), ..
            } if c == who => {
                if let Status::Halting { current, .. } = &mut self.status {
                    *current = None;
                }
                self.halt_next(ctx);
            }
            _ => {}
        }
    }

    fn view(&self) -> View {
        let (role, status) = match &self.status {
            Status::Waiting => (Role::Candidate, "Waiting"),
            Status::Halting { .. } => (Role::Candidate, "Halting"),
            Status::Halted { .. } => (Role::Candidate, "Halted"),
            Status::Normal { eid } if eid.node == self.me => (Role::Leader, "Normal"),
            Status::Normal { .. } => (Role::Follower, "Normal"),
        };
        View::new(role, self.leader(), status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Context, Effect, Member, Time};

    fn cluster(n: u32) -> Cluster {
        Cluster::new(
            (1..=n)
                .map(|i| Member::voter(&format!("n{i}"), u64::from(i)))
                .collect(),
        )
    }

    fn step_at(
        now: Time,
        node: &mut AsyncBully,
        cluster: &Cluster,
        f: impl FnOnce(&mut AsyncBully, &mut Ctx<'_, AsyncBully>),
    ) -> Vec<Effect<AsyncMsg, AsyncTimer>> {
        let mut effects = Vec::new();
        let me = node.me;
        f(node, &mut Context::new(now, me, cluster, &mut effects));
        effects
    }

    fn step(
        node: &mut AsyncBully,
        cluster: &Cluster,
        f: impl FnOnce(&mut AsyncBully, &mut Ctx<'_, AsyncBully>),
    ) -> Vec<Effect<AsyncMsg, AsyncTimer>> {
        step_at(Time::ZERO, node, cluster, f)
    }

    fn send(to: Pid, msg: AsyncMsg) -> Effect<AsyncMsg, AsyncTimer> {
        Effect::Send { to, msg }
    }

    #[test]
    fn a_stale_halt_from_a_node_already_suspected_does_not_halt() {
        let cluster = cluster(3);
        let (b, c) = (Pid(1), Pid(2));
        let mut node = AsyncBully::new(b, &cluster, &AsyncBullyParams::default());
        step(&mut node, &cluster, |n, ctx| n.on_start(ctx));
        assert_eq!(node.status, Status::Waiting, "c is above b and trusted");
        // c crashes with its Halt to b in flight; the detector's notice arrives first.
        step(&mut node, &cluster, |n, ctx| n.on_suspect(c, true, ctx));
        let halting = matches!(node.status, Status::Halting { .. });
        assert!(halting, "b elects itself: {:?}", node.status);
        let before = node.clone();
        let eid = Eid {
            node: c,
            incarnation: 0,
            number: 1,
        };
        let effects = step(&mut node, &cluster, |n, ctx| {
            n.on_message(c, AsyncMsg::Halt { eid }, ctx)
        });
        // Only a Reject, which is lost with its dead receiver.
        assert_eq!(effects, vec![send(c, AsyncMsg::Reject { eid })]);
        assert_eq!(node, before, "b must not be halted by a dead node");
    }

    /// n4 crashed, n3 leads (it suspects n4), n4 restarts at 3 s and halts n3 before n3's
    /// detector has said that n4 is up. The Halt must be answered: ignored, it would leave
    /// n4 waiting in stage 2 for ever (no suspicion of n3 will ever come to free it).
    #[test]
    fn a_halt_from_a_suspected_but_live_sender_of_a_newer_incarnation_is_answered() {
        let cluster = cluster(4);
        let (n3, n4) = (Pid(2), Pid(3));
        let params = AsyncBullyParams::default();
        let mut node = AsyncBully::new(n3, &cluster, &params);
        step(&mut node, &cluster, |n, ctx| n.on_start(ctx));
        let old = Eid {
            node: n4,
            incarnation: 0,
            number: 1,
        };
        step(&mut node, &cluster, |n, ctx| {
            n.on_message(n4, AsyncMsg::Halt { eid: old }, ctx)
        });
        step(&mut node, &cluster, |n, ctx| {
            n.on_message(n4, AsyncMsg::Leader { eid: old }, ctx)
        });
        assert_eq!(node.view().leader, Some(n4));
        // n4 crashes; told so, n3 elects itself (halting n2 first).
        let t1 = Time(1_100_000);
        step_at(t1, &mut node, &cluster, |n, ctx| {
            n.on_suspect(n4, true, ctx)
        });
        assert!(matches!(node.status, Status::Halting { .. }));

        // n4's new incarnation (the run's first restart) halts n3 while n3 still
        // suspects it.
        let mut recovering = AsyncBully::new(n4, &cluster, &params);
        let mut effects = Vec::new();
        recovering.on_start(
            &mut Context::new(Time(3_000_000), n4, &cluster, &mut effects).with_incarnation(1),
        );
        let fresh = Eid {
            node: n4,
            incarnation: 1,
            number: 1,
        };
        assert_eq!(effects, vec![send(n3, AsyncMsg::Halt { eid: fresh })]);
        let effects = step_at(Time(3_010_000), &mut node, &cluster, |n, ctx| {
            n.on_message(n4, AsyncMsg::Halt { eid: fresh }, ctx)
        });
        let answers: Vec<_> = effects
            .iter()
            .filter(|e| {
                matches!(e, Effect::Send { to, msg: AsyncMsg::Ack { eid } | AsyncMsg::Reject { eid } }
                    if *to == n4 && *eid == fresh)
            })
            .collect();
        assert_eq!(answers.len(), 1, "n4's Halt is answered: {effects:?}");

        // A Reject for the old incarnation's election is stale: n4 ignores it.
        let effects = step_at(Time(3_015_000), &mut recovering, &cluster, |n, ctx| {
            n.on_message(n3, AsyncMsg::Reject { eid: old }, ctx)
        });
        assert!(effects.is_empty(), "{effects:?}");
        assert!(matches!(recovering.status, Status::Halting { current: Some(p), .. } if p == n3));

        // The answer to its own Halt sends n4 back to stage 1, to look again once n3's
        // detector has caught up (twice its delay); then it halts n3 anew.
        let answer = answers[0].clone();
        let Effect::Send { msg, .. } = answer else {
            unreachable!()
        };
        let effects = step_at(Time(3_020_000), &mut recovering, &cluster, |n, ctx| {
            n.on_message(n3, msg, ctx)
        });
        let delay = params.detector.delay();
        assert_eq!(
            effects,
            vec![Effect::SetTimer {
                timer: AsyncTimer::Retry,
                after: delay + delay
            }]
        );
        assert_eq!(recovering.status, Status::Waiting);
        // n3 is told that n4 is up one detector delay after the restart.
        step_at(Time(3_100_000), &mut node, &cluster, |n, ctx| {
            n.on_suspect(n4, false, ctx)
        });
        let effects = step_at(Time(3_220_000), &mut recovering, &cluster, |n, ctx| {
            n.on_timer(AsyncTimer::Retry, ctx)
        });
        let again = Eid { number: 2, ..fresh };
        assert_eq!(effects, vec![send(n3, AsyncMsg::Halt { eid: again })]);
        // Trusted again, n4's new Halt is accepted.
        let effects = step_at(Time(3_230_000), &mut node, &cluster, |n, ctx| {
            n.on_message(n4, AsyncMsg::Halt { eid: again }, ctx)
        });
        assert!(
            effects.contains(&send(n4, AsyncMsg::Ack { eid: again })),
            "{effects:?}"
        );
        assert_eq!(node.status, Status::Halted { by: again });
    }
}
