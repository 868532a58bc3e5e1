//! `backflow eval`: the test accuracy of weights saved by `backflow train --save`, whatever
//! the model (recognised from the file), on the test split of the seed stored in the file.

use super::args;
use super::CliResult;
use backflow_app::checkpoint::is_checkpoint;
use backflow_app::models::load_model;
use backflow_app::train::{digits_test_split, evaluate};
use backflow_app::trained_weights::read_recipe;
use clap::Args;
use std::path::PathBuf;

/// Flags of `backflow eval`.
#[derive(Args, Debug)]
#[command(allow_negative_numbers = true)]
pub struct EvalArgs {
    /// The safetensors file written by `backflow train --save`.
    #[arg(long)]
    load: PathBuf,
    /// The --seed the model was trained with: it chooses the test split. By default the
    /// seed stored in the file by `train --save` (0 for a file without one); another
    /// value overrides it, with a warning.
    #[arg(long)]
    seed: Option<u64>,
}

/// Loads the weights and prints the test accuracy.
pub fn run(args: EvalArgs) -> CliResult {
    if !args.load.is_file() {
        return Err(args::UsageError(format!(
            "invalid value '{}' for '--load': not a file",
            args.load.display()
        ))
        .into());
    }
    let bytes = std::fs::read(&args.load).map_err(|e| format!("--load: {e}"))?;
    if is_checkpoint(&bytes) {
        return Err(format!(
            "--load: {} is a training checkpoint (train --checkpoint), not weights written by \
             train --save: resume it with train --checkpoint FILE --resume --save WEIGHTS",
            args.load.display()
        )
        .into());
    }
    let (name, model) = load_model(&args.load).map_err(|e| format!("--load: {e}"))?;
    let recipe = read_recipe(&bytes, &args.load).map_err(|e| format!("--load: {e}"))?;
    if let Some(r) = &recipe {
        r.check_model(name, model.as_ref())
            .map_err(|e| format!("--load: {}: {e}", args.load.display()))?;
    }
    let seed = match (&recipe, args.seed) {
        (Some(r), Some(seed)) if seed != r.seed => {
            eprintln!(
                "warning: --seed {seed} overrides the seed {} stored in {}: the test split \
                 may hold rows the model was trained on",
                r.seed,
                args.load.display()
            );
            seed
        }
        (Some(r), _) => r.seed,
        (None, seed) => seed.unwrap_or(0),
    };
    let test = digits_test_split(seed)?;
    let accuracy = evaluate(&model, &test)?;
    println!(
        "model: {} ({}, {} parameters), test split of seed {seed} ({} rows)",
        args.load.display(),
        name.name(),
        backflow::nn::Module::num_parameters(&model),
        test.len()
    );
    if let Some(r) = &recipe {
        let size = r
            .t1_size
            .map(|(b, h)| format!(", {b} branches x hidden {h}"))
            .unwrap_or_default();
        println!(
            "trained with  : {}{size}, {} epochs, batch {}, Adam lr {}, seed {}",
            r.model.name(),
            r.epochs,
            r.batch,
            r.lr,
            r.seed
        );
    }
    println!("test accuracy : {:.2}%", accuracy * 100.0);
    Ok(())
}
