//! What the tests of Conclave's crates share.
//!
//! [`ports`]: loopback ports for tests that start node processes on ports they choose, or
//! restart a node on its address. [`fuzz`]: the fuzz tests' proptest configuration.

pub mod fuzz;
pub mod ports;
