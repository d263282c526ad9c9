//! Sweep throughput: whole runs per second, as `conclave sweep` makes them.
//!
//! - `consul_four_nodes/jobs=1`: seed 000's four-node cluster with its registry, 40 s of
//!   virtual time a run, on one core.
//! - `bully32_random_faults/jobs=1` and `jobs=2`: 32 nodes under random faults drawn from
//!   the scenario's `sweep` block (a different mix each seed); the ratio of the two is the
//!   sweep's scaling over cores.
//! - `.../jobs=1,no-trace-hash`: each scenario on one core without the per-seed trace hash,
//!   as a plain `conclave sweep` (no `--results`, `--save-failures` or
//!   `--check-determinism`) runs it.
//!
//! Run: `cargo bench -p conclave-sim --bench sweep_speed`. Criterion's throughput line is
//! runs per second ("elem/s"). The bench allocates with mimalloc, as the `conclave` binary
//! does, so that these are the binary's runs per second.

use conclave_sim::run::RunOptions;
use conclave_sim::scenario::Scenario;
use conclave_sim::sweep::run_seeds;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::path::Path;

/// The `conclave` binary's allocator (`src/main.rs`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn load(name: &str) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios")
        .join(name);
    Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

fn sweeps(c: &mut Criterion) {
    let mut g = c.benchmark_group("sweep");
    let cases = [
        ("consul_four_nodes.ron", 512u64, &[1usize][..]),
        ("sweep/bully32_random_faults.ron", 32, &[1, 2][..]),
    ];
    for (file, seeds, jobs) in cases {
        let scenario = load(file);
        let name = Path::new(file).file_stem().unwrap().to_string_lossy();
        let seeds: Vec<u64> = (0..seeds).collect();
        // The same verdicts on any number of jobs, checked before anything is timed.
        let one = run_seeds(&scenario, &seeds, 1, &RunOptions::default(), &|_| {});
        let two = run_seeds(&scenario, &seeds, 2, &RunOptions::default(), &|_| {});
        assert_eq!(one, two);
        g.throughput(Throughput::Elements(seeds.len() as u64));
        for &j in jobs {
            g.bench_with_input(
                BenchmarkId::new(name.as_ref(), format!("jobs={j}")),
                &j,
                |b, &j| b.iter(|| run_seeds(&scenario, &seeds, j, &RunOptions::default(), &|_| {})),
            );
        }
        // As a plain `conclave sweep` runs them: no trace hash, since no one reads it.
        let unhashed = RunOptions {
            no_trace_hash: true,
            ..RunOptions::default()
        };
        let plain = run_seeds(&scenario, &seeds, 1, &unhashed, &|_| {});
        let verdicts = |r: &[conclave_sim::sweep::SeedResult]| {
            r.iter()
                .map(|s| (s.seed, s.ok, s.failed.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(verdicts(&plain), verdicts(&one));
        g.bench_with_input(
            BenchmarkId::new(name.as_ref(), "jobs=1,no-trace-hash"),
            &1,
            |b, &j| b.iter(|| run_seeds(&scenario, &seeds, j, &unhashed, &|_| {})),
        );
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = sweeps
}
criterion_main!(benches);
