//! `remotemedia`: run, validate and inspect audio pipelines (native nodes).

use std::process::ExitCode;

fn main() -> ExitCode {
    // Panics inside nodes are contained by the executor and reported as errors naming the
    // node; the default hook would also print a raw panic trace. Keep it for debugging only.
    if std::env::var_os("REMOTEMEDIA_DEBUG_PANICS").is_none() {
        std::panic::set_hook(Box::new(|_| {}));
    }
    remotemedia_cli::main_with(std::env::args_os().collect(), &remotemedia_cli::NativeHost)
}
