//! The message sequence chart of a trace, as data: one lane per node, every message matched
//! from its send to its delivery or drop, the marks on the lanes (crash, restart, pause...),
//! who each node believes leads and when, the leaders over time, and the partitions and
//! blocked links with the time they last. [`crate::svg`] draws it whole, [`crate::html`]
//! hands it to the page, which draws only the part in view.
//!
//! The trace has no message ids: a delivery or drop is matched to the earliest unmatched send
//! with the same sender, receiver and text (a first-in first-out queue per key), and a
//! `duplicate` event adds a second copy of the send it follows.
//!
//! ```
//! use conclave_sim::trace::{TraceEvent, What};
//! use conclave_reports::chart::{Chart, Outcome};
//! let ev = |t, node: &str, what| TraceEvent { time_us: t, node: node.into(), what };
//! let trace = vec![
//!     ev(0, "a", What::Send { to: "b".into(), msg: "Election { from: a }".into() }),
//!     ev(5, "b", What::Deliver { from: "a".into(), msg: "Election { from: a }".into() }),
//! ];
//! let chart = Chart::new(&trace, &[], 10);
//! assert_eq!(chart.lanes, ["a", "b"]);
//! assert_eq!(chart.kinds[chart.messages[0].kind], "Election");
//! assert_eq!((chart.messages[0].end, chart.messages[0].outcome), (5, Outcome::Delivered));
//! ```

use conclave_algorithms::Role;
use conclave_sim::trace::{DropReason, TraceEvent, What};
use std::collections::{HashMap, VecDeque};

/// The node name the simulator gives events that belong to no node (partition, heal).
pub const NETWORK: &str = "network";

/// What became of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    Dropped(DropReason),
    /// Neither delivered nor dropped when the trace ends.
    InFlight,
}

impl Outcome {
    /// The CSS class of the arrow (besides `msg`, and `duplicate` for a second copy).
    pub fn class(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Dropped(_) => "dropped",
            Outcome::InFlight => "inflight",
        }
    }
}

/// One message: an arrow from `from`'s lane at `sent` to `to`'s lane at `end`.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    pub from: usize,
    pub to: usize,
    /// Index into [`Chart::kinds`].
    pub kind: usize,
    /// Index into [`Chart::texts`]: the message as the trace shows it.
    pub text: usize,
    pub sent: u64,
    /// When it was delivered or dropped; the end of the chart if it is still in flight.
    pub end: u64,
    pub outcome: Outcome,
    /// The second copy of a duplicated message (drawn dashed).
    pub duplicate: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MarkKind {
    Start,
    Crash,
    Restart,
    Pause,
    Resume,
    Leave,
    Timer,
    Suspect,
    Trust,
}

impl MarkKind {
    pub const ALL: [MarkKind; 9] = [
        MarkKind::Start,
        MarkKind::Crash,
        MarkKind::Restart,
        MarkKind::Pause,
        MarkKind::Resume,
        MarkKind::Leave,
        MarkKind::Timer,
        MarkKind::Suspect,
        MarkKind::Trust,
    ];
    pub fn name(self) -> &'static str {
        match self {
            MarkKind::Start => "start",
            MarkKind::Crash => "crash",
            MarkKind::Restart => "restart",
            MarkKind::Pause => "pause",
            MarkKind::Resume => "resume",
            MarkKind::Leave => "leave",
            MarkKind::Timer => "timer",
            MarkKind::Suspect => "suspect",
            MarkKind::Trust => "trust",
        }
    }
    pub fn index(self) -> usize {
        MarkKind::ALL.iter().position(|&k| k == self).unwrap_or(0)
    }
}

/// An event drawn on a lane.
#[derive(Clone, Debug, PartialEq)]
pub struct Mark {
    pub at: u64,
    pub lane: usize,
    pub kind: MarkKind,
    /// Index into [`Chart::texts`]: the timer's name, the suspected node.
    pub text: Option<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LaneState {
    Down,
    Paused,
}

/// A time a lane was down (crashed, left, not yet started again) or paused.
#[derive(Clone, Debug, PartialEq)]
pub struct StateSpan {
    pub lane: usize,
    pub from: u64,
    pub to: u64,
    pub state: LaneState,
}

/// What a node believed from one role event to the next (or to its crash).
#[derive(Clone, Debug, PartialEq)]
pub struct Belief {
    pub lane: usize,
    pub from: u64,
    pub to: u64,
    pub role: Role,
    /// The lane of the leader it names.
    pub leader: Option<usize>,
    /// Index into [`Chart::texts`].
    pub status: usize,
    pub group: u64,
}

/// A time a node considered itself the leader.
#[derive(Clone, Debug, PartialEq)]
pub struct Leading {
    pub lane: usize,
    pub from: u64,
    pub to: u64,
}

/// A time two or more nodes led at once.
#[derive(Clone, Debug, PartialEq)]
pub struct Conflict {
    pub from: u64,
    pub to: u64,
    pub lanes: Vec<usize>,
}

/// A partition, from its start to the heal or the next partition.
#[derive(Clone, Debug, PartialEq)]
pub struct PartitionSpan {
    pub from: u64,
    pub to: u64,
    /// The groups as lanes; the nodes named in no group make one more component together.
    pub groups: Vec<Vec<usize>>,
    /// For each lane, its group's number from 1, or 0 for the nodes in no group.
    pub group_of: Vec<u32>,
}

/// A blocked link, from the block to the unblock or heal.
#[derive(Clone, Debug, PartialEq)]
pub struct BlockSpan {
    pub a: usize,
    pub b: usize,
    pub from: u64,
    pub to: u64,
}

/// How the horizontal axis counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Axis {
    /// Virtual time in microseconds.
    Micros,
    /// Event numbers: the trace has no time (an asynchronous explorer counterexample, whose
    /// events all happen at 0), so each event is one step.
    Steps,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Chart {
    pub lanes: Vec<String>,
    /// Message kinds (the variant names), sorted.
    pub kinds: Vec<String>,
    /// Distinct texts: messages, timer names, statuses.
    pub texts: Vec<String>,
    /// In the order of their sends; a duplicate's second copy follows the first.
    pub messages: Vec<Message>,
    /// Deliveries and drops with no send before them (a trace that starts mid-run); drawn
    /// apart, and not counted as messages.
    pub orphans: Vec<Message>,
    pub marks: Vec<Mark>,
    pub states: Vec<StateSpan>,
    pub beliefs: Vec<Belief>,
    pub leading: Vec<Leading>,
    pub conflicts: Vec<Conflict>,
    pub partitions: Vec<PartitionSpan>,
    pub blocks: Vec<BlockSpan>,
    pub axis: Axis,
    pub start: u64,
    pub end: u64,
}

/// A message's kind: its variant name, the identifier it starts with (`Election` of
/// `Election { from: a }`), or the whole text if it starts with none.
///
/// ```
/// use conclave_reports::chart::kind_of;
/// assert_eq!(kind_of("HeartbeatAck { processes: [a, b] }"), "HeartbeatAck");
/// assert_eq!(kind_of("Coordinator(b)"), "Coordinator");
/// assert_eq!(kind_of("Ok"), "Ok");
/// ```
pub fn kind_of(msg: &str) -> &str {
    let n = msg
        .char_indices()
        .find(|&(i, c)| !(c.is_alphanumeric() || c == '_' || (c == ':' && i > 0)))
        .map_or(msg.len(), |(i, _)| i);
    let kind = msg[..n].trim_end_matches(':');
    if kind.is_empty() || kind.starts_with(|c: char| c.is_ascii_digit()) {
        msg
    } else {
        kind
    }
}

#[derive(Default)]
struct Interner {
    index: HashMap<String, usize>,
    items: Vec<String>,
}

impl Interner {
    fn id(&mut self, s: &str) -> usize {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        self.items.push(s.to_string());
        self.index.insert(s.to_string(), self.items.len() - 1);
        self.items.len() - 1
    }
}

/// Builds a chart step by step.
struct Builder {
    lanes: Interner,
    texts: Interner,
    kinds: Interner,
    /// Per (from, to, text): the unmatched copies, oldest first, as indices into `messages`.
    queues: HashMap<(usize, usize, usize), VecDeque<usize>>,
    chart: Chart,
    /// Per lane: the open belief, down or paused span, and leadership.
    belief: Vec<Option<Belief>>,
    down: Vec<Option<u64>>,
    paused: Vec<Option<u64>>,
    leading: Vec<Option<u64>>,
    partition: Option<PartitionSpan>,
    blocks: Vec<BlockSpan>,
}

impl Chart {
    /// The chart of `trace`. Lanes follow `order` (the nodes of the run, services too), then
    /// every other node in the order the trace first names it; `end` is when the run ended
    /// (a later event moves it). A trace whose events all have one time is drawn by steps.
    pub fn new(trace: &[TraceEvent], order: &[String], end: u64) -> Chart {
        let steps = trace.len() > 1 && trace.iter().all(|e| e.time_us == trace[0].time_us);
        let axis = if steps { Axis::Steps } else { Axis::Micros };
        let at = |i: usize, e: &TraceEvent| if steps { i as u64 } else { e.time_us };
        let start = 0;
        let last = trace.iter().enumerate().map(|(i, e)| at(i, e)).max();
        let end = if steps {
            last.unwrap_or(0) + 1
        } else {
            last.unwrap_or(0).max(end)
        };
        let mut b = Builder {
            lanes: Interner::default(),
            texts: Interner::default(),
            kinds: Interner::default(),
            queues: HashMap::new(),
            chart: Chart {
                lanes: vec![],
                kinds: vec![],
                texts: vec![],
                messages: vec![],
                orphans: vec![],
                marks: vec![],
                states: vec![],
                beliefs: vec![],
                leading: vec![],
                conflicts: vec![],
                partitions: vec![],
                blocks: vec![],
                axis,
                start,
                end,
            },
            belief: vec![],
            down: vec![],
            paused: vec![],
            leading: vec![],
            partition: None,
            blocks: vec![],
        };
        for name in order {
            b.lane(name);
        }
        // Every lane first, so that lanes keep the order in which the trace names them.
        for e in trace {
            b.lanes_of(e);
        }
        for (i, e) in trace.iter().enumerate() {
            b.event(at(i, e), e);
        }
        b.finish()
    }

    /// Messages sent (the first copy of each), i.e. the trace's `send` events.
    pub fn sends(&self) -> usize {
        self.messages.iter().filter(|m| !m.duplicate).count()
    }
}

impl Builder {
    fn lane(&mut self, name: &str) -> usize {
        let i = self.lanes.id(name);
        if i == self.belief.len() {
            self.belief.push(None);
            self.down.push(None);
            self.paused.push(None);
            self.leading.push(None);
        }
        i
    }

    fn lanes_of(&mut self, e: &TraceEvent) {
        match &e.what {
            What::Partition { groups } => {
                for n in groups.iter().flatten() {
                    self.lane(n);
                }
            }
            What::Heal => {}
            What::Send { to, .. } => {
                self.lane(&e.node);
                self.lane(to);
            }
            What::Deliver { from, .. } => {
                self.lane(from);
                self.lane(&e.node);
            }
            What::Drop { from, to, .. } | What::Duplicate { from, to, .. } => {
                self.lane(from);
                self.lane(to);
            }
            What::Block { a, b } | What::Unblock { a, b } => {
                self.lane(a);
                self.lane(b);
            }
            What::Role { leader, .. } => {
                self.lane(&e.node);
                if let Some(l) = leader {
                    self.lane(l);
                }
            }
            _ => {
                self.lane(&e.node);
            }
        }
    }

    fn mark(&mut self, at: u64, lane: usize, kind: MarkKind, text: Option<&str>) {
        let text = text.map(|t| self.texts.id(t));
        self.chart.marks.push(Mark {
            at,
            lane,
            kind,
            text,
        });
    }

    fn close_belief(&mut self, lane: usize, at: u64) {
        if let Some(mut b) = self.belief[lane].take() {
            b.to = at;
            self.chart.beliefs.push(b);
        }
        if let Some(from) = self.leading[lane].take() {
            self.chart.leading.push(Leading { lane, from, to: at });
        }
    }

    fn close_state(&mut self, lane: usize, at: u64, state: LaneState) {
        let open = match state {
            LaneState::Down => self.down[lane].take(),
            LaneState::Paused => self.paused[lane].take(),
        };
        if let Some(from) = open {
            self.chart.states.push(StateSpan {
                lane,
                from,
                to: at,
                state,
            });
        }
    }

    fn close_partition(&mut self, at: u64) {
        if let Some(mut p) = self.partition.take() {
            p.to = at;
            self.chart.partitions.push(p);
        }
    }

    fn end_message(&mut self, from: usize, to: usize, msg: &str, at: u64, outcome: Outcome) {
        let text = self.texts.id(msg);
        let matched = self
            .queues
            .get_mut(&(from, to, text))
            .and_then(VecDeque::pop_front);
        match matched {
            Some(i) => {
                let m = &mut self.chart.messages[i];
                m.end = at;
                m.outcome = outcome;
            }
            None => {
                let kind = self.kinds.id(kind_of(msg));
                self.chart.orphans.push(Message {
                    from,
                    to,
                    kind,
                    text,
                    sent: at,
                    end: at,
                    outcome,
                    duplicate: false,
                });
            }
        }
    }

    fn event(&mut self, at: u64, e: &TraceEvent) {
        let node = match &e.what {
            What::Partition { .. } | What::Heal => usize::MAX,
            _ => self.lane(&e.node),
        };
        match &e.what {
            What::Start => {
                self.close_state(node, at, LaneState::Down);
                self.mark(at, node, MarkKind::Start, None);
            }
            What::Restart => {
                self.close_state(node, at, LaneState::Down);
                self.mark(at, node, MarkKind::Restart, None);
            }
            What::Crash | What::Leave => {
                self.close_belief(node, at);
                self.close_state(node, at, LaneState::Paused);
                self.down[node].get_or_insert(at);
                let kind = if e.what == What::Crash {
                    MarkKind::Crash
                } else {
                    MarkKind::Leave
                };
                self.mark(at, node, kind, None);
            }
            What::Pause => {
                self.paused[node].get_or_insert(at);
                self.mark(at, node, MarkKind::Pause, None);
            }
            What::Resume => {
                self.close_state(node, at, LaneState::Paused);
                self.mark(at, node, MarkKind::Resume, None);
            }
            What::Send { to, msg } => {
                let to = self.lane(to);
                let text = self.texts.id(msg);
                let kind = self.kinds.id(kind_of(msg));
                self.chart.messages.push(Message {
                    from: node,
                    to,
                    kind,
                    text,
                    sent: at,
                    end: at,
                    outcome: Outcome::InFlight,
                    duplicate: false,
                });
                let i = self.chart.messages.len() - 1;
                self.queues
                    .entry((node, to, text))
                    .or_default()
                    .push_back(i);
            }
            What::Duplicate { from, to, msg } => {
                let (from, to, text) = (self.lane(from), self.lane(to), self.texts.id(msg));
                let queue = self.queues.entry((from, to, text)).or_default();
                // The copy of the send it follows: the newest with this key.
                if let Some(&i) = queue.back() {
                    let mut copy = self.chart.messages[i].clone();
                    copy.duplicate = true;
                    self.chart.messages.push(copy);
                    let j = self.chart.messages.len() - 1;
                    self.queues
                        .entry((from, to, text))
                        .or_default()
                        .push_back(j);
                }
            }
            What::Deliver { from, msg } => {
                let from = self.lane(from);
                self.end_message(from, node, msg, at, Outcome::Delivered);
            }
            What::Drop {
                from,
                to,
                msg,
                reason,
            } => {
                let (from, to) = (self.lane(from), self.lane(to));
                self.end_message(from, to, msg, at, Outcome::Dropped(*reason));
            }
            What::Timer { timer } => self.mark(at, node, MarkKind::Timer, Some(timer)),
            What::Suspect { who, suspected } => {
                let kind = if *suspected {
                    MarkKind::Suspect
                } else {
                    MarkKind::Trust
                };
                self.mark(at, node, kind, Some(who));
            }
            What::Role {
                role,
                leader,
                status,
                group,
            } => {
                let leader = leader.as_deref().map(|l| self.lane(l));
                let status = self.texts.id(status);
                let was_leading = self.leading[node].take();
                self.close_belief(node, at);
                if *role == Role::Leader {
                    self.leading[node] = Some(was_leading.unwrap_or(at));
                } else if let Some(from) = was_leading {
                    self.chart.leading.push(Leading {
                        lane: node,
                        from,
                        to: at,
                    });
                }
                self.belief[node] = Some(Belief {
                    lane: node,
                    from: at,
                    to: at,
                    role: *role,
                    leader,
                    status,
                    group: *group,
                });
            }
            What::Partition { groups } => {
                self.close_partition(at);
                let groups: Vec<Vec<usize>> = groups
                    .iter()
                    .map(|g| g.iter().map(|n| self.lane(n)).collect())
                    .collect();
                let mut group_of = vec![0; self.lanes.items.len()];
                for (i, g) in groups.iter().enumerate() {
                    for &l in g {
                        group_of[l] = i as u32 + 1;
                    }
                }
                self.partition = Some(PartitionSpan {
                    from: at,
                    to: at,
                    groups,
                    group_of,
                });
            }
            What::Heal => {
                self.close_partition(at);
                for mut b in std::mem::take(&mut self.blocks) {
                    b.to = at;
                    self.chart.blocks.push(b);
                }
            }
            What::Block { a, b } => {
                let (a, b) = (self.lane(a), self.lane(b));
                let open = self
                    .blocks
                    .iter()
                    .any(|x| (x.a, x.b) == (a, b) || (x.a, x.b) == (b, a));
                if !open {
                    self.blocks.push(BlockSpan {
                        a,
                        b,
                        from: at,
                        to: at,
                    });
                }
            }
            What::Unblock { a, b } => {
                let (a, b) = (self.lane(a), self.lane(b));
                if let Some(k) = self
                    .blocks
                    .iter()
                    .position(|x| (x.a, x.b) == (a, b) || (x.a, x.b) == (b, a))
                {
                    let mut x = self.blocks.remove(k);
                    x.to = at;
                    self.chart.blocks.push(x);
                }
            }
        }
    }

    fn finish(mut self) -> Chart {
        let end = self.chart.end;
        for lane in 0..self.belief.len() {
            self.close_belief(lane, end);
            self.close_state(lane, end, LaneState::Down);
            self.close_state(lane, end, LaneState::Paused);
        }
        self.close_partition(end);
        for mut b in std::mem::take(&mut self.blocks) {
            b.to = end;
            self.chart.blocks.push(b);
        }
        for m in &mut self.chart.messages {
            if m.outcome == Outcome::InFlight {
                m.end = end;
            }
        }
        // Kinds sorted by name; messages renumbered to match.
        let mut order: Vec<usize> = (0..self.kinds.items.len()).collect();
        order.sort_by(|&a, &b| self.kinds.items[a].cmp(&self.kinds.items[b]));
        let mut rank = vec![0; order.len()];
        for (r, &k) in order.iter().enumerate() {
            rank[k] = r;
        }
        for m in self
            .chart
            .messages
            .iter_mut()
            .chain(self.chart.orphans.iter_mut())
        {
            m.kind = rank[m.kind];
        }
        self.chart.kinds = order.iter().map(|&k| self.kinds.items[k].clone()).collect();
        let lanes = self.lanes.items.len();
        for p in &mut self.chart.partitions {
            p.group_of.resize(lanes, 0);
        }
        self.chart.lanes = self.lanes.items;
        self.chart.texts = self.texts.items;
        let by_lane_then_time = |l: usize, t: u64| (l, t);
        self.chart.beliefs.retain(|b| b.to > b.from);
        self.chart
            .beliefs
            .sort_by_key(|b| by_lane_then_time(b.lane, b.from));
        self.chart
            .leading
            .sort_by_key(|b| by_lane_then_time(b.lane, b.from));
        self.chart
            .states
            .sort_by_key(|s| by_lane_then_time(s.lane, s.from));
        self.chart.blocks.sort_by_key(|b| b.from);
        self.chart.conflicts = conflicts(&self.chart.leading);
        self.chart
    }
}

/// The times two or more nodes led at once.
fn conflicts(leading: &[Leading]) -> Vec<Conflict> {
    // A sweep over the starts and ends; an end at the same instant as a start comes first.
    let mut points: Vec<(u64, bool, usize)> = leading
        .iter()
        .filter(|l| l.to > l.from)
        .flat_map(|l| [(l.from, true, l.lane), (l.to, false, l.lane)])
        .collect();
    points.sort();
    let mut now: Vec<usize> = vec![];
    let mut out: Vec<Conflict> = vec![];
    let mut i = 0;
    while i < points.len() {
        let t = points[i].0;
        while i < points.len() && points[i].0 == t {
            let (_, starts, lane) = points[i];
            if starts {
                now.push(lane);
            } else if let Some(k) = now.iter().position(|&l| l == lane) {
                now.remove(k);
            }
            i += 1;
        }
        if let Some(c) = out.last_mut() {
            if c.to == u64::MAX {
                c.to = t;
            }
        }
        if now.len() >= 2 {
            let mut lanes = now.clone();
            lanes.sort_unstable();
            out.push(Conflict {
                from: t,
                to: u64::MAX,
                lanes,
            });
        }
    }
    out.retain(|c| c.to != u64::MAX && c.to > c.from);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(t: u64, node: &str, what: What) -> TraceEvent {
        TraceEvent {
            time_us: t,
            node: node.into(),
            what,
        }
    }
    fn send(t: u64, a: &str, b: &str, m: &str) -> TraceEvent {
        ev(
            t,
            a,
            What::Send {
                to: b.into(),
                msg: m.into(),
            },
        )
    }
    fn deliver(t: u64, a: &str, b: &str, m: &str) -> TraceEvent {
        ev(
            t,
            b,
            What::Deliver {
                from: a.into(),
                msg: m.into(),
            },
        )
    }
    fn role(t: u64, n: &str, role: Role, leader: Option<&str>) -> TraceEvent {
        ev(
            t,
            n,
            What::Role {
                role,
                leader: leader.map(String::from),
                status: "S".into(),
                group: 0,
            },
        )
    }

    #[test]
    fn sends_match_deliveries_first_in_first_out_and_duplicates_add_a_copy() {
        let trace = vec![
            send(0, "a", "b", "Ping"),
            send(1, "a", "b", "Ping"),
            ev(
                1,
                "a",
                What::Duplicate {
                    from: "a".into(),
                    to: "b".into(),
                    msg: "Ping".into(),
                },
            ),
            deliver(3, "a", "b", "Ping"),
            deliver(4, "a", "b", "Ping"),
            ev(
                5,
                "b",
                What::Drop {
                    from: "a".into(),
                    to: "b".into(),
                    msg: "Ping".into(),
                    reason: DropReason::Lost,
                },
            ),
            send(6, "b", "a", "Pong"),
            deliver(7, "x", "a", "Pong"),
        ];
        let c = Chart::new(&trace, &["b".to_string()], 10);
        assert_eq!(c.lanes, ["b", "a", "x"]);
        assert_eq!(c.sends(), 3);
        let got: Vec<(u64, u64, Outcome, bool)> = c
            .messages
            .iter()
            .map(|m| (m.sent, m.end, m.outcome, m.duplicate))
            .collect();
        assert_eq!(
            got,
            [
                (0, 3, Outcome::Delivered, false),
                (1, 4, Outcome::Delivered, false),
                (1, 5, Outcome::Dropped(DropReason::Lost), true),
                (6, 10, Outcome::InFlight, false),
            ]
        );
        // A delivery from x, which sent nothing: an orphan, not a message.
        assert_eq!(c.orphans.len(), 1);
    }

    #[test]
    fn beliefs_leaders_and_conflicts() {
        let trace = vec![
            role(0, "a", Role::Candidate, None),
            role(1, "a", Role::Leader, Some("a")),
            role(2, "b", Role::Leader, Some("b")),
            ev(5, "b", What::Crash),
            role(6, "a", Role::Leader, Some("a")),
        ];
        let c = Chart::new(&trace, &[], 10);
        assert_eq!(
            c.leading,
            [
                Leading {
                    lane: 0,
                    from: 1,
                    to: 10
                },
                Leading {
                    lane: 1,
                    from: 2,
                    to: 5
                }
            ]
        );
        assert_eq!(
            c.conflicts,
            [Conflict {
                from: 2,
                to: 5,
                lanes: vec![0, 1]
            }]
        );
        assert_eq!(c.beliefs.iter().filter(|b| b.lane == 0).count(), 3);
        assert_eq!(
            c.states,
            [StateSpan {
                lane: 1,
                from: 5,
                to: 10,
                state: LaneState::Down
            }]
        );
    }

    #[test]
    fn a_trace_with_no_time_is_drawn_by_steps() {
        let trace = vec![send(0, "a", "b", "M"), deliver(0, "a", "b", "M")];
        let c = Chart::new(&trace, &[], 0);
        assert_eq!(c.axis, Axis::Steps);
        assert_eq!((c.messages[0].sent, c.messages[0].end, c.end), (0, 1, 2));
    }
}
