//! `remotemedia run`: one input file through the pipeline (with progress, metrics and trace),
//! or a batch when the inputs are several files, a directory or a glob.

use anyhow::{bail, Result};
use remotemedia_core::text::bounded;

use crate::args::RunArgs;
use crate::load::{load_manifest, load_pipeline};
use crate::progress::progress_bar;
use crate::runtime::BoundedRuntime;
use crate::{batch, run_file, Host};

pub(crate) fn run(args: RunArgs, host: &dyn Host) -> Result<()> {
    let (manifest, origin) = load_manifest(&args.manifest)?;
    if args.print_manifest {
        println!("{}", manifest.to_json_pretty());
        return Ok(());
    }
    let pipeline = load_pipeline(manifest, &origin, host)?;
    // `-i mic=a.wav -i far=b.wav`: one file per input (source node) of the pipeline.
    let named = named_inputs(&pipeline, &args.input)?;
    let mut args = args;
    if let Some(named) = &named {
        args.input = vec![named[0].1.clone()];
    }
    let batch = args.input.len() > 1
        || args.input[0].is_dir()
        || (args.input[0].as_os_str() != "-"
            && !args.input[0].exists()
            && args.input[0].to_string_lossy().contains(['*', '?', '[']));
    let output = match (&args.output, batch) {
        (Some(o), _) => o.clone(),
        (None, false) => "-".into(),
        (None, true) => {
            bail!("a batch writes one output per input file into a directory: give --output DIR")
        }
    };
    if batch && args.input_format.is_some() {
        bail!("--input-format reads one headerless input (a file or -), not a batch");
    }
    if args.segments_dir.is_some() && args.input.iter().any(|i| i.as_os_str() == "-") {
        bail!(
            "--segments-dir cuts the segments from the input file after the run: give input \
             files (not stdin)"
        );
    }
    let looks_like_a_file = output
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| {
            ["wav", "flac", "json", "mp3", "ogg", "oga", "opus", "jsonl"]
                .contains(&e.to_ascii_lowercase().as_str())
        });
    if batch && looks_like_a_file && !output.is_dir() {
        bail!(
            "the input ({}) is a batch (several files, a directory or a pattern), which writes one \
             output per file into a directory; --output {} names a file: give a directory",
            args.input
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            output.display()
        );
    }
    if !batch && output.as_os_str() != "-" {
        let same = |a: &std::path::Path, b: &std::path::Path| matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y);
        if same(&args.input[0], &output) {
            bail!(
                "--output {} is the input file: the run would overwrite what it reads; write to \
                 another file",
                output.display()
            );
        }
    }
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
                compression_level: args.compression_level,
                audio_ext: &args.audio_format,
                quiet: args.quiet,
                segments_dir: args.segments_dir.as_deref(),
            },
        );
    }
    let input = &args.input[0];
    let runtime = BoundedRuntime::new(None)?;
    let raw = args.input_format.as_deref().map(|f| run_file::RawInput {
        format: remotemedia_io::RawFormat::parse(f).expect("clap checked the value"),
        sample_rate: args.rate.expect("clap requires --rate"),
        channels: args.channels,
    });
    if named.is_some() && raw.is_some() {
        bail!("--input-format reads one headerless input, not named inputs (NAME=FILE)");
    }
    let job = run_file::FileJob {
        input,
        named: named.unwrap_or_default(),
        raw,
        output: &output,
        chunk_ms: args.chunk_ms,
        subtype: args.subtype,
        compression_level: args.compression_level,
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
        remotemedia_io::write_whole(path, (m.to_json() + "\n").as_bytes())?;
    }
    if let (Some(path), Some(t)) = (&args.trace, &trace) {
        remotemedia_io::write_whole(path, (serde_json::to_string(t)? + "\n").as_bytes())?;
    }
    let report = report?;
    if !args.quiet {
        let secs = report.audio_secs;
        eprintln!(
            "{}: {:.2} s of audio ({} Hz, {} ch, {} {}) in {:.1} ms ({:.0}x real time, reading included)",
            bounded(pipeline.name()),
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
    if let Some(dir) = &args.segments_dir {
        for line in run_file::write_segments(
            input,
            dir,
            &report.segments,
            &args.audio_format,
            args.subtype,
        )? {
            if !args.quiet {
                eprintln!("  wrote {line}");
            }
        }
    }
    Ok(())
}

/// The `NAME=FILE` inputs, when every `-i` is one and the pipeline has such inputs (its source
/// nodes): `None` for ordinary inputs (one file, a batch); an error naming the inputs for a
/// name that is none of them, or for a mix of named and unnamed inputs.
fn named_inputs(
    pipeline: &remotemedia_core::Pipeline,
    inputs: &[std::path::PathBuf],
) -> Result<Option<Vec<(String, std::path::PathBuf)>>> {
    let graph = pipeline.graph();
    let sources: Vec<&str> = graph.sources().map(|i| graph.ids()[i].as_str()).collect();
    let split = |p: &std::path::PathBuf| -> Option<(String, std::path::PathBuf)> {
        if p.exists() {
            return None; // a file whose name has '=' in it
        }
        let s = p.to_str()?;
        let (name, file) = s.split_once('=')?;
        (!name.is_empty() && !name.contains('/')).then(|| (name.to_string(), file.into()))
    };
    let named: Vec<_> = inputs.iter().filter_map(split).collect();
    if named.is_empty() {
        return Ok(None);
    }
    if named.len() != inputs.len() {
        bail!(
            "name every input or none: -i NAME=FILE for each of this pipeline's inputs ({})",
            sources.join(", ")
        );
    }
    for (name, _) in &named {
        if !sources.contains(&name.as_str()) {
            let inputs = sources.iter().map(|s| s.to_string()).collect();
            let e = remotemedia_core::ExecutorError::unknown_input(name, inputs);
            bail!("-i {name}=...: {e}");
        }
    }
    if named.iter().any(|(_, f)| f.as_os_str() == "-") {
        bail!("named inputs are files; stdin (-) takes one unnamed input");
    }
    Ok(Some(named))
}
