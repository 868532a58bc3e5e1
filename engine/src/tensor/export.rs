//! Drawing a recorded graph as a computation graph: tensors as boxes with their shapes, ops
//! as circles between them, edges in the forward direction. Written as Mermaid
//! ([`GraphExport::mermaid`]) or Graphviz DOT ([`GraphExport::dot`]).
//!
//! Only what the graph recorded appears: tensors that require grad and the ops between
//! them. Constant inputs (no `requires_grad`) are not part of the graph. The walk is
//! iterative, so deep graphs draw on a small stack.

use super::node::{Node, NodeKind};
use super::Tensor;
use crate::sync::Arc;
use backflow_kernels::Element;
use rustc_hash::FxHashMap;
use std::fmt::Write as _;

/// The graph behind some tensors, ready to be drawn.
///
/// ```
/// use backflow::{GraphExport, Tensor};
/// let a = Tensor::<f32>::scalar(2.0).requires_grad();
/// let b = Tensor::<f32>::ones(&[3]).requires_grad();
/// let y = (&a * &b).sum();
/// let graph = GraphExport::new(&[&y]).label(&a, "a").label(&b, "b").label(&y, "L");
/// let mermaid = graph.mermaid();
/// assert!(mermaid.contains(r#"a["a [ ]"] --> op_t3((mul))"#), "{mermaid}");
/// assert!(mermaid.contains(r#"b["b [3]"] --> op_t3"#), "{mermaid}");
/// assert!(mermaid.contains(r#"op_t3 --> t3["t3 [3]"]"#), "{mermaid}");
/// assert!(graph.dot().starts_with("digraph backward {"));
/// ```
pub struct GraphExport<T: Element> {
    roots: Vec<Tensor<T>>,
    labels: FxHashMap<usize, String>,
}

/// A tensor of the drawing: its name, shape, and the op that produced it (`None` for
/// leaves).
struct Vertex {
    /// Mermaid and DOT identifier: the name when it is a unique plain identifier, else `v<k>`.
    id: String,
    name: String,
    shape: Vec<usize>,
    op: Option<&'static str>,
    /// Positions (in the vertex list) of the op's inputs that the graph recorded.
    inputs: Vec<usize>,
}

fn key<T: Element>(node: &Arc<Node<T>>) -> usize {
    Arc::as_ptr(node) as usize
}

impl<T: Element> GraphExport<T> {
    /// The graph from `roots` back to its leaves. Roots that require no gradient have no
    /// graph and are left out.
    pub fn new(roots: &[&Tensor<T>]) -> Self {
        Self {
            roots: roots.iter().map(|&t| t.clone()).collect(),
            labels: FxHashMap::default(),
        }
    }

    /// Names `tensor` in the drawing (otherwise `t<k>`, numbered in forward order from 1).
    pub fn label(mut self, tensor: &Tensor<T>, name: impl Into<String>) -> Self {
        if let Some(node) = tensor.node() {
            self.labels.insert(key(node), name.into());
        }
        self
    }

    /// The tensors in forward order (every op's inputs before its output), by an iterative
    /// post-order walk from the roots.
    fn vertices(&self) -> Vec<Vertex> {
        let mut index: FxHashMap<usize, usize> = FxHashMap::default();
        let mut shapes: FxHashMap<usize, Vec<usize>> = FxHashMap::default();
        let mut vertices: Vec<Vertex> = Vec::new();
        let mut ids: rustc_hash::FxHashSet<String> = Default::default();
        // (node, whether its inputs were already pushed)
        let mut stack: Vec<(&Arc<Node<T>>, bool)> = Vec::new();
        for root in &self.roots {
            if let Some(node) = root.node() {
                shapes
                    .entry(key(node))
                    .or_insert_with(|| root.shape().to_vec());
                stack.push((node, false));
            }
        }
        stack.reverse();
        while let Some((node, expanded)) = stack.pop() {
            let k = key(node);
            if index.contains_key(&k) {
                continue;
            }
            let edges = match &node.kind {
                NodeKind::Op { inputs, .. } => inputs.as_slice(),
                NodeKind::Leaf { .. } => &[],
            };
            if !expanded {
                stack.push((node, true));
                for e in edges.iter().rev() {
                    shapes
                        .entry(key(&e.node))
                        .or_insert_with(|| e.shape.to_vec());
                    if !index.contains_key(&key(&e.node)) {
                        stack.push((&e.node, false));
                    }
                }
                continue;
            }
            let position = vertices.len();
            index.insert(k, position);
            let name = self
                .labels
                .get(&k)
                .cloned()
                .unwrap_or_else(|| format!("t{}", position + 1));
            let plain = name.starts_with(|c: char| c.is_ascii_alphabetic())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with("op_");
            let id = if plain && ids.insert(name.clone()) {
                name.clone()
            } else {
                format!("v{}", position + 1)
            };
            vertices.push(Vertex {
                id,
                name,
                shape: shapes.remove(&k).unwrap_or_default(),
                op: (!node.is_leaf()).then_some(node.op()),
                inputs: edges.iter().map(|e| index[&key(&e.node)]).collect(),
            });
        }
        vertices
    }

    /// The graph as a Mermaid flowchart, left to right: `w["w [2, 3]"]` boxes for tensors,
    /// `op_t3((matmul))` circles for ops (named after their output), leaves shaded.
    pub fn mermaid(&self) -> String {
        let vertices = self.vertices();
        let mut out = String::from("flowchart LR\n");
        let tensor = |i: usize| {
            let v = &vertices[i];
            format!(
                "{}[\"{} {}\"]",
                v.id,
                mermaid_text(&v.name),
                shape_text(&v.shape)
            )
        };
        // A tensor is drawn with its text the first time it appears, by id afterwards.
        let mut drawn = vec![false; vertices.len()];
        let mut mention = |i: usize| {
            if std::mem::replace(&mut drawn[i], true) {
                vertices[i].id.clone()
            } else {
                tensor(i)
            }
        };
        for (i, v) in vertices.iter().enumerate() {
            let Some(op) = v.op else { continue };
            let mut circle = format!("op_{}(({}))", v.id, mermaid_text(op));
            for &input in &v.inputs {
                let _ = writeln!(out, "    {} --> {circle}", mention(input));
                circle = format!("op_{}", v.id);
            }
            let _ = writeln!(out, "    {circle} --> {}", mention(i));
        }
        for (i, v) in vertices.iter().enumerate() {
            if v.op.is_none() && !drawn[i] {
                let _ = writeln!(out, "    {}", tensor(i));
            }
        }
        let leaves: Vec<&str> = vertices
            .iter()
            .filter(|v| v.op.is_none())
            .map(|v| v.id.as_str())
            .collect();
        if !leaves.is_empty() {
            out.push_str("    classDef leaf fill:#dbeafe,stroke:#1d4ed8\n");
            let _ = writeln!(out, "    class {} leaf", leaves.join(","));
        }
        out
    }

    /// The graph as Graphviz DOT, left to right: boxes for tensors (leaves shaded),
    /// ellipses for ops. Render with `dot -Tsvg`.
    pub fn dot(&self) -> String {
        let vertices = self.vertices();
        let mut out = String::from(
            "digraph backward {\n    rankdir=LR;\n    node [fontname=\"Helvetica\"];\n",
        );
        for v in &vertices {
            let fill = if v.op.is_none() {
                ", style=filled, fillcolor=\"#dbeafe\""
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "    {} [label=\"{}\\n{}\", shape=box{fill}];",
                v.id,
                dot_text(&v.name),
                shape_text(&v.shape)
            );
            if let Some(op) = v.op {
                let _ = writeln!(
                    out,
                    "    op_{} [label=\"{}\", shape=ellipse];",
                    v.id,
                    dot_text(op)
                );
                for &input in &v.inputs {
                    let _ = writeln!(out, "    {} -> op_{};", vertices[input].id, v.id);
                }
                let _ = writeln!(out, "    op_{} -> {};", v.id, v.id);
            }
        }
        out.push_str("}\n");
        out
    }
}

/// `[2, 3]`, or `[ ]` for a scalar.
fn shape_text(shape: &[usize]) -> String {
    if shape.is_empty() {
        "[ ]".to_string()
    } else {
        format!("{shape:?}")
    }
}

/// Text safe inside a quoted Mermaid label.
fn mermaid_text(s: &str) -> String {
    s.replace('"', "#quot;")
}

/// Text safe inside a quoted DOT label.
fn dot_text(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}
