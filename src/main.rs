//! The `strata` command-line tool. Each subcommand lives in `cli/`.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::run()
}
