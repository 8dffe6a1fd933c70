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
        origin: a.origin().map(|spans| pb::Origin {
            spans: spans.iter().map(segment_to_pb).collect(),
        }),
    }
}

fn segment_to_pb(s: &Segment) -> pb::Segment {
    pb::Segment {
        start_ms: s.start_ms(),
        end_ms: s.end_ms(),
        start_s: s.start_s(),
        end_s: s.end_s(),
        start_sample: s.start_sample,
        end_sample: s.end_sample,
        sample_rate: s.sample_rate,
        confidence: s.confidence,
        energy_db: s.energy_db,
    }
}

/// Received segments, each checked (`field[i]` named in the error).
fn segments_from_pb(segs: &[pb::Segment], field: &str) -> Result<Vec<Segment>, String> {
    segs.iter()
        .enumerate()
        .map(|(i, s)| {
            let seg = Segment {
                confidence: s.confidence,
                energy_db: s.energy_db,
                ..Segment::new(s.start_sample, s.end_sample, s.sample_rate)
            };
            seg.check()
                .map(|()| seg)
                .map_err(|e| format!("{field}[{i}]: {e}"))
        })
        .collect()
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
    let audio = AudioBuffer::new(samples, a.sample_rate, a.channels as u16)
        .map_err(|e| format!("{field}: {e}"))?;
    let Some(origin) = &a.origin else {
        return Ok(audio);
    };
    let spans = segments_from_pb(&origin.spans, &format!("{field}.origin.spans"))?;
    let covered: u64 = spans.iter().map(|s| s.end_sample - s.start_sample).sum();
    if covered != audio.frames() as u64 {
        return Err(format!(
            "{field}.origin.spans cover {covered} frames but the audio has {}; expected spans \
             whose lengths add up to the audio's frames",
            audio.frames()
        ));
    }
    Ok(audio.with_origin(spans))
}

/// A value as a protobuf message; `None` when it has no wire form.
pub fn data_to_pb(d: &Data, render: &JsonRenderer) -> Option<pb::Value> {
    let kind = match d {
        Data::Audio(a) => pb::value::Kind::Audio(audio_to_pb(a)),
        Data::Segments(segs) => pb::value::Kind::Segments(pb::Segments {
            segments: segs.iter().map(segment_to_pb).collect(),
        }),
        // A map of values with a wire form each (named inputs: audio by input name).
        Data::Map(m) if m.values().all(|v| !matches!(v, Data::Object(_))) => {
            let mut values = std::collections::HashMap::with_capacity(m.len());
            for (k, v) in m {
                values.insert(k.clone(), data_to_pb(v, render)?);
            }
            pb::value::Kind::Map(pb::ValueMap { values })
        }
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
        Some(pb::value::Kind::Segments(s)) => {
            segments_from_pb(&s.segments, &format!("{field}.segments")).map(Data::Segments)
        }
        Some(pb::value::Kind::Json(text)) => serde_json::from_str(text)
            .map(Data::Json)
            .map_err(|e| format!("{field}.json is not valid JSON: {e}")),
        Some(pb::value::Kind::Map(m)) => {
            let mut map = std::collections::BTreeMap::new();
            for (k, v) in &m.values {
                map.insert(
                    k.clone(),
                    data_from_pb(Some(v), &format!("{field}.map[{k}]"))?,
                );
            }
            Ok(Data::Map(map))
        }
        None => Err(format!("{field} is missing; expected audio or json")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_inputs_round_trip_as_a_map() {
        let a = AudioBuffer::new(vec![0.5f32, -0.25].into(), 16_000, 1).unwrap();
        let m = Data::Map(std::collections::BTreeMap::from([
            ("mic".to_string(), Data::Audio(a.clone())),
            (
                "far".to_string(),
                Data::Audio(a.to_format(SampleFormat::I16)),
            ),
        ]));
        let pb = data_to_pb(&m, &default_renderer()).unwrap();
        assert!(matches!(pb.kind, Some(pb::value::Kind::Map(_))));
        assert_eq!(data_from_pb(Some(&pb), "input").unwrap(), m);
    }

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
    fn audio_origin_round_trips_and_is_checked() {
        let a = AudioBuffer::mono_f32(vec![0.1; 30], 16_000).with_origin(vec![
            Segment::new(100, 110, 16_000),
            Segment::new(200, 220, 16_000),
        ]);
        let back = audio_from_pb(&audio_to_pb(&a), "input").unwrap();
        assert_eq!(back.origin(), a.origin());
        let none = AudioBuffer::mono_f32(vec![], 16_000);
        assert_eq!(
            audio_from_pb(&audio_to_pb(&none), "x").unwrap().origin(),
            None
        );
        let empty = none.clone().with_origin(vec![]);
        assert_eq!(
            audio_from_pb(&audio_to_pb(&empty), "x").unwrap().origin(),
            Some(&[][..])
        );
        let mut bad = audio_to_pb(&a);
        bad.origin.as_mut().unwrap().spans.pop();
        let e = audio_from_pb(&bad, "output.audio").unwrap_err();
        assert!(
            e.contains("output.audio.origin.spans cover 10 frames but the audio has 30"),
            "{e}"
        );
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
