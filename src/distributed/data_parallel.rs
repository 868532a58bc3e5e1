//! `DataParallel`: one replica of the model per MPI rank, gradients averaged by bucketed
//! allreduce overlapped with backward.

use super::buckets::{self, Layout, Staging};
use super::comm::{self, Command, Placement, Reduced};
use super::{DistributedConfig, StepReport};
use crate::nn::Param;
use crate::{Error, Result, Tensor};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Data-parallel training over MPI: each rank (process) holds a replica of the parameters
/// and takes a shard of every batch; [`synchronize`](Self::synchronize) leaves in each
/// parameter's `.grad()` the gradient of the whole batch, bitwise the same on every rank,
/// so that every rank's optimiser step gives the same parameters.
///
/// One backward pass per step: [`shard`](Self::shard) the batch, run forward and
/// `backward` on this rank's rows, then `synchronize` (or [`fail`](Self::fail) if the step
/// went wrong), then the optimiser's `step`. Every rank must make the same calls in the
/// same order. At most one `DataParallel` per process (MPI is initialised once).
///
/// ```
/// use backflow::distributed::{DataParallel, DistributedConfig};
/// use backflow::nn::{cross_entropy, Adam, Linear, Module, Optimizer};
/// use backflow::Tensor;
///
/// fn main() -> backflow::Result<()> {
///     // Under `mpirun -np N` every rank runs this, and rank 0's initial values win; run
///     // alone, it is a job of one rank.
///     let model = Linear::new(4, 3, 0);
///     let mut dp = DataParallel::new(model.parameters(), DistributedConfig::new())?;
///     let mut opt = Adam::new(model.parameters(), 1e-2);
///     let features: Vec<f32> = (0..32).map(|i| i as f32 / 32.0).collect(); // 8 rows of 4
///     let labels = [0, 1, 2, 0, 1, 2, 0, 1];
///     for _step in 0..3 {
///         let rows = dp.shard(labels.len()); // this rank's rows of the batch
///         let x = Tensor::from_vec(features[rows.start * 4..rows.end * 4].to_vec(), &[rows.len(), 4])?;
///         let loss = cross_entropy(&model.forward(&x)?, &labels[rows])?;
///         if let Err(e) = loss.backward() {
///             return Err(dp.fail(&e)); // the other ranks' synchronize names this rank
///         }
///         let report = dp.synchronize(loss.item())?; // the whole batch's gradient
///         opt.step()?;
///         if dp.rank() == 0 {
///             println!("loss {}", report.loss);
///         }
///     }
///     dp.verify_replicas() // every rank holds bitwise the same parameters
/// }
/// ```
pub struct DataParallel {
    params: Vec<Param>,
    shared: Arc<Shared>,
    placement: Placement,
    commands: Sender<Command>,
    thread: Option<JoinHandle<()>>,
    config: DistributedConfig,
    /// Steps synchronised or failed so far.
    steps: usize,
}

/// The buckets in force, and their gradients of the current step.
struct Plan {
    layouts: Vec<Layout>,
    /// Per parameter (registration order): its bucket and its slot there.
    slot_of: Vec<(usize, usize)>,
    /// Per bucket, this step's gradients so far.
    staging: Vec<Mutex<Staging>>,
}

impl Plan {
    fn new(layouts: Vec<Layout>) -> Self {
        let mut slot_of = vec![(0, 0); layouts.iter().map(|l| l.slots.len()).sum()];
        for (b, layout) in layouts.iter().enumerate() {
            for (k, slot) in layout.slots.iter().enumerate() {
                slot_of[slot.param] = (b, k);
            }
        }
        let staging = layouts
            .iter()
            .map(|l| Mutex::new(Staging::new(l)))
            .collect();
        Self {
            layouts,
            slot_of,
            staging,
        }
    }
}

/// What the grad-ready callbacks share with the wrapper.
struct Shared {
    /// Replaced once, after the first step, by buckets in the observed order.
    plan: RwLock<Arc<Plan>>,
    /// Set until the first step has been synchronised: callbacks record the order in which
    /// the parameters' gradients became final.
    recording: AtomicBool,
    /// That order, as parameter indices.
    order: Mutex<Vec<usize>>,
    /// This rank's share of the batch (f32 bits): its gradients are scaled by it, so that
    /// the sum over ranks is the whole batch's mean gradient.
    weight: AtomicU32,
    commands: Sender<Command>,
    /// Set when the wrapper is dropped: callbacks left on the parameters do nothing.
    closed: AtomicBool,
    /// Set when a parameter's gradient arrived twice in one step.
    repeated: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn invalid(message: String) -> Error {
    Error::Invalid {
        op: "distributed",
        message,
    }
}

impl DataParallel {
    /// Starts MPI on a communication thread of its own, checks that every rank has
    /// parameters of the same shapes, copies rank 0's values into every rank's `params`
    /// and, with [`DistributedConfig::overlap`], registers a grad-ready callback on each
    /// parameter. Errs if MPI was already initialised in this process or the ranks'
    /// models differ. Without `mpirun` this is a job of one rank.
    pub fn new(params: Vec<Param>, config: DistributedConfig) -> Result<Self> {
        let sizes: Vec<usize> = params.iter().map(Param::numel).collect();
        let order = buckets::reverse_registration(params.len());
        let layouts = buckets::plan(&sizes, &order, config.bucket_bytes_value());
        let (commands, receiver) = mpsc::channel();
        let (placement, thread) = comm::start(layouts.clone(), config.clone(), receiver)?;
        let shared = Arc::new(Shared {
            plan: RwLock::new(Arc::new(Plan::new(layouts))),
            recording: AtomicBool::new(config.observed_order_value() && config.overlap_value()),
            order: Mutex::new(Vec::new()),
            weight: AtomicU32::new((1.0 / placement.size as f32).to_bits()),
            commands: commands.clone(),
            closed: AtomicBool::new(false),
            repeated: AtomicBool::new(false),
        });
        let dp = Self {
            params,
            shared,
            placement,
            commands,
            thread: Some(thread),
            config,
            steps: 0,
        };
        dp.check_shapes()?;
        dp.broadcast_parameters()?;
        if dp.config.overlap_value() {
            dp.register_callbacks();
        }
        Ok(dp)
    }

    /// This process's rank, from 0.
    pub fn rank(&self) -> usize {
        self.placement.rank
    }

    /// The number of ranks in the job.
    pub fn world_size(&self) -> usize {
        self.placement.size
    }

    /// The settings.
    pub fn config(&self) -> &DistributedConfig {
        &self.config
    }

    /// Each bucket's size in bytes, in the order the buckets are reduced.
    pub fn bucket_bytes(&self) -> Vec<usize> {
        self.plan()
            .layouts
            .iter()
            .map(|l| l.len * std::mem::size_of::<f32>())
            .collect()
    }

    /// This rank's rows of a batch of `rows`: contiguous blocks, rank 0 first, sizes
    /// differing by at most one (empty when `rows` is less than the number of ranks). Also
    /// sets this step's weight, the share `len / rows`, by which this rank's gradients and
    /// loss are scaled.
    pub fn shard(&self, rows: usize) -> Range<usize> {
        let (rank, size) = (self.placement.rank, self.placement.size);
        let range = rank * rows / size..(rank + 1) * rows / size;
        let weight = if rows == 0 {
            0.0
        } else {
            range.len() as f32 / rows as f32
        };
        self.shared
            .weight
            .store(weight.to_bits(), Ordering::Relaxed);
        range
    }

    /// Ends a step whose backward pass succeeded: waits for the reductions still in
    /// flight (starting those of gradients that did not arrive by callback), then sets
    /// every parameter's `.grad()` to the whole batch's gradient. `loss` is this rank's
    /// loss on its shard; the report's `loss` is the batch's.
    ///
    /// A parameter without a gradient on this rank contributes zeros. Errs, on every rank,
    /// naming the ranks that called [`fail`](Self::fail) in this step; errs if a
    /// parameter's gradient arrived twice (two backward passes in one step).
    pub fn synchronize(&mut self, loss: f32) -> Result<StepReport> {
        let called = Instant::now();
        let repeated = self.shared.repeated.swap(false, Ordering::Relaxed);
        let reduced = self.finish_step(f64::from(loss), repeated, !self.config.overlap_value());
        let waited = called.elapsed();
        self.steps += 1;
        if !reduced.failed_ranks.is_empty() {
            return Err(self.failed_elsewhere(&reduced.failed_ranks));
        }
        if repeated {
            return Err(invalid(format!(
                "step {}: a parameter's gradient arrived twice: DataParallel takes one \
                 backward pass per step, then synchronize",
                self.steps
            )));
        }
        for (layout, values) in self.plan().layouts.iter().zip(&reduced.buckets) {
            for slot in &layout.slots {
                let param = &self.params[slot.param];
                let grad = values[slot.offset..slot.offset + slot.len].to_vec();
                param
                    .get()
                    .set_grad(Some(Tensor::from_vec(grad, &param.shape())?))?;
            }
        }
        if self.shared.recording.swap(false, Ordering::Relaxed) {
            self.rebuild_buckets()?;
        }
        Ok(StepReport {
            loss: reduced.loss as f32,
            spans: reduced.spans,
            called,
            waited,
        })
    }

    /// Ends a step that failed on this rank (`error`, from its forward or backward pass):
    /// tells the other ranks, whose [`synchronize`](Self::synchronize) then errs naming
    /// this rank, and returns `error` with this rank prefixed. Gradients are left as they
    /// were.
    pub fn fail(&mut self, error: &Error) -> Error {
        self.shared.repeated.store(false, Ordering::Relaxed);
        lock(&self.shared.order).clear();
        let reduced = self.finish_step(0.0, true, false);
        self.steps += 1;
        let others: Vec<usize> = reduced
            .failed_ranks
            .into_iter()
            .filter(|&r| r != self.placement.rank)
            .collect();
        let also = if others.is_empty() {
            String::new()
        } else {
            format!(" (ranks {others:?} failed too)")
        };
        invalid(format!(
            "rank {} failed in step {}{also}: {error}",
            self.placement.rank, self.steps
        ))
    }

    /// Checks that every rank holds bitwise the same parameter values (a hash of their
    /// bits, gathered from every rank); errs naming the ranks that differ from rank 0.
    pub fn verify_replicas(&self) -> Result<()> {
        let mut hash = 0xcbf2_9ce4_8422_2325u64; // FNV-1a
        for p in &self.params {
            for v in p.get().data() {
                for byte in v.to_bits().to_le_bytes() {
                    hash = (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
                }
            }
        }
        let all = self.all_gather(hash)?;
        let differ: Vec<usize> = (1..all.len()).filter(|&r| all[r] != all[0]).collect();
        if differ.is_empty() {
            Ok(())
        } else {
            Err(invalid(format!(
                "after step {}: the parameters of ranks {differ:?} differ from rank 0's",
                self.steps
            )))
        }
    }

    /// Rank 0's `values` on every rank (for state outside the parameters, such as where
    /// a resumed run starts); every rank must pass the same length.
    pub fn broadcast(&self, values: Vec<f32>) -> Result<Vec<f32>> {
        let (reply, answer) = mpsc::channel();
        self.send(Command::Broadcast { values, reply })?;
        answer
            .recv()
            .map_err(|_| invalid("the communication thread stopped".into()))
    }

    /// Prints `message` naming this rank and aborts the whole MPI job (`MPI_Abort`): for
    /// a failure after which this rank cannot take part in the next collective.
    pub fn abort(&self, message: &str) -> ! {
        let _ = self.commands.send(Command::Abort {
            message: message.to_string(),
        });
        // MPI_Abort ends this process; should it not, leave anyway.
        std::thread::sleep(self.config.timeout_value());
        eprintln!("rank {}: {message}", self.placement.rank);
        std::process::exit(3)
    }

    fn all_gather(&self, value: u64) -> Result<Vec<u64>> {
        let (reply, answer) = mpsc::channel();
        self.send(Command::AllGather { value, reply })?;
        answer
            .recv()
            .map_err(|_| invalid("the communication thread stopped".into()))
    }

    fn send(&self, command: Command) -> Result<()> {
        self.commands
            .send(command)
            .map_err(|_| invalid("the communication thread stopped".into()))
    }

    /// Errs on every rank when the ranks' parameter shapes differ.
    fn check_shapes(&self) -> Result<()> {
        let mut hash = 0xcbf2_9ce4_8422_2325u64;
        for p in &self.params {
            for d in std::iter::once(usize::MAX).chain(p.shape()) {
                hash = (hash ^ d as u64).wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
        let all = self.all_gather(hash)?;
        let differ: Vec<usize> = (1..all.len()).filter(|&r| all[r] != all[0]).collect();
        if differ.is_empty() {
            Ok(())
        } else {
            Err(invalid(format!(
                "the parameter shapes of ranks {differ:?} differ from rank 0's: every rank \
                 must build the same model"
            )))
        }
    }

    /// Copies rank 0's parameter values to every rank.
    fn broadcast_parameters(&self) -> Result<()> {
        let all: Vec<f32> = self
            .params
            .iter()
            .flat_map(|p| p.get().data().to_vec())
            .collect();
        let all = self.broadcast(all)?;
        if self.placement.rank != 0 {
            let mut at = 0;
            for p in &self.params {
                let n = p.numel();
                p.set_data(all[at..at + n].to_vec())?;
                at += n;
            }
        }
        Ok(())
    }

    /// The buckets in force.
    fn plan(&self) -> Arc<Plan> {
        Arc::clone(&self.shared.plan.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// After the first step: buckets in the order rank 0 saw the gradients become final
    /// (the parameters it did not see last, last registered first), on every rank.
    fn rebuild_buckets(&self) -> Result<()> {
        let n = self.params.len();
        let mut order = std::mem::take(&mut *lock(&self.shared.order));
        let mut seen = vec![false; n];
        order.retain(|&i| !std::mem::replace(&mut seen[i], true));
        order.extend(
            buckets::reverse_registration(n)
                .into_iter()
                .filter(|&i| !seen[i]),
        );
        // Indices below 2^24 are exact in f32.
        let order: Vec<usize> = self
            .broadcast(order.iter().map(|&i| i as f32).collect())?
            .into_iter()
            .map(|i| i as usize)
            .collect();
        let sizes: Vec<usize> = self.params.iter().map(Param::numel).collect();
        let layouts = buckets::plan(&sizes, &order, self.config.bucket_bytes_value());
        // The channel is in order: the new layout reaches the communication thread before
        // any bucket of the next step.
        self.send(Command::Layout(layouts.clone()))?;
        *self.shared.plan.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(Plan::new(layouts));
        Ok(())
    }

    /// A grad-ready callback per parameter: copy the gradient (weighted) into its bucket,
    /// and hand the bucket to the communication thread when it is complete.
    fn register_callbacks(&self) {
        for i in 0..self.params.len() {
            let shared = Arc::clone(&self.shared);
            self.params[i].get().on_grad_ready(move |g| {
                if shared.closed.load(Ordering::Acquire) {
                    return;
                }
                if shared.recording.load(Ordering::Relaxed) {
                    lock(&shared.order).push(i);
                }
                let plan = Arc::clone(&shared.plan.read().unwrap_or_else(|e| e.into_inner()));
                let (b, k) = plan.slot_of[i];
                let weight = f32::from_bits(shared.weight.load(Ordering::Relaxed));
                let mut staging = lock(&plan.staging[b]);
                if staging.filled[k] || staging.sent {
                    shared.repeated.store(true, Ordering::Relaxed);
                    return;
                }
                let full = staging.fill(&plan.layouts[b], k, Some(g.data()), weight);
                drop(staging);
                if let Some(values) = full {
                    let _ = shared.commands.send(Command::Bucket {
                        index: b,
                        values,
                        ready: Instant::now(),
                    });
                    // With as many busy threads as cores, the woken communication thread
                    // may otherwise wait for this worker's time slice to end before it
                    // starts the allreduce.
                    std::thread::yield_now();
                }
            });
        }
    }

    /// Sends every bucket not yet sent (its missing gradients read from `.grad()` when
    /// `from_grads`, else zeros), then `Finish`, and waits for the step's reductions.
    /// Leaves the staging empty for the next step.
    fn finish_step(&mut self, loss: f64, failed: bool, from_grads: bool) -> Reduced {
        let weight = f32::from_bits(self.shared.weight.load(Ordering::Relaxed));
        let plan = self.plan();
        for (b, layout) in plan.layouts.iter().enumerate() {
            let mut staging = lock(&plan.staging[b]);
            let mut full = None;
            for (k, slot) in layout.slots.iter().enumerate() {
                if staging.sent || staging.filled[k] {
                    continue;
                }
                let grad = if from_grads && !failed {
                    self.params[slot.param].grad()
                } else {
                    None
                };
                full = staging.fill(layout, k, grad.as_ref().map(|g| g.data()), weight);
            }
            *staging = Staging::new(layout);
            drop(staging);
            if let Some(values) = full {
                let _ = self.commands.send(Command::Bucket {
                    index: b,
                    values,
                    ready: Instant::now(),
                });
            }
        }
        let default_weight = 1.0 / self.placement.size as f32;
        self.shared
            .weight
            .store(default_weight.to_bits(), Ordering::Relaxed);
        let (reply, answer) = mpsc::channel();
        let weighted_loss = if failed {
            0.0
        } else {
            loss * f64::from(weight)
        };
        if self
            .commands
            .send(Command::Finish {
                loss: weighted_loss,
                failed,
                reply,
            })
            .is_err()
        {
            self.abort("the communication thread stopped in the middle of a step");
        }
        // The communication thread answers or aborts the job within its deadline; this
        // bound only guards against that thread itself being stuck.
        let bound = self.config.timeout_value() * 2 + Duration::from_secs(5);
        match answer.recv_timeout(bound) {
            Ok(reduced) => reduced,
            Err(_) => self.abort(&format!(
                "step {}: no answer from the communication thread within {bound:?}",
                self.steps + 1
            )),
        }
    }

    fn failed_elsewhere(&self, ranks: &[usize]) -> Error {
        let who = match ranks {
            [r] => format!("rank {r} failed"),
            _ => format!("ranks {ranks:?} failed"),
        };
        invalid(format!(
            "step {}: {who} (its error output says why); rank {} stops too",
            self.steps, self.placement.rank
        ))
    }
}

impl Drop for DataParallel {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
        let _ = self.commands.send(Command::Shutdown);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
