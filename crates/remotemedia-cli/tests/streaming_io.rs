//! `remotemedia run` on streams and corpora: stdin/stdout, FLAC out, a corpus with a corrupt
//! file in it, and resuming with --skip-existing.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use remotemedia_core::data::{AudioBuffer, SampleFormat};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn cmd() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_remotemedia"));
    c.current_dir(repo()).env_remove("REMOTEMEDIA_TEST_NODES");
    c
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const PASS: &str = r#"{"version": "v1", "metadata": {"name": "pass"},
  "nodes": [{"id": "p", "node_type": "PassThroughNode", "params": {}}], "connections": []}"#;

fn noise(frames: usize, rate: u32) -> AudioBuffer {
    let mut x: u32 = 99;
    let v: Vec<i16> = (0..frames * 2)
        .map(|_| {
            x = x.wrapping_mul(1664525).wrapping_add(1013904223);
            (x >> 16) as i16
        })
        .collect();
    AudioBuffer::new(v.into(), rate, 2).unwrap()
}

#[test]
fn wav_through_stdin_and_stdout_is_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("pass.json");
    std::fs::write(&manifest, PASS).unwrap();
    let audio = noise(30_000, 16000);
    let src = dir.path().join("in.wav");
    remotemedia_io::write(&src, &audio, None).unwrap();
    let mut child = cmd()
        .args([
            "run",
            manifest.to_str().unwrap(),
            "-i",
            "-",
            "-o",
            "-",
            "-q",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let bytes = std::fs::read(&src).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || stdin.write_all(&bytes));
    let out: Output = child.wait_with_output().unwrap();
    feeder.join().unwrap().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let back_path = dir.path().join("back.wav");
    std::fs::write(&back_path, &out.stdout).unwrap();
    let back = remotemedia_io::read(&back_path).unwrap();
    assert_eq!(back, audio);
}

#[test]
fn flac_output_is_bit_exact_and_subtype_is_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("pass.json");
    std::fs::write(&manifest, PASS).unwrap();
    let audio = noise(25_000, 44100);
    let src = dir.path().join("in.flac");
    remotemedia_io::write(&src, &audio, None).unwrap();
    let out = dir.path().join("out.flac");
    let o = cmd()
        .args([
            "run",
            manifest.to_str().unwrap(),
            "-i",
            src.to_str().unwrap(),
        ])
        .args(["-o", out.to_str().unwrap(), "--chunk-ms", "37"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let back = remotemedia_io::read(&out).unwrap();
    assert_eq!(back.format(), SampleFormat::I16);
    assert_eq!(back, audio);

    let out24 = dir.path().join("out24.wav");
    let o = cmd()
        .args([
            "run",
            manifest.to_str().unwrap(),
            "-i",
            src.to_str().unwrap(),
        ])
        .args(["-o", out24.to_str().unwrap(), "--subtype", "PCM_24"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let back = remotemedia_io::read(&out24).unwrap();
    assert_eq!(back.format(), SampleFormat::I32);
    assert_eq!(back.to_format(SampleFormat::I16), audio);
}

#[test]
fn a_corrupt_input_fails_cleanly_and_leaves_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("pass.json");
    std::fs::write(&manifest, PASS).unwrap();
    let src = dir.path().join("cut.wav");
    remotemedia_io::write(&src, &noise(10_000, 16000), None).unwrap();
    let bytes = std::fs::read(&src).unwrap();
    std::fs::write(&src, &bytes[..bytes.len() - 1001]).unwrap();
    let out = dir.path().join("out.wav");
    let o = cmd()
        .args([
            "run",
            manifest.to_str().unwrap(),
            "-i",
            src.to_str().unwrap(),
        ])
        .args(["-o", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let e = text(&o.stderr);
    assert!(e.contains("cut.wav") && e.contains("truncated"), "{e}");
    assert!(!out.exists());
}

fn summary(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_corpus_keeps_relative_paths_records_failures_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("pass.json");
    std::fs::write(&manifest, PASS).unwrap();
    let corpus = dir.path().join("corpus");
    std::fs::create_dir_all(corpus.join("a/b")).unwrap();
    let files = ["one.wav", "a/two.flac", "a/b/three.wav", "a/b/four.wav"];
    for (i, f) in files.iter().enumerate() {
        remotemedia_io::write(&corpus.join(f), &noise(1000 * (i + 1), 8000), None).unwrap();
    }
    std::fs::write(corpus.join("a/bad.wav"), b"RIFF\x10\x00\x00\x00WAVEjunk").unwrap();
    std::fs::write(corpus.join("notes.txt"), b"not audio, not picked up").unwrap();
    let out = dir.path().join("out");
    let run = |extra: &[&str]| {
        cmd()
            .args([
                "run",
                manifest.to_str().unwrap(),
                "-i",
                corpus.to_str().unwrap(),
            ])
            .args([
                "-o",
                out.to_str().unwrap(),
                "--jobs",
                "2",
                "--audio-format",
                "flac",
            ])
            .args(extra)
            .output()
            .unwrap()
    };
    let o = run(&[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let e = text(&o.stderr);
    assert!(e.contains("1 of 5 file(s) failed"), "{e}");
    for (i, f) in files.iter().enumerate() {
        let p = out.join(f).with_extension("flac");
        assert_eq!(
            remotemedia_io::read(&p).unwrap(),
            noise(1000 * (i + 1), 8000),
            "{f}"
        );
    }
    assert!(!out.join("a/bad.flac").exists());
    let rows = summary(&out.join("summary.jsonl"));
    assert_eq!(rows.len(), 5);
    let bad: Vec<_> = rows.iter().filter(|r| r["status"] == "error").collect();
    assert_eq!(bad.len(), 1);
    assert!(bad[0]["file"].as_str().unwrap().ends_with("bad.wav"));
    assert!(bad[0]["error"].as_str().unwrap().contains("bad.wav"));
    let ok_secs: f64 = rows
        .iter()
        .filter(|r| r["status"] == "ok")
        .map(|r| r["audio_seconds"].as_f64().unwrap())
        .sum();
    assert!((ok_secs - 10_000.0 / 8000.0).abs() < 1e-9, "{ok_secs}");

    // Resume: finished files are skipped, the failing one is tried again.
    std::fs::remove_file(out.join("a/two.flac")).unwrap();
    let o = run(&["--skip-existing"]);
    assert_eq!(o.status.code(), Some(1));
    let rows = summary(&out.join("summary.jsonl"));
    let status = |suffix: &str| {
        rows.iter()
            .find(|r| r["file"].as_str().unwrap().ends_with(suffix))
            .unwrap()["status"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(status("one.wav"), "skipped");
    assert_eq!(status("three.wav"), "skipped");
    assert_eq!(status("two.flac"), "ok");
    assert_eq!(status("bad.wav"), "error");
    assert!(out.join("a/two.flac").exists());
    // The skipped files keep what the earlier run recorded: the summary still adds up.
    let ok_or_skipped_secs: f64 = rows
        .iter()
        .filter(|r| r["status"] != "error")
        .map(|r| r["audio_seconds"].as_f64().unwrap())
        .sum();
    assert!((ok_or_skipped_secs - ok_secs).abs() < 1e-9, "{rows:?}");
    let one = rows
        .iter()
        .find(|r| r["file"].as_str().unwrap().ends_with("one.wav"))
        .unwrap();
    assert!(
        one["outputs"].as_array().is_some_and(|o| !o.is_empty()),
        "{one}"
    );
    // And across a second resume too.
    let o = run(&["--skip-existing"]);
    assert_eq!(o.status.code(), Some(1));
    let again = summary(&out.join("summary.jsonl"));
    let secs: f64 = again
        .iter()
        .filter(|r| r["status"] != "error")
        .map(|r| r["audio_seconds"].as_f64().unwrap())
        .sum();
    assert!((secs - ok_secs).abs() < 1e-9, "{again:?}");
}

fn maxrss_kib(usage: &libc::rusage) -> u64 {
    if cfg!(target_os = "macos") {
        usage.ru_maxrss as u64 / 1024
    } else {
        usage.ru_maxrss as u64
    }
}

/// This test process's peak RSS in KiB so far.
fn own_peak_rss_kib() -> u64 {
    // SAFETY: getrusage writes into the zeroed struct we own.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) }, 0);
    maxrss_kib(&usage)
}

/// Runs `remotemedia` to completion and returns its exit status and peak RSS in KiB (wait4
/// reports the child's maximum resident set size; Linux carries the peak across exec, so it is
/// at least this process's peak at the time of the spawn).
#[allow(clippy::zombie_processes)] // reaped by wait4, which also gives the rusage
fn peak_rss_kib(c: &mut Command) -> (bool, u64) {
    let child = c
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut status = 0;
    // SAFETY: wait4 writes into the zeroed rusage and status we own.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as i32);
    (
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        maxrss_kib(&usage),
    )
}

/// Peak memory must not grow with the input's length. The run used to keep one trace slice
/// per node call and render them all as JSON at the end even when no `--trace` was asked for
/// (92 MiB for 60 minutes at 1 s chunks); a 6x longer stream now peaks within a few MiB of the
/// short one. Memory, not time, so it is stable on a loaded machine.
#[test]
fn peak_memory_does_not_grow_with_the_length_of_the_input() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("pass.json");
    std::fs::write(&manifest, PASS).unwrap();
    let rate = 8000;
    let mut rss = Vec::new();
    for minutes in [2usize, 12] {
        let src = dir.path().join(format!("{minutes}.wav"));
        // Written block by block: the test process stays small, and a forked child starts
        // with its parent's resident set, which would count in the child's peak.
        let mut w =
            remotemedia_io::AudioWriter::create(&src, rate, 2, SampleFormat::I16, None).unwrap();
        let block = noise(rate as usize, rate);
        for _ in 0..minutes * 60 {
            w.write(&block).unwrap();
        }
        w.finish().unwrap();
        let out = dir.path().join(format!("{minutes}-out.wav"));
        let metrics = dir.path().join(format!("{minutes}.json"));
        // 10 ms chunks: 72 000 chunks for the long file.
        let parent = own_peak_rss_kib();
        let (ok, kib) = peak_rss_kib(cmd().args([
            "run",
            manifest.to_str().unwrap(),
            "-i",
            src.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--chunk-ms",
            "10",
            "--metrics",
            metrics.to_str().unwrap(),
            "-q",
        ]));
        assert!(ok, "run over {minutes} min failed");
        assert_eq!(
            remotemedia_io::open(&out).unwrap().info().frames,
            Some((minutes * 60 * rate as usize) as u64)
        );
        // No per-call record is kept without --trace: every call counts as a dropped slice.
        let m: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&metrics).unwrap()).unwrap();
        let calls = m["nodes"][0]["calls"].as_u64().unwrap();
        assert_eq!(calls, (minutes * 6000) as u64 + 1, "chunks + flush");
        assert_eq!(m["trace_events_dropped"].as_u64(), Some(calls));
        rss.push((kib, parent));
    }
    let ((short, _), (long, parent)) = (rss[0], rss[1]);
    // What this process may have added to the long run's figure since the short run is not
    // the child's growth.
    assert!(
        long <= short.max(parent) + 8 * 1024,
        "peak RSS grew with length: {short} KiB for 2 min, {long} KiB for 12 min \
         (this process: {parent} KiB)"
    );
}

fn run_with_stdin(args: &[&str], stdin_bytes: Vec<u8>) -> Output {
    let mut child = cmd()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || stdin.write_all(&stdin_bytes));
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap().unwrap();
    out
}

fn i16_samples(a: &AudioBuffer) -> Vec<i16> {
    match a.samples() {
        remotemedia_core::data::Samples::I16(b) => b.to_vec(),
        other => panic!("expected i16, got {:?}", other.format()),
    }
}

#[test]
fn stdin_takes_flac_and_raw_pcm_as_well_as_wav() {
    let dir = tempfile::tempdir().unwrap();
    let audio = noise(20_000, 16000);
    let flac = dir.path().join("in.flac");
    remotemedia_io::write(&flac, &audio, None).unwrap();
    let back = |o: &Output| {
        assert!(o.status.success(), "{}", text(&o.stderr));
        let p = dir.path().join("back.wav");
        std::fs::write(&p, &o.stdout).unwrap();
        remotemedia_io::read(&p).unwrap()
    };
    let o = run_with_stdin(
        &["run", "PassThroughNode", "-i", "-", "-o", "-", "-q"],
        std::fs::read(&flac).unwrap(),
    );
    assert_eq!(back(&o), audio, "FLAC on stdin");
    // Headerless s16le, stereo, at 16 kHz.
    let raw: Vec<u8> = i16_samples(&audio)
        .iter()
        .flat_map(|s| s.to_le_bytes())
        .collect();
    let o = run_with_stdin(
        &[
            "run",
            "PassThroughNode",
            "-i",
            "-",
            "-o",
            "-",
            "-q",
            "--input-format",
            "s16le",
            "--rate",
            "16000",
            "--channels",
            "2",
        ],
        raw.clone(),
    );
    assert_eq!(back(&o), audio, "raw PCM on stdin");
    // Without --input-format, raw bytes are refused with the way to give them.
    let o = run_with_stdin(&["run", "PassThroughNode", "-i", "-", "-o", "-"], raw);
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("for headerless PCM give its format, rate and channels"),
        "{}",
        text(&o.stderr)
    );
    // --rate without --input-format is a usage error.
    let o = cmd()
        .args(["run", "PassThroughNode", "-i", "-", "--rate", "16000"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
}

#[test]
fn json_outputs_on_stdout_are_json_lines_and_o_is_optional() {
    let dir = tempfile::tempdir().unwrap();
    let wav = repo().join("examples/speech_48k.wav");
    let file = dir.path().join("segs.json");
    let o = cmd()
        .args(["run", "SpeechVADNode", "-i"])
        .arg(&wav)
        .args(["-o", file.to_str().unwrap(), "-q"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let whole: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert!(!whole.is_empty());
    // No -o: stdout, one JSON object per line, the same segments.
    let o = cmd()
        .args(["run", "SpeechVADNode", "-i"])
        .arg(&wav)
        .args(["-q"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let lines: Vec<serde_json::Value> = text(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines, whole);
    // Events too, each as it is decided.
    let o = cmd()
        .args(["run", "SpeechVADNode emit=events", "-i"])
        .arg(&wav)
        .args(["-o", "-", "-q", "--chunk-ms", "20"])
        .output()
        .unwrap();
    let kinds: Vec<String> = text(&o.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["event"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(kinds.len(), 2 * whole.len());
    assert!(
        kinds.chunks(2).all(|p| p == ["speech_start", "speech_end"]),
        "{kinds:?}"
    );
}

#[test]
fn stdout_gets_each_block_while_the_producer_is_still_sending() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("in.wav");
    remotemedia_io::write(&src, &noise(16_000, 16000), None).unwrap();
    let wav = std::fs::read(&src).unwrap();
    let mut child = cmd()
        .args([
            "run",
            "GainNode db=-6",
            "-i",
            "-",
            "-o",
            "-",
            "-q",
            "--chunk-ms",
            "20",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // The header and the first quarter of the audio; the producer then waits.
    stdin.write_all(&wav[..44 + 16_000]).unwrap();
    stdin.flush().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut first = vec![0u8; 44 + 8_000];
        let got = stdout.read_exact(&mut first).map(|()| first);
        let _ = tx.send(got);
        let mut rest = Vec::new();
        let _ = stdout.read_to_end(&mut rest);
    });
    // Output arrives though the input is not finished (it used to wait for 64 KiB to gather).
    let first = rx
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("audio on stdout before the input ended")
        .unwrap();
    assert_eq!(&first[..4], b"RIFF");
    stdin.write_all(&wav[44 + 16_000..]).unwrap();
    drop(stdin);
    assert!(child.wait().unwrap().success());
}
