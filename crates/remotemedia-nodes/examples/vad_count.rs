//! One whole-input run of `SpeechVADNode` with the light engine (`engine="earshot"`) over 20 s of 16 kHz i16 speech-like audio
//! (the `vad_profile` signal), for counting its instructions, which machine load does not blur:
//!
//! ```text
//! cargo build --release -p remotemedia-nodes --example vad_count
//! valgrind --tool=callgrind --callgrind-out-file=vad.cg target/release/examples/vad_count
//! callgrind_annotate --inclusive=yes vad.cg | grep -E "SpeechVadNode::analyse|predict|frame_avx2|voicing"
//! ```
//!
//! The signal's own generation is counted too; read the node's functions (1250 frames of 16 ms).

use remotemedia_core::data::{AudioBuffer, Data, Samples};
use remotemedia_core::node::Node;
use remotemedia_nodes::audio::{SpeechVadEngine, SpeechVadNode, SpeechVadParams};

#[path = "common/speechlike.rs"]
mod speechlike;

fn main() {
    let x: Vec<i16> = speechlike::signal(20, 16_000, 1)
        .iter()
        .map(|&v| (v * 32767.0) as i16)
        .collect();
    let a = AudioBuffer::new(Samples::from(x), 16_000, 1).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut node = SpeechVadNode::new(SpeechVadParams {
            engine: SpeechVadEngine::Earshot,
            ..SpeechVadParams::default()
        });
        node.start().await.unwrap();
        std::hint::black_box(node.process(Data::Audio(a)).await.unwrap());
        std::hint::black_box(node.flush().await.unwrap());
    });
}
