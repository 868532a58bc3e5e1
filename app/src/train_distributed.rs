//! Workload T1 trained data-parallel over MPI (feature `mpi`): every rank builds the same
//! [`wide_model`], rank 0's initial weights are copied to all, and each global batch of
//! `config.batch` rows (the same batches, in the same order, as [`train_digits`]) is
//! split between the ranks, so the learning dynamics are those of one process.
//!
//! [`train_digits`]: crate::train::train_digits

use crate::checkpoint::{load_checkpoint, save_checkpoint, Position};
use crate::data::{self, DIGITS_CLASSES, DIGITS_FEATURES};
use crate::train::{evaluate, wide_model, Progress, TrainConfig, TrainReport};
use backflow::distributed::{DataParallel, DistributedConfig};
use backflow::nn::{cross_entropy, Adam, AdamState, Module, Optimizer, Sequential};
use backflow::{BackwardOptions, Error, Result, Tensor};
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
    /// Accuracy, times and losses, as for one process (the losses are the global batch's).
    pub train: TrainReport,
    /// This rank.
    pub rank: usize,
    /// Ranks in the job.
    pub world_size: usize,
    /// Epochs already done when this run started (non-zero when resumed).
    pub start_epoch: usize,
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
    let threads = match config.threads {
        0 => backflow::default_threads(),
        n => n,
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::Invalid {
            op: "train",
            message: format!("cannot start {threads} threads: {e}"),
        })?;
    let config = TrainConfig {
        threads,
        ..config.clone()
    };
    pool.install(|| train_on_pool(&config, options, on_step))
}

fn train_on_pool(
    config: &TrainConfig,
    options: &DistributedOptions,
    mut on_step: impl FnMut(Progress),
) -> Result<(Sequential, DistributedReport)> {
    let (train, test) = data::digits()?.split(0.8, config.seed);
    let model = wide_model(
        DIGITS_FEATURES,
        config.branches,
        config.hidden,
        DIGITS_CLASSES,
        config.seed,
    );
    // Only rank 0's weights count (DataParallel copies them to all), so every rank may
    // read the checkpoint; rank 0's position and Adam state are then broadcast.
    let mut adam_state = None;
    let mut position = Position {
        epochs_done: 0,
        steps: 0,
        seed: config.seed,
    };
    if let (true, Some(path)) = (options.resume, &options.checkpoint) {
        if path.exists() {
            (position, adam_state) = load_checkpoint(&model, path)?;
            if position.seed != config.seed {
                return Err(Error::Invalid {
                    op: "train",
                    message: format!(
                        "--resume: {} was written by a run with --seed {}, not {}",
                        path.display(),
                        position.seed,
                        config.seed
                    ),
                });
            }
        }
    }
    let mut dp = DataParallel::new(model.parameters(), options.dp.clone())?;
    let mut opt = Adam::new(model.parameters(), config.lr);
    resume_on_every_rank(&dp, &model, &mut opt, &mut position, adam_state)?;
    let (rank, world_size) = (dp.rank(), dp.world_size());
    let opts = BackwardOptions::new()
        .scheduler(config.scheduler)
        .threads(config.threads);
    let steps_per_epoch = train.len().div_ceil(config.batch);
    let total_steps = config.epochs * steps_per_epoch;
    let mut step = position.steps;
    let (mut losses, mut step_times, mut hidden_shares) = (Vec::new(), Vec::new(), Vec::new());
    let (mut final_loss, mut backward_time, mut sync_wait) =
        (f32::NAN, Duration::ZERO, Duration::ZERO);
    let start = Instant::now();
    for epoch in position.epochs_done..config.epochs {
        let order_seed = config.seed ^ (epoch as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let (mut epoch_loss, mut epoch_steps) = (0.0f64, 0usize);
        for batch in train.batches(config.batch, order_seed) {
            let step_start = Instant::now();
            let rows = dp.shard(batch.y.len());
            let fault = options
                .fault
                .filter(|f| f.rank == rank && f.step == step + 1);
            let local = local_step(&model, &batch, rows, &opts, fault, &mut backward_time);
            let backward_end = Instant::now();
            let local_loss = match local {
                Ok(loss) => loss,
                Err(e) => {
                    let e = dp.fail(&e);
                    exit_with_peers(&dp, &e)
                }
            };
            let report = match dp.synchronize(local_loss) {
                Ok(report) => report,
                Err(e) => exit_with_peers(&dp, &e),
            };
            opt.step()?;
            if options.verify_every_step {
                dp.verify_replicas()?;
            }
            step += 1;
            sync_wait += report.waited;
            hidden_shares.push(report.hidden_share(backward_end));
            step_times.push(step_start.elapsed());
            losses.push(report.loss);
            epoch_loss += f64::from(report.loss);
            epoch_steps += 1;
            if rank == 0 {
                on_step(Progress {
                    epoch,
                    step,
                    total_steps,
                    loss: report.loss,
                });
            }
        }
        final_loss = (epoch_loss / epoch_steps.max(1) as f64) as f32;
        if let (0, Some(path)) = (rank, &options.checkpoint) {
            let at = Position {
                epochs_done: epoch + 1,
                steps: step,
                seed: config.seed,
            };
            save_checkpoint(&model, Some(&opt.state()), at, path)?;
        }
    }
    let train_time = start.elapsed();
    let report = DistributedReport {
        train: TrainReport {
            test_accuracy: evaluate(&model, &test)?,
            train_time,
            backward_time,
            final_loss,
            steps: step - position.steps,
        },
        rank,
        world_size,
        start_epoch: position.epochs_done,
        losses,
        step_times,
        hidden_shares,
        sync_wait,
        buckets: dp.bucket_bytes(),
    };
    drop(dp);
    Ok((model, report))
}

/// Gives every rank rank 0's position and Adam state (as f32 values: the position's counts
/// below 2^24 are exact; Adam's step counts travel in 22-bit pieces, exact), so that all
/// ranks continue from rank 0's checkpoint.
fn resume_on_every_rank(
    dp: &DataParallel,
    model: &Sequential,
    opt: &mut Adam,
    position: &mut Position,
    adam: Option<AdamState>,
) -> Result<()> {
    let adam = adam.filter(|a| !a.moments.is_empty());
    let at = dp.broadcast(vec![
        position.epochs_done as f32,
        position.steps as f32,
        if adam.is_some() { 1.0 } else { 0.0 },
    ])?;
    position.epochs_done = at[0] as usize;
    position.steps = at[1] as usize;
    if at[2] == 0.0 {
        return Ok(());
    }
    let sizes: Vec<usize> = model.parameters().iter().map(|p| p.numel()).collect();
    let pieces = match &adam {
        Some(a) => a
            .steps
            .iter()
            .flat_map(|&s| [s >> 44, (s >> 22) & 0x3F_FFFF, s & 0x3F_FFFF].map(|v| v as f32))
            .collect(),
        None => vec![0.0; 3 * sizes.len()],
    };
    let steps = dp
        .broadcast(pieces)?
        .chunks_exact(3)
        .map(|p| ((p[0] as u64) << 44) | ((p[1] as u64) << 22) | p[2] as u64)
        .collect();
    let total: usize = sizes.iter().sum();
    let flat = match &adam {
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
    for n in sizes {
        moments.push((flat[at..at + n].to_vec(), flat[at + n..at + 2 * n].to_vec()));
        at += 2 * n;
    }
    opt.load_state(AdamState { steps, moments })
}

/// Forward and backward on this rank's `rows` of `batch`; returns the local mean loss (0
/// for no rows).
fn local_step(
    model: &Sequential,
    batch: &data::Batch,
    rows: std::ops::Range<usize>,
    opts: &BackwardOptions,
    fault: Option<Fault>,
    backward_time: &mut Duration,
) -> Result<f32> {
    if rows.is_empty() {
        return Ok(0.0);
    }
    let width = DIGITS_FEATURES;
    let x = Tensor::from_vec(
        batch.x.data()[rows.start * width..rows.end * width].to_vec(),
        &[rows.len(), width],
    )?;
    let logits = model.forward(&x)?;
    match fault.map(|f| f.kind) {
        Some(FaultKind::Error) => {
            // A gradient of the wrong shape: the backward pass fails, as a buggy op would.
            logits.register_hook(|_| Some(Tensor::zeros(&[1])));
        }
        Some(FaultKind::Abort) => {
            eprintln!("injected fault: this rank dies now");
            std::process::abort();
        }
        Some(FaultKind::Stall) => {
            eprintln!("injected fault: this rank stalls now");
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
        None => {}
    }
    let loss = cross_entropy(&logits, &batch.y[rows])?;
    let t = Instant::now();
    loss.backward_with(opts)?;
    *backward_time += t.elapsed();
    Ok(loss.item())
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
