//! The ShiViz log of a run, parsed back: every host's clock starts at 1 and grows by 1 per
//! event on that host, includes the host itself and names no unknown host; a delivery's
//! clock is at least its send's.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

type Clock = BTreeMap<String, u64>;

/// (event line, host, clock) per event, as ShiViz's regular expression reads them.
fn parse(log: &str) -> Vec<(String, String, Clock)> {
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len() % 2, 0, "two lines per event");
    lines
        .chunks(2)
        .map(|pair| {
            let (host, clock) = pair[1].split_once(' ').expect("host, space, clock");
            assert!(!host.is_empty() && !host.contains(char::is_whitespace));
            assert!(clock.starts_with('{') && clock.ends_with('}'));
            let clock: Clock = serde_json::from_str(clock).expect("the clock is a JSON object");
            (pair[0].to_string(), host.to_string(), clock)
        })
        .collect()
}

fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let at = line.find(&format!(" {key}="))? + key.len() + 2;
    let rest = &line[at..];
    // `msg=` runs to the end of the line (or to ` reason=` for a drop).
    if key == "msg" {
        return Some(rest.split(" reason=").next().unwrap_or(rest));
    }
    Some(rest.split(' ').next().unwrap_or(rest))
}

fn leq(a: &Clock, b: &Clock) -> bool {
    a.iter().all(|(k, v)| b.get(k).copied().unwrap_or(0) >= *v)
}

fn check(log: &str) -> usize {
    let events = parse(log);
    let hosts: HashSet<&str> = events.iter().map(|(_, h, _)| h.as_str()).collect();
    let mut own: HashMap<&str, u64> = HashMap::new();
    let mut sent: HashMap<(String, String, String), VecDeque<Clock>> = HashMap::new();
    let mut receives = 0;
    for (line, host, clock) in &events {
        let n = own.entry(host).or_insert(0);
        *n += 1;
        let n = *n;
        assert_eq!(clock.get(host), Some(&n), "{host}'s own clock at {line}");
        for k in clock.keys() {
            assert!(hosts.contains(k.as_str()), "unknown host {k} at {line}");
        }
        // Another host's entry never passes that host's own count so far.
        for (k, v) in clock {
            assert!(own.get(k.as_str()).copied().unwrap_or(0) >= *v, "{line}");
        }
        let event = field(line, "event").unwrap();
        match event {
            "send" => {
                let key = (
                    host.clone(),
                    field(line, "to").unwrap().to_string(),
                    field(line, "msg").unwrap().to_string(),
                );
                sent.entry(key).or_default().push_back(clock.clone());
            }
            "duplicate" => {
                let key = (
                    field(line, "from").unwrap().to_string(),
                    field(line, "to").unwrap().to_string(),
                    field(line, "msg").unwrap().to_string(),
                );
                let last = sent[&key].back().unwrap().clone();
                sent.get_mut(&key).unwrap().push_back(last);
            }
            "drop" => {
                let key = (
                    field(line, "from").unwrap().to_string(),
                    field(line, "to").unwrap().to_string(),
                    field(line, "msg").unwrap().to_string(),
                );
                sent.get_mut(&key).and_then(VecDeque::pop_front);
            }
            "deliver" => {
                let key = (
                    field(line, "from").unwrap().to_string(),
                    host.clone(),
                    field(line, "msg").unwrap().to_string(),
                );
                let send = sent.get_mut(&key).and_then(VecDeque::pop_front).unwrap();
                assert!(
                    leq(&send, clock),
                    "{line}: {clock:?} is below the send's {send:?}"
                );
                receives += 1;
            }
            _ => {}
        }
    }
    receives
}

#[test]
fn shiviz_clocks_follow_the_rules() {
    let run = common::small();
    let trace = run.trace.as_deref().unwrap();
    let log = conclave_reports::shiviz::log(trace);
    let receives = check(&log);
    assert_eq!(receives, run.messages.delivered as usize);
    // Every event is there, as the timeline writes it.
    assert_eq!(log.lines().count(), trace.len() * 2);
    assert_eq!(
        log.lines().next(),
        Some(conclave_reports::event_line(&trace[0]).as_str())
    );
    // A partition belongs to no node: the network host.
    assert!(log.lines().any(|l| l.starts_with("network {")));
}

#[test]
fn shiviz_regex_is_the_documented_one() {
    assert_eq!(
        conclave_reports::shiviz::REGEX,
        r"(?<event>.*)\n(?<host>\S*) (?<clock>{.*})"
    );
}

#[test]
fn shiviz_clocks_of_a_long_run() {
    let run = common::long(20_000);
    check(&conclave_reports::shiviz::log(
        run.trace.as_deref().unwrap(),
    ));
}
