//! The CLI's commands, one file per subcommand, each assembled from the rooms below it;
//! `load` is the path from flags to loaded modules they share. `main.rs` only dispatches.

pub mod args;
pub mod check;
pub mod config;
pub mod gate;
pub mod load;
pub mod module_flags;
pub mod new;
pub mod run;
pub mod run_once;
pub mod serve;
pub mod settings;
pub mod status;
