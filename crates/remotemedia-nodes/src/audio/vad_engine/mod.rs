//! The frame classifier behind `SpeechVADNode`: the `earshot` 1.2.2 model (Carson M /
//! pyke.io, MIT OR Apache-2.0; `weights.bin` and `filters.rs` are copied verbatim from the
//! crate) with the same features and network, computed faster:
//!
//! - the 1024-point real FFT is rustfft's SIMD 512-point complex FFT with `realfft`'s
//!   post-processing (in [`spectrum`], writing the power spectrum directly, with AVX2)
//!   instead of earshot's portable radix-2 code;
//! - the weights are decoded once into fixed-size arrays, so the hot loops have no bounds
//!   checks and the two minGRU layers' integer dot products (18 432 multiply-adds per frame,
//!   most of the work) vectorise; integer arithmetic makes them exact in any order;
//! - the mel bands' logarithm is our own [`ln`] (within 1 ulp, vectorised) instead of libm's.
//!
//! Everything else (pre-emphasis, window, mel bands, normalisation, the convolution layers in
//! f32, in the same order of operations; layer 1's pooling reordered only where that is
//! exact) is earshot's. The probabilities differ from earshot's only by the FFT's and the
//! logarithm's rounding (a unit test bounds the difference), and are deterministic: the same
//! input gives the same bits on every run and every chunking.
//!
//! Files: [`weights`](mod@weights) (the parameters), [`mel`] (the filterbank and the
//! logarithm), [`narrow_band`] (bands the input cannot carry), [`layers`] (the convolutions and
//! the minGRU layers), `avx2` (the AVX2 kernels), [`dither`] (the noise floor the engine's
//! input carries).

#[cfg(target_arch = "x86_64")]
mod avx2;
mod dither;
mod filters;
mod layers;
mod mel;
mod narrow_band;
mod spectrum;
mod weights;

#[cfg(target_arch = "x86_64")]
use avx2::mel_bands_avx2;
pub(crate) use dither::Dither;
#[cfg(test)]
pub(crate) use dither::{DITHER, DITHER_LANES};
use layers::{layer1, layer2, layer3, mingru};
use mel::{ln, mel_bands};
use narrow_band::{bands_carried, extend_top_band, NarrowBand};
use spectrum::PowerSpectrum;
use weights::{weights, Weights};

const WINDOW_SIZE: usize = 768;
const N_MELS: usize = 40;
const N_CONTEXT_FRAMES: usize = 3;
const N_BINS: usize = spectrum::BINS;
const PRE_EMPHASIS_COEFF: f32 = 0.97;
const POWER_FAC: f32 = 1. / (32768.0f32 * 32768.0);
/// The feature level (see [`Engine::predict_levelled`]) is the mean log energy of the mel
/// bands an 8 kHz input carries (the lowest rate the node takes), so that audio of any rate,
/// and 16 kHz audio upsampled from a lower one, reads the same level.
const LEVEL_BANDS: usize = 28;
/// Samples per frame (16 ms at 16 kHz).
pub(crate) const FRAME: usize = 256;
/// The engine's sample rate (the node's `ENGINE_RATE`).
pub(crate) const RATE: u32 = 16_000;

/// One stream's detector: 16 kHz mono frames of [`FRAME`] samples in, speech probability out.
pub(crate) struct Engine {
    w: &'static Weights,
    spectrum: PowerSpectrum,
    /// The current frame's power spectrum (scratch).
    power: [f32; N_BINS],
    prev_signal: f32,
    ring: [f32; WINDOW_SIZE],
    features: [f32; N_MELS * N_CONTEXT_FRAMES],
    state: [i16; 128],
    /// The first mel band the input cannot carry ([`N_MELS`]: none), from its rate; see
    /// [`Engine::set_input_rate`].
    fill_from: usize,
    /// Whether 16 kHz input looks like upsampled 8, 11.025 or 12 kHz audio; see [`NarrowBand`].
    narrow: NarrowBand,
}

impl Engine {
    pub(crate) fn new() -> Self {
        Self {
            w: weights(),
            spectrum: PowerSpectrum::new(),
            power: [0.0; N_BINS],
            prev_signal: 0.0,
            ring: [0.0; WINDOW_SIZE],
            features: [0.0; N_MELS * N_CONTEXT_FRAMES],
            state: [0; 128],
            fill_from: N_MELS,
            narrow: NarrowBand::default(),
        }
    }

    /// Back to a new stream's state, of a 16 kHz (or faster) input.
    pub(crate) fn reset(&mut self) {
        self.prev_signal = 0.0;
        self.ring = [0.0; WINDOW_SIZE];
        self.features = [0.0; N_MELS * N_CONTEXT_FRAMES];
        self.state = [0; 128];
        self.fill_from = N_MELS;
        self.narrow = NarrowBand::default();
    }

    /// Tells the engine the rate the audio had before it was resampled to 16 kHz. Below
    /// 16 kHz the top mel bands hold nothing but the 1-LSB noise floor (8 kHz audio carries
    /// nothing above 4 kHz), which the network, trained on full-band audio, never saw: it
    /// moved a third of the segment bounds of 8 kHz copies of the dev split by more than a
    /// frame and cost 0.035 F1. Those bands take the log energy of the highest band that lies
    /// wholly below 90% of the input's Nyquist (where a resampler still passes the signal;
    /// telephone audio, cut at 3.4 kHz, is measured there too), a flat extension of the
    /// spectrum the input has. Chosen on the dev split
    /// and checked on the held one, against a slope fitted to the top bands and the mean of
    /// the top three (docs/benchmarks.md, "Inputs below 16 kHz"). At 16 kHz and above the
    /// same fill applies only while the audio itself looks like upsampled audio of a lower
    /// rate ([`NarrowBand`]).
    pub(crate) fn set_input_rate(&mut self, rate: u32) {
        self.fill_from = bands_carried(rate);
    }

    /// The speech probability of one frame of 16 kHz samples in [-1, 1].
    #[cfg(test)]
    pub(crate) fn predict(&mut self, frame: &[f32; FRAME]) -> f32 {
        self.predict_levelled(frame, |_| 0.0)
    }

    /// [`Engine::predict`], with the frame analysed as if `gain(level)` dB louder: `level` is
    /// the frame's feature level (the mean of the log energies of its lowest [`LEVEL_BANDS`]
    /// mel bands, in dB; a gain of g dB raises it by g). The gain is added to the log
    /// energies, as a gain on the audio would raise them (a test checks it), after the
    /// narrow-band check has read them as they are. A gain of 0 gives the bits of no gain.
    pub(crate) fn predict_levelled(
        &mut self,
        frame: &[f32; FRAME],
        gain: impl FnOnce(f32) -> f32,
    ) -> f32 {
        #[cfg(target_arch = "x86_64")]
        // std caches the detection: one relaxed load per frame.
        if remotemedia_core::cpu::has_avx2() {
            // SAFETY: the CPU has AVX2 (checked at run time).
            return unsafe { self.predict_avx2(frame, gain) };
        }
        self.predict_any::<false>(frame, gain)
    }

    /// [`Engine::predict`] compiled for AVX2: the minGRU layers' row sums run in
    /// [`row_sums_avx2`] and the f32 layers' loops twice as wide as SSE2's. The f32
    /// arithmetic is the same operations in the same order (Rust never fuses a multiply and
    /// an add on its own), so both paths give the same bits.
    ///
    /// [`row_sums_avx2`]: avx2::row_sums_avx2
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn predict_avx2(&mut self, frame: &[f32; FRAME], gain: impl FnOnce(f32) -> f32) -> f32 {
        self.predict_any::<true>(frame, gain)
    }

    /// The network; `AVX2` only when the caller runs with AVX2 enabled.
    #[inline(always)]
    fn predict_any<const AVX2: bool>(
        &mut self,
        frame: &[f32; FRAME],
        gain: impl FnOnce(f32) -> f32,
    ) -> f32 {
        // earshot works at i16 scale (better FFT precision) and scales the power back.
        const SCALE: f32 = 32768.0;
        self.ring.copy_within(FRAME.., 0);
        for (emph, &s) in self.ring[WINDOW_SIZE - FRAME..].iter_mut().zip(frame) {
            let s = s * SCALE;
            *emph = s - PRE_EMPHASIS_COEFF * self.prev_signal;
            self.prev_signal = s;
        }
        let input = self.spectrum.input();
        for ((o, &x), &h) in input.iter_mut().zip(&self.ring).zip(&filters::HANN_WINDOW) {
            *o = x * h;
        }
        input[WINDOW_SIZE..].fill(0.0);
        // Kept between frames: `power` overwrites every bin, so no per-frame zeroing (a
        // 2 KiB memset that callgrind counted at ~2,000 instructions a frame in one build).
        let power = &mut self.power;
        self.spectrum.power::<AVX2>(POWER_FAC, power);

        self.features.copy_within(N_MELS.., 0);
        let cur = &mut self.features[N_MELS * (N_CONTEXT_FRAMES - 1)..];
        let bands = if AVX2 {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `AVX2` is set only when the caller runs with AVX2 enabled.
            unsafe {
                mel_bands_avx2(power)
            }
            #[cfg(not(target_arch = "x86_64"))]
            mel_bands(power)
        } else {
            mel_bands(power)
        };
        for (f, band) in cur.iter_mut().zip(bands) {
            *f = ln(band + 1e-20);
        }
        let fill_from = if self.fill_from < N_MELS {
            self.fill_from
        } else {
            self.narrow.carried(cur)
        };
        extend_top_band(cur, fill_from);
        // Natural log units to dB of power.
        const DB: f32 = 10.0 / std::f32::consts::LN_10;
        let level = cur[..LEVEL_BANDS].iter().sum::<f32>() * (DB / LEVEL_BANDS as f32);
        let gain_db = gain(level);
        if gain_db != 0.0 {
            let shift = gain_db / DB;
            for f in cur.iter_mut() {
                *f += shift;
            }
        }
        let w = self.w;
        // Per-frame RMS normalisation with a learned per-band gain.
        let i_rms = (cur.iter().map(|x| x * x).sum::<f32>() / N_MELS as f32)
            .sqrt()
            .recip();
        for (v, g) in cur.iter_mut().zip(&w.norm) {
            *v = g * *v * i_rms;
        }

        let l1 = layer1(w, &self.features);
        let l2 = layer2(w, &l1);
        let l3 = layer3(w, &l2);
        let (h1, h2) = self.state.split_at_mut(64);
        let h1: &mut [i16; 64] = h1.try_into().expect("64");
        let h2: &mut [i16; 64] = h2.try_into().expect("64");
        mingru::<80, 40, AVX2>(&l3, h1, &w.rnn1, &w.rnn1_pairs);
        let h1c = *h1;
        mingru::<64, 32, AVX2>(&h1c, h2, &w.rnn2, &w.rnn2_pairs);
        let mut out = 0i32;
        for (&s, &o) in self.state.iter().zip(&w.output) {
            out = out.wrapping_add(s as i32 * o as i32); // Q15 * Q9 = Q24
        }
        1. / (1. + (-(out as f32 / 16_777_216.0)).exp())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::rng::XorShift;

    /// Deterministic test audio: syllable-like bursts of coloured noise over a quiet floor.
    fn audio(seconds: usize) -> Vec<f32> {
        let mut r = XorShift(0x2545_f491_4f6c_dd1d);
        let mut lp = 0.0f32;
        (0..16_000 * seconds)
            .map(|i| {
                let u = r.next();
                let t = i as f32 / 16_000.0;
                let env = if t % 2.0 < 1.2 {
                    0.4 * (std::f32::consts::PI * 4.0 * t).sin().abs()
                } else {
                    0.0
                };
                lp = 0.85 * lp + 0.15 * u;
                (env * lp * 3.0 + 0.002 * u).clamp(-1.0, 1.0)
            })
            .collect()
    }

    #[test]
    fn matches_earshot_within_rounding() {
        let x = audio(20);
        let mut ours = Engine::new();
        let mut theirs = earshot::Detector::default_boxed();
        let mut worst = 0.0f32;
        let mut decisions_differ = 0;
        for f in x.chunks_exact(FRAME) {
            let a = ours.predict(f.try_into().unwrap());
            let b = theirs.predict_f32(f);
            worst = worst.max((a - b).abs());
            decisions_differ += ((a >= 0.5) != (b >= 0.5)) as u32;
        }
        assert!(worst < 0.01, "largest probability difference {worst}");
        assert_eq!(decisions_differ, 0);
    }

    #[test]
    fn a_gain_on_the_features_is_a_gain_on_the_audio() {
        // The same audio 20 dB quieter, analysed with +20 dB, against the original: only the
        // rounding (and the 1e-20 under each logarithm) differs.
        let x = audio(4);
        let quiet: Vec<f32> = x.iter().map(|v| v * 0.1).collect();
        let (mut a, mut b) = (Engine::new(), Engine::new());
        let mut worst = 0.0f32;
        let mut levels = Vec::new();
        for (f, q) in x.chunks_exact(FRAME).zip(quiet.chunks_exact(FRAME)) {
            let mut level = 0.0;
            let pa = a.predict_levelled(f.try_into().unwrap(), |l| {
                level = l;
                0.0
            });
            let pb = b.predict_levelled(q.try_into().unwrap(), |l| {
                levels.push(level - l);
                20.0
            });
            worst = worst.max((pa - pb).abs());
        }
        assert!(worst < 1e-3, "{worst}");
        // The level reads the gain: 20 dB apart in every frame with sound.
        let loud: Vec<f32> = levels.iter().copied().filter(|d| d.abs() > 1.0).collect();
        assert!(loud.len() > levels.len() / 2);
        assert!(loud.iter().all(|d| (d - 20.0).abs() < 0.01), "{loud:?}");
    }

    #[test]
    fn the_level_bands_are_those_of_8_khz_audio() {
        assert_eq!(bands_carried(8000), LEVEL_BANDS);
    }

    #[test]
    fn the_avx2_build_gives_the_same_bits() {
        let x = audio(10);
        let (mut dispatched, mut portable) = (Engine::new(), Engine::new());
        for f in x.chunks_exact(FRAME) {
            let f = f.try_into().unwrap();
            assert_eq!(
                dispatched.predict(f).to_bits(),
                portable.predict_any::<false>(f, |_| 0.0).to_bits()
            );
            // A levelled frame too (the same gain to each engine).
            assert_eq!(
                dispatched.predict_levelled(f, |l| 0.5 - l).to_bits(),
                portable.predict_any::<false>(f, |l| 0.5 - l).to_bits()
            );
        }
        assert_eq!(dispatched.state, portable.state);
    }

    #[test]
    fn reset_restores_the_initial_state() {
        let x = audio(2);
        let mut e = Engine::new();
        let first: Vec<f32> = x
            .chunks_exact(FRAME)
            .map(|f| e.predict(f.try_into().unwrap()))
            .collect();
        e.reset();
        let again: Vec<f32> = x
            .chunks_exact(FRAME)
            .map(|f| e.predict(f.try_into().unwrap()))
            .collect();
        assert_eq!(first, again);
    }

    #[test]
    fn inputs_below_16_khz_extend_their_top_carried_band() {
        // 16 kHz and up carry every band; below, the bands wholly under 0.9 * Nyquist.
        for rate in [16_000, 22_050, 48_000, 384_000] {
            assert_eq!(bands_carried(rate), N_MELS, "{rate}");
        }
        let bin_hz = RATE as f64 / spectrum::LEN as f64;
        let top = |b: usize| {
            let (start, c) = filters::MEL_COEFFS[b];
            (start + c.len() - 1) as f64 * bin_hz
        };
        for rate in [8_000u32, 11_025, 12_000, 15_999] {
            let k = bands_carried(rate);
            assert!((1..N_MELS).contains(&k), "{rate}: {k}");
            assert!(top(k - 1) <= 0.45 * rate as f64 && top(k) > 0.45 * rate as f64);
        }

        let mut logs: Vec<f32> = (0..N_MELS).map(|i| i as f32).collect();
        extend_top_band(&mut logs, 29);
        assert_eq!(
            logs[..29],
            (0..29).map(|i| i as f32).collect::<Vec<_>>()[..]
        );
        assert!(logs[29..].iter().all(|&v| v == 28.0));
        extend_top_band(&mut logs, N_MELS); // full band: unchanged
        assert_eq!(logs[28..], [28.0; 12]);

        // An engine told of an 8 kHz input scores differently.
        let x = audio(1);
        let (mut full, mut low) = (Engine::new(), Engine::new());
        low.set_input_rate(8_000);
        let probs = |e: &mut Engine| -> Vec<f32> {
            x.chunks_exact(FRAME)
                .map(|f| e.predict(f.try_into().unwrap()))
                .collect()
        };
        assert_ne!(probs(&mut full), probs(&mut low));
        // reset() forgets the rate: the next stream starts full-band again.
        low.reset();
        full.reset();
        assert_eq!(probs(&mut full), probs(&mut low));
    }
}
