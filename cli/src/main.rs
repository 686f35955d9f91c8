//! `usersync`: the command line of the usersync engine.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod check_filter;

/// Keeps users and groups in step between identity systems and the platform.
#[derive(Debug, Parser)]
#[command(name = "usersync", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Checks a SCIM filter (or, with --path, a PATCH path) and prints its canonical form.
    ///
    /// Exits 0 when valid, 1 when invalid, 2 on a usage error.
    CheckFilter(check_filter::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckFilter(args) => check_filter::run(&args),
    }
}
