//! One file through a pipeline in constant memory: a reader thread decodes blocks, the session
//! processes them as a stream, and audio outputs are written block by block as they come.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use indicatif::ProgressBar;
use remotemedia_core::data::Data;
use remotemedia_core::executor::{Pipeline, SinkCollector};
use remotemedia_io::{AudioInfo, AudioWriter, IoError, Subtype};

use crate::Host;

/// Blocks the reader thread may decode ahead of the pipeline.
const READ_AHEAD: usize = 4;

/// Headerless PCM input: how to read it.
#[derive(Clone, Copy, Debug)]
pub struct RawInput {
    pub format: remotemedia_io::RawFormat,
    pub sample_rate: u32,
    pub channels: u16,
}

/// How to run one file.
pub struct FileJob<'a> {
    pub input: &'a Path,
    /// Named inputs (`-i mic=a.wav -i far=b.wav`): one file per source node, read side by side
    /// in blocks of `chunk_ms` and pushed as a map by input name. Empty: `input` for every
    /// source.
    pub named: Vec<(String, PathBuf)>,
    /// The input is headerless PCM of this shape.
    pub raw: Option<RawInput>,
    /// A file (one sink) or a directory (one file per sink id); "-" is stdout.
    pub output: &'a Path,
    pub chunk_ms: u32,
    /// Output sample coding (default: the one that keeps the sink's format exactly).
    pub subtype: Option<Subtype>,
    /// Lossy outputs' compression level (0 best .. 1 smallest).
    pub compression_level: Option<f32>,
    /// Extension of audio outputs written into a directory (one of `remotemedia_io::AUDIO_FORMATS`).
    pub audio_ext: &'a str,
    /// Keep a Chrome trace of the run (one slice per node call: it grows with the input's
    /// length, so only when asked for).
    pub trace: bool,
}

/// What a finished run did.
pub struct FileReport {
    pub info: AudioInfo,
    pub audio_secs: f64,
    pub run_time: Duration,
    /// One line per output: path, container, format, source sink.
    pub written: Vec<String>,
    /// The output files (empty for stdout).
    pub outputs: Vec<PathBuf>,
    pub metrics: Option<remotemedia_core::PipelineMetrics>,
    /// Only when [`FileJob::trace`] asked for it.
    pub trace: Option<serde_json::Value>,
    /// The speech segments each segment-emitting sink produced, by sink id.
    pub segments: Vec<(String, Vec<remotemedia_core::data::Segment>)>,
}

/// A failed run with whatever metrics were gathered up to the failure.
pub struct FileFailure {
    pub error: anyhow::Error,
    pub metrics: Option<Box<remotemedia_core::PipelineMetrics>>,
    pub trace: Option<serde_json::Value>,
}

impl<E: Into<anyhow::Error>> From<E> for FileFailure {
    fn from(e: E) -> Self {
        Self {
            error: e.into(),
            metrics: None,
            trace: None,
        }
    }
}

fn ext(path: &Path) -> Option<String> {
    path.extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
}

/// Where each sink's output goes.
struct Outputs<'a> {
    job: &'a FileJob<'a>,
    as_dir: bool,
    writers: BTreeMap<String, (PathBuf, AudioWriter)>,
    other: SinkCollector,
    /// Values written to stdout as JSON lines as they came (`-o -`), the lines, and the
    /// segments among them (for `--segments-dir`).
    streamed_values: usize,
    streamed: usize,
    streamed_segments: BTreeMap<String, Vec<remotemedia_core::data::Segment>>,
}

impl Outputs<'_> {
    fn path_for(&self, id: &str, audio: bool) -> PathBuf {
        let e = if audio { self.job.audio_ext } else { "json" };
        if self.as_dir {
            self.job.output.join(format!("{id}.{e}"))
        } else if self.job.output.extension().is_none() && self.job.output.as_os_str() != "-" {
            // The batch runner names outputs by stem; the sink's kind picks the extension.
            self.job.output.with_extension(e)
        } else {
            self.job.output.to_path_buf()
        }
    }

    /// Writes a non-audio value to stdout as JSON lines, one per segment or event (one line for
    /// any other value), flushed at once: a live consumer gets each decision as it is made.
    fn stream_json(&mut self, host: &dyn Host, id: &str, data: &Data) -> Result<()> {
        use std::io::Write;
        let value = host.to_json(data).ok_or_else(|| {
            anyhow!(
                "sink '{id}' produced {}, which has no JSON form",
                data.describe()
            )
        })?;
        if let Data::Segments(s) = data {
            self.streamed_segments
                .entry(id.to_string())
                .or_default()
                .extend_from_slice(s);
        }
        self.streamed_values += 1;
        let items = match value {
            serde_json::Value::Array(items) => items,
            other => vec![other],
        };
        let mut out = std::io::stdout().lock();
        for item in items {
            serde_json::to_writer(&mut out, &item)?;
            out.write_all(b"\n")?;
            self.streamed += 1;
        }
        out.flush().context("cannot write to stdout")?;
        Ok(())
    }

    fn take(
        &mut self,
        host: &dyn Host,
        outs: Vec<remotemedia_core::executor::SinkOutput>,
    ) -> Result<()> {
        for o in outs {
            match &o.data {
                Data::Audio(_) if self.job.output.as_os_str() == "-" && self.json_to_stdout() => {
                    bail!(
                        "sink '{}' produces audio and stdout is a terminal: give -o FILE.wav (or \
                         pipe stdout to a program with -o - for WAV)",
                        o.node_id
                    );
                }
                Data::Audio(a) => {
                    if !self.writers.contains_key(&o.node_id) {
                        let path = self.path_for(&o.node_id, true);
                        if !self.as_dir && remotemedia_io::Container::for_path(&path).is_none() {
                            bail!(
                                "sink '{}' produces audio; give --output an audio file name ({}) \
                                 (or - for WAV on stdout), got {}",
                                o.node_id,
                                remotemedia_io::WRITABLE,
                                path.display()
                            );
                        }
                        let w = AudioWriter::create_with(
                            &path,
                            a.sample_rate(),
                            a.channels(),
                            a.format(),
                            self.job.subtype,
                            self.job.compression_level,
                        )?;
                        self.writers.insert(o.node_id.clone(), (path, w));
                    }
                    let (_, w) = self.writers.get_mut(&o.node_id).expect("inserted");
                    w.write(a)?;
                }
                _ if self.job.output.as_os_str() == "-" => {
                    self.stream_json(host, &o.node_id, &o.data)?;
                }
                _ => self.other.extend([o]),
            }
        }
        Ok(())
    }

    /// Whether `-o -` goes to a terminal (no place for WAV bytes, where JSON lines are read).
    fn json_to_stdout(&self) -> bool {
        use std::io::IsTerminal;
        std::io::stdout().is_terminal()
    }

    fn finish(mut self, host: &dyn Host) -> Result<Finished> {
        let mut written = Vec::new();
        let mut segments = Vec::new();
        let mut paths = Vec::new();
        let others = std::mem::take(&mut self.other).finish();
        let writers = std::mem::take(&mut self.writers);
        if writers.is_empty() && others.is_empty() && self.streamed_segments.is_empty() {
            if self.streamed_values > 0 {
                return Ok(Finished {
                    written: vec![format!("{} JSON line(s) to stdout", self.streamed)],
                    paths: Vec::new(),
                    segments: Vec::new(),
                });
            }
            bail!("the pipeline produced no output");
        }
        segments.extend(std::mem::take(&mut self.streamed_segments));
        if self.streamed_values > 0 {
            written.push(format!("{} JSON line(s) to stdout", self.streamed));
        }
        for (id, (path, w)) in writers {
            let (subtype, container) = (w.subtype(), w.container());
            let frames = w.finish()?;
            written.push(format!(
                "{} ({:?} {}, {frames} frames) from '{id}'",
                path.display(),
                container,
                subtype.as_str()
            ));
            paths.push(path);
        }
        for (id, data) in others {
            if let Data::Segments(s) = &data {
                segments.push((id.clone(), s.clone()));
            }
            let path = self.as_dir_or_json(&id, &data)?;
            let value = host.to_json(&data).ok_or_else(|| {
                anyhow!(
                    "sink '{id}' produced {}, which has no JSON form",
                    data.describe()
                )
            })?;
            remotemedia_io::write_json(&path, &value)?;
            written.push(format!(
                "{} ({}) from '{id}'",
                path.display(),
                data.describe()
            ));
            paths.push(path);
        }
        paths.retain(|p| p.as_os_str() != "-");
        Ok(Finished {
            written,
            paths,
            segments,
        })
    }
}

/// What [`Outputs::finish`] wrote, and the segments it saw.
struct Finished {
    written: Vec<String>,
    paths: Vec<PathBuf>,
    segments: Vec<(String, Vec<remotemedia_core::data::Segment>)>,
}

impl Outputs<'_> {
    fn as_dir_or_json(&self, id: &str, data: &Data) -> Result<PathBuf> {
        let path = self.path_for(id, false);
        if !self.as_dir && path.as_os_str() != "-" && ext(&path).as_deref() != Some("json") {
            bail!(
                "sink '{id}' produces {}; give --output a .json file name (got {})",
                data.describe(),
                path.display()
            );
        }
        Ok(path)
    }
}

/// Streams `job.input` through `pipeline`; outputs are complete (renamed into place) only when
/// the whole run succeeded.
pub fn process_file(
    runtime: &tokio::runtime::Runtime,
    pipeline: &Pipeline,
    job: &FileJob<'_>,
    host: &dyn Host,
    progress: Option<&ProgressBar>,
) -> Result<FileReport, FileFailure> {
    let stdin = job.input.as_os_str() == "-";
    let reader = match job.raw {
        Some(r) => {
            let src: Box<dyn std::io::Read + Send> = if stdin {
                crate::interrupt::interruptible_stdin()
            } else {
                let f = std::fs::File::open(job.input)
                    .with_context(|| format!("cannot open {}", job.input.display()))?;
                Box::new(std::io::BufReader::with_capacity(1 << 16, f))
            };
            remotemedia_io::open_raw(src, job.input, r.format, r.sample_rate, r.channels)?
        }
        None if stdin => {
            remotemedia_io::open_stream(crate::interrupt::interruptible_stdin(), job.input)?
        }
        None => remotemedia_io::open(job.input)?,
    };
    let info = reader.info().clone();
    let sinks = pipeline.sink_ids().len();
    let as_dir = job.output.as_os_str() != "-" && (sinks > 1 || job.output.is_dir());
    if sinks > 1
        && (job.output.is_file()
            || job.output.as_os_str() == "-"
            || ext(job.output).is_some_and(|e| ["wav", "flac", "json"].contains(&e.as_str())))
    {
        return Err(anyhow!(
            "the pipeline has {sinks} sinks ({}); --output must be a directory (one file per sink)",
            pipeline.sink_ids().join(", ")
        )
        .into());
    }
    if as_dir {
        std::fs::create_dir_all(job.output)
            .with_context(|| format!("cannot create directory {}", job.output.display()))?;
    }
    let block = ((info.sample_rate as u64 * job.chunk_ms as u64) / 1000).max(1) as usize;
    // A short file is read inline: a reader thread (and a wake-up per block) would cost more
    // than it overlaps, which is most of the per-file overhead of a corpus of short files.
    let short = info
        .frames
        .is_some_and(|f| f <= (block * READ_AHEAD) as u64);
    let blocks: Blocks = if !job.named.is_empty() {
        named_blocks(job)?
    } else if short {
        let mut reader = reader;
        Box::new(std::iter::from_fn(move || {
            reader
                .read_block(block)
                .transpose()
                .map(|r| r.map(|b| (b.frames() as u64, Data::Audio(b))))
        }))
    } else {
        Box::new(
            reader
                .spawn(block, READ_AHEAD)
                .1
                .into_iter()
                .map(|r| r.map(|b| (b.frames() as u64, Data::Audio(b)))),
        )
    };
    let mut outputs = Outputs {
        job,
        as_dir,
        writers: BTreeMap::new(),
        other: SinkCollector::default(),
        streamed_values: 0,
        streamed: 0,
        streamed_segments: BTreeMap::new(),
    };
    let t_run = Instant::now();
    let mut frames = 0u64;
    let result: Result<remotemedia_core::executor::Session> = runtime.block_on(async {
        let mut session = pipeline.session()?;
        if !job.trace {
            // Memory stays flat whatever the length: no slice per call is kept.
            session.set_trace_capacity(0);
        }
        let mut pushed = false;
        for b in blocks {
            crate::interrupt::check()?;
            // A read cut short by a signal is the interruption, not a read error.
            let b = match b {
                Ok(b) => b,
                Err(e) => {
                    crate::interrupt::check()?;
                    return Err(e.into());
                }
            };
            let (n, b) = b;
            frames += n;
            let outs = session.push(b).await?;
            pushed = true;
            outputs.take(host, outs)?;
            if let Some(p) = progress {
                p.set_position(frames);
            }
        }
        if !pushed {
            // An empty input is still one (empty) chunk, so every node sees the stream's shape.
            let empty = remotemedia_core::data::AudioBuffer::empty(
                info.format,
                info.sample_rate,
                info.channels,
            )?;
            let outs = session.push(Data::Audio(empty)).await?;
            outputs.take(host, outs)?;
        }
        crate::interrupt::check()?;
        let outs = session.finish().await?;
        outputs.take(host, outs)?;
        crate::interrupt::check()?;
        Ok(session)
    });
    let run_time = t_run.elapsed();
    match result {
        Ok(session) => {
            let Finished {
                written,
                paths: outputs,
                segments,
            } = outputs.finish(host)?;
            Ok(FileReport {
                outputs,
                segments,
                audio_secs: frames as f64 / info.sample_rate as f64,
                info,
                run_time,
                written,
                metrics: Some(session.metrics()),
                trace: job.trace.then(|| session.chrome_trace()),
            })
        }
        // Dropping `outputs` removes the unfinished temporary files.
        Err(error) => Err(FileFailure {
            // Reader and writer errors name their file already.
            error: if error.downcast_ref::<remotemedia_io::IoError>().is_some() {
                error
            } else {
                error.context(job.input.display().to_string())
            },
            metrics: pipeline.last_metrics().map(Box::new),
            trace: if job.trace {
                pipeline.last_trace()
            } else {
                None
            },
        }),
    }
}

/// What a run pushes, step by step: the first input's frames and the chunk.
type Blocks = Box<dyn Iterator<Item = Result<(u64, Data), IoError>>>;

/// Named inputs read side by side: each step a block of `chunk_ms` from every input not yet at
/// its end, as a map by input name; the frame count is the first input's.
fn named_blocks(job: &FileJob<'_>) -> Result<Blocks, FileFailure> {
    let mut readers = Vec::with_capacity(job.named.len());
    for (name, path) in &job.named {
        let r = remotemedia_io::open(path)?;
        let block = ((r.info().sample_rate as u64 * job.chunk_ms as u64) / 1000).max(1) as usize;
        readers.push((name.clone(), r, block, false));
    }
    Ok(Box::new(std::iter::from_fn(move || {
        let mut map = BTreeMap::new();
        let mut first = 0u64;
        for (i, (name, reader, block, done)) in readers.iter_mut().enumerate() {
            if *done {
                continue;
            }
            match reader.read_block(*block) {
                Ok(Some(b)) => {
                    if i == 0 {
                        first = b.frames() as u64;
                    }
                    map.insert(name.clone(), Data::Audio(b));
                }
                Ok(None) => *done = true,
                Err(e) => return Some(Err(e)),
            }
        }
        (!map.is_empty()).then(|| Ok((first, Data::Map(map))))
    })))
}

/// `--segments-dir`: each sink's segments cut from `input` into `dir` (or `dir/<sink>` when
/// several sinks emit segments), `seg_0001.<audio_ext>`, ... with a `segments.jsonl` index; one
/// line per directory.
pub fn write_segments(
    input: &Path,
    dir: &Path,
    by_sink: &[(String, Vec<remotemedia_core::data::Segment>)],
    audio_ext: &str,
    subtype: Option<Subtype>,
) -> Result<Vec<String>> {
    if by_sink.is_empty() {
        bail!("--segments-dir: no sink of this pipeline emitted speech segments (a VAD node with emit=\"segments\")");
    }
    let mut lines = Vec::new();
    for (sink, segments) in by_sink {
        let out = if by_sink.len() > 1 {
            dir.join(sink)
        } else {
            dir.to_path_buf()
        };
        std::fs::create_dir_all(&out)
            .with_context(|| format!("cannot create directory {}", out.display()))?;
        let names: Vec<String> = (1..=segments.len())
            .map(|i| format!("seg_{i:04}.{audio_ext}"))
            .collect();
        let paths: Vec<_> = names.iter().map(|n| out.join(n)).collect();
        remotemedia_io::write_segments(input, segments, &paths, subtype)?;
        let index_path = out.join("segments.jsonl");
        remotemedia_io::write_segment_index(&index_path, &names, segments)?;
        lines.push(format!(
            "{} segment files and {} from '{sink}'",
            segments.len(),
            index_path.display()
        ));
    }
    Ok(lines)
}
