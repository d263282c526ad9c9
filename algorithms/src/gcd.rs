//! The SeattleU lab's Bully algorithm with a group coordinator daemon (seed 003).
//!
//! - Identity is the pair (days until a birthday, student id), compared as a pair, higher
//!   wins. The daemon accepts days in 1..=365 and student ids in 1,000,000..=10,000,000; the
//!   pair is packed into the priority as `days << 32 | id`, which keeps the pair's order.
//! - A node joins by sending JOIN (identity and listening address) to the group coordinator
//!   daemon (GCD), a service process of the world, and gets every member back; then it
//!   starts an election. If the daemon does not answer within `answer_timeout` it asks again.
//!   A cluster without a daemon (no service member) is one whose nodes joined before they
//!   started, as `conclave-node --gcd ADDR` does against a real daemon: a node's members are
//!   then every other voter, and joining (at start and on every rejoin) is electing at once.
//! - ELECTION carries the member list (the receiver learns any member it did not know) and
//!   is answered OK; a node that gets ELECTION starts its own election unless it is in one.
//!   No OK within `answer_timeout`: the node wins and sends COORDINATOR to every member.
//!   After an OK, no COORDINATOR within `coordinator_timeout`: elect again. COORDINATOR is
//!   not answered; one from a lower node makes the receiver elect (it bullies).
//! - A follower PROBEs its leader at random intervals (uniform `probe_min..=probe_max`, 500
//!   to 3000 ms in the lab), answered OK; no answer within `probe_timeout` means the leader
//!   failed: the node rejoins and elects.
//! - Feigned failure (the lab's extra credit), when `feign` is set: after a random time
//!   (uniform `next_min..=next_max`) the node pretends to be dead for a random time (uniform
//!   `length_min..=length_max`): it answers nothing, sends nothing, and names no leader. Then
//!   it recovers by rejoining and electing. The draws come from the run's seed. No feigned
//!   failure starts after `until`, if given.

use crate::pidset::PidSet;
use crate::{Algorithm, Cluster, Ctx, Duration, MemberKind, Message, Pid, Role, View};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GcdParams {
    /// The daemon's process name (a service of the world).
    pub gcd: String,
    pub answer_timeout: Duration,
    pub coordinator_timeout: Duration,
    pub probe_min: Duration,
    pub probe_max: Duration,
    pub probe_timeout: Duration,
    /// Feigned failures; off when absent.
    pub feign: Option<Feign>,
}

impl Default for GcdParams {
    fn default() -> Self {
        GcdParams {
            gcd: "gcd".into(),
            answer_timeout: Duration::from_millis(1500),
            coordinator_timeout: Duration::from_secs(3),
            probe_min: Duration::from_millis(500),
            probe_max: Duration::from_millis(3000),
            probe_timeout: Duration::from_millis(1500),
            feign: None,
        }
    }
}

/// When nodes feign failure, and for how long (uniform draws).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Feign {
    pub next_min: Duration,
    pub next_max: Duration,
    pub length_min: Duration,
    pub length_max: Duration,
    /// No feigned failure starts after this time (the lab feigns forever; a scenario can
    /// stop the churn to check that the group settles).
    pub until: Option<Duration>,
}

impl Default for Feign {
    fn default() -> Self {
        Feign {
            next_min: Duration::ZERO,
            next_max: Duration::from_secs(10),
            length_min: Duration::from_secs(1),
            length_max: Duration::from_secs(4),
            until: None,
        }
    }
}

/// Packs a (days, student id) identity into a priority that orders like the pair.
pub fn pack_identity(days: u64, student_id: u64) -> u64 {
    days << 32 | student_id
}

/// The (days, student id) pair of a packed priority.
pub fn unpack_identity(priority: u64) -> (u64, u64) {
    (priority >> 32, priority & 0xffff_ffff)
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum GcdMsg {
    /// To the daemon: this node's identity (its listening address is its process).
    Join {
        days: u64,
        student_id: u64,
    },
    /// The daemon's answer: every member.
    Members {
        members: Vec<Pid>,
    },
    Election {
        members: Vec<Pid>,
    },
    Ok,
    Coordinator,
    Probe,
    ProbeOk,
}

impl Message for GcdMsg {
    fn kind(&self) -> &'static str {
        match self {
            GcdMsg::Join { .. } => "Join",
            GcdMsg::Members { .. } => "Members",
            GcdMsg::Election { .. } => "Election",
            GcdMsg::Ok => "Ok",
            GcdMsg::Coordinator => "Coordinator",
            GcdMsg::Probe => "Probe",
            GcdMsg::ProbeOk => "ProbeOk",
        }
    }
    fn is_election(&self) -> bool {
        matches!(
            self,
            GcdMsg::Election { .. } | GcdMsg::Ok | GcdMsg::Coordinator
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum GcdTimer {
    Join,
    Answer,
    Coordinator,
    Probe,
    ProbeTimeout,
    FeignStart,
    FeignEnd,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Status {
    Joining,
    Election,
    WaitingForCoordinator,
    Leader,
    Follower,
    Feigning,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GcdNode {
    me: Pid,
    priority: u64,
    params: GcdParams,
    /// The daemon; `None` when the cluster has none (the node joined before it started).
    gcd: Option<Pid>,
    status: Status,
    leader: Option<Pid>,
    members: PidSet,
}

/// A process of the lab's world: a node, or the group coordinator daemon.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum GcdBully {
    Node(GcdNode),
    Daemon { members: PidSet },
}

impl GcdNode {
    fn join(&mut self, ctx: &mut Ctx<'_, GcdBully>) {
        self.status = Status::Joining;
        self.leader = None;
        for t in [
            GcdTimer::Answer,
            GcdTimer::Coordinator,
            GcdTimer::Probe,
            GcdTimer::ProbeTimeout,
        ] {
            ctx.cancel_timer(t);
        }
        let Some(gcd) = self.gcd else {
            let voters: Vec<Pid> = ctx.cluster().voters().collect();
            self.members = voters.into_iter().filter(|&p| p != self.me).collect();
            self.elect(ctx);
            return;
        };
        let (days, student_id) = unpack_identity(self.priority);
        ctx.send(gcd, GcdMsg::Join { days, student_id });
        ctx.set_timer(GcdTimer::Join, self.params.answer_timeout);
    }

    fn elect(&mut self, ctx: &mut Ctx<'_, GcdBully>) {
        self.status = Status::Election;
        self.leader = None;
        ctx.cancel_timer(GcdTimer::Coordinator);
        ctx.cancel_timer(GcdTimer::ProbeTimeout);
        let list: Vec<Pid> = self.members.iter().collect();
        let cluster = ctx.cluster();
        for p in self.members.iter() {
            if cluster.priority(p) > self.priority {
                ctx.send(
                    p,
                    GcdMsg::Election {
                        members: list.clone(),
                    },
                );
            }
        }
        ctx.set_timer(GcdTimer::Answer, self.params.answer_timeout);
    }

    fn schedule_probe(&mut self, ctx: &mut Ctx<'_, GcdBully>) {
        let wait = ctx.random_duration(self.params.probe_min, self.params.probe_max);
        ctx.set_timer(GcdTimer::Probe, wait);
    }

    fn schedule_feign(&mut self, ctx: &mut Ctx<'_, GcdBully>) {
        if let Some(f) = &self.params.feign {
            let wait = ctx.random_duration(f.next_min, f.next_max);
            ctx.set_timer(GcdTimer::FeignStart, wait);
        }
    }

    fn on_message(&mut self, from: Pid, msg: GcdMsg, ctx: &mut Ctx<'_, GcdBully>) {
        if self.status == Status::Feigning {
            return;
        }
        let from_higher = ctx.cluster().priority(from) > self.priority;
        match msg {
            GcdMsg::Members { members }
                if Some(from) == self.gcd && self.status == Status::Joining =>
            {
                ctx.cancel_timer(GcdTimer::Join);
                self.members = members.into_iter().filter(|&p| p != self.me).collect();
                self.elect(ctx);
            }
            GcdMsg::Election { members } => {
                for p in members.into_iter().chain([from]) {
                    if p != self.me {
                        self.members.insert(p);
                    }
                }
                ctx.send(from, GcdMsg::Ok);
                if !matches!(
                    self.status,
                    Status::Election | Status::WaitingForCoordinator | Status::Joining
                ) {
                    self.elect(ctx);
                }
            }
            GcdMsg::Ok if self.status == Status::Election => {
                self.status = Status::WaitingForCoordinator;
                ctx.cancel_timer(GcdTimer::Answer);
                ctx.set_timer(GcdTimer::Coordinator, self.params.coordinator_timeout);
            }
            GcdMsg::Coordinator => {
                self.members.insert(from);
                if from_higher {
                    self.status = Status::Follower;
                    self.leader = Some(from);
                    ctx.cancel_timer(GcdTimer::Answer);
                    ctx.cancel_timer(GcdTimer::Coordinator);
                    ctx.cancel_timer(GcdTimer::ProbeTimeout);
                    self.schedule_probe(ctx);
                } else if !matches!(
                    self.status,
                    Status::Election | Status::WaitingForCoordinator | Status::Joining
                ) {
                    self.elect(ctx);
                }
            }
            GcdMsg::Probe => ctx.send(from, GcdMsg::ProbeOk),
            GcdMsg::ProbeOk if self.leader == Some(from) && self.status == Status::Follower => {
                ctx.cancel_timer(GcdTimer::ProbeTimeout);
                self.schedule_probe(ctx);
            }
            _ => {}
        }
    }

    fn on_timer(&mut self, timer: GcdTimer, ctx: &mut Ctx<'_, GcdBully>) {
        match (timer, self.status) {
            (GcdTimer::FeignEnd, Status::Feigning) => {
                self.schedule_feign(ctx);
                self.join(ctx);
            }
            (_, Status::Feigning) => {}
            (GcdTimer::FeignStart, _) => {
                let Some(f) = self.params.feign.clone() else {
                    return;
                };
                if f.until
                    .is_some_and(|u| ctx.now().as_micros() >= u.as_micros())
                {
                    return;
                }
                for t in [
                    GcdTimer::Join,
                    GcdTimer::Answer,
                    GcdTimer::Coordinator,
                    GcdTimer::Probe,
                    GcdTimer::ProbeTimeout,
                ] {
                    ctx.cancel_timer(t);
                }
                self.status = Status::Feigning;
                self.leader = None;
                let length = ctx.random_duration(f.length_min, f.length_max);
                ctx.set_timer(GcdTimer::FeignEnd, length);
            }
            (GcdTimer::Join, Status::Joining) => self.join(ctx),
            (GcdTimer::Answer, Status::Election) => {
                self.status = Status::Leader;
                self.leader = Some(self.me);
                for p in self.members.iter() {
                    ctx.send(p, GcdMsg::Coordinator);
                }
            }
            (GcdTimer::Coordinator, Status::WaitingForCoordinator) => self.elect(ctx),
            (GcdTimer::Probe, Status::Follower) => {
                if let Some(l) = self.leader {
                    ctx.send(l, GcdMsg::Probe);
                    ctx.set_timer(GcdTimer::ProbeTimeout, self.params.probe_timeout);
                }
            }
            // The leader did not answer the probe: rejoin, then elect.
            (GcdTimer::ProbeTimeout, Status::Follower) => self.join(ctx),
            _ => {}
        }
    }

    fn view(&self) -> View {
        let (role, status) = match self.status {
            Status::Joining => (Role::Idle, "Joining"),
            Status::Election => (Role::Candidate, "Election"),
            Status::WaitingForCoordinator => (Role::Candidate, "WaitingForCoordinator"),
            Status::Leader => (Role::Leader, "Leader"),
            Status::Follower => (Role::Follower, "Follower"),
            Status::Feigning => (Role::Idle, "Feigning"),
        };
        View::new(role, self.leader, status)
    }
}

impl Algorithm for GcdBully {
    type Msg = GcdMsg;
    type Timer = GcdTimer;
    type Params = GcdParams;

    fn new(me: Pid, cluster: &Cluster, params: &GcdParams) -> Self {
        if cluster.member(me).kind == MemberKind::Service {
            return GcdBully::Daemon {
                members: PidSet::new(),
            };
        }
        GcdBully::Node(GcdNode {
            me,
            priority: cluster.priority(me),
            params: params.clone(),
            gcd: cluster.services().next(),
            status: Status::Joining,
            leader: None,
            members: PidSet::new(),
        })
    }

    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
        if let GcdBully::Node(n) = self {
            n.schedule_feign(ctx);
            n.join(ctx);
        }
    }

    fn on_message(&mut self, from: Pid, msg: GcdMsg, ctx: &mut Ctx<'_, Self>) {
        match self {
            GcdBully::Node(n) => n.on_message(from, msg, ctx),
            GcdBully::Daemon { members } => {
                if let GcdMsg::Join { .. } = msg {
                    members.insert(from);
                    let list = members.iter().collect();
                    ctx.send(from, GcdMsg::Members { members: list });
                }
            }
        }
    }

    fn on_timer(&mut self, timer: GcdTimer, ctx: &mut Ctx<'_, Self>) {
        if let GcdBully::Node(n) = self {
            n.on_timer(timer, ctx);
        }
    }

    fn view(&self) -> View {
        match self {
            GcdBully::Node(n) => n.view(),
            GcdBully::Daemon { .. } => View::new(Role::Service, None, "Daemon"),
        }
    }
}
