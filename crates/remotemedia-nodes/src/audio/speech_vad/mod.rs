//! `SpeechVADNode`: a neural voice-activity detector. Its default engine is Silero VAD v6
//! ([`super::silero`], chosen by measurement: docs/benchmarks.md); `engine="earshot"` is the
//! light one (the `earshot` crate: a small convolutional + minGRU network over log-mel
//! features). Both run in pure Rust with their weights compiled into the binary.
//!
//! Signal path: the input (any rate in 8000..=384000 Hz, any channel count, any sample
//! format) is converted to f32, non-finite samples are replaced by 0, channels are averaged,
//! the mono signal is resampled to the engine's 16 kHz with [`StreamResampler`] (delay
//! compensated, so engine sample `k` sits at input time `k / 16000` s) and clamped to
//! [-1, 1]. Every 256 engine samples (16 ms) the network gives a speech probability, from
//! the frame's features levelled (`max_gain_db`: quiet input analysed louder, loud input
//! quieter, the gain following the loudest frame of the recent past; see [`LEVEL_TARGET`]).
//!
//! With `engine="silero"` (the default) the probability comes every 512 engine samples (32 ms)
//! from Silero
//! VAD v6 instead (see [`super::silero`]: run here in Rust with its bundled weights); the rules below are the same, counted in its 32 ms frames,
//! and the energy/voicing gate (the last rule) is off: Silero tells speech from loud noise
//! itself, which the gate exists to do for earshot's network.
//!
//! Decisions are causal, frame by frame, so any chunking gives the same output bit for bit:
//! - a segment opens at a frame whose probability is `>= threshold`;
//! - while open, frames `>= end_threshold` (hysteresis) count as speech; it closes after
//!   `min_silence_ms` of frames below `end_threshold`, ending after its last speech frame;
//! - it is reported (`speech_start`) once its speech spans `min_speech_ms`; shorter ones are
//!   dropped;
//! - reported bounds are widened by `pad_ms` on both sides (never before the previous
//!   segment's padded end, never outside the stream);
//! - a frame's probability only counts (else it reads as 0) when its energy above 150 Hz
//!   (48 ms mean) is at least `min_snr_db` above the noise floor, the quietest such energy of
//!   the last 2 s, or when its voicing is at least `min_voicing` above the voicing floor
//!   (the lowest of the last 2 s): the network alone scores loud stationary noise as speech.
//!   Voicing is the peak of the normalised autocorrelation of the 150-1000 Hz band (taken at
//!   4 kHz) over 20 ms, at lags of 2.5-12.5 ms (fundamentals of 80-400 Hz), 48 ms mean: voiced
//!   speech stays periodic in noise that hides its energy, while noise is not periodic, and a
//!   steady periodic noise (mains hum) is periodic all the time, so it raises its own floor.
//!
//! Times are in the input's timeline: an engine frame edge at engine sample `e` maps to input
//! sample `floor(e * rate / 16000)`, and milliseconds are `sample * 1000 / rate`.
//!
//! Files: [`params`] (the parameters), [`downmix`] (the analysis' mono input), [`earshot`]
//! (the built-in engine's frame with its gate), [`leveller`], [`noise_floor`] and [`voicing`]
//! (what the gate measures), [`hysteresis`] (the segment rules); this file runs them per
//! stream.
//!
//! [`LEVEL_TARGET`]: leveller::LEVEL_TARGET

mod downmix;
mod earshot;
mod hysteresis;
mod leveller;
mod noise_floor;
mod params;
mod voicing;

use std::collections::VecDeque;

use async_trait::async_trait;
use serde_json::{json, Value};

use super::silero::Silero;
use super::vad_engine::Engine;
use crate::dsp::resample::{ResampleQuality, StreamResampler};
use downmix::downmix_into;
use earshot::EarshotGate;
use hysteresis::{Event, Rules, Segments};
pub use params::{SpeechVadEmit, SpeechVadEngine, SpeechVadParams, END_THRESHOLD_GAP};
use remotemedia_core::data::{AudioBuffer, Data, SampleFormat, Segment};
use remotemedia_core::error::NodeError;
use remotemedia_core::node::{audio_input, check_stream_format, check_stream_shape, Node};
use remotemedia_core::registry::{NodeDef, Output, Outputs};

const NODE: &str = "SpeechVADNode";
/// The engine's sample rate and frame length (fixed by the earshot model).
pub const ENGINE_RATE: u32 = super::vad_engine::RATE;
/// Engine frame length in samples (16 ms at 16 kHz).
pub const ENGINE_FRAME: usize = super::vad_engine::FRAME;
/// Input frames converted and analysed per pass (a whole file goes through in blocks).
const BLOCK_FRAMES: usize = 4096;

/// Per-stream state (one session).
struct Stream {
    rate: u32,
    channels: u16,
    format: SampleFormat,
    /// `None` at 16 kHz.
    resampler: Option<StreamResampler<f32>>,
    /// Engine samples not yet making a whole frame (< 256).
    frame_buf: Vec<f32>,
    /// Scratch: the mono input of one call and the resampler's output.
    mono: Vec<f32>,
    resampled: Vec<f32>,
    /// Engine frames analysed so far.
    frames_done: u64,
    /// engine="earshot": the network's dither, the gate and the leveller.
    gate: EarshotGate,
    /// Input frames received.
    input_frames: u64,
    /// The segment rules' state (see [`Segments`]).
    segments: Segments,
    /// emit="speech": recent input chunks `(first input frame, chunk)`.
    history: VecDeque<(u64, AudioBuffer)>,
}

/// The network behind the probabilities.
enum Detector {
    Earshot(Box<Engine>),
    Silero(Box<Silero>),
}

/// The neural VAD (see module docs).
pub struct SpeechVadNode {
    params: SpeechVadParams,
    /// The error when engine="silero" found no usable model (refused by the parameter check
    /// before a node is built; kept for a file removed in between).
    detector: Result<Detector, String>,
    stream: Option<Stream>,
}

impl std::fmt::Debug for SpeechVadNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpeechVadNode")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

impl SpeechVadNode {
    /// Builds the node.
    pub fn new(params: SpeechVadParams) -> Self {
        let detector = match params.engine {
            SpeechVadEngine::Earshot => Ok(Detector::Earshot(Box::new(Engine::new()))),
            SpeechVadEngine::Silero => params
                .silero_weights()
                .map(|w| Detector::Silero(Box::new(Silero::new(w))))
                .map_err(|i| format!("params.{}: {}", i.field, i.message)),
        };
        Self {
            params,
            detector,
            stream: None,
        }
    }

    fn detector(&mut self) -> Result<&mut Detector, NodeError> {
        self.detector
            .as_mut()
            .map_err(|e| NodeError::failed(e.clone()))
    }

    fn open_stream(&self, audio: &AudioBuffer) -> Result<Stream, NodeError> {
        let rate = audio.sample_rate();
        // "fast" is plenty for a classifier that sees 40 mel bands up to 8 kHz, and cheapest.
        let resampler = if rate == ENGINE_RATE {
            None
        } else {
            Some(
                StreamResampler::new(ResampleQuality::Fast, rate, ENGINE_RATE, 1)
                    .map_err(NodeError::failed)?,
            )
        };
        Ok(Stream {
            rate,
            channels: audio.channels(),
            format: audio.format(),
            resampler,
            frame_buf: Vec::with_capacity(self.params.frame_samples()),
            mono: Vec::new(),
            resampled: Vec::new(),
            frames_done: 0,
            gate: EarshotGate::new(),
            input_frames: 0,
            segments: Segments::default(),
            history: VecDeque::new(),
        })
    }

    /// Runs the detector over whole engine frames of `engine` (and the zero-padded partial
    /// frame when `last`), returning decisions and the input ranges of speech audio now known.
    fn analyse(&mut self, last: bool) -> (Vec<Event>, Vec<(u64, u64)>) {
        let p = &self.params;
        let stream = self.stream.as_mut().expect("stream opened");
        let model = self.detector.as_mut().expect("checked by process");
        let fl = p.frame_samples();
        let rules = Rules::new(p, stream.rate);
        let min_snr_db = p.min_snr_db as f32;
        let min_voicing = p.min_voicing.map(|v| v as f32);
        let max_gain_db = p.max_gain_db as f32;
        let want_probs = p.emit == SpeechVadEmit::Probabilities;
        let total_input = stream.input_frames;

        let mut events = Vec::new();
        let mut ranges: Vec<(u64, u64)> = Vec::new();
        let mut offset = 0;
        let engine = std::mem::take(&mut stream.resampled);
        loop {
            // Assemble one frame from the carry-over and this call's engine samples.
            let need = fl - stream.frame_buf.len();
            let take = need.min(engine.len() - offset);
            stream
                .frame_buf
                .extend_from_slice(&engine[offset..offset + take]);
            offset += take;
            let valid = stream.frame_buf.len();
            if valid < fl && !(last && valid > 0) {
                break;
            }
            stream.frame_buf.resize(fl, 0.0);
            let prob = match model {
                Detector::Silero(s) => {
                    // The analysis range of the module docs (the earshot path clamps in its
                    // gate, with the dither).
                    for x in stream.frame_buf.iter_mut() {
                        *x = x.clamp(-1.0, 1.0);
                    }
                    let window = stream.frame_buf[..].try_into().expect("a whole window");
                    // Guard the documented range even if the network ever returned NaN.
                    let prob = s.predict(window);
                    if prob.is_finite() {
                        prob.clamp(0.0, 1.0)
                    } else {
                        0.0
                    }
                }
                Detector::Earshot(net) => {
                    let frame: &mut [f32; ENGINE_FRAME] = (&mut stream.frame_buf[..])
                        .try_into()
                        .expect("a whole frame");
                    stream
                        .gate
                        .score(net, frame, min_snr_db, min_voicing, max_gain_db)
                }
            };
            stream.frame_buf.clear();
            let j = stream.frames_done;
            stream.frames_done += 1;
            // Frame edges in input samples; the last (partial) frame ends at the stream's end.
            let f_start = rules.frame_start(j);
            let mut f_end = rules.frame_start(j + 1);
            if valid < fl || last {
                f_end = f_end.min(total_input);
            }
            if want_probs {
                events.push(Event::Prob {
                    start: f_start,
                    end: f_end.max(f_start),
                    p: prob,
                });
            }
            stream
                .segments
                .frame(&rules, j, prob, (f_start, f_end), &mut events, &mut ranges);
        }
        stream.resampled = engine;
        stream.resampled.clear();
        if last {
            // End of stream: a confirmed segment still open ends after its last speech frame.
            stream
                .segments
                .finish(&rules, total_input, &mut events, &mut ranges);
        }
        (events, ranges)
    }

    /// Drops history no future output can need.
    fn trim_history(&mut self) {
        let stream = self.stream.as_mut().expect("stream opened");
        let rules = Rules::new(&self.params, stream.rate);
        let keep_from = stream.segments.keep_from(&rules, stream.frames_done);
        while let Some((first, chunk)) = stream.history.front() {
            if first + chunk.frames() as u64 <= keep_from {
                stream.history.pop_front();
            } else {
                break;
            }
        }
    }

    /// The speech audio of input `ranges`, from the history.
    fn speech_audio(&self, ranges: &[(u64, u64)]) -> AudioBuffer {
        let stream = self.stream.as_ref().expect("stream opened");
        let mut parts = Vec::new();
        for &(a, b) in ranges {
            for (first, chunk) in &stream.history {
                let (c0, c1) = (*first, first + chunk.frames() as u64);
                let (s, e) = (a.max(c0), b.min(c1));
                if s < e {
                    parts.push(chunk.slice_frames((s - c0) as usize, (e - c0) as usize));
                }
            }
        }
        let refs: Vec<&AudioBuffer> = parts.iter().collect();
        let origin = ranges
            .iter()
            .map(|&(a, b)| Segment::new(a, b, stream.rate))
            .collect();
        AudioBuffer::concat(&refs)
            .unwrap_or_else(|| {
                AudioBuffer::empty(stream.format, stream.rate, stream.channels)
                    .expect("shape of a valid stream")
            })
            .with_origin(origin)
    }

    fn output(&self, events: Vec<Event>, ranges: &[(u64, u64)], last: bool) -> Option<Data> {
        let stream = self.stream.as_ref().expect("stream opened");
        let ms = |s: u64| s as f64 * 1000.0 / stream.rate as f64;
        if self.params.emit == SpeechVadEmit::Speech {
            if ranges.is_empty() && !last {
                return None;
            }
            return Some(Data::Audio(self.speech_audio(ranges)));
        }
        if self.params.emit == SpeechVadEmit::Segments {
            let segments: Vec<Segment> = events
                .into_iter()
                .filter_map(|e| match e {
                    Event::End {
                        start,
                        end,
                        confidence,
                    } => Some(Segment {
                        confidence: Some(confidence),
                        ..Segment::new(start, end, stream.rate)
                    }),
                    _ => None,
                })
                .collect();
            // Quiet calls emit nothing; the end of stream always emits (possibly an empty
            // list), so a whole-input run always has a result.
            return (last || !segments.is_empty()).then_some(Data::Segments(segments));
        }
        let items: Vec<Value> = events
            .into_iter()
            .filter_map(|e| match (self.params.emit, e) {
                (SpeechVadEmit::Events, Event::Start { start }) => Some(json!({
                    "event": "speech_start", "start_ms": ms(start),
                })),
                (
                    SpeechVadEmit::Events,
                    Event::End {
                        start,
                        end,
                        confidence,
                    },
                ) => Some(json!({
                    "event": "speech_end", "start_ms": ms(start), "end_ms": ms(end),
                    "confidence": confidence,
                })),
                (SpeechVadEmit::Probabilities, Event::Prob { start, end, p }) => Some(json!({
                    "start_ms": ms(start), "end_ms": ms(end), "probability": p as f64,
                })),
                _ => None,
            })
            .collect();
        // Quiet calls emit nothing; the end of stream always emits (possibly an empty list),
        // so a whole-input run always has a result.
        (last || !items.is_empty()).then_some(Data::Json(Value::Array(items)))
    }
}

impl NodeDef for SpeechVadNode {
    const NAME: &'static str = NODE;
    const DESCRIPTION: &'static str = "Neural voice-activity detector: Silero VAD v6 by default, built in.\n\
     \n\
     Any sample rate (8000..=384000 Hz) and channel count: the node downmixes, resamples to 16 kHz\n\
     internally and scores each frame with a speech probability (32 ms frames with the default\n\
     engine, Silero VAD v6 run in Rust with its weights bundled (MIT): nothing to install, no ONNX\n\
     Runtime; `model_path` reads a silero-vad silero_vad_op18_ifless.onnx instead). A segment opens\n\
     at a frame `>= threshold`, continues while frames stay `>= end_threshold` (default\n\
     `max(threshold - 0.15, 0.01)`, at most `threshold`), closes after `min_silence_ms` below it, is\n\
     reported once its speech spans `min_speech_ms` and is widened by `pad_ms` on both sides;\n\
     `max_speech_ms` splits longer ones. Times are in the input's timeline, exact to the sample.\n\
     NaN/Inf samples are read as 0.\n\
     \n\
     emit=\"segments\" gives the speech segments (times in ms, seconds and input samples, and\n\
     `confidence`, the mean speech probability of the segment's frames, padding excluded);\n\
     \"speech\" only the speech audio in the input's format (each output's `origin`: the input ranges\n\
     it is, for the whole run and every stream chunk); \"events\" speech_start / speech_end\n\
     events as soon as each is decided; \"probabilities\" `{start_ms, end_ms, probability}` per\n\
     frame.\n\
     \n\
     engine=\"earshot\" is the light engine (about a fifth of the CPU; 16 ms frames): earshot's\n\
     network behind an energy and voicing gate. A frame's probability counts only when its energy\n\
     above 150 Hz is `min_snr_db` above the noise floor (the quietest such energy of the last 2 s),\n\
     or its voicing (periodicity of the 150-1000 Hz band, 0..1) is `min_voicing` above its own\n\
     lowest value of the last 2 s (null: energy alone decides); the network hears the input\n\
     levelled by at most `max_gain_db`. It mistakes music and steady tones for speech far more\n\
     often (docs/benchmarks.md). With Silero these three gate parameters must keep their defaults.";
    const OUTPUTS: Outputs = Outputs::ByParam {
        param: "emit",
        values: &[
            ("segments", Output::Segments),
            ("speech", Output::Audio),
            ("events", Output::Events),
            ("probabilities", Output::Frames),
        ],
    };
    type Params = SpeechVadParams;
    fn build(params: SpeechVadParams) -> Self {
        Self::new(params)
    }
}

#[async_trait]
impl Node for SpeechVadNode {
    async fn start(&mut self) -> Result<(), NodeError> {
        self.stream = None;
        match self.detector()? {
            Detector::Earshot(e) => e.reset(),
            Detector::Silero(s) => s.reset(),
        }
        Ok(())
    }

    async fn process(&mut self, input: Data) -> Result<Option<Data>, NodeError> {
        self.detector()?;
        let audio = audio_input(&input)?;
        check_stream_shape(self.stream.as_ref().map(|s| (s.rate, s.channels)), audio)?;
        check_stream_format(self.stream.as_ref().map(|s| s.format), audio)?;
        if self.stream.is_none() {
            self.stream = Some(self.open_stream(audio)?);
            if let Detector::Earshot(e) = self.detector()? {
                e.set_input_rate(audio.sample_rate());
            }
        }
        let want_speech = self.params.emit == SpeechVadEmit::Speech;
        let stream = self.stream.as_mut().expect("opened above");
        if audio.frames() == 0 {
            return Ok(None);
        }
        let first = stream.input_frames;
        stream.input_frames += audio.frames() as u64;
        if want_speech {
            stream.history.push_back((first, audio.clone()));
        }
        // In blocks, so a whole file never needs file-sized scratch buffers (and the work
        // stays in cache); decisions are causal, so this changes no bit of the output.
        let (mut events, mut ranges) = (Vec::new(), Vec::new());
        let frames = audio.frames();
        let ch = audio.channels() as usize;
        for a in (0..frames).step_by(BLOCK_FRAMES) {
            let b = (a + BLOCK_FRAMES).min(frames);
            let stream = self.stream.as_mut().expect("opened above");
            match stream.resampler.as_mut() {
                Some(r) => {
                    stream.mono.clear();
                    downmix_into(audio.samples(), ch, a..b, &mut stream.mono);
                    r.push(&stream.mono, &mut stream.resampled);
                }
                None => downmix_into(audio.samples(), ch, a..b, &mut stream.resampled),
            }
            let (e, r) = self.analyse(false);
            events.extend(e);
            ranges.extend(r);
        }
        let out = self.output(events, &ranges, false);
        if want_speech {
            self.trim_history();
        }
        Ok(out)
    }

    async fn flush(&mut self) -> Result<Option<Data>, NodeError> {
        let Some(stream) = self.stream.as_mut() else {
            // Empty stream: no audio, so no format to emit speech in; decisions are empty.
            return Ok(match self.params.emit {
                SpeechVadEmit::Speech => None,
                _ => Some(Data::Json(Value::Array(Vec::new()))),
            });
        };
        if let Some(r) = stream.resampler.as_mut() {
            r.flush(&mut stream.resampled);
        }
        let (events, ranges) = self.analyse(true);
        let out = self.output(events, &ranges, true);
        if let Some(s) = self.stream.as_mut() {
            s.history.clear();
        }
        Ok(out)
    }
}
