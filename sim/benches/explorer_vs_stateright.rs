//! Conclave's explorer against stateright, side by side, on the same models.
//!
//! "The same model" is taken literally: stateright's `Model` is implemented over Conclave's
//! own transition function (`explore::Model::{init, actions, next}`), so both checkers walk
//! exactly the same state space, and the benchmark asserts that both count the same unique
//! states before timing anything. What differs is the search engine: state storage,
//! fingerprinting, queueing. Both run breadth-first on one thread. stateright stops once
//! every property has a counterexample, so it checks `AtMostOneLeader` only on models where
//! it holds; on the asynchronous Bully model (where it does not) its property is `true`, so
//! that both checkers walk the whole space.
//!
//! Run: `cargo bench -p conclave-sim --bench explorer_vs_stateright`; add
//! `CONCLAVE_BENCH_LARGE=1` for the textbook 5-node Bully (14 million states) and the
//! 1.6-million-state asynchronous Bully model (a minute or more per iteration per checker).

use conclave_algorithms::async_bully::AsyncBully;
use conclave_algorithms::bully::Bully;
use conclave_algorithms::quorum::Quorum;
use conclave_algorithms::Algorithm;
use conclave_sim::explore::{explore_with, Choice, ExploreOptions, Model, State};
use conclave_sim::scenario::{AlgorithmSpec, Scenario};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use stateright::{Checker, Model as SrModel, Property};
use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// Counts heap bytes in use and their peak, so each checker's memory can be measured over
/// its own run, in the same process.
struct Counting;

static IN_USE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = IN_USE.fetch_add(layout.size(), Relaxed) + layout.size();
            PEAK.fetch_max(now, Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        IN_USE.fetch_sub(layout.size(), Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new) };
        if !p.is_null() {
            if new >= layout.size() {
                let now = IN_USE.fetch_add(new - layout.size(), Relaxed) + new - layout.size();
                PEAK.fetch_max(now, Relaxed);
            } else {
                IN_USE.fetch_sub(layout.size() - new, Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// The peak heap growth while `f` runs, in bytes.
fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = IN_USE.load(Relaxed);
    PEAK.store(base, Relaxed);
    let out = f();
    (out, PEAK.load(Relaxed) - base)
}

/// Conclave's model, seen by stateright; `check` says whether its property is
/// `AtMostOneLeader` or `true`.
struct Shared<A: Algorithm>(Model<A>, bool);

impl<A> SrModel for Shared<A>
where
    A: Algorithm + Send + Sync + 'static,
    A::Msg: Send + Sync,
    A::Timer: Send + Sync,
    A::Params: Send + Sync,
{
    type State = State<A>;
    type Action = Choice;

    fn init_states(&self) -> Vec<State<A>> {
        vec![self.0.init()]
    }
    fn actions(&self, state: &State<A>, actions: &mut Vec<Choice>) {
        actions.extend(self.0.actions(state));
    }
    fn next_state(&self, state: &State<A>, action: Choice) -> Option<State<A>> {
        self.0.next(state, action)
    }
    fn properties(&self) -> Vec<Property<Self>> {
        vec![Property::always(
            "at most one leader",
            |m: &Self, s: &State<A>| !m.1 || m.0.safe(s),
        )]
    }
}

/// An explorer scenario, with only the properties stateright checks too: liveness (which
/// makes Conclave keep every edge) is dropped, so both do the same work.
fn scenario(name: &str) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios/explore")
        .join(name);
    let mut s = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    if let Some(e) = &mut s.explore {
        e.expect
            .retain(|p| !matches!(p, conclave_sim::scenario::Property::EventualLeader(_)));
        e.expect_violated
            .retain(|p| !matches!(p, conclave_sim::scenario::Property::EventualLeader(_)));
    }
    s
}

fn conclave_states<A>(s: &Scenario, model: Model<A>) -> u64
where
    A: Algorithm + Send + Sync,
    A::Msg: Send + Sync,
    A::Timer: Send + Sync,
    A::Params: Sync,
{
    let opts = ExploreOptions {
        jobs: 1,
        max_states: None,
        ..ExploreOptions::default()
    };
    explore_with(model, s, "bench.ron", &opts).unique_states
}

fn stateright_states<A>(model: Model<A>, check: bool) -> u64
where
    A: Algorithm + Send + Sync + 'static,
    A::Msg: Send + Sync,
    A::Timer: Send + Sync,
    A::Params: Send + Sync,
{
    let checker = Shared(model, check).checker().threads(1).spawn_bfs().join();
    checker.unique_state_count() as u64
}

fn side_by_side<A>(c: &mut Criterion, file: &str, check: bool, make: impl Fn(&Scenario) -> Model<A>)
where
    A: Algorithm + Send + Sync + 'static,
    A::Msg: Send + Sync,
    A::Timer: Send + Sync,
    A::Params: Send + Sync,
{
    let s = scenario(file);
    let (ours, our_bytes) = peak_during(|| conclave_states(&s, make(&s)));
    let (theirs, their_bytes) = peak_during(|| stateright_states(make(&s), check));
    assert_eq!(
        ours, theirs,
        "{file}: both checkers must see the same space"
    );
    let per = |b: usize| b as f64 / ours as f64;
    println!(
        "memory {file}: {ours} states; peak heap conclave {:.1} MiB ({:.0} B/state), stateright {:.1} MiB ({:.0} B/state): conclave uses {:.3} of stateright's memory per state",
        our_bytes as f64 / 1048576.0,
        per(our_bytes),
        their_bytes as f64 / 1048576.0,
        per(their_bytes),
        our_bytes as f64 / their_bytes as f64
    );
    let mut group = c.benchmark_group(format!("explore/{file}"));
    group.throughput(Throughput::Elements(ours));
    group.sample_size(10);
    group.bench_function(BenchmarkId::new("conclave", ours), |b| {
        b.iter(|| conclave_states(&s, make(&s)))
    });
    group.bench_function(BenchmarkId::new("stateright", theirs), |b| {
        b.iter(|| stateright_states(make(&s), check))
    });
    group.finish();
}

fn bully(s: &Scenario) -> Model<Bully> {
    match &s.algorithm {
        AlgorithmSpec::Bully(p) => Model::new(s, p.clone()),
        _ => unreachable!("a Bully scenario"),
    }
}

fn bench(c: &mut Criterion) {
    // The anchor: Bully with a perfect failure detector, 5 nodes, 2 crashes.
    side_by_side(c, "async_bully5_crash2_bounded.ron", true, |s| {
        match &s.algorithm {
            AlgorithmSpec::AsyncBully(p) => Model::<AsyncBully>::new(s, p.clone()),
            _ => unreachable!("an AsyncBully scenario"),
        }
    });
    side_by_side(c, "bully4_crash_bounded.ron", true, bully);
    side_by_side(c, "quorum3_partitions.ron", true, |s| match &s.algorithm {
        AlgorithmSpec::Quorum(p) => Model::<Quorum>::new(s, p.clone()),
        _ => unreachable!(),
    });
    if std::env::var_os("CONCLAVE_BENCH_LARGE").is_some() {
        // The textbook Bully (timeouts, no detector) at the anchor's size: 14 M states.
        side_by_side(c, "bully5_crash2_bounded.ron", true, bully);
        side_by_side(c, "bully3_crash_async.ron", false, bully);
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
