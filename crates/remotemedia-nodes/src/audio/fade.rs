//! `FadeNode`: fade-in at the start of a stream and fade-out at its end.
//!
//! The fade-in gain of frame `i` is `curve(i / N_in)` for the first `N_in` frames (the first
//! frame is silent). The fade-out needs the end of the stream, so the node holds back the
//! last `fade_out_ms` of audio (output lags by that much) and applies it at `flush`: a frame
//! followed by `d` more frames gets `curve(d / N_out)`, so the last frame is silent. Both
//! apply where they overlap (streams shorter than the fades). Frames outside the fades pass
//! through untouched; faded frames are scaled in `f64` and converted back to the input format.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::dsp::samples::{append, from_f64, to_f64};
use remotemedia_core::data::{AudioBuffer, Data};
use remotemedia_core::error::NodeError;
use remotemedia_core::node::{Node, StreamShape};
use remotemedia_core::registry::{NodeDef, NodeParams, ParamIssue};

/// Shape of a fade, as gain over `t` in [0, 1] (0 silent, 1 full level).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FadeCurve {
    /// `t`.
    #[default]
    Linear,
    /// `sin(t * pi / 2)`: equal power, for crossfades.
    Sine,
    /// `t^2`: slow start, sounds even in loudness.
    Quadratic,
}

impl FadeCurve {
    fn gain(self, t: f64) -> f64 {
        match self {
            Self::Linear => t,
            Self::Sine => (t * std::f64::consts::FRAC_PI_2).sin(),
            Self::Quadratic => t * t,
        }
    }
}

/// Longest fade, in ms.
const MAX_FADE_MS: u32 = 600_000;

/// Parameters of `FadeNode`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FadeParams {
    /// Fade-in length, 0..=600000 ms. Default 0.
    #[serde(default)]
    #[schemars(range(max = 600000))]
    pub fade_in_ms: u32,
    /// Fade-out length, 0..=600000 ms (held back until flush). Default 0.
    #[serde(default)]
    #[schemars(range(max = 600000))]
    pub fade_out_ms: u32,
    /// "linear" (default), "sine" or "quadratic".
    #[serde(default)]
    pub curve: FadeCurve,
}

impl NodeParams for FadeParams {
    fn check(&self) -> Vec<ParamIssue> {
        let mut issues = Vec::new();
        for (field, v) in [
            ("fade_in_ms", self.fade_in_ms),
            ("fade_out_ms", self.fade_out_ms),
        ] {
            if v > MAX_FADE_MS {
                issues.push(ParamIssue::new(
                    field,
                    format!("{v} is out of range; expected an integer in 0..={MAX_FADE_MS} ms"),
                ));
            }
        }
        issues
    }
}

/// Fades a stream in and out (see module docs).
#[derive(Debug)]
pub struct FadeNode {
    params: FadeParams,
    shape: StreamShape,
    n_in: usize,
    n_out: usize,
    /// Stream index of the first frame of `held`.
    position: usize,
    held: Option<AudioBuffer>,
}

impl FadeNode {
    /// Builds the node.
    pub fn new(params: FadeParams) -> Self {
        Self {
            params,
            shape: StreamShape::default(),
            n_in: 0,
            n_out: 0,
            position: 0,
            held: None,
        }
    }

    fn reset(&mut self) {
        self.shape.reset();
        self.position = 0;
        self.held = None;
    }

    /// Applies the fade-in to `audio` starting at stream frame `position`, and the fade-out
    /// when `end` (the buffer ends the stream).
    fn apply(&self, audio: AudioBuffer, position: usize, end: bool) -> AudioBuffer {
        let frames = audio.frames();
        let fade_in = position < self.n_in;
        let fade_out = end && self.n_out > 0;
        if frames == 0 || !(fade_in || fade_out) {
            return audio;
        }
        let ch = audio.channels() as usize;
        let curve = self.params.curve;
        let mut v = to_f64(audio.samples());
        for (i, frame) in v.chunks_exact_mut(ch).enumerate() {
            let mut g = 1.0;
            let at = position + i;
            if at < self.n_in {
                g *= curve.gain(at as f64 / self.n_in as f64);
            }
            let after = frames - 1 - i;
            if fade_out && after < self.n_out {
                g *= curve.gain(after as f64 / self.n_out as f64);
            }
            if g != 1.0 {
                frame.iter_mut().for_each(|x| *x *= g);
            }
        }
        from_f64(v, &audio)
    }
}

fn frames_of(rate: u32, ms: u32) -> usize {
    ((rate as u64 * ms as u64 + 500) / 1000) as usize
}

impl NodeDef for FadeNode {
    const NAME: &'static str = "FadeNode";
    const DESCRIPTION: &'static str = "Fades in over `fade_in_ms` and out over `fade_out_ms` with `curve` \"linear\", \"sine\" or\n\
     \"quadratic\"; the fade-out holds back its length of audio and is applied at flush.";
    type Params = FadeParams;
    fn build(params: FadeParams) -> Self {
        Self::new(params)
    }
}

#[async_trait]
impl Node for FadeNode {
    async fn start(&mut self) -> Result<(), NodeError> {
        self.reset();
        Ok(())
    }

    async fn process(&mut self, input: Data) -> Result<Option<Data>, NodeError> {
        let first = self.shape.get().is_none();
        let audio = self.shape.accept(&input)?;
        if first {
            self.n_in = frames_of(audio.sample_rate(), self.params.fade_in_ms);
            self.n_out = frames_of(audio.sample_rate(), self.params.fade_out_ms);
        }
        let joined = append(self.held.take(), audio)?;
        let ready = joined.frames().saturating_sub(self.n_out);
        self.held = Some(joined.slice_frames(ready, joined.frames()));
        let position = self.position;
        self.position += ready;
        if ready == 0 {
            return Ok(None);
        }
        let out = if self.n_out == 0 {
            joined
        } else {
            joined.slice_frames(0, ready)
        };
        Ok(Some(Data::Audio(self.apply(out, position, false))))
    }

    async fn flush(&mut self) -> Result<Option<Data>, NodeError> {
        let out = self
            .held
            .take()
            .filter(|h| h.frames() > 0)
            .map(|h| Data::Audio(self.apply(h, self.position, true)));
        self.reset();
        Ok(out)
    }
}
