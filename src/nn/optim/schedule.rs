//! Learning-rate schedules: the rate as a closed-form function of the step
//! ([`LrSchedule`]: [`StepLr`], [`CosineLr`], [`Warmup`]), and [`LrScheduler`], which
//! sets it on an optimiser step by step, as PyTorch's `optim.lr_scheduler` does.

use super::Optimizer;
use crate::{Element, Error, Result};

/// A learning rate as a function of the step count, from the optimiser's initial rate.
pub trait LrSchedule {
    /// The rate for the step that follows `step` completed steps (0 before the first),
    /// given the initial rate `base`.
    fn lr(&self, base: f64, step: u64) -> f64;
}

fn invalid(op: &'static str, message: String) -> Error {
    Error::Invalid { op, message }
}

/// The initial rate throughout: what [`Warmup`] continues with unless given another
/// schedule.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Constant;

impl LrSchedule for Constant {
    fn lr(&self, base: f64, _step: u64) -> f64 {
        base
    }
}

/// Step decay, as PyTorch's `StepLR`: `base · γ^⌊step / step_size⌋`.
///
/// ```
/// use backflow::nn::{LrSchedule, StepLr};
/// let s = StepLr::new(10, 0.5).unwrap();
/// assert_eq!((s.lr(0.1, 9), s.lr(0.1, 10), s.lr(0.1, 25)), (0.1, 0.05, 0.025));
/// assert!(StepLr::new(0, 0.5).is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepLr {
    step_size: u64,
    gamma: f64,
}

impl StepLr {
    /// Multiplies the rate by `gamma` every `step_size` steps. Errs if `step_size` is 0 or
    /// `gamma` is negative or not finite.
    pub fn new(step_size: u64, gamma: f64) -> Result<Self> {
        if step_size == 0 || !gamma.is_finite() || gamma < 0.0 {
            return Err(invalid(
                "StepLr",
                format!("step_size {step_size} must be 1 or more and gamma {gamma} finite and 0 or more"),
            ));
        }
        Ok(Self { step_size, gamma })
    }
}

impl LrSchedule for StepLr {
    fn lr(&self, base: f64, step: u64) -> f64 {
        let k = step / self.step_size;
        base * i32::try_from(k).map_or_else(|_| self.gamma.powf(k as f64), |k| self.gamma.powi(k))
    }
}

/// Cosine annealing, as PyTorch's `CosineAnnealingLR`:
/// `min + (base − min) · (1 + cos(π · step / total)) / 2`, then `min` after `total` steps
/// (where PyTorch's would rise again).
///
/// ```
/// use backflow::nn::{CosineLr, LrSchedule};
/// let s = CosineLr::new(100).unwrap().min_lr(0.001).unwrap();
/// assert_eq!(s.lr(0.1, 0), 0.1);
/// assert!((s.lr(0.1, 50) - 0.0505).abs() < 1e-12);
/// assert_eq!((s.lr(0.1, 100), s.lr(0.1, 500)), (0.001, 0.001));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CosineLr {
    total: u64,
    min_lr: f64,
}

impl CosineLr {
    /// Anneals from the initial rate to 0 over `total` steps. Errs if `total` is 0.
    pub fn new(total: u64) -> Result<Self> {
        if total == 0 {
            return Err(invalid("CosineLr", "total steps must be 1 or more".into()));
        }
        Ok(Self { total, min_lr: 0.0 })
    }

    /// Anneals to `min_lr` instead of 0. Errs if it is negative or not finite.
    pub fn min_lr(mut self, min_lr: f64) -> Result<Self> {
        if !min_lr.is_finite() || min_lr < 0.0 {
            return Err(invalid(
                "CosineLr",
                format!("min_lr {min_lr} must be finite and 0 or more"),
            ));
        }
        self.min_lr = min_lr;
        Ok(self)
    }
}

impl LrSchedule for CosineLr {
    fn lr(&self, base: f64, step: u64) -> f64 {
        if step >= self.total {
            return self.min_lr;
        }
        let t = step as f64 / self.total as f64;
        self.min_lr + (base - self.min_lr) * (1.0 + (std::f64::consts::PI * t).cos()) / 2.0
    }
}

/// Linear warm-up, as PyTorch's `LinearLR` (from `start_factor`, 1/3 unless set, to 1
/// over `steps` steps): `base · (f + (1 − f) · step / steps)`, then another schedule
/// ([`then`](Self::then)) counted from the end of the warm-up, as `SequentialLR` chains
/// them. Warm-up then cosine decay:
///
/// ```
/// use backflow::nn::{CosineLr, LrSchedule, Warmup};
/// let s = Warmup::linear(10).start_factor(0.0).unwrap().then(CosineLr::new(90).unwrap());
/// assert_eq!((s.lr(0.1, 0), s.lr(0.1, 5)), (0.0, 0.05));
/// assert_eq!(s.lr(0.1, 10), 0.1); // the cosine's first step
/// assert!((s.lr(0.1, 55) - 0.05).abs() < 1e-12);
/// assert_eq!(s.lr(0.1, 100), 0.0);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Warmup<S = Constant> {
    steps: u64,
    start_factor: f64,
    then: S,
}

impl Warmup {
    /// A linear warm-up over `steps` steps, then the initial rate.
    pub fn linear(steps: u64) -> Self {
        Self {
            steps,
            start_factor: 1.0 / 3.0,
            then: Constant,
        }
    }
}

impl<S: LrSchedule> Warmup<S> {
    /// Starts at `factor` times the initial rate. Errs if `factor` is not in `[0, 1]`.
    pub fn start_factor(mut self, factor: f64) -> Result<Self> {
        if !(0.0..=1.0).contains(&factor) {
            return Err(invalid(
                "Warmup",
                format!("start_factor {factor} must be in [0, 1]"),
            ));
        }
        self.start_factor = factor;
        Ok(self)
    }

    /// Continues with `schedule` after the warm-up (its step 0 is the warm-up's end).
    pub fn then<N: LrSchedule>(self, schedule: N) -> Warmup<N> {
        Warmup {
            steps: self.steps,
            start_factor: self.start_factor,
            then: schedule,
        }
    }
}

impl<S: LrSchedule> LrSchedule for Warmup<S> {
    fn lr(&self, base: f64, step: u64) -> f64 {
        if step >= self.steps {
            return self.then.lr(base, step - self.steps);
        }
        let f = self.start_factor + (1.0 - self.start_factor) * step as f64 / self.steps as f64;
        base * f
    }
}

/// Drives an optimiser's learning rate by a schedule, as a PyTorch `lr_scheduler`: created
/// after the optimiser (whose rate is the schedule's base), it sets the rate for the first
/// step at once; call [`step`](Self::step) after each optimiser step.
///
/// ```
/// use backflow::nn::{CosineLr, LrScheduler, Optimizer, Param, Sgd, Warmup};
/// use backflow::Tensor;
/// let p = Param::new(Tensor::scalar(1.0));
/// let mut opt = Sgd::new(vec![p.clone()], 0.1);
/// let schedule = Warmup::linear(2).start_factor(0.5).unwrap().then(CosineLr::new(2).unwrap());
/// let mut sched = LrScheduler::new(&mut opt, schedule);
/// let mut rates = Vec::new();
/// for _ in 0..5 {
///     rates.push(opt.lr());
///     (&p.get() * &p.get()).backward().unwrap();
///     opt.step().unwrap();
///     sched.step(&mut opt);
/// }
/// let want = [0.05, 0.075, 0.1, 0.05, 0.0];
/// assert!(rates.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-7), "{rates:?}");
/// ```
#[derive(Clone, Debug)]
pub struct LrScheduler<S> {
    schedule: S,
    base: f64,
    steps: u64,
}

impl<S: LrSchedule> LrScheduler<S> {
    /// Takes `opt`'s current rate as the base and sets the rate for its first step.
    pub fn new<T: Element>(opt: &mut (impl Optimizer<T> + ?Sized), schedule: S) -> Self {
        let base = opt.lr().to_f64();
        opt.set_lr(T::from_f64(schedule.lr(base, 0)));
        Self {
            schedule,
            base,
            steps: 0,
        }
    }

    /// Counts a step and sets `opt`'s rate for the next.
    pub fn step<T: Element>(&mut self, opt: &mut (impl Optimizer<T> + ?Sized)) {
        self.steps += 1;
        opt.set_lr(T::from_f64(self.lr()));
    }

    /// The rate for the next step.
    pub fn lr(&self) -> f64 {
        self.schedule.lr(self.base, self.steps)
    }

    /// Steps counted so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }
}
