//! Training progress: a bar when stdout is a terminal, else one line per epoch (epoch n/N,
//! the epoch's mean loss, elapsed time), as under `mpirun` or `backflow train | cat`. Both
//! show the epoch's mean loss so far, not the last batch's.

use backflow_app::train::Progress;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::time::Instant;

/// Shows a run's progress; feed it every step.
pub struct Reporter {
    bar: Option<ProgressBar>,
    epochs: usize,
    start: Instant,
}

impl Reporter {
    /// A bar when stdout is a terminal, else lines.
    pub fn new(epochs: usize) -> Result<Self, Box<dyn std::error::Error>> {
        if std::io::stdout().is_terminal() {
            Self::bar(epochs)
        } else {
            Ok(Self::lines(epochs))
        }
    }

    /// One line per epoch, whatever stdout is.
    pub fn lines(epochs: usize) -> Self {
        Self {
            bar: None,
            epochs,
            start: Instant::now(),
        }
    }

    fn bar(epochs: usize) -> Result<Self, Box<dyn std::error::Error>> {
        let bar = ProgressBar::new(0).with_style(
            ProgressStyle::with_template(
                "{prefix} [{bar:30}] {pos}/{len} steps  {msg}  ({elapsed}, eta {eta})",
            )?
            .progress_chars("=> "),
        );
        Ok(Self {
            bar: Some(bar),
            ..Self::lines(epochs)
        })
    }

    /// Shows step `p`.
    pub fn step(&mut self, p: Progress) {
        match &self.bar {
            Some(bar) => {
                bar.set_length(p.total_steps as u64);
                bar.set_position(p.step as u64);
                if p.step % 4 == 0 || p.epoch_done {
                    bar.set_prefix(format!("epoch {:>2}/{}", p.epoch + 1, self.epochs));
                    bar.set_message(format!("loss {:.4}", p.epoch_loss));
                }
            }
            None if p.epoch_done => println!(
                "epoch {:>3}/{}  step {:>5}/{}  loss {:.4}  ({:.1} s)",
                p.epoch + 1,
                self.epochs,
                p.step,
                p.total_steps,
                p.epoch_loss,
                self.start.elapsed().as_secs_f64()
            ),
            None => {}
        }
    }

    /// Ends the bar, if there is one.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}
