//! `remotemedia run MANIFEST -i DIR_OR_GLOB... -o OUTDIR --jobs N`: a corpus through one
//! pipeline on N worker threads (each with its own fork of the pipeline), relative paths kept,
//! one progress bar, a JSON-lines summary, and `--skip-existing` to resume.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use remotemedia_core::executor::Pipeline;
use remotemedia_core::text::bounded;
use remotemedia_io::Subtype;

use crate::run_file::{process_file, FileJob};
use crate::NativeHost;

/// Extensions a directory walk picks up.
const AUDIO_EXTS: &[&str] = &["wav", "wave", "flac", "mp3", "ogg", "oga", "opus"];

/// One input file and its path relative to the root it was found under.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub path: PathBuf,
    pub rel: PathBuf,
}

/// Settings of a batch.
pub struct BatchArgs<'a> {
    pub inputs: &'a [PathBuf],
    pub out_dir: &'a Path,
    pub jobs: usize,
    pub skip_existing: bool,
    pub summary: Option<&'a Path>,
    pub chunk_ms: u32,
    pub subtype: Option<Subtype>,
    pub compression_level: Option<f32>,
    pub audio_ext: &'a str,
    pub quiet: bool,
    /// Each file's speech segments cut into `DIR/<its relative path without extension>/`.
    pub segments_dir: Option<&'a Path>,
}

fn is_audio(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| AUDIO_EXTS.contains(&e.to_ascii_lowercase().as_str()))
}

fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Expands directories (recursively, audio extensions only, sorted) and glob patterns
/// (relative to the pattern's fixed leading directories); a plain file keeps its name.
pub fn expand(inputs: &[PathBuf]) -> Result<Vec<Item>> {
    let mut items = Vec::new();
    for input in inputs {
        let text = input.to_string_lossy();
        if input.is_dir() {
            let mut found = Vec::new();
            walk(input, &mut found).with_context(|| format!("cannot list {}", input.display()))?;
            found.sort();
            for path in found {
                let rel = path.strip_prefix(input).expect("under root").to_path_buf();
                items.push(Item { path, rel });
            }
        } else if has_glob(&text) {
            // The root is the pattern's leading components without wildcards.
            let root: PathBuf = input
                .components()
                .take_while(|c| !has_glob(&c.as_os_str().to_string_lossy()))
                .collect();
            let paths = glob::glob(&text)
                .with_context(|| format!("bad pattern {text}"))?
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| format!("cannot expand {text}"))?;
            if paths.is_empty() {
                bail!("{text}: no file matches");
            }
            for path in paths.into_iter().filter(|p| p.is_file()) {
                let rel = path.strip_prefix(&root).unwrap_or(&path).to_path_buf();
                items.push(Item { path, rel });
            }
        } else if input.is_file() {
            let rel = PathBuf::from(input.file_name().unwrap_or(input.as_os_str()));
            items.push(Item {
                path: input.clone(),
                rel,
            });
        } else {
            bail!("{}: no such file or directory", input.display());
        }
    }
    Ok(items)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else if is_audio(&path) {
            out.push(path);
        }
    }
    Ok(())
}

/// The output of `item`: OUTDIR/rel without its extension (the sink's kind adds one), or a
/// directory of that name for several sinks.
fn output_for(out_dir: &Path, item: &Item) -> PathBuf {
    out_dir.join(&item.rel).with_extension("")
}

/// True when a previous run completed this item (outputs are renamed into place only on
/// success, so their presence means done).
fn finished(output: &Path, sinks: &[&str], audio_ext: &str) -> bool {
    let exists = |p: &Path| {
        ["json", audio_ext]
            .iter()
            .any(|e| p.with_extension(e).is_file())
    };
    if sinks.len() > 1 {
        sinks.iter().all(|id| exists(&output.join(id)))
    } else {
        exists(output)
    }
}

/// Runs the batch; fails (after processing everything) when any file failed.
pub fn run_batch(pipeline: &Pipeline, args: &BatchArgs<'_>) -> Result<()> {
    let outcome = run_corpus(pipeline, args)?;
    if outcome.failed > 0 {
        bail!(
            "{} of {} file(s) failed (see {})",
            outcome.failed,
            outcome.records.len(),
            outcome.summary_path.display()
        );
    }
    Ok(())
}

/// What a batch did.
pub struct BatchOutcome {
    /// The summary's records (`file`, `status` ok/error/skipped, `error`, `audio_seconds`,
    /// `wall_seconds`, `outputs`), in input order.
    pub records: Vec<serde_json::Value>,
    pub failed: usize,
    pub skipped: usize,
    pub summary_path: PathBuf,
}

/// Runs the batch and returns every file's record; a failing file is recorded, not returned
/// as an error (errors are for the batch as a whole: no input, an unwritable summary).
///
/// Non-audio outputs are rendered with the native JSON forms: a `Host` is not `Sync` (the
/// Python host holds interpreter state), so workers do not share it.
pub fn run_corpus(pipeline: &Pipeline, args: &BatchArgs<'_>) -> Result<BatchOutcome> {
    let host = &NativeHost;
    let items = expand(args.inputs)?;
    if items.is_empty() {
        bail!(
            "no audio files found in the given inputs ({})",
            AUDIO_EXTS.join(", ")
        );
    }
    std::fs::create_dir_all(args.out_dir)
        .with_context(|| format!("cannot create {}", args.out_dir.display()))?;
    let summary_path = args
        .summary
        .map(Path::to_path_buf)
        .unwrap_or_else(|| args.out_dir.join("summary.jsonl"));
    // Resuming: the records of files done by an earlier run are carried over to the files this
    // run skips (their outputs, audio seconds), so the new summary still describes them.
    let earlier = if args.skip_existing {
        earlier_records(&summary_path)
    } else {
        Default::default()
    };
    let summary = Mutex::new(std::io::BufWriter::new(
        std::fs::File::create(&summary_path)
            .with_context(|| format!("cannot create {}", summary_path.display()))?,
    ));
    let sinks: Vec<&str> = pipeline.sink_ids();
    let bar = if args.quiet || !std::io::stderr().is_terminal() {
        ProgressBar::hidden()
    } else {
        let b =
            ProgressBar::with_draw_target(Some(items.len() as u64), ProgressDrawTarget::stderr());
        b.set_style(
            ProgressStyle::with_template(
                "[{elapsed_precise}] {wide_bar} {pos}/{len} files, {msg} (eta {eta})",
            )
            .expect("valid template"),
        );
        b
    };
    let next = AtomicUsize::new(0);
    let failed = AtomicUsize::new(0);
    let skipped = AtomicUsize::new(0);
    let audio_secs = Mutex::new(0f64);
    let records = Mutex::new(Vec::with_capacity(items.len()));
    let jobs = args.jobs.clamp(1, items.len());
    let t0 = Instant::now();
    let worker = |pipeline: Pipeline| -> Result<()> {
        let runtime = crate::BoundedRuntime::new(Some(1))?;
        loop {
            // Ctrl-C / SIGTERM: no new file is started (the one in progress stops within a
            // block and leaves no partial output; finished ones stay, for --skip-existing).
            crate::interrupt::check()?;
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(item) = items.get(i) else {
                return Ok(());
            };
            let output = output_for(args.out_dir, item);
            let t = Instant::now();
            let file = item.path.display().to_string();
            let mut record = serde_json::json!({"file": file});
            if args.skip_existing && finished(&output, &sinks, args.audio_ext) {
                skipped.fetch_add(1, Ordering::Relaxed);
                if let Some(before) = earlier.get(&file) {
                    record = before.clone();
                }
                record["status"] = "skipped".into();
            } else {
                let parent = output.parent().unwrap_or(args.out_dir);
                let job = FileJob {
                    named: Vec::new(),
                    raw: None,
                    input: &item.path,
                    output: &output,
                    chunk_ms: args.chunk_ms,
                    subtype: args.subtype,
                    compression_level: args.compression_level,
                    audio_ext: args.audio_ext,
                    trace: false,
                };
                let result = std::fs::create_dir_all(parent)
                    .with_context(|| format!("cannot create {}", parent.display()))
                    .map_err(Into::into)
                    .and_then(|_| process_file(&runtime, &pipeline, &job, host, None))
                    .and_then(|report| match args.segments_dir {
                        Some(dir) => crate::run_file::write_segments(
                            &item.path,
                            &output_for(dir, item),
                            &report.segments,
                            args.audio_ext,
                            args.subtype,
                        )
                        .map(|_| report)
                        .map_err(Into::into),
                        None => Ok(report),
                    });
                match result {
                    Ok(report) => {
                        record["status"] = "ok".into();
                        record["audio_seconds"] = report.audio_secs.into();
                        record["outputs"] = report
                            .outputs
                            .iter()
                            .map(|p| p.display().to_string())
                            .collect::<Vec<_>>()
                            .into();
                        let mut total = audio_secs.lock().expect("not poisoned");
                        *total += report.audio_secs;
                        bar.set_message(format!("{:.2} h of audio", *total / 3600.0));
                    }
                    Err(f) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        record["status"] = "error".into();
                        record["error"] = crate::error_text(&f.error).into();
                        bar.suspend(|| eprintln!("error: {}", crate::error_text(&f.error)));
                    }
                }
            }
            record["wall_seconds"] = t.elapsed().as_secs_f64().into();
            {
                let mut s = summary.lock().expect("not poisoned");
                writeln!(s, "{record}")
                    .and_then(|_| s.flush())
                    .with_context(|| format!("cannot write {}", summary_path.display()))?;
            }
            records.lock().expect("not poisoned").push((i, record));
            bar.inc(1);
        }
    };
    std::thread::scope(|scope| -> Result<()> {
        let mut handles = Vec::new();
        for w in 0..jobs {
            let p = if w == 0 {
                pipeline.clone()
            } else {
                pipeline.fork()?
            };
            let worker = &worker;
            handles.push(scope.spawn(move || worker(p)));
        }
        for h in handles {
            h.join().expect("a batch worker panicked")?;
        }
        Ok(())
    })?;
    bar.finish_and_clear();
    let failed = failed.into_inner();
    let skipped = skipped.into_inner();
    let done = items.len() - failed - skipped;
    if !args.quiet {
        eprintln!(
            "{}: {done} file(s) done, {skipped} skipped, {failed} failed; {:.1} s of audio in \
             {:.1} s with {jobs} job(s); summary in {}",
            bounded(pipeline.name()),
            audio_secs.into_inner().expect("not poisoned"),
            t0.elapsed().as_secs_f64(),
            summary_path.display()
        );
    }
    let mut records = records.into_inner().expect("not poisoned");
    records.sort_by_key(|(i, _)| *i);
    Ok(BatchOutcome {
        records: records.into_iter().map(|(_, r)| r).collect(),
        failed,
        skipped,
        summary_path,
    })
}

/// The last `ok` record of each file in an earlier run's summary (none if it cannot be read).
fn earlier_records(path: &Path) -> std::collections::HashMap<String, serde_json::Value> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Default::default();
    };
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|r| r["status"] == "ok" || (r["status"] == "skipped" && r.get("outputs").is_some()))
        .filter_map(|r| Some((r["file"].as_str()?.to_string(), r)))
        .collect()
}
