//! The plan: which nodes a backward pass needs, in dense indices, with their in-degrees.
//!
//! An iterative depth-first traversal from the roots gives each node a dense index at first
//! sight and counts its in-degree (the consumer edges pointing at it). Each edge gets a
//! canonical *slot* at its target, its rank among the target's incoming edges in traversal
//! order. Seeds (the gradients given for the roots) take the first slots. Every scheduler
//! sums a node's contributions in the same order of slots (see `canonical_sum`), which is what
//! makes them bitwise identical.

use rustc_hash::FxHashMap;
use std::hash::Hash;

/// One edge of the plan, from a consumer to the node whose gradient it contributes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Edge {
    /// Dense index of the node receiving the contribution.
    pub target: u32,
    /// Canonical rank of this contribution among the target's incoming ones.
    pub slot: u32,
    /// Position of the target in the consumer's own successor list; the backward callback's
    /// outputs are indexed by it.
    pub position: u32,
}

/// The dense, immutable schedule input shared by every scheduler.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// Edges of node `i` are `edges[offsets[i]..offsets[i + 1]]`.
    offsets: Vec<u32>,
    edges: Vec<Edge>,
    /// Number of contributions (seeds and consumer edges) node `i` receives.
    indegree: Vec<u32>,
    /// Nodes that receive a seed, in seed order; seed `j` fills slot `j'` of its node, where
    /// `j'` counts the earlier seeds of the same node.
    seeds: Vec<u32>,
    /// Reverse post-order of the traversal: a topological order of the backward pass.
    order: Vec<u32>,
    /// Per node, its index among the nodes with more than one contribution (the only ones
    /// that need an accumulation buffer and a counter), or `u32::MAX`.
    shared: Vec<u32>,
    /// Number of nodes with more than one contribution.
    shared_count: u32,
    /// Whether the plan is a single chain: one seed, and no node with more than one edge
    /// or more than one contribution.
    chain: bool,
}

impl Plan {
    /// Builds the plan from `roots` (one per seed, repeats allowed).
    ///
    /// `successors(node, out)` appends the nodes that `node`'s backward contributes to, in
    /// the order of its callback's outputs. `keep(node)`, when given, marks the requested
    /// inputs: only nodes with a path to one of them are kept, and edges into dropped nodes
    /// are removed (their outputs are simply not delivered). Returns the plan and the nodes
    /// in dense-index order.
    pub fn build<N, K, F>(
        roots: &[N],
        key: impl Fn(&N) -> K,
        mut successors: F,
        keep: Option<&dyn Fn(&N) -> bool>,
    ) -> (Plan, Vec<N>)
    where
        N: Clone,
        K: Hash + Eq,
        F: FnMut(&N, &mut Vec<N>),
    {
        let mut index: FxHashMap<K, u32> = FxHashMap::default();
        let mut nodes: Vec<N> = Vec::new();
        // Successor lists as dense indices, in callback-output order: node i's list is
        // succ[range[i].0..range[i].1], appended when i is expanded.
        let mut range: Vec<(u32, u32)> = Vec::new();
        let mut succ: Vec<u32> = Vec::new();
        let mut post: Vec<u32> = Vec::new();
        let mut scratch: Vec<N> = Vec::new();

        let mut intern = |n: &N, nodes: &mut Vec<N>| -> (u32, bool) {
            let next = nodes.len() as u32;
            let id = *index.entry(key(n)).or_insert(next);
            let fresh = id == next;
            if fresh {
                nodes.push(n.clone());
            }
            (id, fresh)
        };

        // Iterative DFS; a frame is (node, next edge to visit, end of its edges). A child is
        // pushed unless already expanded: in a DAG it cannot be an ancestor on the stack.
        let mut stack: Vec<(u32, u32, u32)> = Vec::new();
        let mut expanded: Vec<bool> = Vec::new();
        let mut seed_ids = Vec::with_capacity(roots.len());
        for root in roots {
            let (id, fresh) = intern(root, &mut nodes);
            seed_ids.push(id);
            if !fresh {
                continue;
            }
            stack.push((id, u32::MAX, 0));
            while let Some(frame) = stack.last_mut() {
                let node = frame.0 as usize;
                if frame.1 == u32::MAX {
                    scratch.clear();
                    successors(&nodes[node], &mut scratch);
                    let start = succ.len() as u32;
                    for s in scratch.drain(..) {
                        let (sid, _) = intern(&s, &mut nodes);
                        succ.push(sid);
                    }
                    let end = succ.len() as u32;
                    if range.len() <= node {
                        range.resize(node + 1, (0, 0));
                        expanded.resize(node + 1, false);
                    }
                    range[node] = (start, end);
                    expanded[node] = true;
                    frame.1 = start;
                    frame.2 = end;
                }
                if frame.1 < frame.2 {
                    let child = succ[frame.1 as usize];
                    frame.1 += 1;
                    if !expanded.get(child as usize).copied().unwrap_or(false) {
                        stack.push((child, u32::MAX, 0));
                    }
                } else {
                    post.push(frame.0);
                    stack.pop();
                }
            }
        }
        let n = nodes.len();
        let children = |i: usize| &succ[range[i].0 as usize..range[i].1 as usize];

        // Reachability of a requested input: post-order visits successors first. Without
        // requested inputs every node is kept and keeps its index.
        let kept: Option<Vec<bool>> = keep.map(|keep| {
            let mut reach = vec![false; n];
            for &i in &post {
                let i = i as usize;
                reach[i] = keep(&nodes[i]) || children(i).iter().any(|&c| reach[c as usize]);
            }
            reach
        });
        let is_kept = |i: u32| kept.as_ref().is_none_or(|k| k[i as usize]);

        // Renumber the kept nodes densely, preserving first-visit order.
        let (remap, kept_nodes, by_new) = match &kept {
            None => (None, nodes, None),
            Some(kept) => {
                let mut remap = vec![u32::MAX; n];
                let mut by_new = Vec::new();
                let mut kept_nodes = Vec::new();
                for (i, node) in nodes.into_iter().enumerate() {
                    if kept[i] {
                        remap[i] = kept_nodes.len() as u32;
                        by_new.push(i as u32);
                        kept_nodes.push(node);
                    }
                }
                (Some(remap), kept_nodes, Some(by_new))
            }
        };
        let new_id = |old: u32| remap.as_ref().map_or(old, |r| r[old as usize]);
        let old_id = |new: u32| by_new.as_ref().map_or(new, |b| b[new as usize]);
        let m = kept_nodes.len();
        let mut indegree = vec![0u32; m];
        let seeds: Vec<u32> = seed_ids
            .iter()
            .filter(|&&id| is_kept(id))
            .map(|&id| new_id(id))
            .collect();
        for &s in &seeds {
            indegree[s as usize] += 1;
        }
        let mut offsets = Vec::with_capacity(m + 1);
        let mut edges = Vec::with_capacity(succ.len());
        for new in 0..m as u32 {
            offsets.push(edges.len() as u32);
            for (position, &child) in children(old_id(new) as usize).iter().enumerate() {
                if !is_kept(child) {
                    continue;
                }
                let target = new_id(child);
                let slot = indegree[target as usize];
                indegree[target as usize] += 1;
                edges.push(Edge {
                    target,
                    slot,
                    position: position as u32,
                });
            }
        }
        offsets.push(edges.len() as u32);
        let order = post
            .iter()
            .rev()
            .filter(|&&i| is_kept(i))
            .map(|&i| new_id(i))
            .collect();
        let mut shared_count = 0;
        let shared = indegree
            .iter()
            .map(|&d| {
                if d > 1 {
                    shared_count += 1;
                    shared_count - 1
                } else {
                    u32::MAX
                }
            })
            .collect();
        let chain =
            seeds.len() <= 1 && shared_count == 0 && offsets.windows(2).all(|w| w[1] - w[0] <= 1);
        let plan = Plan {
            chain,
            offsets,
            edges,
            indegree,
            seeds,
            order,
            shared,
            shared_count,
        };
        (plan, kept_nodes)
    }

    /// Number of nodes in the plan.
    pub fn len(&self) -> usize {
        self.indegree.len()
    }

    /// Whether the plan has no node (every root was pruned away).
    pub fn is_empty(&self) -> bool {
        self.indegree.is_empty()
    }

    /// The edges leaving node `i`, in its successor order.
    pub fn edges(&self, i: u32) -> &[Edge] {
        let i = i as usize;
        &self.edges[self.offsets[i] as usize..self.offsets[i + 1] as usize]
    }

    /// Number of contributions node `i` waits for.
    pub fn indegree(&self, i: u32) -> u32 {
        self.indegree[i as usize]
    }

    /// Index of node `i` among the nodes with more than one contribution (dense, for their
    /// accumulation buffers and counters); `None` for a node with a single contribution.
    pub fn shared_index(&self, i: u32) -> Option<u32> {
        let s = self.shared[i as usize];
        (s != u32::MAX).then_some(s)
    }

    /// The in-degrees of the nodes with more than one contribution, by [`shared_index`].
    ///
    /// [`shared_index`]: Plan::shared_index
    pub fn shared_indegrees(&self) -> Vec<u32> {
        self.indegree.iter().copied().filter(|&d| d > 1).collect()
    }

    /// Whether the plan is a single chain (one seed; every node has at most one edge and
    /// one contribution): its nodes can only run one after another.
    pub fn is_chain(&self) -> bool {
        self.chain
    }

    /// Number of nodes with more than one contribution.
    pub fn shared_count(&self) -> usize {
        self.shared_count as usize
    }

    /// The nodes that receive seeds, one entry per seed, in seed order.
    pub fn seeds(&self) -> &[u32] {
        &self.seeds
    }

    /// A topological order of the backward pass (reverse post-order of the traversal).
    pub fn order(&self) -> &[u32] {
        &self.order
    }
}
