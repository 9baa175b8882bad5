//! `strata rules check FILE...`: validates Prometheus rule files as
//! `promtool check rules` does (the same checks `strata serve --rules`
//! makes before it starts). Prints `FILE: N rules found` for each valid
//! file and exits 0; otherwise prints every error (each names the file,
//! group, rule and problem) and exits 1.

use std::path::PathBuf;
use std::process::ExitCode;

use strata::server::rules::load_file;
use strata::Error;

#[derive(clap::Args)]
pub struct RulesArgs {
    #[command(subcommand)]
    command: RulesCommand,
}

#[derive(clap::Subcommand)]
enum RulesCommand {
    /// Check rule files: YAML shape, unknown keys, PromQL, names, templates.
    Check {
        /// Prometheus rule files (`groups: [{name, interval, rules}]`).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

pub fn run(args: &RulesArgs) -> Result<ExitCode, Error> {
    let RulesCommand::Check { files } = &args.command;
    let mut failed = false;
    for file in files {
        // The interval default does not affect the checks.
        match load_file(file, 60_000) {
            Ok(groups) => {
                let rules: usize = groups.iter().map(|g| g.rules.len()).sum();
                outln!("{}: {rules} rules found", file.display())?;
            }
            Err(errors) => {
                failed = true;
                for error in errors {
                    errln!("{error}");
                }
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
