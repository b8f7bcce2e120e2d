//! The `nthlayer-host` command line.

use std::process::ExitCode;

use anyhow::Result;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use nthlayer_host::command::args::ServeArgs;
use nthlayer_host::command::gate::GateArgs;
use nthlayer_host::command::run::RunArgs;

#[derive(Parser)]
#[command(
    name = "nthlayer-host",
    version,
    about = "Runs NthLayer reliability workers as sandboxed WebAssembly components"
)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the modules' tasks on their intervals until SIGTERM/SIGINT.
    Serve(Box<ServeArgs>),
    /// Deploy gate for one service (exit 0 approved/warning, 2 blocked, 1 error).
    Gate(Box<GateArgs>),
    /// Run one task once and print its state and result.
    Run(Box<RunArgs>),
    /// Validate module files (default: the built-in modules embedded in this binary): read
    /// the imports before compiling (a foreign one is refused at once, naming the build flag
    /// that removes it), then compile and describe. One JSON line per file (with the record
    /// kinds declared, granted under --grant/--trusted-dir, and missing); exit 1 if any fails.
    Check(nthlayer_host::command::check::CheckArgs),
    /// One cycle of a module file against recorded answers (fixtures); prints what it would
    /// submit and its new state. Exit 1 on a failed cycle or a call no fixture answers.
    RunOnce(Box<nthlayer_host::command::run_once::RunOnceArgs>),
    /// Create a module project (templates/<lang>/ + the newest contract's WIT): README,
    /// build.sh that installs its toolchain from the registries, a sample task, test.sh.
    New(nthlayer_host::command::new::NewArgs),
    /// The spool's set-aside entries (core refused them, or their retry window ran out):
    /// list, show, requeue (optionally with a corrected body), drop. Works while `serve`
    /// runs on the same state directory.
    Outbox(nthlayer_host::outbox::admin::OutboxArgs),
    /// The config file: `check FILE` validates one; `print` shows the effective configuration
    /// with the source of every value (secrets redacted).
    Config(nthlayer_host::command::config::ConfigArgs),
    /// What a running host's status page shows, read from its admin API (`--json` for scripts).
    Status(nthlayer_host::command::status::StatusArgs),
}

/// `nthlayer-host <module> <verb> [<target>] [flags…]` is shorthand for
/// `nthlayer-host run --task <module>.<verb> [--args '{"target":"<target>"}'] [flags…]`, so a
/// module's on-demand tasks read like commands (`nthlayer-host respond approve INC-…`)
/// without the host knowing any module. The shorthand must come first on the line.
fn expand_shorthand(args: Vec<String>) -> Vec<String> {
    const COMMANDS: [&str; 10] =
        ["serve", "gate", "run", "check", "run-once", "new", "outbox", "config", "status", "help"];
    let (Some(module), Some(verb)) = (args.get(1), args.get(2)) else { return args };
    if module.starts_with('-') || verb.starts_with('-') || COMMANDS.contains(&module.as_str()) {
        return args;
    }
    let mut out = vec![args[0].clone(), "run".into(), "--task".into(), format!("{module}.{verb}")];
    let mut rest = args[3..].iter().peekable();
    if let Some(target) = rest.next_if(|t| !t.starts_with('-')) {
        out.push("--args".into());
        out.push(serde_json::json!({ "target": target }).to_string());
    }
    out.extend(rest.cloned());
    out
}

fn config(a: nthlayer_host::command::config::ConfigArgs, argv: Vec<String>) -> Result<()> {
    use nthlayer_host::command::config::{self as cmd, ConfigCommand};
    match a.command {
        ConfigCommand::Check { file } => cmd::check(&file).map(|ok| println!("{ok}")),
        ConfigCommand::Print { json, .. } => cmd::print(&Cli::command(), argv, json),
    }
}

fn main() -> ExitCode {
    use nthlayer_host::runtime::compiler;
    let args: Vec<String> = std::env::args().collect();
    // The host's own compiler process (runtime/compiler.rs): before the config file, the
    // logger and the async runtime, none of which it needs.
    if args.get(1).map(String::as_str) == Some(compiler::SUBCOMMAND) {
        if args.len() != 2 {
            eprintln!("usage: nthlayer-host {} < module.wasm > artifact", compiler::SUBCOMMAND);
            return ExitCode::from(2);
        }
        return match compiler::child_main() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{e:#}");
                ExitCode::from(1)
            }
        };
    }
    compiler::use_child(compiler::this_exe());
    let argv = expand_shorthand(args);
    // The config file's values join the command line where a flag took its default.
    let layered = match nthlayer_host::command::settings::layer::layer_process(Cli::command(), argv.clone()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("Error: {e:#}");
            return ExitCode::from(1);
        }
    };
    let cli = Cli::from_arg_matches(&Cli::command().get_matches_from(&layered.argv)).unwrap_or_else(|e| e.exit());
    // The gate defaults to warnings only: its stderr is part of its interface (the
    // reference prints just `WARNING: …` there).
    let default = match cli.command {
        Command::Gate(_)
        | Command::Check(_)
        | Command::RunOnce(_)
        | Command::New(_)
        | Command::Outbox(_)
        | Command::Config(_)
        | Command::Status(_) => "warn",
        _ => "info,wasmtime=warn,cranelift=warn",
    };
    // Installed, and dropped (flushing traces), outside the runtime: see ops/logging.
    let level = match &cli.command {
        Command::Serve(a) => a.ops.log_level.clone(),
        _ => None,
    };
    let _logging = nthlayer_host::ops::logging::init(&cli.log_format, default, level.as_deref());
    nthlayer_host::runtime::heap::tune();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("start the async runtime");
    rt.block_on(command(cli, argv))
}

async fn command(cli: Cli, argv: Vec<String>) -> ExitCode {
    let r: Result<ExitCode> = match cli.command {
        Command::Serve(a) => nthlayer_host::command::serve::serve(*a).await.map(|_| ExitCode::SUCCESS),
        Command::Gate(a) => nthlayer_host::command::gate::gate(*a).await.map(|c| ExitCode::from(c.clamp(0, 255) as u8)),
        Command::Run(a) => nthlayer_host::command::run::run(*a).await.map(|_| ExitCode::SUCCESS),
        Command::New(a) => nthlayer_host::command::new::new(a).map(|_| ExitCode::SUCCESS),
        Command::Outbox(a) => nthlayer_host::outbox::admin::outbox(a).map(|_| ExitCode::SUCCESS),
        Command::Status(a) => nthlayer_host::command::status::status(a).await.map(|_| ExitCode::SUCCESS),
        Command::Config(a) => config(a, argv).map(|_| ExitCode::SUCCESS),
        Command::RunOnce(a) => nthlayer_host::command::run_once::run_once(*a).await.map(|ok| {
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }),
        Command::Check(a) => {
            nthlayer_host::command::check::command(a)
                .await
                .map(|ok| if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
    };
    match r {
        Ok(c) => c,
        Err(e) => {
            eprintln!("Error: {e:#}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::expand_shorthand;

    fn v(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_string).collect()
    }

    #[test]
    fn module_verb_target_becomes_run() {
        assert_eq!(
            expand_shorthand(v("h respond approve INC-1 --core-url U")),
            v("h run --task respond.approve --args {\"target\":\"INC-1\"} --core-url U")
        );
        assert_eq!(expand_shorthand(v("h observe gate --modules m")), v("h run --task observe.gate --modules m"));
        for kept in ["h serve --modules m", "h run --task x", "h --log-format json serve", "h check a.wasm"] {
            assert_eq!(expand_shorthand(v(kept)), v(kept));
        }
    }
}
