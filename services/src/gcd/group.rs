//! The daemon's member list, without I/O: identities (days until a birthday, student id)
//! mapped to listening addresses, with the lab daemon's rules (seed 003's `gcd2.py`): one
//! identity per student and one identity per listening address, the newest join winning.
//!
//! ```
//! use conclave_services::gcd::group::{Group, Identity, Listener};
//! let mut group = Group::default();
//! let alice = Identity::new(120, 4_123_456).unwrap();
//! group.join(alice, Listener::new("localhost", 50001).unwrap());
//! // alice joins again from another port: her address is updated.
//! let members = group.join(alice, Listener::new("127.0.0.1", 50009).unwrap());
//! assert_eq!(members, vec![(alice, Listener::new("127.0.0.1", 50009).unwrap())]);
//! ```

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A node's identity, ordered as the pair: days first, then the student id; higher wins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Identity {
    pub days: u32,
    pub student_id: u32,
}

/// Why a join was refused; each message is the answer the joiner gets.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JoinError {
    #[error(
        "malformed process id ({days}, {student_id}), expected (days_to_next_birthday in \
         1..=365, student_id in 1000000..=9999999)"
    )]
    Identity { days: i64, student_id: i64 },
    #[error("invalid port number {0}, expected 1..=65535")]
    Port(i64),
    #[error("invalid host {0:?}, expected an IP address or a host name")]
    Host(String),
}

impl Identity {
    /// The lab daemon's range: days in 1..=365, a seven-digit student id.
    pub fn new(days: i64, student_id: i64) -> Result<Identity, JoinError> {
        if (1..=365).contains(&days) && (1_000_000..10_000_000).contains(&student_id) {
            Ok(Identity {
                days: days as u32,
                student_id: student_id as u32,
            })
        } else {
            Err(JoinError::Identity { days, student_id })
        }
    }
}

/// Where a member listens. `localhost` is kept as `127.0.0.1`, as the lab daemon resolves it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Listener {
    pub host: String,
    pub port: u16,
}

impl Listener {
    pub fn new(host: &str, port: i64) -> Result<Listener, JoinError> {
        let port = u16::try_from(port)
            .ok()
            .filter(|&p| p != 0)
            .ok_or(JoinError::Port(port))?;
        let name_like = !host.is_empty()
            && host.len() <= 253
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-_:".contains(&b));
        if !name_like {
            return Err(JoinError::Host(host.chars().take(64).collect()));
        }
        let host = match host {
            "localhost" => "127.0.0.1".to_string(),
            _ => match host.parse::<std::net::IpAddr>() {
                Ok(ip) => ip.to_string(),
                Err(_) => host.to_ascii_lowercase(),
            },
        };
        Ok(Listener { host, port })
    }
}

impl std::fmt::Display for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// The group: every member's listener, in identity order.
#[derive(Clone, Debug, Default)]
pub struct Group {
    listeners: BTreeMap<Identity, Listener>,
    by_student: BTreeMap<u32, Identity>,
    by_listener: BTreeMap<Listener, Identity>,
}

impl Group {
    /// Adds or updates `identity` at `listener` and returns every member, the joiner
    /// included (the lab daemon answers with the whole group). A student's earlier identity
    /// and any member that claimed the same listener are dropped.
    pub fn join(&mut self, identity: Identity, listener: Listener) -> Vec<(Identity, Listener)> {
        if let Some(old) = self.by_student.insert(identity.student_id, identity) {
            if old != identity {
                self.remove(old);
            }
        }
        if let Some(old) = self.listeners.insert(identity, listener.clone()) {
            if old != listener && self.by_listener.get(&old) == Some(&identity) {
                self.by_listener.remove(&old);
            }
        }
        if let Some(old) = self.by_listener.insert(listener, identity) {
            if old != identity {
                self.remove(old);
            }
        }
        self.members()
    }

    fn remove(&mut self, identity: Identity) {
        if let Some(listener) = self.listeners.remove(&identity) {
            if self.by_listener.get(&listener) == Some(&identity) {
                self.by_listener.remove(&listener);
            }
        }
        if self.by_student.get(&identity.student_id) == Some(&identity) {
            self.by_student.remove(&identity.student_id);
        }
    }

    /// Every member, in identity order.
    pub fn members(&self) -> Vec<(Identity, Listener)> {
        self.listeners
            .iter()
            .map(|(i, l)| (*i, l.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(days: i64, student_id: i64) -> Identity {
        Identity::new(days, student_id).unwrap()
    }

    fn at(port: i64) -> Listener {
        Listener::new("127.0.0.1", port).unwrap()
    }

    #[test]
    fn a_student_with_new_days_replaces_the_old_identity() {
        let mut g = Group::default();
        g.join(id(10, 1_000_001), at(1));
        g.join(id(20, 1_000_002), at(2));
        let m = g.join(id(11, 1_000_001), at(3));
        assert_eq!(
            m,
            vec![(id(11, 1_000_001), at(3)), (id(20, 1_000_002), at(2))]
        );
        // The freed listener can be claimed without removing anyone.
        let m = g.join(id(30, 1_000_003), at(1));
        assert_eq!(m.len(), 3);
    }

    #[test]
    fn a_listener_claimed_again_drops_its_former_member() {
        let mut g = Group::default();
        g.join(id(10, 1_000_001), at(1));
        let m = g.join(id(20, 1_000_002), at(1));
        assert_eq!(m, vec![(id(20, 1_000_002), at(1))]);
    }

    #[test]
    fn refuses_out_of_range_identities_ports_and_hosts() {
        assert!(Identity::new(0, 1_000_000).is_err());
        assert!(Identity::new(366, 1_000_000).is_err());
        assert!(Identity::new(1, 999_999).is_err());
        assert!(Identity::new(1, 10_000_000).is_err());
        assert!(Listener::new("localhost", 0).is_err());
        assert!(Listener::new("localhost", 65_536).is_err());
        assert!(Listener::new("a b", 1).is_err());
        assert!(Listener::new("", 1).is_err());
        assert_eq!(Listener::new("localhost", 5).unwrap(), at(5));
    }
}
