//! A ShiViz log of a trace: each event as a line (the timeline's text), then its host and
//! vector clock, `host {"host":clock,...}`. Every host's own entry starts at 1 and grows by
//! 1 per event on that host; a delivery merges the clock of the send it matches (first in,
//! first out per sender, receiver and text, as [`crate::chart`] matches them), so that
//! ShiViz draws the message. Drops merge nothing: the receiver learnt nothing.
//!
//! Paste the log into ShiViz with the regular expression [`REGEX`]:
//!
//! ```text
//! (?<event>.*)\n(?<host>\S*) (?<clock>{.*})
//! ```
//!
//! ```
//! use conclave_sim::trace::{TraceEvent, What};
//! let ev = |t, node: &str, what| TraceEvent { time_us: t, node: node.into(), what };
//! let trace = vec![
//!     ev(0, "a", What::Send { to: "b".into(), msg: "Ping".into() }),
//!     ev(5, "b", What::Deliver { from: "a".into(), msg: "Ping".into() }),
//! ];
//! let log = conclave_reports::shiviz::log(&trace);
//! assert_eq!(log, "t=0s node=a event=send to=b msg=Ping\na {\"a\":1}\n\
//!                  t=5us node=b event=deliver from=a msg=Ping\nb {\"a\":1,\"b\":1}\n");
//! ```

use conclave_sim::trace::{TraceEvent, What};
use std::collections::{HashMap, VecDeque};
use std::fmt::Write;

/// The regular expression to paste into ShiViz's log parser for [`log`]'s output.
pub const REGEX: &str = r"(?<event>.*)\n(?<host>\S*) (?<clock>{.*})";

/// A host name as ShiViz's `\S*` reads it: white space (which node names never have, but a
/// hand-written JSON might) becomes `_`.
fn host_name(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_whitespace() { '_' } else { c })
        .collect()
}

/// The log: two lines per event.
pub fn log<'a>(trace: &'a [TraceEvent]) -> String {
    let mut hosts: Vec<String> = vec![];
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut host_of = |name: &'a str| -> usize {
        if let Some(&i) = index.get(name) {
            return i;
        }
        hosts.push(host_name(name));
        index.insert(name, hosts.len() - 1);
        hosts.len() - 1
    };
    let ids: Vec<usize> = trace.iter().map(|e| host_of(&e.node)).collect();
    // A host's clock: a count per host (0: not heard of, left out of the line).
    let mut clocks: Vec<Vec<u64>> = vec![vec![0; hosts.len()]; hosts.len()];
    let mut in_flight: HashMap<(&str, &str, &str), VecDeque<Vec<u64>>> = HashMap::new();
    let quoted: Vec<String> = hosts.iter().map(|h| json_string(h)).collect();
    let mut out = String::with_capacity(trace.len() * 80);
    for (e, &h) in trace.iter().zip(&ids) {
        if let What::Deliver { from, msg } = &e.what {
            let sent = in_flight
                .get_mut(&(from.as_str(), e.node.as_str(), msg.as_str()))
                .and_then(VecDeque::pop_front);
            if let Some(sent) = sent {
                for (mine, theirs) in clocks[h].iter_mut().zip(sent) {
                    *mine = (*mine).max(theirs);
                }
            }
        }
        clocks[h][h] += 1;
        match &e.what {
            What::Send { to, msg } => {
                in_flight
                    .entry((e.node.as_str(), to.as_str(), msg.as_str()))
                    .or_default()
                    .push_back(clocks[h].clone());
            }
            What::Duplicate { from, to, msg } => {
                // A second copy of the send it follows.
                let key = (from.as_str(), to.as_str(), msg.as_str());
                if let Some(c) = in_flight.get(&key).and_then(|q| q.back()).cloned() {
                    in_flight.entry(key).or_default().push_back(c);
                }
            }
            What::Drop { from, to, msg, .. } => {
                if let Some(q) = in_flight.get_mut(&(from.as_str(), to.as_str(), msg.as_str())) {
                    q.pop_front();
                }
            }
            _ => {}
        }
        out.push_str(&crate::event_line(e));
        out.push('\n');
        out.push_str(&hosts[h]);
        out.push_str(" {");
        let known = clocks[h].iter().enumerate().filter(|(_, v)| **v > 0);
        for (n, (k, v)) in known.enumerate() {
            if n > 0 {
                out.push(',');
            }
            let _ = write!(out, "{}:{v}", quoted[k]);
        }
        out.push_str("}\n");
    }
    out
}

fn json_string(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}
