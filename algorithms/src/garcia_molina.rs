//! Garcia-Molina's Bully algorithm, as in "Elections in a Distributed Computing System"
//! (IEEE Transactions on Computers C-31(1), 1982) and seed 002's `bully.py`.
//!
//! Each node keeps a status (Down, Election, Reorganization, Normal), its coordinator `c`,
//! the node `h` that last halted it, the task definition `d`, and `Up`, the nodes it halted.
//! Every call is a request answered by a reply; a call without reply within `call_timeout`
//! has failed.
//!
//! - **Election(i)**: call AreYouThere on the higher nodes, one at a time from the next
//!   higher up. If one answers, return and wait to be halted (if nothing comes within
//!   `election_timeout`, start again). If none does: halt itself (status Election, h = i),
//!   call Halt(i) on every lower node (those that answer form Up), NewCoordinator(i) on Up,
//!   then Ready(i, d) on Up, and become Normal. A node of Up that fails to answer
//!   NewCoordinator or Ready restarts the election (the paper's timeout in the last phases).
//!   The calls of one phase go out together rather than one after the other; the paper's
//!   sequential loop sends the same messages, only slower.
//! - **Halt(j)**: status Election, h = j, stop any election of its own; answered.
//!   NewCoordinator(j) is accepted only if h = j and status = Election (then c = j, status
//!   Reorganization); Ready(j, d) only if c = j and status = Reorganization (then Normal).
//!   A call that is not accepted gets no reply. A halted node that hears nothing more within
//!   `election_timeout` starts an election.
//! - **Checks**, every `check_interval`: the coordinator calls AreYouNormal on every other
//!   node, and a "no" starts an election; a normal follower calls AreYouThere on its
//!   coordinator, and no answer starts an election. The checks are failure detection, not
//!   election traffic ([`Message::is_election`]): the paper's AreYouThere serves both the
//!   election (asking the higher nodes) and the followers' check, so the check is its own
//!   message kind here, `AreYouThereCheck` (answered `AreYouThereCheckReply`), and only the
//!   election's `AreYouThere` is counted. Nodes treat the two alike, as before the split: a
//!   node answers either, and a reply from the node it is waiting on answers its pending
//!   AreYouThere of either kind.
//! - **Recovery**: a starting or restarting node clears h and starts an election.
//!
//! Priorities come from `server_config` (one `ip:port` per line, later lines higher).
//! Assertion 1 of the paper (two nodes in Reorganization or Normal agree on c) needs
//! bounded message delays and nodes that do not pause; the simulator shows what happens
//! without them.

use crate::pidset::PidSet;
use crate::{Algorithm, Cluster, Ctx, Duration, Message, Pid, Role, View};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GarciaMolinaParams {
    /// A call without reply within this time has failed (seed 002: 10 s).
    pub call_timeout: Duration,
    /// How often the coordinator and the followers check (seed 002: every 1-2 s); zero
    /// turns the checks off.
    pub check_interval: Duration,
    /// How long a node that deferred to a higher one, or was halted, waits for the rest.
    pub election_timeout: Duration,
}

impl Default for GarciaMolinaParams {
    fn default() -> Self {
        GarciaMolinaParams {
            call_timeout: Duration::from_secs(1),
            check_interval: Duration::from_secs(2),
            election_timeout: Duration::from_secs(5),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum GmMsg {
    /// Election(i): is a higher node there?
    AreYouThere,
    AreYouThereReply,
    /// A follower's periodic check that its coordinator is there (the paper's AreYouThere,
    /// used for failure detection).
    AreYouThereCheck,
    AreYouThereCheckReply,
    AreYouNormal,
    AreYouNormalReply {
        normal: bool,
    },
    Halt,
    HaltAck,
    NewCoordinator,
    NewCoordinatorAck,
    Ready {
        task: u64,
    },
    ReadyAck,
}

impl Message for GmMsg {
    fn kind(&self) -> &'static str {
        match self {
            GmMsg::AreYouThere => "AreYouThere",
            GmMsg::AreYouThereReply => "AreYouThereReply",
            GmMsg::AreYouThereCheck => "AreYouThereCheck",
            GmMsg::AreYouThereCheckReply => "AreYouThereCheckReply",
            GmMsg::AreYouNormal => "AreYouNormal",
            GmMsg::AreYouNormalReply { .. } => "AreYouNormalReply",
            GmMsg::Halt => "Halt",
            GmMsg::HaltAck => "HaltAck",
            GmMsg::NewCoordinator => "NewCoordinator",
            GmMsg::NewCoordinatorAck => "NewCoordinatorAck",
            GmMsg::Ready { .. } => "Ready",
            GmMsg::ReadyAck => "ReadyAck",
        }
    }
    /// The periodic checks (the coordinator's AreYouNormal, the followers' AreYouThere on
    /// their coordinator) are failure detection; everything else is the election.
    fn is_election(&self) -> bool {
        !matches!(
            self,
            GmMsg::AreYouNormal
                | GmMsg::AreYouNormalReply { .. }
                | GmMsg::AreYouThereCheck
                | GmMsg::AreYouThereCheckReply
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum GmTimer {
    /// The current call or phase has had its time.
    Call,
    /// A deferring or halted node has waited long enough.
    Election,
    /// Time for the periodic check.
    Check,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Status {
    Election,
    Reorganization,
    Normal,
}

/// What the node is waiting for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Phase {
    Idle,
    /// Asking the higher node `asking` whether it is there.
    AskingHigher {
        asking: Pid,
    },
    /// A higher node answered: waiting to be halted.
    Deferring,
    /// Halting the lower nodes; `Up` collects those that answered, `missing` the others.
    Halting {
        missing: PidSet,
    },
    /// Waiting for every node of Up to accept NewCoordinator; `missing` still owe it.
    Appointing {
        missing: PidSet,
    },
    /// Waiting for every node of Up to acknowledge Ready.
    Readying {
        missing: PidSet,
    },
    /// A follower checking its coordinator.
    CheckingCoordinator,
    /// The coordinator checking everyone with AreYouNormal.
    CheckingNormal,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GarciaMolina {
    me: Pid,
    priority: u64,
    params: GarciaMolinaParams,
    status: Status,
    coordinator: Option<Pid>,
    halted_by: Option<Pid>,
    task: u64,
    up: PidSet,
    phase: Phase,
}

impl GarciaMolina {
    /// The next higher node above priority `above`, by priority.
    fn next_higher(&self, cluster: &Cluster, above: u64) -> Option<Pid> {
        cluster
            .voters()
            .filter(|&p| cluster.priority(p) > above)
            .min_by_key(|&p| cluster.priority(p))
    }

    fn election(&mut self, ctx: &mut Ctx<'_, Self>) {
        self.status = Status::Election;
        self.coordinator = None;
        ctx.cancel_timer(GmTimer::Election);
        match self.next_higher(ctx.cluster(), self.priority) {
            Some(h) => self.ask(h, ctx),
            None => self.halt_lower(ctx),
        }
    }

    fn ask(&mut self, higher: Pid, ctx: &mut Ctx<'_, Self>) {
        self.phase = Phase::AskingHigher { asking: higher };
        ctx.send(higher, GmMsg::AreYouThere);
        ctx.set_timer(GmTimer::Call, self.params.call_timeout);
    }

    fn halt_lower(&mut self, ctx: &mut Ctx<'_, Self>) {
        self.status = Status::Election;
        self.halted_by = Some(self.me);
        self.up = PidSet::new();
        let cluster = ctx.cluster();
        let lower: PidSet = cluster
            .voters()
            .filter(|&p| cluster.priority(p) < self.priority)
            .collect();
        if lower.is_empty() {
            return self.appoint(ctx);
        }
        for p in lower.iter() {
            ctx.send(p, GmMsg::Halt);
        }
        self.phase = Phase::Halting { missing: lower };
        ctx.set_timer(GmTimer::Call, self.params.call_timeout);
    }

    fn appoint(&mut self, ctx: &mut Ctx<'_, Self>) {
        self.coordinator = Some(self.me);
        self.status = Status::Reorganization;
        if self.up.is_empty() {
            return self.finish(ctx);
        }
        for p in self.up.iter() {
            ctx.send(p, GmMsg::NewCoordinator);
        }
        self.phase = Phase::Appointing {
            missing: self.up.clone(),
        };
        ctx.set_timer(GmTimer::Call, self.params.call_timeout);
    }

    fn ready(&mut self, ctx: &mut Ctx<'_, Self>) {
        self.task += 1;
        for p in self.up.iter() {
            ctx.send(p, GmMsg::Ready { task: self.task });
        }
        self.phase = Phase::Readying {
            missing: self.up.clone(),
        };
        ctx.set_timer(GmTimer::Call, self.params.call_timeout);
    }

    fn finish(&mut self, ctx: &mut Ctx<'_, Self>) {
        self.status = Status::Normal;
        self.phase = Phase::Idle;
        ctx.cancel_timer(GmTimer::Call);
    }

    fn is_coordinator(&self) -> bool {
        self.status == Status::Normal && self.coordinator == Some(self.me)
    }
}

impl Algorithm for GarciaMolina {
    type Msg = GmMsg;
    type Timer = GmTimer;
    type Params = GarciaMolinaParams;

    fn new(me: Pid, cluster: &Cluster, params: &GarciaMolinaParams) -> Self {
        GarciaMolina {
            me,
            priority: cluster.priority(me),
            params: params.clone(),
            status: Status::Election,
            coordinator: None,
            halted_by: None,
            task: 0,
            up: PidSet::new(),
            phase: Phase::Idle,
        }
    }

    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
        // Recovery: h is cleared (it is fresh) and an election starts.
        if self.params.check_interval > Duration::ZERO {
            ctx.set_timer(GmTimer::Check, self.params.check_interval);
        }
        self.election(ctx);
    }

    fn on_message(&mut self, from: Pid, msg: GmMsg, ctx: &mut Ctx<'_, Self>) {
        match msg {
            GmMsg::AreYouThere => ctx.send(from, GmMsg::AreYouThereReply),
            GmMsg::AreYouThereCheck => ctx.send(from, GmMsg::AreYouThereCheckReply),
            GmMsg::AreYouNormal => ctx.send(
                from,
                GmMsg::AreYouNormalReply {
                    normal: self.status == Status::Normal,
                },
            ),
            GmMsg::Halt => {
                self.status = Status::Election;
                self.halted_by = Some(from);
                self.coordinator = None;
                self.phase = Phase::Idle;
                ctx.cancel_timer(GmTimer::Call);
                ctx.set_timer(GmTimer::Election, self.params.election_timeout);
                ctx.send(from, GmMsg::HaltAck);
            }
            GmMsg::NewCoordinator => {
                if self.halted_by == Some(from) && self.status == Status::Election {
                    self.coordinator = Some(from);
                    self.status = Status::Reorganization;
                    ctx.set_timer(GmTimer::Election, self.params.election_timeout);
                    ctx.send(from, GmMsg::NewCoordinatorAck);
                }
            }
            GmMsg::Ready { task } => {
                if self.coordinator == Some(from) && self.status == Status::Reorganization {
                    self.task = task;
                    self.status = Status::Normal;
                    self.phase = Phase::Idle;
                    ctx.cancel_timer(GmTimer::Election);
                    ctx.send(from, GmMsg::ReadyAck);
                }
            }
            // As when both were one kind, a reply from the node asked answers whichever
            // AreYouThere the node is waiting for (a late reply to an earlier call that
            // timed out included).
            GmMsg::AreYouThereReply | GmMsg::AreYouThereCheckReply => match self.phase {
                Phase::AskingHigher { asking } if asking == from => {
                    // A higher node lives: it will take over. Wait to be halted.
                    self.phase = Phase::Deferring;
                    ctx.cancel_timer(GmTimer::Call);
                    ctx.set_timer(GmTimer::Election, self.params.election_timeout);
                }
                Phase::CheckingCoordinator if self.coordinator == Some(from) => {
                    self.phase = Phase::Idle;
                    ctx.cancel_timer(GmTimer::Call);
                }
                _ => {}
            },
            GmMsg::AreYouNormalReply { normal } => {
                if self.phase == Phase::CheckingNormal && !normal {
                    ctx.cancel_timer(GmTimer::Call);
                    self.election(ctx);
                }
            }
            GmMsg::HaltAck => {
                if let Phase::Halting { missing } = &mut self.phase {
                    if missing.remove(from) {
                        self.up.insert(from);
                    }
                    if missing.is_empty() {
                        ctx.cancel_timer(GmTimer::Call);
                        self.appoint(ctx);
                    }
                }
            }
            GmMsg::NewCoordinatorAck => {
                if let Phase::Appointing { missing } = &mut self.phase {
                    missing.remove(from);
                    if missing.is_empty() {
                        self.ready(ctx);
                    }
                }
            }
            GmMsg::ReadyAck => {
                if let Phase::Readying { missing } = &mut self.phase {
                    missing.remove(from);
                    if missing.is_empty() {
                        self.finish(ctx);
                    }
                }
            }
        }
    }

    fn on_timer(&mut self, timer: GmTimer, ctx: &mut Ctx<'_, Self>) {
        match timer {
            GmTimer::Call => match self.phase.clone() {
                // No answer from this higher node: ask the next one up.
                Phase::AskingHigher { asking } => {
                    let above = ctx.cluster().priority(asking);
                    match self.next_higher(ctx.cluster(), above) {
                        Some(h) => self.ask(h, ctx),
                        None => self.halt_lower(ctx),
                    }
                }
                Phase::Halting { .. } => self.appoint(ctx),
                Phase::Appointing { .. } | Phase::Readying { .. } => self.election(ctx),
                Phase::CheckingCoordinator => self.election(ctx),
                Phase::CheckingNormal => self.phase = Phase::Idle,
                Phase::Idle | Phase::Deferring => {}
            },
            GmTimer::Election => {
                if self.status != Status::Normal {
                    self.election(ctx);
                }
            }
            GmTimer::Check => {
                ctx.set_timer(GmTimer::Check, self.params.check_interval);
                if self.status != Status::Normal || self.phase != Phase::Idle {
                    return;
                }
                if self.is_coordinator() {
                    ctx.broadcast(GmMsg::AreYouNormal);
                    self.phase = Phase::CheckingNormal;
                } else if let Some(c) = self.coordinator {
                    ctx.send(c, GmMsg::AreYouThereCheck);
                    self.phase = Phase::CheckingCoordinator;
                }
                ctx.set_timer(GmTimer::Call, self.params.call_timeout);
            }
        }
    }

    fn view(&self) -> View {
        let (role, status) = match self.status {
            Status::Election => (Role::Candidate, "Election"),
            Status::Reorganization => (Role::Candidate, "Reorganization"),
            Status::Normal if self.coordinator == Some(self.me) => (Role::Leader, "Normal"),
            Status::Normal => (Role::Follower, "Normal"),
        };
        View::new(role, self.coordinator, status)
    }
}
