//! `DenoiseNode`: real-time noise suppression with RNNoise (the `nnnoiseless` crate, a pure-Rust
//! port of Xiph's RNNoise: a small recurrent network that sets 22 band gains every 10 ms).
//!
//! RNNoise works on 48 kHz mono frames of 480 samples. Other rates are resampled to 48 kHz and
//! back with the same band-limited resampler as `AudioResampleNode` (delay-compensated, exact
//! lengths); each channel has a denoiser of its own. The network's 10 ms frame delay is
//! compensated too: the output lines up with the input sample for sample and has its length,
//! and a stream gives the same samples as the whole input at once (the tail comes at flush).
//! In a live stream the output lags the input by [`DenoiseNode::latency_frames`]: 10 ms plus
//! the resamplers' look-ahead at rates other than 48 kHz.
//!
//! `emit="probabilities"` gives, instead of audio, RNNoise's own speech probability for each
//! 10 ms of input, `[{start_ms, end_ms, probability}]` (the mean over channels), as the network
//! computes it alongside its gains.
//!
//! `attenuation_limit_db` caps how far noise is pulled down by mixing the (aligned) input back
//! in: at most that many dB of attenuation anywhere, which keeps some room tone and softens
//! artefacts on music or on speech the network mistakes for noise.

use async_trait::async_trait;
use nnnoiseless::DenoiseState;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::dsp::resample::{ResampleQuality, StreamResampler};
use crate::dsp::samples::from_f32;
use remotemedia_core::data::{AudioBuffer, Data, SampleFormat};
use remotemedia_core::error::NodeError;
use remotemedia_core::node::{check_finite, Node, StreamShape};
use remotemedia_core::registry::{NodeDef, NodeParams, Output, Outputs, ParamIssue};

/// RNNoise's rate and frame.
const RATE: u32 = 48_000;
const FRAME: usize = DenoiseState::FRAME_SIZE;
/// RNNoise takes samples at 16-bit scale.
const SCALE: f32 = 32768.0;

/// What `DenoiseNode` emits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DenoiseEmit {
    /// The denoised audio.
    #[default]
    Audio,
    /// `[{start_ms, end_ms, probability}]`: RNNoise's speech probability per 10 ms of input.
    Probabilities,
}

/// Parameters of `DenoiseNode`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DenoiseParams {
    /// "audio" (default): the denoised audio; "probabilities": RNNoise's speech probability
    /// per 10 ms, `[{start_ms, end_ms, probability}]`.
    #[serde(default)]
    pub emit: DenoiseEmit,
    /// Most attenuation applied anywhere, 1.0..=100.0 dB (the input is mixed back in at
    /// -limit dB). Default: none (RNNoise's full suppression).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1.0, max = 100.0), extend("x-unit" = "dB"))]
    pub attenuation_limit_db: Option<f64>,
}

impl NodeParams for DenoiseParams {
    fn check(&self) -> Vec<ParamIssue> {
        Vec::new() // the range is in the schema
    }
}

/// One stream's state.
struct Stream {
    channels: usize,
    format: SampleFormat,
    /// To 48 kHz and back (`None` at 48 kHz).
    up: Option<StreamResampler<f32>>,
    down: Option<StreamResampler<f32>>,
    denoisers: Vec<Box<DenoiseState<'static>>>,
    /// 48 kHz interleaved frames waiting for a whole RNNoise frame.
    pending: Vec<f32>,
    /// The previous frame's input (interleaved): what this frame's output lines up with.
    previous: Vec<f32>,
    /// 48 kHz output frames still to drop (the network's frame delay).
    skip: usize,
    /// 48 kHz frames in, and out (after the drop).
    in48: u64,
    out48: u64,
    /// Input-rate frames in, and out.
    frames_in: u64,
    frames_out: u64,
    frame_in: Vec<f32>,
    frame_out: Vec<f32>,
    /// RNNoise frames analysed, and their speech probabilities not yet given out.
    frames_done: u64,
    probabilities: Vec<(u64, f32)>,
}

/// Suppresses noise (see module docs).
pub struct DenoiseNode {
    params: DenoiseParams,
    shape: StreamShape,
    stream: Option<Stream>,
}

impl std::fmt::Debug for DenoiseNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DenoiseNode")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

impl DenoiseNode {
    /// Builds the node.
    pub fn new(params: DenoiseParams) -> Self {
        Self {
            params,
            shape: StreamShape::default(),
            stream: None,
        }
    }

    /// How far a live stream's output lags its input at `rate`, in input frames: RNNoise's
    /// 10 ms frame plus the resamplers' look-ahead (none at 48 kHz).
    pub fn latency_frames(rate: u32) -> usize {
        let frame = (FRAME as u64 * rate as u64).div_ceil(RATE as u64) as usize;
        if rate == RATE {
            return frame;
        }
        let q = ResampleQuality::High;
        let up = StreamResampler::<f32>::new(q, rate, RATE, 1).map_or(0, |r| r.delay_frames());
        let down = StreamResampler::<f32>::new(q, RATE, rate, 1).map_or(0, |r| r.delay_frames());
        frame + (up as u64 * rate as u64).div_ceil(RATE as u64) as usize + down
    }

    /// The share of the input mixed back in (0 = none).
    fn dry(&self) -> f32 {
        self.params
            .attenuation_limit_db
            .map_or(0.0, |db| 10f64.powf(-db / 20.0) as f32)
    }

    fn open(&self, audio: &AudioBuffer) -> Result<Stream, NodeError> {
        let (rate, ch) = (audio.sample_rate(), audio.channels() as usize);
        let resampler = |from, to| {
            StreamResampler::<f32>::new(ResampleQuality::High, from, to, ch)
                .map_err(NodeError::failed)
        };
        let (up, down) = if rate == RATE {
            (None, None)
        } else {
            (Some(resampler(rate, RATE)?), Some(resampler(RATE, rate)?))
        };
        Ok(Stream {
            channels: ch,
            format: audio.format(),
            up,
            down,
            denoisers: (0..ch).map(|_| DenoiseState::new()).collect(),
            pending: Vec::new(),
            previous: vec![0.0; FRAME * ch],
            skip: FRAME,
            in48: 0,
            out48: 0,
            frames_in: 0,
            frames_out: 0,
            frame_in: vec![0.0; FRAME],
            frame_out: vec![0.0; FRAME],
            frames_done: 0,
            probabilities: Vec::new(),
        })
    }
}

impl Stream {
    /// Denoises the whole RNNoise frames in `pending`, appending the aligned 48 kHz output.
    fn run(&mut self, dry: f32, out: &mut Vec<f32>) {
        let ch = self.channels;
        let whole = self.pending.len() / (FRAME * ch) * FRAME * ch;
        let mut wet = vec![0.0f32; FRAME * ch];
        for block in self.pending[..whole].chunks_exact(FRAME * ch) {
            let mut prob = 0.0;
            for (c, denoiser) in self.denoisers.iter_mut().enumerate() {
                for (i, x) in self.frame_in.iter_mut().enumerate() {
                    *x = block[i * ch + c] * SCALE;
                }
                prob += denoiser.process_frame(&mut self.frame_out, &self.frame_in);
                for (i, y) in self.frame_out.iter().enumerate() {
                    wet[i * ch + c] = y / SCALE;
                }
            }
            // This frame's output is the previous frame's input, denoised.
            if dry > 0.0 {
                for (w, d) in wet.iter_mut().zip(&self.previous) {
                    *w = (1.0 - dry) * *w + dry * d;
                }
            }
            self.previous.copy_from_slice(block);
            // Frames of the padding at the end are not the input's.
            if self.frames_done * (FRAME as u64) < self.in48 {
                self.probabilities
                    .push((self.frames_done, prob / ch as f32));
            }
            self.frames_done += 1;
            let drop = self.skip.min(FRAME);
            self.skip -= drop;
            out.extend_from_slice(&wet[drop * ch..]);
        }
        self.pending.drain(..whole);
    }

    /// Takes 48 kHz input; returns input-rate output ready so far (`end`: the stream's end).
    fn push48(&mut self, x48: &[f32], dry: f32, end: bool) -> Vec<f32> {
        let ch = self.channels;
        self.in48 += (x48.len() / ch) as u64;
        self.pending.extend_from_slice(x48);
        if end {
            // Silence through the network's delay and to a whole frame, then cut to length.
            let r = self.pending.len() / ch % FRAME;
            let pad = FRAME + (FRAME - r) % FRAME;
            self.pending.resize(self.pending.len() + pad * ch, 0.0);
        }
        let mut y48 = Vec::new();
        self.run(dry, &mut y48);
        let room = (self.in48 - self.out48) as usize;
        y48.truncate(room.min(y48.len() / ch) * ch);
        self.out48 += (y48.len() / ch) as u64;
        let mut y = match &mut self.down {
            None => y48,
            Some(down) => {
                let mut y = Vec::with_capacity(y48.len());
                down.push(&y48, &mut y);
                if end {
                    down.flush(&mut y);
                }
                y
            }
        };
        // Exactly the input's length in all (a resampling round trip can give one more).
        let room = (self.frames_in - self.frames_out) as usize;
        y.truncate(room.min(y.len() / ch) * ch);
        self.frames_out += (y.len() / ch) as u64;
        y
    }

    /// The speech probabilities so far, as JSON (10 ms each, in input time).
    fn take_probabilities(&mut self) -> Data {
        let items = self
            .probabilities
            .drain(..)
            .map(|(k, p)| {
                serde_json::json!({
                    "start_ms": (k * 10) as f64,
                    "end_ms": ((k + 1) * 10) as f64,
                    "probability": p as f64,
                })
            })
            .collect();
        Data::Json(serde_json::Value::Array(items))
    }

    fn wrap(&self, y: Vec<f32>, rate: u32) -> Data {
        Data::Audio(from_f32(y, rate, self.channels as u16, self.format))
    }
}

impl NodeDef for DenoiseNode {
    const NAME: &'static str = "DenoiseNode";
    const DESCRIPTION: &'static str = "Suppresses background noise in speech with RNNoise (a small recurrent network, in Rust).\n\
     \n\
     Any rate (resampled to 48 kHz and back inside), any channel count (each denoised on its own),\n\
     the sample format kept; output lines up with the input and has its length. A live stream lags\n\
     by 10 ms at 48 kHz (plus the resamplers' look-ahead at other rates). `attenuation_limit_db`\n\
     caps the suppression (the input mixed back in at that level); emit=\"probabilities\" gives\n\
     RNNoise's speech probability per 10 ms instead of audio.";
    const OUTPUTS: Outputs = Outputs::ByParam {
        param: "emit",
        values: &[("audio", Output::Audio), ("probabilities", Output::Frames)],
    };
    type Params = DenoiseParams;
    fn build(params: DenoiseParams) -> Self {
        Self::new(params)
    }
}

#[async_trait]
impl Node for DenoiseNode {
    async fn start(&mut self) -> Result<(), NodeError> {
        self.shape.reset();
        self.stream = None;
        Ok(())
    }

    async fn process(&mut self, input: Data) -> Result<Option<Data>, NodeError> {
        let audio = self.shape.accept(&input)?;
        check_finite(audio)?;
        if self.stream.is_none() {
            self.stream = Some(self.open(audio)?);
        }
        let dry = self.dry();
        let rate = audio.sample_rate();
        let stream = self.stream.as_mut().expect("opened");
        let x = audio.samples().to_f32_vec();
        stream.frames_in += audio.frames() as u64;
        let x48 = match &mut stream.up {
            None => x,
            Some(up) => {
                let mut v = Vec::with_capacity(x.len() * 4);
                up.push(&x, &mut v);
                v
            }
        };
        let y = stream.push48(&x48, dry, false);
        Ok(Some(match self.params.emit {
            DenoiseEmit::Audio => stream.wrap(y, rate),
            DenoiseEmit::Probabilities => stream.take_probabilities(),
        }))
    }

    async fn flush(&mut self) -> Result<Option<Data>, NodeError> {
        let dry = self.dry();
        let Some((rate, _)) = self.shape.get() else {
            return Ok(None);
        };
        let Some(mut stream) = self.stream.take() else {
            return Ok(None);
        };
        let mut x48 = Vec::new();
        if let Some(up) = &mut stream.up {
            up.flush(&mut x48);
        }
        let y = stream.push48(&x48, dry, true);
        self.shape.reset();
        Ok(Some(match self.params.emit {
            DenoiseEmit::Audio => stream.wrap(y, rate),
            DenoiseEmit::Probabilities => stream.take_probabilities(),
        }))
    }
}
