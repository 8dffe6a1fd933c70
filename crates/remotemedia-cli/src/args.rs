//! The command line's clap types: the subcommands and their arguments.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "remotemedia",
    version,
    about = "Run audio pipelines described by a JSON manifest",
    long_about = "Run audio pipelines described by a JSON manifest (see `remotemedia schema`) or a \
                  one-line description (\"A k=v ! B\").",
    after_help = "Examples:\n  \
        remotemedia run \"AudioResampleNode target_rate=16000\" -i in.wav -o out.wav\n  \
        remotemedia run \"SpeechVADNode\" -i talk.flac                 # segments as JSON lines\n  \
        remotemedia run job.json -i corpus/ -o cleaned/ --jobs 4       # a batch\n  \
        remotemedia nodes SpeechVADNode                               # one node's parameters\n  \
        remotemedia completions bash > ~/.local/share/bash-completion/completions/remotemedia"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Run a pipeline on an audio file.
    #[command(after_help = "Examples:\n  \
        remotemedia run \"GainNode db=-6 ! AudioResampleNode target_rate=16000\" -i in.wav -o out.flac\n  \
        remotemedia run \"SpeechVADNode\" -i talk.wav --segments-dir segs/ -o segs.json\n  \
        arecord -f S16_LE -r 16000 | remotemedia run \"SpeechVADNode emit=events\" -i - \\\n      \
        --input-format s16le --rate 16000 --chunk-ms 20\n  \
        remotemedia run job.json -i 'corpus/**/*.flac' -o cleaned/ --jobs 4 --skip-existing\n  \
        remotemedia run \"VADNode ! AudioResampleNode target_rate=8000\" --print-manifest > job.json")]
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
        /// Import the Python modules the manifests name and check each class is a
        /// remotemedia.Node (this runs the modules' top-level code). By default they are only
        /// located, and their source read, without running anything.
        #[arg(long = "import")]
        import: bool,
    },
    /// List the available node types and their parameters (or one type's, with an example).
    Nodes {
        /// One node type to describe (e.g. SpeechVADNode).
        name: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manifest JSON Schema.
    Schema,
    /// Serve pipelines over gRPC (remotemedia.v1) until SIGTERM or Ctrl-C.
    Serve(ServeArgs),
}

#[derive(clap::Args, Debug)]
pub(crate) struct ServeArgs {
    /// Address to listen on (overrides the config's `listen`; default 127.0.0.1:50051).
    #[arg(long)]
    pub(crate) listen: Option<std::net::SocketAddr>,
    /// Server configuration (TOML): auth tokens, limits, Python nodes, metrics address.
    #[arg(long, value_name = "server.toml")]
    pub(crate) config: Option<PathBuf>,
    /// Serve gRPC server reflection.
    #[arg(long)]
    pub(crate) reflection: bool,
    /// Serve Prometheus metrics on this address (`GET /metrics`).
    #[arg(long)]
    pub(crate) metrics_listen: Option<std::net::SocketAddr>,
    /// Log as JSON lines (one object per event) on stderr, for log collectors.
    #[arg(long)]
    pub(crate) log_json: bool,
}

#[derive(clap::Args, Debug)]
pub(crate) struct RunArgs {
    /// The pipeline: a manifest file (JSON), or a one-line description such as
    /// "FormatConverterNode target_format=f32 ! AudioResampleNode target_rate=16000 ! VADNode"
    /// (nodes joined by ' ! ', parameters as key=value with JSON or plain-string values).
    pub(crate) manifest: String,
    /// Input audio (WAV, FLAC, MP3, OGG/Vorbis; - for stdin: WAV, FLAC, OGG, MP3, or raw PCM
    /// with --input-format). Several files, directories or glob patterns make a batch run into
    /// the --output directory. A pipeline with several inputs (source nodes) takes one file
    /// per input by name: -i mic=mic.wav -i far=far.wav.
    #[arg(short, long, required_unless_present = "print_manifest", num_args = 1..)]
    pub(crate) input: Vec<PathBuf>,
    /// Headerless PCM input: its sample coding (s16le, s32le, f32le or f64le, interleaved),
    /// with --rate and --channels; e.g. `arecord -f S16_LE -r 16000 | remotemedia run ... -i -
    /// --input-format s16le --rate 16000 --channels 1`.
    #[arg(long, value_parser = ["s16le", "s32le", "f32le", "f64le"], requires = "rate")]
    pub(crate) input_format: Option<String>,
    /// Sample rate of raw PCM input (--input-format), in Hz.
    #[arg(long, requires = "input_format")]
    pub(crate) rate: Option<u32>,
    /// Channels of raw PCM input (--input-format); default 1.
    #[arg(long, requires = "input_format", default_value_t = 1)]
    pub(crate) channels: u16,
    /// Output: a .wav/.flac/.ogg/.opus/.mp3 (audio) or .json (segments, other values) file; - (the default)
    /// for stdout: WAV for audio, JSON lines (one per segment or event, as each is decided)
    /// for other values; a directory when the pipeline has several sinks (one file per sink
    /// id) or for a batch.
    #[arg(short, long)]
    pub(crate) output: Option<PathBuf>,
    /// Print the pipeline's manifest (JSON) and exit without running: turns a one-line
    /// description into a manifest file to keep.
    #[arg(long)]
    pub(crate) print_manifest: bool,
    /// Sample coding of audio outputs: PCM_16, PCM_24, PCM_32, FLOAT, DOUBLE (default: the
    /// one that keeps the sink's format exactly; FLAC takes PCM_16 or PCM_24); OPUS in a
    /// .ogg file (.ogg is Vorbis by default).
    #[arg(long, value_parser = parse_subtype)]
    pub(crate) subtype: Option<remotemedia_io::Subtype>,
    /// Lossy outputs (.ogg, .opus, .mp3): 0.0 = best quality (largest), 1.0 = smallest.
    /// Default: Vorbis quality 0.4, Opus's automatic bitrate, MP3 VBR V2.
    #[arg(long, value_name = "0..1")]
    pub(crate) compression_level: Option<f32>,
    /// Container of audio outputs written into a directory (batch or several sinks).
    #[arg(long, default_value = "wav", value_parser = remotemedia_io::AUDIO_FORMATS)]
    pub(crate) audio_format: String,
    /// Batch: files processed in parallel (default: the machine's cores).
    #[arg(short, long)]
    pub(crate) jobs: Option<usize>,
    /// Batch: leave files whose outputs exist (resume an interrupted batch).
    #[arg(long)]
    pub(crate) skip_existing: bool,
    /// Batch: JSON-lines summary (default OUTDIR/summary.jsonl).
    #[arg(long, value_name = "FILE.jsonl")]
    pub(crate) summary: Option<PathBuf>,
    /// Write per-node metrics as JSON here.
    #[arg(long, value_name = "FILE.json")]
    pub(crate) metrics: Option<PathBuf>,
    /// Write a Chrome trace-event file here (open it in https://ui.perfetto.dev).
    #[arg(long, value_name = "FILE.json")]
    pub(crate) trace: Option<PathBuf>,
    /// Feed the pipeline in chunks of this many milliseconds (streaming; output is identical
    /// to a whole-file run).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=3_600_000))]
    pub(crate) chunk_ms: u32,
    /// Also write each speech segment of the input to its own file in this directory
    /// (seg_0001.wav, ... and segments.jsonl, an index with each file's times), cut from the
    /// input file in one more pass at its own rate and format; one subdirectory per sink when
    /// several sinks emit segments. For a batch, each file's in DIR/<its relative path>/. Input
    /// files, not stdin.
    #[arg(long, value_name = "DIR")]
    pub(crate) segments_dir: Option<PathBuf>,
    /// No summary line on stderr.
    #[arg(short, long)]
    pub(crate) quiet: bool,
}

fn parse_subtype(s: &str) -> Result<remotemedia_io::Subtype, String> {
    remotemedia_io::Subtype::parse(s)
        .ok_or_else(|| format!("'{s}': expected PCM_16, PCM_24, PCM_32, FLOAT or DOUBLE"))
}
