//! The command line with the config file's values added where clap says the flag took its
//! default: the file fills gaps, it never overrides a flag or its environment variable.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use anyhow::Result;
use clap::parser::ValueSource;
use clap::{ArgMatches, Args, Command};

use super::file;

/// A command line and what its config file added to it.
#[derive(Debug, Clone)]
pub struct Layered {
    pub argv: Vec<String>,
    pub file: Option<PathBuf>,
    /// Argument id -> the file key that set it.
    pub from_file: BTreeMap<String, String>,
}

/// `serve`'s flags as a command of their own (for `config check` and reloads).
pub fn serve_command() -> Command {
    crate::command::args::ServeArgs::augment_args(Command::new("nthlayer-host-serve"))
        .arg(clap::Arg::new("log_format").long("log-format").global(true).hide(true))
}

/// The deepest subcommand's matches and definition.
pub fn deepest<'a>(cmd: &'a Command, m: &'a ArgMatches) -> (&'a Command, &'a ArgMatches) {
    let (mut c, mut m) = (cmd, m);
    while let Some((name, sub)) = m.subcommand() {
        match c.find_subcommand(name) {
            Some(sc) => (c, m) = (sc, sub),
            None => break,
        }
    }
    (c, m)
}

/// Adds the config file's values to `argv` (parsed by `cmd`). A command line clap rejects,
/// or a command without `--config`, comes back unchanged: the real parse reports it.
pub fn layer(cmd: &Command, argv: Vec<String>) -> Result<Layered> {
    let unchanged = |argv| Ok(Layered { argv, file: None, from_file: BTreeMap::new() });
    let Ok(m) = cmd.clone().try_get_matches_from(&argv) else { return unchanged(argv) };
    let (sub, sm) = deepest(cmd, &m);
    if !sub.get_arguments().any(|a| a.get_id() == super::CONFIG_ID) {
        return unchanged(argv);
    }
    let Some(path) = sm.get_one::<PathBuf>(super::CONFIG_ID).cloned() else { return unchanged(argv) };
    let mut out = Layered { argv, file: Some(path.clone()), from_file: BTreeMap::new() };
    for s in file::read(&path, sub)? {
        if !matches!(sm.value_source(&s.id), None | Some(ValueSource::DefaultValue)) {
            continue; // a flag or its environment variable set it
        }
        if s.switch {
            out.argv.push(format!("--{}", s.long));
        }
        for v in &s.values {
            out.argv.push(format!("--{}={v}", s.long));
        }
        out.from_file.insert(s.id, s.path);
    }
    Ok(out)
}

/// The process's own layered command line, kept for reloads.
static STARTED_WITH: OnceLock<(Command, Vec<String>)> = OnceLock::new();

/// Layers `argv` for this process and keeps it (and `cmd`) for [`super::reload`].
pub fn layer_process(cmd: Command, argv: Vec<String>) -> Result<Layered> {
    let layered = layer(&cmd, argv.clone())?;
    let _ = STARTED_WITH.set((cmd, argv));
    Ok(layered)
}

pub(super) fn started_with() -> Option<&'static (Command, Vec<String>)> {
    STARTED_WITH.get()
}
