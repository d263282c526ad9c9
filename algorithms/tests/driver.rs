//! The per-node driver: timers by name with tokens, broadcasts, role changes, detector
//! verdicts, and the life cycle of a node, driven through a puppet algorithm that does what
//! each message tells it.

use conclave_algorithms::driver::{Driver, Env, Output, Ready};
use conclave_algorithms::{
    Algorithm, Cluster, Ctx, Duration, Lowest, Member, Message, Pid, Role, Time, View,
};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
enum Order {
    Set(u8, u64),
    Cancel(u8),
    Broadcast,
    SendTo(u32),
    Become(bool),
    Status(bool),
}

impl Message for Order {
    fn kind(&self) -> &'static str {
        "Order"
    }
    fn is_election(&self) -> bool {
        false
    }
}

/// Does what each message orders; on a timer it sends `Broadcast` to process 0; on a
/// suspicion it leads; on leave it broadcasts.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Puppet {
    leading: bool,
    busy: bool,
    started: u32,
}

impl Algorithm for Puppet {
    type Msg = Order;
    type Timer = u8;
    type Params = ();

    fn new(_me: Pid, _cluster: &Cluster, _params: &()) -> Self {
        Puppet {
            leading: false,
            busy: false,
            started: 0,
        }
    }
    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
        self.started += 1;
        ctx.set_timer(9, Duration(1_000));
    }
    fn on_message(&mut self, _from: Pid, msg: Order, ctx: &mut Ctx<'_, Self>) {
        match msg {
            Order::Set(t, after) => ctx.set_timer(t, Duration(after)),
            Order::Cancel(t) => ctx.cancel_timer(t),
            Order::Broadcast => ctx.broadcast(Order::Broadcast),
            Order::SendTo(to) => ctx.send(Pid(to), Order::SendTo(to)),
            Order::Become(leading) => self.leading = leading,
            Order::Status(busy) => self.busy = busy,
        }
    }
    fn on_timer(&mut self, _timer: u8, ctx: &mut Ctx<'_, Self>) {
        ctx.send(Pid(0), Order::Broadcast);
    }
    fn view(&self) -> View {
        let status = if self.busy { "Busy" } else { "Calm" };
        if self.leading {
            View::new(Role::Leader, None, status)
        } else {
            View::new(Role::Idle, None, status)
        }
    }
    fn on_suspect(&mut self, _who: Pid, suspected: bool, _ctx: &mut Ctx<'_, Self>) {
        self.leading = suspected;
    }
    fn on_leave(&mut self, ctx: &mut Ctx<'_, Self>) {
        ctx.broadcast(Order::Broadcast);
    }
}

struct Host {
    cluster: Cluster,
    voters: Vec<Pid>,
    driver: Driver<Puppet>,
    ready: Ready<Order, u8>,
}

impl Host {
    /// Four processes, the third a service; the driver is process 1's.
    fn new() -> Self {
        let mut members: Vec<Member> = ["a", "b", "c", "d"]
            .iter()
            .enumerate()
            .map(|(i, n)| Member::voter(n, i as u64))
            .collect();
        members[2].kind = conclave_algorithms::MemberKind::Service;
        let cluster = Cluster::new(members);
        let voters = cluster.voters().collect();
        Host {
            cluster,
            voters,
            driver: Driver::new(Pid(1)),
            ready: Ready::default(),
        }
    }
    /// Takes what the last input asked for.
    fn take(&mut self) -> (Option<View>, Vec<Output<Order, u8>>) {
        let taken = (self.ready.role, self.ready.outputs.clone());
        self.ready.clear();
        (taken.0, taken.1)
    }
    fn start(&mut self, now: u64) -> (Option<View>, Vec<Output<Order, u8>>) {
        let env = env(&self.cluster, &self.voters, now);
        self.driver.start(&(), env, &mut Lowest, &mut self.ready);
        self.take()
    }
    fn message(&mut self, now: u64, msg: Order) -> (Option<View>, Vec<Output<Order, u8>>) {
        let env = env(&self.cluster, &self.voters, now);
        self.driver
            .on_message(Pid(0), msg, env, &mut Lowest, &mut self.ready);
        self.take()
    }
    fn timer(&mut self, now: u64, timer: u8, token: u64) -> Option<Vec<Output<Order, u8>>> {
        let env = env(&self.cluster, &self.voters, now);
        let fired = self
            .driver
            .on_timer(timer, token, env, &mut Lowest, &mut self.ready);
        let (_, outputs) = self.take();
        fired.then_some(outputs)
    }
}

fn env<'a>(cluster: &'a Cluster, voters: &'a [Pid], now: u64) -> Env<'a> {
    Env {
        now: Time(now),
        cluster,
        voters,
        incarnation: 0,
    }
}

fn token_of(outputs: &[Output<Order, u8>], timer: u8) -> u64 {
    outputs
        .iter()
        .find_map(|o| match o {
            Output::SetTimer {
                timer: t, token, ..
            } if *t == timer => Some(*token),
            _ => None,
        })
        .expect("the timer was set")
}

#[test]
fn start_reports_the_first_view_and_the_timers_it_sets() {
    let mut h = Host::new();
    assert!(!h.driver.is_up());
    assert_eq!(h.driver.view(), View::DOWN);
    let (role, outputs) = h.start(500);
    // From down to a running node's view is a change, even to an idle one.
    assert_eq!(role, Some(View::new(Role::Idle, None, "Calm")));
    assert_eq!(
        outputs,
        vec![Output::SetTimer {
            timer: 9,
            token: 1,
            due: Time(1_500)
        }]
    );
    assert!(h.driver.is_up());
    assert_eq!(h.driver.timers().len(), 1);
}

#[test]
fn a_timer_set_again_restarts_and_its_old_token_is_stale() {
    let mut h = Host::new();
    h.start(0);
    let (_, first) = h.message(10, Order::Set(3, 100));
    let old = token_of(&first, 3);
    let (_, second) = h.message(20, Order::Set(3, 100));
    let new = token_of(&second, 3);
    assert_ne!(old, new);
    assert_eq!(
        second,
        vec![Output::SetTimer {
            timer: 3,
            token: new,
            due: Time(120)
        }]
    );
    // One timer of that name runs: the restarted one.
    assert_eq!(h.driver.timers().iter().filter(|a| a.timer == 3).count(), 1);
    assert_eq!(h.timer(110, 3, old), None, "the first setting is stale");
    assert_eq!(
        h.timer(120, 3, new),
        Some(vec![Output::Send {
            to: Pid(0),
            msg: Order::Broadcast
        }])
    );
    // A timer fires once.
    assert_eq!(h.timer(120, 3, new), None);
}

#[test]
fn a_cancelled_timer_does_not_fire() {
    let mut h = Host::new();
    h.start(0);
    let (_, set) = h.message(0, Order::Set(4, 50));
    let token = token_of(&set, 4);
    let (_, cancel) = h.message(10, Order::Cancel(4));
    assert_eq!(cancel, vec![Output::CancelTimer { timer: 4 }]);
    assert!(h.driver.armed(4, token).is_none());
    assert_eq!(h.timer(50, 4, token), None);
}

#[test]
fn a_broadcast_goes_to_every_other_voter_in_pid_order() {
    let mut h = Host::new();
    h.start(0);
    let (_, outputs) = h.message(0, Order::Broadcast);
    // Not to itself (1), not to the service (2).
    let to: Vec<Pid> = outputs
        .iter()
        .map(|o| match o {
            Output::Send { to, .. } => *to,
            other => panic!("not a send: {other:?}"),
        })
        .collect();
    assert_eq!(to, vec![Pid(0), Pid(3)]);
}

#[test]
fn a_role_change_is_reported_once_and_a_change_of_status_alone_too() {
    let mut h = Host::new();
    h.start(0);
    let (role, _) = h.message(0, Order::Become(true));
    assert_eq!(role.map(|v| v.role), Some(Role::Leader));
    let (role, _) = h.message(0, Order::Become(true));
    assert_eq!(role, None, "no change, nothing reported");
    let (role, _) = h.message(0, Order::Status(true));
    assert_eq!(role, Some(View::new(Role::Leader, None, "Busy")));
    assert_eq!(h.driver.view(), View::new(Role::Leader, None, "Busy"));
}

#[test]
fn a_verdict_reaches_the_node_only_when_it_is_news() {
    let mut h = Host::new();
    h.start(0);
    let suspect = |h: &mut Host, suspected: bool| {
        let env = env(&h.cluster, &h.voters, 0);
        let (driver, ready) = (&mut h.driver, &mut h.ready);
        let news = driver.on_suspect(Pid(3), suspected, env, &mut Lowest, ready);
        let role = ready.role.map(|v| v.role);
        ready.clear();
        (news, role)
    };
    assert_eq!(
        suspect(&mut h, false),
        (false, None),
        "trusted from the start"
    );
    assert_eq!(suspect(&mut h, true), (true, Some(Role::Leader)));
    assert!(h.driver.suspects(Pid(3)));
    assert_eq!(suspect(&mut h, true), (false, None));
    assert_eq!(suspect(&mut h, false), (true, Some(Role::Idle)));
}

#[test]
fn a_stop_loses_state_timers_and_verdicts_and_a_restart_is_fresh() {
    let mut h = Host::new();
    let (_, started) = h.start(0);
    let token = token_of(&started, 9);
    let env = env(&h.cluster, &h.voters, 0);
    assert!(h
        .driver
        .on_suspect(Pid(0), true, env, &mut Lowest, &mut h.ready));
    h.ready.clear();
    assert!(h.driver.stop(), "a leader going down changes its view");
    assert!(!h.driver.is_up());
    assert_eq!(h.driver.view(), View::DOWN);
    assert!(h.driver.timers().is_empty());
    assert!(!h.driver.suspects(Pid(0)));
    assert!(!h.driver.stop(), "already down");
    // Inputs to a stopped node do nothing.
    assert_eq!(h.message(5, Order::Broadcast), (None, vec![]));
    assert_eq!(h.timer(1_000, 9, token), None, "lost in the crash");
    // A restart is a fresh state, and its timer's token is not the old one.
    let (role, outputs) = h.start(2_000);
    assert_eq!(role, Some(View::new(Role::Idle, None, "Calm")));
    assert_eq!(h.driver.node().map(|n| n.started), Some(1));
    assert_ne!(token_of(&outputs, 9), token);
    assert_eq!(h.timer(1_000, 9, token), None);
}

#[test]
fn a_leave_carries_out_the_leave_handler_then_the_host_stops_the_node() {
    let mut h = Host::new();
    h.start(0);
    let env = env(&h.cluster, &h.voters, 7);
    h.driver.leave(env, &mut Lowest, &mut h.ready);
    let (_, outputs) = h.take();
    assert_eq!(outputs.len(), 2, "a broadcast to the two other voters");
    assert!(
        h.driver.is_up(),
        "the host stops it after carrying the leave out"
    );
    assert!(
        h.driver.stop(),
        "from its running view to the view of a node down"
    );
    assert!(!h.driver.is_up());
}
