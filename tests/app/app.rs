//! The app crate's tests (the CLI, training, models, the examples' outputs, safetensors)
//! in one binary, a module per file beside this one, so the app is linked once.
//! (Not `main.rs`: the root package would take `tests/app/main.rs` as its own test.)

#[path = "autograd_export.rs"]
mod autograd_export;
#[path = "cli_flags.rs"]
mod cli_flags;
#[path = "example_outputs.rs"]
mod example_outputs;
#[path = "models_train.rs"]
mod models_train;
#[path = "nn_safetensors.rs"]
mod nn_safetensors;
#[path = "scratch.rs"]
mod scratch;
#[path = "stress_panics.rs"]
mod stress_panics;
#[path = "train_cli.rs"]
mod train_cli;
#[path = "train_digits.rs"]
mod train_digits;
#[path = "train_eval.rs"]
mod train_eval;
#[path = "train_loop.rs"]
mod train_loop;
#[path = "train_misuse.rs"]
mod train_misuse;
