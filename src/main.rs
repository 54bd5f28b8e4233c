//! Wiring only: logging, CLI, run, exit code.

use clap::Parser;

fn main() {
    let cli = provision::cli::Cli::parse();
    provision::report::init_logging(cli.verbose);
    std::process::exit(provision::cli::main_with_args(cli));
}
