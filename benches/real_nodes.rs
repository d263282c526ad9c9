//! Real nodes on loopback against the simulator: how long after the leader's
//! process is killed every other node names the same new leader, and how many election
//! messages that takes, for the textbook Bully with heartbeats, on N = 4 and 16 nodes.
//!
//! - `kill_leader/bully/real/N=..`: N in-process nodes (the `net` runtime, one tokio
//!   current-thread runtime, as `conclave node` runs one node) on 127.0.0.1, ports from
//!   binding :0. Each iteration starts a new cluster, waits until every node names the
//!   highest, waits 300 ms more plus a phase that moves by 7 ms from one iteration to the
//!   next (so the kill falls all over the heartbeat period), then aborts the leader's task
//!   (a crash: its sockets close, nothing is sent) and measures the wall time from the
//!   abort to the instant the last surviving node names the new leader, from the nodes'
//!   `views` channels (each change stamped as it is published). Set-up and tear-down are
//!   not timed.
//! - `kill_leader/bully/simulator/N=..`: the simulator's prediction as a measurement: the
//!   same members and parameters, every node started at 0, a constant message delay of
//!   [`DELAY_US`] (loopback's order of magnitude), the leader crashed 2 s in plus the same
//!   moving phase; the value is the virtual time from the crash to the first instant every
//!   surviving node names the same new leader (`conclave compare`'s settle rule: it stays
//!   so for a quiet second).
//!
//! After each real iteration the simulator also replays that iteration's schedule: each
//! surviving node starts at the phase of its last real `HeartbeatTick` before the kill
//! (read from its trace log), and the leader crashes at the real kill's offset from those
//! ticks. For that run the bench asserts that the simulator elects the same new leader, and
//! compares the election messages (`Message::is_election`: Election, Ok, Coordinator) the
//! real nodes sent from the kill to agreement (their trace logs' `send` lines) with the
//! simulator's sends over the same window. Heartbeats are not counted: how many fall in the
//! window depends on timing alone. A summary per N goes to standard output:
//!
//! ```text
//! real_nodes/kill_leader/N=4: real 311.1 ms (min 278.6, max 351.3 over 11)
//! real_nodes/kill_leader/N=4: simulator predicts 307.1 ms (min 273.6, max 342.3 over 11) for the same heartbeat phases
//! real_nodes/kill_leader/N=4: real minus that prediction, per kill: ...
//! real_nodes/kill_leader/N=4: simulator predicts 299.6 ms (min 250.1, max 349.1 over 100) with all nodes started together, the crash at each ms of a heartbeat period
//! real_nodes/kill_leader/N=4: election messages match the simulator's in 11 of 11 kills
//! real_nodes/kill_leader/N=4:   11x real {"Coordinator": 2, "Election": 6, "Ok": 3} (11) / simulator {"Coordinator": 2, "Election": 6, "Ok": 3} (11)
//! ```
//!
//! Run: `cargo bench --bench real_nodes 2>/dev/null` (under a minute; standard error
//! carries the nodes' own log lines).

use conclave_algorithms::bully::{Bully, BullyMsg, BullyParams};
use conclave_algorithms::net::runtime::{run_node, Listen, NodeConfig, RuntimeError, Timing};
use conclave_algorithms::{Duration, Message, Pid, Time, View};
use conclave_sim::run::{cluster_of, world_config};
use conclave_sim::scenario::Scenario;
use conclave_sim::world::World;
use criterion::{Criterion, SamplingMode};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration as StdDuration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

const SIZES: [usize; 2] = [4, 16];
/// The simulator's message delay: one way on loopback, between two tokio tasks.
const DELAY_US: u64 = 100;
/// How long after agreement on the highest the leader is killed, before the phase.
const SETTLED_MS: u64 = 300;
/// The phase added to [`SETTLED_MS`] moves by this much per iteration, modulo the
/// heartbeat interval.
const PHASE_STEP_MS: u64 = 7;
/// Where the simulator's crash falls when every node starts at 0 (plus the phase).
const SIM_CRASH_MS: u64 = 2000;
/// A phase (start, agreement) that takes longer than this is a failure.
const BOUND: StdDuration = StdDuration::from_secs(10);

fn params() -> BullyParams {
    BullyParams {
        answer_timeout: Duration::from_millis(100),
        coordinator_timeout: Duration::from_millis(300),
        heartbeat_interval: Duration::from_millis(100),
        heartbeat_timeout: Duration::from_millis(150),
        ..BullyParams::default()
    }
}

/// Bully with [`params`], as the scenario's RON.
const BULLY_RON: &str = "Bully(answer_timeout: \"100ms\", coordinator_timeout: \"300ms\", \
     heartbeat_interval: \"100ms\", heartbeat_timeout: \"150ms\")";

fn name(i: usize) -> String {
    format!("n{}", i + 1)
}

/// N nodes `n1`..`nN` with ids 1..N (the last is the highest), each at its address (if
/// given) and start time, the leader crashed at `crash_us` (if given).
fn scenario(n: usize, addresses: &[String], starts_us: &[u64], crash_us: Option<u64>) -> Scenario {
    let nodes: Vec<String> = (0..n)
        .map(|i| {
            let address = addresses
                .get(i)
                .map(|a| format!(", address: \"{a}\""))
                .unwrap_or_default();
            let start = starts_us.get(i).copied().unwrap_or(0);
            format!(
                "(name: \"{}\", id: {}{address}, start: \"{start}us\")",
                name(i),
                i + 1
            )
        })
        .collect();
    let (faults, run_for) = match crash_us {
        Some(at) => (
            format!("(at: \"{at}us\", fault: Crash(\"{}\"))", name(n - 1)),
            at + 30_000_000,
        ),
        None => (String::new(), 1_000_000),
    };
    let text = format!(
        "Scenario(algorithm: {BULLY_RON}, nodes: [{}], network: (delay: Constant(\"{DELAY_US}us\")), \
         faults: [{faults}], run_for: \"{run_for}us\")",
        nodes.join(", ")
    );
    Scenario::from_str(&text, "real_nodes.ron").unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// Election messages by kind.
type Counts = BTreeMap<String, u64>;

/// The simulator's account of one crash of the leader.
struct Predicted {
    /// From the crash to the first instant of the settled state after it.
    time_us: u64,
    leader: String,
    election: Counts,
}

/// Runs `s` (whose leader crashes at `crash_us`) until the survivors have agreed for a
/// quiet second, as `conclave compare` does; the election messages sent from the crash to
/// the settled state.
fn predict(s: &Scenario, crash_us: u64) -> Predicted {
    let n = s.nodes.len();
    let mut world = World::<Bully>::new(cluster_of(s, 0), params(), world_config(s, 0, false));
    world.run_until(Time(crash_us - 1));
    let before = world.monitor().settled.clone();
    assert_eq!(
        before.map(|(_, l)| l),
        Some(vec![Pid(n as u32 - 1)]),
        "the simulator's cluster has settled on the highest before the crash"
    );
    let base = kinds(&world);
    let quiet = StdDuration::from_secs(1).as_micros() as u64;
    let mut settled: Option<(u64, Vec<Pid>, Counts)> = None;
    while let Some(t) = world.next_event_time() {
        if t.as_micros() > crash_us + 20_000_000 {
            break;
        }
        world.run_until(t);
        match world.monitor().settled.clone() {
            Some((since, leaders)) if since.as_micros() >= crash_us => {
                if settled.as_ref().map(|s| s.0) != Some(since.as_micros()) {
                    settled = Some((since.as_micros(), leaders, kinds(&world)));
                }
                if t.as_micros() - since.as_micros() >= quiet {
                    break;
                }
            }
            _ => settled = None,
        }
    }
    let (since, leaders, at_settle) = settled.expect("the simulator settles after the crash");
    assert_eq!(leaders.len(), 1, "one leader after the crash: {leaders:?}");
    let election = at_settle
        .into_iter()
        .filter(|(kind, _)| ELECTION_KINDS.contains(&kind.as_str()))
        .map(|(kind, sent)| {
            let sent = sent - base.get(&kind).copied().unwrap_or(0);
            (kind, sent)
        })
        .filter(|(_, sent)| *sent > 0)
        .collect();
    Predicted {
        time_us: since - crash_us,
        leader: name(leaders[0].index()),
        election,
    }
}

/// The kinds of Bully's election messages (`Message::is_election`).
const ELECTION_KINDS: [&str; 3] = ["Election", "Ok", "Coordinator"];

fn kinds(world: &World<Bully>) -> Counts {
    world
        .stats()
        .by_kind
        .iter()
        .map(|(kind, sent)| (kind.to_string(), sent))
        .collect()
}

/// The simulator's prediction with every node started at 0 and the crash at
/// [`SIM_CRASH_MS`] plus `phase_ms`.
fn predict_from_start(n: usize, phase_ms: u64) -> Predicted {
    let crash_us = (SIM_CRASH_MS + phase_ms) * 1000;
    predict(&scenario(n, &[], &[], Some(crash_us)), crash_us)
}

struct Node {
    view: watch::Receiver<View>,
    task: JoinHandle<Result<(), RuntimeError>>,
    /// Dropped with the node: a graceful stop for a node not aborted yet.
    _stop: watch::Sender<bool>,
}

/// One real kill of the leader.
struct Killed {
    /// From the abort to the last survivor naming the new leader.
    elapsed: StdDuration,
    leader: String,
    /// The survivors' election messages from the kill to agreement.
    election: Counts,
    /// The simulator's account of the same schedule.
    predicted: Predicted,
}

fn wall_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Starts `n` nodes, waits for agreement on the highest and `wait_ms` more, kills the
/// leader and waits for the survivors to agree on a new one; then stops them and reads
/// their trace logs (kept under `dir`, which is emptied).
async fn kill_leader(n: usize, wait_ms: u64, dir: &Path) -> Killed {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let listeners: Vec<_> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let addresses: Vec<String> = listeners
        .iter()
        .map(|l| l.local_addr().unwrap().to_string())
        .collect();
    let cluster = cluster_of(&scenario(n, &addresses, &[], None), 0);
    let logs: Vec<PathBuf> = (0..n)
        .map(|i| dir.join(format!("{}.jsonl", name(i))))
        .collect();
    let mut nodes: Vec<Node> = listeners
        .into_iter()
        .enumerate()
        .map(|(i, listener)| {
            let (stop, shutdown) = watch::channel(false);
            let (views, view) = watch::channel(View::DOWN);
            let listen = Listen::Listener(listener);
            let mut config = NodeConfig::<Bully>::new(
                cluster.clone(),
                Pid(i as u32),
                params(),
                listen,
                shutdown,
            );
            config.views = Some(views);
            config.seed = i as u64;
            config.trace_log = Some(logs[i].clone());
            config.timing = Timing {
                backoff_max: StdDuration::from_millis(200),
                ..Timing::default()
            };
            let task = tokio::spawn(run_node(config));
            Node {
                view,
                task,
                _stop: stop,
            }
        })
        .collect();

    let highest = Pid(n as u32 - 1);
    let all_name =
        |nodes: &[Node], leader: Pid| nodes.iter().all(|n| n.view.borrow().leader == Some(leader));
    tokio::time::timeout(BOUND, async {
        while !all_name(&nodes, highest) {
            tokio::time::sleep(StdDuration::from_millis(5)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("N={n}: the nodes never agreed on {}", name(n - 1)));
    tokio::time::sleep(StdDuration::from_millis(wait_ms)).await;
    assert!(
        all_name(&nodes, highest),
        "N={n}: agreement on the highest did not last"
    );

    // Every survivor's view changes, stamped as they are published.
    let leader = nodes.pop().unwrap();
    let (changes, mut changed) = mpsc::unbounded_channel();
    let mut forwarders = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        let mut view = node.view.clone();
        view.mark_unchanged();
        let changes = changes.clone();
        forwarders.push(tokio::spawn(async move {
            while view.changed().await.is_ok() {
                let leader = view.borrow_and_update().leader;
                if changes.send((i, Instant::now(), leader)).is_err() {
                    break;
                }
            }
        }));
    }
    let kill_wall_us = wall_us();
    let killed_at = Instant::now();
    leader.task.abort();
    let mut named: Vec<Option<Pid>> = vec![Some(highest); n - 1];
    let agreed_at = tokio::time::timeout(BOUND, async {
        while let Some((i, at, leader)) = changed.recv().await {
            named[i] = leader;
            if let Some(first) = named[0] {
                if first != highest && named.iter().all(|l| *l == Some(first)) {
                    return (at, first);
                }
            }
        }
        unreachable!("the forwarders outlive the nodes")
    })
    .await;
    let (agreed_at, new_leader) = agreed_at
        .unwrap_or_else(|_| panic!("N={n}: the survivors never agreed after the kill: {named:?}"));
    let elapsed = agreed_at - killed_at;

    for node in nodes.iter().chain([&leader]) {
        node.task.abort();
    }
    for f in &forwarders {
        f.abort();
    }
    for node in nodes {
        let _ = node.task.await;
    }
    let _ = leader.task.await;

    let window = kill_wall_us..=kill_wall_us + elapsed.as_micros() as u64;
    let survivors: Vec<String> = logs[..n - 1]
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    let election = real_election_messages(&survivors, &window);
    let predicted = predict_same_schedule(n, &survivors, kill_wall_us);
    let _ = std::fs::remove_dir_all(dir);
    Killed {
        elapsed,
        leader: name(new_leader.index()),
        election,
        predicted,
    }
}

fn lines(log: &str) -> impl Iterator<Item = serde_json::Value> + '_ {
    log.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
}

/// The election messages the logs' `send` lines show within `window` (wall µs).
fn real_election_messages(logs: &[String], window: &std::ops::RangeInclusive<u64>) -> Counts {
    let mut counts = Counts::new();
    for log in logs {
        for line in lines(log) {
            if line["event"] != "send" || !window.contains(&line["wall_us"].as_u64().unwrap()) {
                continue;
            }
            let msg: BullyMsg = serde_json::from_value(line["msg_json"].clone()).unwrap();
            if msg.is_election() {
                *counts.entry(msg.kind().to_string()).or_default() += 1;
            }
        }
    }
    counts
}

/// The simulator on the real run's schedule: each survivor starts at the phase of its last
/// `HeartbeatTick` before the kill (its ticks then fall where the real ones did), the
/// leader at 0, and the leader crashes at the kill's offset from those ticks.
fn predict_same_schedule(n: usize, survivors: &[String], kill_wall_us: u64) -> Predicted {
    let interval = params().heartbeat_interval.as_micros();
    let last_ticks: Vec<u64> = survivors
        .iter()
        .map(|log| {
            lines(log)
                .filter(|l| l["event"] == "timer" && l["timer"] == "HeartbeatTick")
                .map(|l| l["wall_us"].as_u64().unwrap())
                .filter(|&t| t <= kill_wall_us)
                .last()
                .expect("a heartbeat tick before the kill")
        })
        .collect();
    // Two seconds before the earliest tick: the simulated cluster has settled long before.
    let origin = last_ticks.iter().min().unwrap() - 2_000_000;
    let mut starts: Vec<u64> = last_ticks.iter().map(|t| (t - origin) % interval).collect();
    starts.push(0);
    let crash_us = kill_wall_us - origin;
    predict(&scenario(n, &[], &starts, Some(crash_us)), crash_us)
}

/// What the real kills of one N measured, for the summary.
#[derive(Default)]
struct Summary {
    real_ms: Vec<f64>,
    same_schedule_ms: Vec<f64>,
    /// Real and simulated election messages of each kill.
    messages: Vec<(Counts, Counts)>,
}

fn range(values: &[f64]) -> String {
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(0.0, f64::max);
    format!(
        "{mean:.1} ms (min {min:.1}, max {max:.1} over {})",
        values.len()
    )
}

impl Summary {
    fn print(&self, n: usize, from_start_ms: &[f64]) {
        let id = format!("real_nodes/kill_leader/N={n}");
        println!("{id}: real {}", range(&self.real_ms));
        println!(
            "{id}: simulator predicts {} for the same heartbeat phases",
            range(&self.same_schedule_ms)
        );
        let late: Vec<f64> = self
            .real_ms
            .iter()
            .zip(&self.same_schedule_ms)
            .map(|(real, predicted)| real - predicted)
            .collect();
        println!(
            "{id}: real minus that prediction, per kill: {}",
            range(&late)
        );
        println!(
            "{id}: simulator predicts {} with all nodes started together, the crash at each ms of a heartbeat period",
            range(from_start_ms)
        );
        let mut tally: BTreeMap<(&Counts, &Counts), usize> = BTreeMap::new();
        for (real, simulated) in &self.messages {
            *tally.entry((real, simulated)).or_default() += 1;
        }
        let matched = self.messages.iter().filter(|(r, s)| r == s).count();
        println!(
            "{id}: election messages match the simulator's in {matched} of {} kills",
            self.messages.len()
        );
        let total = |counts: &Counts| counts.values().sum::<u64>();
        for ((real, simulated), times) in tally {
            println!(
                "{id}:   {times}x real {real:?} ({}) / simulator {simulated:?} ({})",
                total(real),
                total(simulated)
            );
        }
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(StdDuration::from_millis(500))
        .measurement_time(StdDuration::from_secs(3))
        .configure_from_args();
    let dir = std::env::temp_dir().join(format!("conclave-bench-real-{}", std::process::id()));
    for n in SIZES {
        // Before timing: the real nodes and the simulator elect the same node.
        let check = runtime.block_on(kill_leader(n, SETTLED_MS, &dir));
        assert_eq!(
            check.leader, check.predicted.leader,
            "N={n}: the new leader"
        );
        assert_eq!(check.leader, name(n - 2), "N={n}: the next highest leads");

        let mut group = c.benchmark_group("kill_leader/bully");
        group.sampling_mode(SamplingMode::Flat);
        let mut summary = Summary::default();
        let mut iteration = 0u64;
        group.bench_function(format!("real/N={n}"), |b| {
            b.iter_custom(|iters| {
                let mut total = StdDuration::ZERO;
                for _ in 0..iters {
                    iteration += 1;
                    let phase = (iteration * PHASE_STEP_MS) % 100;
                    let k = runtime.block_on(kill_leader(n, SETTLED_MS + phase, &dir));
                    assert_eq!(k.leader, k.predicted.leader, "N={n}: the new leader");
                    summary.real_ms.push(k.elapsed.as_secs_f64() * 1e3);
                    summary
                        .same_schedule_ms
                        .push(k.predicted.time_us as f64 / 1e3);
                    summary.messages.push((k.election, k.predicted.election));
                    total += k.elapsed;
                }
                total
            })
        });
        let from_start_ms: Vec<f64> = (0..params().heartbeat_interval.as_micros() / 1000)
            .map(|phase| predict_from_start(n, phase).time_us as f64 / 1e3)
            .collect();
        let mut iteration = 0u64;
        group.bench_function(format!("simulator/N={n}"), |b| {
            b.iter_custom(|iters| {
                let mut total = StdDuration::ZERO;
                for _ in 0..iters {
                    iteration += 1;
                    let phase = (iteration * PHASE_STEP_MS) % 100;
                    let p = predict_from_start(n, phase);
                    assert_eq!(p.leader, name(n - 2), "N={n}: the simulator's new leader");
                    total += StdDuration::from_micros(p.time_us);
                }
                total
            })
        });
        group.finish();
        summary.print(n, &from_start_ms);
    }
    c.final_summary();
}
