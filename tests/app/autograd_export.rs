//! Graph export: the seed graph as Mermaid and Graphviz DOT, tensors as boxes with their
//! shapes and ops between them, and a deep graph drawn without recursion.

use backflow::{GraphExport, Tensor};

/// The seed graph W5 with its tensors named t1 … t7.
fn seed() -> GraphExport<f32> {
    let seed = backflow_app::workloads::seed_graph();
    seed.named()
        .fold(GraphExport::new(&[seed.loss()]), |g, (t, name)| {
            g.label(t, name)
        })
}

#[test]
fn seed_graph_as_mermaid() {
    let want = r#"flowchart LR
    t1["t1 [ ]"] --> op_t3((add))
    t2["t2 [ ]"] --> op_t3
    op_t3 --> t3["t3 [ ]"]
    t2 --> op_t4((mul))
    t5["t5 [ ]"] --> op_t4
    op_t4 --> t4["t4 [ ]"]
    t3 --> op_t6((mul))
    t4 --> op_t6
    op_t6 --> t6["t6 [ ]"]
    t6 --> op_t7((sin))
    op_t7 --> t7["t7 [ ]"]
    classDef leaf fill:#dbeafe,stroke:#1d4ed8
    class t1,t2,t5 leaf
"#;
    assert_eq!(seed().mermaid(), want);
}

#[test]
fn seed_graph_as_dot() {
    let dot = seed().dot();
    assert!(
        dot.starts_with("digraph backward {\n    rankdir=LR;\n"),
        "{dot}"
    );
    assert!(dot.trim_end().ends_with('}'));
    for line in [
        r##"t1 [label="t1\n[ ]", shape=box, style=filled, fillcolor="#dbeafe"];"##,
        r#"t3 [label="t3\n[ ]", shape=box];"#,
        r#"op_t3 [label="add", shape=ellipse];"#,
        "t1 -> op_t3;",
        "t2 -> op_t3;",
        "op_t3 -> t3;",
        "t2 -> op_t4;",
        "t5 -> op_t4;",
        r#"op_t7 [label="sin", shape=ellipse];"#,
        "op_t7 -> t7;",
    ] {
        assert!(dot.contains(line), "missing {line:?} in\n{dot}");
    }
    // 7 edges from tensors into ops, 4 from ops to their outputs.
    assert_eq!(dot.matches("->").count(), 7 + 4);
}

#[test]
fn shapes_constants_and_default_names() {
    // x is a constant (no grad): it is not part of the graph. w and b are leaves.
    let x = Tensor::<f32>::randn(&[4, 3], 0);
    let w = Tensor::randn(&[3, 2], 1).requires_grad();
    let b = Tensor::randn(&[2], 2).requires_grad();
    let y = (&x.matmul(&w).unwrap() + &b).tanh().sum();
    let mermaid = GraphExport::new(&[&y])
        .label(&w, "w")
        .label(&b, "b.bias")
        .mermaid();
    assert!(
        mermaid.contains(r#"w["w [3, 2]"] --> op_t2((matmul))"#),
        "{mermaid}"
    );
    assert!(
        mermaid.contains(r#"op_t2 --> t2["t2 [4, 2]"]"#),
        "{mermaid}"
    );
    // A name that is not a plain identifier gets a generated id.
    assert!(
        mermaid.contains(r#"v3["b.bias [2]"] --> op_t4"#),
        "{mermaid}"
    );
    assert!(mermaid.contains(r#"op_t6 --> t6["t6 [ ]"]"#), "{mermaid}");
    assert!(
        !mermaid.contains("[4, 3]"),
        "the constant x is not drawn: {mermaid}"
    );
}

#[test]
fn a_deep_graph_draws_without_recursion() {
    let x = Tensor::<f32>::ones(&[1]).requires_grad();
    let mut y = x.clone();
    for _ in 0..200_000 {
        y = &y + 0.5;
    }
    let mermaid = GraphExport::new(&[&y]).mermaid();
    assert_eq!(mermaid.matches("((add_scalar))").count(), 200_000);
    // The graph drops without recursion too (a node-drop queue).
    drop(y);
}

#[test]
fn a_root_without_a_graph_draws_nothing() {
    let c = Tensor::<f32>::scalar(1.0);
    assert_eq!(GraphExport::new(&[&c]).mermaid(), "flowchart LR\n");
}
