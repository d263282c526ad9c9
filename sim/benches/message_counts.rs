//! Election message counts and election latency as criterion measurements, per algorithm and
//! cluster size: criterion's statistics and HTML reports over what an election costs rather
//! than over wall-clock time.
//!
//! Two custom measurements ([`criterion::measurement::Measurement`]):
//! - [`ElectionMessages`]: the election messages of one election (`conclave compare`'s
//!   count: from the case's last fault, or the start, until the cluster settles for good;
//!   heartbeats, probes and checks not counted), in "msgs";
//! - [`ElectionLatency`]: the virtual time of that election, from the last fault to the
//!   stable leader, in virtual µs/ms/s.
//!
//! Each iteration runs one case of one scenario of `scenarios/compare/` (one per algorithm)
//! on N nodes with the next seed, exactly as `conclave compare` runs it, and reports its
//! value; criterion divides a sample's sum by its iterations, so a sample is the mean over
//! its seeds. Benchmark ids are `election_messages/CASE/ALGORITHM/N` and
//! `election_latency/CASE/ALGORITHM/N`: each group (a measure and a case) holds every
//! algorithm at every size, so its report page draws them side by side, and a line chart
//! of each algorithm against N. A case an algorithm cannot make (see `conclave compare`),
//! or a run that never settles, is left out with a line on standard error.
//!
//! Most of these counts are exact: the same on every seed. Criterion 0.5 panicked plotting
//! a benchmark whose samples are all equal (its density estimate divides by a zero spread;
//! bheisler/criterion.rs#720); the workspace's criterion 0.8 plots them.
//!
//! Run: `cargo bench -p conclave-sim --bench message_counts` (10 minutes on this
//! repository's 2-core machine, measured once; add a filter such as
//! `-- election_messages/all-start` for one group). No run is compared with an earlier one
//! (see [`NO_BASELINE`]). The HTML reports are written
//! under the target directory's `criterion/` folder: `target/criterion/report/index.html`,
//! and per group `target/criterion/election_messages_all-start/report/index.html` (or under
//! `$CARGO_TARGET_DIR/criterion/` when that is set).

use conclave_sim::compare::{run_one, scale, Case};
use conclave_sim::scenario::Scenario;
use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{AxisScale, BenchmarkId, Criterion, PlotConfiguration, SamplingMode, Throughput};
use std::path::Path;
use std::time::Duration;

/// The algorithms compared: `scenarios/compare/`, one scenario each.
const SCENARIOS: [&str; 6] = [
    "bully.ron",
    "garcia_molina.ron",
    "invitation.ron",
    "async_bully.ron",
    "gcd_bully.ron",
    "quorum.ron",
];
const SIZES: [usize; 4] = [4, 8, 16, 32];

/// Election messages of one election.
pub struct ElectionMessages;
/// Virtual microseconds from the last fault to the stable leader.
pub struct ElectionLatency;

struct Msgs;
impl ValueFormatter for Msgs {
    fn scale_values(&self, _typical: f64, _values: &mut [f64]) -> &'static str {
        "msgs"
    }
    fn scale_throughputs(&self, _t: f64, _th: &Throughput, _values: &mut [f64]) -> &'static str {
        "msgs"
    }
    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "msgs"
    }
}

struct VirtualTime;
impl ValueFormatter for VirtualTime {
    fn scale_values(&self, typical: f64, values: &mut [f64]) -> &'static str {
        let (divisor, unit) = if typical >= 1e6 {
            (1e6, "s (virtual)")
        } else if typical >= 1e3 {
            (1e3, "ms (virtual)")
        } else {
            (1.0, "µs (virtual)")
        };
        for v in values {
            *v /= divisor;
        }
        unit
    }
    fn scale_throughputs(&self, t: f64, _th: &Throughput, values: &mut [f64]) -> &'static str {
        self.scale_values(t, values)
    }
    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "µs (virtual)"
    }
}

/// Both measurements take their values from the runs (`iter_custom`), not from a clock:
/// `start` and `end` are never what is measured.
macro_rules! counted {
    ($t:ty, $formatter:expr) => {
        impl Measurement for $t {
            type Intermediate = ();
            type Value = u64;
            fn start(&self) {}
            fn end(&self, _: ()) -> u64 {
                0
            }
            fn add(&self, a: &u64, b: &u64) -> u64 {
                a + b
            }
            fn zero(&self) -> u64 {
                0
            }
            fn to_f64(&self, v: &u64) -> f64 {
                *v as f64
            }
            fn formatter(&self) -> &dyn ValueFormatter {
                &$formatter
            }
        }
    };
}
counted!(ElectionMessages, Msgs);
counted!(ElectionLatency, VirtualTime);

fn load(name: &str) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios/compare")
        .join(name);
    Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// What one run of a case measures.
#[derive(Clone, Copy)]
enum Measure {
    Messages,
    Latency,
}

/// The value of one case with one seed, or why there is none.
fn value(scaled: &Scenario, case: Case, seed: u64, measure: Measure) -> Result<u64, String> {
    let run = run_one(scaled, case, seed)?;
    let settled = run
        .time_to_stable_leader_us
        .ok_or("no stable leader (never settles)")?;
    Ok(match measure {
        Measure::Messages => run.election_messages,
        Measure::Latency => settled,
    })
}

/// The seeds the iterations go round.
const SEEDS: u64 = 64;

/// Seeds a benchmark's first look runs: a case that cannot be made, or a seed that never
/// settles, leaves the benchmark out.
const PROBE_SEEDS: u64 = 4;

fn bench<M: Measurement<Value = u64>>(c: &mut Criterion<M>, measure: Measure, prefix: &str) {
    for case in Case::ALL {
        let mut group = c.benchmark_group(format!("{prefix}/{}", case.name()));
        group.sampling_mode(SamplingMode::Flat);
        // Counts grow as N² for some algorithms and as N for others.
        group.plot_config(PlotConfiguration::default().summary_scale(AxisScale::Logarithmic));
        for file in SCENARIOS {
            let base = load(file);
            let algorithm = base.algorithm.name();
            for n in SIZES {
                let scaled = scale(&base, n)
                    .unwrap_or_else(|e| panic!("{file}: {e}"))
                    .scenario;
                let first: Result<Vec<u64>, String> = (0..PROBE_SEEDS)
                    .map(|seed| value(&scaled, case, seed, measure))
                    .collect();
                if let Err(why) = first {
                    eprintln!("{prefix}/{}/{algorithm}/{n}: left out: {why}", case.name());
                    continue;
                }
                let mut seed = 0u64;
                group.bench_function(BenchmarkId::new(algorithm, n), |b| {
                    b.iter_custom(|iters| {
                        (0..iters)
                            .map(|_| {
                                seed = (seed + 1) % SEEDS;
                                value(&scaled, case, seed, measure).unwrap_or_else(|why| {
                                    panic!("{algorithm} N={n} seed {seed}: {why}")
                                })
                            })
                            .sum()
                    })
                });
            }
        }
        group.finish();
    }
}

/// A baseline no run saves: criterion compares each run with this one only, so never with
/// an earlier run. Its comparison of two samples that do not vary (an exact count, run
/// twice) has an empty t distribution, which 0.8.2 panics plotting; a count that changes is
/// caught by `tests/message_counts_report.rs` instead.
const NO_BASELINE: &str = "message-counts-not-compared";

fn config<M: Measurement>(m: M) -> Criterion<M> {
    Criterion::default()
        .with_measurement(m)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_millis(500))
        .configure_from_args()
        // After the command line, whose --save-baseline (default "base") would set it back.
        .retain_baseline(NO_BASELINE.into(), false)
}

fn main() {
    let mut messages = config(ElectionMessages);
    bench(&mut messages, Measure::Messages, "election_messages");
    let mut latency = config(ElectionLatency);
    bench(&mut latency, Measure::Latency, "election_latency");
    messages.final_summary();
    latency.final_summary();
}
