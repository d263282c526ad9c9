//! Writing the HTML report of a run of 100,000 trace events (16 nodes under loss,
//! duplication, crashes, a pause, a partition and a blocked link: tests/common/mod.rs).
//! The page must be written in well under a second; it embeds the chart's data as compact
//! JSON and draws only the time in view, so its size and the time to open it grow with the
//! run only through that data.

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;

#[path = "../tests/common/mod.rs"]
mod common;

fn html_of_a_100k_event_run(c: &mut Criterion) {
    let run = common::long(100_000);
    let source = conclave_reports::Source::Run(&run);
    let siblings = conclave_reports::html::Siblings::of(&source.stem());
    let page = conclave_reports::html::report(&source, &siblings);
    let trace = run.trace.as_deref().unwrap_or(&[]);
    let sends = trace
        .iter()
        .filter(|e| matches!(e.what, conclave_sim::trace::What::Send { .. }))
        .count();
    eprintln!(
        "html: {} trace events, {sends} messages sent, a page of {:.1} MiB",
        trace.len(),
        page.len() as f64 / (1 << 20) as f64
    );
    let mut group = c.benchmark_group("report");
    group.sample_size(20);
    group.bench_function("html of a 100,000-event run", |b| {
        b.iter(|| conclave_reports::html::report(black_box(&source), &siblings))
    });
    group.bench_function("html of a 100,000-event run, written to a file", |b| {
        let dir = std::env::temp_dir().join("conclave-bench-html");
        std::fs::create_dir_all(&dir).expect("a temporary folder");
        let path = dir.join("long.html");
        b.iter(|| {
            std::fs::write(&path, conclave_reports::html::report(&source, &siblings))
                .expect("the page is written")
        })
    });
    let nodes = source.nodes();
    group.bench_function("mermaid of a 100,000-event run", |b| {
        b.iter(|| conclave_reports::mermaid::diagram(black_box(trace), &nodes, "long"))
    });
    group.bench_function("shiviz of a 100,000-event run", |b| {
        b.iter(|| conclave_reports::shiviz::log(black_box(trace)))
    });
    group.bench_function("text of a 100,000-event run", |b| {
        b.iter(|| black_box(&source).text())
    });
    group.bench_function("all four files of a 100,000-event run", |b| {
        b.iter(|| conclave_reports::files(black_box(&source)))
    });
    group.finish();
}

criterion_group!(benches, html_of_a_100k_event_run);
criterion_main!(benches);
