//! The analysis' input: input frames averaged to mono f32, with non-finite samples read as 0
//! and the rest bounded (the emitted audio stays the input, untouched).

use std::ops::Range;

use remotemedia_core::data::Samples;

/// Largest magnitude a sample is analysed at: far beyond full scale (1.0), so no real audio
/// is changed, yet small enough that channel sums and the FFT resampler's sums stay finite.
/// (Found by fuzzing: 1e30 at 48 kHz overflowed the resampler's FFT and made rubato panic;
/// +3e38 and -3e38 in two channels summed to NaN, which the model must never see.)
const ANALYSIS_LIMIT: f32 = 1e4;

/// Appends the channel average of `frames` of `samples` (interleaved, `ch` channels) as f32,
/// with non-finite samples read as 0 (one NaN must not poison the network's recurrent state)
/// and the rest bounded to +-[`ANALYSIS_LIMIT`]. Only the analysis sees this; emitted audio
/// is the input, untouched.
pub(super) fn downmix_into(samples: &Samples, ch: usize, frames: Range<usize>, out: &mut Vec<f32>) {
    let r = frames.start * ch..frames.end * ch;
    fn mix<T: Copy>(s: &[T], ch: usize, out: &mut Vec<f32>, f: impl Fn(T) -> f32) {
        let clean = |x: T| {
            let v = f(x);
            // A float compare and max/min, not `is_finite` (a test of the bits) and `clamp`
            // (which keeps NaN), which kept this loop scalar; the same values for every
            // input: NaN and +-inf fail `<= MAX`, and max/min clamp any finite value.
            #[allow(clippy::manual_clamp)]
            let bounded = v.max(-ANALYSIS_LIMIT).min(ANALYSIS_LIMIT);
            if v.abs() <= f32::MAX {
                bounded
            } else {
                0.0
            }
        };
        if ch == 1 {
            out.extend(s.iter().map(|&x| clean(x)));
        } else if ch == 2 {
            // The common case on its own, in blocks of eight frames that LLVM vectorises (the
            // general loop below ran one frame at a time). `(a + b) * 0.5` is the general
            // loop's `(-0.0 + a + b) * 0.5` bit for bit (`-0.0 + a == a` for every `a`).
            let blocks = s.chunks_exact(16);
            let tail = blocks.remainder();
            for b in blocks {
                let mut c = [0.0f32; 16];
                for (c, &x) in c.iter_mut().zip(b) {
                    *c = clean(x);
                }
                let mut m = [0.0f32; 8];
                for (i, m) in m.iter_mut().enumerate() {
                    *m = (c[2 * i] + c[2 * i + 1]) * 0.5;
                }
                out.extend_from_slice(&m);
            }
            out.extend(
                tail.chunks_exact(2)
                    .map(|fr| (clean(fr[0]) + clean(fr[1])) * 0.5),
            );
        } else {
            let inv = 1.0 / ch as f32;
            out.extend(
                s.chunks_exact(ch)
                    .map(|fr| fr.iter().map(|&x| clean(x)).sum::<f32>() * inv),
            );
        }
    }
    match samples {
        Samples::F32(b) => mix(&b[r], ch, out, |x| x),
        Samples::F64(b) => mix(&b[r], ch, out, |x| x as f32),
        Samples::I16(b) => mix(&b[r], ch, out, |x| x as f32 * (1.0 / 32768.0)),
        Samples::I32(b) => mix(&b[r], ch, out, |x| {
            (x as f64 * (1.0 / 2_147_483_648.0)) as f32
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::rng::XorShift;

    #[test]
    fn downmix_averages_and_zeroes_non_finite() {
        let mut out = Vec::new();
        let s = Samples::F32(vec![0.5, 0.25, f32::NAN, 1.0, f32::INFINITY, 0.0].into());
        downmix_into(&s, 2, 0..3, &mut out);
        assert_eq!(out, vec![0.375, 0.5, 0.0]);
    }

    #[test]
    fn stereo_downmix_matches_the_general_loop() {
        // Long enough for the blocks of eight frames and a tail, with every special value.
        let mut r = XorShift(5);
        let specials = [
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            -0.0,
            3e38,
            -2e4,
            1e4,
        ];
        let v: Vec<f32> = (0..2 * 37)
            .map(|i| {
                if i % 5 == 0 {
                    specials[i / 5 % specials.len()]
                } else {
                    r.next()
                }
            })
            .collect();
        let mut stereo = Vec::new();
        downmix_into(&Samples::F32(v.clone().into()), 2, 0..37, &mut stereo);
        // The same frames as two channels of a four-channel input whose other two are
        // silent give the general loop's mean of four, twice the sum's half.
        let four: Vec<f32> = v
            .chunks_exact(2)
            .flat_map(|f| [f[0], f[1], 0.0, 0.0])
            .collect();
        let mut general = Vec::new();
        downmix_into(&Samples::F32(four.into()), 4, 0..37, &mut general);
        for (i, (&a, &b)) in stereo.iter().zip(&general).enumerate() {
            assert!(a.is_finite() && a.abs() <= ANALYSIS_LIMIT, "frame {i}: {a}");
            assert_eq!(a, b * 2.0, "frame {i}");
        }
        assert_eq!(stereo.len(), 37);
    }

    #[test]
    fn downmix_stays_finite_and_bounded_for_huge_samples() {
        // Fuzzing found these: +-3e38 in two channels summed to NaN.
        let mut out = Vec::new();
        let s = Samples::F32(vec![3e38, -3e38, 3e38, 3e38, -1e30, 0.5].into());
        downmix_into(&s, 2, 0..3, &mut out);
        assert_eq!(out, vec![0.0, ANALYSIS_LIMIT, (0.5 - ANALYSIS_LIMIT) / 2.0]);
        out.clear();
        downmix_into(&Samples::F64(vec![1e300, 0.25].into()), 1, 0..2, &mut out);
        assert_eq!(out, vec![0.0, 0.25]);
    }
}
