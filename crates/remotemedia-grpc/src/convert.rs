//! Core `Data` <-> protobuf `Value`. Audio is raw little-endian samples; everything else is
//! JSON text.

use std::sync::Arc;

use remotemedia_core::data::{AudioBuffer, Data, SampleFormat, Samples, Segment, MAX_CHANNELS};

use crate::pb;

/// Renders non-audio values as JSON; a host can render its own objects (Python values).
pub type JsonRenderer = Arc<dyn Fn(&Data) -> Option<serde_json::Value> + Send + Sync>;

/// The default renderer: what the core knows how to render.
pub fn default_renderer() -> JsonRenderer {
    Arc::new(|d: &Data| d.to_json())
}

fn le_bytes<T: Copy, const N: usize>(samples: &[T], to: impl Fn(T) -> [u8; N]) -> Vec<u8> {
    let mut out = Vec::with_capacity(samples.len() * N);
    for &s in samples {
        out.extend_from_slice(&to(s));
    }
    out
}

/// Audio as a protobuf message (one copy, into little-endian bytes).
pub fn audio_to_pb(a: &AudioBuffer) -> pb::Audio {
    let (samples, format) = match a.samples() {
        Samples::F32(b) => (le_bytes(b, f32::to_le_bytes), pb::SampleFormat::F32),
        Samples::I16(b) => (le_bytes(b, i16::to_le_bytes), pb::SampleFormat::I16),
        Samples::I32(b) => (le_bytes(b, i32::to_le_bytes), pb::SampleFormat::I32),
        Samples::F64(b) => (le_bytes(b, f64::to_le_bytes), pb::SampleFormat::F64),
    };
    pb::Audio {
        samples,
        format: format as i32,
        sample_rate: a.sample_rate(),
        channels: a.channels() as u32,
    }
}

/// A protobuf audio message as an `AudioBuffer`, or what is wrong with it (`field` names it).
pub fn audio_from_pb(a: &pb::Audio, field: &str) -> Result<AudioBuffer, String> {
    let format = match pb::SampleFormat::try_from(a.format) {
        Ok(pb::SampleFormat::F32) => SampleFormat::F32,
        Ok(pb::SampleFormat::I16) => SampleFormat::I16,
        Ok(pb::SampleFormat::I32) => SampleFormat::I32,
        Ok(pb::SampleFormat::F64) => SampleFormat::F64,
        _ => {
            return Err(format!(
                "{field}.format is {}; expected SAMPLE_FORMAT_F32, _I16, _I32 or _F64",
                a.format
            ))
        }
    };
    if a.channels == 0 || a.channels > MAX_CHANNELS as u32 {
        return Err(format!(
            "{field}.channels is {}; expected 1..={MAX_CHANNELS}",
            a.channels
        ));
    }
    if a.sample_rate == 0 {
        return Err(format!("{field}.sample_rate is 0; expected a rate in Hz"));
    }
    let width = format.bytes_per_sample();
    let frame_bytes = width * a.channels as usize;
    if a.samples.len() % frame_bytes != 0 {
        return Err(format!(
            "{field}.samples has {} bytes, not a whole number of {}-byte frames ({} channel(s) of {format})",
            a.samples.len(),
            frame_bytes,
            a.channels
        ));
    }
    let b = &a.samples;
    let samples: Samples = match format {
        SampleFormat::F32 => b
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect::<Vec<_>>()
            .into(),
        SampleFormat::I16 => b
            .chunks_exact(2)
            .map(|c| i16::from_le_bytes(c.try_into().expect("2 bytes")))
            .collect::<Vec<_>>()
            .into(),
        SampleFormat::I32 => b
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect::<Vec<_>>()
            .into(),
        SampleFormat::F64 => b
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect::<Vec<_>>()
            .into(),
    };
    AudioBuffer::new(samples, a.sample_rate, a.channels as u16).map_err(|e| format!("{field}: {e}"))
}

/// A value as a protobuf message; `None` when it has no wire form.
pub fn data_to_pb(d: &Data, render: &JsonRenderer) -> Option<pb::Value> {
    let kind = match d {
        Data::Audio(a) => pb::value::Kind::Audio(audio_to_pb(a)),
        Data::Segments(segs) => pb::value::Kind::Segments(pb::Segments {
            segments: segs
                .iter()
                .map(|s| pb::Segment {
                    start_ms: s.start_ms(),
                    end_ms: s.end_ms(),
                    start_s: s.start_s(),
                    end_s: s.end_s(),
                    start_sample: s.start_sample,
                    end_sample: s.end_sample,
                    sample_rate: s.sample_rate,
                    confidence: s.confidence,
                    energy_db: s.energy_db,
                })
                .collect(),
        }),
        other => pb::value::Kind::Json(serde_json::to_string(&render(other)?).ok()?),
    };
    Some(pb::Value { kind: Some(kind) })
}

/// A protobuf value as `Data`, or what is wrong with it.
pub fn data_from_pb(v: Option<&pb::Value>, field: &str) -> Result<Data, String> {
    match v.and_then(|v| v.kind.as_ref()) {
        Some(pb::value::Kind::Audio(a)) => {
            audio_from_pb(a, &format!("{field}.audio")).map(Data::Audio)
        }
        Some(pb::value::Kind::Segments(s)) => s
            .segments
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let seg = Segment {
                    confidence: s.confidence,
                    energy_db: s.energy_db,
                    ..Segment::new(s.start_sample, s.end_sample, s.sample_rate)
                };
                seg.check()
                    .map(|()| seg)
                    .map_err(|e| format!("{field}.segments[{i}]: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Data::Segments),
        Some(pb::value::Kind::Json(text)) => serde_json::from_str(text)
            .map(Data::Json)
            .map_err(|e| format!("{field}.json is not valid JSON: {e}")),
        None => Err(format!("{field} is missing; expected audio or json")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audio_round_trips_in_every_format() {
        let base = AudioBuffer::new(vec![0.5f64, -0.25, 1.0, -1.0].into(), 16_000, 2).unwrap();
        for f in SampleFormat::ALL {
            let a = base.to_format(f);
            let back = audio_from_pb(&audio_to_pb(&a), "input").unwrap();
            assert_eq!(back, a);
        }
    }

    #[test]
    fn malformed_audio_is_named() {
        let mut a = audio_to_pb(&AudioBuffer::mono_f32(vec![0.0; 4], 16_000));
        a.samples.pop();
        assert!(audio_from_pb(&a, "input.audio")
            .unwrap_err()
            .contains("whole number"));
        a.format = 0;
        assert!(audio_from_pb(&a, "input.audio")
            .unwrap_err()
            .contains("format is 0"));
    }
}
