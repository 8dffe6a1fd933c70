//! Writes the bundled Silero weights (`models/silero-vad/silero_vad_v6_16k.onnx`) from a
//! silero-vad package's model file, and prints the SHA-256 to put in `BUNDLED_SHA256`:
//!
//! ```text
//! pip install --no-deps "silero-vad==6.2.3"
//! cargo run -p remotemedia-nodes --example bundle_silero -- \
//!     "$(python -c 'import silero_vad, os; print(os.path.dirname(silero_vad.__file__))')/data/silero_vad_op18_ifless.onnx"
//! ```

use std::path::Path;

use remotemedia_nodes::audio::{bundle_silero_model as bundle_model, sha256_hex};

fn main() -> Result<(), String> {
    let src = std::env::args()
        .nth(1)
        .ok_or("usage: bundle_silero PATH/TO/silero_vad_op18_ifless.onnx")?;
    let bytes = std::fs::read(&src).map_err(|e| format!("{src}: {e}"))?;
    let bundled = bundle_model(&bytes)?;
    let out =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("models/silero-vad/silero_vad_v6_16k.onnx");
    std::fs::write(&out, &bundled).map_err(|e| format!("{}: {e}", out.display()))?;
    println!(
        "source {src}: {} bytes, SHA-256 {}",
        bytes.len(),
        sha256_hex(&bytes)
    );
    println!("wrote {}: {} bytes", out.display(), bundled.len());
    println!("BUNDLED_SHA256 = \"{}\"", sha256_hex(&bundled));
    Ok(())
}
