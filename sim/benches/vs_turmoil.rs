//! Conclave's simulator against turmoil, the deterministic network simulator for tokio code.
//!
//! Both run the textbook Bully algorithm on the cluster of `scenarios/consul_four_nodes.ron`
//! (four nodes with its ids: node2, 97300114, is the highest), with its timeouts (answer
//! 1 s, coordinator 3 s, heartbeats every 5 s with a 5 s timeout) and its message delays
//! (1 ms to 20 ms), but **without the registry**: every node knows every other node's
//! address from the start, all four start together at 0 s and elect at once. One run is one
//! complete election, stopped at 1.05 s of virtual time (node2 wins when its answer timeout
//! runs out at 1 s, and its COORDINATOR arrives within 20 ms); each iteration uses a new seed.
//!
//! - `election_four_nodes/conclave`: `scenarios/bench/bully_four_nodes_static.ron` through
//!   [`run_scenario`], which also evaluates the scenario's properties and builds the report.
//! - `election_four_nodes/turmoil`: the same algorithm written as tokio code over
//!   `turmoil::net::UdpSocket`, one turmoil host per node, with `min_message_latency` 1 ms,
//!   `max_message_latency` 20 ms, `simulation_duration` 1.05 s and `rng_seed`. Turmoil
//!   draws each delay from its own curve (exponential, capped at the maximum) and advances
//!   time in ticks of 1 ms, polling every host at each tick; Conclave draws delays uniformly
//!   and jumps from event to event.
//! - `consul_four_nodes/conclave`: `scenarios/consul_four_nodes.ron` itself, with its
//!   registry, for its full 40 s.
//!
//! Before timing, both simulators must elect node2 on every node with the same 15 messages
//! for 64 seeds (and the registry scenario must pass its expectations), and every timed run
//! checks its outcome again (a cheap comparison), so a broken run cannot be measured.
//! Criterion's throughput is one run: its `elem/s` is runs per second, on one core.
//!
//! Both allocate with mimalloc, the `conclave` binary's allocator.
//!
//! Run: `cargo bench -p conclave-sim --bench vs_turmoil`; see [`main`] for a plain loop of
//! runs to profile.

use conclave_sim::run::{run_scenario, RunOptions, RunReport};
use conclave_sim::scenario::Scenario;
use criterion::{criterion_group, Criterion, Throughput};
use std::cell::RefCell;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;
use tokio::time::{sleep_until, Instant};
use turmoil::net::UdpSocket;

/// The `conclave` binary's allocator (`src/main.rs`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The nodes of `consul_four_nodes.ron`: name and id.
const NODES: [(&str, u64); 4] = [
    ("node1", 41_829_377),
    ("node2", 97_300_114),
    ("node3", 63_553_190),
    ("node4", 12_774_925),
];
const WINNER: u64 = 97_300_114;
const PORT: u16 = 5000;

const ANSWER_TIMEOUT: Duration = Duration::from_secs(1);
const COORDINATOR_TIMEOUT: Duration = Duration::from_secs(3);
const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);
const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(5);
const MIN_DELAY: Duration = Duration::from_millis(1);
const MAX_DELAY: Duration = Duration::from_millis(20);
/// The virtual time both simulators stop at: the scenario's `run_for`.
const END: Duration = Duration::from_millis(1050);

const ELECTION: u8 = 0;
const OK: u8 = 1;
const COORDINATOR: u8 = 2;
const HEARTBEAT: u8 = 3;
const HEARTBEAT_ACK: u8 = 4;

#[derive(Clone, Copy, PartialEq, Debug)]
enum Status {
    /// Waiting for an OK until the instant.
    Election(Instant),
    /// Got an OK; waiting for COORDINATOR until the instant.
    WaitingForCoordinator(Instant),
    Coordinator,
    Follower,
}

/// What the nodes of one turmoil run did: each node's leader (by id) as it last set it, the
/// messages sent, and when a leader was last set.
#[derive(Clone, Copy, Debug, Default)]
struct Outcome {
    leaders: [Option<u64>; 4],
    sent: u32,
    settled: Duration,
}

type Shared = Rc<RefCell<Outcome>>;

/// One Bully node as tokio code: the same rules as `algorithms/src/bully.rs` with static
/// discovery. A message is a kind byte and the sender's id.
struct Node {
    me: usize,
    id: u64,
    sock: UdpSocket,
    /// Every other node's id and address, known from the start.
    peers: Vec<(u64, SocketAddr)>,
    status: Status,
    leader: Option<u64>,
    next_heartbeat: Instant,
    heartbeat_deadline: Option<Instant>,
    shared: Shared,
}

impl Node {
    async fn send(&self, to: SocketAddr, kind: u8) -> turmoil::Result {
        let mut buf = [0u8; 9];
        buf[0] = kind;
        buf[1..].copy_from_slice(&self.id.to_le_bytes());
        self.sock.send_to(&buf, to).await?;
        self.shared.borrow_mut().sent += 1;
        Ok(())
    }

    fn set_leader(&mut self, leader: Option<u64>) {
        self.leader = leader;
        let mut shared = self.shared.borrow_mut();
        shared.leaders[self.me] = leader;
        shared.settled = turmoil::sim_elapsed().unwrap_or_default();
    }

    fn in_election(&self) -> bool {
        matches!(
            self.status,
            Status::Election(_) | Status::WaitingForCoordinator(_)
        )
    }

    async fn start_election(&mut self) -> turmoil::Result {
        self.status = Status::Election(Instant::now() + ANSWER_TIMEOUT);
        self.set_leader(None);
        self.heartbeat_deadline = None;
        for i in 0..self.peers.len() {
            let (id, addr) = self.peers[i];
            if id > self.id {
                self.send(addr, ELECTION).await?;
            }
        }
        Ok(())
    }

    async fn become_coordinator(&mut self) -> turmoil::Result {
        self.status = Status::Coordinator;
        self.set_leader(Some(self.id));
        for i in 0..self.peers.len() {
            let (id, addr) = self.peers[i];
            if id < self.id {
                self.send(addr, COORDINATOR).await?;
            }
        }
        Ok(())
    }

    async fn on_message(&mut self, kind: u8, from: u64, addr: SocketAddr) -> turmoil::Result {
        match kind {
            ELECTION if from < self.id => {
                self.send(addr, OK).await?;
                if !self.in_election() {
                    self.start_election().await?;
                }
            }
            OK => {
                if let Status::Election(_) = self.status {
                    self.status =
                        Status::WaitingForCoordinator(Instant::now() + COORDINATOR_TIMEOUT);
                }
            }
            COORDINATOR if from > self.id => {
                self.status = Status::Follower;
                self.set_leader(Some(from));
                self.heartbeat_deadline = None;
            }
            COORDINATOR if !self.in_election() => self.start_election().await?,
            HEARTBEAT if self.status == Status::Coordinator => {
                self.send(addr, HEARTBEAT_ACK).await?
            }
            HEARTBEAT_ACK if self.status == Status::Follower && self.leader == Some(from) => {
                self.heartbeat_deadline = None;
            }
            _ => {}
        }
        Ok(())
    }

    /// Every timer that is due at `now`.
    async fn on_timers(&mut self, now: Instant) -> turmoil::Result {
        match self.status {
            Status::Election(at) if at <= now => self.become_coordinator().await?,
            Status::WaitingForCoordinator(at) if at <= now => self.start_election().await?,
            _ => {}
        }
        if self.next_heartbeat <= now {
            self.next_heartbeat += HEARTBEAT_INTERVAL;
            if let (Status::Follower, Some(leader), None) =
                (self.status, self.leader, self.heartbeat_deadline)
            {
                let addr = self.peers.iter().find(|p| p.0 == leader).map(|p| p.1);
                if let Some(addr) = addr {
                    self.send(addr, HEARTBEAT).await?;
                    self.heartbeat_deadline = Some(now + HEARTBEAT_TIMEOUT);
                }
            }
        }
        if self.heartbeat_deadline.is_some_and(|at| at <= now) && self.status == Status::Follower {
            self.start_election().await?;
        }
        Ok(())
    }

    fn next_deadline(&self) -> Instant {
        let mut next = self.next_heartbeat;
        if let Status::Election(at) | Status::WaitingForCoordinator(at) = self.status {
            next = next.min(at);
        }
        if let Some(at) = self.heartbeat_deadline {
            next = next.min(at);
        }
        next
    }
}

async fn bully_node(me: usize, shared: Shared) -> turmoil::Result {
    let sock = UdpSocket::bind((IpAddr::V4(Ipv4Addr::UNSPECIFIED), PORT)).await?;
    let peers = NODES
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != me)
        .map(|(_, &(name, id))| (id, SocketAddr::new(turmoil::lookup(name), PORT)))
        .collect();
    let mut node = Node {
        me,
        id: NODES[me].1,
        sock,
        peers,
        status: Status::Follower,
        leader: None,
        next_heartbeat: Instant::now() + HEARTBEAT_INTERVAL,
        heartbeat_deadline: None,
        shared,
    };
    node.start_election().await?;
    let mut buf = [0u8; 16];
    loop {
        tokio::select! {
            received = node.sock.recv_from(&mut buf) => {
                let (n, addr) = received?;
                if n == 9 {
                    let from = u64::from_le_bytes(buf[1..9].try_into().unwrap());
                    node.on_message(buf[0], from, addr).await?;
                }
            }
            () = sleep_until(node.next_deadline()) => {
                node.on_timers(Instant::now()).await?;
            }
        }
    }
}

/// One election in turmoil, run to `END`.
fn turmoil_run(seed: u64) -> Outcome {
    let mut sim = turmoil::Builder::new()
        .simulation_duration(END)
        .min_message_latency(MIN_DELAY)
        .max_message_latency(MAX_DELAY)
        .rng_seed(seed)
        .build();
    let shared: Shared = Rc::default();
    for (i, (name, _)) in NODES.iter().enumerate() {
        let shared = shared.clone();
        sim.host(*name, move || bully_node(i, shared.clone()));
    }
    // Hosts run for ever and there is no client, so step to the end rather than `run`.
    while sim.elapsed() < END {
        sim.step().expect("turmoil step");
    }
    let out = *shared.borrow();
    out
}

fn load(file: &str) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(file);
    Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

fn conclave_run(scenario: &Scenario, seed: u64) -> RunReport {
    run_scenario(scenario, "bench.ron", seed, &RunOptions::default())
}

/// Every node names node2 at the end, and every expectation of the scenario holds.
fn conclave_elected_node2(r: &RunReport) -> bool {
    r.ok && r.leaders.len() == 4 && r.leaders.values().all(|l| l.as_deref() == Some("node2"))
}

fn bench(c: &mut Criterion) {
    let static_cluster = load("scenarios/bench/bully_four_nodes_static.ron");
    let consul = load("scenarios/consul_four_nodes.ron");
    assert_eq!(
        Duration::from_micros(static_cluster.run_for.as_micros()),
        END,
        "both simulators stop at the same virtual time"
    );
    // Both elect node2 on every node, with the same N^2 - 1 = 15 messages (no heartbeat is
    // due before 5 s), and settle within the run.
    let (mut conclave_settled, mut turmoil_settled) = (Vec::new(), Vec::new());
    for seed in 0..64 {
        let r = conclave_run(&static_cluster, seed);
        assert!(conclave_elected_node2(&r), "conclave, seed {seed}: {r:?}");
        assert_eq!(r.end_time_us, END.as_micros() as u64);
        assert_eq!(r.messages.total, 15, "conclave, seed {seed}");
        conclave_settled.push(r.time_to_stable_leader_us.expect("settled"));
        let t = turmoil_run(seed);
        assert_eq!(t.leaders, [Some(WINNER); 4], "turmoil, seed {seed}");
        assert_eq!(t.sent, 15, "turmoil, seed {seed}");
        turmoil_settled.push(t.settled.as_micros() as u64);
        let r = conclave_run(&consul, seed);
        assert!(conclave_elected_node2(&r), "consul, seed {seed}: {r:?}");
    }
    let range = |v: &[u64]| {
        let (lo, hi) = (v.iter().min().unwrap(), v.iter().max().unwrap());
        format!("{:.1}..{:.1} ms", *lo as f64 / 1e3, *hi as f64 / 1e3)
    };
    eprintln!(
        "64 seeds: every node follows node2 in both; 15 messages each run; the last leader \
         set at {} (conclave), {} (turmoil); both stop at {} ms",
        range(&conclave_settled),
        range(&turmoil_settled),
        END.as_millis()
    );

    let mut group = c.benchmark_group("election_four_nodes");
    group.throughput(Throughput::Elements(1));
    let mut seed = 1_000u64;
    group.bench_function("conclave", |b| {
        b.iter(|| {
            seed += 1;
            let r = conclave_run(&static_cluster, seed);
            assert!(conclave_elected_node2(&r), "conclave, seed {seed}");
            black_box(r)
        })
    });
    let mut seed = 1_000u64;
    group.bench_function("turmoil", |b| {
        b.iter(|| {
            seed += 1;
            let t = turmoil_run(seed);
            assert_eq!(t.leaders, [Some(WINNER); 4], "turmoil, seed {seed}");
            black_box(t)
        })
    });
    group.finish();

    let mut group = c.benchmark_group("consul_four_nodes");
    group.throughput(Throughput::Elements(1));
    let mut seed = 1_000u64;
    group.bench_function("conclave", |b| {
        b.iter(|| {
            seed += 1;
            let r = conclave_run(&consul, seed);
            assert!(conclave_elected_node2(&r), "consul, seed {seed}");
            black_box(r)
        })
    });
    group.finish();
}

criterion_group!(benches, bench);

/// `VS_TURMOIL_RUNS=CASE:N` (CASE `conclave`, `turmoil` or `consul`) runs N runs of one case
/// with seeds 1 to N outside criterion and exits, for a profiler or an instruction count
/// (`valgrind --tool=callgrind`, `perf record`); N = 0 counts the setup alone.
fn main() {
    let Ok(spec) = std::env::var("VS_TURMOIL_RUNS") else {
        benches();
        Criterion::default().configure_from_args().final_summary();
        return;
    };
    let (case, n) = spec.split_once(':').expect("VS_TURMOIL_RUNS=CASE:N");
    let n: u64 = n.parse().expect("N");
    let mut ok = 0u64;
    match case {
        "conclave" | "consul" => {
            let scenario = load(if case == "consul" {
                "scenarios/consul_four_nodes.ron"
            } else {
                "scenarios/bench/bully_four_nodes_static.ron"
            });
            for seed in 1..=n {
                ok += u64::from(conclave_elected_node2(&conclave_run(&scenario, seed)));
            }
        }
        "turmoil" => {
            for seed in 1..=n {
                ok += u64::from(turmoil_run(seed).leaders == [Some(WINNER); 4]);
            }
        }
        _ => panic!("unknown case {case}: conclave, turmoil or consul"),
    }
    assert_eq!(ok, n, "every run elects node2");
    println!("{case}: {n} runs, each elected node2");
}
