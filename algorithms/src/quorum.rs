//! Majority ("quorum") election, as seed 004's `node.py` describes it.
//!
//! - **Joining**: a starting node broadcasts HELLO with its key (its birth time, the virtual
//!   time it started, or its port with `use_port`) and its current wish; every node that
//!   hears it adds it to its connected set and answers WELCOME, so the newcomer learns them.
//!   The newcomer decides nothing during its first `vote_interval` (its join window), so
//!   that it does not call itself master of a cluster of one before the WELCOMEs arrive.
//! - **Voting**: every `vote_interval` each node sends VOTE (its key and wish) to every
//!   connected node. A node wishes for the connected node (itself included) with the lowest
//!   key: the oldest, or the lowest port.
//! - **Master**: a vote counts while it is fresh (received within `vote_timeout`); the wish a
//!   handshake carries is not a vote. A candidate
//!   with the votes of an absolute majority of the node and its connected nodes is master.
//!   Without one, the largest part survives: the nodes whose wish got strictly the most
//!   votes stay and take that candidate as master, and the others dispatch. A tie is no
//!   largest part: nobody is master until the votes change (the explorer found two masters
//!   when a tie went to one side).
//! - **Losing nodes**: a connected node not heard from for `lost_timeout` is lost (killed,
//!   or cut off). A node that has lost more nodes than it is connected to dispatches: no
//!   majority can form around it.
//! - **Leaving**: a graceful leave (the seed's `q`) announces LEAVING; the others mark the
//!   node dispatched, not lost. A dispatched node stops voting until it re-enters, under the
//!   same name, with a new birth time.
//!
//! Role changes (master, slave, dispatched) are the driver's role-change events; the real
//! runtime runs the seed's master and slave scripts on them.
//!
//! Choice: fresh votes. The seed recomputes the master "constantly" from the votes it holds;
//! counting only fresh votes makes a cut-off master step down before the others declare it
//! lost and elect another. That needs a margin: two nodes may have last heard each other up
//! to one vote interval and one message delay apart, so at most one master requires
//! `vote_timeout + vote_interval + max delay < lost_timeout`. The explorer found the
//! violation with 2.5 s + 1 s + 100 ms against 3.5 s (`scenarios/explore/quorum3_partitions.ron`
//! with `vote_timeout: "2.5s"`); the defaults keep the margin. Set them the other way round
//! and the simulator and the explorer show two masters.
//!
//! Membership is dynamic, as in the seed: "absolute majority" counts the nodes a node has
//! met, not a configured cluster size. So nodes split apart before they ever met each form
//! a cluster of one and each is master (`scenarios/explore/quorum3_split_before_join.ron`).
//! And a lost node leaves the count, so with four nodes a 2-2 split elects two masters: the
//! halves do not lose the other half's nodes at the same instant, and a node that has lost
//! one of the other half holds 2 of 3 (the explorer's schedule is in
//! `scenarios/explore/quorum4_partitions.ron`). With three nodes a split cannot do this,
//! since one half has a single vote. `count_lost` (not in the seed) keeps lost nodes in the
//! count and makes that space safe (`quorum4_partitions_count_lost.ron`).

use crate::pidset::PidSet;
use crate::{Algorithm, Cluster, Ctx, Duration, Message, Pid, Role, Time, View};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuorumParams {
    pub vote_interval: Duration,
    pub vote_timeout: Duration,
    pub lost_timeout: Duration,
    /// Prefer the lowest port (from the node's address) over the lowest birth time.
    pub use_port: bool,
    /// A fix beyond the seed: lost nodes stay in the base of the majority, and while any
    /// is lost there is no "largest part" (its vote is missing). The seed drops a lost
    /// node from the count, so after a 2-2 split each half, once it has lost one node of
    /// the other, holds 2 of 3 and elects a master (`scenarios/explore/quorum4_partitions.ron`).
    pub count_lost: bool,
}

impl Default for QuorumParams {
    fn default() -> Self {
        QuorumParams {
            vote_interval: Duration::from_secs(1),
            vote_timeout: Duration::from_millis(1500),
            lost_timeout: Duration::from_millis(3500),
            use_port: false,
            count_lost: false,
        }
    }
}

/// The port of an `ip:port` address.
pub fn port_of(address: &str) -> Option<u64> {
    address.rsplit_once(':').and_then(|(_, p)| p.parse().ok())
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum QuorumMsg {
    Hello { key: u64, wish: Pid },
    Welcome { key: u64, wish: Pid },
    Vote { key: u64, wish: Pid },
    Leaving,
}

impl Message for QuorumMsg {
    fn kind(&self) -> &'static str {
        match self {
            QuorumMsg::Hello { .. } => "Hello",
            QuorumMsg::Welcome { .. } => "Welcome",
            QuorumMsg::Vote { .. } => "Vote",
            QuorumMsg::Leaving => "Leaving",
        }
    }
    fn is_election(&self) -> bool {
        true
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum QuorumTimer {
    Vote,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Peer {
    key: u64,
    /// Its last VOTE and when it came; a handshake carries a wish but is not a vote.
    vote: Option<(Pid, Time)>,
    heard: Time,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Quorum {
    me: Pid,
    key: u64,
    params: QuorumParams,
    connected: BTreeMap<Pid, Peer>,
    /// The nodes lost (the seed counts them): a set, since the order they were lost in
    /// changes nothing (a list made the explorer count such states apart).
    lost: PidSet,
    dispatched: bool,
    /// The join window is over.
    joined: bool,
    wish: Pid,
    master: Option<Pid>,
}

impl Quorum {
    fn meet(&mut self, from: Pid, key: u64, now: Time) {
        self.lost.remove(from);
        let vote = self.connected.get(&from).and_then(|p| p.vote);
        self.connected.insert(
            from,
            Peer {
                key,
                vote,
                heard: now,
            },
        );
    }

    /// Recomputes the wish and the master from the votes held (see the module docs).
    fn recompute(&mut self, now: Time, ctx: &mut Ctx<'_, Self>) {
        if self.dispatched {
            return;
        }
        self.wish = self
            .connected
            .iter()
            .map(|(&p, peer)| (peer.key, p))
            .chain([(self.key, self.me)])
            .min()
            .map_or(self.me, |(_, p)| p);
        if !self.joined {
            return;
        }
        if self.lost.len() > self.connected.len() {
            return self.dispatch(ctx);
        }
        let fresh = |peer: &Peer| {
            peer.vote
                .filter(|(_, at)| now.since(*at) <= self.params.vote_timeout)
                .map(|(wish, _)| wish)
        };
        let mut votes: BTreeMap<Pid, usize> = BTreeMap::new();
        *votes.entry(self.wish).or_default() += 1;
        for wish in self.connected.values().filter_map(fresh) {
            *votes.entry(wish).or_default() += 1;
        }
        let lost = if self.params.count_lost {
            self.lost.len()
        } else {
            0
        };
        let total = self.connected.len() + 1 + lost;
        let key_of = |p: Pid| {
            if p == self.me {
                self.key
            } else {
                self.connected.get(&p).map_or(u64::MAX, |x| x.key)
            }
        };
        // The most voted candidate, and whether it is the only one with that many votes.
        let (best, count) = votes
            .iter()
            .max_by(|a, b| {
                a.1.cmp(b.1)
                    .then((key_of(*b.0), *b.0).cmp(&(key_of(*a.0), *a.0)))
            })
            .map(|(&p, &c)| (p, c))
            .unwrap_or((self.me, 0));
        let strict = votes.values().filter(|&&c| c == count).count() == 1;
        let all_in = lost == 0 && self.connected.values().all(|p| fresh(p).is_some());
        self.master = if 2 * count > total {
            Some(best)
        } else if !all_in || !strict {
            // Votes missing, or a tie: there is no largest part yet. Wait.
            None
        } else if best != self.wish {
            // No absolute majority, and this node's wish lost: the largest part survives.
            return self.dispatch(ctx);
        } else {
            Some(best)
        };
    }

    fn dispatch(&mut self, ctx: &mut Ctx<'_, Self>) {
        self.dispatched = true;
        self.master = None;
        for &p in self.connected.keys() {
            ctx.send(p, QuorumMsg::Leaving);
        }
        ctx.cancel_timer(QuorumTimer::Vote);
    }
}

impl Algorithm for Quorum {
    type Msg = QuorumMsg;
    type Timer = QuorumTimer;
    type Params = QuorumParams;

    fn new(me: Pid, cluster: &Cluster, params: &QuorumParams) -> Self {
        let port = cluster.member(me).address.as_deref().and_then(port_of);
        Quorum {
            me,
            key: if params.use_port {
                port.unwrap_or(u64::MAX)
            } else {
                0
            },
            params: params.clone(),
            connected: BTreeMap::new(),
            lost: PidSet::new(),
            dispatched: false,
            joined: false,
            wish: me,
            master: None,
        }
    }

    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
        if !self.params.use_port {
            self.key = ctx.now().as_micros();
        }
        ctx.broadcast(QuorumMsg::Hello {
            key: self.key,
            wish: self.me,
        });
        ctx.set_timer(QuorumTimer::Vote, self.params.vote_interval);
        self.recompute(ctx.now(), ctx);
    }

    fn on_message(&mut self, from: Pid, msg: QuorumMsg, ctx: &mut Ctx<'_, Self>) {
        if self.dispatched {
            return;
        }
        let now = ctx.now();
        match msg {
            QuorumMsg::Hello { key, .. } => {
                self.meet(from, key, now);
                ctx.send(
                    from,
                    QuorumMsg::Welcome {
                        key: self.key,
                        wish: self.wish,
                    },
                );
            }
            QuorumMsg::Welcome { key, .. } => self.meet(from, key, now),
            QuorumMsg::Vote { key, wish } => {
                self.meet(from, key, now);
                if let Some(peer) = self.connected.get_mut(&from) {
                    peer.vote = Some((wish, now));
                }
            }
            QuorumMsg::Leaving => {
                // Dispatched, not lost: even a node already lost is heard leaving.
                self.connected.remove(&from);
                self.lost.remove(from);
            }
        }
        self.recompute(now, ctx);
    }

    fn on_timer(&mut self, _timer: QuorumTimer, ctx: &mut Ctx<'_, Self>) {
        if self.dispatched {
            return;
        }
        let now = ctx.now();
        self.joined = true;
        let lost: Vec<Pid> = self
            .connected
            .iter()
            .filter(|(_, peer)| now.since(peer.heard) > self.params.lost_timeout)
            .map(|(&p, _)| p)
            .collect();
        for p in lost {
            self.connected.remove(&p);
            self.lost.insert(p);
        }
        self.recompute(now, ctx);
        if self.dispatched {
            return;
        }
        for &p in self.connected.keys() {
            ctx.send(
                p,
                QuorumMsg::Vote {
                    key: self.key,
                    wish: self.wish,
                },
            );
        }
        ctx.set_timer(QuorumTimer::Vote, self.params.vote_interval);
    }

    fn on_leave(&mut self, ctx: &mut Ctx<'_, Self>) {
        for &p in self.connected.keys() {
            ctx.send(p, QuorumMsg::Leaving);
        }
    }

    fn view(&self) -> View {
        let (role, status) = if self.dispatched {
            (Role::Idle, "Dispatched")
        } else {
            match self.master {
                Some(m) if m == self.me => (Role::Leader, "Master"),
                Some(_) => (Role::Follower, "Slave"),
                None if !self.joined => (Role::Candidate, "Joining"),
                None => (Role::Candidate, "Voting"),
            }
        };
        View::new(role, self.master, status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Context, Member};

    fn at(
        node: &mut Quorum,
        c: &Cluster,
        ms: u64,
        f: impl FnOnce(&mut Quorum, &mut Ctx<'_, Quorum>),
    ) {
        let mut effects = Vec::new();
        let me = node.me;
        f(
            node,
            &mut Context::new(Time::ZERO + Duration::from_millis(ms), me, c, &mut effects),
        );
    }

    /// The seed marks a node that leaves gracefully as dispatched, not lost, even when it had
    /// been lost before its LEAVING came: it must not count towards "more nodes lost than
    /// connected".
    #[test]
    fn a_lost_node_heard_leaving_is_no_longer_lost() {
        let c = Cluster::new((0..4).map(|i| Member::voter(&format!("n{i}"), i)).collect());
        let mut a = Quorum::new(Pid(0), &c, &QuorumParams::default());
        at(&mut a, &c, 0, |n, ctx| n.on_start(ctx));
        for p in 1..4 {
            at(&mut a, &c, 0, |n, ctx| {
                n.on_message(
                    Pid(p),
                    QuorumMsg::Hello {
                        key: p as u64,
                        wish: Pid(p),
                    },
                    ctx,
                )
            });
        }
        at(&mut a, &c, 1000, |n, ctx| {
            n.on_timer(QuorumTimer::Vote, ctx)
        });
        for p in [1, 3] {
            at(&mut a, &c, 3000, |n, ctx| {
                n.on_message(
                    Pid(p),
                    QuorumMsg::Vote {
                        key: p as u64,
                        wish: Pid(0),
                    },
                    ctx,
                )
            });
        }
        // n2, silent since 0 s, is lost at 4 s; then its LEAVING comes.
        at(&mut a, &c, 4000, |n, ctx| {
            n.on_timer(QuorumTimer::Vote, ctx)
        });
        assert!(a.lost.contains(Pid(2)));
        at(&mut a, &c, 4100, |n, ctx| {
            n.on_message(Pid(2), QuorumMsg::Leaving, ctx)
        });
        assert!(!a.lost.contains(Pid(2)));
        // n3 is lost at 7 s: one lost, one connected (n1), so no dispatch, and n0 holds the
        // votes of both.
        at(&mut a, &c, 6000, |n, ctx| {
            n.on_message(
                Pid(1),
                QuorumMsg::Vote {
                    key: 1,
                    wish: Pid(0),
                },
                ctx,
            )
        });
        at(&mut a, &c, 7000, |n, ctx| {
            n.on_timer(QuorumTimer::Vote, ctx)
        });
        assert_eq!(a.view().status, "Master");
    }
}
