//! Wiring only: logging, CLI, run, exit code.

use clap::Parser;

fn main() {
    let cli = provision::cli::Cli::parse();
    std::process::exit(provision::cli::main_with_args(cli));
}
