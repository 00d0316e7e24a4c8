//! The dependency graph of a runbook's steps, on petgraph.
//!
//! An edge goes from a step to each step that needs it, so a topological order is a valid run
//! order and the reverse is a valid undo order.

use std::collections::HashSet;
use std::fmt::Write;

use petgraph::Direction;
use petgraph::algo::{kosaraju_scc, toposort};
use petgraph::graph::{DiGraph, NodeIndex};

/// Steps as nodes (by index into the runbook's steps), `needs` as edges.
#[derive(Debug, Clone)]
pub struct Dag {
    graph: DiGraph<(), ()>,
}

/// How `drflow graph` draws the DAG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphFormat {
    /// An indented text listing, in run order.
    Text,
    /// Graphviz DOT.
    Dot,
    /// A Mermaid flowchart (renders on GitHub).
    Mermaid,
}

impl Dag {
    /// Builds the graph from each step's list of needed step indices.
    pub fn new(needs: &[Vec<usize>]) -> Dag {
        let mut graph = DiGraph::with_capacity(needs.len(), needs.iter().map(Vec::len).sum());
        for _ in needs {
            graph.add_node(());
        }
        for (i, ns) in needs.iter().enumerate() {
            for &n in ns {
                graph.add_edge(NodeIndex::new(n), NodeIndex::new(i), ());
            }
        }
        Dag { graph }
    }

    /// The number of steps.
    pub fn len(&self) -> usize {
        self.graph.node_count()
    }

    /// Whether there are no steps.
    pub fn is_empty(&self) -> bool {
        self.graph.node_count() == 0
    }

    /// The steps that need step `i`.
    pub fn dependants(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        self.graph
            .neighbors_directed(NodeIndex::new(i), Direction::Outgoing)
            .map(NodeIndex::index)
    }

    /// Each cycle once, as a path of step indices starting at its lowest index (the path closes
    /// back to its first element).
    pub fn cycles(&self) -> Vec<Vec<usize>> {
        let mut out = Vec::new();
        // The common case, no cycle, costs one topological sort. kosaraju_scc is iterative, so a
        // 100k-step chain cannot overflow the stack (petgraph's tarjan_scc recurses).
        if toposort(&self.graph, None).is_ok() {
            return out;
        }
        for scc in kosaraju_scc(&self.graph) {
            let self_loop = scc.len() == 1 && self.graph.contains_edge(scc[0], scc[0]);
            if scc.len() < 2 && !self_loop {
                continue;
            }
            let members: HashSet<NodeIndex> = scc.iter().copied().collect();
            let start = *scc.iter().min().expect("non-empty");
            out.push(self.path_back_to(start, &members));
        }
        out.sort();
        out
    }

    /// A path from `start` that returns to it, staying inside one strongly connected component.
    fn path_back_to(&self, start: NodeIndex, members: &HashSet<NodeIndex>) -> Vec<usize> {
        // Breadth-first from start's successors to start gives the shortest cycle through it.
        let mut parent: std::collections::HashMap<NodeIndex, NodeIndex> =
            std::collections::HashMap::new();
        let mut queue = std::collections::VecDeque::new();
        queue.push_back(start);
        let mut seen = HashSet::new();
        while let Some(n) = queue.pop_front() {
            let mut next: Vec<NodeIndex> = self
                .graph
                .neighbors_directed(n, Direction::Outgoing)
                .filter(|m| members.contains(m))
                .collect();
            next.sort();
            for m in next {
                if m == start {
                    let mut path = vec![n.index()];
                    let mut cur = n;
                    while let Some(&p) = parent.get(&cur) {
                        path.push(p.index());
                        cur = p;
                    }
                    path.reverse();
                    return path;
                }
                if seen.insert(m) {
                    parent.insert(m, n);
                    queue.push_back(m);
                }
            }
        }
        vec![start.index()]
    }

    /// Every step that step `i` transitively needs.
    pub fn ancestors(&self, i: usize) -> HashSet<usize> {
        let mut seen = HashSet::new();
        let mut stack = vec![NodeIndex::new(i)];
        while let Some(n) = stack.pop() {
            for p in self.graph.neighbors_directed(n, Direction::Incoming) {
                if seen.insert(p.index()) {
                    stack.push(p);
                }
            }
        }
        seen
    }

    /// Which of `targets` step `i` transitively needs; the search stops once all are found.
    pub fn ancestors_among(&self, i: usize, targets: &HashSet<usize>) -> HashSet<usize> {
        let mut found = HashSet::new();
        let mut seen = HashSet::new();
        let mut stack = vec![NodeIndex::new(i)];
        while let Some(n) = stack.pop() {
            for p in self.graph.neighbors_directed(n, Direction::Incoming) {
                if seen.insert(p.index()) {
                    if targets.contains(&p.index()) {
                        found.insert(p.index());
                        if found.len() == targets.len() {
                            return found;
                        }
                    }
                    stack.push(p);
                }
            }
        }
        found
    }

    /// A run order (every step after the steps it needs), or `None` if there is a cycle.
    pub fn topo_order(&self) -> Option<Vec<usize>> {
        toposort(&self.graph, None)
            .ok()
            .map(|v| v.into_iter().map(NodeIndex::index).collect())
    }

    /// Draws the graph; `labels[i]` is `(id, step type)` of step `i`.
    pub fn render(&self, labels: &[(&str, &str)], format: GraphFormat) -> String {
        let mut out = String::new();
        let edges: Vec<(usize, usize)> = self
            .graph
            .edge_indices()
            .filter_map(|e| self.graph.edge_endpoints(e))
            .map(|(a, b)| (a.index(), b.index()))
            .collect();
        match format {
            GraphFormat::Dot => {
                out.push_str(
                    "digraph runbook {\n  rankdir=LR;\n  node [shape=box, style=rounded];\n",
                );
                for (id, uses) in labels {
                    let _ = writeln!(out, "  \"{id}\" [label=\"{id}\\n{uses}\"];");
                }
                for (a, b) in edges {
                    let _ = writeln!(out, "  \"{}\" -> \"{}\";", labels[a].0, labels[b].0);
                }
                out.push_str("}\n");
            }
            GraphFormat::Mermaid => {
                out.push_str("flowchart LR\n");
                for (id, uses) in labels {
                    let _ = writeln!(out, "  {id}[\"{id}<br/><small>{uses}</small>\"]");
                }
                for (a, b) in edges {
                    let _ = writeln!(out, "  {} --> {}", labels[a].0, labels[b].0);
                }
            }
            GraphFormat::Text => {
                // Group steps into waves: each wave needs only earlier waves, so the steps of a
                // wave may run in parallel.
                let order = self.topo_order().unwrap_or_default();
                let mut level = vec![0usize; self.len()];
                for &i in &order {
                    for d in self.dependants(i) {
                        level[d] = level[d].max(level[i] + 1);
                    }
                }
                let waves = level.iter().copied().max().map_or(0, |m| m + 1);
                for w in 0..waves {
                    let _ = writeln!(out, "wave {}:", w + 1);
                    for (i, (id, uses)) in labels.iter().enumerate() {
                        if level[i] != w {
                            continue;
                        }
                        let mut needs: Vec<&str> = self
                            .graph
                            .neighbors_directed(NodeIndex::new(i), Direction::Incoming)
                            .map(|n| labels[n.index()].0)
                            .collect();
                        needs.sort();
                        if needs.is_empty() {
                            let _ = writeln!(out, "  {id} ({uses})");
                        } else {
                            let _ = writeln!(out, "  {id} ({uses}) <- {}", needs.join(", "));
                        }
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_each_cycle_with_its_path() {
        // 0 -> 1 -> 2 -> 0, and 3 needs itself.
        let dag = Dag::new(&[vec![2], vec![0], vec![1], vec![3], vec![]]);
        assert_eq!(dag.cycles(), vec![vec![0, 1, 2], vec![3]]);
        assert!(dag.topo_order().is_none());
    }

    #[test]
    fn orders_and_finds_ancestors() {
        let dag = Dag::new(&[vec![], vec![0], vec![0], vec![1, 2]]);
        assert!(dag.cycles().is_empty());
        let order = dag.topo_order().unwrap();
        let pos = |i| order.iter().position(|&x| x == i).unwrap();
        assert!(pos(0) < pos(1) && pos(1) < pos(3) && pos(2) < pos(3));
        assert_eq!(dag.ancestors(3), HashSet::from([0, 1, 2]));
        assert!(dag.ancestors(0).is_empty());
    }

    #[test]
    fn renders_waves_dot_and_mermaid() {
        let dag = Dag::new(&[vec![], vec![0], vec![0]]);
        let labels = [("a", "core.log"), ("b", "core.log"), ("c", "core.set")];
        assert_eq!(
            dag.render(&labels, GraphFormat::Text),
            "wave 1:\n  a (core.log)\nwave 2:\n  b (core.log) <- a\n  c (core.set) <- a\n"
        );
        assert!(
            dag.render(&labels, GraphFormat::Dot)
                .contains("\"a\" -> \"c\";")
        );
        assert!(
            dag.render(&labels, GraphFormat::Mermaid)
                .contains("  a --> b\n")
        );
    }
}
