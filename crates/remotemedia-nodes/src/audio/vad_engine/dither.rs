//! The network's fixed noise floor ([`Dither`]): deterministic white noise of 1 LSB of 16-bit
//! audio added to every engine sample before the network (by `SpeechVADNode`'s gate); the
//! narrow-band check measures the input against it.

use super::FRAME;
use crate::dsp::rng::{signed_unit, xorshift, SplitMix};

/// Peak of the noise floor added before the network: 1 LSB of 16-bit audio (-90 dBFS).
pub(crate) const DITHER: f32 = 1.0 / 32768.0;

/// Generators side by side in [`Dither`]: sample `j` of a frame takes generator `j % 8`.
pub(crate) const DITHER_LANES: usize = 8;
const _: () = assert!(FRAME % DITHER_LANES == 0);

/// The network's fixed noise floor: deterministic white noise in [-1, 1) at [`DITHER`],
/// advanced once per engine sample, so streamed and whole-input runs see the same floor.
///
/// Eight independent xorshift64 generators, one per lane of a frame's blocks of eight
/// samples, so a frame's dither is a few vector operations per eight samples (one generator
/// is a chain of six dependent operations per sample, which was a third of the gate's loop).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dither {
    lanes: [u64; DITHER_LANES],
}

impl Dither {
    /// Fixed seeds (splitmix64 of a constant, one per lane): every stream gets the same floor.
    pub(crate) fn new() -> Self {
        let mut seeds = SplitMix(0x9E37_79B9_7F4A_7C15);
        Self {
            lanes: std::array::from_fn(|_| seeds.next()),
        }
    }

    /// The generators' states (tests derive the dither from its definition).
    #[cfg(test)]
    pub(crate) fn lanes(&self) -> [u64; DITHER_LANES] {
        self.lanes
    }

    /// Adds the next values (at [`DITHER`]) to a frame of engine samples and clamps them to
    /// [-1, 1], in place: the network's input. A fixed noise floor: without it, bands the
    /// input does not fill (digital silence, the top octave of 8 kHz input) hold whatever the
    /// resampler's stopband leaves, and the model's per-frame feature normalisation amplifies
    /// that. The clamp: the resampler can overshoot clipped input, and the model expects
    /// [-1, 1].
    pub(crate) fn frame(&mut self, frame: &mut [f32; FRAME]) {
        #[cfg(target_arch = "x86_64")]
        if remotemedia_core::cpu::has_avx2() {
            // SAFETY: the CPU has AVX2 (checked at run time).
            return unsafe { self.frame_avx2(frame) };
        }
        self.frame_any(frame);
    }

    /// [`Dither::frame`] compiled for AVX2: the loop below in vectors of four generators
    /// (integer operations and exact conversions, then the same f32 add and clamp, so the
    /// same bits).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn frame_avx2(&mut self, frame: &mut [f32; FRAME]) {
        self.frame_any(frame);
    }

    /// The portable build (tests compare [`Dither::frame`] with it).
    #[inline(always)]
    pub(crate) fn frame_any(&mut self, frame: &mut [f32; FRAME]) {
        let mut lanes = self.lanes;
        for block in frame.chunks_exact_mut(DITHER_LANES) {
            for (x, s) in block.iter_mut().zip(lanes.iter_mut()) {
                *s = xorshift(*s);
                *x = (*x + signed_unit(*s) * DITHER).clamp(-1.0, 1.0);
            }
        }
        self.lanes = lanes;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dither_is_white_uniform_and_the_same_in_both_builds() {
        let (mut a, mut b) = (Dither::new(), Dither::new());
        let mut all = Vec::new();
        for _ in 0..400 {
            let (mut fa, mut fb) = ([0.0f32; FRAME], [0.0f32; FRAME]);
            a.frame(&mut fa);
            b.frame_any(&mut fb);
            assert_eq!(fa.map(f32::to_bits), fb.map(f32::to_bits));
            all.extend(fa.iter().map(|&v| v as f64 / DITHER as f64));
        }
        // Uniform in [-1, 1): mean 0, variance 1/3; neighbours (other generators) and
        // samples eight apart (the same generator) uncorrelated.
        let n = all.len() as f64;
        let mean = all.iter().sum::<f64>() / n;
        let var = all.iter().map(|v| v * v).sum::<f64>() / n;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0 / 3.0).abs() < 0.01, "variance {var}");
        assert!(all.iter().all(|v| (-1.0..1.0).contains(v)));
        for lag in [1, 2, 7, 8, 9, 16] {
            let c = all.iter().zip(&all[lag..]).map(|(x, y)| x * y).sum::<f64>() / n / var;
            assert!(c.abs() < 0.01, "correlation at lag {lag}: {c}");
        }
    }
}
