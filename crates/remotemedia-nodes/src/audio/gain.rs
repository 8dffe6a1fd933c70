//! `GainNode`: a fixed gain (`db` or `linear`) or peak normalisation (`peak_db`).
//!
//! A fixed gain is applied chunk by chunk with no latency. Peak normalisation needs the
//! loudest sample of the whole stream, so in that mode the node holds the stream back and
//! emits it, scaled, at `flush` (use `db` for live audio). What it holds counts against the
//! executor's `max_call_bytes` (three times the stream: held, joined, scaled), so a longer
//! stream is refused with an error naming the node and the limit, not an out-of-memory abort.
//! Samples are scaled in `f64` and converted back to the input format once: integer outputs
//! round half to even and saturate, never wrap. Digital silence is left unchanged by
//! `peak_db` (there is no peak to scale).

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::dsp::samples::{db_to_gain, peak, scale, Held};
use remotemedia_core::data::Data;
use remotemedia_core::error::NodeError;
use remotemedia_core::node::{data_bytes, data_samples, Node, StreamShape};
use remotemedia_core::registry::{NodeDef, NodeParams, ParamIssue};

/// Parameters of `GainNode`: exactly one of `db`, `linear`, `peak_db`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GainParams {
    /// Gain in dB, -120.0..=60.0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = -120.0, max = 60.0), extend("x-unit" = "dB"))]
    pub db: Option<f64>,
    /// Gain as a factor, 0.0..=1000.0 (negative factors are not gains; use a filter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 1000.0))]
    pub linear: Option<f64>,
    /// Scale so the stream's highest absolute sample is at this level, -120.0..=0.0 dBFS.
    /// Holds the stream until flush.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = -120.0, max = 0.0), extend("x-unit" = "dBFS"))]
    pub peak_db: Option<f64>,
}

impl NodeParams for GainParams {
    fn check(&self) -> Vec<ParamIssue> {
        let mut issues = Vec::new();
        let given: Vec<&str> = [
            ("db", self.db.is_some()),
            ("linear", self.linear.is_some()),
            ("peak_db", self.peak_db.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect();
        match given[..] {
            [_] => {}
            [] => issues.push(ParamIssue::new(
                "db",
                "missing: give exactly one of db, linear, peak_db; e.g. {\"db\": -6.0}",
            )),
            [..] => issues.push(ParamIssue::new(
                given.join("/"),
                format!(
                    "{} given; give exactly one of db, linear, peak_db (they are three ways to \
                     say one gain)",
                    match given[..] {
                        [a, b] => format!("{a} and {b} were both"),
                        _ => "db, linear and peak_db were all".to_string(),
                    }
                ),
            )),
        }
        // Ranges come from the schema attributes (checked generically by the registry).
        issues
    }
}

/// Applies a gain (see module docs).
#[derive(Debug)]
pub struct GainNode {
    params: GainParams,
    shape: StreamShape,
    held: Held,
}

impl GainNode {
    /// Builds the node.
    pub fn new(params: GainParams) -> Self {
        Self {
            params,
            shape: StreamShape::default(),
            held: Held::default(),
        }
    }
}

impl NodeDef for GainNode {
    const NAME: &'static str = "GainNode";
    const DESCRIPTION: &'static str =
        "Applies a gain: exactly one of `db`, `linear` or `peak_db`.\n\
     \n\
     `peak_db` scales the stream so its highest absolute sample is at that level; it needs the\n\
     whole stream, so the audio is emitted at flush. Computed in f64; integer outputs round and\n\
     saturate.";
    type Params = GainParams;
    fn build(params: GainParams) -> Self {
        Self::new(params)
    }
}

#[async_trait]
impl Node for GainNode {
    async fn start(&mut self) -> Result<(), NodeError> {
        self.shape.reset();
        self.held = Held::default();
        Ok(())
    }

    async fn process(&mut self, input: Data) -> Result<Option<Data>, NodeError> {
        let audio = self.shape.accept(&input)?;
        if self.params.peak_db.is_some() {
            self.held.push(audio)?;
            return Ok(None);
        }
        let gain = match (self.params.db, self.params.linear) {
            (Some(db), _) => db_to_gain(db),
            (None, Some(g)) => g,
            (None, None) => 1.0,
        };
        Ok(Some(Data::Audio(scale(audio, gain))))
    }

    fn output_bytes(&self, input: &Data) -> u64 {
        match self.params.peak_db {
            Some(_) => self.held.claim(input),
            None => data_bytes(input).saturating_add(data_samples(input).saturating_mul(8)),
        }
    }

    fn holding_advice(&self) -> Option<String> {
        self.params.peak_db.map(|_| {
            "GainNode with peak_db holds the whole stream until its end (the peak is only \
             known then), and the stream held so far is counted against this limit; for \
             longer streams use a fixed gain (db or linear) or raise the limit"
                .to_string()
        })
    }

    async fn flush(&mut self) -> Result<Option<Data>, NodeError> {
        self.shape.reset();
        let (Some(target), Some(held)) = (self.params.peak_db, self.held.take()) else {
            return Ok(None);
        };
        let p = peak(held.samples());
        if p == 0.0 || !p.is_finite() {
            return Ok(Some(Data::Audio(held)));
        }
        Ok(Some(Data::Audio(scale(&held, db_to_gain(target) / p))))
    }
}
