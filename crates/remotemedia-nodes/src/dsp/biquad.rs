//! Biquad filters: section design (Butterworth cascades; the RBJ "Audio EQ Cookbook" types)
//! and a per-channel cascade that runs in f64 with state carried across chunks. Used by the
//! filter nodes, the loudness meter's weighting and the VAD gate.
//!
//! A Butterworth filter of order N is N/2 second-order sections with the Butterworth pole
//! Qs, `Q_k = 1 / (2 sin((2k + 1) pi / 2N))`, plus one first-order section when N is odd.
//! Each section is the bilinear transform of its analog prototype with the cutoff prewarped,
//! which is exactly how `scipy.signal.butter` designs, so the magnitude responses agree.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::f64::consts::PI;

/// One normalised biquad section (`a0 = 1`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Section {
    /// Feed-forward coefficients.
    pub b: [f64; 3],
    /// Feedback coefficients `a1`, `a2`.
    pub a: [f64; 2],
}

impl Section {
    fn new(b0: f64, b1: f64, b2: f64, a0: f64, a1: f64, a2: f64) -> Self {
        Self {
            b: [b0 / a0, b1 / a0, b2 / a0],
            a: [a1 / a0, a2 / a0],
        }
    }
}

/// Which side of the cutoff a Butterworth filter keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// Keeps frequencies below the cutoff.
    Low,
    /// Keeps frequencies above the cutoff.
    High,
}

/// A Butterworth design as biquad sections (see module docs).
pub fn butterworth(pass: Pass, order: u8, cutoff_hz: f64, rate: u32) -> Vec<Section> {
    let n = order as usize;
    let w0 = 2.0 * PI * cutoff_hz / rate as f64;
    let mut sections = Vec::with_capacity(n.div_ceil(2));
    for k in 0..n / 2 {
        let q = 1.0 / (2.0 * ((2 * k + 1) as f64 * PI / (2 * n) as f64).sin());
        let kind = match pass {
            Pass::Low => BiquadType::Lowpass,
            Pass::High => BiquadType::Highpass,
        };
        sections.push(rbj(kind, w0, q, 0.0));
    }
    if n % 2 == 1 {
        let k = (w0 / 2.0).tan();
        sections.push(match pass {
            Pass::Low => Section::new(k, k, 0.0, 1.0 + k, k - 1.0, 0.0),
            Pass::High => Section::new(1.0, -1.0, 0.0, 1.0 + k, k - 1.0, 0.0),
        });
    }
    sections
}

/// An RBJ cookbook section at normalised frequency `w0` (radians per sample).
pub fn rbj(kind: BiquadType, w0: f64, q: f64, gain_db: f64) -> Section {
    let (sin, cos) = w0.sin_cos();
    let alpha = sin / (2.0 * q);
    let a = 10f64.powf(gain_db / 40.0);
    let sa = 2.0 * a.sqrt() * alpha;
    match kind {
        BiquadType::Lowpass => Section::new(
            (1.0 - cos) / 2.0,
            1.0 - cos,
            (1.0 - cos) / 2.0,
            1.0 + alpha,
            -2.0 * cos,
            1.0 - alpha,
        ),
        BiquadType::Highpass => Section::new(
            (1.0 + cos) / 2.0,
            -(1.0 + cos),
            (1.0 + cos) / 2.0,
            1.0 + alpha,
            -2.0 * cos,
            1.0 - alpha,
        ),
        BiquadType::Bandpass => {
            Section::new(alpha, 0.0, -alpha, 1.0 + alpha, -2.0 * cos, 1.0 - alpha)
        }
        BiquadType::Notch => {
            Section::new(1.0, -2.0 * cos, 1.0, 1.0 + alpha, -2.0 * cos, 1.0 - alpha)
        }
        BiquadType::Allpass => Section::new(
            1.0 - alpha,
            -2.0 * cos,
            1.0 + alpha,
            1.0 + alpha,
            -2.0 * cos,
            1.0 - alpha,
        ),
        BiquadType::Peaking => Section::new(
            1.0 + alpha * a,
            -2.0 * cos,
            1.0 - alpha * a,
            1.0 + alpha / a,
            -2.0 * cos,
            1.0 - alpha / a,
        ),
        BiquadType::Lowshelf => Section::new(
            a * ((a + 1.0) - (a - 1.0) * cos + sa),
            2.0 * a * ((a - 1.0) - (a + 1.0) * cos),
            a * ((a + 1.0) - (a - 1.0) * cos - sa),
            (a + 1.0) + (a - 1.0) * cos + sa,
            -2.0 * ((a - 1.0) + (a + 1.0) * cos),
            (a + 1.0) + (a - 1.0) * cos - sa,
        ),
        BiquadType::Highshelf => Section::new(
            a * ((a + 1.0) + (a - 1.0) * cos + sa),
            -2.0 * a * ((a - 1.0) + (a + 1.0) * cos),
            a * ((a + 1.0) + (a - 1.0) * cos - sa),
            (a + 1.0) - (a - 1.0) * cos + sa,
            2.0 * ((a - 1.0) - (a + 1.0) * cos),
            (a + 1.0) - (a - 1.0) * cos - sa,
        ),
    }
}

/// A cascade of sections with per-channel state.
#[derive(Debug)]
pub struct Cascade {
    sections: Vec<Section>,
    /// `state[section * channels + channel]`: `[x1, x2, y1, y2]`, the section's last two
    /// inputs and outputs.
    state: Vec<[f64; 4]>,
    channels: usize,
}

impl Cascade {
    /// A cascade of `sections` for `channels` interleaved channels, at rest.
    pub fn new(sections: Vec<Section>, channels: usize) -> Self {
        let state = vec![[0.0; 4]; sections.len() * channels];
        Self {
            sections,
            state,
            channels,
        }
    }

    /// Filters interleaved samples in place, channel by channel, every section per sample.
    /// Running all sections in one loop lets the CPU overlap the sections' recursions (each
    /// alone is latency-bound); the arithmetic per sample is the same in any chunking.
    pub fn run(&mut self, v: &mut [f64]) {
        match self.sections.len() {
            1 => self.run_n::<1>(v),
            2 => self.run_n::<2>(v),
            3 => self.run_n::<3>(v),
            _ => self.run_n::<4>(v),
        }
    }

    /// Direct form I, `y = b0 x + b1 x1 + b2 x2 - a2 y2 - a1 y1`, summed in that order: only
    /// the last multiply-subtract waits for the previous output, so the loop-carried chain is
    /// one multiply and one subtraction per sample (transposed direct form II chains an add,
    /// a multiply and an add: 3.3 against 1.6 ns per sample for one section in isolation,
    /// see docs/benchmarks.md).
    /// In f64 the forms agree to rounding; the state is f64 so low cutoffs (a 20 Hz high-pass
    /// at 192 kHz has poles 0.9993 from the unit circle) keep their precision.
    fn run_n<const N: usize>(&mut self, v: &mut [f64]) {
        debug_assert_eq!(self.sections.len(), N);
        let ch = self.channels;
        let secs: [Section; N] = std::array::from_fn(|s| self.sections[s]);
        for c in 0..ch {
            let mut z: [[f64; 4]; N] = std::array::from_fn(|s| self.state[s * ch + c]);
            let mut step = |x: &mut f64| {
                let mut u = *x;
                for (sec, z) in secs.iter().zip(z.iter_mut()) {
                    let [x1, x2, y1, y2] = *z;
                    let y = sec.b[0] * u + sec.b[1] * x1 + sec.b[2] * x2
                        - sec.a[1] * y2
                        - sec.a[0] * y1;
                    *z = [u, x1, y, y1];
                    u = y;
                }
                *x = u;
            };
            if ch == 1 {
                v.iter_mut().for_each(&mut step);
            } else {
                v.iter_mut().skip(c).step_by(ch).for_each(&mut step);
            }
            for (s, zs) in z.iter().enumerate() {
                self.state[s * ch + c] = *zs;
            }
        }
    }
}

/// RBJ cookbook filter types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BiquadType {
    /// 12 dB/octave low-pass; `q` sets the resonance (0.7071 is Butterworth).
    Lowpass,
    /// 12 dB/octave high-pass.
    Highpass,
    /// Band-pass with 0 dB peak gain; `q` sets the bandwidth.
    Bandpass,
    /// Notch (band-reject) at `freq_hz`.
    Notch,
    /// All-pass: flat magnitude, phase turns around `freq_hz`.
    Allpass,
    /// Peaking EQ: `gain_db` at `freq_hz`, bandwidth from `q`.
    Peaking,
    /// Low shelf: `gain_db` below `freq_hz`.
    Lowshelf,
    /// High shelf: `gain_db` above `freq_hz`.
    Highshelf,
}
