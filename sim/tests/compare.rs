//! `conclave compare`'s runs (`conclave_sim::compare`): the textbook Bully counts at the
//! sizes the compare table shows, who notices a crash first, and which scenarios scale.

use conclave_sim::compare::{compare, scale, Case, Cell, Measured};
use conclave_sim::scenario::Scenario;
use std::path::Path;

fn load(name: &str) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios")
        .join(name);
    Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

fn measured(cell: &Cell) -> &Measured {
    match cell {
        Cell::Measured(m) => m,
        other => panic!("not measured: {other:?}"),
    }
}

/// With equal delays (a constant 10 ms on FIFO links, as sim/tests/message_counts.rs has
/// them) the compare table's Bully rows are the textbook counts, on every seed: N² − 1 when
/// all start together, (N − 1)² + N − 2 when the coordinator crashes and only the lowest
/// node notices (it alone, first, on every run), for N = 4 and 8.
#[test]
fn bully_rows_are_the_textbook_counts_for_4_and_8_nodes() {
    let s = load("compare/bully.ron");
    let cases = [Case::AllStart, Case::CoordinatorCrashLowestDetects];
    let c = compare(&s, "compare/bully.ron", &[4, 8], &[0, 1, 2], &cases).unwrap();
    for (row, formula) in c.cases.iter().zip(["N²−1", "(N−1)²+N−2"]) {
        for (n, cell) in &row.cells {
            let n64 = *n as u64;
            let want = match row.case {
                Case::AllStart => n64 * n64 - 1,
                _ => (n64 - 1) * (n64 - 1) + n64 - 2,
            };
            let m = measured(cell);
            let textbook = m.textbook.expect("Bully has textbook figures");
            assert_eq!((textbook.formula, textbook.messages), (formula, want));
            assert_eq!(m.runs.len(), 3);
            for r in &m.runs {
                let at = format!("{} N={n} seed {}", row.case.name(), r.seed);
                assert_eq!(r.election_messages, want, "{at}");
                assert_eq!(r.elections_won, 1, "{at}");
                assert!(r.time_to_stable_leader_us.is_some(), "{at}: settles");
                if row.case == Case::CoordinatorCrashLowestDetects {
                    assert_eq!(r.first_to_notice, ["n1"], "{at}: the lowest alone noticed");
                    assert_eq!(r.premise_held, Some(true), "{at}");
                    assert_eq!(r.leaders, [format!("n{}", n - 1)], "{at}");
                } else {
                    assert_eq!(r.leaders, [format!("n{n}")], "{at}");
                }
            }
            let stat = m.messages.unwrap();
            assert_eq!((stat.min, stat.max), (want, want));
        }
    }
}

/// When every node notices at once, each live node holds one election, as when the lowest
/// notices first: the same (N − 1)² + N − 2, every node noticing at one instant.
#[test]
fn bully_all_notice_every_node_notices_at_once() {
    let s = load("compare/bully.ron");
    let c = compare(&s, "bully.ron", &[5], &[0], &[Case::AllNotice]).unwrap();
    let m = measured(&c.cases[0].cells[0].1);
    let r = &m.runs[0];
    assert_eq!(r.first_to_notice, ["n1", "n2", "n3", "n4"]);
    assert_eq!(r.premise_held, Some(true));
    assert_eq!(r.election_messages, 4 * 4 + 5 - 2);
}

/// Majority election shows who noticed in its votes: the lowest (the youngest) votes for
/// another node than the crashed master before anyone else does.
#[test]
fn quorum_lowest_notices_first_by_its_votes() {
    let s = load("compare/quorum.ron");
    let c = compare(
        &s,
        "quorum.ron",
        &[4, 8],
        &[0, 1],
        &[Case::CoordinatorCrashLowestDetects, Case::AllNotice],
    )
    .unwrap();
    for row in &c.cases {
        for (n, cell) in &row.cells {
            let m = measured(cell);
            assert!(m.premise_failed.is_empty(), "{} N={n}", row.case.name());
            for r in &m.runs {
                assert_eq!(r.leaders, ["n2"], "the next oldest leads");
                if row.case == Case::CoordinatorCrashLowestDetects {
                    assert_eq!(r.first_to_notice, [format!("n{n}")]);
                } else {
                    assert_eq!(r.first_to_notice.len(), n - 1);
                }
            }
        }
    }
}

/// A case an algorithm has no way to make is said so, not faked.
#[test]
fn cases_that_cannot_be_made_say_why() {
    let reason = |file: &str, case: Case| {
        let c = compare(&load(file), file, &[4], &[0], &[case]).unwrap();
        match &c.cases[0].cells[0].1 {
            Cell::Cannot { reason } => reason.clone(),
            other => panic!("{file} {}: {other:?}", case.name()),
        }
    };
    assert!(reason(
        "compare/async_bully.ron",
        Case::CoordinatorCrashLowestDetects
    )
    .contains("failure detector tells every node after the same delay"));
    for case in [Case::CoordinatorCrashLowestDetects, Case::AllNotice] {
        assert!(reason("compare/gcd_bully.ron", case).contains("random intervals"));
    }
    let one = compare(
        &load("compare/bully.ron"),
        "bully.ron",
        &[1],
        &[0],
        &[Case::PartitionHeal],
    )
    .unwrap();
    assert!(
        matches!(&one.cases[0].cells[0].1, Cell::Cannot { reason } if reason.contains("cannot be split"))
    );
}

/// The shipped scenarios all scale: addresses count on, a server_config is rewritten, GCD
/// identities are made, random ids stay random; addresses without a pattern are refused.
#[test]
fn scaling_extends_what_has_a_pattern_and_refuses_the_rest() {
    let s = scale(&load("logserver_partition_invitation.ron"), 6).unwrap();
    let addresses: Vec<&str> = s
        .scenario
        .nodes
        .iter()
        .map(|n| n.address.as_deref().unwrap())
        .collect();
    assert_eq!(addresses[0], "192.168.145.1:9000");
    assert_eq!(addresses[5], "192.168.145.1:9005");
    assert_eq!(s.scenario.priorities, [1, 2, 3, 4, 5, 6]);
    assert_eq!(s.scenario.services().len(), 1, "the log server stays");

    let gcd = scale(&load("gcd_lab_feigning.ron"), 5).unwrap();
    assert!(gcd.notes.iter().any(|n| n.contains("feigned failures off")));
    let p = &gcd.scenario.priorities;
    assert!(
        p.windows(2).all(|w| w[0] < w[1]),
        "identities ordered as ids"
    );

    let random = scale(&load("consul_random_ids.ron"), 8).unwrap();
    assert!(random.scenario.random_ids);

    let mut bad = load("consul_four_nodes.ron");
    bad.nodes[2].address = Some("otherhost:5003".into());
    let why = scale(&bad, 8).unwrap_err();
    assert!(why.contains("not one host with consecutive ports"), "{why}");
    let mut high = load("consul_four_nodes.ron");
    for (i, n) in high.nodes.iter_mut().enumerate() {
        n.address = Some(format!("localhost:{}", 65530 + i));
    }
    let why = scale(&high, 8).unwrap_err();
    assert!(why.contains("would pass 65535"), "{why}");
}
