//! Data-parallel training across processes over MPI (feature `mpi`, via the `mpi` crate,
//! rsmpi): each rank holds a replica of the model and takes a shard of every batch, and the
//! gradients are averaged before each optimiser step.
//!
//! # Algorithm
//!
//! As in PyTorch's DistributedDataParallel (Li et al., VLDB 2020), the parameters are
//! grouped into buckets of about [`DistributedConfig::bucket_bytes`], last-registered
//! first, since backward makes the gradients near the loss final first. Each parameter
//! gets a [`Tensor::on_grad_ready`](crate::Tensor::on_grad_ready) callback, which fires on
//! an executor worker, mid-pass, as soon as that parameter's gradient is final; it copies
//! the gradient, scaled by this rank's share of the batch, into its bucket (the callback's
//! tensor, since `.grad()` is committed only after the whole pass). The callback that
//! completes a bucket hands it to the communication thread, which starts its
//! `MPI_Iallreduce` while backward goes on. [`DataParallel::synchronize`] then waits only
//! for the reductions still in flight and writes the sums, the whole batch's gradient, into
//! `.grad()`.
//!
//! Buckets start in bucket order on every rank (a bucket that is ready early waits for the
//! ones before it): MPI needs every rank to start its collectives in the same order, and
//! the order in which our executor finishes gradients varies from pass to pass.
//!
//! # Threads
//!
//! One dedicated communication thread initialises MPI with `MPI_Init_thread`, which makes
//! it MPI's main thread, and then makes every MPI call of the process; grad-ready callbacks
//! and the training thread only send it messages over a channel. The thread level asked is
//! therefore `Threading::Funneled`: only the main thread calls MPI, exactly what happens.
//! `Multiple` would let the callbacks call `MPI_Iallreduce` themselves, but they run on
//! executor workers that must get back to backward, ranks would have to agree on an order
//! of calls made from racing threads anyway, and Open MPI's `THREAD_MULTIPLE` path takes a
//! lock on every call. The thread polls `MPI_Test` every
//! [`DistributedConfig::poll_interval`] while reductions are in flight, because Open MPI
//! advances non-blocking collectives only inside MPI calls.
//!
//! # Determinism
//!
//! Every rank ends a step with bitwise identical parameters: each rank receives the same
//! reduced sums (the sum of two ranks' values is commutative; Open MPI's reduction
//! algorithms give all ranks the same result, which [`DataParallel::verify_replicas`]
//! checks), and the optimiser step is deterministic.
//!
//! # Faults
//!
//! A rank whose step fails calls [`DataParallel::fail`]: it completes the step's
//! collectives with zeros and a failure flag, so the other ranks' `synchronize` returns an
//! error naming it, and every rank can exit non-zero on its own. A rank that dies is
//! reported by `mpirun`, which ends the job; and a collective that has not completed
//! [`DistributedConfig::timeout`] after a rank began to wait makes that rank abort the job
//! (`MPI_Abort`), naming itself, the step and what stalled: never a hang.

mod buckets;
mod comm;
mod config;
mod data_parallel;
mod report;

pub use buckets::CommSpan;
pub use config::DistributedConfig;
pub use data_parallel::DataParallel;
pub use report::StepReport;
