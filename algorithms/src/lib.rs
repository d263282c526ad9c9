//! Leader-election algorithms as sans-IO state machines.
//!
//! Every algorithm is a type implementing [`Algorithm`]: one value is one node's state. A driver
//! (the simulator, the explorer, or a real-socket runtime) hands the node its inputs (start, a
//! message, a timer) together with a [`Context`]; the node records what it wants done there
//! (send, broadcast, set or cancel a named timer) and the driver does it. A node never reads a
//! clock, opens a socket or draws a random number: time comes from the context, randomness is
//! injected by the driver, so the same code is simulated, model checked and run for real.
//!
//! Role changes are not an effect the node must remember to emit: the driver reads
//! [`Algorithm::view`] after every input and records a role change whenever it differs.
//!
//! ```
//! use conclave_algorithms::{Algorithm, Cluster, Context, Effect, Member, Pid, Role};
//! use conclave_algorithms::bully::{Bully, BullyParams, BullyMsg};
//!
//! // Three nodes with priorities 1, 2, 3; node index = Pid.
//! let cluster = Cluster::new(vec![Member::voter("a", 1), Member::voter("b", 2), Member::voter("c", 3)]);
//! let params = BullyParams::default();
//! let mut a = Bully::new(Pid(0), &cluster, &params);
//!
//! // Start node a: it sends ELECTION to every higher node and waits for an answer.
//! let mut effects = Vec::new();
//! a.on_start(&mut Context::new(Default::default(), Pid(0), &cluster, &mut effects));
//! let sent: Vec<_> = effects.iter().filter_map(|e| match e {
//!     Effect::Send { to, msg } => Some((*to, msg.clone())),
//!     _ => None,
//! }).collect();
//! assert_eq!(sent, vec![(Pid(1), BullyMsg::Election), (Pid(2), BullyMsg::Election)]);
//! assert_eq!(a.view().role, Role::Candidate);
//!
//! // An OK from c means a higher node takes over: a waits for COORDINATOR.
//! effects.clear();
//! a.on_message(Pid(2), BullyMsg::Ok, &mut Context::new(Default::default(), Pid(0), &cluster, &mut effects));
//! assert_eq!(a.view().status, "WaitingForCoordinator");
//! ```
//!
//! Feature `net` (off by default, so the simulator builds without it) adds the module `net`:
//! the wire format of real nodes, length-prefixed frames over TCP with an optional
//! HMAC-SHA256 cluster key, and tokio helpers to read and write them.

pub mod async_bully;
pub mod bully;
pub mod driver;
pub mod garcia_molina;
pub mod gcd;
pub mod invitation;
pub mod logserver;
#[cfg(feature = "net")]
pub mod net;
pub mod pidset;
pub mod quorum;
pub mod time;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fmt::Debug;
use std::hash::Hash;

pub use time::{Duration, Time};

/// A process of the world: an index into [`Cluster::members`].
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Pid(pub u32);

impl Pid {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// What part a process plays in the world.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MemberKind {
    /// Takes part in elections; counted by the properties.
    Voter,
    /// A service the voters use (registry, group daemon, log server); never a leader.
    Service,
}

/// The static facts about one process, as a scenario declares them.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Member {
    pub name: String,
    /// Priority: higher wins. A pair such as the GCD lab's (days, student id) is packed so
    /// that the integer order is the pair's lexicographic order.
    pub priority: u64,
    pub address: Option<String>,
    pub kind: MemberKind,
}

impl Member {
    pub fn voter(name: &str, priority: u64) -> Self {
        Member {
            name: name.to_string(),
            priority,
            address: None,
            kind: MemberKind::Voter,
        }
    }
}

/// Everything a node may know about the world before it starts: who exists and their
/// priorities. Dynamic knowledge (who is alive, who leads) lives in the node's state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Cluster {
    pub members: Vec<Member>,
}

impl Cluster {
    pub fn new(members: Vec<Member>) -> Self {
        Cluster { members }
    }
    pub fn len(&self) -> usize {
        self.members.len()
    }
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
    pub fn member(&self, pid: Pid) -> &Member {
        &self.members[pid.index()]
    }
    pub fn priority(&self, pid: Pid) -> u64 {
        self.members[pid.index()].priority
    }
    pub fn name(&self, pid: Pid) -> &str {
        &self.members[pid.index()].name
    }
    /// Every service process, in Pid order.
    pub fn services(&self) -> impl Iterator<Item = Pid> + '_ {
        self.members
            .iter()
            .enumerate()
            .filter(|(_, m)| m.kind == MemberKind::Service)
            .map(|(i, _)| Pid(i as u32))
    }
    /// Every voter, in Pid order.
    pub fn voters(&self) -> impl Iterator<Item = Pid> + '_ {
        self.members
            .iter()
            .enumerate()
            .filter(|(_, m)| m.kind == MemberKind::Voter)
            .map(|(i, _)| Pid(i as u32))
    }
}

/// A node's role, as the properties read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Role {
    /// Started, not in an election, following nobody.
    Idle,
    /// Running an election.
    Candidate,
    /// Following a leader (named in [`View::leader`]).
    Follower,
    /// Considers itself the leader.
    Leader,
    /// A service process, never a leader.
    Service,
}

/// What a node believes, read by the driver after every input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct View {
    pub role: Role,
    /// The leader this node names, if any (itself when `role` is `Leader`).
    pub leader: Option<Pid>,
    /// The algorithm's own name for its state ("Normal", "Reorganization"...), for traces.
    pub status: &'static str,
    /// The group number, for algorithms that form groups (the invitation algorithm); 0
    /// for the others.
    pub group: u64,
}

impl View {
    /// A view outside any group.
    pub const fn new(role: Role, leader: Option<Pid>, status: &'static str) -> Self {
        View {
            role,
            leader,
            status,
            group: 0,
        }
    }
}

/// A source of random numbers the driver lends a node: the simulator draws from the run's
/// seed, the explorer picks deterministically. Nodes never own randomness.
pub trait Random {
    /// A number in `lo..=hi` (`lo` if `hi < lo`).
    fn between(&mut self, lo: u64, hi: u64) -> u64;
}

/// The randomness of a driver that has none: always the lowest value.
pub struct Lowest;

impl Random for Lowest {
    fn between(&mut self, lo: u64, _hi: u64) -> u64 {
        lo
    }
}

/// A failure detector, as the world provides it to algorithms that assume one (Stoller's).
///
/// It suspects a process that is crashed, paused, or unreachable from the observer, and
/// trusts it again once it is up and reachable; each verdict reaches the observer `delay`
/// after the change.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Detector {
    /// Never wrong, only late by `delay`.
    Perfect { delay: Duration },
    /// Like `Perfect`, but until `mistakes_until` it also suspects a live, reachable process
    /// now and then (about once every `mistake_every`), and corrects itself `delay` later.
    EventuallyPerfect {
        delay: Duration,
        mistakes_until: Duration,
        mistake_every: Duration,
    },
}

impl Detector {
    pub fn delay(&self) -> Duration {
        match self {
            Detector::Perfect { delay } | Detector::EventuallyPerfect { delay, .. } => *delay,
        }
    }
}

/// A message type of an algorithm.
pub trait Message: Clone + Eq + Hash + Debug + Serialize + DeserializeOwned {
    /// A short stable name of the message's kind ("Election", "Ok"...), used in counts.
    fn kind(&self) -> &'static str;
    /// Whether the message belongs to an election (counted as election traffic) rather than
    /// to failure detection or bookkeeping (heartbeats, probes, reports).
    fn is_election(&self) -> bool;
}

/// What a node asks its driver to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect<M, T> {
    /// Send `msg` to one process.
    Send { to: Pid, msg: M },
    /// Send `msg` to every other voter (as a LAN broadcast would).
    Broadcast { msg: M },
    /// Start the named timer; if it is already running it is restarted.
    SetTimer { timer: T, after: Duration },
    /// Stop the named timer if it is running.
    CancelTimer { timer: T },
}

/// The node's window on the world during one input: the time, its identity, the static
/// cluster, the driver's randomness, and the list its effects are recorded into.
pub struct Context<'a, M, T> {
    now: Time,
    me: Pid,
    cluster: &'a Cluster,
    effects: &'a mut Vec<Effect<M, T>>,
    random: Option<&'a mut dyn Random>,
    incarnation: u64,
}

impl<'a, M, T> Context<'a, M, T> {
    /// A context without randomness: [`Context::random_between`] returns its lower bound.
    pub fn new(
        now: Time,
        me: Pid,
        cluster: &'a Cluster,
        effects: &'a mut Vec<Effect<M, T>>,
    ) -> Self {
        Context {
            now,
            me,
            cluster,
            effects,
            random: None,
            incarnation: 0,
        }
    }
    /// Sets [`Context::incarnation`].
    pub fn with_incarnation(mut self, incarnation: u64) -> Self {
        self.incarnation = incarnation;
        self
    }
    /// A number that tells this start of the process from its earlier ones, as a counter in
    /// stable storage would: 0 at the first start, and greater after every restart (the
    /// drivers count the restarts of the whole run). Algorithms that must tell a process's
    /// lives apart (Stoller's incarnations) read it here, never from the clock: two lives
    /// can begin at the same instant.
    ///
    /// In [`Algorithm::on_suspect`] it is the count when the failure detector reached its
    /// verdict: a suspicion is about a life of that process whose incarnation is at most
    /// this, never about a later one (the verdict may arrive after the process restarted).
    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }
    /// Lends the node a source of random numbers for this input.
    pub fn with_random(mut self, random: &'a mut dyn Random) -> Self {
        self.random = Some(random);
        self
    }
    pub fn now(&self) -> Time {
        self.now
    }
    pub fn me(&self) -> Pid {
        self.me
    }
    pub fn cluster(&self) -> &'a Cluster {
        self.cluster
    }
    pub fn send(&mut self, to: Pid, msg: M) {
        self.effects.push(Effect::Send { to, msg });
    }
    pub fn broadcast(&mut self, msg: M) {
        self.effects.push(Effect::Broadcast { msg });
    }
    pub fn set_timer(&mut self, timer: T, after: Duration) {
        self.effects.push(Effect::SetTimer { timer, after });
    }
    pub fn cancel_timer(&mut self, timer: T) {
        self.effects.push(Effect::CancelTimer { timer });
    }
    /// A number in `lo..=hi` from the driver.
    pub fn random_between(&mut self, lo: u64, hi: u64) -> u64 {
        match &mut self.random {
            Some(r) => r.between(lo, hi),
            None => lo,
        }
    }
    /// A duration in `lo..=hi` from the driver.
    pub fn random_duration(&mut self, lo: Duration, hi: Duration) -> Duration {
        Duration(self.random_between(lo.0, hi.0))
    }
}

/// Shorthand for the context type of algorithm `A`.
pub type Ctx<'a, A> = Context<'a, <A as Algorithm>::Msg, <A as Algorithm>::Timer>;

/// A leader-election algorithm: one value is one node's (volatile) state.
///
/// State is `Clone + Eq + Hash` so the explorer can store, compare and fingerprint it; keep
/// static configuration in the [`Cluster`] and the parameters, not in the state.
pub trait Algorithm: Clone + Eq + Hash + Debug + Sized {
    type Msg: Message;
    type Timer: Copy + Eq + Ord + Hash + Debug + Serialize;
    /// Scenario parameters shared by every node (timeouts, intervals).
    type Params: Clone + Debug;

    /// A fresh node: at first start, and again after a crash (volatile state is lost).
    fn new(me: Pid, cluster: &Cluster, params: &Self::Params) -> Self;
    /// The node starts, or restarts after a crash.
    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>);
    /// A message arrives.
    fn on_message(&mut self, from: Pid, msg: Self::Msg, ctx: &mut Ctx<'_, Self>);
    /// A timer the node set fires.
    fn on_timer(&mut self, timer: Self::Timer, ctx: &mut Ctx<'_, Self>);
    /// What the node currently believes.
    fn view(&self) -> View;

    /// The failure detector the driver must run for this algorithm, reporting its verdicts
    /// through [`Algorithm::on_suspect`]; none by default.
    fn detector(_params: &Self::Params) -> Option<Detector> {
        None
    }
    /// The failure detector changed its verdict on `who`: suspected of having failed, or
    /// trusted again.
    fn on_suspect(&mut self, _who: Pid, _suspected: bool, _ctx: &mut Ctx<'_, Self>) {}
    /// The node leaves gracefully (it was asked to): its last effects go out, then it stops.
    fn on_leave(&mut self, _ctx: &mut Ctx<'_, Self>) {}
}
