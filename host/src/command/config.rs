//! `nthlayer-host config check FILE` and `config print [serve flags…]`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, FromArgMatches, Subcommand};

use crate::command::args::ServeArgs;
use crate::command::settings::layer::{layer, serve_command};
use crate::lifecycle::config::HostConfig;

#[derive(Args, Debug)]
pub struct ConfigArgs {
    #[command(subcommand)]
    pub command: ConfigCommand,
}

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Validate a config file without starting: every key known, every value accepted by
    /// its flag, the resulting configuration consistent. Exit 1 with the first error.
    Check { file: PathBuf },
    /// The effective configuration (defaults < file < environment < flags) with the source
    /// of each value; secrets redacted. Takes `serve`'s flags, `--config` included.
    Print {
        /// One JSON array instead of the table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        serve: Box<ServeArgs>,
    },
}

/// Checks `file` as `serve --config FILE` would read it. Returns what `check` prints.
pub fn check(file: &std::path::Path) -> Result<String> {
    let cmd = serve_command();
    let argv = vec!["serve".to_string(), format!("--config={}", file.display())];
    let layered = layer(&cmd, argv)?;
    let m = cmd.try_get_matches_from(&layered.argv).with_context(|| format!("config file {}", file.display()))?;
    let args = ServeArgs::from_arg_matches(&m)?;
    HostConfig::from_args(&args).with_context(|| format!("config file {}", file.display()))?;
    Ok(format!("{}: ok ({} settings)", file.display(), layered.from_file.len()))
}

/// Prints the effective configuration of `argv` (this process's command line, whose
/// deepest subcommand is `config print`).
pub fn print(cmd: &clap::Command, argv: Vec<String>, json: bool) -> Result<()> {
    let entries = crate::command::settings::print::effective(cmd, argv)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&entries)?);
    } else {
        print!("{}", crate::command::settings::print::table(&entries));
    }
    Ok(())
}
