//! The layers that wide models are built from: multi-head attention, the routed mixture of
//! experts, layer norm, batch norm, embeddings, GELU and 1-D convolution. Each against a
//! direct computation, and its gradient against finite differences in f64 under every
//! scheduler.

use backflow::nn::{
    from_safetensors, to_safetensors, AvgPool2d, BatchNorm2d, Branches, Conv1d, Conv2d, Dropout,
    Embedding, Gelu, LayerNorm, Linear, MaxPool2d, Merge, MoE, Module, MultiHeadAttention, Relu,
    Sequential, Tanh,
};
use backflow::{gradcheck, numeric_grads, BackwardOptions, GradcheckTolerance, Scheduler, Tensor};

fn every_scheduler() -> impl Iterator<Item = BackwardOptions> {
    Scheduler::ALL
        .into_iter()
        .map(|s| BackwardOptions::new().scheduler(s).threads(2))
}

/// A weighted sum, so the check covers a whole vector-Jacobian product.
fn weighted(y: &Tensor<f64>) -> backflow::Result<Tensor<f64>> {
    let w: Vec<f64> = (0..y.numel()).map(|i| ((i * 7) % 5) as f64 - 2.0).collect();
    Ok(y.try_mul(&Tensor::from_vec(w, y.shape())?)?.sum())
}

/// Multi-head attention written head by head from its parameters: each head's
/// `softmax(q·kᵀ/√d_head)·v` from its own projections, the heads concatenated along the
/// features, then the output projection. `[2, 3, d_model]` in, `[6, d_model]` out.
fn attention_head_by_head(mha: &MultiHeadAttention<f64>, x: &Tensor<f64>) -> Tensor<f64> {
    let (heads, d_model) = (mha.heads(), x.shape()[2]);
    let d_head = d_model / heads;
    let params = mha.named_parameters();
    let p = |name: String| {
        params
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("{name}"))
            .1
            .get()
    };
    let rows = x.reshape(&[6, d_model]).unwrap();
    let proj = |h: usize, which: &str| {
        let (w, b) = (
            p(format!("heads.{h}.{which}.weight")),
            p(format!("heads.{h}.{which}.bias")),
        );
        backflow::nn::linear(&rows, &w, Some(&b))
            .unwrap()
            .reshape(&[2, 3, d_head])
            .unwrap()
    };
    let outs: Vec<Tensor<f64>> = (0..heads)
        .map(|h| {
            let (q, k, v) = (proj(h, "query"), proj(h, "key"), proj(h, "value"));
            let scale = 1.0 / (d_head as f64).sqrt();
            let att = (q.matmul(&k.transpose(1, 2).unwrap()).unwrap() * scale).softmax();
            att.matmul(&v).unwrap().reshape(&[6, d_head]).unwrap()
        })
        .collect();
    let joined = Tensor::concat(&outs.iter().collect::<Vec<_>>(), 1).unwrap();
    backflow::nn::linear(
        &joined,
        &p("out.weight".into()),
        Some(&p("out.bias".into())),
    )
    .unwrap()
}

#[test]
fn attention_is_the_textbook_formula_head_by_head() {
    // The heads are computed together (stacked weights, one batched product); values and
    // every parameter's gradient must be those of the formula written head by head.
    for (d_model, heads) in [(4, 1), (6, 3), (8, 4)] {
        let mha = MultiHeadAttention::<f64>::new_typed(d_model, heads, 3);
        let x = Tensor::<f64>::randn(&[2, 3, d_model], 5);
        let got = mha.forward(&x).unwrap();
        let want = attention_head_by_head(&mha, &x);
        assert_eq!(got.shape(), &[2, 3, d_model]);
        for (a, b) in got.data().iter().zip(want.data()) {
            assert!((a - b).abs() < 1e-12, "{heads} heads: {a} vs {b}");
        }
        let grads = |y: Tensor<f64>| {
            mha.named_parameters()
                .iter()
                .for_each(|(_, p)| p.zero_grad());
            weighted(&y).unwrap().backward().unwrap();
            mha.named_parameters()
                .into_iter()
                .map(|(name, p)| (name, p.grad().unwrap().to_vec()))
                .collect::<Vec<_>>()
        };
        let fused = grads(got);
        let by_head = grads(attention_head_by_head(&mha, &x));
        for ((name, a), (_, b)) in fused.iter().zip(&by_head) {
            for (u, v) in a.iter().zip(b) {
                assert!((u - v).abs() < 1e-12, "{heads} heads, {name}: {u} vs {v}");
            }
        }
    }
}

#[test]
fn attention_gradient_matches_finite_differences() {
    let mha = MultiHeadAttention::<f64>::new_typed(6, 3, 1);
    let x = Tensor::<f64>::randn(&[2, 4, 6], 2);
    for opts in every_scheduler() {
        gradcheck(
            |v| weighted(&mha.forward(&v[0])?),
            &[&x],
            &opts,
            GradcheckTolerance::default(),
        )
        .unwrap();
    }
    let err = mha
        .forward(&Tensor::zeros(&[2, 6]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("[2, 6]"), "{err}");
}

#[test]
fn every_attention_head_gets_its_own_gradient() {
    let mha = MultiHeadAttention::new(8, 4, 0);
    let y = mha.forward(&Tensor::randn(&[2, 3, 8], 1)).unwrap();
    y.powf(2.0).sum().backward().unwrap();
    let grads: Vec<Vec<f32>> = (0..4)
        .map(|h| {
            let name = format!("heads.{h}.query.weight");
            let (_, p) = mha
                .named_parameters()
                .into_iter()
                .find(|(n, _)| *n == name)
                .unwrap();
            p.grad().unwrap().to_vec()
        })
        .collect();
    for h in 1..4 {
        assert_ne!(grads[0], grads[h], "heads 0 and {h} are distinct branches");
    }
}

fn moe(experts: usize, top_k: usize) -> MoE<f64> {
    let experts = (0..experts as u64).map(|e| {
        Sequential::<f64>::default()
            .push(Linear::<f64>::new_typed(4, 5, 10 + e))
            .push(Tanh)
            .push(Linear::<f64>::new_typed(5, 3, 20 + e))
    });
    MoE::new(Linear::<f64>::new_typed(4, 4, 0), top_k, experts)
}

#[test]
fn moe_output_is_the_gated_sum_of_each_rows_best_experts() {
    let layer = moe(4, 2);
    let x = Tensor::<f64>::randn(&[6, 4], 3);
    let routed = layer.route(&x).unwrap();
    let params = layer.named_parameters();
    let gate_w = &params[0].1.get();
    let gate_b = &params[1].1.get();
    let probs = backflow::nn::linear(&x, gate_w, Some(gate_b))
        .unwrap()
        .softmax();
    let expert_out = |e: usize, row: &Tensor<f64>| {
        let l1 = backflow::nn::linear(
            row,
            &params[2 + 4 * e].1.get(),
            Some(&params[3 + 4 * e].1.get()),
        )
        .unwrap()
        .tanh();
        backflow::nn::linear(
            &l1,
            &params[4 + 4 * e].1.get(),
            Some(&params[5 + 4 * e].1.get()),
        )
        .unwrap()
    };
    let mut load = [0; 4];
    for r in 0..6 {
        let p = &probs.data()[r * 4..r * 4 + 4];
        let mut order = [0, 1, 2, 3];
        order.sort_by(|&a, &b| p[b].partial_cmp(&p[a]).unwrap());
        let (a, b) = (order[0], order[1]);
        load[a] += 1;
        load[b] += 1;
        let row = x.narrow(0, r, 1).unwrap();
        let (ya, yb) = (expert_out(a, &row), expert_out(b, &row));
        for j in 0..3 {
            let want = (p[a] * ya.data()[j] + p[b] * yb.data()[j]) / (p[a] + p[b]);
            let got = routed.output.data()[r * 3 + j];
            assert!((got - want).abs() < 1e-12, "row {r}: {got} vs {want}");
        }
    }
    assert_eq!(routed.load, load);
}

#[test]
fn moe_on_an_empty_batch_is_an_error_naming_moe_and_the_empty_batch() {
    let layer = moe(4, 2);
    let empty = Tensor::<f64>::zeros(&[0, 4]);
    for e in [
        layer.forward(&empty).unwrap_err(),
        layer.route(&empty).map(|r| r.output).unwrap_err(),
    ] {
        let text = e.to_string();
        assert!(
            text.starts_with("MoE:") && text.contains("empty") && text.contains("[0, 4]"),
            "{text}"
        );
    }
}

#[test]
fn moe_balance_loss_is_one_for_a_uniform_router_and_more_when_skewed() {
    let layer = moe(4, 2);
    let x = Tensor::<f64>::randn(&[8, 4], 1);
    let params = layer.named_parameters();
    params[0].1.set_data(vec![0.0; 16]).unwrap();
    params[1].1.set_data(vec![0.0; 4]).unwrap();
    // Uniform probabilities: ties go to experts 0 and 1, and E·Σ f·P = 4·(½·¼ + ½·¼) = 1.
    let routed = layer.route(&x).unwrap();
    assert_eq!(routed.load, vec![8, 8, 0, 0]);
    assert!((routed.aux_loss.item() - 1.0).abs() < 1e-12);
    // A bias towards expert 3 concentrates both f and P on it.
    params[1].1.set_data(vec![0.0, 0.0, 0.0, 3.0]).unwrap();
    let routed = layer.route(&x).unwrap();
    assert!(routed.aux_loss.item() > 1.2, "{}", routed.aux_loss.item());
}

#[test]
fn moe_gradient_matches_finite_differences_and_idle_experts_get_none() {
    let layer = moe(4, 2);
    let x = Tensor::<f64>::randn(&[5, 4], 7);
    for opts in every_scheduler() {
        gradcheck(
            |v| {
                let r = layer.route(&v[0])?;
                weighted(&r.output)?.try_add(&r.aux_loss)
            },
            &[&x],
            &opts,
            GradcheckTolerance::default(),
        )
        .unwrap();
    }
    // Route every row to experts 0 and 1: experts 2 and 3 are not in the graph.
    let params = layer.named_parameters();
    params[0].1.set_data(vec![0.0; 16]).unwrap();
    params[1].1.set_data(vec![1.0, 1.0, 0.0, 0.0]).unwrap();
    layer.zero_grad(); // the gradchecks above accumulated into every parameter
    let r = layer.route(&x).unwrap();
    (&r.output.sum() + &r.aux_loss).backward().unwrap();
    let grad_of = |name: &str| {
        params
            .iter()
            .find(|(n, _)| n == name)
            .unwrap()
            .1
            .grad()
            .is_some()
    };
    assert!(grad_of("experts.0.0.weight") && grad_of("experts.1.0.weight"));
    assert!(!grad_of("experts.2.0.weight") && !grad_of("experts.3.0.weight"));
    assert!(grad_of("gate.weight"));
}

#[test]
fn layer_norm_matches_the_formula_and_finite_differences() {
    let norm = LayerNorm::<f64>::new_typed(5);
    norm.weight
        .set_data(vec![1.0, 2.0, 0.5, -1.0, 3.0])
        .unwrap();
    norm.bias.set_data(vec![0.1, 0.2, 0.3, 0.4, 0.5]).unwrap();
    let x = Tensor::<f64>::randn(&[2, 3, 5], 4);
    let y = norm.forward(&x).unwrap();
    for (row, out) in x.data().chunks(5).zip(y.data().chunks(5)) {
        let mean = row.iter().sum::<f64>() / 5.0;
        let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 5.0;
        for (i, (&v, &o)) in row.iter().zip(out).enumerate() {
            let w = norm.weight.get().data()[i];
            let b = norm.bias.get().data()[i];
            let want = (v - mean) / (var + 1e-5).sqrt() * w + b;
            assert!((o - want).abs() < 1e-12, "{o} vs {want}");
        }
    }
    for opts in every_scheduler() {
        gradcheck(
            |v| weighted(&norm.forward(&v[0])?),
            &[&x],
            &opts,
            GradcheckTolerance::default(),
        )
        .unwrap();
    }
    assert!(norm.forward(&Tensor::zeros(&[2, 4])).is_err());
}

#[test]
fn gelu_is_exact_by_default_and_tanh_on_request_and_differentiates() {
    let x = Tensor::<f64>::from_vec(vec![-3.0, -1.0, -0.1, 0.0, 0.5, 2.0], &[6]).unwrap();
    assert_eq!(Gelu::default(), Gelu::Exact);
    let exact = Gelu::Exact.forward(&x).unwrap();
    assert_eq!(exact.to_vec(), x.gelu().to_vec());
    let y = Gelu::Tanh.forward(&x).unwrap();
    for (&v, &g) in x.data().iter().zip(y.data()) {
        let want = 0.5
            * v
            * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (v + 0.044715 * v.powi(3))).tanh());
        assert!((g - want).abs() < 1e-14, "gelu({v}) = {g}, want {want}");
    }
    for opts in every_scheduler() {
        for gelu in [Gelu::Exact, Gelu::Tanh] {
            gradcheck(
                |v| weighted(&gelu.forward(&v[0])?),
                &[&x],
                &opts,
                GradcheckTolerance::default(),
            )
            .unwrap();
        }
    }
}

#[test]
fn embedding_rejects_indices_that_are_not_whole_numbers_or_past_the_table() {
    let table = Embedding::new(4, 2, 0);
    let bad = Tensor::from_vec(vec![0.5], &[1]).unwrap();
    assert!(table.forward(&bad).unwrap_err().to_string().contains("0.5"));
    assert!(table.lookup(&[4]).is_err());
    assert_eq!(table.lookup(&[]).unwrap().shape(), &[0, 2]);
}

#[test]
fn conv_branches_concatenate_along_the_channels_and_differentiate() {
    // A small Inception-shaped block in f64: 1×1, 3×3 and pool→1×1 branches.
    let block = Branches::<f64>::new_typed(Merge::ConcatAxis(1))
        .push(Conv2d::<f64>::new_typed(2, 3, 1, 0))
        .push(
            Sequential::<f64>::default()
                .push(Conv2d::<f64>::new_typed(2, 4, 3, 1).padding(1))
                .push(Relu),
        )
        .push(
            Sequential::<f64>::default()
                .push(MaxPool2d::new(3, 1, 1))
                .push(Conv2d::<f64>::new_typed(2, 2, 1, 2)),
        );
    let x = Tensor::<f64>::randn(&[2, 2, 5, 5], 3);
    let y = block.forward(&x).unwrap();
    assert_eq!(y.shape(), &[2, 9, 5, 5]);
    // Channels 0..3 are the 1×1 branch alone.
    let first = block.named_parameters();
    let direct = x
        .conv2d(&first[0].1.get(), Some(&first[1].1.get()), 1, 0, 1)
        .unwrap();
    assert_eq!(y.narrow(1, 0, 3).unwrap().to_vec(), direct.to_vec());
    for opts in every_scheduler() {
        gradcheck(
            |v| weighted(&AvgPool2d::new(2, 1, 0).forward(&block.forward(&v[0])?)?),
            &[&x],
            &opts,
            GradcheckTolerance::default(),
        )
        .unwrap();
    }
}

#[test]
fn conv_weights_follow_pytorchs_default_bound() {
    // fan_in = (4 / 2) · 3 · 3 = 18, so every weight and bias lies in ±1/√18.
    let conv = Conv2d::grouped(4, 6, 3, 2, 9);
    assert_eq!(conv.weight.shape(), vec![6, 2, 3, 3]);
    let bound = 1.0 / 18f32.sqrt();
    let w = conv.weight.get().to_vec();
    assert!(w.iter().all(|v| v.abs() <= bound));
    assert!(
        w.iter().any(|v| v.abs() > 0.8 * bound),
        "spread over the range"
    );
    let b = conv.bias.as_ref().unwrap().get().to_vec();
    assert!(b.iter().all(|v| v.abs() <= bound));
}

/// Checks the gradient of `weighted(module(x))` with respect to each of the module's
/// parameters against finite differences (the probes set the parameters' values).
fn parameter_grads_match_finite_differences(module: &dyn Module<f64>, x: &Tensor<f64>) {
    let params = module.parameters();
    let values: Vec<Tensor<f64>> = params.iter().map(|p| p.get().detach()).collect();
    for opts in every_scheduler() {
        module.zero_grad();
        weighted(&module.forward(x).unwrap())
            .unwrap()
            .backward_with(&opts)
            .unwrap();
        let analytic: Vec<Vec<f64>> = params.iter().map(|p| p.grad().unwrap().to_vec()).collect();
        let refs: Vec<&Tensor<f64>> = values.iter().collect();
        let numeric = numeric_grads(
            |v| {
                for (p, t) in params.iter().zip(v) {
                    p.set(t.clone())?;
                }
                weighted(&module.forward(x)?)
            },
            &refs,
            1e-6,
        )
        .unwrap();
        for (p, t) in params.iter().zip(&values) {
            p.set(t.clone()).unwrap();
        }
        for (a, n) in analytic.iter().flatten().zip(numeric.iter().flatten()) {
            assert!((a - n).abs() <= 1e-5 + 1e-4 * n.abs(), "{a} vs {n}");
        }
    }
}

/// Batch norm by hand: per channel of `x` (`[n, c, h, w]`), `(x − mean) / √(var + ε)`
/// with the given mean and variance, times `w`, plus `b`.
fn batch_norm_by_hand(x: &Tensor<f64>, stats: &[(f64, f64)], w: &[f64], b: &[f64]) -> Vec<f64> {
    let [_, c, h, wd]: [usize; 4] = x.shape().try_into().unwrap();
    x.data()
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let ch = i / (h * wd) % c;
            (v - stats[ch].0) / (stats[ch].1 + 1e-5).sqrt() * w[ch] + b[ch]
        })
        .collect()
}

/// Per channel of `x`: the mean and the biased variance over batch, height and width.
fn channel_stats(x: &Tensor<f64>) -> Vec<(f64, f64)> {
    let [_, c, h, wd]: [usize; 4] = x.shape().try_into().unwrap();
    (0..c)
        .map(|ch| {
            let vals: Vec<f64> = x
                .data()
                .iter()
                .enumerate()
                .filter(|(i, _)| i / (h * wd) % c == ch)
                .map(|(_, &v)| v)
                .collect();
            let n = vals.len() as f64;
            let mean = vals.iter().sum::<f64>() / n;
            (
                mean,
                vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n,
            )
        })
        .collect()
}

#[test]
fn batch_norm_trains_on_batch_statistics_and_evaluates_on_running_ones() {
    let bn = BatchNorm2d::<f64>::new_typed(3);
    let (w, b) = ([1.5, -0.5, 2.0], [0.1, 0.2, -0.3]);
    bn.weight.set_data(w.to_vec()).unwrap();
    bn.bias.set_data(b.to_vec()).unwrap();
    let x1 = Tensor::<f64>::randn(&[2, 3, 2, 3], 5).affine(2.0, 1.0);
    let x2 = Tensor::<f64>::randn(&[4, 3, 2, 3], 6).affine(0.5, -1.0);
    // Training: the batch's own statistics, and the running ones move by momentum 0.1
    // with the unbiased variance (12 values per channel in x1, 24 in x2).
    let (mut mean, mut var) = (vec![0.0; 3], vec![1.0; 3]);
    for (x, n) in [(&x1, 12.0), (&x2, 24.0)] {
        let stats = channel_stats(x);
        let y = bn.forward(x).unwrap();
        let want = batch_norm_by_hand(x, &stats, &w, &b);
        for (a, b) in y.data().iter().zip(&want) {
            assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        }
        for ((m, v), (batch_mean, batch_var)) in mean.iter_mut().zip(&mut var).zip(stats) {
            *m = 0.9 * *m + 0.1 * batch_mean;
            *v = 0.9 * *v + 0.1 * batch_var * n / (n - 1.0);
        }
    }
    for (got, want) in [(bn.running_mean.get(), &mean), (bn.running_var.get(), &var)] {
        for (a, b) in got.data().iter().zip(want.iter()) {
            assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        }
    }
    // Evaluation, reached through a container: the running statistics, left unchanged.
    let model = Sequential::<f64>::default().push(bn);
    model.eval();
    let y = model.forward(&x1).unwrap();
    let stats: Vec<(f64, f64)> = mean.iter().copied().zip(var.iter().copied()).collect();
    for (a, b) in y
        .data()
        .iter()
        .zip(&batch_norm_by_hand(&x1, &stats, &w, &b))
    {
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }
    let buffers = model.named_buffers();
    assert_eq!(buffers[0].0, "0.running_mean");
    for (a, b) in buffers[0].1.get().data().iter().zip(&mean) {
        assert!(
            (a - b).abs() < 1e-12,
            "eval moved the running mean: {a} vs {b}"
        );
    }
    // A batch of one value per channel is fine in evaluation, an error in training.
    let one = Tensor::<f64>::ones(&[1, 3, 1, 1]);
    assert!(model.forward(&one).is_ok());
    model.train();
    let e = model.forward(&one).unwrap_err().to_string();
    assert!(
        e.contains("BatchNorm2d") && e.contains("[1, 3, 1, 1]"),
        "{e}"
    );
    let e = model
        .forward(&Tensor::ones(&[2, 4, 2, 2]))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("BatchNorm2d") && e.contains("[2, 4, 2, 2]"),
        "{e}"
    );
    // The running statistics are saved with the weights, and not trained.
    assert_eq!(model.parameters().len(), 2);
    let bytes = to_safetensors(&model).unwrap();
    let other = Sequential::<f64>::default().push(BatchNorm2d::<f64>::new_typed(3));
    from_safetensors(&other, &bytes).unwrap();
    assert_eq!(
        other.named_buffers()[1].1.get().to_vec(),
        model.named_buffers()[1].1.get().to_vec()
    );
}

#[test]
fn batch_norm_gradient_matches_finite_differences_in_both_modes() {
    let bn = BatchNorm2d::<f64>::new_typed(2);
    bn.weight.set_data(vec![1.5, -0.5]).unwrap();
    bn.bias.set_data(vec![0.1, 0.2]).unwrap();
    let x = Tensor::<f64>::randn(&[3, 2, 2, 2], 8);
    for training in [true, false] {
        bn.set_training(training);
        for opts in every_scheduler() {
            gradcheck(
                |v| weighted(&bn.forward(&v[0])?),
                &[&x],
                &opts,
                GradcheckTolerance::default(),
            )
            .unwrap();
        }
        parameter_grads_match_finite_differences(&bn, &x);
    }
    // The buffers never get a gradient.
    assert!(bn.running_mean.grad().is_none() && bn.running_var.grad().is_none());
}

#[test]
fn train_and_eval_reach_dropout_inside_containers() {
    let model = Sequential::new().push(Branches::new(Merge::Sum).push(Dropout::new(0.5, 3)));
    let x = Tensor::ones(&[64]);
    model.eval();
    assert_eq!(model.forward(&x).unwrap().to_vec(), vec![1.0; 64]);
    model.train();
    assert!(model.forward(&x).unwrap().to_vec().contains(&0.0));
}

#[test]
fn conv1d_is_the_direct_sum_and_differentiates() {
    // Grouped, strided and padded: 4 → 6 channels in 2 groups, kernel 3, stride 2, padding 1.
    let conv = Conv1d::<f64>::grouped_typed(4, 6, 3, 2, 5)
        .stride(2)
        .padding(1);
    assert_eq!(conv.weight.shape(), vec![6, 2, 3]);
    let x = Tensor::<f64>::randn(&[2, 4, 7], 9);
    let y = conv.forward(&x).unwrap();
    assert_eq!(y.shape(), &[2, 6, 4]); // (7 + 2 − 3) / 2 + 1
    let (w, b) = (conv.weight.get(), conv.bias.as_ref().unwrap().get());
    let at = |n: usize, c: usize, i: isize| -> f64 {
        if (0..7).contains(&i) {
            x.data()[(n * 4 + c) * 7 + i as usize]
        } else {
            0.0
        }
    };
    for n in 0..2 {
        for o in 0..6 {
            for l in 0..4 {
                let group = o / 3;
                let mut want = b.data()[o];
                for ci in 0..2 {
                    for k in 0..3 {
                        let i = (l * 2 + k) as isize - 1;
                        want += w.data()[(o * 2 + ci) * 3 + k] * at(n, group * 2 + ci, i);
                    }
                }
                let got = y.data()[(n * 6 + o) * 4 + l];
                assert!((got - want).abs() < 1e-12, "{got} vs {want}");
            }
        }
    }
    for opts in every_scheduler() {
        gradcheck(
            |v| weighted(&conv.forward(&v[0])?),
            &[&x],
            &opts,
            GradcheckTolerance::default(),
        )
        .unwrap();
    }
    parameter_grads_match_finite_differences(&conv, &x);
    // Bad input: errors naming Conv1d and the shape.
    for bad in [Tensor::zeros(&[2, 3, 7]), Tensor::zeros(&[2, 4, 7, 1])] {
        let e = conv.forward(&bad).unwrap_err().to_string();
        assert!(
            e.contains("Conv1d") && e.contains(&format!("{:?}", bad.shape())),
            "{e}"
        );
    }
    let e = Conv1d::<f64>::new_typed(1, 1, 5, 0)
        .forward(&Tensor::zeros(&[1, 1, 3]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("Conv1d") && e.contains("kernel of 5"), "{e}");
}

#[test]
fn conv1d_with_unallocatable_padding_errs_instead_of_panicking() {
    // 2^50 zeros on each side: an error naming the shape, as conv2d gives, not a panic
    let conv = Conv1d::new(1, 1, 3, 0).padding(1 << 50);
    let e = conv
        .forward(&Tensor::ones(&[1, 1, 4]))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("Conv1d") && e.contains("[1, 1, 1125899906842624]"),
        "{e}"
    );
}
