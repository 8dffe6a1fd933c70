//! Every native node type, built through the registry with arbitrary parameters (mostly
//! in range, sometimes anything), fed arbitrary samples in any format, at any rate and channel
//! count, in arbitrary chunks, then flushed; then the same node is restarted and fed the same
//! stream again, which must give the same outputs (`start` drops all state). Errors are fine;
//! a panic, an abort, a hang or a huge allocation is a bug.
#![no_main]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use arbitrary::{Result, Unstructured};
use futures::executor::block_on;
use libfuzzer_sys::fuzz_target;
use remotemedia_core::data::{AudioBuffer, Data, SampleFormat, Samples};
use remotemedia_core::node::Node;
use remotemedia_core::registry::{NodeInfo, NodeRegistry, ParamInfo};
use serde_json::{Map, Value};

fn registry() -> &'static NodeRegistry {
    static R: OnceLock<NodeRegistry> = OnceLock::new();
    R.get_or_init(remotemedia_nodes::builtin_registry)
}

/// Native node types (RemotePipelineNode needs a server: not fuzzed here).
fn infos() -> &'static Vec<NodeInfo> {
    static I: OnceLock<Vec<NodeInfo>> = OnceLock::new();
    I.get_or_init(|| {
        registry()
            .infos()
            .filter(|i| i.node_type != "RemotePipelineNode")
            .cloned()
            .collect()
    })
}

const RATES: [u32; 13] = [
    8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000, 88200, 96000, 176400, 192000, 384000,
];

fn number_in(u: &mut Unstructured, lo: f64, hi: f64) -> Result<f64> {
    Ok(match u.int_in_range(0u8..=5)? {
        0 => lo,
        1 => hi,
        _ => lo + (hi - lo) * (f64::from(u.arbitrary::<u16>()?) / f64::from(u16::MAX)),
    })
}

fn any_value(u: &mut Unstructured) -> Result<Value> {
    Ok(match u.int_in_range(0u8..=6)? {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary()?),
        2 => Value::from(u.arbitrary::<i64>()?),
        3 => serde_json::Number::from_f64(u.arbitrary::<f64>()?)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        4 => Value::from(u.arbitrary::<u32>()?),
        5 => Value::String(u.arbitrary::<String>()?),
        _ => Value::Object(Map::new()),
    })
}

fn param_value(u: &mut Unstructured, p: &ParamInfo) -> Result<Value> {
    if !p.choices.is_empty() {
        return Ok(Value::from(u.choose(&p.choices)?.clone()));
    }
    let kind = p.kind.split('|').next().unwrap_or("any");
    let lo = p.minimum.unwrap_or(-1e6);
    let hi = p.maximum.unwrap_or(1e6).max(lo);
    Ok(match kind {
        "integer" => Value::from(number_in(u, lo, hi)?.round() as i64),
        "number" => Value::from(number_in(u, lo, hi)?),
        "boolean" => Value::Bool(u.arbitrary()?),
        "object" => {
            // MixNode's per-input gains.
            let mut m = Map::new();
            for id in ["a", "b", "c"] {
                if u.arbitrary()? {
                    m.insert(id.into(), Value::from(number_in(u, -120.0, 60.0)?));
                }
            }
            Value::Object(m)
        }
        _ => match u.int_in_range(0u8..=2)? {
            0 => Value::from("dc_removal"),
            1 => Value::Null,
            _ => any_value(u)?,
        },
    })
}

fn params_for(u: &mut Unstructured, info: &NodeInfo) -> Result<Map<String, Value>> {
    let mut params = Map::new();
    for p in &info.params {
        match u.int_in_range(0u8..=9)? {
            0..=2 if !p.required => {}
            3 => {
                params.insert(p.name.clone(), any_value(u)?);
            }
            _ => {
                params.insert(p.name.clone(), param_value(u, p)?);
            }
        }
    }
    if u.int_in_range(0u8..=31)? == 0 {
        params.insert(u.arbitrary::<String>()?, any_value(u)?);
    }
    Ok(params)
}

fn samples(u: &mut Unstructured, format: SampleFormat, n: usize) -> Result<Samples> {
    // Mostly audio-like values (from i16), sometimes raw bit patterns (NaN, Inf, 1e38...).
    let raw = u.int_in_range(0u8..=7)? == 0;
    Ok(match format {
        SampleFormat::I16 => (0..n)
            .map(|_| u.arbitrary::<i16>())
            .collect::<Result<Vec<_>>>()?
            .into(),
        SampleFormat::I32 => (0..n)
            .map(|_| Ok(i32::from(u.arbitrary::<i16>()?) << 16))
            .collect::<Result<Vec<_>>>()?
            .into(),
        SampleFormat::F32 if raw => (0..n)
            .map(|_| u.arbitrary::<f32>())
            .collect::<Result<Vec<_>>>()?
            .into(),
        SampleFormat::F32 => (0..n)
            .map(|_| Ok(f32::from(u.arbitrary::<i16>()?) / 32768.0))
            .collect::<Result<Vec<_>>>()?
            .into(),
        SampleFormat::F64 if raw => (0..n)
            .map(|_| u.arbitrary::<f64>())
            .collect::<Result<Vec<_>>>()?
            .into(),
        SampleFormat::F64 => (0..n)
            .map(|_| Ok(f64::from(u.arbitrary::<i16>()?) / 32768.0))
            .collect::<Result<Vec<_>>>()?
            .into(),
    })
}

fn chunk(
    u: &mut Unstructured,
    format: SampleFormat,
    rate: u32,
    channels: u16,
    frames: usize,
) -> Result<Option<AudioBuffer>> {
    let s = samples(u, format, frames * channels as usize)?;
    Ok(AudioBuffer::new(s, rate, channels).ok())
}

/// Every output of a stream, rendered (Debug shows NaN as NaN, so equal streams compare equal).
fn run(node: &mut Box<dyn Node>, stream: &[Data]) -> Vec<String> {
    let mut out = Vec::new();
    block_on(async {
        if let Err(e) = node.start().await {
            out.push(format!("start error: {e}"));
            return;
        }
        for c in stream {
            match node.process(c.clone()).await {
                Ok(Some(d)) => out.push(format!("{d:?}")),
                Ok(None) => {}
                Err(e) => {
                    out.push(format!("error: {e}"));
                    node.stop().await;
                    return;
                }
            }
        }
        match node.flush().await {
            Ok(Some(d)) => out.push(format!("{d:?}")),
            Ok(None) => {}
            Err(e) => out.push(format!("flush error: {e}")),
        }
        node.stop().await;
    });
    out
}

fn one(u: &mut Unstructured) -> Result<()> {
    let info = u.choose(infos())?;
    let params = params_for(u, info)?;
    let factory = registry().get(&info.node_type).expect("registered");
    let Ok(mut node) = factory.create("fuzz", &params) else {
        return Ok(());
    };
    let fan_in = info.node_type == "MixNode";
    let upstream: Vec<String> = if fan_in {
        let n = u.int_in_range(1usize..=3)?;
        ["a", "b", "c"][..n].iter().map(|s| s.to_string()).collect()
    } else {
        vec!["in".into()]
    };
    node.connect_inputs(&upstream);

    let rate = if u.int_in_range(0u8..=15)? == 0 {
        u.arbitrary::<u32>()?
    } else {
        *u.choose(&RATES)?
    };
    let channels = match u.int_in_range(0u8..=15)? {
        0 => u.int_in_range(1u16..=64)?,
        1..=7 => 1,
        8..=12 => 2,
        _ => u.int_in_range(3u16..=8)?,
    };
    let format = *u.choose(&SampleFormat::ALL)?;
    // At most ~2 s of 8 kHz mono worth of samples per stream, so each run stays fast.
    let budget = 16_000usize / channels as usize;
    let mut used = 0usize;
    let mut stream = Vec::new();
    let n_chunks = u.int_in_range(0usize..=12)?;
    for _ in 0..n_chunks {
        let frames = match u.int_in_range(0u8..=7)? {
            0 => 0,
            1 => 1,
            _ => u.int_in_range(0usize..=4096)?,
        }
        .min(budget - used);
        used += frames;
        if fan_in {
            let mut m = BTreeMap::new();
            for id in &upstream {
                if u.arbitrary()? {
                    if let Some(a) = chunk(u, format, rate, channels, frames)? {
                        m.insert(id.clone(), Data::Audio(a));
                    }
                }
            }
            stream.push(Data::Map(m));
        } else if let Some(a) = chunk(u, format, rate, channels, frames)? {
            stream.push(Data::Audio(a));
        }
    }

    if std::env::var_os("FUZZ_DEBUG").is_some() {
        let frames: Vec<usize> = stream
            .iter()
            .map(|d| match d {
                Data::Audio(a) => a.frames(),
                Data::Map(m) => m
                    .values()
                    .filter_map(Data::as_audio)
                    .map(|a| a.frames())
                    .sum(),
                _ => 0,
            })
            .collect();
        eprintln!(
            "{} {} at {rate} Hz x{channels} {format}, chunks of {frames:?} frames",
            info.node_type,
            Value::Object(params.clone())
        );
    }
    let first = run(&mut node, &stream);
    let second = run(&mut node, &stream);
    assert_eq!(
        first, second,
        "{}: a restarted node gave other outputs for the same stream",
        info.node_type
    );
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let _ = one(&mut u);
});
