//! Random fault schedules drawn from a scenario's `sweep` block, one per seed (swarm
//! testing: each seed also picks which fault kinds are on, so different seeds stress
//! different mixes).
//!
//! The draws are made before the run, from the seed's own ChaCha stream ([`SWEEP_STREAM`]),
//! and written into an ordinary scenario: the fixed `faults` followed by the drawn ones in
//! time order, and the network with the drawn loss, duplication and delay. `conclave run`,
//! `check` and `sweep` all run that scenario, so a seed's run is the same whichever command
//! runs it, and [`Scenario::for_seed`] written out as a file (no `sweep` block) runs the same
//! run again.
//!
//! ```
//! use conclave_sim::scenario::{Fault, Scenario};
//! let s = Scenario::from_str(r#"Scenario(
//!     algorithm: Bully(),
//!     nodes: [(name: "a", id: 1), (name: "b", id: 2), (name: "c", id: 3)],
//!     run_for: "20s",
//!     sweep: (swarm: false, window: ("1s", "10s"),
//!             crashes: (count: (1, 1), lasts: ("1s", "3s"))),
//! )"#, "swept.ron").unwrap();
//! let run = s.for_seed(7);
//! assert!(run.sweep.is_none());
//! assert!(matches!(run.faults[0].fault, Fault::Crash(_)));
//! assert!(matches!(run.faults[1].fault, Fault::Restart(_)));
//! // The same seed draws the same faults.
//! assert_eq!(format!("{:?}", run.faults), format!("{:?}", s.for_seed(7).faults));
//! ```

use crate::locate::Seg;
use crate::run::{run_verdict_kept, Kept, RunOptions, RunReport, Verdict};
use crate::scenario::{
    field, validate_fault_list, Delay, Duration, Fault, FaultSpec, Invalid, Scenario,
};
use crate::world::{stream, INTERRUPTED};
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The ChaCha stream of a seed that the sweep's draws come from; the network, the
/// algorithms and the failure detector draw from streams of their own, so adding a `sweep`
/// block changes none of their draws.
pub const SWEEP_STREAM: u64 = 5;

/// The most faults of one kind a seed may draw: far more than a run needs, and a bound on
/// what a mistyped count makes a run do.
pub const MAX_COUNT: u32 = 1000;

/// A scenario's `sweep` block: what random faults each seed adds (scenarios/README.md).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SweepSpec {
    /// Swarm testing: each seed turns each fault kind listed here on with probability 1/2
    /// (and each network range too), so seeds differ in mix, not only in timing. On by
    /// default; off, every listed kind is on in every seed.
    pub swarm: Option<bool>,
    /// The faults strike in `from..until` (default: the whole run).
    pub window: Option<(Duration, Duration)>,
    /// The processes faults may strike, by name (default: every node, no service).
    pub targets: Vec<String>,
    /// A process crashes and, if `lasts` is given, restarts that long after.
    pub crashes: Option<Episodes>,
    /// A process pauses (a feigned failure) and resumes after `lasts`.
    pub pauses: Option<Episodes>,
    /// A process leaves gracefully and, if `lasts` is given, restarts after it.
    pub leaves: Option<Episodes>,
    /// The network splits into `groups` (every process in one) and heals after `lasts`.
    pub partitions: Option<Partitions>,
    /// The link between two processes is cut both ways and restored after `lasts`.
    pub blocks: Option<Episodes>,
    /// The message loss probability of the run, drawn uniformly in `lo..=hi`.
    pub loss: Option<(f64, f64)>,
    /// The duplication probability of the run, drawn uniformly in `lo..=hi`.
    pub duplicate: Option<(f64, f64)>,
    /// The run's delay distribution, one of these drawn uniformly.
    pub delays: Vec<Delay>,
}

/// Faults of one kind: how many, and how long each lasts before it is undone.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Episodes {
    /// How many, drawn uniformly in `min..=max`.
    pub count: (u32, u32),
    /// How long until the fault is undone, drawn uniformly in `min..=max`; without it the
    /// fault lasts to the end (a crash is never followed by a restart).
    #[serde(default)]
    pub lasts: Option<(Duration, Duration)>,
}

/// Partitions: how many, how long each, and into how many groups.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Partitions {
    pub count: (u32, u32),
    #[serde(default)]
    pub lasts: Option<(Duration, Duration)>,
    /// Groups of each partition, drawn uniformly in `min..=max` (default 2 to 2).
    #[serde(default = "two_groups")]
    pub groups: (u32, u32),
}

fn two_groups() -> (u32, u32) {
    (2, 2)
}

impl SweepSpec {
    fn swarm(&self) -> bool {
        self.swarm.unwrap_or(true)
    }
}

impl Scenario {
    /// The scenario that seed `seed` runs: this one, or, with a `sweep` block, a copy with the
    /// faults and the network the seed draws written in and no `sweep` block.
    pub fn for_seed(&self, seed: u64) -> Cow<'_, Scenario> {
        let Some(sweep) = &self.sweep else {
            return Cow::Borrowed(self);
        };
        let mut out = self.clone();
        out.sweep = None;
        draw(sweep, &mut out, seed);
        Cow::Owned(out)
    }
}

/// What one draw adds: a fault, and the one that undoes it, if it is undone in the run.
type Episode = Vec<FaultSpec>;

/// Draws seed `seed`'s faults and network into `s` (which holds the fixed faults).
fn draw(sweep: &SweepSpec, s: &mut Scenario, seed: u64) {
    let mut rng = stream(seed, SWEEP_STREAM);
    let run_for = s.run_for.as_micros();
    let (from, until) = sweep
        .window
        .map_or((0, run_for), |(a, b)| (a.as_micros(), b.as_micros()));
    let targets: Vec<String> = if sweep.targets.is_empty() {
        s.nodes.iter().map(|n| n.name.clone()).collect()
    } else {
        sweep.targets.clone()
    };
    let everyone: Vec<String> = s.node_index().into_keys().collect();
    let swarm = sweep.swarm();
    // Whether a kind is on in this seed: always drawn, so that turning swarm off or a kind
    // on changes no later draw but its own.
    let on = |rng: &mut rand_chacha::ChaCha8Rng| {
        let coin = rng.random_bool(0.5);
        !swarm || coin
    };
    let between = |rng: &mut rand_chacha::ChaCha8Rng, (lo, hi): (u64, u64)| {
        if lo >= hi {
            lo
        } else {
            rng.random_range(lo..=hi)
        }
    };
    let span = |r: Option<(Duration, Duration)>| r.map(|(a, b)| (a.as_micros(), b.as_micros()));
    let fixed = s.faults.len();
    let mut drawn: Vec<FaultSpec> = Vec::new();
    // Each episode is kept only if the whole schedule stays one the simulator can carry
    // out (no restart of a running node, no pause of a crashed one...).
    let keep = |s: &mut Scenario, drawn: &mut Vec<FaultSpec>, episode: Episode| {
        let mut all = s.faults[..fixed].to_vec();
        all.extend(drawn.iter().cloned());
        all.extend(episode.iter().cloned());
        if validate_fault_list(&all, s).is_ok() {
            drawn.extend(episode);
        }
    };
    let at_and_end = |rng: &mut rand_chacha::ChaCha8Rng, lasts| {
        let at = between(rng, (from, until.saturating_sub(1).max(from)));
        let end = span(lasts).map(|l| at.saturating_add(between(rng, l)));
        (at, end.filter(|&e| e < run_for))
    };
    let fault = |at: u64, fault: Fault| FaultSpec {
        at: Duration(at),
        fault,
    };
    // Each kind: its block, the fault that strikes, and the one that undoes it.
    type Named = fn(String) -> Fault;
    let singles: [(Option<&Episodes>, Named, Named); 3] = [
        (sweep.crashes.as_ref(), Fault::Crash, Fault::Restart),
        (sweep.pauses.as_ref(), Fault::Pause, Fault::Resume),
        (sweep.leaves.as_ref(), Fault::Leave, Fault::Restart),
    ];
    for (spec, strike, undo) in singles {
        let Some(e) = spec else { continue };
        if !on(&mut rng) {
            continue;
        }
        let count = between(&mut rng, (e.count.0.into(), e.count.1.into()));
        for _ in 0..count {
            let who = targets[rng.random_range(0..targets.len())].clone();
            let (at, end) = at_and_end(&mut rng, e.lasts);
            let mut episode = vec![fault(at, strike(who.clone()))];
            if let Some(end) = end {
                episode.push(fault(end, undo(who)));
            }
            keep(s, &mut drawn, episode);
        }
    }
    if let Some(p) = &sweep.partitions {
        if on(&mut rng) {
            let count = between(&mut rng, (p.count.0.into(), p.count.1.into()));
            for _ in 0..count {
                let k = between(&mut rng, (p.groups.0.into(), p.groups.1.into())) as usize;
                let mut groups: Vec<Vec<String>> = vec![Vec::new(); k];
                for name in &everyone {
                    groups[rng.random_range(0..k)].push(name.clone());
                }
                groups.retain(|g| !g.is_empty());
                let (at, end) = at_and_end(&mut rng, p.lasts);
                let mut episode = vec![fault(at, Fault::Partition(groups))];
                if let Some(end) = end {
                    episode.push(fault(end, Fault::Heal));
                }
                keep(s, &mut drawn, episode);
            }
        }
    }
    if let Some(e) = &sweep.blocks {
        if on(&mut rng) && targets.len() >= 2 {
            let count = between(&mut rng, (e.count.0.into(), e.count.1.into()));
            for _ in 0..count {
                let a = rng.random_range(0..targets.len());
                let b = (a + rng.random_range(1..targets.len())) % targets.len();
                let (a, b) = (targets[a].clone(), targets[b].clone());
                let (at, end) = at_and_end(&mut rng, e.lasts);
                let mut episode = vec![fault(at, Fault::Block(a.clone(), b.clone()))];
                if let Some(end) = end {
                    episode.push(fault(end, Fault::Unblock(a, b)));
                }
                keep(s, &mut drawn, episode);
            }
        }
    }
    let rate = |rng: &mut rand_chacha::ChaCha8Rng, r: Option<(f64, f64)>, now: &mut f64| {
        if let Some((lo, hi)) = r {
            let turned_on = on(rng);
            let p = if hi > lo {
                rng.random_range(lo..=hi)
            } else {
                lo
            };
            if turned_on {
                *now = p;
            }
        }
    };
    rate(&mut rng, sweep.loss, &mut s.network.loss);
    rate(&mut rng, sweep.duplicate, &mut s.network.duplicate);
    if !sweep.delays.is_empty() {
        s.network.delay = sweep.delays[rng.random_range(0..sweep.delays.len())].clone();
    }
    // In time order after the fixed faults; at one instant, in the order drawn.
    drawn.sort_by_key(|f| f.at);
    s.faults.extend(drawn);
}

/// Shard `index` of `count`: the seeds whose offset from `--from` is `index` modulo
/// `count` (interleaved, so that every shard gets a like share of slow and fast seeds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Shard, String> {
        let bad = || {
            format!(
                "{s:?} is not a shard: write I/K, shard I of K, counting from 0 (0/3, 1/3, 2/3)"
            )
        };
        let (i, k) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (u64, u64) = (
            i.trim().parse().map_err(|_| bad())?,
            k.trim().parse().map_err(|_| bad())?,
        );
        if count == 0 {
            return Err(format!("shard {s}: there is no shard of 0 shards"));
        }
        if index >= count {
            return Err(format!(
                "shard {s}: shards of {count} are numbered 0 to {}",
                count - 1
            ));
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// One failed expectation of one seed.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Failed {
    pub property: String,
    /// "holds" or "violated": what the scenario expected of it.
    pub expected: String,
    pub failed_at_us: Option<u64>,
    /// The first violating state, as the checker names it ("a and c both lead").
    pub detail: Option<String>,
    /// The last fault at or before the violation, as the scenario writes it, with its
    /// time (`Resume("n5") at 3.97s`); none if no fault came before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

impl Failed {
    /// What the failures of a property are grouped by: the kind of the last fault before
    /// the violation.
    pub fn cause(&self) -> String {
        match &self.after {
            Some(a) => format!("after a {}", a.split(['(', ' ']).next().unwrap_or_default()),
            None => "with no fault before it".into(),
        }
    }
}

/// One line of a `--results` file: one seed's run.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SeedResult {
    pub seed: u64,
    pub ok: bool,
    pub trace_hash: String,
    pub failed: Vec<Failed>,
    /// Why the run was cut short, if it was (it is then not ok).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incomplete: Option<String>,
}

/// What a run found, in a line of `--results`; the last fault before each violation is
/// looked up in `scenario` as the seed ran it.
pub fn result_of(scenario: &Scenario, r: &RunReport) -> SeedResult {
    verdict_result(scenario, Verdict::of(r))
}

/// [`result_of`] a run's verdict.
pub fn verdict_result(scenario: &Scenario, r: Verdict) -> SeedResult {
    let run = (!r.ok).then(|| scenario.for_seed(r.seed));
    let after = |t: Option<u64>| {
        let (run, t) = (run.as_ref()?, t?);
        run.faults
            .iter()
            .filter(|f| f.at.as_micros() <= t)
            .max_by_key(|f| f.at)
            .map(|f| format!("{} at {}", f.fault, f.at))
    };
    SeedResult {
        seed: r.seed,
        ok: r.ok,
        trace_hash: r.trace_hash,
        failed: r
            .failed
            .iter()
            .map(|e| Failed {
                property: e.name.clone(),
                expected: e.expected.to_string(),
                failed_at_us: e.failed_at_us,
                detail: e.detail.clone(),
                after: after(e.failed_at_us),
            })
            .collect(),
        incomplete: r.incomplete,
    }
}

/// The last line of a `--results` file: what ran, and how fast.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Totals {
    /// The scenario file as given to `conclave sweep`.
    pub scenario: String,
    pub from: u64,
    pub seeds: u64,
    #[serde(default)]
    pub shard: Option<String>,
    pub runs: u64,
    pub failed: u64,
    pub seconds: f64,
    pub runs_per_second: f64,
    pub jobs: usize,
    pub version: String,
}

/// The seeds `from..from+count`, only shard `shard`'s when sharded.
pub fn shard_seeds(from: u64, count: u64, shard: Option<Shard>) -> Vec<u64> {
    let all = from..from.saturating_add(count);
    match shard {
        None => all.collect(),
        Some(s) => all.filter(|x| (x - from) % s.count == s.index).collect(),
    }
}

/// Runs `seeds` of `scenario` on `jobs` threads, calling `done` with the results of each
/// batch of a few runs (from the thread that ran them: a progress bar's update costs about
/// 600 instructions, which a four-node run should not pay); the results in seed order, the
/// same for any number of jobs. Stops handing out seeds on Ctrl-C ([`INTERRUPTED`]; the runs
/// under way end INCOMPLETE).
pub fn run_seeds(
    scenario: &Scenario,
    seeds: &[u64],
    jobs: usize,
    opts: &RunOptions,
    done: &(dyn Fn(&[SeedResult]) + Sync),
) -> Vec<SeedResult> {
    let next = AtomicUsize::new(0);
    // Seeds are handed out a few at a time: runs of small clusters take microseconds.
    const BATCH: usize = 8;
    let mut out: Vec<SeedResult> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..jobs.max(1))
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    let mut kept = Kept::default();
                    while !INTERRUPTED.load(Ordering::Relaxed) {
                        let start = next.fetch_add(BATCH, Ordering::Relaxed);
                        if start >= seeds.len() {
                            break;
                        }
                        let first = mine.len();
                        for &seed in &seeds[start..(start + BATCH).min(seeds.len())] {
                            mine.push(verdict_result(
                                scenario,
                                run_verdict_kept(scenario, seed, opts, &mut kept),
                            ));
                        }
                        done(&mine[first..]);
                    }
                    mine
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    out.sort_by_key(|r| r.seed);
    out
}

/// Checks a `sweep` block against its scenario: counts and ranges in order, rates in
/// 0..=1, the window inside the run, targets that exist.
pub(crate) fn validate_sweep(s: &Scenario, sweep: &SweepSpec) -> Result<(), Invalid> {
    let at = |f: &str| vec![field("sweep"), field(f)];
    let names = s.node_index();
    if let Some((a, b)) = sweep.window {
        if a >= b {
            return Err((
                at("window"),
                format!("the window starts at {a}, not before its end {b}"),
            ));
        }
        if b > s.run_for {
            return Err((
                at("window"),
                format!("the window ends at {b}, after the run ({})", s.run_for),
            ));
        }
    }
    let mut seen = BTreeMap::new();
    for (i, t) in sweep.targets.iter().enumerate() {
        let mut segs = at("targets");
        segs.push(Seg::Index(i));
        if !names.contains_key(t) {
            return Err((segs, format!("no node or service is named {t:?}")));
        }
        if let Some(j) = seen.insert(t.as_str(), i) {
            return Err((segs, format!("{t:?} is listed twice (also targets[{j}])")));
        }
    }
    let count = |kind: &str, (lo, hi): (u32, u32)| -> Result<(), Invalid> {
        let mut segs = at(kind);
        segs.push(field("count"));
        if lo > hi {
            return Err((segs, format!("count ({lo}, {hi}) has min above max")));
        }
        if hi > MAX_COUNT {
            return Err((segs, format!("count {hi} is above {MAX_COUNT}")));
        }
        Ok(())
    };
    let lasts = |kind: &str, l: Option<(Duration, Duration)>| -> Result<(), Invalid> {
        if let Some((a, b)) = l {
            if a > b {
                let mut segs = at(kind);
                segs.push(field("lasts"));
                return Err((segs, format!("lasts ({a}, {b}) has min above max")));
            }
        }
        Ok(())
    };
    for (kind, e) in [
        ("crashes", &sweep.crashes),
        ("pauses", &sweep.pauses),
        ("leaves", &sweep.leaves),
        ("blocks", &sweep.blocks),
    ] {
        if let Some(e) = e {
            count(kind, e.count)?;
            lasts(kind, e.lasts)?;
        }
    }
    if let Some(p) = &sweep.partitions {
        count("partitions", p.count)?;
        lasts("partitions", p.lasts)?;
        let (lo, hi) = p.groups;
        let most = names.len() as u32;
        if lo < 2 || lo > hi || hi > most {
            let mut segs = at("partitions");
            segs.push(field("groups"));
            return Err((
                segs,
                format!("groups ({lo}, {hi}): a partition has 2 to {most} groups (the processes), min first"),
            ));
        }
    }
    for (name, r) in [("loss", sweep.loss), ("duplicate", sweep.duplicate)] {
        if let Some((lo, hi)) = r {
            for (k, p) in [lo, hi].into_iter().enumerate() {
                if !(0.0..=1.0).contains(&p) {
                    let mut segs = at(name);
                    segs.push(Seg::Index(k));
                    return Err((segs, format!("a rate is a probability in 0..=1, not {p}")));
                }
            }
            if lo > hi {
                return Err((at(name), format!("({lo}, {hi}) has min above max")));
            }
        }
    }
    for (i, d) in sweep.delays.iter().enumerate() {
        if let Delay::Uniform { min, max } = d {
            if min > max {
                let mut segs = at("delays");
                segs.push(Seg::Index(i));
                return Err((segs, format!("uniform delay has min {min} above max {max}")));
            }
        }
    }
    Ok(())
}
