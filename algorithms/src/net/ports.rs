//! The kernel's ephemeral port range, and what it means for a node's listening port.
//!
//! Every outgoing connection on the machine takes its source port from this range
//! (`/proc/sys/net/ipv4/ip_local_port_range`, 32768-60999 by default on Linux). A node that
//! listens on a port in it can find the port taken when it restarts: while it was down,
//! any connection (its peers retry theirs to it all the while) may have been given the port
//! as its source, and the bind fails with `EADDRINUSE`. `conclave cluster up` warns of such
//! ports, and a failed listen on one says why it may have failed.

use std::io;
use std::net::SocketAddr;

/// Where Linux keeps the range.
const RANGE_FILE: &str = "/proc/sys/net/ipv4/ip_local_port_range";

/// The ephemeral range, inclusive, as the kernel says; `None` where it cannot be read (not
/// Linux, no /proc).
pub fn ephemeral_range() -> Option<(u16, u16)> {
    parse_range(&std::fs::read_to_string(RANGE_FILE).ok()?)
}

/// The two numbers of the range file ("32768\t60999\n"), first not past last.
fn parse_range(text: &str) -> Option<(u16, u16)> {
    let mut bounds = text.split_whitespace().map(str::parse::<u16>);
    let (first, last) = (bounds.next()?.ok()?, bounds.next()?.ok()?);
    (first <= last).then_some((first, last))
}

/// The port of `address` when it lies in `range` (an address without a port, or a name,
/// gives `None`).
fn port_in(address: &str, range: (u16, u16)) -> Option<u16> {
    let port = address.parse::<SocketAddr>().ok()?.port();
    (range.0..=range.1).contains(&port).then_some(port)
}

/// A warning for a node listening on `address`, a port in the ephemeral range.
pub fn restart_warning(node: &str, address: &str) -> Option<String> {
    let range = ephemeral_range()?;
    let port = port_in(address, range)?;
    Some(warning(node, port, range))
}

fn warning(node: &str, port: u16, (first, last): (u16, u16)) -> String {
    format!(
        "warning: node {node:?} listens on port {port}, in the kernel's ephemeral range \
         {first}-{last} ({RANGE_FILE}): once the node stops, an outgoing connection may take \
         the port as its source and the node's restart fail to bind it; ports below {first} \
         are safe"
    )
}

/// What to add to "cannot listen on ADDRESS: ERROR" when the address was in use and its port
/// lies in the ephemeral range: the likely reason. Empty otherwise.
pub fn listen_hint(address: &str, error: &io::Error) -> String {
    match ephemeral_range() {
        Some(range) => hint(address, error, range),
        None => String::new(),
    }
}

fn hint(address: &str, error: &io::Error, (first, last): (u16, u16)) -> String {
    if error.kind() != io::ErrorKind::AddrInUse {
        return String::new();
    }
    match port_in(address, (first, last)) {
        Some(port) => format!(
            " (port {port} is in the kernel's ephemeral range {first}-{last}: an outgoing \
             connection may hold it as its source port; choose a port below {first})"
        ),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_range_file_parses_and_bad_text_gives_none() {
        assert_eq!(parse_range("32768\t60999\n"), Some((32768, 60999)));
        assert_eq!(parse_range("1024 65535"), Some((1024, 65535)));
        assert_eq!(parse_range("60999 32768"), None);
        assert_eq!(parse_range("32768"), None);
        assert_eq!(parse_range("a b"), None);
        assert_eq!(parse_range("70000 80000"), None);
    }

    #[test]
    fn a_port_in_the_range_warns_and_a_port_below_it_does_not() {
        let range = (32768, 60999);
        assert_eq!(port_in("127.0.0.1:40000", range), Some(40000));
        assert_eq!(port_in("[::1]:32768", range), Some(32768));
        assert_eq!(port_in("127.0.0.1:60999", range), Some(60999));
        assert_eq!(port_in("127.0.0.1:7000", range), None);
        assert_eq!(port_in("127.0.0.1:61000", range), None);
        assert_eq!(port_in("localhost:40000", range), None);
        let text = warning("d", 40000, range);
        assert!(text.contains("node \"d\" listens on port 40000"), "{text}");
        assert!(text.contains("32768-60999"), "{text}");
    }

    #[test]
    fn only_an_address_in_use_in_the_range_gets_the_hint() {
        let range = (32768, 60999);
        let in_use = io::Error::from(io::ErrorKind::AddrInUse);
        let denied = io::Error::from(io::ErrorKind::PermissionDenied);
        let text = hint("127.0.0.1:40000", &in_use, range);
        assert!(
            text.contains("port 40000 is in the kernel's ephemeral range"),
            "{text}"
        );
        assert_eq!(hint("127.0.0.1:7000", &in_use, range), "");
        assert_eq!(hint("127.0.0.1:40000", &denied, range), "");
    }

    /// On this machine's kernel: a connection's source port, taken while nothing listens
    /// there, refuses a listener (the failure the warning is about), and the hint names it.
    #[test]
    fn a_connections_source_port_cannot_be_listened_on_and_the_hint_says_why() {
        let Some(range) = ephemeral_range() else {
            return; // no /proc: nothing to check against
        };
        let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(server.local_addr().unwrap()).unwrap();
        let source = client.local_addr().unwrap().to_string();
        let error = std::net::TcpListener::bind(&source).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::AddrInUse);
        assert!(
            port_in(&source, range).is_some(),
            "{source} not in {range:?}"
        );
        assert!(listen_hint(&source, &error).contains("ephemeral range"));
    }
}
