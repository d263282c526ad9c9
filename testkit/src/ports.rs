//! Loopback ports that stay free while a test needs them.
//!
//! A port the OS hands out for `127.0.0.1:0` comes from the ephemeral range
//! (`/proc/sys/net/ipv4/ip_local_port_range`, 32768-60999 by default): the range every
//! outgoing connection on the machine takes its source port from. A test that releases such
//! a port for a node process to bind, or kills a node that restarts on its address later,
//! leaves it to any connection in between; the node's bind then fails with `EADDRINUSE`
//! and it never comes up. The nodes' own retries to the dead peer make such connections
//! by the dozen.
//!
//! The ports handed out here lie below the ephemeral range (or above it, where it starts
//! low), where only an explicit bind takes a port. Each block is free when handed out (all
//! of it is bound, then released), and one process never hands out a port twice: blocks
//! are taken in turn from a start that depends on the process id, so two test binaries
//! running at once start far apart.

use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::sync::atomic::{AtomicU32, Ordering};

/// The lowest port handed out: well above the ports services listen on by convention.
const FLOOR: u32 = 20_000;

/// Where the next block's search starts, as an offset in the window (u32::MAX: not yet set).
static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);

/// The first of `n` consecutive TCP ports on 127.0.0.1, free now and outside the ephemeral
/// range. Panics if the window holds no such block (the message says which window).
pub fn port_block(n: u16) -> u16 {
    take(n, |port| {
        TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
    })
}

/// `n` TCP ports on 127.0.0.1, consecutive, free now and outside the ephemeral range.
pub fn ports(n: u16) -> Vec<u16> {
    let first = u32::from(port_block(n));
    (first..first + u32::from(n))
        .map(|port| port as u16)
        .collect()
}

/// `n` listeners on 127.0.0.1 on ports outside the ephemeral range: for nodes that start
/// on a listener and restart on its address.
pub fn listeners(n: u16) -> Vec<TcpListener> {
    ports(n)
        .into_iter()
        .map(|port| {
            TcpListener::bind((Ipv4Addr::LOCALHOST, port))
                .unwrap_or_else(|e| panic!("127.0.0.1:{port} was free a moment ago: {e}"))
        })
        .collect()
}

/// A UDP port on 127.0.0.1, free now (for UDP and TCP both) and outside the ephemeral range.
pub fn udp_port() -> u16 {
    take(1, |port| {
        UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
            && TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
    })
}

/// The first port of the next block of `n` in the window whose every port passes `free`.
fn take(n: u16, free: impl Fn(u16) -> bool) -> u16 {
    let (low, high) = window();
    let size = high - low;
    let n = u32::from(n.max(1));
    assert!(n <= size, "no block of {n} ports in {low}..{high}");
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id().wrapping_mul(7_919) % size,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    for _ in 0..size / n {
        let offset = NEXT.fetch_add(n, Ordering::Relaxed) % size;
        if offset + n > size {
            continue;
        }
        let first = low + offset;
        if (first..first + n).all(|port| free(port as u16)) {
            return first as u16;
        }
    }
    panic!("no {n} free ports in a row in {low}..{high}");
}

/// The fewest ports a window outside the ephemeral range must have to be used.
const MIN_WINDOW: u32 = 1_000;

/// The ports handed out, `low..high`: from FLOOR up to the ephemeral range, or from its end
/// up, whichever is larger. Where the range leaves neither MIN_WINDOW ports (some
/// containers give it all of 1024-65535), FLOOR up to 65535: each port is still checked
/// free when handed out, only no longer safe from connections' source ports.
fn window() -> (u32, u32) {
    let (first, last) = ephemeral_range();
    window_for(first, last)
}

/// [`window`] for the ephemeral range `first..=last`.
fn window_for(first: u32, last: u32) -> (u32, u32) {
    let below = (FLOOR, first.max(FLOOR));
    let above = ((last + 1).max(FLOOR), 65_536);
    let larger = if below.1 - below.0 >= above.1 - above.0 {
        below
    } else {
        above
    };
    if larger.1 - larger.0 >= MIN_WINDOW {
        larger
    } else {
        (FLOOR, 65_536)
    }
}

/// The kernel's ephemeral range, inclusive; Linux's default where it cannot be read.
fn ephemeral_range() -> (u32, u32) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| {
            let mut bounds = text.split_whitespace().map(str::parse::<u32>);
            Some((bounds.next()?.ok()?, bounds.next()?.ok()?))
        })
        .filter(|(first, last)| first <= last && *last < 65_536)
        .unwrap_or((32_768, 60_999))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::sync::Mutex;

    /// One test at a time: they read the shared counter and hold ports.
    static SERIAL: Mutex<()> = Mutex::new(());

    #[test]
    fn blocks_lie_outside_the_ephemeral_range_and_are_never_handed_out_twice() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let (first, last) = ephemeral_range();
        let (low, high) = window();
        // Outside the range, unless the range leaves no room (then the fallback, FLOOR up).
        let outside = high - low >= MIN_WINDOW && (low > last || high <= first);
        assert!(outside || (low, high) == (FLOOR, 65_536), "{low}..{high}");
        let mut seen = BTreeSet::new();
        for n in [1, 4, 5, 3, 1, 8] {
            let block = ports(n);
            assert_eq!(block.len(), usize::from(n));
            assert!(block.windows(2).all(|w| w[1] == w[0] + 1), "{block:?}");
            for port in block {
                let port32 = u32::from(port);
                assert!((low..high).contains(&port32), "{port} not in {low}..{high}");
                assert!(!outside || !(first..=last).contains(&port32), "{port}");
                assert!(seen.insert(port), "{port} handed out twice");
            }
        }
        let udp = udp_port();
        assert!((low..high).contains(&u32::from(udp)));
        assert!(seen.insert(udp));
    }

    #[test]
    fn the_window_is_the_larger_side_of_the_range_or_the_fallback() {
        assert_eq!(window_for(32_768, 60_999), (FLOOR, 32_768));
        assert_eq!(window_for(40_000, 60_000), (FLOOR, 40_000));
        assert_eq!(window_for(10_000, 30_000), (30_001, 65_536));
        assert_eq!(
            window_for(20_500, 64_999),
            (FLOOR, 65_536),
            "neither side has room"
        );
        assert_eq!(window_for(1_024, 65_535), (FLOOR, 65_536), "no side at all");
    }

    #[test]
    fn listeners_listen_on_the_ports_of_one_block() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let listeners = listeners(3);
        let ports: Vec<u16> = listeners
            .iter()
            .map(|l| l.local_addr().unwrap().port())
            .collect();
        assert_eq!(ports[1], ports[0] + 1);
        assert_eq!(ports[2], ports[0] + 2);
        // Held: the next block skips them.
        assert!(!self::ports(3).iter().any(|p| ports.contains(p)));
    }

    #[test]
    fn a_port_something_else_listens_on_is_skipped() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let first = port_block(1);
        let (low, high) = window();
        // The port the next search starts at, held as another program would hold it.
        let next = low + NEXT.load(Ordering::Relaxed) % (high - low);
        // (Already held by another program, it is just as much in the way.)
        let held = TcpListener::bind((Ipv4Addr::LOCALHOST, next as u16)).ok();
        let port = port_block(1);
        assert_ne!(u32::from(port), next);
        assert_ne!(port, first);
        drop(held);
    }
}
