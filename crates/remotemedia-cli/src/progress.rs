//! The progress bar of a single-file run: shown for long inputs when stderr is a terminal.

use std::io::IsTerminal;
use std::path::Path;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Inputs longer than this show a progress bar (when stderr is a terminal).
const PROGRESS_MIN_SECS: f64 = 5.0;

/// A bar for inputs announcing more than [`PROGRESS_MIN_SECS`] of audio, on a terminal.
pub(crate) fn progress_bar(input: &Path, quiet: bool) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() || input.as_os_str() == "-" {
        return ProgressBar::hidden();
    }
    let info = match remotemedia_io::open(input) {
        Ok(r) => r.info().clone(),
        Err(_) => return ProgressBar::hidden(), // the run reports the error
    };
    let (Some(frames), Some(secs)) = (info.frames, info.duration_secs()) else {
        return ProgressBar::hidden();
    };
    if secs < PROGRESS_MIN_SECS {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(frames), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {percent:>3}% of {msg} (eta {eta})",
        )
        .expect("valid template"),
    );
    bar.set_message(format!("{secs:.1} s"));
    bar
}
