//! The one place where command-line values are validated.
//!
//! The rule: a value that cannot work is a usage error (exit status 2) before any work
//! starts, reported on one line that names the flag and the value. Numeric flags use the
//! `value_parser`s here, which clap runs while parsing (its message names the flag and the
//! value; [`main`](super::main) folds it into one line); output paths are checked writable
//! with [`check_writable`] before the run. Thread counts follow the library's meaning:
//! `0` is "all cores" ([`backflow::default_threads`]), as for
//! `BackwardOptions::threads(0)`.

use backflow::io::AtomicFile;
use backflow_app::models::ModelName;
use backflow_app::workloads::WorkloadId;
use std::fs::OpenOptions;
use std::path::Path;
use std::time::Duration;

/// The most threads any flag accepts (a larger count is a typo, not a machine).
pub const MAX_THREADS: usize = 1024;

/// A usage error found after clap parsed the line (an output path, a combination of
/// flags): printed on one line, exit status 2.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// A thread count: `0` means all cores; at most [`MAX_THREADS`].
pub fn threads(s: &str) -> Result<usize, String> {
    let n: usize = s
        .trim()
        .parse()
        .map_err(|_| "not a thread count (0 means all cores)".to_string())?;
    match n {
        0 => Ok(backflow::default_threads()),
        n if n > MAX_THREADS => Err(format!("at most {MAX_THREADS} threads")),
        n => Ok(n),
    }
}

/// The thread counts that will run for the `requested` ones of `flag`: each clamped as a
/// pass clamps it ([`backflow::clamp_threads`], at most [`backflow::max_threads`]), sorted,
/// without repeats. Where any was clamped, says so once on stdout, so that no row is
/// labelled with a count that did not run.
pub fn threads_as_run(flag: &str, requested: &[usize]) -> Vec<usize> {
    let mut run: Vec<usize> = requested
        .iter()
        .map(|&t| backflow::clamp_threads(t))
        .collect();
    run.sort_unstable();
    run.dedup();
    let clamped: Vec<String> = requested
        .iter()
        .filter(|&&t| backflow::clamp_threads(t) != t)
        .map(usize::to_string)
        .collect();
    if !clamped.is_empty() {
        println!(
            "note: {flag} {} run as {} threads: a pass uses at most max_threads() = {} on \
             this machine",
            clamped.join(","),
            backflow::max_threads(),
            backflow::max_threads()
        );
    }
    run
}

/// A whole number in `lo..=hi`.
pub fn count(
    lo: usize,
    hi: usize,
) -> impl Fn(&str) -> Result<usize, String> + Clone + Send + Sync + 'static {
    move |s: &str| {
        let n: usize = s
            .trim()
            .parse()
            .map_err(|_| format!("not a whole number in {lo}..={hi}"))?;
        if (lo..=hi).contains(&n) {
            Ok(n)
        } else {
            Err(format!("not in {lo}..={hi}"))
        }
    }
}

/// A finite number `x` with `lo <= x <= hi`, or `lo < x <= hi` where `open_low`.
fn number(s: &str, lo: f64, hi: f64, open_low: bool) -> Result<f64, String> {
    let range = if open_low {
        format!("a number with {lo} < x <= {hi}")
    } else {
        format!("a number in [{lo}, {hi}]")
    };
    let x: f64 = s.trim().parse().map_err(|_| format!("not {range}"))?;
    let low_ok = if open_low { x > lo } else { x >= lo };
    if x.is_finite() && low_ok && x <= hi {
        Ok(x)
    } else {
        Err(format!("not {range}"))
    }
}

/// A probability, in `[0, 1]`.
pub fn probability(s: &str) -> Result<f64, String> {
    number(s, 0.0, 1.0, false)
}

/// A learning rate, in `(0, 10]`.
pub fn learning_rate(s: &str) -> Result<f32, String> {
    number(s, 0.0, 10.0, true).map(|x| x as f32)
}

/// The longest `--deadline` or `--duration`: a week.
pub const MAX_SECONDS: f64 = 7.0 * 24.0 * 3600.0;

/// A time like `90`, `90s` or `5m`, more than zero and at most a week.
pub fn duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let (number_part, unit) = match t.strip_suffix('m') {
        Some(n) => (n, 60.0),
        None => (t.strip_suffix('s').unwrap_or(t), 1.0),
    };
    let bad = || format!("not a time like 90, 90s or 5m, more than 0 and at most {MAX_SECONDS} s");
    let v: f64 = number_part.parse().map_err(|_| bad())?;
    let secs = v * unit;
    if secs.is_finite() && secs > 0.0 && secs <= MAX_SECONDS {
        Ok(Duration::from_secs_f64(secs))
    } else {
        Err(bad())
    }
}

/// A workload name: w1, w2, w3, w4 or w6.
pub fn workload(s: &str) -> Result<WorkloadId, String> {
    WorkloadId::parse(s.trim()).ok_or_else(|| "not a workload (w1, w2, w3, w4, w6)".to_string())
}

/// A model name: t1, inception, attention or moe.
pub fn model(s: &str) -> Result<ModelName, String> {
    ModelName::parse(s).ok_or_else(|| {
        let names: Vec<&str> = ModelName::ALL.iter().map(|m| m.name()).collect();
        format!("not a model ({})", names.join(", "))
    })
}

/// Checks that `path`, the value of `flag`, can be written, before any work, the way the
/// save will write it ([`backflow::io::AtomicFile`]): an existing file must open for
/// writing (it is not changed here), and a temporary file must be creatable beside it in
/// an existing folder (it is created and removed again), since the save writes one there
/// and renames it over `path`.
pub fn check_writable(flag: &str, path: &Path) -> Result<(), UsageError> {
    let fail = |why: String| {
        UsageError(format!(
            "invalid value '{}' for '{flag}': cannot write there: {why}",
            path.display()
        ))
    };
    if path.as_os_str().is_empty() {
        return Err(fail("empty path".into()));
    }
    if path.is_dir() {
        return Err(fail("it is a folder".into()));
    }
    if path.exists() {
        OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|e| fail(e.to_string()))?;
    }
    // Dropped unwritten: the temporary file is removed and `path` is as it was.
    AtomicFile::create(path).map(drop).map_err(|e| {
        let folder = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        fail(format!(
            "cannot create a file in its folder '{}': {e}",
            folder.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_counts_take_zero_as_all_cores() {
        assert_eq!(threads("0"), Ok(backflow::default_threads()));
        assert_eq!(threads("3"), Ok(3));
        assert!(threads("-1").is_err());
        assert!(threads("99999").is_err());
        assert!(threads("x").is_err());
    }

    #[test]
    fn numbers_must_be_finite_and_in_range() {
        assert_eq!(probability("0.5"), Ok(0.5));
        for bad in ["nan", "inf", "-0.1", "1.5", "x"] {
            assert!(probability(bad).is_err(), "{bad}");
        }
        assert!(learning_rate("0").is_err());
        assert!(learning_rate("nan").is_err());
        assert_eq!(learning_rate("0.01"), Ok(0.01));
        assert!(count(1, 10)("0").is_err());
        assert!(count(1, 10)("11").is_err());
        assert_eq!(count(1, 10)("10"), Ok(10));
    }

    #[test]
    fn durations_are_positive_finite_and_bounded() {
        assert_eq!(duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(duration("5m"), Ok(Duration::from_secs(300)));
        for bad in ["-5", "0", "nan", "1e30", "inf", "x", "5h"] {
            assert!(duration(bad).is_err(), "{bad}");
        }
    }
}
