//! The simulated world of Conclave: virtual clock, event queue, seeded network and faults,
//! scenario loading and validation, and the properties a run is checked against.
//!
//! [`run::run_scenario`] is the usual entry point: it runs one scenario with one seed and
//! returns a [`run::RunReport`].
//!
//! ```
//! use conclave_sim::{run::{run_scenario, RunOptions}, scenario::Scenario};
//! let src = r#"Scenario(
//!     algorithm: Bully(),
//!     nodes: [(name: "a", id: 1), (name: "b", id: 2), (name: "c", id: 3)],
//!     run_for: "20s",
//!     expect: [AtMostOneLeader, Agreement, HighestWins, LeaderIs(node: "c")],
//! )"#;
//! let scenario = Scenario::from_str(src, "three.ron").unwrap();
//! let report = run_scenario(&scenario, "three.ron", 0, &RunOptions::default());
//! assert!(report.ok);
//! assert_eq!(report.leaders["a"].as_deref(), Some("c"));
//! ```

pub mod compare;
pub mod explore;
pub mod locate;
pub mod properties;
pub mod queue;
pub mod run;
pub mod scenario;
pub mod schedule;
pub mod shrink;
pub mod sweep;
pub mod trace;
pub mod world;

pub use conclave_algorithms as algorithms;
