//! Best- and worst-case message counts of an election, over every schedule.
//!
//! An election begins at the initial state (the first election) or at a transition from a
//! settled state (every component agrees on one running leader) to an unsettled one (a
//! re-election: after a crash, a split, a timer that doubts the leader), and completes at
//! the first settled state after it. Its cost is every message the algorithm sent on the
//! way, those lost to a down or cut-off receiver included. Elections that never complete
//! are liveness failures, not counted here.
//!
//! Over the explored graph: the fewest is a shortest path (Dijkstra, weights = messages
//! sent) from the election's first state to a settled one through unsettled states; the
//! most is a longest such path, over the strongly connected components of the unsettled
//! states (petgraph's Kosaraju, iterative: no recursion to overflow). A cycle that sends messages and can be repeated before the
//! election completes leaves the most unbounded, and the report says so.

use super::{Choice, Search};
use petgraph::graph::{DiGraph, NodeIndex};
use serde::Serialize;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

/// One explored transition, kept for the message bounds.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Weighted {
    pub from: u32,
    pub to: u32,
    pub sent: u32,
    pub choice: u32,
}

/// The fewest and most messages of the first election and of re-elections.
#[derive(Clone, Debug, Serialize)]
pub struct ElectionMessages {
    pub first_election: Option<Bounds>,
    /// `None` when no re-election is reachable.
    pub re_election: Option<Bounds>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Bounds {
    pub fewest: Schedule,
    /// `None`: no bound; a cycle of states that sends messages can repeat before the
    /// election completes.
    pub most: Option<Schedule>,
}

/// A replayable schedule that reaches a bound.
#[derive(Clone, Debug, Serialize)]
pub struct Schedule {
    /// Messages sent from the election's start to its completion.
    pub messages: u64,
    /// The index in `choices` of the choice that starts the election (0 for the first
    /// election, whose start messages come before any choice).
    pub starts_at_step: usize,
    /// From the initial state to the first settled state that completes the election.
    pub choices: Vec<Choice>,
}

const INF: u64 = u64::MAX;

/// Edge indexes grouped by a key (compressed rows).
fn rows(n: usize, keyed: impl Iterator<Item = (u32, u32)> + Clone) -> (Vec<u32>, Vec<u32>) {
    let mut start = vec![0u32; n + 1];
    for (k, _) in keyed.clone() {
        start[k as usize + 1] += 1;
    }
    for i in 0..n {
        start[i + 1] += start[i];
    }
    let mut fill = start.clone();
    let mut items = vec![0u32; start[n] as usize];
    for (k, e) in keyed {
        items[fill[k as usize] as usize] = e;
        fill[k as usize] += 1;
    }
    (start, items)
}

/// `path` gives the choices from the initial state to a state.
pub(crate) fn bounds(
    search: &Search,
    root_sent: u32,
    path: &dyn Fn(u32) -> Vec<Choice>,
) -> Option<ElectionMessages> {
    let edges = search.weighted.as_ref()?;
    let settled = &search.settled;
    let n = settled.len();
    let open = |s: u32| !settled[s as usize];
    // Forward edges out of unsettled states, and backward edges between unsettled states.
    let (fstart, fwd) = rows(
        n,
        edges
            .iter()
            .enumerate()
            .filter(|(_, e)| open(e.from))
            .map(|(i, e)| (e.from, i as u32)),
    );
    let (bstart, bwd) = rows(
        n,
        edges
            .iter()
            .enumerate()
            .filter(|(_, e)| open(e.from) && open(e.to))
            .map(|(i, e)| (e.to, i as u32)),
    );
    let out = |s: u32| &fwd[fstart[s as usize] as usize..fstart[s as usize + 1] as usize];

    // Fewest: Dijkstra towards the settled states; `next` is each state's first edge on a
    // cheapest way out.
    let mut dmin = vec![INF; n];
    let mut next = vec![u32::MAX; n];
    let mut heap = BinaryHeap::new();
    for (i, e) in edges.iter().enumerate() {
        if open(e.from) && !open(e.to) && u64::from(e.sent) < dmin[e.from as usize] {
            dmin[e.from as usize] = u64::from(e.sent);
            next[e.from as usize] = i as u32;
            heap.push(Reverse((u64::from(e.sent), e.from)));
        }
    }
    while let Some(Reverse((d, u))) = heap.pop() {
        if d > dmin[u as usize] {
            continue;
        }
        for &i in &bwd[bstart[u as usize] as usize..bstart[u as usize + 1] as usize] {
            let e = edges[i as usize];
            let cand = d + u64::from(e.sent);
            if cand < dmin[e.from as usize] {
                dmin[e.from as usize] = cand;
                next[e.from as usize] = i;
                heap.push(Reverse((cand, e.from)));
            }
        }
    }
    let live = |s: u32| open(s) && dmin[s as usize] != INF;

    // Most: longest paths over the components of the live unsettled states.
    let mut node = vec![NodeIndex::end(); n];
    let mut g: DiGraph<u32, ()> = DiGraph::new();
    for s in 0..n as u32 {
        if live(s) {
            node[s as usize] = g.add_node(s);
        }
    }
    for e in edges {
        if live(e.from) && live(e.to) {
            g.add_edge(node[e.from as usize], node[e.to as usize], ());
        }
    }
    let sccs = petgraph::algo::kosaraju_scc(&g);
    let mut comp = vec![u32::MAX; n];
    for (c, members) in sccs.iter().enumerate() {
        for &m in members {
            comp[g[m] as usize] = c as u32;
        }
    }
    // Kosaraju lists components sinks first, so every exit leads to a component done before.
    let mut dmax = vec![0u64; sccs.len()];
    let mut exit = vec![u32::MAX; sccs.len()];
    for (c, members) in sccs.iter().enumerate() {
        let (mut best, mut unbounded) = (None::<u64>, false);
        for &m in members {
            for &i in out(g[m]) {
                let e = edges[i as usize];
                let val = if !open(e.to) {
                    u64::from(e.sent)
                } else if !live(e.to) {
                    continue;
                } else if comp[e.to as usize] == c as u32 {
                    unbounded |= e.sent > 0;
                    continue;
                } else {
                    match dmax[comp[e.to as usize] as usize] {
                        INF => {
                            unbounded = true;
                            continue;
                        }
                        d => d + u64::from(e.sent),
                    }
                };
                if best.is_none_or(|b| val > b) {
                    best = Some(val);
                    exit[c] = i;
                }
            }
        }
        dmax[c] = if unbounded { INF } else { best.unwrap_or(0) };
    }

    let walk_min = |mut s: u32, choices: &mut Vec<Choice>| {
        while open(s) {
            let e = edges[next[s as usize] as usize];
            choices.push(Choice::unpack(e.choice));
            s = e.to;
        }
    };
    let walk_max = |mut s: u32, choices: &mut Vec<Choice>| {
        while open(s) {
            let c = comp[s as usize];
            let x = edges[exit[c as usize] as usize];
            if x.from != s {
                // Inside the component every edge sends nothing: any way to the exit.
                let mut prev = Vec::new();
                let mut seen = std::collections::BTreeMap::new();
                seen.insert(s, (u32::MAX, 0u32));
                let mut queue = VecDeque::from([s]);
                while let Some(u) = queue.pop_front() {
                    if u == x.from {
                        break;
                    }
                    for &i in out(u) {
                        let e = edges[i as usize];
                        if live(e.to) && comp[e.to as usize] == c && !seen.contains_key(&e.to) {
                            seen.insert(e.to, (u, e.choice));
                            queue.push_back(e.to);
                        }
                    }
                }
                let mut v = x.from;
                while v != s {
                    let (u, ch) = seen[&v];
                    prev.push((u, ch));
                    v = u;
                }
                choices.extend(prev.iter().rev().map(|&(_, ch)| Choice::unpack(ch)));
            }
            choices.push(Choice::unpack(x.choice));
            s = x.to;
        }
    };
    let schedule = |prefix: Vec<Choice>, entry: Option<Weighted>, most: bool| {
        let starts_at_step = prefix.len();
        let mut choices = prefix;
        let (first, base) = match entry {
            Some(e) => {
                choices.push(Choice::unpack(e.choice));
                (e.to, u64::from(e.sent))
            }
            None => (0, u64::from(root_sent)),
        };
        let messages = if most {
            walk_max(first, &mut choices);
            base + dmax[comp[first as usize] as usize]
        } else {
            walk_min(first, &mut choices);
            base + dmin[first as usize]
        };
        Schedule {
            messages,
            starts_at_step,
            choices,
        }
    };
    let bounds_from = |entries: &[(Vec<Choice>, Option<Weighted>)]| -> Option<Bounds> {
        let cost = |e: &Option<Weighted>, most: bool| {
            let (s, base) = e.map_or((0, u64::from(root_sent)), |e| (e.to, u64::from(e.sent)));
            if most {
                dmax[comp[s as usize] as usize].saturating_add(base)
            } else {
                dmin[s as usize] + base
            }
        };
        let fewest = entries.iter().min_by_key(|(_, e)| cost(e, false))?;
        let most = entries.iter().max_by_key(|(_, e)| cost(e, true))?;
        Some(Bounds {
            fewest: schedule(fewest.0.clone(), fewest.1, false),
            most: (cost(&most.1, true) != INF).then(|| schedule(most.0.clone(), most.1, true)),
        })
    };
    let first = if live(0) {
        bounds_from(&[(Vec::new(), None)])
    } else {
        None
    };
    // Re-elections: the cheapest and the dearest entry edge, each with its own prefix.
    let entries: Vec<&Weighted> = edges
        .iter()
        .filter(|e| !open(e.from) && live(e.to))
        .collect();
    let cheapest = entries
        .iter()
        .min_by_key(|e| dmin[e.to as usize] + u64::from(e.sent));
    let dearest = entries
        .iter()
        .max_by_key(|e| dmax[comp[e.to as usize] as usize].saturating_add(u64::from(e.sent)));
    let re_election = match (cheapest, dearest) {
        (Some(&&a), Some(&&b)) => bounds_from(&[(path(a.from), Some(a)), (path(b.from), Some(b))]),
        _ => None,
    };
    Some(ElectionMessages {
        first_election: first,
        re_election,
    })
}
