//! `SpeechVADNode`'s scores on a split made by `benchmarks/vad_data.py`, without Python (for
//! quick checks while developing; the published table comes from `benchmarks/vad_bench.py`,
//! which scores the same way):
//!
//! `cargo run --release -p remotemedia-nodes --example vad_eval -- benchmarks/vad_data/dev '{}'`
//!
//! Per file: precision, recall, F1 over 10 ms frames (speech when the frame's centre is in a
//! segment) and the false-alarm rate on non-speech frames more than 500 ms from speech; then
//! the mean F1 over the noisy files.

use std::path::Path;

use remotemedia_core::data::{AudioBuffer, Data, Samples};
use remotemedia_core::node::Node;
use remotemedia_nodes::audio::{SpeechVadNode, SpeechVadParams};

fn labels(dir: &Path) -> Vec<u8> {
    let raw = std::fs::read(dir.join("labels.npy")).expect("labels.npy");
    let header = u16::from_le_bytes([raw[8], raw[9]]) as usize;
    raw[10 + header..].to_vec()
}

fn segments(
    rt: &tokio::runtime::Runtime,
    params: &SpeechVadParams,
    x: Vec<i16>,
) -> Vec<(f64, f64)> {
    let audio = AudioBuffer::new(Samples::from(x), 16_000, 1).unwrap();
    let out = rt.block_on(async {
        let mut node = SpeechVadNode::new(params.clone());
        node.start().await.unwrap();
        let mut items = Vec::new();
        for d in [
            node.process(Data::Audio(audio)).await.unwrap(),
            node.flush().await.unwrap(),
        ]
        .into_iter()
        .flatten()
        {
            if let Data::Json(serde_json::Value::Array(a)) = d {
                items.extend(a);
            }
        }
        items
    });
    out.iter()
        .map(|s| {
            (
                s["start_ms"].as_f64().unwrap(),
                s["end_ms"].as_f64().unwrap(),
            )
        })
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = Path::new(
        args.get(1)
            .map_or("benchmarks/vad_data/dev", String::as_str),
    );
    let params: SpeechVadParams =
        serde_json::from_str(args.get(2).map_or("{}", String::as_str)).expect("params JSON");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let refs = labels(dir);
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "wav"))
        .collect();
    files.sort();
    let mut noisy = Vec::new();
    for path in files {
        let x: Vec<i16> = hound::WavReader::open(&path)
            .unwrap()
            .samples::<i16>()
            .map(Result::unwrap)
            .collect();
        let n = (x.len() / 160).min(refs.len());
        let segs = segments(&rt, &params, x);
        let mut pred = vec![0u8; n];
        for (i, p) in pred.iter_mut().enumerate() {
            let c = i as f64 * 10.0 + 5.0;
            *p = segs.iter().any(|&(a, b)| c >= a && c < b) as u8;
        }
        let (mut tp, mut fp, mut fneg) = (0.0f64, 0.0f64, 0.0f64);
        for (&p, &r) in pred.iter().zip(&refs[..n]) {
            match (p, r) {
                (1, 1) => tp += 1.0,
                (1, 0) => fp += 1.0,
                (0, 1) => fneg += 1.0,
                _ => {}
            }
        }
        let prec = tp / (tp + fp).max(1.0);
        let rec = tp / (tp + fneg).max(1.0);
        let f1 = if prec + rec > 0.0 {
            2.0 * prec * rec / (prec + rec)
        } else {
            0.0
        };
        // Non-speech frames more than 50 frames (500 ms) from any speech frame.
        let (mut far, mut fa) = (0.0f64, 0.0f64);
        for (i, &p) in pred.iter().enumerate() {
            let lo = i.saturating_sub(50);
            let hi = (i + 51).min(n);
            if !refs[lo..hi].contains(&1) {
                far += 1.0;
                fa += p as f64;
            }
        }
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        println!(
            "{name:>14}: P {prec:.3} R {rec:.3} F1 {f1:.3}  far-FA {:.2}",
            fa / far.max(1.0)
        );
        if name != "clean" {
            noisy.push(f1);
        }
    }
    println!(
        "mean noisy F1 {:.3}",
        noisy.iter().sum::<f64>() / noisy.len() as f64
    );
}
