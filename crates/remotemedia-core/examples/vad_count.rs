//! One whole-input run of `SpeechVADNode` (defaults) over 20 s of 16 kHz i16 speech-like audio
//! (the `vad_profile` signal), for counting its instructions, which machine load does not blur:
//!
//! ```text
//! cargo build --release -p remotemedia-core --example vad_count
//! valgrind --tool=callgrind --callgrind-out-file=vad.cg target/release/examples/vad_count
//! callgrind_annotate --inclusive=yes vad.cg | grep -E "SpeechVadNode::analyse|predict|frame_avx2|voicing"
//! ```
//!
//! The signal's own generation is counted too; read the node's functions (1250 frames of 16 ms).

use remotemedia_core::data::{AudioBuffer, Data, Samples};
use remotemedia_core::node::Node;
use remotemedia_core::nodes::audio::{SpeechVadNode, SpeechVadParams};
fn main() {
    let secs = 20usize;
    let mut s = 0x1234_5678_9abc_def1u64;
    let mut lp = 0.0f32;
    let x: Vec<i16> = (0..16000 * secs)
        .map(|i| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let u = (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0;
            let t = i as f32 / 16000.0;
            let env = if (t % 2.5) < 1.5 {
                0.3 * (std::f32::consts::PI * 4.0 * t).sin().abs()
            } else {
                0.0
            };
            lp = 0.9 * lp + 0.1 * u;
            ((env * lp * 3.0 + 0.003 * u) * 32767.0) as i16
        })
        .collect();
    let a = AudioBuffer::new(Samples::from(x), 16_000, 1).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut node = SpeechVadNode::new(SpeechVadParams::default());
        node.start().await.unwrap();
        let o = node.process(Data::Audio(a)).await.unwrap();
        std::hint::black_box(o);
        std::hint::black_box(node.flush().await.unwrap());
    });
}
