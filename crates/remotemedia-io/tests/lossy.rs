//! Lossy outputs (Ogg Vorbis, Ogg Opus, MP3): exact lengths back, the waveform kept, the rate
//! and channels kept, clear errors for what a codec cannot store; and Opus reading.

use std::path::Path;

use remotemedia_core::data::{AudioBuffer, SampleFormat};
use remotemedia_io::{open, read, AudioWriter, Subtype};

/// Two tones, a different phase per channel, at 0.3 + 0.2 of full scale.
fn tones(frames: usize, rate: u32, channels: u16) -> AudioBuffer {
    let mut v = Vec::with_capacity(frames * channels as usize);
    for i in 0..frames {
        let t = i as f32 / rate as f32;
        for c in 0..channels {
            let p = c as f32 * 0.7;
            v.push(
                0.3 * (2.0 * std::f32::consts::PI * 440.0 * t + p).sin()
                    + 0.2 * (2.0 * std::f32::consts::PI * 1000.0 * t + 2.0 * p).sin(),
            );
        }
    }
    AudioBuffer::new(v.into(), rate, channels).unwrap()
}

fn write_in_blocks(path: &Path, audio: &AudioBuffer, level: Option<f32>) -> u64 {
    let mut w = AudioWriter::create_with(
        path,
        audio.sample_rate(),
        audio.channels(),
        audio.format(),
        None,
        level,
    )
    .unwrap();
    let mut pos = 0;
    while pos < audio.frames() {
        let end = (pos + 1000).min(audio.frames());
        w.write(&audio.slice_frames(pos, end)).unwrap();
        pos = end;
    }
    w.finish().unwrap()
}

/// Signal-to-error ratio in dB, sample for sample (no realignment: a codec delay left in
/// would show as a large error, and so would channels in the wrong order). With 6 or more
/// channels the LFE (the 4th) is left out: surround encoders low-pass it by design.
fn snr_db(want: &AudioBuffer, got: &AudioBuffer) -> f64 {
    let a = want.samples().to_f32_vec();
    let b = got.to_format(SampleFormat::F32).samples().to_f32_vec();
    assert_eq!(a.len(), b.len());
    let ch = want.channels() as usize;
    // The first and last 20 ms are left out: codecs are least exact at the edges.
    let edge = (want.sample_rate() as usize / 50) * ch;
    let (mut s, mut e) = (0f64, 0f64);
    for (i, (x, y)) in a[edge..a.len() - edge]
        .iter()
        .zip(&b[edge..b.len() - edge])
        .enumerate()
    {
        if ch >= 6 && i % ch == 3 {
            continue;
        }
        s += (*x as f64).powi(2);
        e += (*x as f64 - *y as f64).powi(2);
    }
    10.0 * (s / e.max(1e-30)).log10()
}

/// `min_snr: None` checks lengths, rate and channels only.
fn round_trip(name: &str, rate: u32, channels: u16, subtype: &str, min_snr: Option<f64>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    let frames = rate as usize + 123; // not a whole number of codec frames
    let audio = tones(frames, rate, channels);
    assert_eq!(write_in_blocks(&path, &audio, None), frames as u64);
    let r = open(&path).unwrap();
    assert_eq!(r.info().subtype, subtype, "{name}");
    assert_eq!(r.info().sample_rate, rate, "{name}");
    assert_eq!(r.info().channels, channels, "{name}");
    let back = read(&path).unwrap();
    assert_eq!(back.frames(), frames, "{name}: frames back");
    assert_eq!(back.sample_rate(), rate);
    assert_eq!(
        r.info().frames,
        Some(frames as u64),
        "{name}: frames in the header"
    );
    if let Some(min_snr) = min_snr {
        let snr = snr_db(&audio, &back);
        assert!(snr > min_snr, "{name}: SNR {snr:.1} dB");
    }
}

#[test]
fn ogg_vorbis_round_trips_exact_length() {
    round_trip("v.ogg", 44100, 2, "VORBIS", Some(15.0));
    round_trip("v.oga", 16000, 1, "VORBIS", Some(15.0));
    // symphonia's Vorbis decoder mixes surround channels (libvorbis, via soundfile in the
    // Python tests, does not): lengths only here; the channel order is checked there.
    round_trip("v6.ogg", 48000, 6, "VORBIS", None);
    // Any rate: Vorbis is not tied to a set.
    round_trip("v.ogg", 22050, 1, "VORBIS", Some(15.0));
}

#[test]
fn ogg_opus_round_trips_exact_length_at_its_own_rate() {
    round_trip("o.opus", 48000, 2, "OPUS", Some(15.0));
    round_trip("o.opus", 16000, 1, "OPUS", Some(15.0));
    round_trip("o.opus", 8000, 1, "OPUS", Some(12.0));
    // 5.1 (mapping family 1, Vorbis channel order in the file): back in WAV order.
    round_trip("o6.opus", 48000, 6, "OPUS", Some(12.0));
}

#[cfg(feature = "mp3")]
#[test]
fn mp3_round_trips_exact_length() {
    round_trip("m.mp3", 44100, 2, "MPEG_LAYER_III", Some(15.0));
    round_trip("m.mp3", 16000, 1, "MPEG_LAYER_III", Some(15.0));
    round_trip("m.mp3", 48000, 1, "MPEG_LAYER_III", Some(15.0));
}

#[test]
fn integer_input_is_encoded_at_full_scale() {
    let dir = tempfile::tempdir().unwrap();
    let audio = tones(16000, 16000, 1);
    let pcm = audio.to_format(SampleFormat::I16);
    for name in ["i.ogg", "i.opus"] {
        let path = dir.path().join(name);
        write_in_blocks(&path, &pcm, None);
        let back = read(&path).unwrap();
        assert!(snr_db(&audio, &back) > 15.0, "{name}");
    }
}

#[test]
fn compression_level_trades_size_for_quality() {
    let dir = tempfile::tempdir().unwrap();
    let audio = tones(48000 * 3, 48000, 2);
    let mut names = vec!["c.ogg", "c.opus"];
    if cfg!(feature = "mp3") {
        names.push("c.mp3");
    }
    for name in names {
        let best = dir.path().join(format!("best-{name}"));
        let small = dir.path().join(format!("small-{name}"));
        write_in_blocks(&best, &audio, Some(0.0));
        write_in_blocks(&small, &audio, Some(1.0));
        let (b, s) = (
            std::fs::metadata(&best).unwrap().len(),
            std::fs::metadata(&small).unwrap().len(),
        );
        assert!(b > 2 * s, "{name}: level 0 gives {b} bytes, level 1 {s}");
        assert!(snr_db(&audio, &read(&best).unwrap()) > snr_db(&audio, &read(&small).unwrap()));
    }
}

#[test]
fn an_empty_stream_is_a_valid_empty_file() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["e.ogg", "e.opus"] {
        let path = dir.path().join(name);
        let w = AudioWriter::create(&path, 16000, 1, SampleFormat::F32, None).unwrap();
        assert_eq!(w.finish().unwrap(), 0);
        assert_eq!(read(&path).unwrap().frames(), 0, "{name}");
    }
}

fn create_err(
    name: &str,
    rate: u32,
    channels: u16,
    subtype: Option<Subtype>,
    level: Option<f32>,
) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    let e = AudioWriter::create_with(&path, rate, channels, SampleFormat::F32, subtype, level)
        .err()
        .unwrap_or_else(|| panic!("{name} at {rate} Hz x{channels} was accepted"));
    let m = e.to_string();
    assert!(m.contains(name), "names the file: {m}");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing left behind"
    );
    m
}

#[test]
fn what_a_codec_cannot_store_is_refused_with_the_fix() {
    let m = create_err("x.opus", 44100, 2, None, None);
    assert!(
        m.contains("Opus encodes 8000, 12000, 16000, 24000 or 48000 Hz, not 44100"),
        "{m}"
    );
    assert!(m.contains("resample"), "{m}");
    if cfg!(feature = "mp3") {
        let m = create_err("x.mp3", 16000, 3, None, None);
        assert!(m.contains("MP3 stores 1 or 2 channels, not 3"), "{m}");
        let m = create_err("x.mp3", 96000, 2, None, None);
        assert!(m.contains("not 96000 Hz"), "{m}");
    }
    let m = create_err("x.ogg", 16000, 1, Some(Subtype::Pcm16), None);
    assert!(
        m.contains("OGG stores VORBIS or OPUS, not PCM_16; write .wav or .flac"),
        "{m}"
    );
    let m = create_err("x.opus", 16000, 1, Some(Subtype::Vorbis), None);
    assert!(m.contains("name it .ogg"), "{m}");
    let m = create_err("x.wav", 16000, 1, None, Some(0.5));
    assert!(
        m.contains("compression_level applies to the lossy codings"),
        "{m}"
    );
    let m = create_err("x.ogg", 16000, 1, None, Some(1.5));
    assert!(m.contains("compression_level=1.5 is out of range"), "{m}");
    let m = create_err("x.aac", 16000, 1, None, None);
    assert!(m.contains(".opus (Ogg Opus), .mp3"), "{m}");
}

#[test]
fn opus_in_an_ogg_file_is_written_and_read_as_soundfile_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("speech.ogg");
    let audio = tones(24000, 24000, 1);
    let mut w =
        AudioWriter::create(&path, 24000, 1, SampleFormat::F32, Some(Subtype::Opus)).unwrap();
    w.write(&audio).unwrap();
    w.finish().unwrap();
    let r = open(&path).unwrap();
    assert_eq!((r.info().container, r.info().subtype), ("ogg", "OPUS"));
    assert_eq!(r.info().frames, Some(24000));
    assert_eq!(read(&path).unwrap().frames(), 24000);
}
