//! One frame through the built-in engine: the network's probability at the levelled gain,
//! counted only when the frame's energy or voicing stands out from its recent floor (the gate).

use std::collections::VecDeque;

use super::leveller::Leveller;
use super::noise_floor::{Floor, Mean3};
use super::voicing::{voicing, VOICE_HISTORY};
use super::{ENGINE_FRAME, ENGINE_RATE};
use crate::audio::vad_engine::{Dither, Engine};
use crate::audio::vad_gate::{GateFilters, DECIMATE as VOICE_DECIMATE};
use crate::dsp::biquad::{butterworth, Pass};

/// The energy gate measures energy above this frequency (chosen on the dev and held splits
/// over 100, 150 and 300 Hz; see docs/benchmarks.md).
const GATE_HIGHPASS_HZ: f64 = 150.0;
/// Voicing: the gate's high-passed signal is low-passed at this frequency (4th-order
/// Butterworth) and kept every [`VOICE_DECIMATE`]th sample (4 kHz).
const VOICE_LOWPASS_HZ: f64 = 1000.0;

const _: () = assert!(ENGINE_FRAME % VOICE_DECIMATE == 0);

/// One stream's state around the earshot network: its input's dither, the gate's filters and
/// floors, and the leveller.
#[derive(Debug)]
pub(super) struct EarshotGate {
    dither: Dither,
    /// The energy gate's high-pass and the voicing band's low-pass (see [`GateFilters`]), the
    /// mean power of the last 3 frames, and the floor of that energy in dB.
    gate: GateFilters,
    recent_power: Mean3,
    energy_floor: Floor,
    /// Voicing: the last [`VOICE_HISTORY`] decimated samples of the low-passed band, the mean
    /// voicing of the last 3 frames and its floor.
    voice_hist: VecDeque<f32>,
    recent_voicing: Mean3,
    voice_floor: Floor,
    leveller: Leveller,
}

impl EarshotGate {
    /// The state at the start of a stream.
    pub(super) fn new() -> Self {
        Self {
            dither: Dither::new(),
            energy_floor: Floor::default(),
            gate: GateFilters::new(
                butterworth(Pass::High, 2, GATE_HIGHPASS_HZ, ENGINE_RATE)[0],
                butterworth(Pass::Low, 4, VOICE_LOWPASS_HZ, ENGINE_RATE)
                    .try_into()
                    .expect("a 4th-order Butterworth is two sections"),
            ),
            recent_power: Mean3::default(),
            voice_hist: VecDeque::from(vec![0.0; VOICE_HISTORY]),
            recent_voicing: Mean3::default(),
            voice_floor: Floor::default(),
            leveller: Leveller::default(),
        }
    }

    /// The probability of the next engine frame (dithered and clamped in place first, see
    /// [`GateFilters::frame`]), or 0 when the gate holds it back: neither its energy is
    /// `min_snr_db` above the noise floor nor (with `min_voicing`) its voicing that far above
    /// the voicing floor. The network hears the frame levelled by at most `max_gain_db`.
    pub(super) fn score(
        &mut self,
        net: &mut Engine,
        frame: &mut [f32; ENGINE_FRAME],
        min_snr_db: f32,
        min_voicing: Option<f32>,
        max_gain_db: f32,
    ) -> f32 {
        // The network reads loud stationary noise as speech (white noise at
        // -10 dBFS scores about 0.7); a frame must also stand out from the recent
        // noise floor. Energy over the last 3 frames (48 ms, the network's own
        // window): a single 16 ms frame of coloured noise fluctuates by several
        // dB, which biases a minimum low.
        let energy_db = {
            // Energy above 150 Hz (2nd-order Butterworth high-pass): coloured noise
            // (pink, brown, mains hum) has much of its power in the lowest octaves,
            // where a 48 ms window holds few degrees of freedom (about 0.1 * f per
            // octave [f, 2f]: under 10 below 100 Hz), so its broadband energy
            // fluctuates by several dB and the floor (a minimum) sits far below it.
            // Above 150 Hz the energy is steadier and speech keeps nearly all of
            // its power (voice fundamentals from ~100 Hz).
            let mut dec = [0.0f32; ENGINE_FRAME / VOICE_DECIMATE];
            let acc = self.gate.frame(frame, &mut self.dither, &mut dec);
            if min_voicing.is_some() {
                self.voice_hist.drain(..dec.len());
                self.voice_hist.extend(dec);
            }
            let acc = acc as f32;
            let mean = self.recent_power.push(acc / ENGINE_FRAME as f32);
            10.0 * (mean + 1e-12).log10()
        };
        let frame: &[f32; ENGINE_FRAME] = frame;
        let prob =
            net.predict_levelled(frame, |level| self.leveller.gain(level, frame, max_gain_db));
        // Guard the documented range even if the network ever returned NaN.
        let prob = if prob.is_finite() {
            prob.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let floor = self.energy_floor.push(energy_db);
        let voiced = match min_voicing {
            None => false,
            Some(min) => {
                let h = voicing(self.voice_hist.make_contiguous());
                let mean = self.recent_voicing.push(h);
                mean - self.voice_floor.push(mean) >= min
            }
        };
        if energy_db - floor >= min_snr_db || voiced {
            prob
        } else {
            0.0
        }
    }
}
