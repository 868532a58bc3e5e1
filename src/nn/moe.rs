//! `MoE`: a routed mixture-of-experts layer with top-k softmax gating (Shazeer et al. 2017)
//! and the Switch Transformer's load-balancing loss (Fedus et al. 2021).
//!
//! A linear gate scores the experts for each row; each row goes to its `k` best experts
//! only, and its output is their outputs weighted by the gate's softmax renormalised over
//! those `k`. Each expert sees just the rows routed to it (`index_select`), so the graph is
//! rebuilt differently for every batch: an expert that receives no row is not in it at all.
//! The experts are independent branches between the gather and the combine, which the
//! forward runs concurrently on the executor's threads and the parallel executor differentiates
//! concurrently.

use super::branches::par_map;
use super::module::{prefixed, Module};
use super::{Linear, Param};
use crate::{Element, Error, Result, Tensor};

/// A routed mixture of experts over `[batch, features]` rows.
///
/// Parameters are named `gate.weight`, `gate.bias` and `experts.<i>.<name>`.
///
/// ```
/// use backflow::nn::{Linear, MoE, Module, Relu, Sequential};
/// use backflow::Tensor;
/// // 4 experts of 8 → 16 → 8, each row routed to its best 2.
/// let moe = MoE::new(Linear::new(8, 4, 0), 2, (0..4).map(|i| {
///     Sequential::new().push(Linear::new(8, 16, 10 + i)).push(Relu).push(Linear::new(16, 8, 20 + i))
/// }));
/// let x = Tensor::randn(&[5, 8], 1);
/// let routed = moe.route(&x).unwrap();
/// assert_eq!(routed.output.shape(), &[5, 8]);
/// assert_eq!(routed.load.iter().sum::<usize>(), 5 * 2); // every row reached 2 experts
/// // The load-balancing loss is 1 for a perfectly even router, more otherwise.
/// assert!(routed.aux_loss.item() > 0.0);
/// (&routed.output.sum() + &routed.aux_loss).backward().unwrap();
/// assert!(moe.named_parameters().iter().any(|(n, p)| n == "gate.weight" && p.grad().is_some()));
/// ```
pub struct MoE<T: Element = f32> {
    gate: Linear<T>,
    experts: Vec<Box<dyn Module<T>>>,
    top_k: usize,
}

/// What one [`MoE::route`] produced.
#[derive(Clone, Debug)]
pub struct Routed<T: Element = f32> {
    /// `[batch, expert outputs]`: each row's experts' outputs, weighted by its gates.
    pub output: Tensor<T>,
    /// The load-balancing loss `E · Σ_e f_e · P_e`: `f_e` is the fraction of the batch's
    /// routing slots that went to expert `e`, `P_e` the mean gate probability of `e`. It is
    /// 1 when both are uniform; add it, scaled (0.01 is usual), to the training loss.
    pub aux_loss: Tensor<T>,
    /// Rows routed to each expert.
    pub load: Vec<usize>,
}

impl<T: Element> MoE<T> {
    /// A layer whose `gate` (a [`Linear`] from the features to one score per expert) sends
    /// each row to its `top_k` best `experts`. Every expert must map the same features to
    /// outputs of one shape.
    ///
    /// # Panics
    ///
    /// If `top_k` is 0 or exceeds the number of experts, or the gate's outputs are not one
    /// per expert.
    pub fn new<M: Module<T> + 'static>(
        gate: Linear<T>,
        top_k: usize,
        experts: impl IntoIterator<Item = M>,
    ) -> Self {
        let experts: Vec<Box<dyn Module<T>>> = experts
            .into_iter()
            .map(|e| Box::new(e) as Box<dyn Module<T>>)
            .collect();
        assert!(
            (1..=experts.len()).contains(&top_k),
            "MoE: top_k {top_k} must be in 1..={} (the number of experts)",
            experts.len()
        );
        assert_eq!(
            gate.outputs(),
            experts.len(),
            "MoE: the gate scores {} experts but {} were given",
            gate.outputs(),
            experts.len()
        );
        Self {
            gate,
            experts,
            top_k,
        }
    }

    /// Number of experts.
    pub fn experts(&self) -> usize {
        self.experts.len()
    }

    /// Experts each row is sent to.
    pub fn top_k(&self) -> usize {
        self.top_k
    }

    /// Routes the rows of `x` (`[batch, features]`) and combines the experts' outputs;
    /// also returns the load-balancing loss and each expert's load.
    ///
    /// An `Error::Invalid` of op `MoE` names the input's shape where it is not
    /// `[batch, features]` or the batch is empty (there is nothing to route, and the
    /// load-balancing loss, a mean over the batch, would be 0/0).
    pub fn route(&self, x: &Tensor<T>) -> Result<Routed<T>> {
        let &[batch, _] = x.shape() else {
            return Err(Error::Invalid {
                op: "MoE",
                message: format!("input must be [batch, features], not {:?}", x.shape()),
            });
        };
        if batch == 0 {
            // Nothing to route, and the load-balancing loss would be 0/0.
            return Err(Error::Invalid {
                op: "MoE",
                message: format!(
                    "the batch is empty (input of shape {:?}): routing needs at least one row",
                    x.shape()
                ),
            });
        }
        let (experts, k) = (self.experts.len(), self.top_k);
        let probs = self.gate.forward(x)?.softmax();
        let chosen = top_k_rows(probs.data(), experts, k);

        // Each row's gates: its softmax over the chosen experts, renormalised to sum to 1.
        let mut mask = vec![T::zero(); batch * experts];
        for (row, picks) in chosen.chunks(k).enumerate() {
            for &e in picks {
                mask[row * experts + e] = T::one();
            }
        }
        let kept = probs.try_mul(&Tensor::from_vec(mask, &[batch, experts])?)?;
        let gates = kept.try_div(&kept.sum_dim(1, true)?)?;

        // Expert e's rows, in row order, and where each (slot, row) pair lands in the
        // experts' concatenated outputs.
        let mut rows: Vec<Vec<usize>> = vec![Vec::new(); experts];
        for (row, picks) in chosen.chunks(k).enumerate() {
            for &e in picks {
                rows[e].push(row);
            }
        }
        let mut position = vec![0; k * batch];
        let mut next = 0;
        for (e, list) in rows.iter().enumerate() {
            for &row in list {
                let slot = chosen[row * k..(row + 1) * k]
                    .iter()
                    .position(|&c| c == e)
                    .expect("the expert was chosen for this row");
                position[slot * batch + row] = next;
                next += 1;
            }
        }
        let busy: Vec<usize> = (0..experts).filter(|&e| !rows[e].is_empty()).collect();
        let outs = par_map(&busy, |&e| {
            let xe = x.index_select(0, &rows[e])?;
            let ge = gates.index_select(0, &rows[e])?.narrow(1, e, 1)?;
            self.experts[e].forward(&xe)?.try_mul(&ge)
        })?;
        let stacked = Tensor::concat(&outs.iter().collect::<Vec<_>>(), 0)?;
        let mut out_shape = stacked.shape().to_vec();
        let ordered = stacked.index_select(0, &position)?;
        out_shape[0] = batch;
        out_shape.insert(0, k);
        let output = ordered.reshape(&out_shape)?.sum_dim(0, false)?;

        let load: Vec<usize> = rows.iter().map(Vec::len).collect();
        let fraction = load
            .iter()
            .map(|&n| T::from_f64(n as f64 / (batch * k) as f64))
            .collect();
        let mean_prob = probs.mean_dim(0, false)?;
        let aux_loss = mean_prob
            .try_mul(&Tensor::from_vec(fraction, &[experts])?)?
            .sum()
            .affine(T::from_f64(experts as f64), T::zero());
        Ok(Routed {
            output,
            aux_loss,
            load,
        })
    }
}

impl<T: Element> Module<T> for MoE<T> {
    /// The routed output alone; [`MoE::route`] also gives the load-balancing loss.
    fn forward(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        Ok(self.route(x)?.output)
    }

    fn named_parameters(&self) -> Vec<(String, Param<T>)> {
        let mut params = prefixed("gate", self.gate.named_parameters());
        for (i, e) in self.experts.iter().enumerate() {
            params.extend(prefixed(&format!("experts.{i}"), e.named_parameters()));
        }
        params
    }

    fn named_buffers(&self) -> Vec<(String, Param<T>)> {
        let mut buffers = prefixed("gate", self.gate.named_buffers());
        for (i, e) in self.experts.iter().enumerate() {
            buffers.extend(prefixed(&format!("experts.{i}"), e.named_buffers()));
        }
        buffers
    }

    fn set_training(&self, training: bool) {
        self.gate.set_training(training);
        for e in &self.experts {
            e.set_training(training);
        }
    }
}

/// For each row of `probs` (`experts` wide), the indices of its `k` largest entries, best
/// first (the lower index on ties), flattened row after row.
fn top_k_rows<T: Element>(probs: &[T], experts: usize, k: usize) -> Vec<usize> {
    let mut chosen = Vec::with_capacity(probs.len() / experts.max(1) * k);
    let mut order: Vec<usize> = Vec::with_capacity(experts);
    for row in probs.chunks(experts) {
        order.clear();
        order.extend(0..experts);
        // A stable sort by descending probability keeps the lower index first on ties;
        // NaN (a broken gate) sorts as equal, so routing still picks k experts.
        order.sort_by(|&a, &b| {
            row[b]
                .partial_cmp(&row[a])
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        chosen.extend_from_slice(&order[..k]);
    }
    chosen
}

#[cfg(test)]
mod tests {
    use super::top_k_rows;

    #[test]
    fn top_k_picks_the_largest_first_and_the_lower_index_on_ties() {
        let probs = [0.1f32, 0.4, 0.4, 0.1, 0.7, 0.1, 0.1, 0.1];
        assert_eq!(top_k_rows(&probs, 4, 2), vec![1, 2, 0, 1]);
    }
}
