//! `backflow graph`: prints the computation graph of the seed example (W5), of the T1
//! model, or of one block of another model, as Mermaid or Graphviz DOT, tensors as boxes
//! with their shapes and ops between.

use super::CliResult;
use backflow::nn::{cross_entropy, Module};
use backflow::{GraphExport, Tensor};
use backflow_app::models::{block_graph, ModelName};
use backflow_app::train::wide_model;
use clap::{Args, ValueEnum};

/// Which graph to draw.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Model {
    /// The seed graph W5: t3 = t1 + t2, t4 = t2·t5, t6 = t3·t4, t7 = sin(t6).
    Seed,
    /// The T1 digits model: parallel branches of Linear→tanh→Linear→tanh, concatenated, a
    /// Linear head and cross-entropy, on one batch.
    T1,
    /// One Inception block: four convolution branches, concatenated (batch of 2).
    Inception,
    /// One transformer encoder layer, each attention head a branch (batch of 2).
    Attention,
    /// The mixture-of-experts layer, as routed for one batch of 2.
    Moe,
}

/// The output format.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Format {
    /// A Mermaid flowchart (renders in GitHub Markdown in a ```mermaid block).
    Mermaid,
    /// Graphviz DOT (render with `dot -Tsvg`).
    Dot,
}

/// Flags of `backflow graph`.
#[derive(Args, Debug)]
#[command(allow_negative_numbers = true)]
pub struct GraphArgs {
    /// The graph to print.
    #[arg(long, value_enum, default_value = "seed")]
    model: Model,
    /// The output format.
    #[arg(long, value_enum, default_value = "mermaid")]
    format: Format,
    /// Branches of the T1 model (fewer make a smaller picture; 1 to 256).
    #[arg(long, default_value_t = 16,
          value_parser = super::args::count(1, super::train::MAX_BRANCHES))]
    branches: usize,
}

/// The seed graph W5, its tensors named as in the seed document.
pub fn seed_graph() -> GraphExport<f32> {
    let seed = backflow_app::workloads::seed_graph();
    seed.named()
        .fold(GraphExport::new(&[seed.loss()]), |g, (t, name)| {
            g.label(t, name)
        })
}

/// The T1 model's loss on one batch of 64 rows of 64 features.
fn t1_graph(branches: usize) -> backflow::Result<GraphExport<f32>> {
    let model = wide_model(64, branches, 64, 10, 0);
    let x = Tensor::randn(&[64, 64], 1);
    let labels: Vec<usize> = (0..64).map(|i| i % 10).collect();
    let loss = cross_entropy(&model.forward(&x)?, &labels)?;
    let mut graph = GraphExport::new(&[&loss]).label(&loss, "loss");
    for (name, param) in model.named_parameters() {
        graph = graph.label(&param.get(), name);
    }
    Ok(graph)
}

/// Prints the chosen graph in the chosen format.
pub fn run(args: GraphArgs) -> CliResult {
    let graph = match args.model {
        Model::Seed => seed_graph(),
        Model::T1 => t1_graph(args.branches)?,
        Model::Inception => block_graph(ModelName::Inception)?,
        Model::Attention => block_graph(ModelName::Attention)?,
        Model::Moe => block_graph(ModelName::Moe)?,
    };
    let text = match args.format {
        Format::Mermaid => graph.mermaid(),
        Format::Dot => graph.dot(),
    };
    print!("{text}");
    Ok(())
}
