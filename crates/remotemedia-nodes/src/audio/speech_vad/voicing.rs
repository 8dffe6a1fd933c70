//! Voicing: the periodicity of the 150-1000 Hz band at 4 kHz, the peak of its normalised
//! autocorrelation at the lags of voice fundamentals (80-400 Hz), with its AVX2 build.

/// Correlation window: 20 ms at 4 kHz.
const VOICE_WINDOW: usize = 80;
/// Lags of 2.5..=12.5 ms at 4 kHz (voice fundamentals of 80-400 Hz).
const VOICE_MIN_LAG: usize = 10;
const VOICE_MAX_LAG: usize = 50;
/// Decimated samples kept: a window and the longest lag.
pub(super) const VOICE_HISTORY: usize = VOICE_WINDOW + VOICE_MAX_LAG;

/// Voicing of the latest window: the largest normalised autocorrelation of the last
/// [`VOICE_WINDOW`] samples of `hist` with the samples `VOICE_MIN_LAG..=VOICE_MAX_LAG` earlier
/// (0 for silence; at most 1).
pub(super) fn voicing(hist: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if remotemedia_core::cpu::has_avx2() {
        // SAFETY: the CPU has AVX2 (checked at run time).
        return unsafe { voicing_avx2(hist) };
    }
    voicing_any(hist)
}

/// [`voicing`] compiled for AVX2: the correlation's multiply-adds twice as wide, the same
/// operations in the same order (no fused multiply-add), so the same bits.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn voicing_avx2(hist: &[f32]) -> f32 {
    voicing_any(hist)
}

#[inline(always)]
fn voicing_any(hist: &[f32]) -> f32 {
    const LAGS: usize = VOICE_MAX_LAG - VOICE_MIN_LAG + 1;
    debug_assert_eq!(hist.len(), VOICE_HISTORY);
    let n = hist.len();
    let a = &hist[n - VOICE_WINDOW..];
    // Every lag at once: `c[k]` is the correlation at lag `VOICE_MAX_LAG - k`, so for each
    // window sample the lagged samples are contiguous and the update is a plain (vectorised)
    // multiply-add over the lags, with no per-lag reduction.
    let base = n - VOICE_WINDOW - VOICE_MAX_LAG;
    let mut c = [0.0f32; LAGS];
    for (i, &ai) in a.iter().enumerate() {
        let lagged = &hist[base + i..base + i + LAGS];
        for (ck, &h) in c.iter_mut().zip(lagged) {
            *ck += ai * h;
        }
    }
    // Energies of every lagged window from one running sum of squares (f64: no cancellation).
    // The running sum in a local: read back from the array, each add also waited for a
    // store to be forwarded.
    let mut prefix = [0.0f64; VOICE_HISTORY + 1];
    let mut run = 0.0f64;
    for (p, &v) in prefix[1..].iter_mut().zip(hist) {
        run += (v as f64) * (v as f64);
        *p = run;
    }
    let ea = prefix[n] - prefix[n - VOICE_WINDOW];
    // Lag `VOICE_MAX_LAG - k` (at `c[k]`) compares with the window ending `lag` samples
    // earlier: the prefix sums ending at `n - lag` and starting `VOICE_WINDOW` before, both
    // contiguous in k, so the square roots and divisions run four at a time (correctly
    // rounded either way: the same bits as one at a time).
    let ends = &prefix[n - VOICE_MAX_LAG..=n - VOICE_MIN_LAG];
    let starts = &prefix[n - VOICE_WINDOW - VOICE_MAX_LAG..=n - VOICE_WINDOW - VOICE_MIN_LAG];
    let mut r = [0.0f32; LAGS];
    for (((r, &ck), &end), &start) in r.iter_mut().zip(&c).zip(ends).zip(starts) {
        *r = (ck as f64 / (ea * (end - start) + 1e-20).sqrt()) as f32;
    }
    r.into_iter()
        .filter(|r| r.is_finite())
        .fold(0.0f32, f32::max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::rng::XorShift;

    #[test]
    fn voicing_builds_agree_and_find_the_period() {
        let mut rng = XorShift(11);
        // A 200 Hz pulse train at 4 kHz (period 20 samples) in a little noise.
        let hist: Vec<f32> = (0..VOICE_HISTORY)
            .map(|i| if i % 20 == 0 { 1.0 } else { 0.0 } + 0.01 * rng.next())
            .collect();
        let v = voicing(&hist);
        assert_eq!(v.to_bits(), voicing_any(&hist).to_bits());
        assert!(v > 0.9, "{v}");
        let noise: Vec<f32> = (0..VOICE_HISTORY).map(|_| rng.next()).collect();
        assert!(voicing(&noise) < 0.5);
        assert_eq!(voicing(&[0.0; VOICE_HISTORY]), 0.0);
    }

    /// The definition, lag by lag: the same sums in the same order as `voicing`.
    fn voicing_lag_by_lag(hist: &[f32]) -> f32 {
        let n = hist.len();
        // Energy of the window ending at `end`, as voicing sums it: squares summed from the
        // start of `hist`, the sum before the window subtracted.
        let sum = |m: usize| {
            hist[..m]
                .iter()
                .fold(0.0f64, |s, &v| s + v as f64 * v as f64)
        };
        let energy = |end: usize| sum(end) - sum(end - VOICE_WINDOW);
        let a = &hist[n - VOICE_WINDOW..];
        let ea = energy(n);
        let mut best = 0.0f32;
        for lag in (VOICE_MIN_LAG..=VOICE_MAX_LAG).rev() {
            let b = &hist[n - VOICE_WINDOW - lag..n - lag];
            let c = a.iter().zip(b).fold(0.0f32, |s, (&x, &y)| s + x * y);
            let r = (c as f64 / (ea * energy(n - lag) + 1e-20).sqrt()) as f32;
            if r.is_finite() {
                best = best.max(r);
            }
        }
        best
    }

    #[test]
    fn voicing_is_its_definition_to_the_bit() {
        let mut rng = XorShift(3);
        for round in 0..300 {
            let period = 10 + round % 45;
            let hist: Vec<f32> = (0..VOICE_HISTORY)
                .map(|i| {
                    let pulse = if i % period == 0 { 0.5 } else { 0.0 };
                    (pulse + 0.05 * (round % 7) as f32 * rng.next()) * (1.0 + round as f32)
                })
                .collect();
            assert_eq!(
                voicing(&hist).to_bits(),
                voicing_lag_by_lag(&hist).to_bits(),
                "round {round}"
            );
        }
    }
}
