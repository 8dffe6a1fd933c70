//! Inputs below 16 kHz, or upsampled from a lower rate: how many mel bands the audio carries,
//! and the bands above them given the top carried band's log energy.

use std::sync::OnceLock;

use super::{dither, filters, spectrum, N_BINS, N_MELS, POWER_FAC, PRE_EMPHASIS_COEFF, RATE};

/// How many of the mel bands (from the lowest) an input at `rate` carries: those wholly below
/// 90% of its Nyquist frequency; all of them from 16 kHz up. At least one.
pub(super) fn bands_carried(rate: u32) -> usize {
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
///
/// [`Engine::set_input_rate`]: super::Engine::set_input_rate
#[derive(Clone, Copy, Default)]
pub(super) struct NarrowBand {
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
    pub(super) fn carried(&mut self, log_bands: &[f32]) -> usize {
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
pub(super) fn extend_top_band(log_bands: &mut [f32], carried: usize) {
    if let Some(&top) = carried.checked_sub(1).and_then(|k| log_bands.get(k)) {
        log_bands[carried..].fill(top);
    }
}

#[cfg(test)]
mod tests {
    use super::super::mel::{ln, mel_bands};
    use super::super::spectrum::PowerSpectrum;
    use super::super::{Dither, FRAME, WINDOW_SIZE};
    use super::*;

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
}
