//! No input may make a run go on for ever: a loop that keeps virtual time from advancing
//! is stopped and named, and so is a run past its budget of events.

use conclave_algorithms::bully::{Bully, BullyParams, BullyTimer};
use conclave_algorithms::{Algorithm, Cluster, Ctx, Duration, Member, Pid, Time, View};
use conclave_sim::run::{run_scenario, RunOptions};
use conclave_sim::scenario::Scenario;
use conclave_sim::world::{Budget, Cut, World, WorldConfig};

/// Bully whose heartbeat tick sets itself again with no delay: a loop at one instant.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Spin(Bully);

impl Algorithm for Spin {
    type Msg = <Bully as Algorithm>::Msg;
    type Timer = BullyTimer;
    type Params = BullyParams;
    fn new(me: Pid, cluster: &Cluster, params: &BullyParams) -> Self {
        Spin(Bully::new(me, cluster, params))
    }
    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
        self.0.on_start(ctx);
        ctx.set_timer(BullyTimer::HeartbeatTick, Duration::from_millis(5));
    }
    fn on_message(&mut self, from: Pid, msg: Self::Msg, ctx: &mut Ctx<'_, Self>) {
        self.0.on_message(from, msg, ctx)
    }
    fn on_timer(&mut self, timer: BullyTimer, ctx: &mut Ctx<'_, Self>) {
        if timer == BullyTimer::HeartbeatTick {
            ctx.set_timer(BullyTimer::HeartbeatTick, Duration(0));
        } else {
            self.0.on_timer(timer, ctx)
        }
    }
    fn view(&self) -> View {
        self.0.view()
    }
}

#[test]
fn a_loop_with_no_delay_is_stopped_and_named() {
    let cluster = Cluster::new(vec![Member::voter("a", 1), Member::voter("b", 2)]);
    let mut world = World::<Spin>::new(
        cluster,
        BullyParams::default(),
        WorldConfig::starting_together(2),
    );
    let budget = Budget {
        max_events_per_instant: 10_000,
        ..Budget::default()
    };
    let cut = world.run_within(Time(10_000_000), &budget).unwrap_err();
    match cut {
        Cut::Livelock { at, limit, events } => {
            assert_eq!(at, Time(5_000), "the loop starts at 5 ms");
            assert_eq!(limit, 10_000);
            assert_eq!(
                events,
                ["timer HeartbeatTick of a", "timer HeartbeatTick of b"]
            );
        }
        other => panic!("{other:?}"),
    }
    // The real Bully runs to the end within the same budget.
    let cluster = Cluster::new(vec![Member::voter("a", 1), Member::voter("b", 2)]);
    let mut world = World::<Bully>::new(
        cluster,
        BullyParams::default(),
        WorldConfig::starting_together(2),
    );
    assert_eq!(world.run_within(Time(10_000_000), &budget), Ok(()));
    assert_eq!(world.now(), Time(10_000_000));
}

#[test]
fn a_run_past_its_budget_of_events_is_incomplete_never_ok() {
    let s = Scenario::from_str(
        r#"Scenario(
            algorithm: Bully(),
            nodes: [(name: "a", id: 1), (name: "b", id: 2)],
            run_for: "1000000h",
            expect: [AtMostOneLeader],
        )"#,
        "long.ron",
    )
    .unwrap();
    let opts = RunOptions {
        budget: Budget {
            max_events: Some(1_000),
            ..Budget::default()
        },
        ..RunOptions::default()
    };
    let r = run_scenario(&s, "long.ron", 0, &opts);
    assert!(!r.ok, "a run cut short is never ok");
    assert!(r.events > 0 && r.events <= 1_000, "{} events", r.events);
    assert_eq!(
        r.incomplete.as_deref(),
        Some("1000 events reached (--max-events)")
    );
    assert!(r.end_time_us < 3_600_000_000);
}
