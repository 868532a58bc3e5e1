//! API fuzzing: random programs of public ops over random shapes up to the edges
//! (0, 1, and dimensions whose product overflows `usize`), random broadcasting, NaN and
//! infinite values, injected backward faults and hooks, each differentiated under every
//! scheduler (Dfs, Kahn, Parallel).
//!
//! Invariants checked for every program:
//! - no crash, hang or undocumented panic: every call goes through its fallible form and
//!   runs under `catch_unwind` (the documented panics of `zeros` are checked for their
//!   message); a watchdog thread aborts the run if a case makes no progress for minutes;
//! - every error names its op (`"{op}: …"`, or `"backward…"` for the pass);
//! - a successful pass has finite gradients where the inputs are finite, for programs that
//!   avoid the ops whose derivative is unbounded on finite inputs (`div`, `ln`, `sqrt`,
//!   `powf` with an exponent below 1) and whose forward values stay within ±1e6 (so no
//!   product of at most a dozen local derivatives can overflow f64);
//! - a failed pass leaves every leaf gradient bitwise unchanged;
//! - the three schedulers agree bitwise on success.
//!
//! The seed is fixed (`RngSeed::Fixed`), so a run is reproducible; failures shrink to a
//! minimal program and are printed.

use backflow::nn::linear;
use backflow::{BackwardOptions, Error, Scheduler, Tensor};
use backflow_kernels::{broadcast_shapes, checked_numel};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{RngSeed, TestRunner};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

type T = Tensor<f64>;

/// Dimensions: mostly small, sometimes 0, sometimes large enough that products overflow.
fn dim() -> impl Strategy<Value = usize> {
    prop_oneof![
        3 => Just(0usize),
        8 => Just(1usize),
        8 => Just(2usize),
        6 => Just(3usize),
        1 => Just(1usize << 32),
        1 => Just(274_177usize),
        1 => Just(67_280_421_310_721usize),
        1 => Just(usize::MAX),
    ]
}

fn shape() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(dim(), 0..4)
}

/// Element values: mostly finite and small, sometimes NaN or infinite.
fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        30 => -2.0f64..2.0,
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
    ]
}

#[derive(Clone, Copy, Debug)]
enum Un {
    Neg,
    Sin,
    Cos,
    Tanh,
    Sigmoid,
    Relu,
    Exp,
    Ln,
    Sqrt,
    Powf(f64),
    Sum,
    Mean,
    Softmax,
    LogSoftmax,
    T,
    Affine(f64, f64),
    RequiresGrad,
    Detach,
}

#[derive(Clone, Copy, Debug)]
enum Bin {
    Add,
    Sub,
    Mul,
    Div,
    Matmul,
    Linear,
    LinearBias,
}

/// How an injected custom op's backward misbehaves.
#[derive(Clone, Copy, Debug)]
enum Fault {
    Err,
    WrongCount,
    WrongShape,
    Panic,
    HookWrongShape,
    /// A well-behaved custom op (identity), as a control.
    Clean,
}

#[derive(Clone, Debug)]
enum Op {
    Unary(Un, Index),
    Binary(Bin, Index, Index),
    SumAxis(Index, usize),
    Transpose(Index, usize, usize),
    Reshape(Index, Vec<usize>),
    /// Reshape to the input's own element count, laid out differently.
    ReshapeSame(Index, usize),
    BroadcastTo(Index, Vec<usize>),
    /// Broadcast to the input's shape with its 1s stretched and a dimension prepended.
    BroadcastGrow(Index, Vec<usize>),
    SumTo(Index, Vec<usize>),
    Concat(Index, Index, usize),
    Constant(Vec<usize>, u64),
    Zeros(Vec<usize>),
    Custom(Index, Fault),
    Hook(Index),
}

fn unary() -> impl Strategy<Value = Un> {
    use Un::*;
    prop_oneof![
        Just(Neg),
        Just(Sin),
        Just(Cos),
        Just(Tanh),
        Just(Sigmoid),
        Just(Relu),
        Just(Exp),
        Just(Ln),
        Just(Sqrt),
        prop::sample::select(vec![0.0, 1.0, 2.0, 3.0, 0.5, -1.0]).prop_map(Powf),
        Just(Sum),
        Just(Mean),
        Just(Softmax),
        Just(LogSoftmax),
        Just(T),
        (-1.5f64..1.5, -1.0f64..1.0).prop_map(|(c, d)| Affine(c, d)),
        Just(RequiresGrad),
        Just(Detach),
    ]
}

fn binary() -> impl Strategy<Value = Bin> {
    use Bin::*;
    prop_oneof![
        Just(Add),
        Just(Sub),
        Just(Mul),
        Just(Div),
        Just(Matmul),
        Just(Linear),
        Just(LinearBias)
    ]
}

fn fault() -> impl Strategy<Value = Fault> {
    use Fault::*;
    prop_oneof![
        1 => Just(Err),
        1 => Just(WrongCount),
        1 => Just(WrongShape),
        1 => Just(Panic),
        1 => Just(HookWrongShape),
        2 => Just(Clean),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let i = any::<Index>;
    prop_oneof![
        8 => (unary(), i()).prop_map(|(u, a)| Op::Unary(u, a)),
        8 => (binary(), i(), i()).prop_map(|(b, x, y)| Op::Binary(b, x, y)),
        2 => (i(), 0usize..4).prop_map(|(a, ax)| Op::SumAxis(a, ax)),
        1 => (i(), 0usize..4, 0usize..4).prop_map(|(a, x, y)| Op::Transpose(a, x, y)),
        1 => (i(), shape()).prop_map(|(a, s)| Op::Reshape(a, s)),
        1 => (i(), 0usize..3).prop_map(|(a, k)| Op::ReshapeSame(a, k)),
        1 => (i(), shape()).prop_map(|(a, s)| Op::BroadcastTo(a, s)),
        2 => (i(), prop::collection::vec(dim(), 1..3)).prop_map(|(a, s)| Op::BroadcastGrow(a, s)),
        1 => (i(), shape()).prop_map(|(a, s)| Op::SumTo(a, s)),
        2 => (i(), i(), 0usize..4).prop_map(|(a, b, ax)| Op::Concat(a, b, ax)),
        1 => (shape(), any::<u64>()).prop_map(|(s, seed)| Op::Constant(s, seed)),
        1 => shape().prop_map(Op::Zeros),
        2 => (i(), fault()).prop_map(|(a, f)| Op::Custom(a, f)),
        1 => i().prop_map(Op::Hook),
    ]
}

#[derive(Clone, Debug)]
struct Leaf {
    shape: Vec<usize>,
    values: Vec<f64>,
    requires_grad: bool,
}

fn leaf() -> impl Strategy<Value = Leaf> {
    (
        shape(),
        prop::collection::vec(value(), 1..16),
        prop::bool::weighted(0.85),
    )
        .prop_map(|(shape, values, requires_grad)| Leaf {
            shape,
            values,
            requires_grad,
        })
}

#[derive(Clone, Debug)]
struct Program {
    leaves: Vec<Leaf>,
    ops: Vec<Op>,
}

fn program() -> impl Strategy<Value = Program> {
    (
        prop::collection::vec(leaf(), 1..4),
        prop::collection::vec(op(), 0..12),
    )
        .prop_map(|(leaves, ops)| Program { leaves, ops })
}

/// The error's text must name its op: `"{op}: …"` for a forward op, `backward…` for a pass.
fn names_op(e: &Error, ops: &[&str]) -> Result<(), TestCaseError> {
    let msg = e.to_string();
    let ok = ops.iter().any(|op| msg.starts_with(&format!("{op}:")))
        || msg.starts_with("backward")
        || msg.starts_with("trace:");
    prop_assert!(ok, "error does not name its op (one of {:?}): {}", ops, msg);
    Ok(())
}

/// Runs `f`, turning a panic into a test failure that says where.
fn no_panic<R>(what: &str, f: impl FnOnce() -> R) -> Result<R, TestCaseError> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|p| {
        let msg = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        TestCaseError::fail(format!("undocumented panic in {what}: {msg}"))
    })
}

/// What building a program left: its tensors, leaves, and whether the finite-gradient
/// invariant applies.
struct Built {
    pool: Vec<T>,
    leaves: Vec<T>,
    bounded: bool,
}

/// The element count of `shape` when it is small enough to allocate in a test.
fn small(shape: &[usize]) -> Option<usize> {
    checked_numel(shape).filter(|&n| n <= LIMIT)
}

/// The most elements a fuzzed tensor may have: larger valid shapes are skipped, not
/// allocated (only their overflowing cousins are errors to check).
const LIMIT: usize = 4096;

/// Whether `shape` fits in memory but is too large to allocate here.
fn large(shape: &[usize]) -> bool {
    checked_numel(shape).is_some_and(|n| n > LIMIT)
}

/// Whether an op whose output has `shape` (if it succeeds) must be skipped.
fn skip(shape: Option<Vec<usize>>) -> bool {
    shape.is_some_and(|s| large(&s))
}

/// The output shape of `matmul`/`linear` of `x` and `y` (`y` transposed for linear).
fn product_shape(x: &T, y: &T, transposed: bool) -> Option<Vec<usize>> {
    match (x.shape(), y.shape()) {
        (&[m, _], &[k, n]) => Some(vec![m, if transposed { k } else { n }]),
        _ => None,
    }
}

fn build(p: &Program) -> Result<Built, TestCaseError> {
    let mut pool: Vec<T> = Vec::new();
    let mut leaves = Vec::new();
    let mut bounded = true;
    for l in &p.leaves {
        let Some(n) = small(&l.shape) else {
            if checked_numel(&l.shape).is_none() {
                // Overflowing: the fallible constructor must say so.
                let r = no_panic("try_zeros", || T::try_zeros(&l.shape))?;
                prop_assert!(r.is_err(), "try_zeros({:?}) succeeded", l.shape);
                check_named(&r, "zeros")?;
            }
            continue;
        };
        let data: Vec<f64> = (0..n).map(|i| l.values[i % l.values.len()]).collect();
        bounded &= data.iter().all(|v| v.is_finite());
        let t = no_panic("from_vec", || T::from_vec(data, &l.shape))?
            .map_err(|e| TestCaseError::fail(format!("from_vec of a fitting shape: {e}")))?;
        let t = if l.requires_grad {
            t.requires_grad()
        } else {
            t
        };
        if l.requires_grad {
            leaves.push(t.clone());
        }
        pool.push(t);
    }
    if pool.is_empty() {
        pool.push(T::scalar(1.0).requires_grad());
        leaves.push(pool[0].clone());
    }
    for op in &p.ops {
        let pick = |i: &Index| pool[i.index(pool.len())].clone();
        let result: Result<T, Error> = match op {
            Op::Unary(u, a) => {
                let x = pick(a);
                bounded &= !matches!(u, Un::Ln | Un::Sqrt)
                    && !matches!(u, Un::Powf(p) if *p < 1.0 && *p != 0.0);
                // requires_grad on a tensor outside the graph starts a new leaf.
                let fresh = matches!(u, Un::RequiresGrad) && !x.needs_grad();
                let r = no_panic("unary", || match *u {
                    Un::Neg => Ok(-&x),
                    Un::Sin => Ok(x.sin()),
                    Un::Cos => Ok(x.cos()),
                    Un::Tanh => Ok(x.tanh()),
                    Un::Sigmoid => Ok(x.sigmoid()),
                    Un::Relu => Ok(x.relu()),
                    Un::Exp => Ok(x.exp()),
                    Un::Ln => Ok(x.ln()),
                    Un::Sqrt => Ok(x.sqrt()),
                    Un::Powf(p) => Ok(x.powf(p)),
                    Un::Sum => Ok(x.sum()),
                    Un::Mean => Ok(x.mean()),
                    Un::Softmax => Ok(x.softmax()),
                    Un::LogSoftmax => Ok(x.log_softmax()),
                    Un::T => x.t(),
                    Un::Affine(c, d) => Ok(x.affine(c, d)),
                    Un::RequiresGrad => Ok(x.clone().requires_grad()),
                    Un::Detach => Ok(x.detach()),
                })?;
                if let (true, Ok(t)) = (fresh, &r) {
                    leaves.push(t.clone());
                }
                r
            }
            Op::Binary(b, i, j) => {
                let (x, y) = (pick(i), pick(j));
                let out = match b {
                    Bin::Matmul => product_shape(&x, &y, false),
                    Bin::Linear | Bin::LinearBias => product_shape(&x, &y, true),
                    _ => broadcast_shapes(x.shape(), y.shape()),
                };
                if skip(out) {
                    continue;
                }
                bounded &= !matches!(b, Bin::Div);
                let r = no_panic("binary", || match b {
                    Bin::Add => x.try_add(&y),
                    Bin::Sub => x.try_sub(&y),
                    Bin::Mul => x.try_mul(&y),
                    Bin::Div => x.try_div(&y),
                    Bin::Matmul => x.matmul(&y),
                    Bin::Linear => linear(&x, &y, None),
                    Bin::LinearBias => {
                        let rows = y.shape().first().copied().unwrap_or(1);
                        let bias = if rows <= 4096 {
                            T::try_zeros(&[rows])?
                        } else {
                            T::scalar(0.0)
                        };
                        linear(&x, &y, Some(&bias))
                    }
                })?;
                if let Err(e) = &r {
                    names_op(
                        e,
                        &["add", "sub", "mul", "div", "matmul", "linear", "zeros"],
                    )?;
                }
                r
            }
            Op::SumAxis(a, axis) => {
                let x = pick(a);
                // From no elements, a valid but huge output (it would abort on allocation
                // failure, as any Vec does).
                let mut out = x.shape().to_vec();
                if *axis < out.len() {
                    out.remove(*axis);
                }
                if large(&out) {
                    continue;
                }
                let r = no_panic("sum_axis", || x.sum_axis(*axis))?;
                check_named(&r, "sum_axis")?;
                r
            }
            Op::Transpose(a, d0, d1) => {
                let x = pick(a);
                let r = no_panic("transpose", || x.transpose(*d0, *d1))?;
                check_named(&r, "transpose")?;
                r
            }
            Op::Reshape(a, s) => {
                let x = pick(a);
                let r = no_panic("reshape", || x.reshape(s))?;
                check_named(&r, "reshape")?;
                r
            }
            Op::ReshapeSame(a, k) => {
                let x = pick(a);
                let n = x.numel();
                let s = match k {
                    0 => vec![n],
                    1 => vec![1, n, 1],
                    _ if n == 0 => vec![0, usize::MAX],
                    _ => vec![n, 1],
                };
                let r = no_panic("reshape", || x.reshape(&s))?;
                prop_assert!(r.is_ok(), "reshape of {:?} to {:?}: {:?}", x.shape(), s, r);
                r
            }
            Op::BroadcastTo(a, s) => {
                let x = pick(a);
                if large(s) {
                    continue;
                }
                let r = no_panic("broadcast_to", || x.broadcast_to(s))?;
                check_named(&r, "broadcast_to")?;
                r
            }
            Op::BroadcastGrow(a, extra) => {
                let x = pick(a);
                let mut s = vec![extra[0]];
                s.extend(x.shape().iter().enumerate().map(|(i, &d)| {
                    if d == 1 {
                        extra[i % extra.len()]
                    } else {
                        d
                    }
                }));
                if large(&s) {
                    continue;
                }
                let r = no_panic("broadcast_to", || x.broadcast_to(&s))?;
                check_named(&r, "broadcast_to")?;
                r
            }
            Op::SumTo(a, s) => {
                let x = pick(a);
                if large(s) {
                    continue;
                }
                let r = no_panic("sum_to", || x.sum_to(s))?;
                check_named(&r, "sum_to")?;
                r
            }
            Op::Concat(i, j, axis) => {
                let (x, y) = (pick(i), pick(j));
                let r = no_panic("concat", || T::concat(&[&x, &y], *axis))?;
                check_named(&r, "concat")?;
                r
            }
            Op::Constant(s, seed) => {
                // Through the panicking constructor, whose panic is documented: it must name
                // the op and the shape.
                if large(s) {
                    continue;
                }
                match catch_unwind(|| T::randn(s, *seed)) {
                    Ok(t) => Ok(t.affine(0.5, 0.0)),
                    Err(p) => {
                        let msg = p.downcast_ref::<String>().cloned().unwrap_or_default();
                        prop_assert!(
                            msg.starts_with(&format!("randn: shape {s:?}")),
                            "undocumented panic in randn({:?}): {}",
                            s,
                            msg
                        );
                        continue;
                    }
                }
            }
            Op::Zeros(s) => {
                if large(s) {
                    continue;
                }
                if checked_numel(s).is_none() {
                    let r = no_panic("try_zeros", || T::try_zeros(s))?;
                    prop_assert!(r.is_err(), "try_zeros({:?}) succeeded", s);
                    check_named(&r, "zeros")?;
                    continue;
                }
                Ok(T::zeros(s))
            }
            Op::Custom(a, fault) => {
                let x = pick(a);
                Ok(custom(&x, *fault))
            }
            Op::Hook(a) => {
                let x = pick(a);
                x.register_hook(|g| Some(g * 1.0));
                continue;
            }
        };
        match result {
            Ok(t) => {
                if !t.data().iter().all(|v| v.is_finite() && v.abs() <= 1e6) {
                    bounded = false;
                }
                pool.push(t);
            }
            Err(e) => {
                count(&COVERAGE.forward_errors);
                names_op(
                    &e,
                    &[
                        "t",
                        "add",
                        "sub",
                        "mul",
                        "div",
                        "matmul",
                        "linear",
                        "sum_axis",
                        "transpose",
                        "reshape",
                        "broadcast_to",
                        "sum_to",
                        "concat",
                        "zeros",
                    ],
                )?;
            }
        }
    }
    Ok(Built {
        pool,
        leaves,
        bounded,
    })
}

fn check_named(r: &Result<T, Error>, op: &str) -> Result<(), TestCaseError> {
    match r {
        Ok(_) => Ok(()),
        Err(e) => names_op(e, &[op]),
    }
}

/// An identity custom op whose backward misbehaves as `fault` says.
fn custom(x: &T, fault: Fault) -> T {
    let shape = x.shape().to_vec();
    let y = T::from_op(
        "fuzz_custom",
        x.to_vec(),
        shape,
        &[x],
        move |gy, _| match fault {
            Fault::Err => Err(Error::Invalid {
                op: "fuzz_custom",
                message: "injected".into(),
            }),
            Fault::WrongCount => Ok(vec![Some(gy.clone()), None]),
            Fault::WrongShape => Ok(vec![Some(T::zeros(&[gy.numel() + 1]))]),
            Fault::Panic => panic!("injected panic"),
            Fault::HookWrongShape | Fault::Clean => Ok(vec![Some(gy.clone())]),
        },
    );
    if let Fault::HookWrongShape = fault {
        let n = y.numel();
        y.register_hook(move |_| Some(T::zeros(&[n + 1, 2])));
    }
    y
}

/// Each leaf's gradient as bits (NaN-exact), `None` when it has none.
fn snapshot(leaves: &[T]) -> Vec<Option<Vec<u64>>> {
    leaves
        .iter()
        .map(|l| {
            l.grad()
                .map(|g| g.data().iter().map(|v| v.to_bits()).collect())
        })
        .collect()
}

fn schedulers() -> Vec<BackwardOptions> {
    vec![
        BackwardOptions::new().scheduler(Scheduler::Dfs),
        BackwardOptions::new().scheduler(Scheduler::Kahn),
        BackwardOptions::new()
            .scheduler(Scheduler::Parallel)
            .threads(2),
    ]
}

fn check_program(p: &Program) -> Result<(), TestCaseError> {
    heartbeat();
    *CURRENT.lock().unwrap() = format!("{p:?}");
    let built = build(p)?;
    let Some(last) = built.pool.iter().rev().find(|t| t.needs_grad()) else {
        return Ok(());
    };
    let root = no_panic("sum", || last.sum())?;
    // A pass over every leaf that cannot fail, to give each a gradient before the real one.
    let prime = built
        .leaves
        .iter()
        .map(|l| l.sum())
        .reduce(|a, b| &a + &b)
        .expect("at least one leaf");
    let mut results: Vec<Result<Vec<Option<Vec<u64>>>, String>> = Vec::new();
    for opts in schedulers() {
        heartbeat();
        let opts = opts.retain_graph(true);
        built.leaves.iter().for_each(T::zero_grad);
        no_panic("priming backward", || prime.backward_with(&opts))?
            .map_err(|e| TestCaseError::fail(format!("priming pass failed: {e}")))?;
        let before = snapshot(&built.leaves);
        let r = no_panic("backward", || root.backward_with(&opts))?;
        let after = snapshot(&built.leaves);
        match r {
            Err(e) => {
                // A backward's own error is passed through as it is (it names its op).
                names_op(&e, &["fuzz_custom"])?;
                prop_assert_eq!(
                    &before,
                    &after,
                    "{:?}: a failed pass ({}) changed gradients",
                    opts.get_scheduler(),
                    e
                );
                count(&COVERAGE.passes_failed);
                results.push(Err(e.to_string()));
            }
            Ok(()) => {
                count(&COVERAGE.passes_ok);
                if built.bounded {
                    count(&COVERAGE.finite_checked);
                    for (l, g) in built.leaves.iter().zip(&after) {
                        let finite = g.iter().flatten().all(|&b| f64::from_bits(b).is_finite());
                        prop_assert!(
                            finite,
                            "{:?}: non-finite gradient for a leaf of shape {:?} from finite inputs",
                            opts.get_scheduler(),
                            l.shape()
                        );
                    }
                }
                results.push(Ok(after));
            }
        }
    }
    // Every scheduler succeeds or fails alike, and agrees bitwise on success.
    let oks: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    prop_assert!(
        oks.is_empty() || oks.len() == results.len(),
        "schedulers disagree on failing: {:?}",
        results.iter().map(Result::is_ok).collect::<Vec<_>>()
    );
    for ok in &oks[1.min(oks.len())..] {
        prop_assert_eq!(*ok, oks[0], "schedulers disagree on gradients");
    }
    Ok(())
}

/// The program being checked, for the watchdog's report.
static CURRENT: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());

/// Seconds since the watchdog started at the last sign of progress.
static HEARTBEAT: AtomicU64 = AtomicU64::new(0);

/// Marks progress, starting the watchdog on first use: if no case progresses for
/// `HANG_LIMIT`, it reports and aborts the process, so a hang fails the run instead of
/// blocking it.
fn heartbeat() {
    const HANG_LIMIT: Duration = Duration::from_secs(120);
    static START: OnceLock<Instant> = OnceLock::new();
    let start = *START.get_or_init(|| {
        let start = Instant::now();
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_secs(1));
            let last = Duration::from_secs(HEARTBEAT.load(Ordering::Relaxed));
            if start.elapsed().saturating_sub(last) > HANG_LIMIT {
                let current = CURRENT.lock().map(|c| c.clone()).unwrap_or_default();
                eprintln!("fuzz_api watchdog: no progress for {HANG_LIMIT:?}; this case hangs:\n{current}");
                std::process::abort();
            }
        });
        start
    });
    HEARTBEAT.store(start.elapsed().as_secs(), Ordering::Relaxed);
}

/// How many cases exercised each outcome, to check that the generator reaches them all.
#[derive(Default)]
struct Coverage {
    forward_errors: AtomicU64,
    passes_ok: AtomicU64,
    passes_failed: AtomicU64,
    finite_checked: AtomicU64,
}

static COVERAGE: Coverage = Coverage {
    forward_errors: AtomicU64::new(0),
    passes_ok: AtomicU64::new(0),
    passes_failed: AtomicU64::new(0),
    finite_checked: AtomicU64::new(0),
};

fn count(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

#[test]
fn random_programs_keep_the_api_invariants() {
    let config = ProptestConfig {
        cases: 65_536,
        rng_seed: RngSeed::Fixed(0x6861_7264_656e_3132),
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    // The injected panics and the documented ones of `randn` are expected: keep them quiet.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let msg = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg != "injected panic" && !msg.starts_with("randn: shape") {
            default_hook(info);
        }
    }));
    let mut runner = TestRunner::new(config);
    if let Err(e) = runner.run(&program(), |p| check_program(&p)) {
        panic!("{e}");
    }
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let c = &COVERAGE;
    let (errors, ok, failed, finite) = (
        get(&c.forward_errors),
        get(&c.passes_ok),
        get(&c.passes_failed),
        get(&c.finite_checked),
    );
    eprintln!(
        "fuzz_api: {errors} forward errors, {ok} passes succeeded ({finite} checked finite), \
         {failed} failed"
    );
    // The generator must reach every outcome, or the invariants are checked on nothing.
    assert!(errors > 10_000 && ok > 40_000 && failed > 4000 && finite > 20_000);
}
