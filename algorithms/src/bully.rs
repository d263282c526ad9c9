//! The textbook Bully algorithm with heartbeat failure detection.
//!
//! Follows the ELECTION / OK / COORDINATOR description shared by seeds 000 (Flask + Consul),
//! 001 (the ZeroMQ exercise) and 003 (the SeattleU lab), with seed 001's heartbeat:
//!
//! - A node starts an election when it starts, when it restarts after a crash, when its
//!   heartbeat to the coordinator goes unanswered for `heartbeat_timeout`, when a lower node
//!   sends it ELECTION, and when a lower node announces itself coordinator.
//! - An election sends ELECTION to every known higher-priority node and waits
//!   `answer_timeout`. An OK means a higher node takes over: the node waits up to
//!   `coordinator_timeout` for COORDINATOR, then starts again. No OK: it wins and sends
//!   COORDINATOR to every lower node (the higher ones did not answer, so it takes them for dead).
//! - Every node, including the highest, waits the full answer timeout before it wins. This is
//!   what a receive timeout does in the seeds' code, and it is what the textbook count
//!   (N² − 1 messages when all start together) assumes: the highest node is still "in an
//!   election" when the lower nodes' ELECTIONs reach it, so it answers OK without starting a
//!   second one.
//! - Every `heartbeat_interval` a follower sends HEARTBEAT to its coordinator; the coordinator
//!   records the sender and answers ACK with its list of processes, which the follower stores
//!   and uses as the set of nodes it runs elections against (seed 001).
//!
//! Assumptions: a synchronous network (every message arrives within the answer timeout) and
//! crash-stop nodes that restart fresh. Under a partition, or when messages are late, the
//! algorithm elects more than one leader; the simulator shows this rather than hiding it.

use crate::pidset::PidSet;
use crate::{Algorithm, Cluster, Ctx, Duration, Message, Pid, Role, View};
use serde::{Deserialize, Serialize};

/// Timeouts of the Bully algorithm. Defaults follow seed 001 (5 s heartbeats).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BullyParams {
    /// How long an election waits for an OK from a higher node.
    pub answer_timeout: Duration,
    /// How long a node that got an OK waits for COORDINATOR before it starts again.
    pub coordinator_timeout: Duration,
    /// How often a follower heartbeats its coordinator; zero turns heartbeats off.
    pub heartbeat_interval: Duration,
    /// How long a follower waits for the coordinator's answer before it starts an election.
    pub heartbeat_timeout: Duration,
}

impl Default for BullyParams {
    fn default() -> Self {
        BullyParams {
            answer_timeout: Duration::from_secs(1),
            coordinator_timeout: Duration::from_secs(3),
            heartbeat_interval: Duration::from_secs(5),
            heartbeat_timeout: Duration::from_secs(5),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BullyMsg {
    /// "I am holding an election": sent to every higher node.
    Election,
    /// The answer to ELECTION: "I am alive and take over".
    Ok,
    /// "I am the coordinator": sent by the winner to every lower node.
    Coordinator,
    /// A follower's liveness check of its coordinator.
    Heartbeat,
    /// The coordinator's answer to HEARTBEAT, carrying its list of processes.
    HeartbeatAck { processes: Vec<Pid> },
}

impl Message for BullyMsg {
    fn kind(&self) -> &'static str {
        match self {
            BullyMsg::Election => "Election",
            BullyMsg::Ok => "Ok",
            BullyMsg::Coordinator => "Coordinator",
            BullyMsg::Heartbeat => "Heartbeat",
            BullyMsg::HeartbeatAck { .. } => "HeartbeatAck",
        }
    }
    fn is_election(&self) -> bool {
        matches!(
            self,
            BullyMsg::Election | BullyMsg::Ok | BullyMsg::Coordinator
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum BullyTimer {
    /// No OK arrived in time: the election is won.
    Answer,
    /// No COORDINATOR arrived after an OK: elect again.
    Coordinator,
    /// Time to heartbeat the coordinator.
    HeartbeatTick,
    /// The coordinator did not answer the heartbeat.
    HeartbeatTimeout,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Status {
    Idle,
    Election,
    WaitingForCoordinator,
    Coordinator,
    Follower,
}

/// One Bully node's volatile state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Bully {
    me: Pid,
    priority: u64,
    params: BullyParams,
    status: Status,
    leader: Option<Pid>,
    /// The other processes this node knows: initially every voter of the cluster, then the
    /// coordinator's list from its heartbeat answers.
    processes: PidSet,
    heartbeat_outstanding: bool,
}

impl Bully {
    fn know(&mut self, pid: Pid) {
        if pid != self.me {
            self.processes.insert(pid);
        }
    }

    fn start_election(&mut self, ctx: &mut Ctx<'_, Self>) {
        self.status = Status::Election;
        self.leader = None;
        self.heartbeat_outstanding = false;
        ctx.cancel_timer(BullyTimer::Coordinator);
        ctx.cancel_timer(BullyTimer::HeartbeatTimeout);
        let cluster = ctx.cluster();
        for p in self.processes.iter() {
            if cluster.priority(p) > self.priority {
                ctx.send(p, BullyMsg::Election);
            }
        }
        ctx.set_timer(BullyTimer::Answer, self.params.answer_timeout);
    }

    fn become_coordinator(&mut self, ctx: &mut Ctx<'_, Self>) {
        self.status = Status::Coordinator;
        self.leader = Some(self.me);
        let cluster = ctx.cluster();
        for p in self.processes.iter() {
            if cluster.priority(p) < self.priority {
                ctx.send(p, BullyMsg::Coordinator);
            }
        }
    }

    fn follow(&mut self, coordinator: Pid, ctx: &mut Ctx<'_, Self>) {
        self.status = Status::Follower;
        self.leader = Some(coordinator);
        self.heartbeat_outstanding = false;
        ctx.cancel_timer(BullyTimer::Answer);
        ctx.cancel_timer(BullyTimer::Coordinator);
        ctx.cancel_timer(BullyTimer::HeartbeatTimeout);
    }

    fn in_election(&self) -> bool {
        matches!(
            self.status,
            Status::Election | Status::WaitingForCoordinator
        )
    }
}

impl Algorithm for Bully {
    type Msg = BullyMsg;
    type Timer = BullyTimer;
    type Params = BullyParams;

    fn new(me: Pid, cluster: &Cluster, params: &BullyParams) -> Self {
        Bully {
            me,
            priority: cluster.priority(me),
            params: params.clone(),
            status: Status::Idle,
            leader: None,
            processes: cluster.voters().filter(|&p| p != me).collect(),
            heartbeat_outstanding: false,
        }
    }

    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
        if self.params.heartbeat_interval > Duration::ZERO {
            ctx.set_timer(BullyTimer::HeartbeatTick, self.params.heartbeat_interval);
        }
        self.start_election(ctx);
    }

    fn on_message(&mut self, from: Pid, msg: BullyMsg, ctx: &mut Ctx<'_, Self>) {
        self.know(from);
        let from_higher = ctx.cluster().priority(from) > self.priority;
        match msg {
            BullyMsg::Election => {
                if from_higher {
                    return; // elections go upwards; a stray one from above is ignored
                }
                ctx.send(from, BullyMsg::Ok);
                if !self.in_election() {
                    self.start_election(ctx);
                }
            }
            BullyMsg::Ok => {
                if self.status == Status::Election {
                    self.status = Status::WaitingForCoordinator;
                    ctx.cancel_timer(BullyTimer::Answer);
                    ctx.set_timer(BullyTimer::Coordinator, self.params.coordinator_timeout);
                }
            }
            BullyMsg::Coordinator => {
                if from_higher {
                    self.follow(from, ctx);
                } else if !self.in_election() {
                    // A lower node claims the office while this one is alive: bully it.
                    self.start_election(ctx);
                }
            }
            BullyMsg::Heartbeat => {
                if self.status == Status::Coordinator {
                    let mut processes = self.processes.clone();
                    processes.insert(self.me);
                    let processes = processes.iter().collect();
                    ctx.send(from, BullyMsg::HeartbeatAck { processes });
                }
            }
            BullyMsg::HeartbeatAck { processes } => {
                if self.status == Status::Follower && self.leader == Some(from) {
                    self.heartbeat_outstanding = false;
                    ctx.cancel_timer(BullyTimer::HeartbeatTimeout);
                    self.processes = processes.into_iter().filter(|&p| p != self.me).collect();
                }
            }
        }
    }

    fn on_timer(&mut self, timer: BullyTimer, ctx: &mut Ctx<'_, Self>) {
        match timer {
            BullyTimer::Answer => {
                if self.status == Status::Election {
                    self.become_coordinator(ctx);
                }
            }
            BullyTimer::Coordinator => {
                if self.status == Status::WaitingForCoordinator {
                    self.start_election(ctx);
                }
            }
            BullyTimer::HeartbeatTick => {
                ctx.set_timer(BullyTimer::HeartbeatTick, self.params.heartbeat_interval);
                if let (Status::Follower, Some(c), false) =
                    (self.status, self.leader, self.heartbeat_outstanding)
                {
                    ctx.send(c, BullyMsg::Heartbeat);
                    ctx.set_timer(BullyTimer::HeartbeatTimeout, self.params.heartbeat_timeout);
                    self.heartbeat_outstanding = true;
                }
            }
            BullyTimer::HeartbeatTimeout => {
                if self.status == Status::Follower {
                    self.start_election(ctx);
                }
            }
        }
    }

    fn view(&self) -> View {
        let (role, status) = match self.status {
            Status::Idle => (Role::Idle, "Idle"),
            Status::Election => (Role::Candidate, "Election"),
            Status::WaitingForCoordinator => (Role::Candidate, "WaitingForCoordinator"),
            Status::Coordinator => (Role::Leader, "Coordinator"),
            Status::Follower => (Role::Follower, "Follower"),
        };
        View {
            role,
            leader: self.leader,
            status,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Context, Effect, Member, Time};

    fn cluster(n: u64) -> Cluster {
        Cluster::new(
            (1..=n)
                .map(|i| Member::voter(&format!("n{i}"), i))
                .collect(),
        )
    }

    fn step(
        node: &mut Bully,
        cluster: &Cluster,
        f: impl FnOnce(&mut Bully, &mut Ctx<'_, Bully>),
    ) -> Vec<Effect<BullyMsg, BullyTimer>> {
        let mut effects = Vec::new();
        let me = node.me;
        f(
            node,
            &mut Context::new(Time::ZERO, me, cluster, &mut effects),
        );
        effects
    }

    fn sends(effects: &[Effect<BullyMsg, BullyTimer>]) -> Vec<(Pid, BullyMsg)> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Send { to, msg } => Some((*to, msg.clone())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn highest_wins_after_answer_timeout_and_tells_lower_nodes() {
        let c = cluster(3);
        let mut top = Bully::new(Pid(2), &c, &BullyParams::default());
        let e = step(&mut top, &c, |n, ctx| n.on_start(ctx));
        assert!(sends(&e).is_empty(), "no higher node to ask");
        assert_eq!(top.view().role, Role::Candidate);
        let e = step(&mut top, &c, |n, ctx| n.on_timer(BullyTimer::Answer, ctx));
        assert_eq!(
            sends(&e),
            vec![
                (Pid(0), BullyMsg::Coordinator),
                (Pid(1), BullyMsg::Coordinator)
            ]
        );
        assert_eq!(top.view().role, Role::Leader);
        assert_eq!(top.view().leader, Some(Pid(2)));
    }

    #[test]
    fn election_from_lower_is_answered_and_starts_own_election_once() {
        let c = cluster(3);
        let mut mid = Bully::new(Pid(1), &c, &BullyParams::default());
        mid.status = Status::Follower;
        mid.leader = Some(Pid(2));
        let e = step(&mut mid, &c, |n, ctx| {
            n.on_message(Pid(0), BullyMsg::Election, ctx)
        });
        assert_eq!(
            sends(&e),
            vec![(Pid(0), BullyMsg::Ok), (Pid(2), BullyMsg::Election)]
        );
        // A second ELECTION while in the election is answered, nothing more.
        let e = step(&mut mid, &c, |n, ctx| {
            n.on_message(Pid(0), BullyMsg::Election, ctx)
        });
        assert_eq!(sends(&e), vec![(Pid(0), BullyMsg::Ok)]);
    }

    #[test]
    fn unanswered_heartbeat_starts_an_election() {
        let c = cluster(3);
        let mut low = Bully::new(Pid(0), &c, &BullyParams::default());
        low.status = Status::Follower;
        low.leader = Some(Pid(2));
        let e = step(&mut low, &c, |n, ctx| {
            n.on_timer(BullyTimer::HeartbeatTick, ctx)
        });
        assert_eq!(sends(&e), vec![(Pid(2), BullyMsg::Heartbeat)]);
        let e = step(&mut low, &c, |n, ctx| {
            n.on_timer(BullyTimer::HeartbeatTimeout, ctx)
        });
        assert_eq!(low.view().role, Role::Candidate);
        assert_eq!(
            sends(&e),
            vec![(Pid(1), BullyMsg::Election), (Pid(2), BullyMsg::Election)]
        );
    }

    #[test]
    fn follower_stores_the_coordinators_process_list() {
        let c = cluster(3);
        let mut top = Bully::new(Pid(2), &c, &BullyParams::default());
        top.status = Status::Coordinator;
        top.leader = Some(Pid(2));
        let e = step(&mut top, &c, |n, ctx| {
            n.on_message(Pid(0), BullyMsg::Heartbeat, ctx)
        });
        let ack = sends(&e).pop().unwrap().1;
        assert_eq!(
            ack,
            BullyMsg::HeartbeatAck {
                processes: vec![Pid(0), Pid(1), Pid(2)]
            }
        );
        let mut low = Bully::new(Pid(0), &c, &BullyParams::default());
        low.processes = [Pid(2)].into_iter().collect();
        low.status = Status::Follower;
        low.leader = Some(Pid(2));
        step(&mut low, &c, |n, ctx| n.on_message(Pid(2), ack, ctx));
        assert_eq!(
            low.processes.iter().collect::<Vec<_>>(),
            vec![Pid(1), Pid(2)]
        );
    }

    #[test]
    fn lower_coordinator_is_bullied() {
        let c = cluster(3);
        let mut top = Bully::new(Pid(2), &c, &BullyParams::default());
        top.status = Status::Follower;
        top.leader = Some(Pid(1));
        step(&mut top, &c, |n, ctx| {
            n.on_message(Pid(1), BullyMsg::Coordinator, ctx)
        });
        assert_eq!(top.view().role, Role::Candidate);
    }
}
