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
//! states (petgraph's Kosaraju, iterative: no recursion to overflow, run on a view of the
//! edge rows rather than a copy of the graph). A cycle that sends messages and can be
//! repeated before the election completes leaves the most unbounded, and the report says
//! so.
//!
//! Edges keep their ends and message counts, not their choices: a bound's walk is a list of
//! hops (the next state and the messages sent), which the caller turns back into choices by
//! stepping the model: a choice that reaches the same state sending the same number of
//! messages, so the schedule has the bound's count (where two choices make the same hop,
//! the first is taken, which need not be the edge the bound was found on).

use super::{Choice, Chunks, Edge, Search};
use crate::trace::TraceEvent;
use fixedbitset::FixedBitSet;
use petgraph::visit::{
    GraphBase, GraphRef, IntoNeighbors, IntoNeighborsDirected, IntoNodeIdentifiers, Visitable,
};
use petgraph::Direction;
use serde::Serialize;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

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
    /// The trace `choices` give (filled by the explorer, which has the model; not in the
    /// JSON report, where `choices` stand for it).
    #[serde(skip)]
    pub trace: Vec<TraceEvent>,
    /// `Bounded` timing: the same path as a timed schedule the simulator plays (filled by
    /// the explorer; not in the JSON report).
    #[serde(skip)]
    pub steps: Vec<crate::schedule::Timed>,
    /// `Bounded` timing: the time of the settled state the schedule ends in (µs).
    #[serde(skip)]
    pub end_us: Option<u64>,
}

impl ElectionMessages {
    /// Every schedule: the fewest and the most of each election.
    pub fn schedules_mut(&mut self) -> impl Iterator<Item = &mut Schedule> {
        [&mut self.first_election, &mut self.re_election]
            .into_iter()
            .flatten()
            .flat_map(|b| std::iter::once(&mut b.fewest).chain(b.most.as_mut()))
    }
}

const INF: u64 = u64::MAX;

/// Items (edge indexes, or states) grouped by a key (compressed rows). `items: None` when
/// the items are edge indexes already in the key's order: a row is then a range of them,
/// with no list to keep.
pub(crate) struct Rows {
    start: Vec<u32>,
    items: Option<Vec<u32>>,
}

impl Rows {
    /// The rows of `keyed`'s (key, item) pairs, keys below `n`.
    pub(crate) fn new(
        n: usize,
        keyed: impl Iterator<Item = (u32, u32)> + Clone,
        in_order: bool,
    ) -> Self {
        let mut start = vec![0u32; n + 1];
        for (k, _) in keyed.clone() {
            start[k as usize + 1] += 1;
        }
        for i in 0..n {
            start[i + 1] += start[i];
        }
        if in_order {
            return Rows { start, items: None };
        }
        let mut fill = start.clone();
        let mut items = vec![0u32; start[n] as usize];
        for (k, e) in keyed {
            items[fill[k as usize] as usize] = e;
            fill[k as usize] += 1;
        }
        Rows {
            start,
            items: Some(items),
        }
    }

    pub(crate) fn row(&self, key: u32) -> Row<'_> {
        let (a, b) = (self.start[key as usize], self.start[key as usize + 1]);
        match &self.items {
            None => Row::Range(a..b),
            Some(items) => Row::Items(items[a as usize..b as usize].iter()),
        }
    }
}

/// The items of one row.
#[derive(Clone)]
pub(crate) enum Row<'a> {
    Range(std::ops::Range<u32>),
    Items(std::slice::Iter<'a, u32>),
}

impl Iterator for Row<'_> {
    type Item = u32;
    fn next(&mut self) -> Option<u32> {
        match self {
            Row::Range(r) => r.next(),
            Row::Items(i) => i.next().copied(),
        }
    }
}

/// The live unsettled states and the edges between them, as petgraph sees a graph: a view
/// of the edge rows (`fwd`: edges by source; `bwd`: edges between unsettled states, by
/// target), so finding the components copies nothing.
#[derive(Clone, Copy)]
struct Live<'a> {
    n: usize,
    edges: &'a Chunks<Edge>,
    live: &'a FixedBitSet,
    fwd: &'a Rows,
    bwd: &'a Rows,
}

impl<'a> Live<'a> {
    fn ends(self, rows: &'a Rows, s: u32, incoming: bool) -> Ends<'a> {
        Ends {
            ids: rows.row(s),
            edges: self.edges,
            live: self.live,
            incoming,
        }
    }
}

/// The live states at the other end of some edges.
struct Ends<'a> {
    ids: Row<'a>,
    edges: &'a Chunks<Edge>,
    live: &'a FixedBitSet,
    incoming: bool,
}

impl Iterator for Ends<'_> {
    type Item = u32;
    fn next(&mut self) -> Option<u32> {
        for i in self.ids.by_ref() {
            let e = &self.edges[i as usize];
            let s = if self.incoming { e.from } else { e.to };
            if self.live.contains(s as usize) {
                return Some(s);
            }
        }
        None
    }
}

/// The live states, as ids.
struct LiveIds<'a>(fixedbitset::Ones<'a>);

impl Iterator for LiveIds<'_> {
    type Item = u32;
    fn next(&mut self) -> Option<u32> {
        self.0.next().map(|s| s as u32)
    }
}

impl GraphBase for Live<'_> {
    type EdgeId = u32;
    type NodeId = u32;
}

impl GraphRef for Live<'_> {}

impl<'a> IntoNeighbors for Live<'a> {
    type Neighbors = Ends<'a>;
    fn neighbors(self, s: u32) -> Ends<'a> {
        self.ends(self.fwd, s, false)
    }
}

impl<'a> IntoNeighborsDirected for Live<'a> {
    type NeighborsDirected = Ends<'a>;
    fn neighbors_directed(self, s: u32, d: Direction) -> Ends<'a> {
        match d {
            Direction::Outgoing => self.ends(self.fwd, s, false),
            Direction::Incoming => self.ends(self.bwd, s, true),
        }
    }
}

impl<'a> IntoNodeIdentifiers for Live<'a> {
    type NodeIdentifiers = LiveIds<'a>;
    fn node_identifiers(self) -> LiveIds<'a> {
        LiveIds(self.live.ones())
    }
}

impl Visitable for Live<'_> {
    type Map = FixedBitSet;
    fn visit_map(&self) -> FixedBitSet {
        FixedBitSet::with_capacity(self.n)
    }
    fn reset_map(&self, map: &mut FixedBitSet) {
        map.clear();
        map.grow(self.n);
    }
}

/// A hop of a walk through the graph: the state it reaches and the messages it sends.
pub(crate) type Hop = (u32, u32);

/// Turns a walk (its first state, its hops) into choices from the initial state.
pub(crate) type Retrace<'a> = &'a dyn Fn(u32, &[Hop]) -> Result<Vec<Choice>, String>;

/// About how many bytes [`bounds`] allocates for `search`'s graph, beyond what the search
/// holds: the backward rows (a word per edge), the forward rows (a word per edge too when
/// the edges are out of order), and per state the distances, the next edges, the
/// components and Kosaraju's lists. For `bully3_crash_async.ron` (1,593,536 states,
/// 22.6 M edges kept) this says 167 MB; `valgrind --tool=massif` counted 168 MB allocated
/// under `bounds` at the run's peak.
pub(crate) fn need(search: &Search) -> u64 {
    let (n, e) = (search.settled.len() as u64, search.edges.len() as u64);
    let rows = if in_order(&search.edges) { 1 } else { 2 };
    4 * rows * e + 48 * n
}

/// Whether the edges come in the order of their sources, as breadth-first search finds them.
fn in_order(edges: &Chunks<Edge>) -> bool {
    edges
        .iter()
        .zip(edges.iter().skip(1))
        .all(|(a, b)| a.from <= b.from)
}

/// `choices(from, hops)` gives the choices from the initial state to state `from`, then
/// along `hops`, or says why it cannot. `Ok(None)`: no edges were kept for the bounds.
pub(crate) fn bounds(
    search: &Search,
    root_sent: u32,
    choices: Retrace,
) -> Result<Option<ElectionMessages>, String> {
    if !search.message_bounds {
        return Ok(None);
    }
    let edges = &search.edges;
    let settled = &search.settled;
    let n = settled.len();
    let open = |s: u32| !settled[s as usize];
    // Forward edges by source (only those out of unsettled states are read), and backward
    // edges between unsettled states. Breadth-first search finds edges in the order of their
    // sources, so forward rows are ranges of every edge; depth-first search needs a list of
    // the edges out of unsettled states.
    let in_order = in_order(edges);
    let fwd = Rows::new(
        n,
        edges
            .iter()
            .enumerate()
            .filter(|(_, e)| in_order || open(e.from))
            .map(|(i, e)| (e.from, i as u32)),
        in_order,
    );
    let bwd = Rows::new(
        n,
        edges
            .iter()
            .enumerate()
            .filter(|(_, e)| open(e.from) && open(e.to))
            .map(|(i, e)| (e.to, i as u32)),
        false,
    );
    let hop = |i: u32| {
        let e = edges[i as usize];
        (e.to, e.sent())
    };

    // Fewest: Dijkstra towards the settled states; `next` is each state's first edge on a
    // cheapest way out.
    let mut dmin = vec![INF; n];
    let mut next = vec![u32::MAX; n];
    let mut heap = BinaryHeap::new();
    for (i, e) in edges.iter().enumerate() {
        let sent = u64::from(e.sent());
        if open(e.from) && !open(e.to) && sent < dmin[e.from as usize] {
            dmin[e.from as usize] = sent;
            next[e.from as usize] = i as u32;
            heap.push(Reverse((sent, e.from)));
        }
    }
    while let Some(Reverse((d, u))) = heap.pop() {
        if d > dmin[u as usize] {
            continue;
        }
        for i in bwd.row(u) {
            let e = edges[i as usize];
            let cand = d + u64::from(e.sent());
            if cand < dmin[e.from as usize] {
                dmin[e.from as usize] = cand;
                next[e.from as usize] = i;
                heap.push(Reverse((cand, e.from)));
            }
        }
    }
    let live_set: FixedBitSet = (0..n).filter(|&s| !settled[s] && dmin[s] != INF).collect();
    let live = |s: u32| live_set.contains(s as usize);

    // Most: longest paths over the components of the live unsettled states.
    let view = Live {
        n,
        edges,
        live: &live_set,
        fwd: &fwd,
        bwd: &bwd,
    };
    let sccs = petgraph::algo::kosaraju_scc(view);
    let mut comp = vec![u32::MAX; n];
    for (c, members) in sccs.iter().enumerate() {
        for &m in members {
            comp[m as usize] = c as u32;
        }
    }
    // Kosaraju lists components sinks first, so every exit leads to a component done before.
    let mut dmax = vec![0u64; sccs.len()];
    let mut exit = vec![u32::MAX; sccs.len()];
    for (c, members) in sccs.iter().enumerate() {
        let (mut best, mut unbounded) = (None::<u64>, false);
        for &m in members {
            for i in fwd.row(m) {
                let e = edges[i as usize];
                let sent = u64::from(e.sent());
                let val = if !open(e.to) {
                    sent
                } else if !live(e.to) {
                    continue;
                } else if comp[e.to as usize] == c as u32 {
                    unbounded |= sent > 0;
                    continue;
                } else {
                    match dmax[comp[e.to as usize] as usize] {
                        INF => {
                            unbounded = true;
                            continue;
                        }
                        d => d + sent,
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

    let walk_min = |mut s: u32, hops: &mut Vec<Hop>| {
        while open(s) {
            let h = hop(next[s as usize]);
            hops.push(h);
            s = h.0;
        }
    };
    let walk_max = |mut s: u32, hops: &mut Vec<Hop>| {
        while open(s) {
            let c = comp[s as usize];
            let x = exit[c as usize];
            let from = edges[x as usize].from;
            if from != s {
                // Inside the component every edge sends nothing: any way to the exit.
                let mut seen = std::collections::BTreeMap::new();
                seen.insert(s, (u32::MAX, 0u32));
                let mut queue = VecDeque::from([s]);
                while let Some(u) = queue.pop_front() {
                    if u == from {
                        break;
                    }
                    for i in fwd.row(u) {
                        let e = edges[i as usize];
                        if live(e.to) && comp[e.to as usize] == c && !seen.contains_key(&e.to) {
                            seen.insert(e.to, (u, e.sent()));
                            queue.push_back(e.to);
                        }
                    }
                }
                let mut back = Vec::new();
                let mut v = from;
                while v != s {
                    let (u, sent) = seen[&v];
                    back.push((v, sent));
                    v = u;
                }
                hops.extend(back.iter().rev());
            }
            let h = hop(x);
            hops.push(h);
            s = h.0;
        }
    };
    // An election's start: `None` for the first, or the edge out of a settled state.
    let schedule = |entry: Option<Edge>, most: bool| {
        let (from, first, base) = match entry {
            Some(e) => (e.from, e.to, u64::from(e.sent())),
            None => (0, 0, u64::from(root_sent)),
        };
        let mut hops: Vec<Hop> = entry.iter().map(|e| (e.to, e.sent())).collect();
        let messages = if most {
            walk_max(first, &mut hops);
            base + dmax[comp[first as usize] as usize]
        } else {
            walk_min(first, &mut hops);
            base + dmin[first as usize]
        };
        let choices = choices(from, &hops)?;
        Ok::<_, String>(Schedule {
            messages,
            starts_at_step: choices.len() - hops.len(),
            choices,
            trace: Vec::new(),
            steps: Vec::new(),
            end_us: None,
        })
    };
    let bounds_from = |entries: &[Option<Edge>]| -> Result<Option<Bounds>, String> {
        let cost = |e: &Option<Edge>, most: bool| {
            let (s, base) = e.map_or((0, u64::from(root_sent)), |e| (e.to, u64::from(e.sent())));
            if most {
                dmax[comp[s as usize] as usize].saturating_add(base)
            } else {
                dmin[s as usize] + base
            }
        };
        let (Some(fewest), Some(most)) = (
            entries.iter().min_by_key(|e| cost(e, false)),
            entries.iter().max_by_key(|e| cost(e, true)),
        ) else {
            return Ok(None);
        };
        Ok(Some(Bounds {
            fewest: schedule(*fewest, false)?,
            most: if cost(most, true) == INF {
                None
            } else {
                Some(schedule(*most, true)?)
            },
        }))
    };
    let first = if live(0) { bounds_from(&[None])? } else { None };
    // Re-elections: the cheapest and the dearest entry edge.
    let entries = || edges.iter().filter(|e| !open(e.from) && live(e.to));
    let cheapest = entries().min_by_key(|e| dmin[e.to as usize] + u64::from(e.sent()));
    let dearest = entries()
        .max_by_key(|e| dmax[comp[e.to as usize] as usize].saturating_add(u64::from(e.sent())));
    let re_election = match (cheapest, dearest) {
        (Some(&a), Some(&b)) => bounds_from(&[Some(a), Some(b)])?,
        _ => None,
    };
    Ok(Some(ElectionMessages {
        first_election: first,
        re_election,
    }))
}

#[cfg(test)]
mod tests {
    use super::super::{lineage::Lineage, visited::Visited};
    use super::*;

    /// A search over a hand-made graph: `settled` per state, edges (from, to, sent), the
    /// choice of edge k being `Deliver(k)`.
    fn search(settled: &[bool], edges: &[(u32, u32, u32)]) -> Search {
        Search {
            visited: Visited::new(true),
            lineage: Lineage::default(),
            edges: edges
                .iter()
                .map(|&(from, to, sent)| Edge::new(from, to, sent, false))
                .collect(),
            liveness: false,
            message_bounds: true,
            root_sent: 1,
            settled: settled.to_vec(),
            time: Vec::new(),
            graph: None,
            first_violation: [None; 2],
            transitions: edges.len() as u64,
            max_depth: 0,
            cut_short: None,
            words_since_look: 0,
        }
    }

    /// The choices to `from` (`prefix` gives them), then along `hops`: edge k is
    /// `Deliver(k)`, and a hop takes the first edge that makes it.
    fn walk<'a>(
        edges: &'a [(u32, u32, u32)],
        prefix: impl Fn(u32) -> Vec<Choice> + 'a,
    ) -> impl Fn(u32, &[Hop]) -> Result<Vec<Choice>, String> + 'a {
        move |from, hops| {
            let mut out = prefix(from);
            let mut at = from;
            for &(to, sent) in hops {
                let k = edges
                    .iter()
                    .position(|&e| e == (at, to, sent))
                    .expect("a hop follows an edge");
                out.push(Choice::Deliver(k as u32));
                at = to;
            }
            Ok(out)
        }
    }

    /// The bounds over a hand-made graph (see [`search`] and [`walk`]).
    fn bounds_of(
        settled: &[bool],
        edges: &[(u32, u32, u32)],
        prefix: impl Fn(u32) -> Vec<Choice>,
    ) -> ElectionMessages {
        let s = search(settled, edges);
        bounds(&s, s.root_sent, &walk(edges, prefix))
            .expect("the walks turn into choices")
            .expect("message bounds are kept")
    }

    /// 0 -> 1 -> 3 costs 1 + 1; 0 -> 2 -> 4 -> 3 costs 5 + 0 + 2, and 2 <-> 4 is a cycle
    /// that sends nothing. 3 is settled.
    const CYCLE: [(u32, u32, u32); 6] = [
        (0, 1, 1),
        (0, 2, 5),
        (1, 3, 1),
        (2, 4, 0),
        (4, 2, 0),
        (4, 3, 2),
    ];

    fn deliveries(s: &Schedule) -> Vec<u32> {
        s.choices
            .iter()
            .map(|c| match c {
                Choice::Deliver(k) => *k,
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn fewest_and_most_through_a_cycle_that_sends_nothing() {
        // The most may pass through the cycle once. 5 is settled and unreachable.
        let settled = [false, false, false, true, false, true];
        let m = bounds_of(&settled, &CYCLE, |_| Vec::new());
        let first = m
            .first_election
            .expect("state 0 is unsettled and can settle");
        assert_eq!(first.fewest.messages, 1 + 2);
        assert_eq!(deliveries(&first.fewest), [0, 2]);
        let most = first.most.expect("no cycle sends messages");
        assert_eq!(most.messages, 1 + 7);
        assert_eq!(deliveries(&most), [1, 3, 5]);
        assert!(m.re_election.is_none(), "no edge leaves a settled state");
    }

    #[test]
    fn a_cycle_that_sends_leaves_the_most_unbounded() {
        // The same, but 2 -> 4 sends a message: 2, 4, 2, 4... sends without end.
        let mut edges = CYCLE;
        edges[3].2 = 1;
        let m = bounds_of(&[false, false, false, true, false], &edges, |_| Vec::new());
        let first = m.first_election.expect("state 0 can settle");
        assert_eq!(first.fewest.messages, 3);
        assert!(first.most.is_none(), "{:?}", first.most);
    }

    #[test]
    fn re_elections_start_on_edges_out_of_settled_states() {
        // 0 -> 1 settles at once. 1 -> 2 starts a re-election (4 messages) that completes
        // by 2 -> 4 (2 more) or by 2 -> 3 -> 4 (1 + 2 more).
        let edges = [(0, 1, 0), (1, 2, 4), (2, 4, 2), (2, 3, 1), (3, 4, 2)];
        let prefix = |id| match id {
            0 => Vec::new(),
            1 => vec![Choice::Deliver(0)],
            _ => panic!("an election starts at 0 or leaves the settled state 1, not at {id}"),
        };
        let m = bounds_of(&[false, true, false, false, true], &edges, prefix);
        let first = m.first_election.expect("state 0 settles");
        assert_eq!(first.fewest.messages, 1, "the start messages only");
        let again = m.re_election.expect("1 -> 2 leaves a settled state");
        assert_eq!(again.fewest.messages, 6);
        assert_eq!(again.fewest.starts_at_step, 1);
        assert_eq!(deliveries(&again.fewest), [0, 1, 2]);
        let most = again.most.expect("no cycle");
        assert_eq!(most.messages, 7);
        assert_eq!(deliveries(&most), [0, 1, 3, 4]);
    }

    #[test]
    fn edges_out_of_source_order_give_the_same_bounds() {
        // As depth-first search records them: the first graph's edges, reversed.
        let mut edges = CYCLE;
        edges.reverse();
        let m = bounds_of(&[false, false, false, true, false, true], &edges, |_| {
            Vec::new()
        });
        let first = m.first_election.expect("state 0 can settle");
        assert_eq!(first.fewest.messages, 1 + 2);
        // Reversed, (0, 1, 1) is edge 5 and (1, 3, 1) edge 3.
        assert_eq!(deliveries(&first.fewest), [5, 3]);
        let most = first.most.expect("no cycle sends messages");
        assert_eq!(most.messages, 1 + 7);
        assert_eq!(deliveries(&most), [4, 2, 0]);
    }

    #[test]
    fn parallel_edges_are_told_apart_by_their_messages() {
        // Two ways from 0 to the settled 1: one message or three.
        let m = bounds_of(&[false, true], &[(0, 1, 3), (0, 1, 1)], |_| Vec::new());
        let first = m.first_election.expect("state 0 settles");
        assert_eq!(
            (first.fewest.messages, deliveries(&first.fewest)),
            (2, vec![1])
        );
        let most = first.most.expect("no cycle");
        assert_eq!((most.messages, deliveries(&most)), (4, vec![0]));
    }

    /// Edges out of their sources' order (depth-first search) need a list of forward rows
    /// besides the backward one: a word more per edge.
    #[test]
    fn the_memory_need_counts_forward_rows_only_for_edges_out_of_order() {
        let settled = [false, false, true];
        let in_order = need(&search(&settled, &[(0, 1, 1), (0, 2, 1), (1, 2, 1)]));
        let out_of_order = need(&search(&settled, &[(1, 2, 1), (0, 1, 1), (0, 2, 1)]));
        assert_eq!(in_order, 4 * 3 + 48 * 3);
        assert_eq!(out_of_order, in_order + 4 * 3);
    }

    #[test]
    fn a_walk_that_cannot_be_retraced_is_an_error_not_a_panic() {
        let s = search(&[false, true], &[(0, 1, 1)]);
        let err = bounds(&s, s.root_sent, &|_, _| Err("gone".to_string()));
        assert_eq!(err.err().as_deref(), Some("gone"));
    }
}
