//! The crate's pseudo-random generators, two algorithms kept exactly because both sequences
//! are tested bit for bit (either in the other's place would change tested outputs):
//! - [`SplitMix`] (SplitMix64): `FormatConverterNode`'s TPDF dither (seeded with its `seed`,
//!   sound from any seed, 0 included) and the seeds of `SpeechVADNode`'s dither lanes;
//! - [`xorshift`] (xorshift64, 13/7/17): `SpeechVADNode`'s noise floor (`vad_engine::Dither`:
//!   eight generators side by side, cheap enough to vectorise, no multiply) and, as `XorShift`,
//!   the VAD unit tests' signals.

/// SplitMix64: tiny, fast and statistically sound for noise.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix(pub(crate) u64);

impl SplitMix {
    #[inline]
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    #[inline]
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Triangular in (-1, 1), in LSB.
    #[inline]
    pub(crate) fn tpdf(&mut self) -> f64 {
        self.unit() - self.unit()
    }
}

/// One xorshift64 step (Marsaglia's 13/7/17 triple).
#[inline(always)]
pub(crate) fn xorshift(mut x: u64) -> u64 {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

/// A generator state's top 24 bits as a value in [-1, 1) (exact in f32).
#[inline(always)]
pub(crate) fn signed_unit(x: u64) -> f32 {
    // 24 bits: through i32, which converts to f32 in vectors (u64 does not, before AVX-512).
    ((x >> 40) as i32) as f32 * (1.0 / (1u64 << 23) as f32) - 1.0
}

/// A single xorshift64 generator of values in [-1, 1) (test signals).
#[cfg(test)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct XorShift(pub(crate) u64);

#[cfg(test)]
impl XorShift {
    pub(crate) fn next(&mut self) -> f32 {
        self.0 = xorshift(self.0);
        signed_unit(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generators_give_their_published_sequences() {
        // SplitMix64 from 0 (the reference implementation's first outputs).
        let mut s = SplitMix(0);
        assert_eq!(s.next(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(s.next(), 0x6E78_9E6A_A1B9_65F4);
        // xorshift64 13/7/17 from 1.
        assert_eq!(xorshift(1), 0x4082_2041);
        assert_eq!(signed_unit(u64::MAX), 1.0 - 1.0 / (1u64 << 23) as f32);
        assert_eq!(signed_unit(0), -1.0);
    }
}
