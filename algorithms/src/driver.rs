//! What every host does around an algorithm's handlers, written once.
//!
//! An [`Algorithm`] only records what it wants done ([`Effect`]s). Between those effects and
//! a network there is bookkeeping that every host needs and that must be the same in all of
//! them, or a run on real sockets would not be the run the simulator predicted:
//!
//! - a broadcast goes to every other voter, in [`Pid`] order;
//! - timers are kept by name: setting a running timer restarts it, each setting gets a
//!   token, and a timer that fires with a stale token (cancelled, set again, or lost in a
//!   crash) is ignored;
//! - a role change is found by comparing [`Algorithm::view`] after each input with the view
//!   the host was last told, and reported before the input's sends;
//! - a failure detector's verdict reaches the node only when it is news to it.
//!
//! [`Driver`] is one node's driver, in the manner of raft-rs's `RawNode`: the host hands it
//! an input (start, message, timer, detector notice, leave) with an [`Env`] (the time, the
//! cluster) and its randomness, and gets the role change if there was one, then the sends
//! (broadcasts expanded) and timer operations, in the order the handler asked for them. A
//! host collects them in a [`Ready`], carries them out and calls [`Ready::clear`] (raft-rs's
//! `advance`), or takes them one by one as an [`Outputs`] (the simulator, which carries
//! each out at once). The simulator, the runtime on real sockets, and every test drive nodes
//! through it.
//!
//! The explorer keeps timers in its own packed state (a timer there is armed or not, with no
//! token), so it uses only the expansion of effects, [`carry_out`], through a [`Host`].
//!
//! ```
//! use conclave_algorithms::driver::{Driver, Env, Output, Ready};
//! use conclave_algorithms::bully::{Bully, BullyMsg, BullyParams};
//! use conclave_algorithms::{Cluster, Lowest, Member, Pid, Role, Time};
//!
//! let cluster = Cluster::new(vec![Member::voter("a", 1), Member::voter("b", 2), Member::voter("c", 3)]);
//! let voters: Vec<Pid> = cluster.voters().collect();
//! let params = BullyParams::default();
//! let mut a = Driver::<Bully>::new(Pid(0));
//! let mut ready = Ready::default();
//! let env = |now| Env { now: Time(now), cluster: &cluster, voters: &voters, incarnation: 0 };
//!
//! a.start(&params, env(0), &mut Lowest, &mut ready);
//! assert_eq!(ready.role.map(|v| v.role), Some(Role::Candidate));
//! let sends: Vec<_> = ready.outputs.iter().filter_map(|o| match o {
//!     Output::Send { to, msg } => Some((*to, msg.clone())),
//!     _ => None,
//! }).collect();
//! assert_eq!(sends, vec![(Pid(1), BullyMsg::Election), (Pid(2), BullyMsg::Election)]);
//! ready.clear();
//!
//! // An answer from c: a waits for c's COORDINATOR now (a change of status), with a timer.
//! a.on_message(Pid(2), BullyMsg::Ok, env(5_000), &mut Lowest, &mut ready);
//! assert_eq!(ready.role.map(|v| v.status), Some("WaitingForCoordinator"));
//! assert!(ready.outputs.iter().any(|o| matches!(o, Output::SetTimer { .. })));
//! ```

use crate::{Algorithm, Cluster, Context, Duration, Effect, Pid, Random, Role, Time, View};

/// What a host lends a node for one input: the time, the static cluster, the voters in
/// [`Pid`] order (a broadcast's recipients), and the node's incarnation (see
/// [`Context::incarnation`]).
#[derive(Clone, Copy)]
pub struct Env<'a> {
    pub now: Time,
    pub cluster: &'a Cluster,
    pub voters: &'a [Pid],
    pub incarnation: u64,
}

/// A running timer of a node: its name, the token of its last setting, when it is due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Armed<T> {
    pub timer: T,
    pub token: u64,
    pub due: Time,
}

/// One thing the host must do, in the order the handler asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output<M, T> {
    /// Put `msg` on its way to `to` (a broadcast comes as one send per other voter).
    Send { to: Pid, msg: M },
    /// Fire `timer` at `due`, handing [`Driver::on_timer`] this `token`; a timer of that
    /// name set before is void (its token is stale).
    SetTimer { timer: T, token: u64, due: Time },
    /// The timer is void; a host may forget it.
    CancelTimer { timer: T },
}

/// Where a [`Driver`] puts what an input asks of the host, as it goes: first the role
/// change, if any, then the sends and timer operations in the order the handler asked.
///
/// A host that carries them out at once (the simulator) implements it; others collect them
/// in a [`Ready`].
pub trait Outputs<M, T> {
    /// The node's view changed (any field of [`View`]): hosts record it before the
    /// outputs that follow (the node changed its mind, then acted).
    fn role(&mut self, view: View);
    fn output(&mut self, output: Output<M, T>);
}

/// What one input asked of the host, collected: a role change to record, then the outputs to
/// carry out.
pub struct Ready<M, T> {
    pub role: Option<View>,
    pub outputs: Vec<Output<M, T>>,
}

impl<M, T> Default for Ready<M, T> {
    fn default() -> Self {
        Ready {
            role: None,
            outputs: Vec::new(),
        }
    }
}

impl<M, T> Outputs<M, T> for Ready<M, T> {
    fn role(&mut self, view: View) {
        self.role = Some(view);
    }
    fn output(&mut self, output: Output<M, T>) {
        self.outputs.push(output);
    }
}

impl<M, T> Ready<M, T> {
    /// Forgets what was carried out (raft-rs's `advance`); the room is kept.
    pub fn clear(&mut self) {
        self.role = None;
        self.outputs.clear();
    }
    /// Whether the input asked for nothing.
    pub fn is_empty(&self) -> bool {
        self.role.is_none() && self.outputs.is_empty()
    }
}

/// Where [`carry_out`] puts a handler's effects.
pub trait Host<M, T> {
    fn send(&mut self, to: Pid, msg: M);
    fn set_timer(&mut self, timer: T, after: Duration);
    fn cancel_timer(&mut self, timer: T);
}

/// Carries out a handler's effects through `host`, in the order asked: a broadcast is one
/// send to every voter but `me`, in `voters`' order.
#[inline]
pub fn carry_out<M: Clone, T>(
    effects: impl IntoIterator<Item = Effect<M, T>>,
    me: Pid,
    voters: &[Pid],
    host: &mut impl Host<M, T>,
) {
    for e in effects {
        match e {
            Effect::Send { to, msg } => host.send(to, msg),
            Effect::Broadcast { msg } => {
                for &to in voters {
                    if to != me {
                        host.send(to, msg.clone());
                    }
                }
            }
            Effect::SetTimer { timer, after } => host.set_timer(timer, after),
            Effect::CancelTimer { timer } => host.cancel_timer(timer),
        }
    }
}

/// Whether two views differ in nothing: role, leader, status and group.
#[inline]
pub fn same_view(a: &View, b: &View) -> bool {
    // Every field, so that a field added to `View` does not go unnoticed here. The status
    // is a literal: compared by address first (this follows every input).
    let View {
        role,
        leader,
        status,
        group,
    } = *a;
    role == b.role
        && leader == b.leader
        && group == b.group
        && (std::ptr::eq(status, b.status) || status == b.status)
}

impl View {
    /// The view of a process that is not running (never started, crashed or left).
    pub const DOWN: View = View::new(Role::Idle, None, "Down");
}

/// One node and its driver's bookkeeping: the algorithm's state while it runs, its timers,
/// the view its host was last told, and the failure detector's verdicts it was told.
#[derive(Clone, Debug)]
pub struct Driver<A: Algorithm> {
    me: Pid,
    node: Option<A>,
    view: View,
    timers: Vec<Armed<A::Timer>>,
    /// Tokens given so far; never reset, so a timer of an earlier life is stale.
    tokens: u64,
    /// Per process, whether the node was last told it is suspected (grown when needed).
    suspects: Vec<bool>,
    /// The handler's effects, kept from one input to the next for their room.
    effects: Vec<Effect<A::Msg, A::Timer>>,
}

/// The timers and outputs a handler's effects go to, as [`carry_out`]'s host.
struct Sink<'a, T, O> {
    now: Time,
    timers: &'a mut Vec<Armed<T>>,
    tokens: &'a mut u64,
    out: &'a mut O,
}

impl<M, T: Copy + Eq, O: Outputs<M, T>> Host<M, T> for Sink<'_, T, O> {
    #[inline]
    fn send(&mut self, to: Pid, msg: M) {
        self.out.output(Output::Send { to, msg });
    }
    #[inline]
    fn set_timer(&mut self, timer: T, after: Duration) {
        *self.tokens += 1;
        let armed = Armed {
            timer,
            token: *self.tokens,
            due: self.now + after,
        };
        match self.timers.iter_mut().find(|a| a.timer == timer) {
            Some(slot) => *slot = armed,
            None => self.timers.push(armed),
        }
        self.out.output(Output::SetTimer {
            timer,
            token: armed.token,
            due: armed.due,
        });
    }
    #[inline]
    fn cancel_timer(&mut self, timer: T) {
        self.timers.retain(|a| a.timer != timer);
        self.out.output(Output::CancelTimer { timer });
    }
}

impl<A: Algorithm> Driver<A> {
    /// The driver of process `me`, not started.
    pub fn new(me: Pid) -> Self {
        Driver {
            me,
            node: None,
            view: View::DOWN,
            timers: Vec::new(),
            tokens: 0,
            suspects: Vec::new(),
            effects: Vec::new(),
        }
    }
    /// As [`Driver::new`]: not started, no timers, no tokens given, no verdicts told (the
    /// room of its lists is kept).
    pub fn reset(&mut self) {
        let Driver {
            me: _,
            node,
            view,
            timers,
            tokens,
            suspects,
            effects,
        } = self;
        *node = None;
        *view = View::DOWN;
        timers.clear();
        *tokens = 0;
        suspects.clear();
        effects.clear();
    }
    pub fn me(&self) -> Pid {
        self.me
    }
    /// The algorithm's state, while the node runs.
    pub fn node(&self) -> Option<&A> {
        self.node.as_ref()
    }
    pub fn is_up(&self) -> bool {
        self.node.is_some()
    }
    /// The view the host was last told ([`View::DOWN`] when the node is not running).
    pub fn view(&self) -> View {
        self.view
    }
    /// The running timers, in the order they were first set.
    pub fn timers(&self) -> &[Armed<A::Timer>] {
        &self.timers
    }
    /// The timer `timer` if it runs with this token (not cancelled, set again or lost).
    #[inline]
    pub fn armed(&self, timer: A::Timer, token: u64) -> Option<Armed<A::Timer>> {
        self.timers
            .iter()
            .find(|a| a.timer == timer && a.token == token)
            .copied()
    }
    /// Where the timer `timer` runs with this token among [`Driver::timers`], if it does.
    #[inline]
    pub fn armed_at(&self, timer: A::Timer, token: u64) -> Option<usize> {
        self.timers
            .iter()
            .position(|a| a.timer == timer && a.token == token)
    }
    /// Whether the node was last told that `who` is suspected.
    pub fn suspects(&self, who: Pid) -> bool {
        self.suspects.get(who.index()).copied().unwrap_or(false)
    }

    /// The node starts (a fresh state: at first start or after a crash) and runs its start
    /// handler.
    pub fn start(
        &mut self,
        params: &A::Params,
        env: Env<'_>,
        random: &mut dyn Random,
        out: &mut impl Outputs<A::Msg, A::Timer>,
    ) {
        self.node = Some(A::new(self.me, env.cluster, params));
        self.handle(env, random, out, |node, ctx| node.on_start(ctx));
    }

    /// A message arrives. Nothing happens if the node is not running.
    #[inline]
    pub fn on_message(
        &mut self,
        from: Pid,
        msg: A::Msg,
        env: Env<'_>,
        random: &mut dyn Random,
        out: &mut impl Outputs<A::Msg, A::Timer>,
    ) {
        self.handle(env, random, out, |node, ctx| {
            node.on_message(from, msg, ctx)
        });
    }

    /// A timer fires with the token it was set with. Returns false, and runs nothing, when
    /// the token is stale: the timer was cancelled, set again, or lost in a crash.
    #[inline]
    pub fn on_timer(
        &mut self,
        timer: A::Timer,
        token: u64,
        env: Env<'_>,
        random: &mut dyn Random,
        out: &mut impl Outputs<A::Msg, A::Timer>,
    ) -> bool {
        let Some(slot) = self.armed_at(timer, token) else {
            return false;
        };
        self.on_timer_at(slot, env, random, out);
        true
    }

    /// [`Driver::on_timer`] for the running timer at `slot` of [`Driver::timers`], as
    /// [`Driver::armed_at`] found it (a host that looked it up already does not again).
    #[inline]
    pub fn on_timer_at(
        &mut self,
        slot: usize,
        env: Env<'_>,
        random: &mut dyn Random,
        out: &mut impl Outputs<A::Msg, A::Timer>,
    ) {
        let timer = self.timers.swap_remove(slot).timer;
        self.handle(env, random, out, |node, ctx| node.on_timer(timer, ctx));
    }

    /// The failure detector's verdict on `who`, as the host's truth has it. Returns false,
    /// and runs nothing, when it is not news to the node (or the node is not running).
    /// `env.incarnation` is the count of restarts when the verdict was reached.
    pub fn on_suspect(
        &mut self,
        who: Pid,
        suspected: bool,
        env: Env<'_>,
        random: &mut dyn Random,
        out: &mut impl Outputs<A::Msg, A::Timer>,
    ) -> bool {
        if self.node.is_none() || self.suspects(who) == suspected {
            return false;
        }
        if self.suspects.len() <= who.index() {
            self.suspects
                .resize(env.cluster.len().max(who.index() + 1), false);
        }
        self.suspects[who.index()] = suspected;
        self.handle(env, random, out, |node, ctx| {
            node.on_suspect(who, suspected, ctx)
        });
        true
    }

    /// The node is asked to leave: its leave handler's effects go to `out`. The host
    /// carries them out, then calls [`Driver::stop`].
    pub fn leave(
        &mut self,
        env: Env<'_>,
        random: &mut dyn Random,
        out: &mut impl Outputs<A::Msg, A::Timer>,
    ) {
        self.handle(env, random, out, |node, ctx| node.on_leave(ctx));
    }

    /// The node stops (a crash, or the end of a leave): its volatile state, its timers and
    /// the verdicts it was told are lost. Returns whether its view changed (to
    /// [`View::DOWN`]).
    pub fn stop(&mut self) -> bool {
        self.node = None;
        self.timers.clear();
        self.suspects.clear();
        let changed = !same_view(&self.view, &View::DOWN);
        self.view = View::DOWN;
        changed
    }

    /// Runs one handler and puts what it asked for into `out`.
    #[inline]
    fn handle(
        &mut self,
        env: Env<'_>,
        random: &mut dyn Random,
        out: &mut impl Outputs<A::Msg, A::Timer>,
        f: impl FnOnce(&mut A, &mut crate::Ctx<'_, A>),
    ) {
        let Some(node) = self.node.as_mut() else {
            return;
        };
        let mut effects = std::mem::take(&mut self.effects);
        let ctx = Context::new(env.now, self.me, env.cluster, &mut effects)
            .with_incarnation(env.incarnation);
        f(node, &mut ctx.with_random(random));
        let view = node.view();
        if !same_view(&view, &self.view) {
            self.view = view;
            out.role(view);
        }
        let mut sink = Sink {
            now: env.now,
            timers: &mut self.timers,
            tokens: &mut self.tokens,
            out,
        };
        // Taken off the end of the reversed list: a handler asks for one to a few effects,
        // and `drain` costs more to set up and finish than that (this follows every input).
        effects.reverse();
        carry_out(
            std::iter::from_fn(|| effects.pop()),
            self.me,
            env.voters,
            &mut sink,
        );
        self.effects = effects;
    }
}
