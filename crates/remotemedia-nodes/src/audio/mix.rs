//! `MixNode`: sums its inputs (fan-in), each scaled by its gain in dB.
//!
//! Inputs are aligned by stream position: each upstream's audio is buffered, and a step emits
//! the frames every input has reached; at `flush` the rest is emitted with shorter inputs
//! padded with silence. So output length is the longest input's, and the result does not
//! depend on how the upstreams chunk their output. The sum is taken in `f64`, inputs added in
//! the order of their ids, then converted once to the output format (the format of the first
//! input by id): integer outputs saturate instead of wrapping. Inputs must share sample rate
//! and channel count (put an `AudioResampleNode` / `ChannelMixNode` in front otherwise).

use std::collections::BTreeMap;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::dsp::samples::{db_to_gain, to_f64};
use remotemedia_core::data::{AudioBuffer, Data, SampleFormat, Samples};
use remotemedia_core::error::{InputError, NodeError};
use remotemedia_core::node::{check_input_rate, Node};
use remotemedia_core::registry::{NodeDef, NodeParams, ParamIssue};

/// Parameters of `MixNode`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MixParams {
    /// Gain per input in dB (-120.0..=60.0), keyed by upstream node id; inputs not named
    /// get 0 dB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gains: Option<BTreeMap<String, f64>>,
}

impl MixParams {
    fn params_gains(&self) -> impl Iterator<Item = (&String, &f64)> {
        self.gains.iter().flatten()
    }
}

impl NodeParams for MixParams {
    fn check(&self) -> Vec<ParamIssue> {
        let mut issues = Vec::new();
        for (id, &db) in self.params_gains() {
            if !db.is_finite() || !(-120.0..=60.0).contains(&db) {
                issues.push(ParamIssue::new(
                    format!("gains.{id}"),
                    format!("{db} is out of range; expected a finite gain in -120.0..=60.0 dB"),
                ));
            }
        }
        issues
    }
}

#[derive(Debug)]
struct Input {
    gain: f64,
    format: Option<SampleFormat>,
    /// Gain-scaled interleaved samples not yet emitted.
    pending: Vec<f64>,
}

/// Sums its inputs (see module docs).
#[derive(Debug)]
pub struct MixNode {
    params: MixParams,
    upstream: Vec<String>,
    inputs: BTreeMap<String, Input>,
    shape: Option<(u32, u16, String)>,
}

impl MixNode {
    /// Builds the node.
    pub fn new(params: MixParams) -> Self {
        Self {
            params,
            upstream: Vec::new(),
            inputs: BTreeMap::new(),
            shape: None,
        }
    }

    fn reset(&mut self) -> Result<(), NodeError> {
        self.shape = None;
        self.inputs.clear();
        for id in &self.upstream {
            self.inputs.insert(id.clone(), self.input(id));
        }
        if !self.upstream.is_empty() {
            if let Some((bad, _)) = self
                .params
                .params_gains()
                .find(|(k, _)| !self.inputs.contains_key(*k))
            {
                return Err(NodeError::invalid_input(format!(
                    "params.gains names '{bad}', which is not an input of this node; its inputs are: {}",
                    self.upstream.join(", ")
                )));
            }
        }
        Ok(())
    }

    fn input(&self, id: &str) -> Input {
        Input {
            gain: db_to_gain(
                self.params
                    .gains
                    .as_ref()
                    .and_then(|g| g.get(id))
                    .copied()
                    .unwrap_or(0.0),
            ),
            format: None,
            pending: Vec::new(),
        }
    }

    fn add(&mut self, id: &str, data: &Data) -> Result<(), NodeError> {
        let Data::Audio(audio) = data else {
            return Err(NodeError::invalid_input(format!(
                "input '{id}' sent {}; MixNode mixes audio only",
                data.describe()
            )));
        };
        check_input_rate(audio.sample_rate())?;
        match &self.shape {
            Some((rate, ch, first)) if (*rate, *ch) != (audio.sample_rate(), audio.channels()) => {
                return Err(NodeError::invalid_input(format!(
                    "input '{id}' is {} Hz, {} ch but input '{first}' is {rate} Hz, {ch} ch; \
                     inputs must share rate and channel count (resample or channel-mix first)",
                    audio.sample_rate(),
                    audio.channels()
                )));
            }
            Some(_) => {}
            None => {
                self.shape = Some((audio.sample_rate(), audio.channels(), id.to_string()));
            }
        }
        if !self.inputs.contains_key(id) {
            if !self.upstream.is_empty() {
                return Err(NodeError::invalid_input(format!(
                    "got input '{id}', which is not connected; inputs are: {}",
                    self.upstream.join(", ")
                )));
            }
            // Standalone (no graph): inputs are whatever ids arrive.
            let input = self.input(id);
            self.inputs.insert(id.to_string(), input);
        }
        let input = self.inputs.get_mut(id).expect("inserted above");
        input.format.get_or_insert(audio.format());
        let g = input.gain;
        input
            .pending
            .extend(to_f64(audio.samples()).into_iter().map(|x| x * g));
        Ok(())
    }

    /// Sums and removes the first `frames` frames of every input, zero-padding short ones.
    fn emit(&mut self, frames: usize) -> Option<Data> {
        let (rate, ch, _) = self.shape.clone()?;
        let n = frames * ch as usize;
        let format = self.inputs.values().find_map(|i| i.format)?;
        let mut out = vec![0.0f64; n];
        for input in self.inputs.values_mut() {
            let take = n.min(input.pending.len());
            for (o, x) in out.iter_mut().zip(input.pending.drain(..take)) {
                *o += x;
            }
        }
        let samples = Samples::F64(out.into()).to_format(format);
        Some(Data::Audio(
            AudioBuffer::new(samples, rate, ch).expect("shape of valid inputs"),
        ))
    }

    fn frames(&self, f: impl Fn(usize, usize) -> usize, init: usize) -> usize {
        let ch = self.shape.as_ref().map_or(1, |s| s.1 as usize);
        self.inputs
            .values()
            .map(|i| i.pending.len() / ch)
            .fold(init, f)
    }
}

impl NodeDef for MixNode {
    const NAME: &'static str = "MixNode";
    const DESCRIPTION: &'static str =
        "Sums its inputs (connect several nodes to it), aligned by stream position, each scaled\n\
     by `gains` (dB per upstream node id, default 0).\n\
     \n\
     Shorter inputs are padded with silence at flush; integer outputs saturate. Inputs must share\n\
     rate and channel count.";
    type Params = MixParams;
    fn build(params: MixParams) -> Self {
        Self::new(params)
    }
}

#[async_trait]
impl Node for MixNode {
    fn connect_inputs(&mut self, upstream: &[String]) {
        let mut ids = upstream.to_vec();
        ids.sort();
        self.upstream = ids;
    }

    async fn start(&mut self) -> Result<(), NodeError> {
        self.reset()
    }

    async fn process(&mut self, input: Data) -> Result<Option<Data>, NodeError> {
        if self.shape.is_none() && self.inputs.values().all(|i| i.pending.is_empty()) {
            // First chunk of a stream (also when used without start()).
            self.reset()?;
        }
        match &input {
            Data::Map(m) => {
                for (id, data) in m {
                    self.add(id, data)?;
                }
            }
            Data::Audio(_) => {
                let id = self.upstream.first().cloned().unwrap_or_default();
                self.add(&id, &input)?;
            }
            other => {
                return Err(InputError::NotAudio {
                    got: other.describe(),
                }
                .into())
            }
        }
        let ready = if self.inputs.is_empty() {
            0
        } else {
            self.frames(usize::min, usize::MAX)
        };
        Ok(if ready > 0 { self.emit(ready) } else { None })
    }

    async fn flush(&mut self) -> Result<Option<Data>, NodeError> {
        let rest = self.frames(usize::max, 0);
        let out = if rest > 0 { self.emit(rest) } else { None };
        self.reset()?;
        Ok(out)
    }
}
