//! Each speech segment of an audio file to its own file, in one pass and constant memory:
//! blocks are read in order and each block's part inside the current segment goes straight to
//! that segment's writer; the same from audio in memory; and the `segments.jsonl` index. The
//! one implementation of segment placement and the index, for the CLI (`--segments-dir`) and
//! Python (`remotemedia.write_segments`).

use std::path::{Path, PathBuf};

use remotemedia_core::data::{AudioBuffer, Segment};

use crate::{open, AudioWriter, IoError, Subtype};

/// Frames decoded per read.
const BLOCK: usize = 65_536;

/// A segment's `[start, end)` in frames at `rate`: its own samples when it counts at that
/// rate, else its times rounded to the nearest frame (a VAD after a resampler).
pub fn segment_frames(seg: &Segment, rate: u32) -> (u64, u64) {
    if seg.sample_rate == rate {
        return (seg.start_sample, seg.end_sample);
    }
    let at = |s: u64| (s as f64 * rate as f64 / seg.sample_rate as f64).round() as u64;
    (at(seg.start_sample), at(seg.end_sample))
}

/// Writes segment `i` of `input` to `outputs[i]` (the container by extension), in the file's own
/// sample format unless `subtype` says otherwise. Segments must come in order without overlap
/// (as a VAD node emits them) and lie inside the file; an error names the segment. Returns the
/// frames written per file.
pub fn write_segments(
    input: &Path,
    segments: &[Segment],
    outputs: &[PathBuf],
    subtype: Option<Subtype>,
) -> Result<Vec<u64>, IoError> {
    assert_eq!(segments.len(), outputs.len(), "one output per segment");
    let mut reader = open(input)?;
    let rate = reader.info().sample_rate;
    let spans: Vec<(u64, u64)> = segments.iter().map(|s| segment_frames(s, rate)).collect();
    for (i, w) in spans.windows(2).enumerate() {
        if w[1].0 < w[0].1 {
            return Err(IoError::malformed(
                input,
                format!(
                    "segments[{}] starts at frame {}, before segments[{i}] ends ({}); segments \
                     must come in order without overlap",
                    i + 1,
                    w[1].0,
                    w[0].1
                ),
            ));
        }
    }
    let info = reader.info().clone();
    let create = |out: &Path| {
        AudioWriter::create(out, info.sample_rate, info.channels, info.format, subtype)
    };
    let mut written = Vec::with_capacity(spans.len());
    let mut pos = 0u64; // frames of the file before `block`
    let mut block = reader.read_block(BLOCK)?;
    for (i, (&(start, end), out)) in spans.iter().zip(outputs).enumerate() {
        let mut writer: Option<AudioWriter> = None;
        loop {
            let Some(b) = &block else {
                if pos < end {
                    return Err(IoError::malformed(
                        input,
                        format!(
                            "segments[{i}] ends at frame {end}, past the end of the file \
                             ({pos} frames)"
                        ),
                    ));
                }
                break;
            };
            let (b_start, b_end) = (pos, pos + b.frames() as u64);
            let (s, e) = (start.max(b_start), end.min(b_end));
            if s < e {
                let w = match &mut writer {
                    Some(w) => w,
                    None => writer.insert(create(out)?),
                };
                w.write(&b.slice_frames((s - b_start) as usize, (e - b_start) as usize))?;
            }
            if b_end >= end {
                break; // this block may hold the next segment's start too
            }
            pos = b_end;
            block = reader.read_block(BLOCK)?;
        }
        // An empty segment still gets its (empty) file.
        let frames = match writer {
            Some(w) => w.finish()?,
            None => create(out)?.finish()?,
        };
        written.push(frames);
    }
    Ok(written)
}

/// Writes segment `i` of `audio` (in memory) to `outputs[i]`, in the audio's own sample format
/// unless `subtype` says otherwise. Segments may overlap and come in any order; each must lie
/// inside the audio (an error names the first that does not, before anything is written).
/// Returns the frames written per file.
pub fn write_segments_audio(
    audio: &AudioBuffer,
    segments: &[Segment],
    outputs: &[PathBuf],
    subtype: Option<Subtype>,
) -> Result<Vec<u64>, IoError> {
    assert_eq!(segments.len(), outputs.len(), "one output per segment");
    let frames = audio.frames() as u64;
    let spans: Vec<(u64, u64)> = segments
        .iter()
        .map(|s| segment_frames(s, audio.sample_rate()))
        .collect();
    if let Some((i, &(_, end))) = spans.iter().enumerate().find(|(_, s)| s.1 > frames) {
        let out = outputs
            .get(i)
            .map(PathBuf::as_path)
            .unwrap_or(Path::new("-"));
        return Err(IoError::malformed(
            out,
            format!("segments[{i}] ends at frame {end}, past the audio's {frames} frames"),
        ));
    }
    spans
        .iter()
        .zip(outputs)
        .map(|(&(start, end), out)| {
            let part = audio.slice_frames(start as usize, end as usize);
            crate::write(out, &part, subtype)
        })
        .collect()
}

/// Writes the index of segment files, `path` (`segments.jsonl`): one JSON object per line,
/// `{"file": name, ...the segment's fields}` (the fields the CLI's JSON gives a segment),
/// whole or not at all (a part file renamed into place).
pub fn write_segment_index(
    path: &Path,
    names: &[String],
    segments: &[Segment],
) -> Result<(), IoError> {
    assert_eq!(names.len(), segments.len(), "one name per segment");
    let mut text = String::new();
    for (name, seg) in names.iter().zip(segments) {
        let mut entry = serde_json::Map::new();
        entry.insert("file".into(), name.clone().into());
        if let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(seg) {
            entry.extend(fields);
        }
        text.push_str(&serde_json::Value::Object(entry).to_string());
        text.push('\n');
    }
    crate::write_whole(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use remotemedia_core::data::Samples;

    /// A 200,000-frame stereo i16 file whose samples count up (so every frame is known).
    fn ramp(dir: &Path) -> (PathBuf, Vec<i16>) {
        let v: Vec<i16> = (0..400_000).map(|i| (i % 65_536 - 32_768) as i16).collect();
        let path = dir.join("in.wav");
        let audio = AudioBuffer::new(Samples::from(v.clone()), 16_000, 2).unwrap();
        crate::write(&path, &audio, None).unwrap();
        (path, v)
    }

    fn samples(path: &Path) -> Vec<i16> {
        match crate::read(path).unwrap().into_samples() {
            Samples::I16(b) => b.to_vec(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn each_segment_file_holds_exactly_its_frames_across_block_edges() {
        let dir = tempfile::tempdir().unwrap();
        let (input, v) = ramp(dir.path());
        // Within the first block, across one block edge (65,536), two segments in one block,
        // an empty one, one spanning two edges, and one counted at 8 kHz (placed by time).
        let segs = [
            Segment::new(10, 1_000, 16_000),
            Segment::new(60_000, 70_000, 16_000),
            Segment::new(70_000, 70_500, 16_000),
            Segment::new(71_000, 71_000, 16_000),
            Segment::new(72_000, 140_000, 16_000),
            Segment::new(75_000, 99_999, 8_000),
        ];
        let outs: Vec<PathBuf> = (0..segs.len())
            .map(|i| dir.path().join(format!("seg_{i}.wav")))
            .collect();
        let frames = write_segments(&input, &segs, &outs, None).unwrap();
        let want = [
            (10, 1_000),
            (60_000, 70_000),
            (70_000, 70_500),
            (71_000, 71_000),
            (72_000, 140_000),
            (150_000, 199_998),
        ];
        for ((out, n), (a, b)) in outs.iter().zip(&frames).zip(want) {
            assert_eq!(*n, b - a, "{}", out.display());
            assert_eq!(
                samples(out),
                v[2 * a as usize..2 * b as usize],
                "{}",
                out.display()
            );
        }
    }

    #[test]
    fn segments_out_of_order_or_past_the_end_are_refused_naming_them() {
        let dir = tempfile::tempdir().unwrap();
        let (input, _) = ramp(dir.path());
        let outs = vec![dir.path().join("a.wav"), dir.path().join("b.wav")];
        let overlap = [
            Segment::new(100, 500, 16_000),
            Segment::new(400, 600, 16_000),
        ];
        let e = write_segments(&input, &overlap, &outs, None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("segments[1] starts at frame 400, before segments[0] ends (500)"),
            "{e}"
        );
        let late = [
            Segment::new(100, 500, 16_000),
            Segment::new(500, 200_001, 16_000),
        ];
        let e = write_segments(&input, &late, &outs, None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("segments[1] ends at frame 200001, past the end of the file (200000"),
            "{e}"
        );
    }
}
