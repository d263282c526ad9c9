//! JUnit XML for CI systems: one test case per scenario and expected property, failures
//! with the seeds that failed and the command that replays each.

use conclave_sim::scenario::Scenario;
use conclave_sim::sweep::SeedResult;
pub use quick_junit::Report;
use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite};

/// The expectations of `scenario` as (name, "holds" or "violated"), in the file's order.
fn expectations(scenario: &Scenario) -> Vec<(String, &'static str)> {
    let holds = scenario.expect.iter().map(|p| (p.to_string(), "holds"));
    let violated = scenario
        .expect_violated
        .iter()
        .map(|p| (p.to_string(), "violated"));
    holds.chain(violated).collect()
}

/// The test suite of one scenario's runs: a case per expectation, and one for runs cut
/// short when there were any.
pub fn suite(scenario: &Scenario, file: &str, results: &[SeedResult]) -> TestSuite {
    let mut suite = TestSuite::new(file);
    let runs = results.len();
    let case = |name: String, failing: Vec<(u64, String)>, what: &str| {
        let status = if failing.is_empty() {
            TestCaseStatus::success()
        } else {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            s.set_message(format!("{what} in {} of {runs} seeds", failing.len()));
            s.set_type(what.to_string());
            let lines: Vec<String> = failing
                .iter()
                .map(|(seed, why)| {
                    format!("seed {seed}: {why}\n  conclave run {file} --seed {seed}")
                })
                .collect();
            s.set_description(lines.join("\n"));
            s
        };
        let mut c = TestCase::new(name, status);
        c.set_classname(file.to_string());
        c
    };
    for (name, expected) in expectations(scenario) {
        let failing: Vec<(u64, String)> = results
            .iter()
            .flat_map(|r| {
                r.failed
                    .iter()
                    .filter(|f| f.property == name && f.expected == expected)
                    .map(move |f| {
                        let at = f
                            .failed_at_us
                            .map(|t| format!(" at t={}", conclave_algorithms::Duration(t)))
                            .unwrap_or_default();
                        let detail = f
                            .detail
                            .as_deref()
                            .map(|d| format!(": {d}"))
                            .unwrap_or_default();
                        (r.seed, format!("{}{at}{detail}", what_of(expected)))
                    })
            })
            .collect();
        let title = format!(
            "{name} {}",
            if expected == "holds" {
                "holds"
            } else {
                "is violated"
            }
        );
        suite.add_test_case(case(title, failing, what_of(expected)));
    }
    let cut: Vec<(u64, String)> = results
        .iter()
        .filter_map(|r| r.incomplete.clone().map(|why| (r.seed, why)))
        .collect();
    if !cut.is_empty() || scenario.expect.is_empty() && scenario.expect_violated.is_empty() {
        suite.add_test_case(case("runs complete".into(), cut, "INCOMPLETE"));
    }
    suite
}

fn what_of(expected: &str) -> &'static str {
    if expected == "holds" {
        "violated"
    } else {
        "held, expected violated"
    }
}

/// A suite for a scenario that could not be loaded: one case in error.
pub fn bad_suite(file: &str, why: &str) -> TestSuite {
    let mut suite = TestSuite::new(file);
    let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
    status.set_message("bad scenario");
    status.set_description(why.to_string());
    let mut c = TestCase::new("scenario loads", status);
    c.set_classname(file.to_string());
    suite.add_test_case(c);
    suite
}

/// The whole XML of one sweep.
pub fn sweep_report(scenario: &Scenario, file: &str, results: &[SeedResult]) -> String {
    let mut report = Report::new("conclave sweep");
    report.add_test_suite(suite(scenario, file, results));
    to_xml(&report)
}

pub fn to_xml(report: &Report) -> String {
    report
        .to_string()
        .unwrap_or_else(|e| panic!("a JUnit report always serializes: {e}"))
}
