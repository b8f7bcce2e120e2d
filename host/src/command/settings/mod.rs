//! The config file (`--config nthlayer.yaml`): the reference's `workers.{module}.*` keys
//! plus a `host:` section for everything `serve`'s flags set.
//!
//! The file is not a second configuration system beside the flags: it is turned into the
//! flags it stands for and clap parses them with the command line, so every value goes
//! through the flag's own parser, default and checks, and a flag another room adds is a
//! `host:` key at once (the key set is read from clap's definition of the command). Each
//! file value is only added where clap says the flag took its default (`value_source`):
//! flags and their environment variables override the file, the file overrides defaults.
//!
//! - [`file`]: reading and checking the file (unknown keys named with the nearest valid one).
//! - [`layer`]: the command line with the file's values added.
//! - [`print`]: the effective configuration with each value's source, secrets redacted.
//! - [`reload`]: SIGHUP / `POST /-/reload`; [`apply`]: what a valid reload installs.

use std::path::PathBuf;

pub mod apply;
pub mod file;
pub mod layer;
pub mod print;
pub mod reload;

#[derive(Debug, Clone, clap::Args)]
pub struct SettingsArgs {
    /// Config file (YAML): `host:` keys are these flags' long names, `workers.<module>.*` the
    /// modules' knobs (docs/ADMIN.md). Flags and their environment override it.
    #[arg(long, env = "NTHLAYER_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// The id of the `--config` argument in clap's definition.
pub const CONFIG_ID: &str = "config";
