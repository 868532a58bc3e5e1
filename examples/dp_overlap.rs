//! Data-parallel T1 steps over MPI (feature `mpi`): how much of the allreduce hides behind
//! backward, the step time, and a Chrome/Perfetto trace of one step with the backward
//! pass's node spans and each bucket's allreduce on a lane of its own.
//!
//! Run under mpirun, and once without it for the one-process baseline:
//!
//! ```text
//! cargo build --release --features mpi --example dp_overlap
//! mpirun --allow-run-as-root --oversubscribe -np 2 target/release/examples/dp_overlap \
//!     --threads 1 --trace target/dp_trace.json            # buckets, overlapped
//! mpirun ... target/release/examples/dp_overlap --threads 1 --whole   # one bucket, after backward
//! target/release/examples/dp_overlap --local --threads 2  # one process, no MPI, batch 64
//! ```
//!
//! Flags: `--steps N` measured steps (default 300, after 20 warm-up steps), `--threads T`
//! per rank, `--bucket-kib K` (default 128), `--whole` (one bucket, reduced after
//! backward), `--registration` (buckets in reverse registration order), `--trace FILE`
//! (rank 0 writes the trace of the last step), `--local`. Rank 0 prints one line:
//! `mode, ranks, median step ms, mean hidden share, median wait ms, buckets`.

use backflow::distributed::{DataParallel, DistributedConfig, StepReport};
use backflow::nn::{cross_entropy, Adam, Module, Optimizer};
use backflow::{BackwardOptions, Result, Scheduler, Tensor};
use backflow_app::data::{self, DIGITS_CLASSES, DIGITS_FEATURES};
use backflow_app::train::wide_model;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const WARMUP: usize = 20;

struct Args {
    steps: usize,
    threads: usize,
    bucket_kib: usize,
    whole: bool,
    registration: bool,
    trace: Option<String>,
    local: bool,
}

fn parse() -> Args {
    let mut a = Args {
        steps: 300,
        threads: 1,
        bucket_kib: 128,
        whole: false,
        registration: false,
        trace: None,
        local: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--steps" => a.steps = value().parse().expect("--steps: a whole number"),
            "--threads" => a.threads = value().parse().expect("--threads: a whole number"),
            "--bucket-kib" => a.bucket_kib = value().parse().expect("--bucket-kib: a number"),
            "--trace" => a.trace = Some(value()),
            "--whole" => a.whole = true,
            "--registration" => a.registration = true,
            "--local" => a.local = true,
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

/// One step's timeline, for the trace.
struct Timeline {
    forward_end: Instant,
    backward_end: Instant,
    sync_end: Instant,
    end: Instant,
}

fn main() -> Result<()> {
    let args = parse();
    // The forward branches run on the executor's threads, at most `--threads` of them.
    backflow::with_threads(args.threads, || run(&args))
}

fn run(args: &Args) -> Result<()> {
    let (train, _) = data::digits()?.split(0.8, 0);
    let batches: Vec<data::Batch> = train.batches(64, 1).filter(|b| b.y.len() == 64).collect();
    let model = wide_model(DIGITS_FEATURES, 16, 64, DIGITS_CLASSES, 0);
    let mut opt = Adam::new(model.parameters(), 1e-2);
    let mut dp = if args.local {
        None
    } else {
        let config = if args.whole {
            DistributedConfig::new()
                .bucket_bytes(usize::MAX)
                .overlap(false)
        } else {
            DistributedConfig::new()
                .bucket_bytes(args.bucket_kib * 1024)
                .observed_order(!args.registration)
        };
        Some(DataParallel::new(model.parameters(), config)?)
    };
    let opts = BackwardOptions::new()
        .scheduler(Scheduler::Parallel)
        .threads(args.threads);
    let trace_file = std::env::temp_dir().join(format!("dp-overlap-{}.json", std::process::id()));
    let (mut times, mut shares, mut waits) = (Vec::new(), Vec::new(), Vec::new());
    let mut last: Option<(Timeline, Option<StepReport>)> = None;
    let root_seen = Arc::new(Mutex::new(None::<Instant>));
    for step in 0..WARMUP + args.steps {
        let batch = &batches[step % batches.len()];
        let traced = step + 1 == WARMUP + args.steps;
        let start = Instant::now();
        let rows = dp.as_ref().map_or(0..64, |dp| dp.shard(64));
        let x = Tensor::from_vec(
            batch.x.data()[rows.start * DIGITS_FEATURES..rows.end * DIGITS_FEATURES].to_vec(),
            &[rows.len(), DIGITS_FEATURES],
        )?;
        let loss = cross_entropy(&model.forward(&x)?, &batch.y[rows])?;
        let forward_end = Instant::now();
        if traced && args.trace.is_some() {
            // A hook on the root runs inside the pass's first span: it ties the engine's
            // trace clock (from its own start) to ours.
            let seen = Arc::clone(&root_seen);
            loss.register_hook(move |_| {
                *seen.lock().unwrap() = Some(Instant::now());
                None
            });
            loss.backward_with(&opts.clone().trace(&trace_file))?;
        } else {
            loss.backward_with(&opts)?;
        }
        let backward_end = Instant::now();
        let report = match dp.as_mut() {
            Some(dp) => Some(dp.synchronize(loss.item())?),
            None => None,
        };
        let sync_end = Instant::now();
        opt.step()?;
        let end = Instant::now();
        if step >= WARMUP {
            times.push(end - start);
            if let Some(r) = &report {
                shares.push(r.hidden_share(backward_end));
                waits.push(r.waited);
            }
        }
        last = Some((
            Timeline {
                forward_end,
                backward_end,
                sync_end,
                end,
            },
            report,
        ));
    }
    let rank = dp.as_ref().map_or(0, DataParallel::rank);
    if rank != 0 {
        return Ok(());
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v.get(v.len() / 2).map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    let mode = match (&dp, args.whole, args.registration) {
        (None, ..) => "one process".to_string(),
        (Some(_), true, _) => "one bucket after backward".to_string(),
        (Some(_), false, true) => format!("{} KiB buckets, registration order", args.bucket_kib),
        (Some(_), false, false) => format!("{} KiB buckets, observed order", args.bucket_kib),
    };
    println!(
        "{mode}: ranks {}, threads {}, median step {:.3} ms, hidden {}, median wait {:.3} ms, buckets {}",
        dp.as_ref().map_or(1, DataParallel::world_size),
        args.threads,
        median(&mut times),
        if shares.is_empty() {
            "n/a".to_string()
        } else {
            format!("{:.1}%", 100.0 * shares.iter().sum::<f64>() / shares.len() as f64)
        },
        median(&mut waits),
        dp.as_ref().map_or(0, |dp| dp.bucket_bytes().len()),
    );
    if let (Some(path), Some((timeline, report))) = (&args.trace, last) {
        let root = root_seen.lock().unwrap().expect("the root's hook ran");
        write_trace(path, &trace_file, &timeline, root, report.as_ref())?;
        println!("trace of the last step written to {path}");
    }
    Ok(())
}

/// The backward pass's trace, shifted so that every timestamp counts from the end of the
/// forward pass (the engine's count from its own start, which `root` places: the root
/// node's span, the pass's first, began at most a few µs before its hook ran), with a lane
/// for the step's phases and one for the allreduces added.
fn write_trace(
    path: &str,
    backward_trace: &std::path::Path,
    t: &Timeline,
    root: Instant,
    report: Option<&StepReport>,
) -> Result<()> {
    let io = |e: std::io::Error| backflow::Error::io("trace", path, &e);
    let text = std::fs::read_to_string(backward_trace).map_err(io)?;
    let mut json: serde_json::Value = serde_json::from_str(&text).expect("the trace is JSON");
    let events = json["traceEvents"].as_array_mut().expect("traceEvents");
    let first = events
        .iter()
        .filter_map(|e| e["ts"].as_f64())
        .fold(f64::INFINITY, f64::min);
    let shift = (root - t.forward_end).as_secs_f64() * 1e6 - first;
    for e in events.iter_mut() {
        if let Some(ts) = e["ts"].as_f64() {
            e["ts"] = serde_json::json!(ts + shift);
        }
    }
    let us = |at: Instant| {
        if at >= t.forward_end {
            (at - t.forward_end).as_secs_f64() * 1e6
        } else {
            -((t.forward_end - at).as_secs_f64() * 1e6)
        }
    };
    let lane = |tid: u32, name: &str| serde_json::json!({"name":"thread_name","ph":"M","pid":1,"tid":tid,"args":{"name":name}});
    let span = |tid: u32, name: String, cat: &str, a: Instant, b: Instant| {
        serde_json::json!({"name":name,"cat":cat,"ph":"X","pid":1,"tid":tid,
            "ts":us(a),"dur":(b - a).as_secs_f64() * 1e6})
    };
    events.push(lane(900, "step (training thread)"));
    events.push(span(
        900,
        "backward".into(),
        "step",
        t.forward_end,
        t.backward_end,
    ));
    events.push(span(
        900,
        "synchronize (wait)".into(),
        "step",
        t.backward_end,
        t.sync_end,
    ));
    events.push(span(
        900,
        "optimiser step".into(),
        "step",
        t.sync_end,
        t.end,
    ));
    if let Some(report) = report {
        events.push(lane(901, "MPI allreduce (communication thread)"));
        for s in &report.spans {
            events.push(
                serde_json::json!({"name":format!("bucket {} ready", s.bucket),
                "cat":"allreduce","ph":"i","s":"t","pid":1,"tid":901,"ts":us(s.ready)}),
            );
            events.push(span(
                901,
                format!("allreduce bucket {} ({} KiB)", s.bucket, s.bytes / 1024),
                "allreduce",
                s.started,
                s.finished,
            ));
        }
    }
    backflow::io::write_atomic(path, serde_json::to_string(&json).expect("JSON")).map_err(io)?;
    let _ = std::fs::remove_file(backward_trace);
    Ok(())
}
