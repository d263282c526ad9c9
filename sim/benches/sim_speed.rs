//! Raw simulator speed: Bully elections, reported as delivered events per second.
//!
//! - `n4_crash_cycles`: 4 nodes, fast heartbeats (10 ms), the coordinator crashes and restarts
//!   100 times: a steady stream of heartbeats, detections and elections.
//! - `n64_all_start` and `n1024_all_start`: every node starts at once; one election of
//!   N^2 - 1 messages (1,048,575 for N = 1024).
//!
//! Run: `cargo bench -p conclave-sim --bench sim_speed`

use conclave_algorithms::bully::{Bully, BullyParams};
use conclave_algorithms::{Cluster, Duration, Member, Pid, Time};
use conclave_sim::scenario::{Delay, NetworkSpec};
use conclave_sim::world::{Action, World, WorldConfig};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

struct Case {
    name: &'static str,
    n: u32,
    params: BullyParams,
    faults: Vec<(Time, Action)>,
    until: Time,
}

fn cluster(n: u32) -> Cluster {
    Cluster::new(
        (1..=n)
            .map(|i| Member::voter(&format!("n{i}"), u64::from(i)))
            .collect(),
    )
}

fn run(case: &Case) -> u64 {
    let net = NetworkSpec {
        delay: Delay::Uniform {
            min: Duration::from_micros(500),
            max: Duration::from_millis(2),
        },
        ..NetworkSpec::default()
    };
    let config = WorldConfig {
        network: net,
        faults: case.faults.clone(),
        seed: 42,
        ..WorldConfig::starting_together(case.n as usize)
    };
    let mut world = World::<Bully>::new(cluster(case.n), case.params.clone(), config);
    world.run_until(case.until);
    world.stats().events
}

fn cases() -> Vec<Case> {
    let fast = BullyParams {
        answer_timeout: Duration::from_millis(20),
        coordinator_timeout: Duration::from_millis(60),
        heartbeat_interval: Duration::from_millis(10),
        heartbeat_timeout: Duration::from_millis(10),
        ..BullyParams::default()
    };
    let mut cycles = Vec::new();
    for k in 0..100u64 {
        cycles.push((Time(1_000_000 + k * 1_000_000), Action::Crash(Pid(3))));
        cycles.push((Time(1_500_000 + k * 1_000_000), Action::Restart(Pid(3))));
    }
    let election_only = BullyParams {
        answer_timeout: Duration::from_millis(100),
        coordinator_timeout: Duration::from_millis(300),
        heartbeat_interval: Duration::ZERO,
        heartbeat_timeout: Duration::ZERO,
        ..BullyParams::default()
    };
    vec![
        Case {
            name: "n4_crash_cycles",
            n: 4,
            params: fast,
            faults: cycles,
            until: Time(101_000_000),
        },
        Case {
            name: "n64_all_start",
            n: 64,
            params: election_only.clone(),
            faults: vec![],
            until: Time(1_000_000),
        },
        Case {
            name: "n1024_all_start",
            n: 1024,
            params: election_only,
            faults: vec![],
            until: Time(1_000_000),
        },
    ]
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("bully_events");
    for case in cases() {
        let events = run(&case);
        group.throughput(Throughput::Elements(events));
        if case.n >= 1024 {
            group.sample_size(10);
        }
        group.bench_with_input(BenchmarkId::new(case.name, events), &case, |b, case| {
            b.iter(|| run(case))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
