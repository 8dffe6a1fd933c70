//! The `remotemedia` command line: `run`, `validate`, `graph`, `nodes`, `schema`, `serve`.
//!
//! The same code backs the Rust binary (native nodes only) and the command installed with the
//! Python package (which adds Python nodes through a [`Host`]).

pub mod batch;
pub mod describe;
pub mod graph;
pub mod run_file;

use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use remotemedia_core::data::Data;
use remotemedia_core::executor::Pipeline;
use remotemedia_core::manifest::{self, Manifest};
use remotemedia_core::registry::NodeRegistry;
use remotemedia_core::schema;

/// Inputs longer than this show a progress bar (when stderr is a terminal).
const PROGRESS_MIN_SECS: f64 = 5.0;

/// The built-in nodes, plus the fault-injection nodes when `REMOTEMEDIA_TEST_NODES=1` in a
/// test build (release builds do not contain them).
pub fn builtin_registry() -> NodeRegistry {
    let mut r = remotemedia_nodes::builtin_registry();
    if std::env::var_os("REMOTEMEDIA_TEST_NODES").is_some_and(|v| v == "1") {
        remotemedia_core::registry::register_test_nodes(&mut r);
    }
    r
}

/// What the embedding program adds to the CLI (e.g. Python nodes).
pub trait Host {
    /// The node types available to local runs before looking at a manifest.
    fn registry(&self) -> NodeRegistry {
        let mut r = builtin_registry();
        remotemedia_grpc::remote_node::register(&mut r);
        r
    }

    /// The node types a server offers to its clients: the built-ins and the operator's
    /// `python_nodes`. Never anything a manifest names on its own.
    fn server_registry(&self, config: &remotemedia_grpc::ServerConfig) -> Result<NodeRegistry> {
        if !config.python_nodes.is_empty() {
            bail!(
                "python_nodes in the server config need the Python package's `remotemedia serve` \
                 (pip install remotemedia); this binary runs native nodes only"
            );
        }
        Ok(builtin_registry())
    }

    /// How non-audio values are rendered on the wire.
    fn renderer(&self) -> remotemedia_grpc::convert::JsonRenderer {
        remotemedia_grpc::convert::default_renderer()
    }

    /// Registers node types a manifest needs that are not built in (e.g. Python classes).
    fn prepare(&self, _manifest: &Manifest, _registry: &mut NodeRegistry) -> Result<()> {
        Ok(())
    }

    /// Registers, for `validate`, the node types a manifest names that are not built in,
    /// without building any node: by default an import path is accepted by its form; a host
    /// may check more (the Python package imports the module and checks the class).
    fn register_unbuilt(&self, manifest: &Manifest, registry: &mut NodeRegistry) -> Result<()> {
        for spec in &manifest.nodes {
            let t = spec.node_type.as_str();
            if !registry.contains(t) && is_import_path(t) {
                registry.register(std::sync::Arc::new(UncheckedNodeType::new(t)));
            }
        }
        Ok(())
    }

    /// JSON for a non-audio result (a host can render its own objects).
    fn to_json(&self, data: &Data) -> Option<serde_json::Value> {
        data.to_json()
    }
}

/// The plain Rust host: native nodes only.
pub struct NativeHost;
impl Host for NativeHost {}

#[derive(Parser, Debug)]
#[command(
    name = "remotemedia",
    version,
    about = "Run audio pipelines described by a JSON manifest",
    long_about = "Run audio pipelines described by a JSON manifest (see `remotemedia schema`).\n\
                  Native nodes: resampling, voice activity detection, format conversion, channel mixing."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a pipeline on an audio file.
    Run(RunArgs),
    /// Draw a pipeline: SVG (drawn by remotemedia itself), Mermaid or Graphviz DOT text, or
    /// PNG/PDF through Graphviz's `dot` when it is installed.
    Graph {
        /// A manifest file, or a one-line description ("A k=v ! B").
        manifest: String,
        /// svg, mermaid, dot, png or pdf (default: from the --output extension, else mermaid).
        #[arg(short, long, value_parser = ["mermaid", "dot", "svg", "png", "pdf"])]
        format: Option<String>,
        /// Write here instead of stdout (pipeline.svg, .mmd, .dot, .png, .pdf).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Check manifests without running them.
    Validate {
        /// Manifest files.
        #[arg(required = true)]
        manifests: Vec<PathBuf>,
    },
    /// List the available node types and their parameters.
    Nodes {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print the manifest JSON Schema.
    Schema,
    /// Serve pipelines over gRPC (remotemedia.v1) until SIGTERM or Ctrl-C.
    Serve(ServeArgs),
}

#[derive(clap::Args, Debug)]
struct ServeArgs {
    /// Address to listen on (overrides the config's `listen`; default 127.0.0.1:50051).
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// Server configuration (TOML): auth tokens, limits, Python nodes, metrics address.
    #[arg(long, value_name = "server.toml")]
    config: Option<PathBuf>,
    /// Serve gRPC server reflection.
    #[arg(long)]
    reflection: bool,
    /// Serve Prometheus metrics on this address (`GET /metrics`).
    #[arg(long)]
    metrics_listen: Option<std::net::SocketAddr>,
    /// Log as JSON lines (one object per event) on stderr, for log collectors.
    #[arg(long)]
    log_json: bool,
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// The pipeline: a manifest file (JSON), or a one-line description such as
    /// "FormatConverterNode target_format=f32 ! AudioResampleNode target_rate=16000 ! VADNode"
    /// (nodes joined by ' ! ', parameters as key=value with JSON or plain-string values).
    manifest: String,
    /// Input audio (WAV, FLAC, MP3, OGG/Vorbis; - for WAV on stdin). Several files, directories
    /// or glob patterns make a batch run into the --output directory.
    #[arg(short, long, required_unless_present = "print_manifest", num_args = 1..)]
    input: Vec<PathBuf>,
    /// Output: a .wav/.flac (audio) or .json (segments, other values) file, - for WAV on stdout;
    /// a directory when the pipeline has several sinks (one file per sink id) or for a batch.
    #[arg(short, long, required_unless_present = "print_manifest")]
    output: Option<PathBuf>,
    /// Print the pipeline's manifest (JSON) and exit without running: turns a one-line
    /// description into a manifest file to keep.
    #[arg(long)]
    print_manifest: bool,
    /// Sample coding of audio outputs: PCM_16, PCM_24, PCM_32, FLOAT, DOUBLE (default: the
    /// one that keeps the sink's format exactly; FLAC takes PCM_16 or PCM_24).
    #[arg(long, value_parser = parse_subtype)]
    subtype: Option<remotemedia_io::Subtype>,
    /// Container of audio outputs written into a directory (batch or several sinks).
    #[arg(long, default_value = "wav", value_parser = ["wav", "flac"])]
    audio_format: String,
    /// Batch: files processed in parallel (default: the machine's cores).
    #[arg(short, long)]
    jobs: Option<usize>,
    /// Batch: leave files whose outputs exist (resume an interrupted batch).
    #[arg(long)]
    skip_existing: bool,
    /// Batch: JSON-lines summary (default OUTDIR/summary.jsonl).
    #[arg(long, value_name = "FILE.jsonl")]
    summary: Option<PathBuf>,
    /// Write per-node metrics as JSON here.
    #[arg(long, value_name = "FILE.json")]
    metrics: Option<PathBuf>,
    /// Write a Chrome trace-event file here (open it in https://ui.perfetto.dev).
    #[arg(long, value_name = "FILE.json")]
    trace: Option<PathBuf>,
    /// Feed the pipeline in chunks of this many milliseconds (streaming; output is identical
    /// to a whole-file run).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=3_600_000))]
    chunk_ms: u32,
    /// No summary line on stderr.
    #[arg(short, long)]
    quiet: bool,
}

fn parse_subtype(s: &str) -> Result<remotemedia_io::Subtype, String> {
    remotemedia_io::Subtype::parse(s)
        .ok_or_else(|| format!("'{s}': expected PCM_16, PCM_24, PCM_32, FLOAT or DOUBLE"))
}

/// Runs the CLI with `args` (including the program name) and returns the exit code:
/// 0 success, 1 failure (message on stderr), 2 usage error.
pub fn main_with(args: Vec<OsString>, host: &dyn Host) -> ExitCode {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    init_logging(matches!(&cli.command, Command::Serve(a) if a.log_json));
    // A bug must surface as an error message, never as a panic trace.
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| dispatch(cli, host)));
    match outcome {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("error: {}", error_text(&e));
            ExitCode::FAILURE
        }
        Err(panic) => {
            eprintln!(
                "error: internal error: {} (please report this)",
                remotemedia_core::error::panic_message(&*panic)
            );
            ExitCode::FAILURE
        }
    }
}

/// Installs the tracing subscriber: events go to stderr (stdout carries command output),
/// filtered by `RUST_LOG` (default `warn`), as text or, for `serve --log-json`, JSON lines.
/// Without it every `tracing::warn!` in the runtime was invisible. In the Python package
/// `cli_main` may run more than once per process; the first subscriber stays.
fn init_logging(json: bool) {
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
        tracing::warn!("RUST_LOG {bad}; logging at warn");
    }
}

fn dispatch(cli: Cli, host: &dyn Host) -> Result<()> {
    match cli.command {
        Command::Run(args) => run(args, host),
        Command::Graph {
            manifest,
            format,
            output,
        } => draw(&manifest, format.as_deref(), output.as_deref(), host),
        Command::Validate { manifests } => validate(&manifests, host),
        Command::Nodes { json } => nodes(json, host),
        Command::Schema => {
            print!(
                "{}",
                schema::manifest_schema_pretty(&remotemedia_nodes::builtin_registry())
            );
            Ok(())
        }
        Command::Serve(args) => serve(args, host),
    }
}

fn serve(args: ServeArgs, host: &dyn Host) -> Result<()> {
    use remotemedia_grpc::{ServerConfig, ServerParts, Telemetry};
    let mut config = match &args.config {
        Some(path) => ServerConfig::load(path)?,
        None => ServerConfig::default(),
    };
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if args.reflection {
        config.reflection = true;
    }
    if let Some(m) = args.metrics_listen {
        config.metrics_listen = Some(m);
    }
    let registry = host.server_registry(&config)?;
    let node_types = registry.node_types().count();
    let runtime = BoundedRuntime::new(None)?;
    let served = runtime.block_on(async move {
        // Signal handlers first: a SIGTERM as soon as the port accepts is a clean shutdown.
        let stop = remotemedia_grpc::termination_signal();
        let metrics_stop = remotemedia_grpc::termination_signal();
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let addr = listener.local_addr()?;
        let telemetry = std::sync::Arc::new(Telemetry::new());
        if let Some(maddr) = config.metrics_listen {
            let l = remotemedia_grpc::telemetry::bind_metrics(maddr)
                .await
                .with_context(|| format!("cannot listen on {maddr} for metrics"))?;
            tokio::spawn(remotemedia_grpc::telemetry::serve_metrics(
                l,
                std::sync::Arc::clone(&telemetry),
                metrics_stop,
            ));
            eprintln!("remotemedia: Prometheus metrics on http://{maddr}/metrics");
        }
        eprintln!(
            "remotemedia: serving remotemedia.v1 on {addr} ({node_types} node types; auth {}; \
             max {} concurrent calls)",
            if config.tokens().is_empty() {
                "off"
            } else {
                "on"
            },
            config.limits.max_concurrent,
        );
        let parts = ServerParts {
            config,
            registry,
            render: host.renderer(),
            telemetry,
        };
        remotemedia_grpc::serve(parts, listener, async {
            stop.await;
            eprintln!("remotemedia: shutting down (draining open streams)");
        })
        .await
        .map_err(|e| anyhow!(e))?;
        eprintln!("remotemedia: stopped");
        Ok(())
    });
    // Calls of streams cut off by the drain were dropped above, which interrupts Python code;
    // dropping `runtime` waits a bounded grace for any still running (see BoundedRuntime).
    served
}

/// When a command ends, how long it waits for node calls still running (a Python call being
/// interrupted, or blocked in C) before it returns regardless.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// A multi-thread runtime whose drop waits at most [`SHUTDOWN_GRACE`] for blocking calls.
/// Dropping a plain runtime waits for every one of them for as long as it runs: a Python node
/// call blocked in C (`time.sleep`) after its timeout would hold the command's exit.
pub(crate) struct BoundedRuntime(Option<tokio::runtime::Runtime>);

impl BoundedRuntime {
    pub(crate) fn new(worker_threads: Option<usize>) -> Result<Self> {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        if let Some(n) = worker_threads {
            b.worker_threads(n);
        }
        let rt = b
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        Ok(Self(Some(rt)))
    }
}

impl std::ops::Deref for BoundedRuntime {
    type Target = tokio::runtime::Runtime;
    fn deref(&self) -> &tokio::runtime::Runtime {
        self.0.as_ref().expect("live until dropped")
    }
}

impl Drop for BoundedRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_timeout(SHUTDOWN_GRACE);
        }
    }
}

/// Reads the `run`/`graph` argument: a manifest file, or a one-line description when no
/// such file exists and the text looks like one. Returns the manifest and a name for errors.
fn load_manifest(arg: &str) -> Result<(Manifest, String)> {
    let path = Path::new(arg);
    if !path.exists() && describe::looks_like_description(arg) {
        // One word may have been meant as a file name (`Pipeline`, `README`): its errors (an
        // unknown node type is found when the pipeline is built) say both readings.
        let origin = if arg.split_whitespace().count() == 1 {
            format!("cannot read {arg}: no such file; as a pipeline description")
        } else {
            "pipeline description".to_string()
        };
        let value = describe::parse_description(arg).with_context(|| origin.clone())?;
        let manifest = manifest::from_value(value).with_context(|| origin.clone())?;
        return Ok((manifest, origin));
    }
    let text = std::fs::read_to_string(path).with_context(|| {
        if path.exists() {
            format!("cannot read {}", path.display())
        } else {
            format!(
                "cannot read {}: no such file (a pipeline description names node types, \
                 joined with ' ! ', e.g. \"AudioResampleNode target_rate=16000 ! VADNode\")",
                path.display()
            )
        }
    })?;
    let manifest = manifest::parse(&text).with_context(|| path.display().to_string())?;
    Ok((manifest, path.display().to_string()))
}

fn load_pipeline(manifest: Manifest, origin: &str, host: &dyn Host) -> Result<Pipeline> {
    let mut registry = host.registry();
    host.prepare(&manifest, &mut registry)
        .with_context(|| origin.to_string())?;
    Pipeline::new(manifest, &registry).with_context(|| origin.to_string())
}

fn draw(arg: &str, format: Option<&str>, output: Option<&Path>, host: &dyn Host) -> Result<()> {
    let (manifest, _) = load_manifest(arg)?;
    let ext = output
        .and_then(|p| p.extension())
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    let format = match (format, ext.as_deref()) {
        (Some(f), _) => f.to_string(),
        (None, Some("svg")) => "svg".into(),
        (None, Some("dot" | "gv")) => "dot".into(),
        (None, Some("png")) => "png".into(),
        (None, Some("pdf")) => "pdf".into(),
        _ => "mermaid".into(),
    };
    let registry = host.registry();
    let is_native = |t: &str| {
        registry
            .get(t)
            .is_some_and(|f| f.info().runtime == remotemedia_core::node::Runtime::Rust)
    };
    let render = |f| graph::render(&manifest, f, &is_native, &|_| None);
    if let binary @ ("png" | "pdf") = format.as_str() {
        let Some(path) = output else {
            bail!("--format {binary} needs --output FILE.{binary}");
        };
        return graphviz(&render(graph::GraphFormat::Dot), binary, path);
    }
    let picture = render(graph::GraphFormat::parse(&format).expect("clap checked the format"));
    match output {
        Some(path) => std::fs::write(path, picture)
            .with_context(|| format!("cannot write {}", path.display())),
        None => {
            print!("{picture}");
            Ok(())
        }
    }
}

/// Renders DOT text to PNG or PDF with Graphviz's `dot`, when it is installed.
fn graphviz(dot: &str, format: &str, path: &Path) -> Result<()> {
    use std::io::Write as _;
    let mut child = match std::process::Command::new("dot")
        .arg(format!("-T{format}"))
        .arg("-o")
        .arg(path)
        .stdin(std::process::Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "writing {} needs Graphviz's `dot`, which is not installed (Debian: apt-get install \
             graphviz); remotemedia draws SVG itself: use -o pipeline.svg",
            format.to_uppercase()
        ),
        Err(e) => return Err(e).context("cannot start Graphviz's `dot`"),
    };
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(dot.as_bytes())
        .context("cannot write to Graphviz's `dot`")?;
    let status = child.wait().context("Graphviz's `dot` did not finish")?;
    if !status.success() {
        bail!("Graphviz's `dot` failed ({status})");
    }
    Ok(())
}

/// Checks manifests without building their nodes: nothing a manifest names is imported or
/// run (a Python node type is only checked for its form, `module:Class`).
fn validate(paths: &[PathBuf], host: &dyn Host) -> Result<()> {
    let mut failed = 0;
    for path in paths {
        match check_manifest(path, host) {
            Ok((manifest, graph)) => {
                let edges: usize = (0..graph.len()).map(|i| graph.downstream(i).len()).sum();
                let sinks: Vec<&str> = graph.sinks().map(|i| graph.ids()[i].as_str()).collect();
                println!(
                    "{}: ok ('{}': {} node(s), {} connection(s); sink(s): {})",
                    path.display(),
                    manifest.name(),
                    graph.len(),
                    edges,
                    sinks.join(", ")
                );
            }
            Err(e) => {
                failed += 1;
                eprintln!("error: {}", error_text(&e));
            }
        }
    }
    if failed > 0 {
        bail!("{failed} of {} manifest(s) invalid", paths.len());
    }
    Ok(())
}

fn check_manifest(
    path: &Path,
    host: &dyn Host,
) -> Result<(Manifest, remotemedia_core::graph::PipelineGraph)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let manifest = manifest::parse(&text).with_context(|| path.display().to_string())?;
    let mut registry = host.registry();
    host.register_unbuilt(&manifest, &mut registry)
        .with_context(|| path.display().to_string())?;
    let graph =
        manifest::validate(&manifest, &registry).with_context(|| path.display().to_string())?;
    Ok((manifest, graph))
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

/// `package.module:Class`: dotted identifiers, one colon.
pub fn is_import_path(t: &str) -> bool {
    let ident = |s: &str| {
        !s.is_empty()
            && s.split('.').all(|p| {
                p.chars()
                    .next()
                    .is_some_and(|c| c.is_alphabetic() || c == '_')
                    && p.chars().all(|c| c.is_alphanumeric() || c == '_')
            })
    };
    matches!(t.split_once(':'), Some((m, c)) if ident(m) && ident(c))
}

/// A node type seen by `validate` that is not built in: accepted, never built.
pub struct UncheckedNodeType {
    info: remotemedia_core::registry::NodeInfo,
}

impl UncheckedNodeType {
    /// Accepts `node_type` without building it.
    pub fn new(node_type: &str) -> Self {
        Self {
            info: remotemedia_core::registry::NodeInfo::untyped(
                node_type,
                "a Python node type (not built by validate)".to_string(),
                remotemedia_core::node::Runtime::Host("python"),
            ),
        }
    }
}

impl remotemedia_core::registry::NodeFactory for UncheckedNodeType {
    fn info(&self) -> &remotemedia_core::registry::NodeInfo {
        &self.info
    }
    fn check(
        &self,
        _: &serde_json::Map<String, serde_json::Value>,
    ) -> Vec<remotemedia_core::registry::ParamIssue> {
        Vec::new()
    }
    fn create(
        &self,
        _: &str,
        _: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Box<dyn remotemedia_core::Node>, Vec<remotemedia_core::registry::ParamIssue>> {
        Err(vec![remotemedia_core::registry::ParamIssue::new(
            "",
            "validate does not build Python nodes",
        )])
    }
}

fn nodes(json: bool, host: &dyn Host) -> Result<()> {
    let registry = host.registry();
    if json {
        let infos: Vec<_> = registry.infos().collect();
        println!("{}", serde_json::to_string_pretty(&infos)?);
        return Ok(());
    }
    for info in registry.infos() {
        println!("{} [{:?}]", info.node_type, info.runtime);
        println!("    {}", info.description);
        if info.params.is_empty() {
            println!("    (no parameters)");
        }
        for p in &info.params {
            let mut line = format!("    - {}: {}", p.name, p.kind);
            if !p.choices.is_empty() {
                line += &format!(" ({})", p.choices.join(" | "));
            }
            match (p.minimum, p.maximum) {
                (Some(lo), Some(hi)) => line += &format!(" in {lo}..={hi}"),
                (Some(lo), None) => line += &format!(" >= {lo}"),
                _ => {}
            }
            if p.required {
                line += ", required";
            } else if let Some(d) = &p.default {
                line += &format!(", default {d}");
            }
            println!("{line}");
            if !p.description.is_empty() {
                println!("        {}", p.description);
            }
        }
        println!();
    }
    Ok(())
}

fn run(args: RunArgs, host: &dyn Host) -> Result<()> {
    let (manifest, origin) = load_manifest(&args.manifest)?;
    if args.print_manifest {
        println!("{}", manifest.to_json_pretty());
        return Ok(());
    }
    let output = args
        .output
        .clone()
        .expect("clap requires --output without --print-manifest");
    let pipeline = load_pipeline(manifest, &origin, host)?;
    let batch = args.input.len() > 1
        || args.input[0].is_dir()
        || (args.input[0].as_os_str() != "-"
            && !args.input[0].exists()
            && args.input[0].to_string_lossy().contains(['*', '?', '[']));
    if batch {
        let jobs = args
            .jobs
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        return batch::run_batch(
            &pipeline,
            &batch::BatchArgs {
                inputs: &args.input,
                out_dir: &output,
                jobs,
                skip_existing: args.skip_existing,
                summary: args.summary.as_deref(),
                chunk_ms: args.chunk_ms,
                subtype: args.subtype,
                audio_ext: &args.audio_format,
                quiet: args.quiet,
            },
        );
    }
    let input = &args.input[0];
    let runtime = BoundedRuntime::new(None)?;
    let job = run_file::FileJob {
        input,
        output: &output,
        chunk_ms: args.chunk_ms,
        subtype: args.subtype,
        audio_ext: &args.audio_format,
        trace: args.trace.is_some(),
    };
    let progress = progress_bar(input, args.quiet);
    let result = run_file::process_file(&runtime, &pipeline, &job, host, Some(&progress));
    progress.finish_and_clear();

    // Metrics and trace are written even when the run failed: they show where.
    let (report, metrics, trace) = match result {
        Ok(mut r) => {
            let (m, t) = (r.metrics.take(), r.trace.take());
            (Ok(r), m, t)
        }
        Err(f) => (Err(f.error), f.metrics.map(|m| *m), f.trace),
    };
    if let (Some(path), Some(m)) = (&args.metrics, &metrics) {
        std::fs::write(path, m.to_json() + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let (Some(path), Some(t)) = (&args.trace, &trace) {
        std::fs::write(path, serde_json::to_string(t)? + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let report = report?;
    if !args.quiet {
        let secs = report.audio_secs;
        eprintln!(
            "{}: {:.2} s of audio ({} Hz, {} ch, {} {}) in {:.1} ms ({:.0}x real time, reading included)",
            pipeline.name(),
            secs,
            report.info.sample_rate,
            report.info.channels,
            report.info.container,
            report.info.format,
            report.run_time.as_secs_f64() * 1e3,
            secs / report.run_time.as_secs_f64().max(1e-9),
        );
        for line in &report.written {
            eprintln!("  wrote {line}");
        }
    }
    Ok(())
}

/// A bar for inputs announcing more than [`PROGRESS_MIN_SECS`] of audio, on a terminal.
fn progress_bar(input: &Path, quiet: bool) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() || input.as_os_str() == "-" {
        return ProgressBar::hidden();
    }
    let info = match remotemedia_io::open(input) {
        Ok(r) => r.info().clone(),
        Err(_) => return ProgressBar::hidden(), // the run reports the error
    };
    let (Some(frames), Some(secs)) = (info.frames, info.duration_secs()) else {
        return ProgressBar::hidden();
    };
    if secs < PROGRESS_MIN_SECS {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(frames), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {percent:>3}% of {msg} (eta {eta})",
        )
        .expect("valid template"),
    );
    bar.set_message(format!("{secs:.1} s"));
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

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
