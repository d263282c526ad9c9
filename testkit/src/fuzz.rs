//! The proptest configuration of the fuzz tests: a fixed number of cases from a fixed seed,
//! so CI is reproducible, unless `PROPTEST_CASES` or `PROPTEST_RNG_SEED` say otherwise (to
//! fuzz longer or elsewhere). No failure files: a failure prints its shrunk input.

use proptest::test_runner::{Config, RngSeed};

/// `cases` cases from seed `seed`, each overridable from the environment.
pub fn config(cases: u32, seed: u64) -> Config {
    let mut config = Config {
        failure_persistence: None,
        ..Config::default()
    };
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = cases;
    }
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        config.rng_seed = RngSeed::Fixed(seed);
    }
    config
}
