//! Test tones and their analysis, shared by the resampler examples. Levels are in dB relative
//! to the input tone (amplitude 0.5), over the middle half of a signal (away from the edges).

/// A sine at `freq` Hz, amplitude 0.5, `secs` long at `rate` Hz.
pub fn tone(freq: f64, rate: u32, secs: f64) -> Vec<f32> {
    let n = (secs * rate as f64) as usize;
    (0..n)
        .map(|i| (0.5 * (2.0 * std::f64::consts::PI * freq * i as f64 / rate as f64).sin()) as f32)
        .collect()
}

pub fn rms(x: &[f64]) -> f64 {
    (x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64).sqrt()
}

/// Level in dB (relative to the input RMS) of the tone at `freq` in `y` and of the residual
/// once that tone is removed.
pub fn analyse(y: &[f32], rate: u32, freq: f64) -> (f64, f64) {
    let a = y.len() / 4;
    let mid: Vec<f64> = y[a..y.len() - a].iter().map(|&v| v as f64).collect();
    let w = 2.0 * std::f64::consts::PI * freq / rate as f64;
    let (mut ss, mut sc, mut cc, mut xs, mut xc) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for (i, &v) in mid.iter().enumerate() {
        let (s, c) = (w * (i + a) as f64).sin_cos();
        ss += s * s;
        sc += s * c;
        cc += c * c;
        xs += v * s;
        xc += v * c;
    }
    let det = ss * cc - sc * sc;
    let (bs, bc) = ((xs * cc - xc * sc) / det, (xc * ss - xs * sc) / det);
    let resid: Vec<f64> = mid
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let p = w * (i + a) as f64;
            v - bs * p.sin() - bc * p.cos()
        })
        .collect();
    let input_rms = 0.5 / 2f64.sqrt();
    let tone_rms = (bs * bs + bc * bc).sqrt() / 2f64.sqrt();
    (
        20.0 * (tone_rms / input_rms).log10(),
        20.0 * (rms(&resid).max(1e-300) / input_rms).log10(),
    )
}

/// Level of everything in the middle half of `y` (for tones that must vanish).
pub fn total_level(y: &[f32]) -> f64 {
    let a = y.len() / 4;
    let mid: Vec<f64> = y[a..y.len() - a].iter().map(|&v| v as f64).collect();
    20.0 * (rms(&mid).max(1e-300) / (0.5 / 2f64.sqrt())).log10()
}
