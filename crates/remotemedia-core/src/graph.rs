//! The pipeline graph: node ids, edges, and a deterministic topological order.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

use crate::error::ExecutorError;

/// Nodes (by index) and directed edges between them, known to be acyclic.
#[derive(Debug, Clone)]
pub struct PipelineGraph {
    ids: Vec<String>,
    upstream: Vec<Vec<usize>>,
    downstream: Vec<Vec<usize>>,
    order: Vec<usize>,
}

impl PipelineGraph {
    /// Builds the graph. Fails on duplicate ids, unknown endpoints, self-loops, duplicate
    /// edges ([`ExecutorError::GraphError`]) and cycles ([`ExecutorError::CycleError`]).
    pub fn new(ids: Vec<String>, edges: &[(String, String)]) -> Result<Self, ExecutorError> {
        let mut index = HashMap::with_capacity(ids.len());
        for (i, id) in ids.iter().enumerate() {
            if index.insert(id.as_str(), i).is_some() {
                return Err(ExecutorError::GraphError {
                    node_id: Some(id.clone()),
                    message: format!("node id '{id}' is used more than once; ids must be unique"),
                });
            }
        }
        let mut upstream = vec![Vec::new(); ids.len()];
        let mut downstream = vec![Vec::new(); ids.len()];
        let mut seen = HashSet::new();
        for (from, to) in edges {
            let lookup = |id: &String| {
                index.get(id.as_str()).copied().ok_or_else(|| ExecutorError::GraphError {
                    node_id: Some(id.clone()),
                    message: format!(
                        "connection {from} -> {to} names '{id}', which is not a node; node ids are: {}",
                        ids.join(", ")
                    ),
                })
            };
            let (f, t) = (lookup(from)?, lookup(to)?);
            if f == t {
                return Err(ExecutorError::GraphError {
                    node_id: Some(from.clone()),
                    message: format!("connection {from} -> {to} connects a node to itself"),
                });
            }
            if !seen.insert((f, t)) {
                return Err(ExecutorError::GraphError {
                    node_id: Some(from.clone()),
                    message: format!("connection {from} -> {to} is listed twice"),
                });
            }
            upstream[t].push(f);
            downstream[f].push(t);
        }
        let order = topological_order(&upstream, &downstream).map_err(|cycle| {
            ExecutorError::CycleError {
                nodes: cycle.into_iter().map(|i| ids[i].clone()).collect(),
            }
        })?;
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

    /// Nodes with no incoming connection: they receive the pipeline input.
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

    fn g(ids: &[&str], edges: &[(&str, &str)]) -> Result<PipelineGraph, ExecutorError> {
        PipelineGraph::new(
            ids.iter().map(|s| s.to_string()).collect(),
            &edges
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn order_respects_edges_and_manifest_order() {
        let graph = g(&["c", "a", "b", "d"], &[("a", "b"), ("c", "d"), ("b", "d")]).unwrap();
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
        let err = g(
            &["src", "a", "b", "c"],
            &[("src", "a"), ("a", "b"), ("b", "c"), ("c", "a")],
        )
        .unwrap_err();
        match err {
            ExecutorError::CycleError { nodes } => assert_eq!(nodes, ["a", "b", "c", "a"]),
            other => panic!("expected a cycle error, got {other}"),
        }
        assert_eq!(
            g(&["x", "y"], &[("y", "x"), ("x", "y")])
                .unwrap_err()
                .to_string(),
            "cycle detected in pipeline: x -> y -> x"
        );
    }

    #[test]
    fn graph_errors_name_the_node() {
        let e = g(&["a"], &[("a", "a")]).unwrap_err();
        assert_eq!(e.node_id(), Some("a"));
        let e = g(&["a"], &[("a", "zz")]).unwrap_err();
        assert!(e.to_string().contains("'zz', which is not a node"), "{e}");
        let e = g(&["a", "b"], &[("a", "b"), ("a", "b")]).unwrap_err();
        assert!(e.to_string().contains("listed twice"), "{e}");
    }
}
