//! `VADNode`: the seed's energy voice-activity detector, made streaming.
//!
//! The stream is cut into frames of `frame_length_ms` (rounded to whole samples) counted from
//! the first sample. A frame is speech when its RMS level over all channels exceeds
//! `threshold` dBFS; with `hangover_ms`, frames just after speech still count as speech until
//! that much time has passed without any (the classic hangover: it bridges short pauses and
//! keeps word endings). Consecutive speech frames form one segment. Every decision is causal,
//! made when its frame arrives: a segment's start is known at its first frame, its end when
//! the hangover runs out (or at end of stream), so streamed and whole-input results are
//! identical. The last, partial frame is analysed at `flush` over the samples it has.
//!
//! Levels are floored at [`DB_FLOOR`] (-120 dBFS): digital silence (or a NaN) reads as -120,
//! never as -inf or NaN.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use remotemedia_core::data::{AudioBuffer, Data, Samples, Segment};
use remotemedia_core::error::NodeError;
use remotemedia_core::node::{audio_input, check_stream_format, check_stream_shape, Node};
use remotemedia_core::registry::{NodeDef, NodeParams, Output, Outputs};
use serde_json::{json, Value};

/// Lowest level reported, in dBFS.
pub const DB_FLOOR: f64 = -120.0;

/// What `VADNode` emits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum VadEmit {
    /// Speech segments (`Segment`: times in ms, s and samples, and `energy_db`), each as soon
    /// as it ends.
    #[default]
    Segments,
    /// Only the speech audio, concatenated, in the input's format.
    Speech,
    /// `{"event": "speech_start", "start_ms"}` as soon as speech starts and
    /// `{"event": "speech_end", "start_ms", "end_ms", "energy_db"}` when it ends (for streams).
    Events,
}

fn default_threshold() -> f64 {
    -30.0
}
fn default_frame_length_ms() -> u32 {
    30
}

/// Parameters of `VADNode`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VadParams {
    /// Speech threshold in dBFS, a finite number in -120.0..=0.0. Default -30.0.
    #[serde(default = "default_threshold")]
    #[schemars(range(min = -120.0, max = 0.0), extend("x-unit" = "dBFS"))]
    pub threshold: f64,
    /// Analysis frame length in milliseconds, 1..=1000. Default 30.
    #[serde(default = "default_frame_length_ms")]
    #[schemars(range(min = 1, max = 1000), extend("x-unit" = "ms"))]
    pub frame_length_ms: u32,
    /// "segments" (default), "speech" or "events".
    #[serde(default)]
    pub emit: VadEmit,
    /// Time after the last loud frame that still counts as speech, 0..=10000 ms. Default 0.
    #[serde(default)]
    #[schemars(range(max = 10000), extend("x-unit" = "ms"))]
    pub hangover_ms: u32,
}

impl Default for VadParams {
    fn default() -> Self {
        Self {
            threshold: default_threshold(),
            frame_length_ms: default_frame_length_ms(),
            emit: VadEmit::Segments,
            hangover_ms: 0,
        }
    }
}

impl NodeParams for VadParams {}

/// A segment still growing.
#[derive(Debug, Clone, Copy)]
struct Open {
    start_frame: u64,
    sum_sq: f64,
    samples: u64,
}

#[derive(Debug)]
struct Stream {
    rate: u32,
    channels: u16,
    frame_len: usize,
    /// Frames received but not yet analysed (fewer than `frame_len`).
    pending: Option<AudioBuffer>,
    /// Stream index of the first frame of `pending`.
    position: u64,
    open: Option<Open>,
    /// Hangover frames left: quiet frames still counted as speech.
    hang_left: u32,
    /// Hangover length in frames.
    hang_frames: u32,
}

/// A decision of the detector.
#[derive(Debug, Clone, Copy)]
enum Event {
    /// Speech started at this frame index.
    Start(u64),
    /// A segment ended.
    End(Segment),
}

/// The energy VAD (see module docs).
#[derive(Debug)]
pub struct VadNode {
    params: VadParams,
    stream: Option<Stream>,
}

/// Level in dBFS of a mean square, floored (never -inf or NaN).
fn to_db(mean_square: f64) -> f64 {
    let db = 10.0 * mean_square.log10();
    // f64::max returns the non-NaN operand, so NaN and -inf both become the floor.
    db.max(DB_FLOOR)
}

/// Sum of squares of samples `[start, end)` in full-scale units.
fn sum_squares(samples: &Samples, start: usize, end: usize) -> f64 {
    fn sum<T: Copy>(s: &[T], f: impl Fn(T) -> f64) -> f64 {
        s.iter()
            .map(|&x| {
                let v = f(x);
                v * v
            })
            .sum()
    }
    match samples {
        Samples::F32(b) => sum(&b[start..end], |x| x as f64),
        Samples::F64(b) => sum(&b[start..end], |x| x),
        Samples::I16(b) => sum(&b[start..end], |x| x as f64 * (1.0 / 32768.0)),
        Samples::I32(b) => sum(&b[start..end], |x| x as f64 * (1.0 / 2_147_483_648.0)),
    }
}

fn segment(rate: u32, open: Open, end_frame: u64) -> Segment {
    Segment {
        energy_db: Some(to_db(open.sum_sq / open.samples.max(1) as f64)),
        ..Segment::new(open.start_frame, end_frame, rate)
    }
}

/// The speech frame ranges of one analysed buffer, and the stream position of its first frame.
struct Speech {
    base: u64,
    ranges: Vec<(usize, usize)>,
}

impl VadNode {
    /// Builds the node.
    pub fn new(params: VadParams) -> Self {
        Self {
            params,
            stream: None,
        }
    }

    /// Analyses whole frames of `audio` (plus the partial tail when `last`); returns the
    /// detector's decisions and the speech frame ranges of `audio` (for emit="speech").
    fn analyse(&mut self, audio: &AudioBuffer, last: bool) -> (Vec<Event>, Speech) {
        let threshold = self.params.threshold;
        let stream = self.stream.as_mut().expect("stream initialised");
        let base = stream.position;
        let (rate, channels, frame_len) = (stream.rate, stream.channels as usize, stream.frame_len);
        let frames = audio.frames();
        let mut events = Vec::new();
        let mut speech: Vec<(usize, usize)> = Vec::new();
        let mut start = 0;
        while start < frames && (frames - start >= frame_len || last) {
            let end = (start + frame_len).min(frames);
            let n = (end - start) * channels;
            let ss = sum_squares(audio.samples(), start * channels, end * channels);
            let is_speech = if to_db(ss / n as f64) > threshold {
                stream.hang_left = stream.hang_frames;
                true
            } else if stream.open.is_some() && stream.hang_left > 0 {
                stream.hang_left -= 1;
                true
            } else {
                false
            };
            let frame_index = stream.position + start as u64;
            if is_speech {
                if stream.open.is_none() {
                    events.push(Event::Start(frame_index));
                }
                let open = stream.open.get_or_insert(Open {
                    start_frame: frame_index,
                    sum_sq: 0.0,
                    samples: 0,
                });
                open.sum_sq += ss;
                open.samples += n as u64;
                match speech.last_mut() {
                    Some(r) if r.1 == start => r.1 = end,
                    _ => speech.push((start, end)),
                }
            } else if let Some(open) = stream.open.take() {
                events.push(Event::End(segment(rate, open, frame_index)));
            }
            start = end;
        }
        stream.position += start as u64;
        stream.pending = (start < frames).then(|| audio.slice_frames(start, frames));
        if last {
            if let Some(open) = stream.open.take() {
                events.push(Event::End(segment(rate, open, stream.position)));
            }
        }
        (
            events,
            Speech {
                base,
                ranges: speech,
            },
        )
    }

    /// The output for one call, from the decisions made and the speech found in `audio`.
    fn emit(
        &self,
        rate: u32,
        audio: Option<&AudioBuffer>,
        events: Vec<Event>,
        speech: Speech,
    ) -> Option<Data> {
        Some(match self.params.emit {
            VadEmit::Segments => Data::Segments(
                events
                    .into_iter()
                    .filter_map(|e| match e {
                        Event::End(s) => Some(s),
                        Event::Start(_) => None,
                    })
                    .collect(),
            ),
            VadEmit::Events => Data::Json(Value::Array(
                events
                    .into_iter()
                    .map(|e| match e {
                        Event::Start(frame) => json!({
                            "event": "speech_start",
                            "start_ms": frame as f64 * 1000.0 / rate as f64,
                        }),
                        Event::End(s) => json!({
                            "event": "speech_end",
                            "start_ms": s.start_ms(),
                            "end_ms": s.end_ms(),
                            "energy_db": s.energy_db,
                        }),
                    })
                    .collect(),
            )),
            VadEmit::Speech => {
                let audio = audio?;
                let parts: Vec<AudioBuffer> = speech
                    .ranges
                    .iter()
                    .map(|&(a, b)| audio.slice_frames(a, b))
                    .collect();
                let refs: Vec<&AudioBuffer> = parts.iter().collect();
                let origin = speech
                    .ranges
                    .iter()
                    .map(|&(a, b)| {
                        Segment::new(speech.base + a as u64, speech.base + b as u64, rate)
                    })
                    .collect();
                Data::Audio(
                    AudioBuffer::concat(&refs)
                        .unwrap_or_else(|| {
                            AudioBuffer::empty(
                                audio.format(),
                                audio.sample_rate(),
                                audio.channels(),
                            )
                            .expect("shape of a valid buffer")
                        })
                        .with_origin(origin),
                )
            }
        })
    }
}

impl NodeDef for VadNode {
    const NAME: &'static str = "VADNode";
    const DESCRIPTION: &'static str = "Energy voice-activity detector.\n\
     \n\
     Frames of `frame_length_ms` whose RMS level exceeds `threshold` dBFS are speech;\n\
     `hangover_ms` keeps counting speech for that long after the last loud frame.\n\
     emit=\"segments\" gives the speech segments (times in ms, seconds and input samples, and\n\
     `energy_db`, the segment's level in dBFS); emit=\"speech\" only the speech audio, each\n\
     output's `origin` the input ranges it is (whole run and every stream chunk);\n\
     emit=\"events\" speech_start / speech_end events as soon as each is decided (for streams).";
    const OUTPUTS: Outputs = Outputs::ByParam {
        param: "emit",
        values: &[
            ("segments", Output::Segments),
            ("speech", Output::Audio),
            ("events", Output::Events),
        ],
    };
    type Params = VadParams;
    fn build(params: VadParams) -> Self {
        Self::new(params)
    }
}

#[async_trait]
impl Node for VadNode {
    async fn start(&mut self) -> Result<(), NodeError> {
        self.stream = None;
        Ok(())
    }

    async fn process(&mut self, input: Data) -> Result<Option<Data>, NodeError> {
        let audio = audio_input(&input)?;
        check_stream_shape(self.stream.as_ref().map(|s| (s.rate, s.channels)), audio)?;
        let hang_frames = self
            .params
            .hangover_ms
            .div_ceil(self.params.frame_length_ms);
        let stream = self.stream.get_or_insert_with(|| Stream {
            rate: audio.sample_rate(),
            channels: audio.channels(),
            frame_len: ((audio.sample_rate() as u64 * self.params.frame_length_ms as u64 + 500)
                / 1000)
                .max(1) as usize,
            pending: None,
            position: 0,
            open: None,
            hang_left: 0,
            hang_frames,
        });
        let joined;
        let audio = match stream.pending.take() {
            Some(p) => {
                check_stream_format(Some(p.format()), audio)?;
                joined = AudioBuffer::concat(&[&p, audio]).expect("same shape checked");
                &joined
            }
            None => audio,
        };
        let (events, speech) = self.analyse(audio, false);
        Ok(self.emit(audio.sample_rate(), Some(audio), events, speech))
    }

    async fn flush(&mut self) -> Result<Option<Data>, NodeError> {
        let Some(stream) = self.stream.as_mut() else {
            return Ok(None);
        };
        let rate = stream.rate;
        match stream.pending.take() {
            Some(pending) => {
                let (events, speech) = self.analyse(&pending, true);
                Ok(self.emit(rate, Some(&pending), events, speech))
            }
            // No partial frame: close a segment still open at the end of the stream.
            None => match stream.open.take() {
                Some(open) => {
                    let end = Event::End(segment(rate, open, stream.position));
                    let none = Speech {
                        base: stream.position,
                        ranges: Vec::new(),
                    };
                    Ok(self.emit(rate, None, vec![end], none))
                }
                None => Ok(None),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_reads_as_the_floor_never_nan_or_inf() {
        assert_eq!(to_db(0.0), DB_FLOOR);
        assert_eq!(to_db(f64::NAN), DB_FLOOR);
        assert!((to_db(1.0) - 0.0).abs() < 1e-12);
        assert!((to_db(0.01) + 20.0).abs() < 1e-9);
    }
}
