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

mod dither;
mod filters;
mod spectrum;

use std::sync::OnceLock;

pub(crate) use dither::Dither;
#[cfg(test)]
pub(crate) use dither::{DITHER, DITHER_LANES};
use spectrum::PowerSpectrum;

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

/// The network's parameters (layout of earshot's `weights.bin`: f32 then Q9 i16, little-endian).
struct Weights {
    norm: [f32; 40],
    l1_kernel: [f32; 9],
    l1_weight: [f32; 16],
    l1_bias: [f32; 16],
    /// Depthwise taps transposed: `[tap][channel]`.
    l2_kernel_t: [[f32; 16]; 3],
    /// Pointwise weights transposed: `[in channel][out channel]`.
    l2_weight_t: [[f32; 16]; 16],
    l2_bias: [f32; 16],
    l3_kernel_t: [[f32; 16]; 3],
    l3_weight_t: [[f32; 16]; 16],
    rnn1: [[i16; 80]; 128],
    rnn2: [[i16; 64]; 128],
    /// `rnn1` for the AVX2 kernel: `[input pair][row]`, each i32 holding the row's weights
    /// for inputs `2p` (low half) and `2p + 1` (high half), as `vpmaddwd` reads them.
    rnn1_pairs: [[i32; 128]; 40],
    rnn2_pairs: [[i32; 128]; 32],
    output: [i16; 128],
}

static WEIGHT_BYTES: &[u8] = include_bytes!("weights.bin");

fn weights() -> &'static Weights {
    static W: OnceLock<Box<Weights>> = OnceLock::new();
    W.get_or_init(|| {
        let f32_at = |i: usize| {
            let b = &WEIGHT_BYTES[i * 4..i * 4 + 4];
            f32::from_le_bytes([b[0], b[1], b[2], b[3]])
        };
        let i16_at = |i: usize| {
            let b = &WEIGHT_BYTES[i * 2..i * 2 + 2];
            i16::from_le_bytes([b[0], b[1]])
        };
        fn fill<const N: usize, T: Default + Copy>(f: impl Fn(usize) -> T, at: usize) -> [T; N] {
            let mut a = [T::default(); N];
            for (i, v) in a.iter_mut().enumerate() {
                *v = f(at + i);
            }
            a
        }
        // `[out][in]` (earshot's layout) to `[in][out]`.
        fn transposed(m: [f32; 256]) -> [[f32; 16]; 16] {
            let mut t = [[0.0; 16]; 16];
            for (o, row) in m.chunks_exact(16).enumerate() {
                for (i, &v) in row.iter().enumerate() {
                    t[i][o] = v;
                }
            }
            t
        }
        fn pairs<const IN: usize, const P: usize>(m: &[[i16; IN]; 128]) -> [[i32; 128]; P] {
            let mut t = [[0i32; 128]; P];
            for (p, col) in t.iter_mut().enumerate() {
                for (v, row) in col.iter_mut().zip(m) {
                    *v = (row[2 * p] as u16 as i32) | ((row[2 * p + 1] as i32) << 16);
                }
            }
            t
        }
        // `[channel][tap]` (earshot's layout) to `[tap][channel]`.
        fn taps_transposed(m: [f32; 48]) -> [[f32; 16]; 3] {
            let mut t = [[0.0; 16]; 3];
            for (c, taps) in m.chunks_exact(3).enumerate() {
                for (k, &v) in taps.iter().enumerate() {
                    t[k][c] = v;
                }
            }
            t
        }
        // The i16 part starts after 705 f32 values.
        const Q: usize = 705 * 2;
        let mut rnn1 = [[0i16; 80]; 128];
        for (d, row) in rnn1.iter_mut().enumerate() {
            *row = fill(i16_at, Q + d * 80);
        }
        let mut rnn2 = [[0i16; 64]; 128];
        for (d, row) in rnn2.iter_mut().enumerate() {
            *row = fill(i16_at, Q + 10240 + d * 64);
        }
        assert_eq!(WEIGHT_BYTES.len(), (Q + 10240 + 8192 + 128) * 2);
        Box::new(Weights {
            norm: fill(f32_at, 0),
            l1_kernel: fill(f32_at, 40),
            l1_weight: fill(f32_at, 49),
            l1_bias: fill(f32_at, 65),
            l2_kernel_t: taps_transposed(fill(f32_at, 81)),
            l2_weight_t: transposed(fill(f32_at, 129)),
            l2_bias: fill(f32_at, 385),
            l3_kernel_t: taps_transposed(fill(f32_at, 401)),
            l3_weight_t: transposed(fill(f32_at, 449)),
            rnn1_pairs: pairs(&rnn1),
            rnn2_pairs: pairs(&rnn2),
            rnn1,
            rnn2,
            output: fill(i16_at, Q + 10240 + 8192),
        })
    })
}

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

/// How many of the mel bands (from the lowest) an input at `rate` carries: those wholly below
/// 90% of its Nyquist frequency; all of them from 16 kHz up. At least one.
fn bands_carried(rate: u32) -> usize {
    if rate >= RATE {
        return N_MELS;
    }
    // A band's top bin (bin b is b * RATE / LEN Hz) against 0.9 * rate / 2, in integers:
    // b * RATE / LEN > 9 * rate / 20  <=>  b * RATE * 20 > 9 * rate * LEN.
    let above = |b: usize| b as u64 * RATE as u64 * 20 > 9 * rate as u64 * spectrum::LEN as u64;
    filters::MEL_COEFFS
        .iter()
        .position(|(start, c)| above(start + c.len() - 1))
        .unwrap_or(N_MELS)
        .max(1)
}

/// Tells 16 kHz (or faster) input that is upsampled audio of a lower rate (a telephone call
/// resampled before it reaches the node, as voice agents often do; 11.025 or 12 kHz audio
/// brought to a common rate) from full-band audio, so such input gets the fill
/// [`Engine::set_input_rate`] gives input at that rate: without it, soxr copies of the dev and
/// held splits taken to 8 kHz and back scored as 8 kHz input did before that fill (dev F1
/// 0.816, now 0.845), and 11.025 kHz copies 0.014 / 0.010 below their 11.025 kHz input runs
/// (docs/benchmarks.md, "Upsampled 8 kHz audio" and "Upsampled 11.025 and 12 kHz audio,
/// linear interpolation").
///
/// For each source rate of [`NARROW_RATES`], a frame is evidence of audio of that rate when
/// the four bands just below 90% of its Nyquist frequency (where a resampler still passes the
/// signal; 3.4 kHz for 8 kHz) hold signal ([`EDGE_DB`] above the node's dither floor) while
/// every band wholly above its Nyquist frequency stays within [`EMPTY_DB`] of that floor: the
/// cliff a band limit leaves. After [`NARROW_AFTER`] such frames the fill of that rate is on
/// (of the lowest rate, when several are); any frame with a band above that Nyquist frequency
/// [`WIDE_DB`] over the floor turns it off and starts its count again. Full-band speech and
/// noise put energy above 4 kHz in nearly every frame, and low-pass noise such as mains hum
/// has no energy just below the cliffs: not one probability of the 35 files of the benchmark's
/// test, dev and held splits at 16 kHz changed (`benchmarks/vad_probs.py`). (While loud noise
/// between 4 and 5.5 kHz resets the 8 kHz count of upsampled 8 kHz audio, the 11.025 kHz fill
/// may apply: 2 of the 35 files' 8 kHz copies moved by at most 0.003, deciding the same.)
#[derive(Clone, Copy, Default)]
struct NarrowBand {
    /// Evidence frames since the last wide one, per rate of [`NARROW_RATES`].
    evidence: [u16; NARROW_RATES.len()],
}

/// The source rates recognised in upsampled audio, lowest first: telephone audio and the
/// rates of the 11.025 / 22.05 / 44.1 kHz and 12 / 24 / 48 kHz families below 16 kHz.
const NARROW_RATES: [u32; 3] = [8_000, 11_025, 12_000];
/// Evidence frames before the fill starts: 128 ms of band-limited signal.
const NARROW_AFTER: u16 = 8;
/// How far above the dither floor one of the four bands below the cliff must rise, in dB.
const EDGE_DB: f32 = 20.0;
/// How close to the dither floor every band above the Nyquist frequency must stay, in dB.
const EMPTY_DB: f32 = 6.0;
/// A band above the Nyquist frequency this far over the dither floor marks the audio as
/// wider than that rate, in dB.
const WIDE_DB: f32 = 12.0;

impl NarrowBand {
    /// Takes one frame's log mel energies and returns how many bands to carry.
    #[inline(always)]
    fn carried(&mut self, log_bands: &[f32]) -> usize {
        let r = narrow_ref();
        let over = |k: usize| log_bands[k] - r.floor[k];
        let mut carried = N_MELS;
        // Highest rate first, so the lowest one whose fill is on decides.
        for (evidence, cliff) in self.evidence.iter_mut().zip(&r.cliffs).rev() {
            let top = (cliff.above..N_MELS).map(over).fold(f32::MIN, f32::max);
            if top > r.wide {
                *evidence = 0;
            } else if top <= r.empty
                && (cliff.carried - 4..cliff.carried).any(|k| over(k) >= r.edge)
            {
                *evidence = evidence.saturating_add(1);
            }
            if *evidence >= NARROW_AFTER {
                carried = cliff.carried;
            }
        }
        carried
    }
}

/// The bands of one rate of [`NARROW_RATES`].
struct Cliff {
    /// Bands an input at that rate carries ([`bands_carried`]).
    carried: usize,
    /// The first band wholly above its Nyquist frequency.
    above: usize,
}

/// What [`NarrowBand`] compares against, computed once.
struct NarrowRef {
    /// Each band's log energy for the node's dither alone (white noise, uniform in
    /// +-[`DITHER`](dither::DITHER)), the expected value through pre-emphasis, window
    /// and filterbank.
    floor: [f32; N_MELS],
    /// Per rate of [`NARROW_RATES`].
    cliffs: [Cliff; NARROW_RATES.len()],
    /// The thresholds in natural-log units.
    edge: f32,
    empty: f32,
    wide: f32,
}

fn narrow_ref() -> &'static NarrowRef {
    static R: OnceLock<NarrowRef> = OnceLock::new();
    R.get_or_init(|| {
        // White noise of variance (a * 32768)^2 / 3 at the engine's i16 scale; per bin
        // E|X|^2 = variance * |1 - 0.97 e^-jw|^2 * sum(window^2).
        let a = f64::from(dither::DITHER) * 32768.0;
        let variance = a * a / 3.0;
        let window: f64 = filters::HANN_WINDOW
            .iter()
            .map(|&w| f64::from(w) * f64::from(w))
            .sum();
        let pre = f64::from(PRE_EMPHASIS_COEFF);
        let bin_power = |b: usize| {
            let w = std::f64::consts::PI * b as f64 / (N_BINS - 1) as f64;
            variance * (1.0 + pre * pre - 2.0 * pre * w.cos()) * window * f64::from(POWER_FAC)
        };
        let mut floor = [0.0f32; N_MELS];
        for (f, (start, c)) in floor.iter_mut().zip(&filters::MEL_COEFFS) {
            let band: f64 = c
                .iter()
                .enumerate()
                .map(|(i, &c)| f64::from(c) * bin_power(start + i))
                .sum();
            *f = (band + 1e-20).ln() as f32;
        }
        let bin_hz = f64::from(RATE) / spectrum::LEN as f64;
        let db = |d: f32| d * std::f32::consts::LN_10 / 10.0;
        NarrowRef {
            floor,
            cliffs: NARROW_RATES.map(|rate| Cliff {
                carried: bands_carried(rate),
                above: filters::MEL_COEFFS
                    .iter()
                    .position(|&(start, _)| start as f64 * bin_hz >= f64::from(rate) / 2.0)
                    .unwrap_or(N_MELS),
            }),
            edge: db(EDGE_DB),
            empty: db(EMPTY_DB),
            wide: db(WIDE_DB),
        }
    })
}

/// Gives the bands from `carried` on the log energy of band `carried - 1`.
#[inline(always)]
fn extend_top_band(log_bands: &mut [f32], carried: usize) {
    if let Some(&top) = carried.checked_sub(1).and_then(|k| log_bands.get(k)) {
        log_bands[carried..].fill(top);
    }
}

/// The natural logarithm of a positive, finite, normal f32 (a band's energy plus 1e-20), by
/// Cephes' `logf` method: `x = 2^e * m` with `m` in `[sqrt(1/2), sqrt(2))`, then
/// `ln(m) = f - f^2 / 2 + f^3 P(f)` with `f = m - 1` (exact) and `e * ln 2` in two parts.
/// Within 1 ulp of the true value (a test bounds it). Ours rather than libm's `logf`:
/// written with selects instead of branches, the 40 bands' logarithms run as five AVX2
/// vectors (libm's scalar calls were 5% of the engine's instructions), and the result no
/// longer depends on which C library, or which of its variants, the process loaded.
#[inline(always)]
fn ln(x: f32) -> f32 {
    debug_assert!(x.is_normal() && x > 0.0, "{x}");
    const SQRT_HALF: f32 = std::f32::consts::FRAC_1_SQRT_2;
    let bits = x.to_bits();
    // x = 2^e * m, m in [0.5, 1).
    let e = ((bits >> 23) as i32 - 126) as f32;
    let m = f32::from_bits((bits & 0x007F_FFFF) | 0x3F00_0000);
    let small = m < SQRT_HALF;
    let e = if small { e - 1.0 } else { e };
    let f = if small { (m + m) - 1.0 } else { m - 1.0 };
    let z = f * f;
    let p = ((((((((7.037_683_6e-2 * f - 1.151_461e-1) * f + 1.167_699_9e-1) * f
        - 1.242_014_1e-1)
        * f
        + 1.424_932_3e-1)
        * f
        - 1.666_805_8e-1)
        * f
        + 2.000_071_4e-1)
        * f
        - 2.499_999_4e-1)
        * f
        + 3.333_333e-1)
        * f
        * z;
    // ln 2 = 0.693359375 (exact in a few bits) - 2.12194440e-4.
    let y = (p + -2.121_944_4e-4 * e) + -0.5 * z;
    (f + y) + 0.693_359_4 * e
}

/// Bands per group of the mel filterbank computed side by side.
const MEL_LANES: usize = 8;
const _: () = assert!(N_MELS % MEL_LANES == 0);

/// The mel filterbank arranged for [`mel_bands`]: bands in groups of [`MEL_LANES`], each
/// group's coefficients `[k][lane]`, zero-padded to the group's longest band.
struct MelTable {
    /// First FFT bin of each band.
    start: [usize; N_MELS],
    /// Per group: `[k][lane]` for k below the group's longest band.
    coefs: Vec<Vec<[f32; MEL_LANES]>>,
}

impl MelTable {
    /// Per group of [`MEL_LANES`] bands: their first bins and their `[k][lane]` coefficients.
    fn groups(&self) -> impl Iterator<Item = (&[usize; MEL_LANES], &[[f32; MEL_LANES]])> {
        self.start
            .chunks_exact(MEL_LANES)
            .map(|s| s.try_into().expect("chunks of MEL_LANES"))
            .zip(self.coefs.iter().map(Vec::as_slice))
    }
}

fn mel_table() -> &'static MelTable {
    static T: OnceLock<MelTable> = OnceLock::new();
    T.get_or_init(|| {
        let mut start = [0; N_MELS];
        for (s, &(first, _)) in start.iter_mut().zip(&filters::MEL_COEFFS) {
            *s = first;
        }
        let coefs = filters::MEL_COEFFS
            .chunks(MEL_LANES)
            .map(|group| {
                let longest = group.iter().map(|(_, c)| c.len()).max().unwrap_or(0);
                for &(first, _) in group {
                    // Padded lanes read real bins (times zero).
                    assert!(first + longest <= N_BINS, "mel band past the spectrum");
                }
                (0..longest)
                    .map(|k| {
                        let mut row = [0.0; MEL_LANES];
                        for (r, (_, c)) in row.iter_mut().zip(group) {
                            *r = c.get(k).copied().unwrap_or(0.0);
                        }
                        row
                    })
                    .collect()
            })
            .collect();
        MelTable { start, coefs }
    })
}

/// Mel band energies of a power spectrum. Each band sums its bins in order from 0.0, as
/// earshot does (one chain of dependent adds per band, about 1000 in all, was the engine's
/// largest cost); eight bands run side by side instead of one after another. A padded lane
/// adds `power * 0.0 = +0.0` to a non-negative sum, which leaves it unchanged (the power is
/// finite: non-finite input samples are zeroed before the engine), so the result is the
/// same bits as the band-by-band sum.
#[inline(always)]
fn mel_bands(power: &[f32; N_BINS]) -> [f32; N_MELS] {
    let t = mel_table();
    let mut out = [0.0f32; N_MELS];
    for ((start, coefs), bands) in t.groups().zip(out.chunks_exact_mut(MEL_LANES)) {
        let mut acc = [0.0f32; MEL_LANES];
        for (k, row) in coefs.iter().enumerate() {
            for l in 0..MEL_LANES {
                acc[l] += power[start[l] + k] * row[l];
            }
        }
        bands.copy_from_slice(&acc);
    }
    out
}

/// [`mel_bands`] with each group's eight bins gathered into one register per step (the
/// portable code loads, bounds-checks and accumulates lane by lane): the same operations per
/// lane in the same order, so the same bits.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn mel_bands_avx2(power: &[f32; N_BINS]) -> [f32; N_MELS] {
    use std::arch::x86_64::*;
    let t = mel_table();
    let mut out = [0.0f32; N_MELS];
    for ((start, coefs), bands) in t.groups().zip(out.chunks_exact_mut(MEL_LANES)) {
        let mut idx = _mm256_setr_epi32(
            start[0] as i32,
            start[1] as i32,
            start[2] as i32,
            start[3] as i32,
            start[4] as i32,
            start[5] as i32,
            start[6] as i32,
            start[7] as i32,
        );
        let one = _mm256_set1_epi32(1);
        let mut acc = _mm256_setzero_ps();
        for row in coefs {
            // SAFETY: `start[l] + k < N_BINS` for every k below the group's longest band
            // (asserted when the table is built), so every gathered index is inside `power`.
            let p = _mm256_i32gather_ps::<4>(power.as_ptr(), idx);
            acc = _mm256_add_ps(acc, _mm256_mul_ps(p, _mm256_loadu_ps(row.as_ptr())));
            idx = _mm256_add_epi32(idx, one);
        }
        _mm256_storeu_ps(bands.as_mut_ptr(), acc);
    }
    out
}

/// Depthwise 3x3 over the 3 context frames, pointwise to 16 channels, max-pool 3/2, ReLU:
/// `[column][channel]` (columns outer, so the next layer reads a column's channels as one
/// vector).
#[inline(always)]
fn layer1(w: &Weights, features: &[f32; N_MELS * N_CONTEXT_FRAMES]) -> [[f32; 16]; POOLED] {
    // Each column sums its 9 taps in earshot's order (kh, kw); columns are independent
    // lanes, so the loop over them vectorises with bit-identical results.
    let mut row = [0.0f32; DW];
    for kh in 0..3 {
        for kw in 0..3 {
            let k = w.l1_kernel[kh * 3 + kw];
            let src: &[f32; DW] = features[kh * N_MELS + kw..kh * N_MELS + kw + DW]
                .try_into()
                .expect("DW columns");
            for (r, &f) in row.iter_mut().zip(src) {
                *r += f * k;
            }
        }
    }
    // earshot pools each channel's `r * weight + bias` over three columns. Rounded
    // multiplication and addition are monotonic, so that maximum is the channel's affine map
    // of the window's largest `r` (smallest, for a negative weight), to the bit: the window's
    // extremes are taken once for all 16 channels instead of 16 times (the values are finite:
    // non-finite input never reaches the engine).
    let mut hi = [0.0f32; POOLED];
    let mut lo = [0.0f32; POOLED];
    for q in 0..POOLED {
        let win = &row[q * 2..q * 2 + 3];
        hi[q] = win[0].max(win[1]).max(win[2]);
        lo[q] = win[0].min(win[1]).min(win[2]);
    }
    let mut out = [[0.0f32; 16]; POOLED];
    for (o, (&h, &l)) in out.iter_mut().zip(hi.iter().zip(&lo)) {
        for ((v, &wt), &b) in o.iter_mut().zip(&w.l1_weight).zip(&w.l1_bias) {
            let r = if wt >= 0.0 { h } else { l };
            // The ReLU: earshot's pool starts from zero.
            *v = ((r * wt) + b).max(0.0);
        }
    }
    out
}

/// Mel bands less the depthwise kernel's edges: layer 1's columns before pooling.
const DW: usize = N_MELS - 2;
/// Layer 1's columns after its 3/2 max-pool.
const POOLED: usize = (DW - 3) / 2 + 1;

/// Depthwise 1x3 (stride 2, padding 1) then pointwise 16x16 (`pointwise_t[in][out]`) at
/// output column `ox` of the input columns (`[column][channel]`).
#[inline(always)]
fn dw_pw(
    input: &[[f32; 16]],
    kernel_t: &[[f32; 16]; 3],
    pointwise_t: &[[f32; 16]; 16],
    ox: usize,
) -> [f32; 16] {
    // Each channel sums its taps in earshot's order (kw = 0, 1, 2, skipping the padding);
    // channels are independent lanes of one column, so this is a few vector operations.
    let mut dw = [0.0f32; 16];
    for (kw, taps) in kernel_t.iter().enumerate() {
        let Some(col) = (ox * 2 + kw).checked_sub(1).and_then(|ix| input.get(ix)) else {
            continue;
        };
        for ((d, &k), &x) in dw.iter_mut().zip(taps).zip(col) {
            *d += x * k;
        }
    }
    // Each output channel sums over input channels 0..16 in earshot's order; the 16 output
    // channels are independent lanes (weights stored transposed), so this vectorises.
    let mut out = [0.0f32; 16];
    for (&d, col) in dw.iter().zip(pointwise_t) {
        for (o, &wt) in out.iter_mut().zip(col) {
            *o += d * wt;
        }
    }
    out
}

/// `[column][channel]`, with bias and ReLU.
#[inline(always)]
fn layer2(w: &Weights, input: &[[f32; 16]; POOLED]) -> [[f32; 16]; 9] {
    let mut out = [[0.0f32; 16]; 9];
    for (ox, o) in out.iter_mut().enumerate() {
        let pw = dw_pw(input, &w.l2_kernel_t, &w.l2_weight_t, ox);
        for ((v, &p), &b) in o.iter_mut().zip(&pw).zip(&w.l2_bias) {
            *v = (p + b).max(0.0);
        }
    }
    out
}

/// `[column * 16 + channel]` in Q15, no bias or ReLU.
#[inline(always)]
fn layer3(w: &Weights, input: &[[f32; 16]; 9]) -> [i16; 80] {
    let mut out = [0i16; 80];
    for (ox, o) in out.chunks_exact_mut(16).enumerate() {
        let pw = dw_pw(input, &w.l3_kernel_t, &w.l3_weight_t, ox);
        for (q, &v) in o.iter_mut().zip(&pw) {
            *q = (v * 32768.0).round().clamp(-32768.0, 32767.0) as i16;
        }
    }
    out
}

/// `temp[r] = weight[r] . x` with wrapping i32 arithmetic (Q15 * Q9 = Q24; wrapping like
/// earshot's release build, never reached in practice).
#[inline(always)]
fn row_sums<const IN: usize>(x: &[i16; IN], weight: &[[i16; IN]; 128], temp: &mut [i32; 128]) {
    for (t, row) in temp.iter_mut().zip(weight) {
        *t = row
            .iter()
            .zip(x)
            .fold(0i32, |acc, (&w, &v)| acc.wrapping_add(w as i32 * v as i32));
    }
}

/// [`row_sums`] with rows as lanes: for each input pair, one `vpmaddwd` per eight rows
/// (`w[r][2p] * x[2p] + w[r][2p + 1] * x[2p + 1]`, wrapping) added to the rows' sums, so no
/// row needs a horizontal reduction (those were most of the layer's time). Sums mod 2^32 in
/// any order are the same, so the result equals [`row_sums`] exactly.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn row_sums_avx2<const IN: usize, const P: usize>(
    x: &[i16; IN],
    pairs: &[[i32; 128]; P],
    temp: &mut [i32; 128],
) {
    use std::arch::x86_64::*;
    debug_assert_eq!(IN, 2 * P);
    // Two halves of 64 rows: eight accumulators each stay in registers.
    for half in 0..2 {
        let mut acc = [_mm256_setzero_si256(); 8];
        for (p, col) in pairs.iter().enumerate() {
            let xv = _mm256_set1_epi32((x[2 * p] as u16 as i32) | ((x[2 * p + 1] as i32) << 16));
            let col = &col[half * 64..half * 64 + 64];
            for (j, a) in acc.iter_mut().enumerate() {
                // SAFETY: `col` holds 64 i32, so `8 * j + 8 <= 64`; unaligned loads.
                let w = _mm256_loadu_si256(col.as_ptr().add(8 * j) as *const __m256i);
                *a = _mm256_add_epi32(*a, _mm256_madd_epi16(w, xv));
            }
        }
        for (j, a) in acc.iter().enumerate() {
            // SAFETY: `temp` holds 128 i32 and `half * 64 + 8 * j + 8 <= 128`.
            _mm256_storeu_si256(temp.as_mut_ptr().add(half * 64 + 8 * j) as *mut __m256i, *a);
        }
    }
}

/// One minGRU layer in fixed point (earshot's arithmetic, exactly). `pairs` is `weight`
/// in the AVX2 kernel's layout (`P = IN / 2`).
#[inline(always)]
fn mingru<const IN: usize, const P: usize, const AVX2: bool>(
    x: &[i16; IN],
    h: &mut [i16; 64],
    weight: &[[i16; IN]; 128],
    pairs: &[[i32; 128]; P],
) {
    let mut temp = [0i32; 128];
    #[cfg(target_arch = "x86_64")]
    if AVX2 {
        // SAFETY: `AVX2` is set only by `Engine::predict_avx2`, which runs on AVX2 CPUs.
        unsafe { row_sums_avx2(x, pairs, &mut temp) };
    } else {
        row_sums(x, weight, &mut temp);
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = pairs;
        row_sums(x, weight, &mut temp);
    }
    for i in 0..64 {
        // The gate is multiplied by 4 then clamped within [0, 1] in Q24.
        let g = (temp[64 + i] << 2).clamp(0, 16_777_215) as i64;
        let y = (16_777_215 - g) * ((h[i] as i64) << 9) + g * temp[i] as i64; // Q48
        h[i] = (y >> 33).clamp(-32768, 32767) as i16; // back to Q15
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::rng::{xorshift, XorShift};

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
    fn ln_is_within_an_ulp() {
        // Every binade from 1e-20 (the engine's floor) to 1e12, many mantissas in each.
        let mut worst = 0.0f64;
        let mut x = 1e-20f32;
        while x < 1e12 {
            for k in 0..97 {
                let v = x * (1.0 + k as f32 / 97.0);
                let want = (v as f64).ln();
                let ulp = (want.abs() as f32).max(f32::MIN_POSITIVE);
                let ulp = (f32::from_bits(ulp.to_bits() + 1) - ulp) as f64;
                worst = worst.max((ln(v) as f64 - want).abs() / ulp);
            }
            x *= 2.0;
        }
        // Around 1, where the logarithm is near zero and relative error is hardest.
        for k in -3000..3000 {
            let v = 1.0 + k as f32 * 2f32.powi(-22);
            let want = (v as f64).ln();
            let ulp = (want.abs() as f32).max(f32::MIN_POSITIVE);
            let ulp = (f32::from_bits(ulp.to_bits() + 1) - ulp) as f64;
            worst = worst.max((ln(v) as f64 - want).abs() / ulp);
        }
        assert!(worst <= 1.0, "worst error {worst} ulp");
        assert_eq!(ln(1.0), 0.0);
    }

    #[test]
    fn mel_bands_match_the_band_by_band_sum() {
        let mut s = 0x9e37_79b9_7f4a_7c15u64;
        for round in 0..200 {
            let mut power = [0.0f32; N_BINS];
            for p in power.iter_mut() {
                s = xorshift(s);
                // Wide dynamic range, exact zeros included.
                let u = (s >> 40) as f32 / (1u64 << 24) as f32;
                *p = if round % 7 == 0 && s % 3 == 0 {
                    0.0
                } else {
                    u.powi(8) * 1e6
                };
            }
            let ours = mel_bands(&power);
            #[cfg(target_arch = "x86_64")]
            if remotemedia_core::cpu::has_avx2() {
                // SAFETY: the CPU has AVX2.
                let gathered = unsafe { mel_bands_avx2(&power) };
                assert_eq!(gathered.map(f32::to_bits), ours.map(f32::to_bits));
            }
            for (b, &(start, coeffs)) in filters::MEL_COEFFS.iter().enumerate() {
                let mut band = 0.0f32;
                for (p, c) in power[start..start + coeffs.len()].iter().zip(coeffs) {
                    band += p * c;
                }
                assert_eq!(ours[b].to_bits(), band.to_bits(), "band {b}");
            }
        }
    }

    /// The log mel energies `Engine::predict` computes, for `frames` of the node's dither
    /// alone (digital silence as the engine sees it).
    fn dither_log_bands(frames: usize) -> Vec<[f32; N_MELS]> {
        let mut dither = Dither::new();
        let mut spectrum = PowerSpectrum::new();
        let (mut ring, mut prev) = ([0.0f32; WINDOW_SIZE], 0.0f32);
        (0..frames)
            .map(|_| {
                let mut frame = [0.0f32; FRAME];
                dither.frame(&mut frame);
                ring.copy_within(FRAME.., 0);
                for (e, &s) in ring[WINDOW_SIZE - FRAME..].iter_mut().zip(&frame) {
                    let s = s * 32768.0;
                    *e = s - PRE_EMPHASIS_COEFF * prev;
                    prev = s;
                }
                let input = spectrum.input();
                for ((o, &x), &h) in input.iter_mut().zip(&ring).zip(&filters::HANN_WINDOW) {
                    *o = x * h;
                }
                input[WINDOW_SIZE..].fill(0.0);
                let mut power = [0.0f32; N_BINS];
                spectrum.power::<false>(POWER_FAC, &mut power);
                mel_bands(&power).map(|b| ln(b + 1e-20))
            })
            .collect()
    }

    #[test]
    fn the_narrow_band_floor_is_the_dither_s_mean_log_energy() {
        // The expected floor against what the engine measures on the dither alone: the mean
        // of a log lies a little below the log of the mean (up to ~1.2 dB in the narrowest,
        // most variable bands), never above it.
        let frames = dither_log_bands(3000);
        let r = narrow_ref();
        let db = 10.0 / std::f32::consts::LN_10;
        for k in 0..N_MELS {
            let mean = frames[2..].iter().map(|f| f[k]).sum::<f32>() / (frames.len() - 2) as f32;
            let below = (r.floor[k] - mean) * db;
            assert!(
                (0.0..1.5).contains(&below),
                "band {k}: {below} dB below the floor"
            );
        }
        // (carried, above) of 8, 11.025 and 12 kHz.
        let bands: Vec<(usize, usize)> = r.cliffs.iter().map(|c| (c.carried, c.above)).collect();
        assert_eq!(bands, [(28, 32), (33, 36), (34, 38)]);
        // Dither alone is no evidence either way: it never turns the fill on.
        let mut n = NarrowBand::default();
        assert!(frames.iter().all(|f| n.carried(f) == N_MELS));
    }

    #[test]
    fn the_narrow_band_fill_needs_a_cliff_at_4_khz_and_stops_at_the_first_wide_frame() {
        let r = narrow_ref();
        // Log energies `lift` dB over the floor in bands [from, to), the floor elsewhere.
        let frame = |from: usize, to: usize, lift: f32| -> [f32; N_MELS] {
            std::array::from_fn(|k| {
                let up = if (from..to).contains(&k) { lift } else { 0.0 };
                r.floor[k] + up * std::f32::consts::LN_10 / 10.0
            })
        };
        let telephone = frame(2, 28, 40.0);
        let full_band = frame(2, N_MELS, 40.0);
        let hum = frame(0, 12, 40.0); // low-pass, nothing just below 3.4 kHz
        let mut n = NarrowBand::default();
        for i in 1..NARROW_AFTER {
            assert_eq!(n.carried(&telephone), N_MELS, "evidence frame {i}");
        }
        assert_eq!(n.carried(&telephone), 28);
        // Silence in between keeps it on.
        assert_eq!(n.carried(&frame(0, 0, 0.0)), 28);
        // One frame with energy above 4 kHz: off at once, and the count starts again.
        assert_eq!(n.carried(&full_band), N_MELS);
        for _ in 1..NARROW_AFTER {
            assert_eq!(n.carried(&telephone), N_MELS);
        }
        assert_eq!(n.carried(&telephone), 28);
        // A little energy above 4 kHz (between EMPTY_DB and WIDE_DB) is neither.
        let mut m = NarrowBand::default();
        let faint = {
            let mut f = telephone;
            f[35] += 9.0 * std::f32::consts::LN_10 / 10.0;
            f
        };
        for _ in 0..100 {
            assert_eq!(m.carried(&faint), N_MELS);
        }
        // Low-pass noise without a cliff, full-band audio: never.
        for f in [hum, full_band] {
            let mut m = NarrowBand::default();
            assert!((0..100).all(|_| m.carried(&f) == N_MELS));
        }
    }

    #[test]
    fn the_narrow_band_fill_finds_11_and_12_khz_cliffs_and_takes_the_lowest_rate() {
        let r = narrow_ref();
        let frame = |to: usize| -> [f32; N_MELS] {
            std::array::from_fn(|k| {
                let up = if (2..to).contains(&k) { 40.0 } else { 0.0 };
                r.floor[k] + up * std::f32::consts::LN_10 / 10.0
            })
        };
        // Signal through the transition band of each rate (up to its Nyquist band), the floor
        // above: 8 kHz (bands 28..32 straddle 3.6-4 kHz), 11.025 kHz, 12 kHz.
        for (to, want) in [(30, 28), (35, 33), (37, 34)] {
            let f = frame(to);
            let mut n = NarrowBand::default();
            let got: Vec<usize> = (0..NARROW_AFTER).map(|_| n.carried(&f)).collect();
            assert!(
                got[..got.len() - 1].iter().all(|&c| c == N_MELS),
                "{to}: {got:?}"
            );
            assert_eq!(got[got.len() - 1], want, "signal in bands 2..{to}");
        }
        // 12 kHz audio turns the 11.025 kHz count off (energy above 5.5 kHz), and 8 kHz audio
        // after it gives the 8 kHz fill (the lowest rate with its count) at once when it has
        // its eight frames.
        let mut n = NarrowBand::default();
        for _ in 0..NARROW_AFTER {
            n.carried(&frame(37));
        }
        assert_eq!(n.carried(&frame(37)), 34);
        let got: Vec<usize> = (0..NARROW_AFTER).map(|_| n.carried(&frame(30))).collect();
        assert_eq!(got[got.len() - 1], 28, "{got:?}");
        // A full-band frame turns every fill off.
        assert_eq!(n.carried(&frame(N_MELS)), N_MELS);
        assert_eq!(n.carried(&frame(30)), N_MELS);
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
