//! `backflow eval`: the test accuracy of weights saved by `backflow train --save`, whatever
//! the model (recognised from the file).

use super::args;
use super::CliResult;
use backflow_app::models::load_model;
use backflow_app::train::{digits_test_split, evaluate};
use clap::Args;
use std::path::PathBuf;

/// Flags of `backflow eval`.
#[derive(Args, Debug)]
#[command(allow_negative_numbers = true)]
pub struct EvalArgs {
    /// The safetensors file written by `backflow train --save`.
    #[arg(long)]
    load: PathBuf,
    /// The --seed the model was trained with: it chooses the test split.
    #[arg(long, default_value_t = 0)]
    seed: u64,
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
    let (name, model) = load_model(&args.load).map_err(|e| format!("--load: {e}"))?;
    let test = digits_test_split(args.seed)?;
    let accuracy = evaluate(&model, &test)?;
    println!(
        "model: {} ({}, {} parameters), test split of seed {} ({} rows)",
        args.load.display(),
        name.name(),
        backflow::nn::Module::num_parameters(&model),
        args.seed,
        test.len()
    );
    println!("test accuracy : {:.2}%", accuracy * 100.0);
    Ok(())
}
