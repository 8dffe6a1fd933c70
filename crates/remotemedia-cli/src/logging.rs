//! Logging: the tracing subscriber that writes the runtime's events to stderr.

/// Installs the tracing subscriber: events go to stderr (stdout carries command output),
/// filtered by `RUST_LOG` (default `warn`), as text or, for `serve --log-json`, JSON lines.
/// Without it every `tracing::warn!` in the runtime was invisible. In the Python package
/// `cli_main` may run more than once per process; the first subscriber stays.
pub(crate) fn init_logging(json: bool) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    // symphonia logs (through the `log` bridge) an ERROR for every file it cannot probe, which
    // the CLI already reports as a clear error of its own; RUST_LOG can still ask for it.
    const DEFAULT: &str = "warn,symphonia=off";
    let (filter, bad) = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => match EnvFilter::try_new(&spec) {
            Ok(f) => (f, None),
            Err(e) => (EnvFilter::new(DEFAULT), Some(format!("{spec:?}: {e}"))),
        },
        _ => (EnvFilter::new(DEFAULT), None),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let installed = if json {
        builder.json().try_init().is_ok()
    } else {
        builder.try_init().is_ok()
    };
    if let (true, Some(bad)) = (installed, bad) {
        tracing::warn!(target: crate::LOG_TARGET, "RUST_LOG {bad}; logging at warn");
    }
}
