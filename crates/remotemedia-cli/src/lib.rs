//! The `remotemedia` command line: `run`, `validate`, `graph`, `nodes`, `schema`, `serve`.
//!
//! The same code backs the Rust binary (native nodes only) and the command installed with the
//! Python package (which adds Python nodes through a [`Host`]).

pub mod batch;
pub mod describe;
pub mod graph;
pub mod run_file;

mod args;
mod host;
pub mod interrupt;
mod load;
mod logging;
mod nodes;
mod progress;
mod run;
mod runtime;
mod serve;
mod validate;

use std::ffi::OsString;
use std::process::ExitCode;

use anyhow::Result;
use remotemedia_core::schema;

use args::{Cli, Command};
pub use host::{builtin_registry, Host, NativeHost};
pub(crate) use runtime::BoundedRuntime;
pub use runtime::SHUTDOWN_GRACE;
pub use validate::{is_import_path, UncheckedNodeType};

/// The target of the CLI's log events, from whichever of its files: the crate's path, as before
/// the CLI was split into files (log filters and collectors match on it).
const LOG_TARGET: &str = module_path!();

/// Runs the CLI with `args` (including the program name) and returns the exit code:
/// 0 success, 1 failure (message on stderr), 2 usage error, 130 / 143 interrupted by Ctrl-C /
/// SIGTERM.
pub fn main_with(args: Vec<OsString>, host: &dyn Host) -> ExitCode {
    ExitCode::from(main_code(args, host))
}

/// [`main_with`]'s exit code as a number (for hosts that pass it on).
pub fn main_code(args: Vec<OsString>, host: &dyn Host) -> u8 {
    let cli = match parse(args, host) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    logging::init_logging(matches!(&cli.command, Command::Serve(a) if a.log_json));
    // A bug must surface as an error message, never as a panic trace.
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| dispatch(cli, host)));
    match outcome {
        Ok(Ok(())) => 0,
        Ok(Err(e)) => {
            if let Some(i) = e
                .chain()
                .find_map(|c| c.downcast_ref::<interrupt::Interrupted>())
            {
                eprintln!("{i}");
                return i.exit_code();
            }
            if closed_stdout(&e) {
                // The reader of stdout went away (`| head`): as for any Unix filter, that
                // ends the run without an error message (exit status 141, SIGPIPE's).
                return 141;
            }
            eprintln!("error: {}", error_text(&e));
            1
        }
        Err(panic) => {
            eprintln!(
                "error: internal error: {} (please report this)",
                remotemedia_core::error::panic_message(&*panic)
            );
            1
        }
    }
}

/// Parses the command line; the top-level help ends with every node type this host has.
fn parse(args: Vec<OsString>, host: &dyn Host) -> Result<Cli, clap::Error> {
    use clap::{CommandFactory, FromArgMatches};
    let mut cmd = Cli::command();
    let help = cmd
        .get_after_help()
        .map(|h| h.to_string())
        .unwrap_or_default();
    let types: Vec<String> = host
        .registry()
        .node_types()
        .filter(|t| !t.starts_with("Test"))
        .map(String::from)
        .collect();
    cmd = cmd.after_help(format!(
        "{help}\n\nNode types (`remotemedia nodes NAME` for one's parameters):\n  {}",
        textwrap_list(&types, 90)
    ));
    let matches = cmd.try_get_matches_from(args)?;
    Cli::from_arg_matches(&matches)
}

/// `items` joined by ", " in lines of at most `width` characters.
fn textwrap_list(items: &[String], width: usize) -> String {
    let mut lines = vec![String::new()];
    for item in items {
        let line = lines.last_mut().expect("one line");
        if !line.is_empty() && line.len() + item.len() + 2 > width {
            line.push(',');
            lines.push(item.clone());
        } else {
            if !line.is_empty() {
                line.push_str(", ");
            }
            line.push_str(item);
        }
    }
    lines.join("\n  ")
}

/// Whether `e` is a write to stdout whose reader has gone (a broken pipe).
fn closed_stdout(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn dispatch(cli: Cli, host: &dyn Host) -> Result<()> {
    match cli.command {
        Command::Run(args) => {
            let _signals = interrupt::install();
            run::run(args, host)
        }
        Command::Graph {
            manifest,
            format,
            output,
        } => graph::draw(&manifest, format.as_deref(), output.as_deref(), host),
        Command::Validate { manifests, import } => validate::validate(&manifests, import, host),
        Command::Nodes { name, json } => nodes::nodes(name.as_deref(), json, host),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut cmd = Cli::command();
            clap_complete::generate(shell, &mut cmd, "remotemedia", &mut std::io::stdout());
            Ok(())
        }
        Command::Schema => {
            print!(
                "{}",
                schema::manifest_schema_pretty(&remotemedia_nodes::builtin_registry())
            );
            Ok(())
        }
        Command::Serve(args) => serve::serve(args, host),
    }
}

/// An error and its causes as one line, `outer: cause: ...` like anyhow's `{:#}`, but without
/// a cause whose text the error above it already quotes (the executor's "node 'x' failed:
/// {source}" also reports the node error as its source, which `{:#}` printed twice).
pub fn error_text(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        // Quoted whole, after the parent's own ": " (not merely ending its last word).
        if !text.is_empty() && (text == part || text.ends_with(&format!(": {part}"))) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::anyhow;

    #[test]
    fn an_error_chain_reads_once_without_repeating_a_quoted_cause() {
        #[derive(Debug)]
        struct Quoting(std::io::Error);
        impl std::fmt::Display for Quoting {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "node 'rs' failed: {}", self.0)
            }
        }
        impl std::error::Error for Quoting {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let io = std::io::Error::other("expects audio, got json");
        let e = anyhow::Error::new(Quoting(io)).context("clip.wav");
        assert_eq!(
            format!("{e:#}"),
            "clip.wav: node 'rs' failed: expects audio, got json: expects audio, got json"
        );
        assert_eq!(
            error_text(&e),
            "clip.wav: node 'rs' failed: expects audio, got json"
        );
        // Causes that are not quoted are kept, also one that merely ends the parent's text.
        let e = anyhow!("inner").context("middle").context("outer");
        assert_eq!(error_text(&e), "outer: middle: inner");
        let e = anyhow!("out").context("node 'x' timed out");
        assert_eq!(error_text(&e), "node 'x' timed out: out");
    }
}
