//! Reading audio files (WAV with hound; FLAC, MP3, OGG/Vorbis and more with symphonia) and
//! writing results (WAV in the buffer's own sample format, JSON for everything else).

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use remotemedia_core::data::{AudioBuffer, SampleFormat, Samples};

/// Reads an audio file. WAV keeps its sample format (8/16-bit PCM -> i16, 24/32-bit PCM ->
/// i32, 32-bit float -> f32); other containers decode to f32.
pub fn read_audio(path: &Path) -> Result<AudioBuffer> {
    let is_wav = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("wav") || e.eq_ignore_ascii_case("wave"));
    if is_wav {
        match read_wav(path) {
            Ok(a) => return Ok(a),
            // hound reads PCM and 32-bit float; symphonia also reads e.g. 64-bit float WAV.
            Err(WavError::Unsupported) => {}
            Err(WavError::Format(hound_msg)) => {
                return read_with_symphonia(path).map_err(|_| anyhow!(hound_msg));
            }
            Err(WavError::Other(e)) => return Err(e),
        }
    }
    read_with_symphonia(path)
}

enum WavError {
    /// A WAV variant hound does not read.
    Unsupported,
    /// hound could not parse it (maybe symphonia can).
    Format(String),
    Other(anyhow::Error),
}

fn read_wav(path: &Path) -> Result<AudioBuffer, WavError> {
    let mut reader = hound::WavReader::open(path).map_err(|e| match e {
        hound::Error::Unsupported => WavError::Unsupported,
        hound::Error::IoError(e) => {
            WavError::Other(anyhow!(e).context(format!("cannot read {}", path.display())))
        }
        other => WavError::Format(format!(
            "{}: not a readable WAV file: {other}",
            path.display()
        )),
    })?;
    let spec = reader.spec();
    let ctx = || format!("{}: corrupt WAV data", path.display());
    let samples: Samples = match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Int, 8) => reader
            .samples::<i8>()
            .map(|s| s.map(|v| (v as i16) << 8))
            .collect::<Result<Vec<i16>, _>>()
            .with_context(ctx)
            .map_err(WavError::Other)?
            .into(),
        (hound::SampleFormat::Int, 16) => reader
            .samples::<i16>()
            .collect::<Result<Vec<i16>, _>>()
            .with_context(ctx)
            .map_err(WavError::Other)?
            .into(),
        (hound::SampleFormat::Int, bits @ (24 | 32)) => {
            let shift = 32 - bits as u32;
            reader
                .samples::<i32>()
                .map(|s| s.map(|v| v << shift))
                .collect::<Result<Vec<i32>, _>>()
                .with_context(ctx)
                .map_err(WavError::Other)?
                .into()
        }
        (hound::SampleFormat::Float, 32) => reader
            .samples::<f32>()
            .collect::<Result<Vec<f32>, _>>()
            .with_context(ctx)
            .map_err(WavError::Other)?
            .into(),
        _ => return Err(WavError::Unsupported),
    };
    AudioBuffer::new(samples, spec.sample_rate, spec.channels)
        .map_err(|e| WavError::Other(anyhow!("{}: {e}", path.display())))
}

fn read_with_symphonia(path: &Path) -> Result<AudioBuffer> {
    use symphonia::core::codecs::audio::AudioDecoderOptions;
    use symphonia::core::errors::Error as SymError;
    use symphonia::core::formats::probe::Hint;
    use symphonia::core::formats::{FormatOptions, TrackType};
    use symphonia::core::io::MediaSourceStream;
    use symphonia::core::meta::MetadataOptions;

    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mss = MediaSourceStream::new(Box::new(file), Default::default());
    let mut hint = Hint::new();
    if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
        hint.with_extension(ext);
    }
    let mut format = symphonia::default::get_probe()
        .probe(
            &hint,
            mss,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .map_err(|e| {
            anyhow!(
                "{}: not a supported audio file ({e}); supported: WAV, FLAC, MP3, OGG/Vorbis",
                path.display()
            )
        })?;
    let track = format
        .default_track(TrackType::Audio)
        .ok_or_else(|| anyhow!("{}: no audio track", path.display()))?;
    let track_id = track.id;
    let params = track
        .codec_params
        .as_ref()
        .and_then(|p| p.audio())
        .ok_or_else(|| anyhow!("{}: audio track has no codec parameters", path.display()))?;
    let mut decoder = symphonia::default::get_codecs()
        .make_audio_decoder(params, &AudioDecoderOptions::default())
        .map_err(|e| anyhow!("{}: cannot decode: {e}", path.display()))?;

    let mut samples: Vec<f32> = Vec::new();
    let mut shape: Option<(u32, usize)> = None;
    let mut skipped = 0usize;
    loop {
        let packet = match format.next_packet() {
            Ok(Some(p)) => p,
            Ok(None) => break,
            Err(SymError::ResetRequired) => bail!("{}: stream changed mid-file", path.display()),
            Err(e) => bail!("{}: read error: {e}", path.display()),
        };
        if packet.track_id != track_id {
            continue;
        }
        match decoder.decode(&packet) {
            Ok(buf) => {
                let spec = buf.spec();
                let this = (spec.rate(), spec.channels().count());
                match shape {
                    None => shape = Some(this),
                    Some(s) if s != this => bail!(
                        "{}: audio format changes mid-file ({} Hz x{} -> {} Hz x{})",
                        path.display(),
                        s.0,
                        s.1,
                        this.0,
                        this.1
                    ),
                    _ => {}
                }
                let start = samples.len();
                samples.resize(start + buf.samples_interleaved(), 0.0);
                buf.copy_to_slice_interleaved(&mut samples[start..]);
            }
            Err(SymError::DecodeError(_)) => skipped += 1,
            Err(e) => bail!("{}: decode error: {e}", path.display()),
        }
    }
    if skipped > 0 {
        eprintln!(
            "warning: {}: skipped {skipped} corrupt packet(s); the decoded audio has gaps",
            path.display()
        );
    }
    let (rate, channels) =
        shape.ok_or_else(|| anyhow!("{}: contains no decodable audio", path.display()))?;
    AudioBuffer::new(samples.into(), rate, channels as u16)
        .map_err(|e| anyhow!("{}: {e}", path.display()))
}

/// Writes audio as WAV in its own sample format: i16 -> 16-bit PCM, i32 -> 32-bit PCM,
/// f32 -> 32-bit float. f64 has no WAV encoding in hound and is written as 32-bit float
/// (a note says so).
pub fn write_wav(path: &Path, audio: &AudioBuffer) -> Result<()> {
    let (sample_format, bits) = match audio.format() {
        SampleFormat::I16 => (hound::SampleFormat::Int, 16),
        SampleFormat::I32 => (hound::SampleFormat::Int, 32),
        SampleFormat::F32 | SampleFormat::F64 => (hound::SampleFormat::Float, 32),
    };
    if audio.format() == SampleFormat::F64 {
        eprintln!(
            "note: {}: f64 audio written as 32-bit float WAV",
            path.display()
        );
    }
    let spec = hound::WavSpec {
        channels: audio.channels(),
        sample_rate: audio.sample_rate(),
        bits_per_sample: bits,
        sample_format,
    };
    let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut w = hound::WavWriter::new(BufWriter::new(file), spec)
        .with_context(|| format!("cannot write {}", path.display()))?;
    let err = || format!("cannot write {}", path.display());
    match audio.samples() {
        Samples::I16(b) => {
            let mut w16 = w.get_i16_writer(b.len() as u32);
            for &s in b.iter() {
                w16.write_sample(s);
            }
            w16.flush().with_context(err)?;
        }
        Samples::I32(b) => {
            for &s in b.iter() {
                w.write_sample(s).with_context(err)?;
            }
        }
        Samples::F32(b) => {
            for &s in b.iter() {
                w.write_sample(s).with_context(err)?;
            }
        }
        Samples::F64(b) => {
            for &s in b.iter() {
                w.write_sample(s as f32).with_context(err)?;
            }
        }
    }
    w.finalize().with_context(err)
}

/// Writes a non-audio result as pretty JSON.
pub fn write_json(path: &Path, value: &serde_json::Value) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}
