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
//! With `discovery: Registry(..)` the nodes find each other as in seed 000 (Consul): the
//! registry is a service process of the world; a node registers at start, waits `wait`,
//! asks the registry for the registered nodes and only then elects. The registry checks its
//! members' health every `health_interval` and drops those that do not answer within
//! `health_timeout` (Consul's TCP check: 10 s and 1 s in the seed). If the registry does not
//! answer a lookup, the node asks again after `wait`.
//!
//! Assumptions: a synchronous network (every message arrives within the answer timeout) and
//! crash-stop nodes that restart fresh. Under a partition, or when messages are late, the
//! algorithm elects more than one leader; the simulator shows this rather than hiding it.

use crate::pidset::PidSet;
use crate::{Algorithm, Cluster, Ctx, Duration, MemberKind, Message, Pid, Role, View};
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
    /// How nodes learn of each other: the scenario's node list, or a registry service.
    pub discovery: Discovery,
}

/// How Bully nodes learn who is in the cluster.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Discovery {
    /// Every node knows every other from the start (seeds 001 and 003's static lists).
    Static,
    /// A registry service (seed 000's Consul), a process of the world named `name`.
    Registry {
        name: String,
        /// How long a node waits after registering before it looks the others up.
        #[serde(default = "default_wait")]
        wait: Duration,
        #[serde(default = "default_health_interval")]
        health_interval: Duration,
        #[serde(default = "default_health_timeout")]
        health_timeout: Duration,
    },
}

fn default_wait() -> Duration {
    Duration::from_secs(8)
}
fn default_health_interval() -> Duration {
    Duration::from_secs(10)
}
fn default_health_timeout() -> Duration {
    Duration::from_secs(1)
}

impl Default for BullyParams {
    fn default() -> Self {
        BullyParams {
            answer_timeout: Duration::from_secs(1),
            coordinator_timeout: Duration::from_secs(3),
            heartbeat_interval: Duration::from_secs(5),
            heartbeat_timeout: Duration::from_secs(5),
            discovery: Discovery::Static,
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
    HeartbeatAck {
        processes: Vec<Pid>,
    },
    /// A node registers with the registry.
    Register,
    /// A node asks the registry for the registered nodes.
    Lookup,
    /// The registry's answer to LOOKUP.
    Members {
        processes: Vec<Pid>,
    },
    /// The registry's health check, and its answer.
    HealthCheck,
    HealthOk,
}

impl Message for BullyMsg {
    fn kind(&self) -> &'static str {
        match self {
            BullyMsg::Election => "Election",
            BullyMsg::Ok => "Ok",
            BullyMsg::Coordinator => "Coordinator",
            BullyMsg::Heartbeat => "Heartbeat",
            BullyMsg::HeartbeatAck { .. } => "HeartbeatAck",
            BullyMsg::Register => "Register",
            BullyMsg::Lookup => "Lookup",
            BullyMsg::Members { .. } => "Members",
            BullyMsg::HealthCheck => "HealthCheck",
            BullyMsg::HealthOk => "HealthOk",
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
    /// Time to look the cluster up in the registry (again).
    Lookup,
    /// The registry's health round starts.
    HealthTick,
    /// The registry's health round ends: who did not answer is dropped.
    HealthDeadline,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Status {
    Idle,
    /// Registered; waiting to look the cluster up.
    Discovering,
    Election,
    WaitingForCoordinator,
    Coordinator,
    Follower,
}

/// A process of a Bully world: a node, or the registry service.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Bully {
    Node(BullyNode),
    Registry(Registry),
}

/// The registry (seed 000's Consul): who registered, and the health round under way.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Registry {
    members: PidSet,
    unanswered: PidSet,
    health_interval: Duration,
    health_timeout: Duration,
}

/// One Bully node's volatile state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BullyNode {
    me: Pid,
    priority: u64,
    params: BullyParams,
    status: Status,
    leader: Option<Pid>,
    /// The other processes this node knows: initially every voter of the cluster, then the
    /// coordinator's list from its heartbeat answers.
    processes: PidSet,
    heartbeat_outstanding: bool,
    registry: Option<Pid>,
}

impl BullyNode {
    fn know(&mut self, pid: Pid) {
        if pid != self.me {
            self.processes.insert(pid);
        }
    }

    fn start_election(&mut self, ctx: &mut Ctx<'_, Bully>) {
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

    fn become_coordinator(&mut self, ctx: &mut Ctx<'_, Bully>) {
        self.status = Status::Coordinator;
        self.leader = Some(self.me);
        let cluster = ctx.cluster();
        for p in self.processes.iter() {
            if cluster.priority(p) < self.priority {
                ctx.send(p, BullyMsg::Coordinator);
            }
        }
    }

    fn follow(&mut self, coordinator: Pid, ctx: &mut Ctx<'_, Bully>) {
        self.status = Status::Follower;
        self.leader = Some(coordinator);
        self.heartbeat_outstanding = false;
        ctx.cancel_timer(BullyTimer::Answer);
        ctx.cancel_timer(BullyTimer::Coordinator);
        ctx.cancel_timer(BullyTimer::HeartbeatTimeout);
    }

    /// In an election, or about to start one (a discovering node elects once it has looked
    /// the cluster up, so an ELECTION it receives meanwhile is answered but starts nothing).
    fn in_election(&self) -> bool {
        matches!(
            self.status,
            Status::Election | Status::WaitingForCoordinator | Status::Discovering
        )
    }
}

impl BullyNode {
    fn new(me: Pid, cluster: &Cluster, params: &BullyParams) -> Self {
        // The first service is the registry only with registry discovery: another service
        // (a log server) is no registry.
        let registry = match params.discovery {
            Discovery::Registry { .. } => cluster.services().next(),
            Discovery::Static => None,
        };
        BullyNode {
            me,
            priority: cluster.priority(me),
            params: params.clone(),
            status: Status::Idle,
            leader: None,
            // With a registry, a node knows nobody until it has looked the others up.
            processes: match registry {
                Some(_) => PidSet::new(),
                None => cluster.voters().filter(|&p| p != me).collect(),
            },
            heartbeat_outstanding: false,
            registry,
        }
    }

    fn on_start(&mut self, ctx: &mut Ctx<'_, Bully>) {
        if self.params.heartbeat_interval > Duration::ZERO {
            ctx.set_timer(BullyTimer::HeartbeatTick, self.params.heartbeat_interval);
        }
        match (self.registry, &self.params.discovery) {
            (Some(r), Discovery::Registry { wait, .. }) => {
                self.status = Status::Discovering;
                ctx.send(r, BullyMsg::Register);
                ctx.set_timer(BullyTimer::Lookup, *wait);
            }
            _ => self.start_election(ctx),
        }
    }

    fn on_message(&mut self, from: Pid, msg: BullyMsg, ctx: &mut Ctx<'_, Bully>) {
        if Some(from) == self.registry {
            return self.on_registry_message(msg, ctx);
        }
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
            BullyMsg::Ok if self.status == Status::Election => {
                self.status = Status::WaitingForCoordinator;
                ctx.cancel_timer(BullyTimer::Answer);
                ctx.set_timer(BullyTimer::Coordinator, self.params.coordinator_timeout);
            }
            BullyMsg::Coordinator => {
                if from_higher {
                    self.follow(from, ctx);
                } else if !self.in_election() {
                    // A lower node claims the office while this one is alive: bully it.
                    self.start_election(ctx);
                }
            }
            BullyMsg::Heartbeat if self.status == Status::Coordinator => {
                // Its processes and itself, in ascending order (as a set of them lists them).
                let mut processes: Vec<Pid> = Vec::with_capacity(self.processes.len() + 1);
                processes.extend(self.processes.iter());
                let at = processes.partition_point(|&p| p < self.me);
                if processes.get(at) != Some(&self.me) {
                    processes.insert(at, self.me);
                }
                ctx.send(from, BullyMsg::HeartbeatAck { processes });
            }
            BullyMsg::HeartbeatAck { processes }
                if self.status == Status::Follower && self.leader == Some(from) =>
            {
                self.heartbeat_outstanding = false;
                ctx.cancel_timer(BullyTimer::HeartbeatTimeout);
                // In the set it has (it takes a list at every heartbeat).
                self.processes.clear();
                for p in processes {
                    if p != self.me {
                        self.processes.insert(p);
                    }
                }
            }
            _ => {}
        }
    }

    fn on_registry_message(&mut self, msg: BullyMsg, ctx: &mut Ctx<'_, Bully>) {
        match msg {
            BullyMsg::HealthCheck => {
                if let Some(r) = self.registry {
                    ctx.send(r, BullyMsg::HealthOk);
                }
            }
            BullyMsg::Members { processes } => {
                for p in processes {
                    self.know(p);
                }
                if self.status == Status::Discovering {
                    ctx.cancel_timer(BullyTimer::Lookup);
                    self.start_election(ctx);
                }
            }
            _ => {}
        }
    }

    fn on_timer(&mut self, timer: BullyTimer, ctx: &mut Ctx<'_, Bully>) {
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
            BullyTimer::Lookup => {
                if let (Status::Discovering, Some(r), Discovery::Registry { wait, .. }) =
                    (self.status, self.registry, &self.params.discovery)
                {
                    ctx.send(r, BullyMsg::Lookup);
                    ctx.set_timer(BullyTimer::Lookup, *wait);
                }
            }
            BullyTimer::HealthTick | BullyTimer::HealthDeadline => {}
        }
    }

    pub fn view(&self) -> View {
        let (role, status) = match self.status {
            Status::Idle => (Role::Idle, "Idle"),
            Status::Discovering => (Role::Idle, "Discovering"),
            Status::Election => (Role::Candidate, "Election"),
            Status::WaitingForCoordinator => (Role::Candidate, "WaitingForCoordinator"),
            Status::Coordinator => (Role::Leader, "Coordinator"),
            Status::Follower => (Role::Follower, "Follower"),
        };
        View::new(role, self.leader, status)
    }
}

impl Registry {
    fn on_message(&mut self, from: Pid, msg: BullyMsg, ctx: &mut Ctx<'_, Bully>) {
        match msg {
            BullyMsg::Register => {
                self.members.insert(from);
            }
            BullyMsg::Lookup => ctx.send(
                from,
                BullyMsg::Members {
                    processes: self.members.iter().collect(),
                },
            ),
            BullyMsg::HealthOk => {
                self.unanswered.remove(from);
            }
            _ => {}
        }
    }

    fn on_timer(&mut self, timer: BullyTimer, ctx: &mut Ctx<'_, Bully>) {
        match timer {
            BullyTimer::HealthTick => {
                ctx.set_timer(BullyTimer::HealthTick, self.health_interval);
                for p in self.members.iter() {
                    ctx.send(p, BullyMsg::HealthCheck);
                }
                self.unanswered = self.members.clone();
                ctx.set_timer(BullyTimer::HealthDeadline, self.health_timeout);
            }
            BullyTimer::HealthDeadline => {
                for p in self.unanswered.iter() {
                    self.members.remove(p);
                }
                self.unanswered = PidSet::new();
            }
            _ => {}
        }
    }
}

impl Algorithm for Bully {
    type Msg = BullyMsg;
    type Timer = BullyTimer;
    type Params = BullyParams;

    fn new(me: Pid, cluster: &Cluster, params: &BullyParams) -> Self {
        match (&cluster.member(me).kind, &params.discovery) {
            (
                MemberKind::Service,
                Discovery::Registry {
                    health_interval,
                    health_timeout,
                    ..
                },
            ) => Bully::Registry(Registry {
                members: PidSet::new(),
                unanswered: PidSet::new(),
                health_interval: *health_interval,
                health_timeout: *health_timeout,
            }),
            _ => Bully::Node(BullyNode::new(me, cluster, params)),
        }
    }

    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
        match self {
            Bully::Node(n) => n.on_start(ctx),
            Bully::Registry(r) => {
                if r.health_interval > Duration::ZERO {
                    ctx.set_timer(BullyTimer::HealthTick, r.health_interval);
                }
            }
        }
    }

    fn on_message(&mut self, from: Pid, msg: BullyMsg, ctx: &mut Ctx<'_, Self>) {
        match self {
            Bully::Node(n) => n.on_message(from, msg, ctx),
            Bully::Registry(r) => r.on_message(from, msg, ctx),
        }
    }

    fn on_timer(&mut self, timer: BullyTimer, ctx: &mut Ctx<'_, Self>) {
        match self {
            Bully::Node(n) => n.on_timer(timer, ctx),
            Bully::Registry(r) => r.on_timer(timer, ctx),
        }
    }

    fn view(&self) -> View {
        match self {
            Bully::Node(n) => n.view(),
            Bully::Registry(_) => View::new(Role::Service, None, "Registry"),
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

    impl Bully {
        fn n(&mut self) -> &mut BullyNode {
            match self {
                Bully::Node(n) => n,
                Bully::Registry(_) => panic!("a node"),
            }
        }
    }

    fn step(
        node: &mut Bully,
        cluster: &Cluster,
        f: impl FnOnce(&mut Bully, &mut Ctx<'_, Bully>),
    ) -> Vec<Effect<BullyMsg, BullyTimer>> {
        let mut effects = Vec::new();
        let me = node.n().me;
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
    fn a_log_server_is_no_registry() {
        // Four nodes and a log server (a service member), static discovery: the node knows
        // the other voters and asks the higher ones, as without the log server.
        let mut members: Vec<Member> = (1..=4)
            .map(|i| Member::voter(&format!("n{i}"), i))
            .collect();
        members.push(Member {
            name: "logserver".into(),
            priority: 0,
            address: None,
            kind: MemberKind::Service,
        });
        let c = Cluster::new(members);
        let mut low = Bully::new(Pid(1), &c, &BullyParams::default());
        let e = step(&mut low, &c, |n, ctx| n.on_start(ctx));
        assert_eq!(
            sends(&e),
            vec![(Pid(2), BullyMsg::Election), (Pid(3), BullyMsg::Election)]
        );
    }

    #[test]
    fn election_from_lower_is_answered_and_starts_own_election_once() {
        let c = cluster(3);
        let mut mid = Bully::new(Pid(1), &c, &BullyParams::default());
        mid.n().status = Status::Follower;
        mid.n().leader = Some(Pid(2));
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
        low.n().status = Status::Follower;
        low.n().leader = Some(Pid(2));
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
        top.n().status = Status::Coordinator;
        top.n().leader = Some(Pid(2));
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
        low.n().processes = [Pid(2)].into_iter().collect();
        low.n().status = Status::Follower;
        low.n().leader = Some(Pid(2));
        step(&mut low, &c, |n, ctx| n.on_message(Pid(2), ack, ctx));
        assert_eq!(
            low.n().processes.iter().collect::<Vec<_>>(),
            vec![Pid(1), Pid(2)]
        );
    }

    #[test]
    fn lower_coordinator_is_bullied() {
        let c = cluster(3);
        let mut top = Bully::new(Pid(2), &c, &BullyParams::default());
        top.n().status = Status::Follower;
        top.n().leader = Some(Pid(1));
        step(&mut top, &c, |n, ctx| {
            n.on_message(Pid(1), BullyMsg::Coordinator, ctx)
        });
        assert_eq!(top.view().role, Role::Candidate);
    }

    /// Seed 000: a node elects only once it has looked the cluster up. An ELECTION that
    /// arrives during its wait is answered, but starting an election then, knowing only the
    /// sender, would let it win against nodes it has not heard of yet.
    #[test]
    fn discovering_node_answers_election_but_elects_after_lookup() {
        let mut members: Vec<Member> = (1..=3)
            .map(|i| Member::voter(&format!("n{i}"), i))
            .collect();
        members.push(Member {
            name: "consul".into(),
            priority: 0,
            address: None,
            kind: MemberKind::Service,
        });
        let c = Cluster::new(members);
        let params = BullyParams {
            discovery: Discovery::Registry {
                name: "consul".into(),
                wait: Duration::from_secs(8),
                health_interval: Duration::from_secs(10),
                health_timeout: Duration::from_secs(1),
            },
            ..BullyParams::default()
        };
        let mut mid = Bully::new(Pid(1), &c, &params);
        let e = step(&mut mid, &c, |n, ctx| n.on_start(ctx));
        assert_eq!(sends(&e), vec![(Pid(3), BullyMsg::Register)]);
        let e = step(&mut mid, &c, |n, ctx| {
            n.on_message(Pid(0), BullyMsg::Election, ctx)
        });
        assert_eq!(sends(&e), vec![(Pid(0), BullyMsg::Ok)]);
        assert_eq!(mid.view().status, "Discovering");
        let members = BullyMsg::Members {
            processes: vec![Pid(0), Pid(1), Pid(2)],
        };
        let e = step(&mut mid, &c, |n, ctx| n.on_message(Pid(3), members, ctx));
        assert_eq!(
            sends(&e),
            vec![(Pid(2), BullyMsg::Election)],
            "asks the node it just learned of"
        );
    }
}
