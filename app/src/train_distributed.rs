//! Data-parallel training over MPI (feature `mpi`), as a [`StepHook`] of the one loop
//! ([`Trainer`]): every rank builds the same model (T1's
//! [`wide_model`](crate::train::wide_model) or any [`Classifier`]), rank 0's initial weights are copied to all, and each global batch of
//! `config.batch` rows (the same batches, in the same order, as [`train_digits`]) is
//! split between the ranks, so the learning dynamics are those of one process.
//!
//! [`train_digits`]: crate::train::train_digits

use crate::checkpoint::Position;
use crate::models::Classifier;
use crate::train::{t1_model, Progress, TrainConfig, TrainReport};
use crate::train_loop::{RunStart, StepHook, Trainer};
use backflow::distributed::{DataParallel, DistributedConfig};
use backflow::nn::{AdamState, Sequential};
use backflow::{Error, Result, Tensor};
use std::ops::Range;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A fault injected on purpose, to test that the other ranks stop with a clear error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    /// The rank that fails.
    pub rank: usize,
    /// The step (from 1) in which it fails.
    pub step: usize,
    /// How it fails.
    pub kind: FaultKind,
}

/// How an injected [`Fault`] fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// Its backward pass returns an error (a gradient hook of the wrong shape).
    Error,
    /// The process dies mid-step (`std::process::abort`).
    Abort,
    /// The training thread stops mid-step and never returns: the other ranks' deadline
    /// ([`DistributedConfig::timeout`]) must end the job.
    Stall,
}

/// The distributed side of a run.
#[derive(Clone, Debug, Default)]
pub struct DistributedOptions {
    /// Buckets, overlap, deadline.
    pub dp: DistributedConfig,
    /// Rank 0 writes a checkpoint here after every epoch.
    pub checkpoint: Option<PathBuf>,
    /// Starts from the checkpoint, if there is one.
    pub resume: bool,
    /// Checks after every step that all ranks hold bitwise the same parameters.
    pub verify_every_step: bool,
    /// A fault to inject.
    pub fault: Option<Fault>,
}

/// What a distributed run measured, on this rank.
#[derive(Clone, Debug)]
pub struct DistributedReport {
    /// Accuracy, times, losses and the epoch a resumed run started from, as for one
    /// process (the losses are the global batch's).
    pub train: TrainReport,
    /// This rank.
    pub rank: usize,
    /// Ranks in the job.
    pub world_size: usize,
    /// The global loss of every step this run took, in order.
    pub losses: Vec<f32>,
    /// Each step's wall time (forward, backward, synchronize, optimiser step).
    pub step_times: Vec<Duration>,
    /// Per step, the share of allreduce time hidden behind backward.
    pub hidden_shares: Vec<f64>,
    /// Total time spent in `synchronize` waiting for reductions.
    pub sync_wait: Duration,
    /// The bucket sizes, in bytes.
    pub buckets: Vec<usize>,
}

/// Trains T1 data-parallel: call it on every rank of an `mpirun` job with the same
/// arguments. `on_step` runs on rank 0 after each step, with the global batch's loss.
///
/// A step that fails on any rank ends the process on every rank: each prints its error
/// (the failing rank's own, the others' naming it) and exits with status 1 once all have.
pub fn train_digits_distributed(
    config: &TrainConfig,
    options: &DistributedOptions,
    on_step: impl FnMut(Progress) + Send,
) -> Result<(Sequential, DistributedReport)> {
    config.validate()?;
    let model = t1_model(config);
    let report = train_distributed(&model, config, options, on_step)?;
    Ok((model, report))
}

/// Trains any [`Classifier`] data-parallel with the one loop ([`Trainer`]), as
/// [`train_digits_distributed`] trains T1: every rank builds the same model, rank 0's
/// weights are copied to all, and each rank computes its share of every global batch.
/// A model whose loss is not a mean over rows (the mixture of experts' load-balancing
/// term) is trained on each rank's share of that term, as in PyTorch's DDP.
pub fn train_distributed<M: Classifier + ?Sized>(
    model: &M,
    config: &TrainConfig,
    options: &DistributedOptions,
    on_step: impl FnMut(Progress) + Send,
) -> Result<DistributedReport> {
    let mut trainer = Trainer::new(model, config)?;
    if let Some(path) = &options.checkpoint {
        // Only rank 0's weights count (DataParallel copies them to all), so every rank may
        // read the checkpoint; rank 0's position and Adam state are then broadcast.
        trainer = trainer.checkpoint(path.clone(), options.resume)?;
    }
    let dp = DataParallel::new(model.parameters(), options.dp.clone())?;
    let mut hook = DataParallelHook {
        fault: options.fault,
        verify_every_step: options.verify_every_step,
        step: 0,
        step_start: Instant::now(),
        backward_end: Instant::now(),
        losses: Vec::new(),
        step_times: Vec::new(),
        hidden_shares: Vec::new(),
        sync_wait: Duration::ZERO,
        dp,
    };
    let train = trainer.fit(&mut hook, on_step)?;
    Ok(DistributedReport {
        rank: hook.dp.rank(),
        world_size: hook.dp.world_size(),
        train,
        buckets: hook.dp.bucket_bytes(),
        losses: hook.losses,
        step_times: hook.step_times,
        hidden_shares: hook.hidden_shares,
        sync_wait: hook.sync_wait,
    })
}

/// The data-parallel mode of the one loop: shards each global batch, injects the test
/// fault, synchronises the gradients and records what each step measured.
struct DataParallelHook {
    dp: DataParallel,
    fault: Option<Fault>,
    verify_every_step: bool,
    /// The step under way, from 1.
    step: usize,
    step_start: Instant,
    backward_end: Instant,
    losses: Vec<f32>,
    step_times: Vec<Duration>,
    hidden_shares: Vec<f64>,
    sync_wait: Duration,
}

impl StepHook for DataParallelHook {
    fn before_train(&mut self, start: &mut RunStart) -> Result<()> {
        let sizes: Vec<usize> = start.params.iter().map(|p| p.numel()).collect();
        resume_on_every_rank(&self.dp, &sizes, &mut start.position, &mut start.adam)
    }

    fn before_step(&mut self, step: usize, rows: usize) -> Range<usize> {
        self.step = step;
        self.step_start = Instant::now();
        self.dp.shard(rows)
    }

    fn after_forward(&mut self, step: usize, loss: &Tensor) -> Result<()> {
        let rank = self.dp.rank();
        match self.fault.filter(|f| f.rank == rank && f.step == step) {
            Some(Fault {
                kind: FaultKind::Error,
                ..
            }) => {
                // A gradient of the wrong shape: the backward pass fails, as a buggy op would.
                loss.register_hook(|_| Some(Tensor::zeros(&[2, 2])));
            }
            Some(Fault {
                kind: FaultKind::Abort,
                ..
            }) => {
                eprintln!("injected fault: this rank dies now");
                std::process::abort();
            }
            Some(Fault {
                kind: FaultKind::Stall,
                ..
            }) => {
                eprintln!("injected fault: this rank stalls now");
                loop {
                    std::thread::sleep(Duration::from_secs(3600));
                }
            }
            None => {}
        }
        Ok(())
    }

    fn after_backward(&mut self, local: Result<f32>) -> Result<f32> {
        self.backward_end = Instant::now();
        let local = match local {
            Ok(loss) => loss,
            Err(e) => {
                let e = self.dp.fail(&e);
                exit_with_peers(&self.dp, &e)
            }
        };
        let report = match self.dp.synchronize(local) {
            Ok(report) => report,
            Err(e) => exit_with_peers(&self.dp, &e),
        };
        self.sync_wait += report.waited;
        self.hidden_shares
            .push(report.hidden_share(self.backward_end));
        Ok(report.loss)
    }

    fn after_step(&mut self, progress: &Progress) -> Result<()> {
        if self.verify_every_step {
            self.dp.verify_replicas()?;
        }
        self.step_times.push(self.step_start.elapsed());
        self.losses.push(progress.loss);
        Ok(())
    }

    fn is_leader(&self) -> bool {
        self.dp.rank() == 0
    }
}

/// Gives every rank rank 0's position and Adam state (as f32 values: the position's and
/// Adam's counts travel in 22-bit pieces, exact), so that all ranks continue from rank 0's
/// checkpoint.
fn resume_on_every_rank(
    dp: &DataParallel,
    sizes: &[usize],
    position: &mut Position,
    adam: &mut Option<AdamState>,
) -> Result<()> {
    let held = adam.take().filter(|a| !a.moments.is_empty());
    let mut at = Vec::with_capacity(7);
    at.extend(pieces(position.epochs_done as u64));
    at.extend(pieces(position.steps as u64));
    at.push(if held.is_some() { 1.0 } else { 0.0 });
    let at = dp.broadcast(at)?;
    position.epochs_done = whole(&at[0..3]) as usize;
    position.steps = whole(&at[3..6]) as usize;
    if at[6] == 0.0 {
        return Ok(());
    }
    let counts = match &held {
        Some(a) => a.steps.iter().flat_map(|&s| pieces(s)).collect(),
        None => vec![0.0; 3 * sizes.len()],
    };
    let steps = dp.broadcast(counts)?.chunks_exact(3).map(whole).collect();
    let total: usize = sizes.iter().sum();
    let flat = match &held {
        Some(a) => a
            .moments
            .iter()
            .flat_map(|(m, v)| m.iter().chain(v))
            .copied()
            .collect(),
        None => vec![0.0; 2 * total],
    };
    let flat = dp.broadcast(flat)?;
    let mut moments = Vec::with_capacity(sizes.len());
    let mut at = 0;
    for &n in sizes {
        moments.push((flat[at..at + n].to_vec(), flat[at + n..at + 2 * n].to_vec()));
        at += 2 * n;
    }
    *adam = Some(AdamState { steps, moments });
    Ok(())
}

/// `n` as three f32 values of 20, 22 and 22 bits, each exact in an f32 (24-bit mantissa).
fn pieces(n: u64) -> [f32; 3] {
    [n >> 44, (n >> 22) & 0x3F_FFFF, n & 0x3F_FFFF].map(|v| v as f32)
}

/// The number that [`pieces`] split.
fn whole(p: &[f32]) -> u64 {
    ((p[0] as u64) << 44) | ((p[1] as u64) << 22) | p[2] as u64
}

/// Ends this rank after a failed step, once every rank has printed its own error: it
/// prints `error`, meets the other ranks in one last collective, and exits with status 1.
/// Returning the error instead would let the first rank to exit make `mpirun` kill the
/// others before they had said which rank failed. (A rank that died or stalled never gets
/// here: `mpirun` or the collective's deadline ends the job.)
fn exit_with_peers(dp: &DataParallel, error: &Error) -> ! {
    eprintln!("error: {error}");
    // Every rank that reaches this point calls it once; its result does not matter.
    let _ = dp.broadcast(vec![0.0]);
    std::process::exit(1)
}
