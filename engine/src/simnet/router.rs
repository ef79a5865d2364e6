//! The payment path finder: the cheapest path from payer to payee over open
//! channels, each hop with enough balance on the sending side for what it must
//! forward (the payee's amount plus the fees of the hops after it).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::{Msat, MAX_MONEY};

/// Longest path a payment may take.
pub const MAX_HOPS: usize = 20;

/// An open channel as the router sees it.
#[derive(Debug, Clone)]
pub struct Edge {
    pub point: String,
    pub opener: String,
    pub peer: String,
    pub opener_balance: Msat,
    pub peer_balance: Msat,
}

impl Edge {
    /// What `from` can send over this channel, if it is one of its ends.
    fn sendable_by(&self, from: &str) -> Option<(Msat, &str)> {
        if self.opener == from {
            Some((self.opener_balance, &self.peer))
        } else if self.peer == from {
            Some((self.peer_balance, &self.opener))
        } else {
            None
        }
    }
}

/// The open channels as the router last saw them, kept between payments so a
/// payment need not read them all: moved along by each payment's hops, dropped
/// whenever a channel opens or closes, a write fails, or `GRAPH_TTL` passes (so
/// what other processes did shows soon). Only ever a hint: every hop's SQL
/// condition checks the real balance, and a refusal on a remembered graph is
/// retried on a fresh one.
#[derive(Clone, Default)]
pub struct Graph(Arc<Mutex<Option<Remembered>>>);

/// When the edges were read, and the edges.
type Remembered = (Instant, Vec<Edge>);

const GRAPH_TTL: Duration = Duration::from_secs(2);

impl Graph {
    pub fn snapshot(&self) -> Option<Vec<Edge>> {
        let graph = self.0.lock().expect("graph lock");
        graph
            .as_ref()
            .filter(|(at, _)| at.elapsed() < GRAPH_TTL)
            .map(|(_, edges)| edges.clone())
    }

    /// Whether a payment would route on the remembered graph.
    pub fn is_warm(&self) -> bool {
        let graph = self.0.lock().expect("graph lock");
        graph
            .as_ref()
            .is_some_and(|(at, _)| at.elapsed() < GRAPH_TTL)
    }

    pub fn store(&self, edges: Vec<Edge>) {
        *self.0.lock().expect("graph lock") = Some((Instant::now(), edges));
    }

    pub fn invalidate(&self) {
        *self.0.lock().expect("graph lock") = None;
    }

    /// Moves each hop's amount from its sender to the other side.
    pub fn apply(&self, hops: &[Hop]) {
        let mut graph = self.0.lock().expect("graph lock");
        let Some((_, edges)) = graph.as_mut() else {
            return;
        };
        for hop in hops {
            if let Some(edge) = edges.iter_mut().find(|e| e.point == hop.point) {
                let (from, to) = if edge.opener == hop.from {
                    (&mut edge.opener_balance, &mut edge.peer_balance)
                } else {
                    (&mut edge.peer_balance, &mut edge.opener_balance)
                };
                match (from.checked_sub(hop.amount), to.checked_add(hop.amount)) {
                    (Some(left), Some(right)) => (*from, *to) = (left, right),
                    // Cannot happen with the database's bounds; forget the hint.
                    _ => {
                        *graph = None;
                        return;
                    }
                }
            }
        }
    }
}

/// One step of a route: `amount` moves over channel `point` from `from` to `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    pub point: String,
    pub from: String,
    pub to: String,
    pub amount: Msat,
}

#[derive(Debug, Clone)]
pub struct Route {
    /// From the payer to the payee.
    pub hops: Vec<Hop>,
    pub fee: Msat,
}

#[derive(Debug, Clone, Copy)]
pub struct FeePolicy {
    pub base: Msat,
    pub ppm: i64,
}

impl FeePolicy {
    /// The fee for forwarding `forwarded`, unless it overflows.
    fn fee(&self, forwarded: Msat) -> Option<Msat> {
        let proportional = i128::from(forwarded.0) * i128::from(self.ppm) / 1_000_000;
        self.base
            .checked_add(Msat(i64::try_from(proportional).ok()?))
    }
}

/// What a node must receive, its hops to the payee, and its next hop there.
type Best<'a> = (Msat, usize, Option<(&'a Edge, &'a str)>);

/// Searches backwards from the payee: `need[n]` is what node `n` must receive
/// for the payee to get `amount`; the payer adds no fee of its own.
pub fn find(
    edges: &[Edge],
    payer: &str,
    payee: &str,
    amount: Msat,
    fees: FeePolicy,
) -> Option<Route> {
    let mut into: HashMap<&str, Vec<&Edge>> = HashMap::new();
    for edge in edges {
        into.entry(edge.peer.as_str()).or_default().push(edge);
        into.entry(edge.opener.as_str()).or_default().push(edge);
    }
    let mut best: HashMap<&str, Best> = HashMap::new();
    let mut queue = BinaryHeap::new();
    best.insert(payee, (amount, 0, None));
    queue.push(Reverse((amount, payee)));
    while let Some(Reverse((need, node))) = queue.pop() {
        if best.get(node).is_some_and(|(n, _, _)| *n < need) {
            continue;
        }
        if node == payer {
            break;
        }
        let hops = best[node].1;
        if hops >= MAX_HOPS {
            continue;
        }
        for edge in into.get(node).into_iter().flatten() {
            let from = if edge.opener == node {
                edge.peer.as_str()
            } else {
                edge.opener.as_str()
            };
            let Some((balance, to)) = edge.sendable_by(from) else {
                continue;
            };
            if to != node || balance < need || from == payee {
                continue;
            }
            let from_needs = if from == payer {
                need
            } else {
                // A sum past every bitcoin there is cannot be forwarded.
                match fees.fee(need).and_then(|fee| need.checked_add(fee)) {
                    Some(needs) if needs <= MAX_MONEY => needs,
                    _ => continue,
                }
            };
            if best.get(from).is_none_or(|(n, _, _)| from_needs < *n) {
                best.insert(from, (from_needs, hops + 1, Some((edge, node))));
                queue.push(Reverse((from_needs, from)));
            }
        }
    }
    let (total, _, _) = *best.get(payer)?;
    let mut hops = Vec::new();
    let mut at = payer;
    while at != payee {
        let (_, _, next) = best[at];
        let (edge, to) = next?;
        hops.push(Hop {
            point: edge.point.clone(),
            from: at.to_string(),
            to: to.to_string(),
            amount: best[to].0,
        });
        at = to;
    }
    Some(Route {
        hops,
        fee: total.checked_sub(amount)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edge(point: &str, opener: &str, peer: &str, o: i64, p: i64) -> Edge {
        Edge {
            point: point.into(),
            opener: opener.into(),
            peer: peer.into(),
            opener_balance: Msat(o),
            peer_balance: Msat(p),
        }
    }

    const FEES: FeePolicy = FeePolicy {
        base: Msat(1000),
        ppm: 100,
    };

    #[test]
    fn alice_pays_bob_through_the_hub_and_the_hub_earns_its_fee() {
        let edges = [
            edge("a", "alice", "hub", 500_000_000, 0),
            edge("b", "hub", "bob", 500_000_000, 0),
        ];
        let route = find(&edges, "alice", "bob", Msat(10_000_000), FEES).unwrap();
        assert_eq!(route.fee, Msat(1000 + 1000));
        assert_eq!(route.hops.len(), 2);
        assert_eq!(route.hops[0].amount, Msat(10_002_000));
        assert_eq!(route.hops[0].from, "alice");
        assert_eq!(route.hops[1].amount, Msat(10_000_000));
        assert_eq!(route.hops[1].to, "bob");
    }

    #[test]
    fn a_direct_channel_costs_nothing_and_liquidity_limits_the_path() {
        let edges = [
            edge("a", "alice", "bob", 5_000, 0),
            edge("b", "bob", "alice", 9_000, 0),
        ];
        let direct = find(&edges, "alice", "bob", Msat(5_000), FEES).unwrap();
        assert_eq!(direct.fee, Msat(0));
        assert!(find(&edges, "alice", "bob", Msat(5_001), FEES).is_none());
        // Bob's side of his own channel can pay Alice.
        assert_eq!(
            find(&edges, "bob", "alice", Msat(9_000), FEES)
                .unwrap()
                .hops[0]
                .point,
            "b"
        );
    }

    #[test]
    fn no_path_means_no_route() {
        let edges = [edge("a", "alice", "hub", 1_000_000, 0)];
        assert!(find(&edges, "alice", "carol", Msat(1), FEES).is_none());
        assert!(find(&[], "alice", "bob", Msat(1), FEES).is_none());
    }

    #[test]
    fn the_cheaper_of_two_paths_wins() {
        let edges = [
            edge("long1", "alice", "x", 1_000_000_000, 0),
            edge("long2", "x", "y", 1_000_000_000, 0),
            edge("long3", "y", "bob", 1_000_000_000, 0),
            edge("short1", "alice", "hub", 1_000_000_000, 0),
            edge("short2", "hub", "bob", 1_000_000_000, 0),
        ];
        let route = find(&edges, "alice", "bob", Msat(1_000_000), FEES).unwrap();
        assert_eq!(route.hops.len(), 2);
        assert_eq!(route.hops[0].point, "short1");
    }

    #[test]
    fn amounts_past_every_bitcoin_find_no_route_instead_of_overflowing() {
        let edges = [
            edge("a", "alice", "hub", i64::MAX, 0),
            edge("b", "hub", "bob", i64::MAX, 0),
        ];
        assert!(find(&edges, "alice", "bob", MAX_MONEY, FEES).is_none());
        assert!(find(&edges, "alice", "bob", Msat(i64::MAX), FEES).is_none());
        let absurd = FeePolicy {
            base: Msat(i64::MAX),
            ppm: i64::MAX,
        };
        assert!(find(&edges, "alice", "bob", Msat(1000), absurd).is_none());
        assert!(find(&edges, "alice", "bob", Msat(1000), FEES).is_some());
    }

    #[test]
    fn the_graph_forgets_a_hint_that_would_overflow() {
        let graph = Graph::default();
        graph.store(vec![edge("a", "alice", "bob", 10, i64::MAX)]);
        graph.apply(&[Hop {
            point: "a".into(),
            from: "alice".into(),
            to: "bob".into(),
            amount: Msat(5),
        }]);
        assert!(graph.snapshot().is_none());
    }
}
