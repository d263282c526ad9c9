//! The named properties of DESIGN.md, evaluated over node states and the network topology.
//!
//! The functions here read a slice of [`NodeStatus`] and a [`Topology`], so the simulator and
//! the explorer share them. Which nodes count:
//!
//! - `AtMostOneLeader` and `OneLeaderPerComponent` count every node that is up, *including
//!   paused ones*: a frozen process still believes it leads and acts on it when it resumes.
//! - `Agreement`, `HighestWins`, `LeaderIs` and `EventualLeader` speak of *running* nodes (up
//!   and not paused): a paused node names nobody the others could ask.
//! - A component is a connected component of the graph of working links between voters
//!   (partitions and blocked links cut edges); a crashed node still belongs to its component.
//!
//! ```
//! use conclave_sim::properties::{NodeStatus, Topology, at_most_one_leader};
//! use conclave_algorithms::{Pid, Role, View};
//! let leader = |p| NodeStatus::running(10, View::new(Role::Leader, Some(Pid(p)), ""));
//! let names = ["a".to_string(), "b".to_string()];
//! let two = [leader(0), leader(1)];
//! assert_eq!(at_most_one_leader(&two, &names), Err("a and b both lead".to_string()));
//! ```

use conclave_algorithms::{Pid, Role, Time, View};
use std::cell::RefCell;
use std::collections::BTreeSet;

/// What the properties need to know of one process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeStatus {
    /// Started and not crashed.
    pub up: bool,
    pub paused: bool,
    /// Takes part in elections (services do not).
    pub voter: bool,
    pub priority: u64,
    pub view: View,
}

impl NodeStatus {
    pub const DOWN_VIEW: View = View::DOWN;

    /// A running voter with this view (for tests and examples).
    pub fn running(priority: u64, view: View) -> Self {
        NodeStatus {
            up: true,
            paused: false,
            voter: true,
            priority,
            view,
        }
    }
    pub fn is_running(&self) -> bool {
        self.up && !self.paused && self.voter
    }
    /// Up (paused or not) and believing itself leader.
    pub fn believes_leader(&self) -> bool {
        self.up && self.voter && self.view.role == Role::Leader
    }
}

/// Who can talk to whom: partition groups and blocked links.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Topology {
    group: Vec<u32>,
    blocked: BTreeSet<(u32, u32)>,
    component: Vec<u32>,
    /// Whether a process's links join components: voters do; services (a log server every
    /// node reports to) do not, or they would bridge every partition.
    joins: Vec<bool>,
}

impl Topology {
    /// `n` processes whose links all join components.
    pub fn new(n: usize) -> Self {
        Topology::joining(vec![true; n])
    }

    /// Components are formed by the links of the processes marked `true` only.
    pub fn joining(joins: Vec<bool>) -> Self {
        let n = joins.len();
        Topology {
            group: vec![0; n],
            blocked: BTreeSet::new(),
            component: vec![0; n],
            joins,
        }
    }

    fn key(a: Pid, b: Pid) -> (u32, u32) {
        (a.0.min(b.0), a.0.max(b.0))
    }

    /// Whether a message can cross from `a` to `b` (links are symmetric).
    #[inline]
    pub fn connected(&self, a: Pid, b: Pid) -> bool {
        self.group[a.index()] == self.group[b.index()]
            && (self.blocked.is_empty() || !self.blocked.contains(&Self::key(a, b)))
    }

    /// Splits the network: each listed group is one side, the unlisted nodes one more.
    pub fn partition(&mut self, groups: &[Vec<Pid>]) {
        self.group.iter_mut().for_each(|g| *g = 0);
        for (i, group) in groups.iter().enumerate() {
            for p in group {
                self.group[p.index()] = i as u32 + 1;
            }
        }
        self.recompute();
    }
    pub fn block(&mut self, a: Pid, b: Pid) {
        self.blocked.insert(Self::key(a, b));
        self.recompute();
    }
    pub fn unblock(&mut self, a: Pid, b: Pid) {
        self.blocked.remove(&Self::key(a, b));
        self.recompute();
    }
    pub fn heal(&mut self) {
        self.group.iter_mut().for_each(|g| *g = 0);
        self.blocked.clear();
        self.recompute();
    }
    pub fn is_whole(&self) -> bool {
        self.blocked.is_empty() && self.group.iter().all(|&g| g == 0)
    }

    /// The component id of a process: equal ids, same connected component.
    #[inline]
    pub fn component(&self, p: Pid) -> u32 {
        self.component[p.index()]
    }

    /// Connected components by union-find over the working links between joining processes
    /// (only needed with blocks; without them the components are the partition groups).
    fn recompute(&mut self) {
        let n = self.group.len();
        if self.blocked.is_empty() {
            self.component.clone_from(&self.group);
            return;
        }
        let mut parent: Vec<u32> = (0..n as u32).collect();
        fn find(parent: &mut [u32], mut x: u32) -> u32 {
            while parent[x as usize] != x {
                parent[x as usize] = parent[parent[x as usize] as usize];
                x = parent[x as usize];
            }
            x
        }
        for a in 0..n as u32 {
            for b in a + 1..n as u32 {
                let both_join = self.joins[a as usize] && self.joins[b as usize];
                if both_join && self.connected(Pid(a), Pid(b)) {
                    let (ra, rb) = (find(&mut parent, a), find(&mut parent, b));
                    if ra != rb {
                        parent[ra.max(rb) as usize] = ra.min(rb);
                    }
                }
            }
        }
        self.component = (0..n as u32).map(|x| find(&mut parent, x)).collect();
    }
}

fn leaders(status: &[NodeStatus]) -> impl Iterator<Item = Pid> + '_ {
    status
        .iter()
        .enumerate()
        .filter(|(_, s)| s.believes_leader())
        .map(|(i, _)| Pid(i as u32))
}

/// `AtMostOneLeader` at one instant.
pub fn at_most_one_leader(status: &[NodeStatus], names: &[String]) -> Result<(), String> {
    let ls: Vec<Pid> = leaders(status).collect();
    if ls.len() <= 1 {
        return Ok(());
    }
    let named: Vec<&str> = ls.iter().map(|p| names[p.index()].as_str()).collect();
    Err(match named.as_slice() {
        [a, b] => format!("{a} and {b} both lead"),
        [rest @ .., last] => format!("{} and {last} all lead", rest.join(", ")),
        [] => unreachable!("two or more leaders"),
    })
}

/// `OneLeaderPerComponent` at one instant.
pub fn one_leader_per_component(
    status: &[NodeStatus],
    topo: &Topology,
    names: &[String],
) -> Result<(), String> {
    let ls: Vec<Pid> = leaders(status).collect();
    for (i, &a) in ls.iter().enumerate() {
        for &b in &ls[i + 1..] {
            if topo.component(a) == topo.component(b) {
                return Err(format!(
                    "{} and {} both lead in one component",
                    names[a.index()],
                    names[b.index()]
                ));
            }
        }
    }
    Ok(())
}

/// Whether `Agreement` holds, without building an explanation (the explorer asks this of
/// every state).
pub fn agreement_holds(status: &[NodeStatus], topo: &Topology) -> bool {
    thread_local! {
        /// Per component id: the leader its first running voter names (reused: the
        /// explorer asks this of every state it finds).
        static NAMED: RefCell<Vec<Option<Option<Pid>>>> = const { RefCell::new(Vec::new()) };
    }
    NAMED.with(|named| {
        let mut named = named.borrow_mut();
        named.clear();
        named.resize(status.len() + 1, None);
        agreement_holds_in(status, topo, &mut named)
    })
}

fn agreement_holds_in(
    status: &[NodeStatus],
    topo: &Topology,
    named: &mut [Option<Option<Pid>>],
) -> bool {
    for (i, s) in status.iter().enumerate() {
        if !s.is_running() {
            continue;
        }
        let c = topo.component(Pid(i as u32)) as usize;
        match named[c] {
            None => named[c] = Some(s.view.leader),
            Some(l) if l == s.view.leader => {}
            Some(_) => return false,
        }
    }
    named.iter().enumerate().all(|(c, entry)| match entry {
        None => true,
        Some(None) => false,
        Some(Some(l)) => {
            let ls = &status[l.index()];
            ls.is_running() && ls.view.role == Role::Leader && topo.component(*l) as usize == c
        }
    })
}

/// How many up voters believe they lead, and whether two of them share a component.
/// Allocates nothing for the first 16 leaders (the explorer asks this of every state).
pub fn leader_counts(status: &[NodeStatus], topo: &Topology) -> (usize, bool) {
    const INLINE: usize = 16;
    let mut first = [0u32; INLINE];
    let mut more: Vec<u32> = Vec::new();
    let (mut count, mut shared) = (0, false);
    for (i, s) in status.iter().enumerate() {
        if s.believes_leader() {
            let c = topo.component(Pid(i as u32));
            shared |= first[..count.min(INLINE)].contains(&c) || more.contains(&c);
            if count < INLINE {
                first[count] = c;
            } else {
                more.push(c);
            }
            count += 1;
        }
    }
    (count, shared)
}

/// `Agreement`: in every component, every running voter names the same running leader, which
/// is in that component and considers itself leader. Returns the agreed leaders.
pub fn agreement(
    status: &[NodeStatus],
    topo: &Topology,
    names: &[String],
) -> Result<Vec<Pid>, String> {
    // Per component id: the leader its first running voter names.
    let mut named: Vec<Option<Option<Pid>>> = vec![None; status.len() + 1];
    for (i, s) in status.iter().enumerate() {
        if !s.is_running() {
            continue;
        }
        let p = Pid(i as u32);
        let c = topo.component(p) as usize;
        match named[c] {
            None => named[c] = Some(s.view.leader),
            Some(l) if l == s.view.leader => {}
            Some(l) => {
                return Err(format!(
                    "{} names {} but another node of its component names {}",
                    names[i],
                    name_of(s.view.leader, names),
                    name_of(l, names)
                ))
            }
        }
    }
    let mut agreed = Vec::new();
    for (c, entry) in named.iter().enumerate() {
        let Some(leader) = entry else { continue };
        let Some(l) = *leader else {
            return Err(format!("the running nodes of component {c} name no leader"));
        };
        let ls = &status[l.index()];
        if !ls.is_running() || ls.view.role != Role::Leader || topo.component(l) as usize != c {
            return Err(format!(
                "nodes name {} as leader, but it is not a running leader they can reach",
                names[l.index()]
            ));
        }
        agreed.push(l);
    }
    Ok(agreed)
}

/// `HighestWins`: agreement, and each agreed leader is its component's highest running voter.
pub fn highest_wins(
    status: &[NodeStatus],
    topo: &Topology,
    names: &[String],
) -> Result<(), String> {
    let agreed = agreement(status, topo, names)?;
    for l in agreed {
        let c = topo.component(l);
        let best = status
            .iter()
            .enumerate()
            .filter(|(i, s)| s.is_running() && topo.component(Pid(*i as u32)) == c)
            .max_by_key(|(_, s)| s.priority)
            .map(|(i, _)| i);
        if let Some(b) = best {
            if b != l.index() {
                return Err(format!(
                    "{} leads, but {} has a higher priority in its component",
                    names[l.index()],
                    names[b]
                ));
            }
        }
    }
    Ok(())
}

/// `LeaderIs(node)`: `node` runs, leads, and every running voter of its component names it.
pub fn leader_is(
    status: &[NodeStatus],
    topo: &Topology,
    names: &[String],
    node: Pid,
) -> Result<(), String> {
    let s = &status[node.index()];
    if !s.is_running() {
        return Err(format!("{} is not running", names[node.index()]));
    }
    if s.view.role != Role::Leader {
        return Err(format!(
            "{} is not leader (it names {})",
            names[node.index()],
            name_of(s.view.leader, names)
        ));
    }
    let c = topo.component(node);
    for (i, o) in status.iter().enumerate() {
        if o.is_running() && topo.component(Pid(i as u32)) == c && o.view.leader != Some(node) {
            return Err(format!(
                "{} names {}, not {}",
                names[i],
                name_of(o.view.leader, names),
                names[node.index()]
            ));
        }
    }
    Ok(())
}

fn name_of(p: Option<Pid>, names: &[String]) -> &str {
    p.map_or("no leader", |p| names[p.index()].as_str())
}

/// Watches a run as it goes: the first violation of each safety property, and since when the
/// agreed leaders have been stable.
#[derive(Clone, Debug, Default)]
pub struct Monitor {
    pub at_most_one: Option<(Time, String)>,
    pub per_component: Option<(Time, String)>,
    /// The leaders agreed on now, and since when, if the cluster is settled.
    pub settled: Option<(Time, Vec<Pid>)>,
    /// Scratch space, kept from one observation to the next: it is asked after every role
    /// change, and explanations are only written when something fails.
    named: Vec<Option<Option<Pid>>>,
    agreed: Vec<Pid>,
}

impl Monitor {
    /// As new: nothing seen (the scratch space is kept).
    pub fn reset(&mut self) {
        let Monitor {
            at_most_one,
            per_component,
            settled,
            named,
            agreed,
        } = self;
        *at_most_one = None;
        *per_component = None;
        *settled = None;
        named.clear();
        agreed.clear();
    }

    /// Call after anything that can change a property: a role change, a crash, a restart, a
    /// pause, a resume, a topology change.
    pub fn observe(&mut self, now: Time, status: &[NodeStatus], topo: &Topology, names: &[String]) {
        if self.at_most_one.is_none() || self.per_component.is_none() {
            // Counted first; the explanations are written only for a violation.
            let (leaders, shared) = leader_counts(status, topo);
            if self.at_most_one.is_none() && leaders > 1 {
                self.at_most_one = at_most_one_leader(status, names)
                    .err()
                    .map(|why| (now, why));
            }
            if self.per_component.is_none() && shared {
                self.per_component = one_leader_per_component(status, topo, names)
                    .err()
                    .map(|why| (now, why));
            }
        }
        // When agreement holds, the agreed leaders are those the components name, in the
        // order of the components (as `agreement` lists them).
        self.named.clear();
        self.named.resize(status.len() + 1, None);
        let agrees = agreement_holds_in(status, topo, &mut self.named);
        if agrees {
            self.agreed.clear();
            self.agreed
                .extend(self.named.iter().filter_map(|entry| entry.flatten()));
        }
        self.settled = match (agrees, self.settled.take()) {
            (true, Some((since, before))) if before == self.agreed => Some((since, before)),
            (true, _) => Some((now, self.agreed.clone())),
            (false, _) => None,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(role: Role, leader: Option<u32>, prio: u64) -> NodeStatus {
        NodeStatus::running(prio, View::new(role, leader.map(Pid), ""))
    }

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("n{i}")).collect()
    }

    #[test]
    fn agreement_and_highest_wins_per_component() {
        let nm = names(4);
        let mut topo = Topology::new(4);
        // n3 leads everyone.
        let all = [
            st(Role::Follower, Some(3), 1),
            st(Role::Follower, Some(3), 2),
            st(Role::Follower, Some(3), 3),
            st(Role::Leader, Some(3), 4),
        ];
        assert_eq!(agreement(&all, &topo, &nm), Ok(vec![Pid(3)]));
        assert_eq!(highest_wins(&all, &topo, &nm), Ok(()));
        // Partitioned: {0,1} led by 1, {2,3} led by 3.
        topo.partition(&[vec![Pid(0), Pid(1)], vec![Pid(2), Pid(3)]]);
        let split = [
            st(Role::Follower, Some(1), 1),
            st(Role::Leader, Some(1), 2),
            st(Role::Follower, Some(3), 3),
            st(Role::Leader, Some(3), 4),
        ];
        assert!(agreement(&split, &topo, &nm).is_ok());
        assert!(at_most_one_leader(&split, &nm).is_err());
        assert!(one_leader_per_component(&split, &topo, &nm).is_ok());
        topo.heal();
        assert!(one_leader_per_component(&split, &topo, &nm).is_err());
        assert!(agreement(&split, &topo, &nm).is_err());
        // The wrong node leads.
        let low = [st(Role::Leader, Some(0), 1), st(Role::Follower, Some(0), 2)];
        assert!(highest_wins(&low, &Topology::new(2), &nm)
            .unwrap_err()
            .contains("n1 has a higher"));
    }

    #[test]
    fn leader_counts_past_the_inline_leaders() {
        // 40 nodes, each alone in its component: every one leads, none shares.
        let n = 40;
        let mut topo = Topology::new(n);
        let alone: Vec<Vec<Pid>> = (0..n as u32).map(|i| vec![Pid(i)]).collect();
        topo.partition(&alone);
        let all: Vec<NodeStatus> = (0..n as u32)
            .map(|i| st(Role::Leader, Some(i), 1))
            .collect();
        assert_eq!(leader_counts(&all, &topo), (n, false));
        // Node 30 and node 35 in one component: shared, past the first 16 leaders.
        let mut groups = alone.clone();
        groups[30].push(Pid(35));
        groups.remove(35);
        topo.partition(&groups);
        assert_eq!(leader_counts(&all, &topo), (n, true));
        // Two of the first nodes together.
        let mut groups = alone;
        groups[1].push(Pid(2));
        groups.remove(2);
        topo.partition(&groups);
        assert_eq!(leader_counts(&all, &topo), (n, true));
        // A follower does not count.
        let mut some = all.clone();
        some[2] = st(Role::Follower, Some(1), 1);
        assert_eq!(leader_counts(&some, &topo), (n - 1, false));
    }

    #[test]
    fn blocked_links_split_components_only_when_the_graph_splits() {
        let mut t = Topology::new(3);
        t.block(Pid(0), Pid(1));
        assert!(!t.connected(Pid(0), Pid(1)));
        assert_eq!(
            t.component(Pid(0)),
            t.component(Pid(1)),
            "joined through n2"
        );
        t.block(Pid(0), Pid(2));
        assert_ne!(t.component(Pid(0)), t.component(Pid(1)));
        t.heal();
        assert!(t.is_whole());
        // A service linked to both sides does not bridge them.
        let mut t = Topology::joining(vec![true, true, false]);
        t.block(Pid(0), Pid(1));
        assert_ne!(t.component(Pid(0)), t.component(Pid(1)));
    }

    /// The monitor, which counts before it explains, finds what the explaining functions
    /// find, on random states of random small clusters.
    #[test]
    fn monitor_agrees_with_the_properties() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for _ in 0..2_000 {
            let n = rng.random_range(1..7);
            let nm = names(n);
            let mut topo = Topology::new(n);
            if rng.random_bool(0.3) {
                let side: Vec<Pid> = (0..n as u32).filter(|_| rng.random()).map(Pid).collect();
                topo.partition(&[side]);
            }
            if n > 2 && rng.random_bool(0.2) {
                topo.block(Pid(0), Pid(1));
            }
            let mut monitor = Monitor::default();
            let mut one: Option<(Time, String)> = None;
            let mut per = None;
            let mut settled: Option<(Time, Vec<Pid>)> = None;
            for step in 0..6u64 {
                let now = Time(step);
                let status: Vec<NodeStatus> = (0..n)
                    .map(|i| {
                        let role =
                            [Role::Follower, Role::Leader, Role::Candidate][rng.random_range(0..3)];
                        let leader = rng.random_bool(0.8).then(|| rng.random_range(0..n as u32));
                        let mut s = st(role, leader, i as u64);
                        s.up = rng.random_bool(0.9);
                        s.paused = rng.random_bool(0.1);
                        s
                    })
                    .collect();
                monitor.observe(now, &status, &topo, &nm);
                if one.is_none() {
                    one = at_most_one_leader(&status, &nm).err().map(|w| (now, w));
                }
                if per.is_none() {
                    per = one_leader_per_component(&status, &topo, &nm)
                        .err()
                        .map(|w| (now, w));
                }
                settled = match (agreement(&status, &topo, &nm).ok(), settled.take()) {
                    (Some(a), Some((since, b))) if a == b => Some((since, b)),
                    (Some(a), _) => Some((now, a)),
                    (None, _) => None,
                };
                assert_eq!(monitor.at_most_one, one);
                assert_eq!(monitor.per_component, per);
                assert_eq!(monitor.settled, settled);
            }
        }
    }

    #[test]
    fn paused_leader_still_counts_for_safety_but_not_agreement() {
        let nm = names(2);
        let mut paused = st(Role::Leader, Some(0), 1);
        paused.paused = true;
        let s = [paused, st(Role::Leader, Some(1), 2)];
        assert!(at_most_one_leader(&s, &nm).is_err());
        assert_eq!(agreement(&s, &Topology::new(2), &nm), Ok(vec![Pid(1)]));
    }
}
