//! The bounded pickle reader and writer, which moved to `conclave_algorithms::net::pickle` so
//! that lab-wire nodes (`conclave-node --wire lab`) use the same one; re-exported here.
//!
//! ```
//! use conclave_services::gcd::pickle::{read, write, Value};
//! let ok = Value::Tuple(vec![Value::str("OK"), Value::None]);
//! assert_eq!(read(&write(&ok), 1024), Ok(ok));
//! ```

pub use conclave_algorithms::net::pickle::*;
