//! Garcia-Molina's Invitation algorithm (same 1982 paper; seed 002's `invitation.py`).
//!
//! Nodes form groups, each with a coordinator and a group number g = (coordinator,
//! counter); the counter grows with every group a node creates. Under a partition one group
//! forms per connected component, by design; when the partition heals the groups merge.
//!
//! - **Check** (every `check_interval`): a Normal coordinator calls AreYouCoordinator on
//!   every other node and collects the yeses for `call_timeout`. If it found other
//!   coordinators it waits `merge_unit` for each one of them with a higher priority than its
//!   own (the highest merges at once, the others give it time to invite them), then merges,
//!   but only if it is still a Normal coordinator after the wait (seed 002's fix of a race
//!   the paper leaves open).
//! - **Merge**: a new group number; Invitation to the coordinators found and to its own
//!   members; Accepts are collected for `call_timeout`; then Reorganization: Ready to every
//!   node that accepted, each acknowledged; then Normal. A Normal node that receives an
//!   Invitation accepts it; if it was a coordinator it first forwards the invitation to its
//!   members, who accept directly to the new coordinator.
//! - **Members** (every `check_interval`) call AreYouThere(g) on their coordinator; a "no"
//!   (not a member of that group any more) or no answer within `call_timeout` means
//!   Recovery: the node forms a group of its own. So does an invited node that gets no Ready.
//! - A node starts in a group of its own.
//!
//! `View::group` is the counter of g; with the coordinator (`View::leader`) it names the
//! group, as the coordinator and groupid columns of seed 002's log server table do.

use crate::pidset::PidSet;
use crate::{Algorithm, Cluster, Ctx, Duration, Message, Pid, Role, View};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InvitationParams {
    /// How often coordinators look for other coordinators and members check theirs.
    pub check_interval: Duration,
    /// How long replies (yeses, Accepts, ReadyAcks, the coordinator's answer) are awaited.
    pub call_timeout: Duration,
    /// The merge wait per higher-priority coordinator found.
    pub merge_unit: Duration,
}

impl Default for InvitationParams {
    fn default() -> Self {
        InvitationParams {
            check_interval: Duration::from_secs(2),
            call_timeout: Duration::from_millis(500),
            merge_unit: Duration::from_millis(500),
        }
    }
}

/// A group number: its coordinator and that coordinator's counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Group {
    pub coordinator: Pid,
    pub counter: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum InvMsg {
    AreYouCoordinator,
    AreYouCoordinatorReply { yes: bool },
    Invitation { group: Group },
    Accept { group: Group },
    Ready { group: Group },
    ReadyAck { group: Group },
    AreYouThere { group: Group },
    AreYouThereReply { yes: bool },
}

impl Message for InvMsg {
    fn kind(&self) -> &'static str {
        match self {
            InvMsg::AreYouCoordinator => "AreYouCoordinator",
            InvMsg::AreYouCoordinatorReply { .. } => "AreYouCoordinatorReply",
            InvMsg::Invitation { .. } => "Invitation",
            InvMsg::Accept { .. } => "Accept",
            InvMsg::Ready { .. } => "Ready",
            InvMsg::ReadyAck { .. } => "ReadyAck",
            InvMsg::AreYouThere { .. } => "AreYouThere",
            InvMsg::AreYouThereReply { .. } => "AreYouThereReply",
        }
    }
    /// Members checking their coordinator is failure detection; the rest forms groups.
    fn is_election(&self) -> bool {
        !matches!(
            self,
            InvMsg::AreYouThere { .. } | InvMsg::AreYouThereReply { .. }
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum InvTimer {
    Check,
    /// The current collection of replies is over.
    Call,
    /// The merge wait is over.
    Merge,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Status {
    Normal,
    Election,
    Reorganization,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Phase {
    Idle,
    /// Collecting AreYouCoordinator answers.
    Looking {
        found: PidSet,
    },
    /// Waiting before merging with the coordinators found.
    Waiting {
        found: PidSet,
    },
    /// Collecting Accepts for our new group.
    Inviting {
        accepted: PidSet,
    },
    /// Waiting for the ReadyAcks of the members.
    Readying {
        missing: PidSet,
    },
    /// Accepted an invitation; waiting for Ready.
    Invited,
    /// A member asking its coordinator AreYouThere.
    Checking,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Invitation {
    me: Pid,
    priority: u64,
    params: InvitationParams,
    status: Status,
    coordinator: Pid,
    group: Group,
    counter: u64,
    /// The coordinator's members (other than itself).
    up: PidSet,
    phase: Phase,
}

impl Invitation {
    fn is_coordinator(&self) -> bool {
        self.coordinator == self.me
    }

    /// Recovery: a group of one, this node its coordinator.
    fn recover(&mut self, ctx: &mut Ctx<'_, Self>) {
        self.counter += 1;
        self.group = Group {
            coordinator: self.me,
            counter: self.counter,
        };
        self.coordinator = self.me;
        self.up = PidSet::new();
        self.status = Status::Normal;
        self.phase = Phase::Idle;
        ctx.cancel_timer(InvTimer::Call);
        ctx.cancel_timer(InvTimer::Merge);
    }

    fn merge(&mut self, others: &PidSet, ctx: &mut Ctx<'_, Self>) {
        self.status = Status::Election;
        self.counter += 1;
        self.group = Group {
            coordinator: self.me,
            counter: self.counter,
        };
        let mut invitees = self.up.clone();
        for p in others.iter() {
            invitees.insert(p);
        }
        self.up = PidSet::new();
        for p in invitees.iter() {
            ctx.send(p, InvMsg::Invitation { group: self.group });
        }
        self.phase = Phase::Inviting {
            accepted: PidSet::new(),
        };
        ctx.set_timer(InvTimer::Call, self.params.call_timeout);
    }

    fn reorganize(&mut self, accepted: PidSet, ctx: &mut Ctx<'_, Self>) {
        self.status = Status::Reorganization;
        self.up = accepted;
        if self.up.is_empty() {
            self.status = Status::Normal;
            self.phase = Phase::Idle;
            return;
        }
        for p in self.up.iter() {
            ctx.send(p, InvMsg::Ready { group: self.group });
        }
        self.phase = Phase::Readying {
            missing: self.up.clone(),
        };
        ctx.set_timer(InvTimer::Call, self.params.call_timeout);
    }
}

impl Algorithm for Invitation {
    type Msg = InvMsg;
    type Timer = InvTimer;
    type Params = InvitationParams;

    fn new(me: Pid, cluster: &Cluster, params: &InvitationParams) -> Self {
        let group = Group {
            coordinator: me,
            counter: 0,
        };
        Invitation {
            me,
            priority: cluster.priority(me),
            params: params.clone(),
            status: Status::Normal,
            coordinator: me,
            group,
            counter: 0,
            up: PidSet::new(),
            phase: Phase::Idle,
        }
    }

    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
        self.recover(ctx);
        ctx.set_timer(InvTimer::Check, self.params.check_interval);
    }

    fn on_message(&mut self, from: Pid, msg: InvMsg, ctx: &mut Ctx<'_, Self>) {
        match msg {
            InvMsg::AreYouCoordinator => {
                let yes = self.is_coordinator() && self.status == Status::Normal;
                ctx.send(from, InvMsg::AreYouCoordinatorReply { yes });
            }
            InvMsg::AreYouCoordinatorReply { yes } => {
                if let Phase::Looking { found } = &mut self.phase {
                    if yes {
                        found.insert(from);
                    }
                }
            }
            InvMsg::Invitation { group } => {
                if self.status != Status::Normal || group == self.group {
                    return;
                }
                if self.is_coordinator() {
                    for p in self.up.iter() {
                        if p != group.coordinator {
                            ctx.send(p, InvMsg::Invitation { group });
                        }
                    }
                }
                self.status = Status::Election;
                self.coordinator = group.coordinator;
                self.group = group;
                self.up = PidSet::new();
                self.phase = Phase::Invited;
                ctx.cancel_timer(InvTimer::Merge);
                ctx.send(group.coordinator, InvMsg::Accept { group });
                ctx.set_timer(
                    InvTimer::Call,
                    self.params.call_timeout + self.params.call_timeout,
                );
            }
            InvMsg::Accept { group } => {
                if let Phase::Inviting { accepted } = &mut self.phase {
                    if group == self.group {
                        accepted.insert(from);
                    }
                }
            }
            InvMsg::Ready { group } => {
                if self.phase == Phase::Invited && group == self.group && from == self.coordinator {
                    self.status = Status::Normal;
                    self.phase = Phase::Idle;
                    ctx.cancel_timer(InvTimer::Call);
                    ctx.send(from, InvMsg::ReadyAck { group });
                }
            }
            InvMsg::ReadyAck { group } => {
                if let Phase::Readying { missing } = &mut self.phase {
                    if group == self.group {
                        missing.remove(from);
                        if missing.is_empty() {
                            self.status = Status::Normal;
                            self.phase = Phase::Idle;
                            ctx.cancel_timer(InvTimer::Call);
                        }
                    }
                }
            }
            InvMsg::AreYouThere { group } => {
                let yes = self.is_coordinator() && group == self.group && self.up.contains(from);
                ctx.send(from, InvMsg::AreYouThereReply { yes });
            }
            InvMsg::AreYouThereReply { yes } => {
                if self.phase == Phase::Checking && from == self.coordinator {
                    if yes {
                        self.phase = Phase::Idle;
                        ctx.cancel_timer(InvTimer::Call);
                    } else {
                        self.recover(ctx);
                    }
                }
            }
        }
    }

    fn on_timer(&mut self, timer: InvTimer, ctx: &mut Ctx<'_, Self>) {
        match timer {
            InvTimer::Check => {
                ctx.set_timer(InvTimer::Check, self.params.check_interval);
                if self.status != Status::Normal || self.phase != Phase::Idle {
                    return;
                }
                if self.is_coordinator() {
                    ctx.broadcast(InvMsg::AreYouCoordinator);
                    self.phase = Phase::Looking {
                        found: PidSet::new(),
                    };
                } else {
                    ctx.send(self.coordinator, InvMsg::AreYouThere { group: self.group });
                    self.phase = Phase::Checking;
                }
                ctx.set_timer(InvTimer::Call, self.params.call_timeout);
            }
            InvTimer::Call => match std::mem::replace(&mut self.phase, Phase::Idle) {
                Phase::Looking { found } => {
                    if found.is_empty() {
                        return;
                    }
                    let cluster = ctx.cluster();
                    let higher = found
                        .iter()
                        .filter(|&p| cluster.priority(p) > self.priority)
                        .count();
                    if higher == 0 {
                        self.merge(&found, ctx);
                    } else {
                        let wait = Duration(self.params.merge_unit.as_micros() * higher as u64);
                        self.phase = Phase::Waiting { found };
                        ctx.set_timer(InvTimer::Merge, wait);
                    }
                }
                Phase::Inviting { accepted } => self.reorganize(accepted, ctx),
                Phase::Readying { missing } => {
                    // Members that did not confirm are not in the group.
                    for p in missing.iter() {
                        self.up.remove(p);
                    }
                    self.status = Status::Normal;
                }
                Phase::Invited | Phase::Checking => self.recover(ctx),
                other => self.phase = other,
            },
            InvTimer::Merge => {
                if let Phase::Waiting { found } = std::mem::replace(&mut self.phase, Phase::Idle) {
                    if self.is_coordinator() && self.status == Status::Normal {
                        self.merge(&found, ctx);
                    }
                }
            }
        }
    }

    fn view(&self) -> View {
        let (role, status) = match self.status {
            Status::Normal if self.is_coordinator() => (Role::Leader, "Normal"),
            Status::Normal => (Role::Follower, "Normal"),
            Status::Election => (Role::Candidate, "Election"),
            Status::Reorganization => (Role::Candidate, "Reorganization"),
        };
        View {
            role,
            leader: Some(self.coordinator),
            status,
            group: self.group.counter,
        }
    }
}
