//! Runs one all-start Bully election of N nodes (default 1024) and prints the event count:
//! a handle for profilers. `cargo run --release -p conclave-sim --example all_start -- 1024`
use conclave_algorithms::bully::{Bully, BullyParams};
use conclave_algorithms::{Cluster, Duration, Member, Time};
use conclave_sim::scenario::NetworkSpec;
use conclave_sim::world::{World, WorldConfig};

fn main() {
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1024);
    let cluster = Cluster::new(
        (1..=n)
            .map(|i| Member::voter(&format!("n{i}"), u64::from(i)))
            .collect(),
    );
    let params = BullyParams {
        heartbeat_interval: Duration::ZERO,
        ..BullyParams::default()
    };
    let net = NetworkSpec {
        delay: conclave_sim::scenario::Delay::Uniform {
            min: Duration::from_micros(500),
            max: Duration::from_millis(2),
        },
        ..NetworkSpec::default()
    };
    let config = WorldConfig {
        network: net,
        seed: 1,
        ..WorldConfig::starting_together(n as usize)
    };
    let mut world = World::<Bully>::new(cluster, params, config);
    world.run_until(Time(10_000_000));
    println!("{} events", world.stats().events);
}
