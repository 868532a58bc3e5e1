//! The communication thread: it initialises MPI, so it is MPI's main thread, and it makes
//! every MPI call of the process (`Threading::Funneled`). Grad-ready callbacks and the
//! training thread talk to it over a channel.
//!
//! A step: buckets arrive in any order, as backward makes them final; the thread starts
//! bucket `b`'s `MPI_Iallreduce` once `b` has arrived and every bucket before it has
//! started, because every rank must start its collectives in the same order. Once the
//! training thread sends `Finish`, a last small allreduce carries each rank's weighted loss
//! and whether it failed. While anything is in flight the thread polls `MPI_Test` every
//! `poll_interval` (Open MPI advances non-blocking collectives only inside MPI calls) and
//! otherwise sleeps on the channel. A collective that has not completed `timeout` after
//! the training thread began to wait aborts the job (`MPI_Abort`) with a message naming
//! this rank, the step and what stalled.

use super::buckets::{CommSpan, Layout};
use super::DistributedConfig;
use crate::{Error, Result};
use mpi::collective::SystemOperation;
use mpi::request::{Request, Scope};
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use mpi::Threading;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::Instant;

/// What the rest of the process asks of the communication thread.
pub(super) enum Command {
    /// Bucket `index`'s weighted gradients, final since `ready`.
    Bucket {
        index: usize,
        values: Vec<f32>,
        ready: Instant,
    },
    /// The end of a step, from the training thread: its weighted loss and whether it
    /// failed. Answered once every bucket and the status have been reduced.
    Finish {
        loss: f64,
        failed: bool,
        reply: Sender<Reduced>,
    },
    /// Rank 0's `values`, on every rank.
    Broadcast {
        values: Vec<f32>,
        reply: Sender<Vec<f32>>,
    },
    /// Every rank's `value`, in rank order.
    AllGather { value: u64, reply: Sender<Vec<u64>> },
    /// New buckets, from the next step on (between steps only).
    Layout(Vec<Layout>),
    /// Prints `message` and aborts the whole job.
    Abort { message: String },
    /// Ends the thread, finalising MPI.
    Shutdown,
}

/// A finished step.
pub(super) struct Reduced {
    /// Per bucket: the sum over ranks of the weighted gradients.
    pub buckets: Vec<Vec<f32>>,
    /// The sum over ranks of the weighted losses.
    pub loss: f64,
    /// The ranks that reported a failure in this step.
    pub failed_ranks: Vec<usize>,
    /// Per bucket, its allreduce.
    pub spans: Vec<CommSpan>,
}

/// Where this process stands in the job, as MPI told the communication thread.
#[derive(Clone, Copy, Debug)]
pub(super) struct Placement {
    pub rank: usize,
    pub size: usize,
}

/// Starts the communication thread: it initialises MPI and reports this rank's placement,
/// then serves `commands` until `Shutdown` (or until every sender is gone).
pub(super) fn start(
    layouts: Vec<Layout>,
    config: DistributedConfig,
    commands: Receiver<Command>,
) -> Result<(Placement, std::thread::JoinHandle<()>)> {
    let (placed, placement) = std::sync::mpsc::channel();
    let handle = std::thread::Builder::new()
        .name("backflow-mpi".into())
        .spawn(move || {
            // NOTE: MPI_Init_thread runs on this thread, which makes it MPI's main thread:
            // Funneled then allows exactly what this thread does, every call from here.
            let Some((universe, level)) = mpi::initialize_with_threading(Threading::Funneled)
            else {
                let _ = placed.send(Err(invalid(
                    "MPI is already initialised in this process: one DataParallel per process"
                        .into(),
                )));
                return;
            };
            if level == Threading::Single {
                let _ = placed.send(Err(invalid(format!(
                    "the MPI library provides only {level:?} threading; Funneled is needed"
                ))));
                return;
            }
            let world = universe.world();
            let placement = Placement {
                rank: world.rank() as usize,
                size: world.size() as usize,
            };
            let _ = placed.send(Ok(placement));
            Comm {
                world,
                placement,
                layouts,
                config,
                commands,
                step: 0,
            }
            .serve();
            drop(universe); // MPI_Finalize
        })
        .map_err(|e| invalid(format!("cannot start the communication thread: {e}")))?;
    match placement.recv() {
        Ok(Ok(p)) => Ok((p, handle)),
        Ok(Err(e)) => {
            let _ = handle.join();
            Err(e)
        }
        Err(_) => {
            let _ = handle.join();
            Err(invalid("MPI failed to initialise".into()))
        }
    }
}

fn invalid(message: String) -> Error {
    Error::Invalid {
        op: "distributed",
        message,
    }
}

/// The communication thread's state.
struct Comm {
    world: SimpleCommunicator,
    placement: Placement,
    layouts: Vec<Layout>,
    config: DistributedConfig,
    commands: Receiver<Command>,
    /// Steps finished so far (for messages).
    step: usize,
}

impl Comm {
    fn serve(&mut self) {
        while let Ok(command) = self.commands.recv() {
            match command {
                Command::Shutdown => return,
                Command::Layout(layouts) => self.layouts = layouts,
                Command::Abort { message } => self.abort(&message),
                Command::Broadcast { mut values, reply } => {
                    mpi::request::scope(|scope| {
                        let root = self.world.process_at_rank(0);
                        let request = root.immediate_broadcast_into(scope, &mut values[..]);
                        self.wait("broadcast", request);
                    });
                    let _ = reply.send(values);
                }
                Command::AllGather { value, reply } => {
                    let mut all = vec![0u64; self.placement.size];
                    mpi::request::scope(|scope| {
                        let request =
                            self.world
                                .immediate_all_gather_into(scope, &value, &mut all[..]);
                        self.wait("all-gather", request);
                    });
                    let _ = reply.send(all);
                }
                first @ (Command::Bucket { .. } | Command::Finish { .. }) => {
                    let (reduced, reply) = self.run_step(first);
                    self.step += 1;
                    let _ = reply.send(reduced);
                }
            }
        }
    }

    /// Prints `message` naming this rank and aborts every rank of the job.
    fn abort(&self, message: &str) -> ! {
        eprintln!("rank {}: {message}", self.placement.rank);
        self.world.abort(3)
    }

    /// Polls `request` to completion under the deadline.
    fn wait<'a, D: ?Sized, S: Scope<'a>>(&self, what: &str, mut request: Request<'a, D, S>) {
        let deadline = Instant::now() + self.config.timeout_value();
        loop {
            match request.test() {
                Ok(_) => return,
                Err(r) => request = r,
            }
            if Instant::now() > deadline {
                self.abort(&format!(
                    "the {what} after step {} did not complete within {:?}: another rank \
                     stopped or took another path; aborting the MPI job",
                    self.step,
                    self.config.timeout_value()
                ));
            }
            std::thread::sleep(self.config.poll_interval_value());
        }
    }

    /// One step, from its first command until every bucket and the status are reduced.
    fn run_step(&self, first: Command) -> (Reduced, Sender<Reduced>) {
        let n = self.layouts.len();
        let size = self.placement.size;
        let mut sends: Vec<Vec<f32>> = vec![Vec::new(); n];
        let mut recvs: Vec<Vec<f32>> = self.layouts.iter().map(|l| vec![0.0; l.len]).collect();
        // [weighted loss, then one failure flag per rank].
        let mut status_send = vec![0.0f64; size + 1];
        let mut status_recv = vec![0.0f64; size + 1];
        let mut spans: Vec<Option<CommSpan>> = vec![None; n];
        let reply = self.step_in_scope(
            first,
            &mut sends,
            &mut recvs,
            &mut status_send,
            &mut status_recv,
            &mut spans,
        );
        let reduced = Reduced {
            buckets: recvs,
            loss: status_recv[0],
            failed_ranks: (0..size).filter(|&r| status_recv[r + 1] != 0.0).collect(),
            spans: spans.into_iter().flatten().collect(),
        };
        (reduced, reply)
    }

    fn step_in_scope(
        &self,
        first: Command,
        sends: &mut [Vec<f32>],
        recvs: &mut [Vec<f32>],
        status_send: &mut [f64],
        status_recv: &mut [f64],
        spans: &mut [Option<CommSpan>],
    ) -> Sender<Reduced> {
        let n = self.layouts.len();
        let rank = self.placement.rank;
        mpi::request::scope(move |scope| {
            // Each buffer is lent to exactly one request, for the whole scope.
            let mut send_slots: Vec<Option<&mut Vec<f32>>> =
                IntoIterator::into_iter(sends).map(Some).collect();
            let mut recv_slots: Vec<Option<&mut Vec<f32>>> =
                IntoIterator::into_iter(recvs).map(Some).collect();
            let mut status_send = Some(status_send);
            let mut status_recv = Some(status_recv);
            let mut arrived: Vec<Option<(Vec<f32>, Instant)>> = (0..n).map(|_| None).collect();
            let mut started: Vec<Option<(Instant, Instant)>> = vec![None; n];
            let mut in_flight: Vec<(usize, Request<'_, [f32], _>)> = Vec::new();
            let mut status: Option<Request<'_, [f64], _>> = None;
            let mut status_done = false;
            let mut finish: Option<Sender<Reduced>> = None;
            let mut deadline: Option<Instant> = None;
            let mut next = 0;
            let mut pending = Some(first);
            loop {
                while let Some(command) = pending.take().or_else(|| self.commands.try_recv().ok()) {
                    match command {
                        Command::Bucket {
                            index,
                            values,
                            ready,
                        } => arrived[index] = Some((values, ready)),
                        Command::Finish {
                            loss,
                            failed,
                            reply,
                        } => {
                            let s = status_send.as_deref_mut().expect("one Finish per step");
                            s.fill(0.0);
                            s[0] = loss;
                            s[rank + 1] = if failed { 1.0 } else { 0.0 };
                            finish = Some(reply);
                            deadline = Some(Instant::now() + self.config.timeout_value());
                        }
                        Command::Abort { message } => self.abort(&message),
                        Command::Broadcast { .. }
                        | Command::AllGather { .. }
                        | Command::Layout(_) => self.abort(
                            "a broadcast, gather or new layout was asked in the middle of a step (between \
                             backward and synchronize); aborting the MPI job",
                        ),
                        Command::Shutdown => self.abort(
                            "DataParallel was dropped in the middle of a step; aborting the MPI job",
                        ),
                    }
                }
                // Start the arrived buckets, in bucket order.
                while next < n {
                    let Some((values, ready)) = arrived[next].take() else {
                        break;
                    };
                    let send = send_slots[next].take().expect("each bucket starts once");
                    *send = values;
                    let send: &Vec<f32> = send;
                    let recv = recv_slots[next].take().expect("each bucket starts once");
                    let request = self.world.immediate_all_reduce_into(
                        scope,
                        &send[..],
                        &mut recv[..],
                        SystemOperation::sum(),
                    );
                    started[next] = Some((ready, Instant::now()));
                    in_flight.push((next, request));
                    next += 1;
                }
                if next == n && finish.is_some() && status.is_none() && !status_done {
                    let send: &[f64] = status_send.take().expect("status starts once");
                    let recv = status_recv.take().expect("status starts once");
                    status = Some(self.world.immediate_all_reduce_into(
                        scope,
                        send,
                        recv,
                        SystemOperation::sum(),
                    ));
                }
                // Poll what is in flight.
                let now = Instant::now();
                let mut still = Vec::with_capacity(in_flight.len());
                for (b, request) in in_flight.drain(..) {
                    match request.test() {
                        Ok(_) => {
                            let (ready, start) = started[b].expect("started before it finished");
                            spans[b] = Some(CommSpan {
                                bucket: b,
                                bytes: self.layouts[b].len * std::mem::size_of::<f32>(),
                                ready,
                                started: start,
                                finished: now,
                            });
                        }
                        Err(request) => still.push((b, request)),
                    }
                }
                in_flight = still;
                if let Some(request) = status.take() {
                    match request.test() {
                        Ok(_) => status_done = true,
                        Err(request) => status = Some(request),
                    }
                }
                if status_done && in_flight.is_empty() {
                    return finish.expect("the status follows Finish");
                }
                if deadline.is_some_and(|d| now > d) {
                    self.abort(&format!(
                        "step {}: the allreduce did not complete within {:?} (buckets started \
                         {next} of {n}, {} in flight; status {}): another rank stopped or is \
                         stuck; aborting the MPI job",
                        self.step + 1,
                        self.config.timeout_value(),
                        in_flight.len(),
                        if status_done { "done" } else { "pending" },
                    ));
                }
                let wait = if in_flight.is_empty() && status.is_none() {
                    // Nothing in flight: sleep until the next command (bounded by the
                    // deadline, once the training thread waits).
                    deadline.map_or(self.config.timeout_value(), |d| {
                        d.saturating_duration_since(now)
                    })
                } else {
                    self.config.poll_interval_value()
                };
                match self.commands.recv_timeout(wait) {
                    Ok(command) => pending = Some(command),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => self.abort(
                        "DataParallel went away in the middle of a step; aborting the MPI job",
                    ),
                }
            }
        })
    }
}
