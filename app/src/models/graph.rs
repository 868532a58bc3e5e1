//! One block of each model as a graph to draw (`backflow graph --model NAME`): an
//! Inception block, an encoder layer, the mixture-of-experts layer, each on a batch of 2
//! and summed into one output, its parameters labelled by name. The block's input is a
//! leaf that requires grad, so the drawing shows every branch leaving it.

use super::attention::{AttentionConfig, AttentionNet};
use super::inception::{Inception, InceptionConfig};
use super::moe::{MoeConfig, MoeNet};
use super::ModelName;
use backflow::nn::Module;
use backflow::{GraphExport, Result, Tensor};

/// The graph of one block of `name` (T1 has no block: use `crate::train::wide_model`).
pub fn block_graph(name: ModelName) -> Result<GraphExport<f32>> {
    let x = Tensor::randn(&[2, 64], 1).requires_grad();
    let (input, out, params) = match name {
        ModelName::Inception => {
            let model = Inception::new(&InceptionConfig::default(), 0);
            let block = model.first_block();
            let image = Tensor::randn(&[2, 1, 8, 8], 1).requires_grad();
            let out = block.forward(&image)?;
            (image, out, block.named_parameters())
        }
        ModelName::Attention => {
            let model = AttentionNet::new(&AttentionConfig::default(), 0);
            let layer = model.first_layer();
            let tokens = model.embed(&x)?.detach().requires_grad();
            let out = layer.forward(&tokens)?;
            (tokens, out, layer.named_parameters())
        }
        ModelName::Moe | ModelName::T1 => {
            let model = MoeNet::new(&MoeConfig::default(), 0);
            let out = model.forward(&x)?;
            (x, out, model.named_parameters())
        }
    };
    let out = out.sum();
    let mut graph = GraphExport::new(&[&out])
        .label(&out, "out")
        .label(&input, "input");
    for (name, param) in params {
        graph = graph.label(&param.get(), name);
    }
    Ok(graph)
}
