//! Round trips (WAV in every subtype, FLAC 16/24-bit bit-exact), block reading, malformed
//! files and interrupted writes.

use std::path::Path;

use remotemedia_core::data::{AudioBuffer, SampleFormat, Samples};
use remotemedia_io::{open, read, write, AudioWriter, IoError, Subtype};

fn noise_i16(frames: usize, channels: u16) -> AudioBuffer {
    let mut x: u32 = 12345;
    let v: Vec<i16> = (0..frames * channels as usize)
        .map(|_| {
            x = x.wrapping_mul(1664525).wrapping_add(1013904223);
            (x >> 16) as i16
        })
        .collect();
    AudioBuffer::new(v.into(), 44100, channels).unwrap()
}

fn noise_i24(frames: usize, channels: u16) -> AudioBuffer {
    let mut x: u32 = 777;
    let v: Vec<i32> = (0..frames * channels as usize)
        .map(|_| {
            x = x.wrapping_mul(1664525).wrapping_add(1013904223);
            ((x as i32) >> 8) << 8 // 24 significant bits in the top of an i32
        })
        .collect();
    AudioBuffer::new(v.into(), 48000, channels).unwrap()
}

fn sine_f32(frames: usize) -> AudioBuffer {
    let v: Vec<f32> = (0..frames).map(|i| (i as f32 * 0.01).sin() * 0.9).collect();
    AudioBuffer::new(v.into(), 16000, 1).unwrap()
}

fn write_blocks(path: &Path, audio: &AudioBuffer, block: usize, subtype: Option<Subtype>) {
    let mut w = AudioWriter::create(
        path,
        audio.sample_rate(),
        audio.channels(),
        audio.format(),
        subtype,
    )
    .unwrap();
    let mut pos = 0;
    while pos < audio.frames() {
        let end = (pos + block).min(audio.frames());
        w.write(&audio.slice_frames(pos, end)).unwrap();
        pos = end;
    }
    assert_eq!(w.finish().unwrap(), audio.frames() as u64);
}

#[test]
fn wav_round_trips_every_subtype() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(AudioBuffer, Option<Subtype>, SampleFormat)> = vec![
        (noise_i16(10_001, 2), None, SampleFormat::I16),
        (noise_i24(7_777, 3), Some(Subtype::Pcm24), SampleFormat::I32),
        (noise_i24(7_777, 1), None, SampleFormat::I32),
        (sine_f32(5_000), None, SampleFormat::F32),
        (
            AudioBuffer::new(vec![0.1f64, -0.25, 1e-9, 0.5].into(), 8000, 2).unwrap(),
            None,
            SampleFormat::F64,
        ),
    ];
    for (i, (audio, subtype, fmt)) in cases.into_iter().enumerate() {
        let path = dir.path().join(format!("case{i}.wav"));
        write_blocks(&path, &audio, 999, subtype);
        let back = read(&path).unwrap();
        assert_eq!(back.format(), fmt, "case {i}");
        assert_eq!(back, audio, "case {i}");
    }
}

#[test]
fn flac_round_trips_bit_exact_16_and_24_bit() {
    let dir = tempfile::tempdir().unwrap();
    // Lengths off the 4096-frame FLAC block size, mono and stereo.
    for (audio, fmt) in [
        (noise_i16(10_000, 2), SampleFormat::I16),
        (noise_i16(123, 1), SampleFormat::I16),
        (noise_i24(9_001, 2), SampleFormat::I32),
    ] {
        let path = dir.path().join("x.flac");
        write_blocks(&path, &audio, 1000, None);
        let mut r = open(&path).unwrap();
        assert_eq!(r.info().container, "flac");
        assert_eq!(r.info().format, fmt);
        assert_eq!(r.info().frames, Some(audio.frames() as u64));
        assert_eq!(r.read_all().unwrap(), audio);
    }
}

#[test]
fn flac_from_float_is_24_bit_and_rejects_float_subtypes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.flac");
    let audio = sine_f32(3000);
    write(&path, &audio, None).unwrap();
    let back = read(&path).unwrap();
    assert_eq!(back.format(), SampleFormat::I32);
    let err = back
        .to_format(SampleFormat::F32)
        .samples()
        .to_f32_vec()
        .iter()
        .zip(audio.samples().to_f32_vec())
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(err < 1e-6, "24-bit quantisation error {err}");
    let e = AudioWriter::create(&path, 16000, 1, SampleFormat::F32, Some(Subtype::Float))
        .err()
        .unwrap();
    assert!(
        e.to_string().contains("FLAC stores PCM_16 or PCM_24"),
        "{e}"
    );
}

#[test]
fn blocks_are_bounded_and_add_up_for_wav_and_flac() {
    let dir = tempfile::tempdir().unwrap();
    let audio = noise_i16(50_000, 2);
    for name in ["b.wav", "b.flac"] {
        let path = dir.path().join(name);
        write(&path, &audio, None).unwrap();
        let mut r = open(&path).unwrap();
        let mut parts = Vec::new();
        while let Some(b) = r.read_block(3000).unwrap() {
            assert!(b.frames() <= 3000 && b.frames() > 0);
            parts.push(b);
        }
        assert_eq!(parts.len(), 50_000_usize.div_ceil(3000), "{name}");
        let refs: Vec<&AudioBuffer> = parts.iter().collect();
        assert_eq!(AudioBuffer::concat(&refs).unwrap(), audio, "{name}");
        // The reader thread yields the same blocks.
        let (info, rx) = open(&path).unwrap().spawn(4096, 2);
        assert_eq!(info.frames, Some(50_000));
        let got: Vec<AudioBuffer> = rx.iter().map(|b| b.unwrap()).collect();
        let refs: Vec<&AudioBuffer> = got.iter().collect();
        assert_eq!(AudioBuffer::concat(&refs).unwrap(), audio);
    }
}

fn wav_bytes(channels: u16, bits: u16, data: &[u8], declared: u32) -> Vec<u8> {
    let align = channels * bits / 8;
    let mut h = Vec::new();
    h.extend_from_slice(b"RIFF");
    h.extend_from_slice(&(36 + declared).to_le_bytes());
    h.extend_from_slice(b"WAVEfmt ");
    h.extend_from_slice(&16u32.to_le_bytes());
    h.extend_from_slice(&1u16.to_le_bytes());
    h.extend_from_slice(&channels.to_le_bytes());
    h.extend_from_slice(&16000u32.to_le_bytes());
    h.extend_from_slice(&(16000 * align as u32).to_le_bytes());
    h.extend_from_slice(&align.to_le_bytes());
    h.extend_from_slice(&bits.to_le_bytes());
    h.extend_from_slice(b"data");
    h.extend_from_slice(&declared.to_le_bytes());
    h.extend_from_slice(data);
    h
}

fn open_err(path: &Path) -> IoError {
    match open(path).and_then(|mut r| r.read_all()) {
        Ok(a) => panic!("{} read as {} frames", path.display(), a.frames()),
        Err(e) => e,
    }
}

#[test]
fn malformed_files_are_errors_naming_file_and_problem() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);

    // 16-bit data chunk with an odd byte count (was silently read as float32).
    std::fs::write(p("odd.wav"), wav_bytes(1, 16, &[0u8; 1001], 1001)).unwrap();
    let e = open_err(&p("odd.wav")).to_string();
    assert!(
        e.contains("odd.wav") && e.contains("1001 bytes") && e.contains("2-byte frames"),
        "{e}"
    );

    // Header announces 1000 frames, the file holds 400.
    std::fs::write(p("short.wav"), wav_bytes(1, 16, &[0u8; 800], 2000)).unwrap();
    let e = open_err(&p("short.wav")).to_string();
    assert!(
        e.contains("short.wav") && e.contains("announces 1000 frames") && e.contains("holds 400"),
        "{e}"
    );

    // A truncated FLAC: cut in the middle of the frames.
    write(&p("full.flac"), &noise_i16(20_000, 1), None).unwrap();
    let bytes = std::fs::read(p("full.flac")).unwrap();
    std::fs::write(p("cut.flac"), &bytes[..bytes.len() / 2]).unwrap();
    let e = open_err(&p("cut.flac")).to_string();
    assert!(e.contains("cut.flac"), "{e}");
    assert!(e.contains("truncated") || e.contains("corrupt"), "{e}");

    // FLAC data under a .wav name.
    std::fs::copy(p("full.flac"), p("renamed.wav")).unwrap();
    let e = open_err(&p("renamed.wav")).to_string();
    assert!(
        e.contains("renamed.wav") && e.contains(".wav") && e.contains("FLAC data"),
        "{e}"
    );

    // Not audio at all, and empty.
    std::fs::write(p("text.wav"), b"hello world, not audio").unwrap();
    assert!(open_err(&p("text.wav")).to_string().contains("text.wav"));
    std::fs::write(p("empty.flac"), b"").unwrap();
    let e = open_err(&p("empty.flac")).to_string();
    assert!(e.contains("empty.flac") && e.contains("empty"), "{e}");

    // Missing file: an OS error naming it.
    let e = open_err(&p("missing.wav"));
    assert!(matches!(e, IoError::Os { .. }) && e.to_string().contains("missing.wav"));
}

#[test]
fn interrupted_writes_leave_no_file_under_the_final_name() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["out.wav", "out.flac"] {
        let path = dir.path().join(name);
        let audio = noise_i16(20_000, 2);
        {
            let mut w = AudioWriter::create(&path, 44100, 2, SampleFormat::I16, None).unwrap();
            w.write(&audio.slice_frames(0, 10_000)).unwrap();
            // dropped without finish: an error upstream
        }
        assert!(!path.exists(), "{name}");
        // An earlier complete output survives an interrupted rewrite.
        write(&path, &audio, None).unwrap();
        {
            let mut w = AudioWriter::create(&path, 44100, 2, SampleFormat::I16, None).unwrap();
            w.write(&audio.slice_frames(0, 100)).unwrap();
        }
        assert_eq!(read(&path).unwrap(), audio, "{name}");
    }
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".part-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn wav_with_unknown_size_reads_to_the_end() {
    // What a streaming writer (ours to stdout, ffmpeg to a pipe) produces.
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..200u16).flat_map(|x| (x as i16).to_le_bytes()).collect();
    std::fs::write(dir.path().join("s.wav"), wav_bytes(1, 16, &data, u32::MAX)).unwrap();
    let a = read(&dir.path().join("s.wav")).unwrap();
    assert_eq!(a.samples(), &Samples::from((0..200i16).collect::<Vec<_>>()));
}

/// `read_all_as` (converting block by block while reading) gives exactly the whole-file read
/// converted afterwards, for every target format and for WAV, 24-bit WAV and FLAC, and fails
/// on a damaged file as `read_all` does.
#[test]
fn read_all_as_equals_reading_then_converting() {
    let dir = tempfile::tempdir().unwrap();
    let files = [
        ("a.wav", noise_i16(70_001, 2), None),
        ("b.wav", noise_i24(40_000, 3), Some(Subtype::Pcm24)),
        ("c.wav", sine_f32(33_333), None),
        ("d.flac", noise_i16(50_000, 1), None),
    ];
    for (name, audio, subtype) in &files {
        let path = dir.path().join(name);
        write(&path, audio, *subtype).unwrap();
        for format in [
            SampleFormat::F32,
            SampleFormat::F64,
            SampleFormat::I16,
            SampleFormat::I32,
        ] {
            let want = read(&path).unwrap().to_format(format);
            let got = open(&path).unwrap().read_all_as(format).unwrap();
            assert_eq!(got, want, "{name} as {format:?}");
            assert_eq!(got.frames(), audio.frames());
        }
    }
    // Empty data, and a header announcing more frames than the file holds.
    std::fs::write(dir.path().join("e.wav"), wav_bytes(2, 16, &[], 0)).unwrap();
    let e = open(&dir.path().join("e.wav"))
        .unwrap()
        .read_all_as(SampleFormat::F32)
        .unwrap();
    assert_eq!(
        (e.frames(), e.channels(), e.format()),
        (0, 2, SampleFormat::F32)
    );
    std::fs::write(
        dir.path().join("s.wav"),
        wav_bytes(1, 16, &[0u8; 800], 2000),
    )
    .unwrap();
    let err = open(&dir.path().join("s.wav"))
        .and_then(|mut r| r.read_all_as(SampleFormat::F32))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("s.wav") && err.contains("announces 1000 frames"),
        "{err}"
    );
}

#[test]
fn part_files_of_killed_runs_are_removed_and_live_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    // A process that has exited: its PID is free (or reused by a process we then keep).
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let gone = child.id();
    child.wait().unwrap();
    let live = std::os::unix::process::parent_id();
    let stale = dir.path().join(format!(".out.wav.part-{gone}"));
    let other_stale = dir.path().join(format!(".b.flac.part-{gone}"));
    let running = dir.path().join(format!(".out.wav.part-{live}"));
    let unrelated = [
        dir.path().join("notes.part-1"), // not hidden: not ours
        dir.path().join(".x.part-12ab"), // not a PID
        dir.path().join("keep.wav"),
    ];
    for p in [&stale, &other_stale, &running]
        .into_iter()
        .chain(unrelated.iter())
    {
        std::fs::write(p, b"x").unwrap();
    }
    let audio = AudioBuffer::mono_f32(vec![0.0; 160], 16_000);
    remotemedia_io::write(&dir.path().join("out.wav"), &audio, None).unwrap();
    assert!(!stale.exists() && !other_stale.exists());
    assert!(running.exists(), "a live process's part file was removed");
    for p in &unrelated {
        assert!(p.exists(), "{} was removed", p.display());
    }
    assert!(dir.path().join("out.wav").exists());
}
