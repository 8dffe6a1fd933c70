//! `EchoCancelNode`: acoustic echo cancellation with WebRTC's AEC3, through `sonora` (a pure-Rust
//! port of WebRTC's audio processing module: no C++ toolchain, builds from `pip install .`).
//! Why not `webrtc-audio-processing`: it builds WebRTC's C++ with meson/ninja, which a fresh
//! machine with only a Rust toolchain and Python does not have.
//!
//! Two inputs, named in the parameters by upstream node id (as `MixNode` names its inputs):
//! `mic`, the microphone, and `far`, the far-end reference (what the speaker played). They are
//! aligned by stream position: the node processes 10 ms frames once both inputs have reached
//! them (a client sends silence on the reference while nothing plays, as WebRTC's render
//! stream expects); at the end, a reference that stopped early counts as silence. AEC3 finds
//! the echo path's delay itself (0 to about 500 ms) and follows its drift; double talk (the
//! near end speaking while the far end plays) is kept by its suppressor. The output is the
//! microphone with the echo removed, in the microphone's rate, channels and format, one frame of
//! 10 ms at a time, with the microphone's length.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::dsp::samples::from_f32;
use remotemedia_core::data::{Data, SampleFormat};
use remotemedia_core::error::{InputError, NodeError};
use remotemedia_core::node::{check_finite, check_input_rate, Node};
use remotemedia_core::registry::{NodeDef, NodeParams, ParamIssue};

/// Parameters of `EchoCancelNode`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EchoCancelParams {
    /// The upstream node id of the microphone input.
    pub mic: String,
    /// The upstream node id of the far-end reference (what the speaker played).
    pub far: String,
}

impl NodeParams for EchoCancelParams {
    fn check(&self) -> Vec<ParamIssue> {
        let mut issues = Vec::new();
        for (field, v) in [("mic", &self.mic), ("far", &self.far)] {
            if v.is_empty() {
                issues.push(ParamIssue::new(
                    field,
                    "missing: name the upstream node id of this input",
                ));
            }
        }
        if !self.mic.is_empty() && self.mic == self.far {
            issues.push(ParamIssue::new(
                "far",
                format!(
                    "'{}' is also `mic`; the reference is another input",
                    self.far
                ),
            ));
        }
        issues
    }
}

/// One input's shape and pending samples (interleaved f32).
#[derive(Default)]
struct Side {
    shape: Option<(u32, u16)>,
    pending: Vec<f32>,
}

/// Removes the echo of `far` from `mic` (see module docs).
pub struct EchoCancelNode {
    params: EchoCancelParams,
    upstream: Vec<String>,
    mic: Side,
    far: Side,
    mic_format: Option<SampleFormat>,
    apm: Option<sonora::AudioProcessing>,
    planes_in: Vec<Vec<f32>>,
    planes_out: Vec<Vec<f32>>,
}

impl std::fmt::Debug for EchoCancelNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EchoCancelNode")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

impl EchoCancelNode {
    /// Builds the node.
    pub fn new(params: EchoCancelParams) -> Self {
        Self {
            params,
            upstream: Vec::new(),
            mic: Side::default(),
            far: Side::default(),
            mic_format: None,
            apm: None,
            planes_in: Vec::new(),
            planes_out: Vec::new(),
        }
    }

    fn reset(&mut self) {
        self.mic = Side::default();
        self.far = Side::default();
        self.mic_format = None;
        self.apm = None;
    }

    fn add(&mut self, id: &str, data: &Data) -> Result<(), NodeError> {
        let Data::Audio(audio) = data else {
            return Err(InputError::NotAudio {
                got: data.describe(),
            }
            .into());
        };
        check_input_rate(audio.sample_rate())?;
        check_finite(audio)?;
        let is_mic = id == self.params.mic;
        if !is_mic && id != self.params.far {
            return Err(NodeError::invalid_input(format!(
                "got input '{id}', which is neither `mic` ('{}') nor `far` ('{}')",
                self.params.mic, self.params.far
            )));
        }
        let shape = (audio.sample_rate(), audio.channels());
        let side = if is_mic { &mut self.mic } else { &mut self.far };
        match side.shape {
            Some(s) if s != shape => {
                return Err(NodeError::invalid_input(format!(
                    "input '{id}' changed from {} Hz x{} to {} Hz x{} mid-stream",
                    s.0, s.1, shape.0, shape.1
                )))
            }
            _ => side.shape = Some(shape),
        }
        side.pending
            .extend_from_slice(&audio.samples().to_f32_vec());
        if is_mic {
            self.mic_format.get_or_insert(audio.format());
        }
        if let (Some(m), Some(f)) = (self.mic.shape, self.far.shape) {
            if m.0 != f.0 {
                return Err(NodeError::invalid_input(format!(
                    "the microphone is {} Hz but the reference is {} Hz; they must share a rate \
                     (put an AudioResampleNode in front of one)",
                    m.0, f.0
                )));
            }
        }
        Ok(())
    }

    /// Cancels the echo in every whole 10 ms frame both inputs have reached (at the end: every
    /// microphone frame, the reference padded with silence).
    fn run(&mut self, end: bool) -> Result<Option<Data>, NodeError> {
        let Some((rate, mic_ch)) = self.mic.shape else {
            return Ok(None);
        };
        let far_ch = self.far.shape.map_or(1, |s| s.1);
        let frame = rate as usize / 100;
        let (mc, fc) = (mic_ch as usize, far_ch as usize);
        let mic_frames = self.mic.pending.len() / mc;
        let far_frames = self.far.pending.len() / fc;
        let whole = if end {
            mic_frames.div_ceil(frame)
        } else {
            mic_frames.min(far_frames) / frame
        };
        if whole == 0 {
            return Ok(None);
        }
        if self.apm.is_none() {
            use sonora::config::EchoCanceller;
            let config = sonora::Config {
                echo_canceller: Some(EchoCanceller::default()),
                ..Default::default()
            };
            self.apm = Some(
                sonora::AudioProcessing::builder()
                    .config(config)
                    .capture_config(sonora::StreamConfig::new(rate, mic_ch))
                    .render_config(sonora::StreamConfig::new(rate, far_ch))
                    .build(),
            );
        }
        let apm = self.apm.as_mut().expect("built above");
        let keep = mic_frames; // the microphone's length
        let mut out = Vec::with_capacity(whole * frame * mc);
        for k in 0..whole {
            // The reference frame (silence past its end).
            planes(&self.far.pending, fc, k * frame, frame, &mut self.planes_in);
            let src: Vec<&[f32]> = self.planes_in.iter().map(Vec::as_slice).collect();
            ensure(&mut self.planes_out, fc, frame);
            let mut dst: Vec<&mut [f32]> =
                self.planes_out.iter_mut().map(Vec::as_mut_slice).collect();
            apm.process_render_f32(&src, &mut dst)
                .map_err(|e| NodeError::failed(format!("AEC3 refused the reference: {e:?}")))?;
            planes(&self.mic.pending, mc, k * frame, frame, &mut self.planes_in);
            let src: Vec<&[f32]> = self.planes_in.iter().map(Vec::as_slice).collect();
            ensure(&mut self.planes_out, mc, frame);
            let mut dst: Vec<&mut [f32]> =
                self.planes_out.iter_mut().map(Vec::as_mut_slice).collect();
            apm.process_capture_f32(&src, &mut dst)
                .map_err(|e| NodeError::failed(format!("AEC3 refused the microphone: {e:?}")))?;
            let n = frame.min(keep.saturating_sub(k * frame));
            for i in 0..n {
                out.extend(self.planes_out[..mc].iter().map(|p| p[i]));
            }
        }
        let used = (whole * frame).min(mic_frames);
        self.mic.pending.drain(..used * mc);
        let far_used = (whole * frame).min(far_frames);
        self.far.pending.drain(..far_used * fc);
        let format = self.mic_format.unwrap_or(SampleFormat::F32);
        Ok(Some(Data::Audio(from_f32(out, rate, mic_ch, format))))
    }
}

/// Channel planes of `frame` frames from interleaved `v` starting at frame `at`, zero past
/// its end.
fn planes(v: &[f32], ch: usize, at: usize, frame: usize, out: &mut Vec<Vec<f32>>) {
    ensure(out, ch, frame);
    let frames = v.len() / ch;
    for (c, plane) in out.iter_mut().enumerate().take(ch) {
        for (i, x) in plane.iter_mut().enumerate() {
            let f = at + i;
            *x = if f < frames { v[f * ch + c] } else { 0.0 };
        }
    }
}

fn ensure(planes: &mut Vec<Vec<f32>>, ch: usize, frame: usize) {
    planes.resize_with(ch.max(planes.len()), Vec::new);
    planes.truncate(ch);
    for p in planes.iter_mut() {
        p.resize(frame, 0.0);
    }
}

impl NodeDef for EchoCancelNode {
    const NAME: &'static str = "EchoCancelNode";
    const DESCRIPTION: &'static str = "Removes the echo of the far-end reference (`far`: what the speaker played) from the microphone (`mic`), with WebRTC's AEC3.\n\
     \n\
     Two inputs named by upstream node id; aligned by stream position (send silence on the\n\
     reference while nothing plays). AEC3 finds the echo delay (0-500 ms) and its drift and keeps\n\
     near-end speech in double talk. Output: the microphone's rate, channels, format and length.";
    const EXAMPLE: Option<&'static str> =
        Some("remotemedia run examples/voice_frontend.json -i mic=mic.wav -i far=far.wav -o out/");
    type Params = EchoCancelParams;
    fn build(params: EchoCancelParams) -> Self {
        Self::new(params)
    }
}

#[async_trait]
impl Node for EchoCancelNode {
    fn connect_inputs(&mut self, upstream: &[String]) {
        self.upstream = upstream.to_vec();
    }

    async fn start(&mut self) -> Result<(), NodeError> {
        self.reset();
        if !self.upstream.is_empty() {
            for (field, id) in [("mic", &self.params.mic), ("far", &self.params.far)] {
                if !self.upstream.contains(id) {
                    return Err(NodeError::invalid_input(format!(
                        "params.{field} names '{id}', which is not connected to this node; its \
                         inputs are: {} (connect the {} to it)",
                        self.upstream.join(", "),
                        if field == "mic" {
                            "microphone"
                        } else {
                            "far-end reference"
                        }
                    )));
                }
            }
        }
        Ok(())
    }

    async fn process(&mut self, input: Data) -> Result<Option<Data>, NodeError> {
        match &input {
            Data::Map(m) => {
                for (id, data) in m {
                    self.add(id, data)?;
                }
            }
            other => {
                return Err(NodeError::invalid_input(format!(
                    "EchoCancelNode takes two inputs, `mic` ('{}') and `far` ('{}'), connected \
                     from those nodes; got one {} value",
                    self.params.mic,
                    self.params.far,
                    other.describe()
                )))
            }
        }
        self.run(false)
    }

    async fn flush(&mut self) -> Result<Option<Data>, NodeError> {
        let out = self.run(true);
        self.reset();
        out
    }
}
