//! The `remotemedia` binary end to end, on files a user would have.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn remotemedia(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_remotemedia"))
        .args(args)
        .current_dir(repo())
        .env_remove("REMOTEMEDIA_TEST_NODES")
        .output()
        .expect("binary runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn assert_clean_failure(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(1), "stderr: {}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.starts_with("error: "), "{err}");
    assert!(
        !err.contains("panicked at") && !err.contains("RUST_BACKTRACE"),
        "{err}"
    );
    err
}

fn wav_info(path: &Path) -> (hound::WavSpec, u32) {
    let r = hound::WavReader::open(path).unwrap();
    (r.spec(), r.duration())
}

#[test]
fn runs_the_bundled_example_to_a_16k_i16_wav() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.wav");
    let metrics = dir.path().join("metrics.json");
    let trace = dir.path().join("trace.json");
    let o = remotemedia(&[
        "run",
        "examples/resample_to_16k_i16.json",
        "--input",
        "examples/speech_48k.wav",
        "--output",
        out.to_str().unwrap(),
        "--metrics",
        metrics.to_str().unwrap(),
        "--trace",
        trace.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let (in_spec, in_frames) = wav_info(&repo().join("examples/speech_48k.wav"));
    assert_eq!(in_spec.sample_rate, 48_000);
    let (spec, frames) = wav_info(&out);
    assert_eq!(
        (spec.sample_rate, spec.channels, spec.bits_per_sample),
        (16_000, 1, 16)
    );
    assert_eq!(spec.sample_format, hound::SampleFormat::Int);
    assert_eq!(frames, in_frames.div_ceil(3));

    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&metrics).unwrap()).unwrap();
    assert_eq!(m["pipeline"], "resample-to-16k-i16");
    let nodes = m["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 2);
    for n in nodes {
        assert_eq!(n["status"]["state"], "success");
        assert!(n["execution_time_us"].as_u64().unwrap() > 0);
        assert_eq!(n["runtime"], "rust");
    }
    let t: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&trace).unwrap()).unwrap();
    assert!(t["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["ph"] == "X"));

    // A summary on stderr, no progress bar when stderr is not a terminal.
    let err = text(&o.stderr);
    assert!(err.contains("x real time"), "{err}");
    assert!(!err.contains('\r') && !err.contains("eta"), "{err}");
}

#[test]
fn several_sinks_write_one_file_each_into_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results");
    let o = remotemedia(&[
        "run",
        "examples/speech_and_segments.json",
        "-i",
        "examples/speech_48k.wav",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let segments: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("segments.json")).unwrap()).unwrap();
    let segs = segments.as_array().unwrap();
    assert!(segs.len() >= 2, "{segments}");
    for s in segs {
        let (a, b) = (
            s["start_ms"].as_f64().unwrap(),
            s["end_ms"].as_f64().unwrap(),
        );
        assert!(a < b && s["energy_db"].as_f64().unwrap().is_finite());
    }
    // Keys in schema order.
    let first = serde_json::to_string(&segs[0]).unwrap();
    assert!(first.starts_with("{\"start_ms\""), "{first}");
    let (spec, frames) = wav_info(&out.join("speech_i16.wav"));
    assert_eq!((spec.sample_rate, spec.bits_per_sample), (16_000, 16));
    let speech_ms: f64 = segs
        .iter()
        .map(|s| s["end_ms"].as_f64().unwrap() - s["start_ms"].as_f64().unwrap())
        .sum();
    assert!((frames as f64 / 16.0 - speech_ms).abs() < 1.0);

    // A single file name for several sinks is refused, naming them.
    let o = remotemedia(&[
        "run",
        "examples/speech_and_segments.json",
        "-i",
        "examples/speech_48k.wav",
        "-o",
        dir.path().join("x.wav").to_str().unwrap(),
    ]);
    let err = assert_clean_failure(&o);
    assert!(err.contains("2 sinks (segments, speech_i16)"), "{err}");
}

#[test]
fn reads_flac_ogg_mp3_24bit_and_float_wav() {
    let dir = tempfile::tempdir().unwrap();
    for (file, rate, channels) in [
        ("tone_22k_stereo.flac", 22_050, 2),
        ("tone_22k_stereo.ogg", 22_050, 2),
        ("tone_22k_stereo.mp3", 22_050, 2),
        ("tone_44k_24bit.wav", 44_100, 1),
        ("tone_16k_float.wav", 16_000, 1),
        ("tone_16k_f64.wav", 16_000, 1),
    ] {
        let out = dir.path().join(format!("{file}.out.wav"));
        let o = remotemedia(&[
            "run",
            "examples/resample_to_16k_i16.json",
            "-i",
            &format!("tests/data/{file}"),
            "-o",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{file}: {}", text(&o.stderr));
        let err = text(&o.stderr);
        assert!(
            err.contains(&format!("({rate} Hz, {channels} ch")),
            "{file}: {err}"
        );
        let (spec, frames) = wav_info(&out);
        assert_eq!((spec.sample_rate, spec.channels), (16_000, channels));
        assert!(frames > 3_000, "{file}: {frames} frames");
    }
}

#[test]
fn errors_are_clear_and_never_panic_traces() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.wav");
    let out = out.to_str().unwrap();

    let e = assert_clean_failure(&remotemedia(&[
        "run",
        "examples/resample_to_16k_i16.json",
        "-i",
        "tests/data/not_audio.wav",
        "-o",
        out,
    ]));
    assert!(e.contains("not_audio.wav"), "{e}");

    let e = assert_clean_failure(&remotemedia(&[
        "run",
        "examples/resample_to_16k_i16.json",
        "-i",
        "missing.wav",
        "-o",
        out,
    ]));
    assert!(e.contains("missing.wav"), "{e}");

    let e = assert_clean_failure(&remotemedia(&[
        "run",
        "tests/manifests/invalid/sample_rate_out_of_range.json",
        "-i",
        "examples/speech_48k.wav",
        "-o",
        out,
    ]));
    assert!(
        e.contains("node 'resample' (AudioResampleNode): params.target_rate: 7000 is out of range"),
        "{e}"
    );

    let e = assert_clean_failure(&remotemedia(&[
        "run",
        "examples/voice_activity.json",
        "-i",
        "examples/speech_48k.wav",
        "-o",
        out,
    ]));
    assert!(
        e.contains("sink 'vad' produces segments; give --output a .json file name"),
        "{e}"
    );

    // Usage errors exit with 2.
    let o = remotemedia(&["run", "examples/voice_activity.json"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn a_panicking_node_is_reported_by_id_without_a_trace() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("panic.json");
    std::fs::write(
        &manifest,
        r#"{"version": "v1", "nodes": [{"id": "boom", "node_type": "TestPanicNode"}]}"#,
    )
    .unwrap();
    let metrics = dir.path().join("m.json");
    let o = Command::new(env!("CARGO_BIN_EXE_remotemedia"))
        .args(["run", manifest.to_str().unwrap(), "-i"])
        .arg(repo().join("examples/speech_48k.wav"))
        .args([
            "-o",
            dir.path().join("o.wav").to_str().unwrap(),
            "--metrics",
        ])
        .arg(&metrics)
        .env("REMOTEMEDIA_TEST_NODES", "1")
        .output()
        .unwrap();
    let e = assert_clean_failure(&o);
    assert!(
        e.contains("node 'boom' (TestPanicNode) failed: panicked: injected panic"),
        "{e}"
    );
    // Metrics are still written and show the failure.
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&metrics).unwrap()).unwrap();
    assert_eq!(m["nodes"][0]["status"]["state"], "failed");
}

#[test]
fn validate_nodes_and_schema() {
    let o = remotemedia(&["validate", "examples/voice_activity.json"]);
    assert!(o.status.success());
    assert!(text(&o.stdout).contains("ok ('voice-activity': 3 node(s)"));

    let e = assert_clean_failure(&remotemedia(&[
        "validate",
        "tests/manifests/invalid/several_problems.json",
    ]));
    assert!(e.contains("3 problems"), "{e}");
    assert!(e.contains("did you mean 'VADNode'?"), "{e}");

    let o = remotemedia(&["nodes"]);
    let s = text(&o.stdout);
    for t in [
        "AudioResampleNode",
        "VADNode",
        "FormatConverterNode",
        "ChannelMixNode",
        "PassThroughNode",
    ] {
        assert!(s.contains(t), "{s}");
    }
    assert!(!s.contains("TestPanicNode"));
    assert!(
        s.contains("target_rate: integer in 8000..=384000, required"),
        "{s}"
    );
    let o = remotemedia(&["nodes", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    // The five audio nodes, SpeechVADNode, the eight DSP nodes, the three voice front-end
    // nodes and RemotePipelineNode.
    assert_eq!(v.as_array().unwrap().len(), 18);

    let o = remotemedia(&["schema"]);
    let checked_in =
        std::fs::read_to_string(repo().join("schema/manifest.v1.schema.json")).unwrap();
    assert_eq!(text(&o.stdout), checked_in);
}

#[test]
fn serve_runs_native_pipelines_and_stops_on_sigterm() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_remotemedia"))
        .args(["serve", "--listen", &addr])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(20),
            "server did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut client = remotemedia_grpc::RemoteClient::connect(&addr, None)
            .await
            .unwrap();
        let manifest =
            std::fs::read_to_string(repo().join("examples/resample_to_16k_i16.json")).unwrap();
        let input = remotemedia_core::Data::Audio(remotemedia_core::AudioBuffer::mono_f32(
            vec![0.1; 4_800],
            48_000,
        ));
        let out = client.execute(&manifest, &input, None).await.unwrap();
        assert_eq!(out.outputs["to_i16"].as_audio().unwrap().frames(), 1_600);
    });
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let mut err = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(
        err.contains("serving remotemedia.v1 on") && err.contains("stopped"),
        "{err}"
    );
}

#[test]
fn serve_refuses_python_nodes_without_the_python_package() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("server.toml");
    std::fs::write(&cfg, "[python_nodes]\nGain = \"mynodes:Gain\"\n").unwrap();
    let o = remotemedia(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--config",
        cfg.to_str().unwrap(),
    ]);
    let e = assert_clean_failure(&o);
    assert!(e.contains("need the Python package"), "{e}");
}

#[test]
fn a_one_line_description_runs_like_the_manifest_it_prints() {
    let dir = tempfile::tempdir().unwrap();
    let desc =
        "AudioResampleNode target_rate=16000 quality=high ! FormatConverterNode target_format=i16";
    let printed = remotemedia(&["run", desc, "--print-manifest"]);
    assert!(printed.status.success(), "{}", text(&printed.stderr));
    let m: serde_json::Value = serde_json::from_slice(&printed.stdout).unwrap();
    assert_eq!(m["nodes"][0]["id"], "audio_resample");
    assert_eq!(m["nodes"][0]["params"]["target_rate"], 16000);
    assert_eq!(m["nodes"][1]["params"]["target_format"], "i16");
    assert_eq!(
        m["connections"],
        serde_json::json!([{"from": "audio_resample", "to": "format_converter"}])
    );

    // The description and the manifest it printed give the same bytes.
    let manifest = dir.path().join("m.json");
    std::fs::write(&manifest, &printed.stdout).unwrap();
    let (a, b) = (dir.path().join("a.wav"), dir.path().join("b.wav"));
    for (pipeline, out) in [(desc, &a), (manifest.to_str().unwrap(), &b)] {
        let o = remotemedia(&[
            "run",
            pipeline,
            "-i",
            "examples/speech_48k.wav",
            "-o",
            out.to_str().unwrap(),
            "-q",
        ]);
        assert!(o.status.success(), "{}", text(&o.stderr));
    }
    let (spec, frames) = wav_info(&a);
    assert_eq!((spec.sample_rate, spec.bits_per_sample), (16_000, 16));
    assert!(frames > 0);
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());

    // Mistakes in a description name the node and the field, as a manifest's do.
    let bad = remotemedia(&[
        "run",
        "AudioResampleNode target_rate=7 ! VADNod",
        "--print-manifest",
    ]);
    assert!(bad.status.success(), "printing does not validate");
    let bad = remotemedia(&[
        "run",
        "AudioResampleNode target_rate=7 ! VADNod",
        "-i",
        "examples/speech_48k.wav",
        "-o",
        dir.path().join("c.wav").to_str().unwrap(),
    ]);
    let err = assert_clean_failure(&bad);
    assert!(
        err.contains("target_rate") && err.contains("8000..=384000"),
        "{err}"
    );
    assert!(err.contains("did you mean 'VADNode'"), "{err}");
    // A missing manifest file still says so, with a hint about descriptions.
    let missing = remotemedia(&[
        "run",
        "nope.json",
        "-i",
        "examples/speech_48k.wav",
        "-o",
        "x.wav",
    ]);
    let err = assert_clean_failure(&missing);
    assert!(err.contains("no such file") && err.contains(" ! "), "{err}");
}

#[test]
fn graph_draws_mermaid_dot_and_svg() {
    let m = remotemedia(&["graph", "examples/speech_and_segments.json"]);
    assert!(m.status.success(), "{}", text(&m.stderr));
    let mermaid = text(&m.stdout);
    assert!(mermaid.starts_with("flowchart LR\n"), "{mermaid}");
    assert!(mermaid.contains(":::native"));
    let d = remotemedia(&[
        "graph",
        "GainNode db=-6 ! my_nodes:Denoise",
        "--format",
        "dot",
    ]);
    assert!(d.status.success(), "{}", text(&d.stderr));
    let dot = text(&d.stdout);
    assert!(dot.contains("\"gain\" -> \"denoise\";"), "{dot}");
    assert!(
        dot.contains("fillcolor=\"#fff4d6\""),
        "Python nodes are drawn yellow: {dot}"
    );
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("p.svg");
    let s = remotemedia(&[
        "graph",
        "examples/speech_and_segments.json",
        "-f",
        "svg",
        "-o",
        svg.to_str().unwrap(),
    ]);
    assert!(s.status.success(), "{}", text(&s.stderr));
    let svg = std::fs::read_to_string(svg).unwrap();
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert!(svg.trim_end().ends_with("</svg>"));
}

#[test]
fn segments_dir_writes_each_segment_of_the_input_with_an_index() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("segments.json");
    let segs_dir = dir.path().join("segs");
    // The VAD after a resampler: segments count at 16 kHz, files are cut from the 48 kHz input.
    let o = remotemedia(&[
        "run",
        "AudioResampleNode target_rate=16000 ! SpeechVADNode",
        "-i",
        "examples/speech_48k.wav",
        "-o",
        json.to_str().unwrap(),
        "--segments-dir",
        segs_dir.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let segments: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!(segments.len() >= 2, "{segments:?}");
    let index: Vec<serde_json::Value> = std::fs::read_to_string(segs_dir.join("segments.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(index.len(), segments.len());
    let input = hound::WavReader::open(repo().join("examples/speech_48k.wav"))
        .unwrap()
        .into_samples::<i16>()
        .map(Result::unwrap)
        .collect::<Vec<_>>();
    for (i, (entry, seg)) in index.iter().zip(&segments).enumerate() {
        let name = format!("seg_{:04}.wav", i + 1);
        assert_eq!(entry["file"], name.as_str());
        assert_eq!(entry["start_s"], seg["start_s"]);
        assert_eq!(seg["sample_rate"], 16_000);
        let (a, b) = (
            seg["start_sample"].as_u64().unwrap() as usize * 3,
            seg["end_sample"].as_u64().unwrap() as usize * 3,
        );
        let (spec, _) = wav_info(&segs_dir.join(&name));
        assert_eq!((spec.sample_rate, spec.bits_per_sample), (48_000, 16));
        let got: Vec<i16> = hound::WavReader::open(segs_dir.join(&name))
            .unwrap()
            .into_samples::<i16>()
            .map(Result::unwrap)
            .collect();
        assert_eq!(got, input[a..b], "{name}");
    }
    // From stdin there is nothing to cut from again: refused before running.
    let o = remotemedia(&[
        "run",
        "SpeechVADNode",
        "-i",
        "-",
        "-o",
        json.to_str().unwrap(),
        "--segments-dir",
        segs_dir.to_str().unwrap(),
    ]);
    let err = assert_clean_failure(&o);
    assert!(
        err.contains("--segments-dir cuts the segments from the input file"),
        "{err}"
    );
}

#[cfg(unix)]
#[test]
fn ctrl_c_and_sigterm_stop_a_run_promptly_and_leave_no_partial_output() {
    // 6.4 s of input in 20 ms chunks through a node that waits 20 ms a chunk: about 6.4 s of
    // work; the signal comes after 1 s.
    for (signal, code) in [(libc::SIGINT, 130), (libc::SIGTERM, 143)] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.wav");
        let child = Command::new(env!("CARGO_BIN_EXE_remotemedia"))
            .args(["run", r#"TestSleepNode ms=20"#, "-i"])
            .arg(repo().join("examples/speech_48k.wav"))
            .args(["-o", out.to_str().unwrap(), "--chunk-ms", "20", "--quiet"])
            .env("REMOTEMEDIA_TEST_NODES", "1")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_secs(1));
        let sent = std::time::Instant::now();
        // SAFETY: sending a signal to our own child process.
        unsafe { libc::kill(child.id() as i32, signal) };
        let o = child.wait_with_output().unwrap();
        assert!(
            sent.elapsed() < std::time::Duration::from_secs(3),
            "{signal}"
        );
        assert_eq!(o.status.code(), Some(code), "{}", text(&o.stderr));
        assert!(
            text(&o.stderr).starts_with("interrupted by "),
            "{}",
            text(&o.stderr)
        );
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "left behind: {left:?}");
    }
}

#[test]
fn ctrl_c_stops_a_stdin_run_whose_producer_stalls_and_a_killed_runs_part_file_is_removed() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.wav");
    // A part file left by a run that was killed (SIGKILL): its process is gone.
    let mut gone = Command::new("true").spawn().unwrap();
    let gone_pid = gone.id();
    gone.wait().unwrap();
    let stale = dir.path().join(format!(".out.wav.part-{gone_pid}"));
    std::fs::write(&stale, b"half a file").unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_remotemedia"))
        .args([
            "run",
            "GainNode db=-3",
            "-i",
            "-",
            "-o",
            out.to_str().unwrap(),
        ])
        .args(["--chunk-ms", "20", "--quiet"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The start of a WAV, then the producer stalls (keeps the pipe open, sends nothing).
    let wav = std::fs::read(repo().join("examples/speech_48k.wav")).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&wav[..100_000]).unwrap();
    stdin.flush().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    let sent = std::time::Instant::now();
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let o = child.wait_with_output().unwrap();
    // It used to wait for the producer's next bytes.
    assert!(sent.elapsed() < std::time::Duration::from_secs(2));
    assert_eq!(o.status.code(), Some(130), "{}", text(&o.stderr));
    drop(stdin);
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn outputs_that_would_destroy_or_mislead_are_refused_before_running() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("a.wav");
    std::fs::copy(repo().join("examples/speech_48k.wav"), &input).unwrap();
    let before = std::fs::read(&input).unwrap();
    // The same file as input and output.
    let o = remotemedia(&[
        "run",
        "GainNode db=-3",
        "-i",
        input.to_str().unwrap(),
        "-o",
        input.to_str().unwrap(),
    ]);
    let e = assert_clean_failure(&o);
    assert!(
        e.contains("is the input file: the run would overwrite what it reads"),
        "{e}"
    );
    assert_eq!(std::fs::read(&input).unwrap(), before);
    // A batch (a directory) into what looks like a file.
    let out = dir.path().join("x.wav");
    let o = remotemedia(&[
        "run",
        "GainNode db=-3",
        "-i",
        dir.path().to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    let e = assert_clean_failure(&o);
    assert!(e.contains("names a file: give a directory"), "{e}");
    assert!(!out.exists());
    // A manifest that never ends stops at the size limit.
    #[cfg(unix)]
    {
        let o = remotemedia(&["validate", "/dev/zero"]);
        let e = assert_clean_failure(&o);
        assert!(
            e.contains("over the manifest size limit of 1048576 bytes"),
            "{e}"
        );
    }
}

#[test]
fn help_has_examples_every_node_type_one_node_s_page_and_completions() {
    let o = remotemedia(&["--help"]);
    let s = text(&o.stdout);
    assert!(s.contains("Examples:\n  remotemedia run"), "{s}");
    let types = remotemedia(&["nodes", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&types.stdout).unwrap();
    for info in v.as_array().unwrap() {
        let t = info["node_type"].as_str().unwrap();
        assert!(s.contains(t), "{t} missing from --help: {s}");
    }
    let o = remotemedia(&["run", "--help"]);
    assert!(
        text(&o.stdout).contains("Examples:\n  remotemedia run \"GainNode db=-6"),
        "{}",
        text(&o.stdout)
    );
    // One node: its parameters and a command that runs it.
    let o = remotemedia(&["nodes", "AudioResampleNode"]);
    let s = text(&o.stdout);
    assert!(s.starts_with("AudioResampleNode [Rust]"), "{s}");
    assert!(!s.contains("VADNode"), "{s}");
    let example = |s: &str| -> String {
        s.lines()
            .find_map(|l| l.trim().strip_prefix("remotemedia run "))
            .expect("an example line")
            .to_string()
    };
    assert_eq!(
        example(&s),
        "\"AudioResampleNode target_rate=16000\" -i in.wav -o out.wav"
    );
    // Every node type's example runs as printed (on a real file).
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.wav");
    let wav = repo().join("examples/speech_48k.wav");
    for info in v.as_array().unwrap() {
        let t = info["node_type"].as_str().unwrap();
        if t == "RemotePipelineNode" {
            continue; // needs a server's address
        }
        let line = example(&text(&remotemedia(&["nodes", t]).stdout));
        if line.contains(" -i mic=") {
            // A node with two inputs: its example is a manifest with named inputs.
            let (mic, far) = (
                format!("mic={}", wav.display()),
                format!("far={}", wav.display()),
            );
            let manifest = line.split_whitespace().next().unwrap();
            let o = remotemedia(&[
                "run",
                manifest,
                "-i",
                &mic,
                "-i",
                &far,
                "-o",
                dir.path().to_str().unwrap(),
                "-q",
            ]);
            assert!(o.status.success(), "{t}: {line}: {}", text(&o.stderr));
            continue;
        }
        let pipeline = line.split('"').nth(1).unwrap().to_string();
        let mut args = vec![
            "run".to_string(),
            pipeline,
            "-i".into(),
            wav.display().to_string(),
        ];
        if line.ends_with("-o out.wav") {
            args.extend(["-o".into(), out.display().to_string()]);
        }
        args.push("-q".into());
        let o = remotemedia(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(o.status.success(), "{t}: {line}: {}", text(&o.stderr));
    }
    let o = remotemedia(&["nodes", "SpeechVADNode", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["node_type"], "SpeechVADNode");
    let e = assert_clean_failure(&remotemedia(&["nodes", "SpeechVadNode"]));
    assert!(e.contains("did you mean SpeechVADNode?"), "{e}");
    for shell in ["bash", "zsh", "fish"] {
        let o = remotemedia(&["completions", shell]);
        assert!(o.status.success());
        let s = text(&o.stdout);
        assert!(
            s.contains("remotemedia") && s.contains("segments-dir"),
            "{shell}: {s}"
        );
    }
    assert_eq!(remotemedia(&["completions", "tcsh"]).status.code(), Some(2));
}

#[test]
fn segments_dir_writes_each_batch_file_s_segments_under_its_relative_path() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("corpus");
    std::fs::create_dir_all(corpus.join("sub")).unwrap();
    let wav = repo().join("examples/speech_48k.wav");
    std::fs::copy(&wav, corpus.join("a.wav")).unwrap();
    std::fs::copy(&wav, corpus.join("sub/b.wav")).unwrap();
    let out = dir.path().join("out");
    let segs = dir.path().join("segs");
    let o = remotemedia(&[
        "run",
        "SpeechVADNode",
        "-i",
        corpus.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--segments-dir",
        segs.to_str().unwrap(),
        "-q",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    for rel in ["a", "sub/b"] {
        let index = std::fs::read_to_string(segs.join(rel).join("segments.jsonl")).unwrap();
        let lines: Vec<serde_json::Value> = index
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let run: Vec<serde_json::Value> =
            serde_json::from_slice(&std::fs::read(out.join(format!("{rel}.json"))).unwrap())
                .unwrap();
        assert_eq!(lines.len(), run.len(), "{rel}");
        assert!(!lines.is_empty());
        for (i, l) in lines.iter().enumerate() {
            let name = format!("seg_{:04}.wav", i + 1);
            assert_eq!(l["file"], name.as_str(), "{l}");
            assert!(segs.join(rel).join(&name).is_file());
        }
    }
}

#[test]
fn named_inputs_feed_each_source_its_own_file() {
    let dir = tempfile::tempdir().unwrap();
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    for (name, value, n) in [("a.wav", 0.25f32, 16_000), ("b.wav", 0.5, 8_000)] {
        let mut w = hound::WavWriter::create(dir.path().join(name), spec).unwrap();
        for _ in 0..n {
            w.write_sample(value).unwrap();
        }
        w.finalize().unwrap();
    }
    let manifest = dir.path().join("mix.json");
    std::fs::write(
        &manifest,
        r#"{"version": "v1", "nodes": [
            {"id": "voice", "node_type": "PassThroughNode"},
            {"id": "music", "node_type": "PassThroughNode"},
            {"id": "mix", "node_type": "MixNode"}],
          "connections": [{"from": "voice", "to": "mix"}, {"from": "music", "to": "mix"}]}"#,
    )
    .unwrap();
    let out = dir.path().join("out.wav");
    let a = format!("voice={}", dir.path().join("a.wav").display());
    let b = format!("music={}", dir.path().join("b.wav").display());
    let o = remotemedia(&[
        "run",
        manifest.to_str().unwrap(),
        "-i",
        &a,
        "-i",
        &b,
        "-o",
        out.to_str().unwrap(),
        "-q",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let mut r = hound::WavReader::open(&out).unwrap();
    let v: Vec<f32> = r.samples::<f32>().map(|s| s.unwrap()).collect();
    assert_eq!(v.len(), 16_000, "the longer input's length");
    assert!(v[..8_000].iter().all(|s| (*s - 0.75).abs() < 1e-6));
    assert!(v[8_000..].iter().all(|s| (*s - 0.25).abs() < 1e-6));
    // A name that is no input, and a mix of named and unnamed inputs, are refused.
    let bad = format!("voise={}", dir.path().join("a.wav").display());
    let o = remotemedia(&[
        "run",
        manifest.to_str().unwrap(),
        "-i",
        &bad,
        "-i",
        &b,
        "-o",
        out.to_str().unwrap(),
    ]);
    let e = assert_clean_failure(&o);
    assert!(
        e.contains("unknown input 'voise'") && e.contains("did you mean 'voice'?"),
        "{e}"
    );
    let plain = dir.path().join("a.wav");
    let o = remotemedia(&[
        "run",
        manifest.to_str().unwrap(),
        "-i",
        plain.to_str().unwrap(),
        "-i",
        &b,
        "-o",
        dir.path().to_str().unwrap(),
    ]);
    let e = assert_clean_failure(&o);
    assert!(e.contains("name every input or none"), "{e}");
}
