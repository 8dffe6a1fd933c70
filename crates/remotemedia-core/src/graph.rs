//! The pipeline graph: node indices, edges, and a deterministic topological order.
//!
//! Pure: indices and edges in, an order or a cycle out. Ids, endpoints, self-loops and repeated
//! edges are the manifest's business (`manifest::validate` checks them once and reports them
//! with their field paths); this module only asserts them.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

/// The connections form a cycle: the node indices on it, in edge order, starting at the
/// lowest index, with the first node repeated at the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cycle(pub Vec<usize>);

/// Nodes (by index) and directed edges between them, known to be acyclic.
#[derive(Debug, Clone)]
pub struct PipelineGraph {
    ids: Vec<String>,
    upstream: Vec<Vec<usize>>,
    downstream: Vec<Vec<usize>>,
    order: Vec<usize>,
}

impl PipelineGraph {
    /// Builds the graph of `ids.len()` nodes and `edges` (`from -> to`, by index). The edges
    /// must name existing, distinct nodes and appear once each (the manifest validation
    /// guarantees it); a cycle is the only error.
    pub fn new(ids: Vec<String>, edges: &[(usize, usize)]) -> Result<Self, Cycle> {
        let n = ids.len();
        let mut upstream = vec![Vec::new(); n];
        let mut downstream = vec![Vec::new(); n];
        for &(f, t) in edges {
            debug_assert!(f < n && t < n && f != t, "edge {f} -> {t} is not validated");
            upstream[t].push(f);
            downstream[f].push(t);
        }
        let order = topological_order(&upstream, &downstream).map_err(Cycle)?;
        Ok(Self {
            ids,
            upstream,
            downstream,
            order,
        })
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Node ids, by index.
    pub fn ids(&self) -> &[String] {
        &self.ids
    }

    /// Upstream nodes of node `i`, in connection order.
    pub fn upstream(&self, i: usize) -> &[usize] {
        &self.upstream[i]
    }

    /// Downstream nodes of node `i`, in connection order.
    pub fn downstream(&self, i: usize) -> &[usize] {
        &self.downstream[i]
    }

    /// A topological order; ties are broken by node index (manifest order).
    pub fn execution_order(&self) -> &[usize] {
        &self.order
    }

    /// Nodes with no incoming connection: they receive the pipeline input (each its own when
    /// the input is a map keyed by their ids, see [`crate::executor::Session::push`]).
    pub fn sources(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.len()).filter(|&i| self.upstream[i].is_empty())
    }

    /// Nodes with no outgoing connection: their outputs are the pipeline's outputs.
    pub fn sinks(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.len()).filter(|&i| self.downstream[i].is_empty())
    }
}

/// Kahn's algorithm with a min-heap so the order is deterministic. On a cycle, returns the
/// nodes of one cycle in edge order, starting at its lowest index, first node repeated last.
fn topological_order(
    upstream: &[Vec<usize>],
    downstream: &[Vec<usize>],
) -> Result<Vec<usize>, Vec<usize>> {
    let n = upstream.len();
    let mut indegree: Vec<usize> = upstream.iter().map(Vec::len).collect();
    let mut ready: BinaryHeap<Reverse<usize>> =
        (0..n).filter(|&i| indegree[i] == 0).map(Reverse).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(Reverse(i)) = ready.pop() {
        order.push(i);
        for &d in &downstream[i] {
            indegree[d] -= 1;
            if indegree[d] == 0 {
                ready.push(Reverse(d));
            }
        }
    }
    if order.len() == n {
        return Ok(order);
    }
    // Every node left has a predecessor that is also left: walking predecessors must loop.
    let left: Vec<bool> = (0..n).map(|i| indegree[i] > 0).collect();
    let start = (0..n).find(|&i| left[i]).expect("some node is left");
    let mut position = HashMap::new();
    let mut walk = Vec::new();
    let mut cur = start;
    while !position.contains_key(&cur) {
        position.insert(cur, walk.len());
        walk.push(cur);
        cur = *upstream[cur]
            .iter()
            .find(|&&u| left[u])
            .expect("a remaining node has a remaining predecessor");
    }
    // walk[position[cur]..] follows edges backwards; reverse it to follow them forwards.
    let mut cycle: Vec<usize> = walk[position[&cur]..].iter().rev().copied().collect();
    let lowest = (0..cycle.len()).min_by_key(|&k| cycle[k]).unwrap_or(0);
    cycle.rotate_left(lowest);
    cycle.push(cycle[0]);
    Err(cycle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(ids: &[&str], edges: &[(usize, usize)]) -> Result<PipelineGraph, Cycle> {
        PipelineGraph::new(ids.iter().map(|s| s.to_string()).collect(), edges)
    }

    #[test]
    fn order_respects_edges_and_manifest_order() {
        // c a b d with a->b, c->d, b->d
        let graph = g(&["c", "a", "b", "d"], &[(1, 2), (0, 3), (2, 3)]).unwrap();
        let order: Vec<&str> = graph
            .execution_order()
            .iter()
            .map(|&i| graph.ids()[i].as_str())
            .collect();
        assert_eq!(order, vec!["c", "a", "b", "d"]);
        assert_eq!(graph.sources().collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!(graph.sinks().collect::<Vec<_>>(), vec![3]);
        assert_eq!(graph.upstream(3), &[0, 2]);
    }

    #[test]
    fn cycle_lists_every_node_in_order() {
        // src a b c with src->a, a->b, b->c, c->a
        let err = g(&["src", "a", "b", "c"], &[(0, 1), (1, 2), (2, 3), (3, 1)]).unwrap_err();
        assert_eq!(err, Cycle(vec![1, 2, 3, 1]));
        assert_eq!(
            g(&["x", "y"], &[(1, 0), (0, 1)]).unwrap_err(),
            Cycle(vec![0, 1, 0])
        );
    }
}
