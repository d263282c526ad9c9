//! The daemon over Conclave's frames (`--wire conclave`, the default): the `net` wire format's
//! length-prefixed frames ([`conclave_algorithms::net`]), each carrying an
//! `Envelope<GcdRequest>` from a node and an `Envelope<GcdAnswer>` from the daemon.
//!
//! The request and answer types, and the client side ([`request`]), live in
//! [`conclave_algorithms::net::gcd_wire`] so that nodes can join without this crate; they
//! are re-exported here.
//!
//! ```no_run
//! # async fn f() -> Result<(), conclave_algorithms::net::WireError> {
//! use conclave_services::gcd::wire::{request, GcdAnswer, GcdRequest};
//! let join = GcdRequest::Join { days: 120, student_id: 4_123_456, host: "127.0.0.1".into(), port: 50001 };
//! let answer = request("127.0.0.1:50550".parse().unwrap(), "alice", &join).await?;
//! assert!(matches!(answer, GcdAnswer::Members(_)));
//! # Ok(()) }
//! ```

use super::group::{Identity, Listener};
pub use conclave_algorithms::net::gcd_wire::{request, GcdAnswer, GcdRequest, Member};

/// A member of the daemon's group as the wire lists it.
pub fn member_of((identity, listener): &(Identity, Listener)) -> Member {
    Member {
        days: identity.days,
        student_id: identity.student_id,
        host: listener.host.clone(),
        port: listener.port,
    }
}
