//! The front of `SpeechVADNode`'s gate: the engine's dither ([`Dither`], defined with the
//! network it is for) added to every engine sample, and the three biquad sections every sample
//! goes through (the 150 Hz high-pass whose energy gates the network, then the two sections of
//! the 1 kHz low-pass that make the voicing band).
//!
//! Run one after another, each section's feedback is a chain of dependent multiplies and adds
//! and each section waits for the one before it: about 20 cycles a sample, most of the node's
//! time outside the network. Here the three sections are the lanes of one vector (a fourth
//! lane idles with zero coefficients), skewed by [`SKEW`] samples each: at step `n` lane `k`
//! works on sample `n - SKEW * k`, so its input is lane `k - 1`'s output from `SKEW` steps
//! earlier (already in the state as `y2`) and every step is one vector of each operation. The
//! first and last `SKEW * 2` steps of a frame, where not every lane has a sample, run lane by
//! lane with the same expression, so a frame ends with every section at the frame's end and a
//! stream can stop after any frame.
//!
//! Each lane is a direct form I biquad in f64 evaluated as
//! `y = (b0 x + ((b1 x1 + b2 x2) - a2 y2)) - a1 y1`: the feedback through `y1` is one
//! multiply and one subtract, and the other paths have a step or two of slack. No fused
//! multiply-add (Rust never fuses on its own), so the AVX2 build and the portable build give
//! the same bits, and so do the vector and the lane-by-lane steps.

use super::vad_engine::{Dither, FRAME};
use crate::dsp::biquad::Section;

/// Lanes of the vector: the high-pass, the two low-pass sections, one idle lane.
const LANES: usize = 4;
/// Samples between neighbouring lanes.
const SKEW: usize = 2;
/// Steps of a frame in which a lane has no sample (at the start for the later lanes, at the
/// end for the earlier ones).
const EDGE: usize = SKEW * 2;
/// The voicing band keeps every `DECIMATE`th sample (the last of each group).
pub(crate) const DECIMATE: usize = 4;

const _: () = assert!(FRAME % DECIMATE == 0 && EDGE % DECIMATE == 0 && EDGE < FRAME);

/// The gate's three sections and their state (one stream).
#[derive(Debug, Clone, Copy)]
pub(crate) struct GateFilters {
    b0: [f64; LANES],
    b1: [f64; LANES],
    b2: [f64; LANES],
    a1: [f64; LANES],
    a2: [f64; LANES],
    /// Each lane's last two inputs and outputs.
    x1: [f64; LANES],
    x2: [f64; LANES],
    y1: [f64; LANES],
    y2: [f64; LANES],
}

impl GateFilters {
    /// The high-pass section, then the low-pass sections, in series; zero state.
    pub(crate) fn new(high_pass: Section, low_pass: [Section; 2]) -> Self {
        let mut f = Self {
            b0: [0.0; LANES],
            b1: [0.0; LANES],
            b2: [0.0; LANES],
            a1: [0.0; LANES],
            a2: [0.0; LANES],
            x1: [0.0; LANES],
            x2: [0.0; LANES],
            y1: [0.0; LANES],
            y2: [0.0; LANES],
        };
        for (k, s) in [high_pass, low_pass[0], low_pass[1]].iter().enumerate() {
            [f.b0[k], f.b1[k], f.b2[k]] = s.b;
            [f.a1[k], f.a2[k]] = s.a;
        }
        f
    }

    /// One sample through lane `k` alone.
    #[inline(always)]
    fn lane(&mut self, k: usize, x: f64) -> f64 {
        let y = (self.b0[k] * x
            + ((self.b1[k] * self.x1[k] + self.b2[k] * self.x2[k]) - self.a2[k] * self.y2[k]))
            - self.a1[k] * self.y1[k];
        self.x2[k] = self.x1[k];
        self.x1[k] = x;
        self.y2[k] = self.y1[k];
        self.y1[k] = y;
        y
    }

    /// One step of every lane: `x0` into the high-pass, each later lane fed the output of
    /// the lane before it from [`SKEW`] steps ago.
    #[inline(always)]
    fn step(&mut self, x0: f64) -> [f64; LANES] {
        let x = [x0, self.y2[0], self.y2[1], self.y2[2]];
        let mut y = [0.0; LANES];
        for k in 0..LANES {
            y[k] = (self.b0[k] * x[k]
                + ((self.b1[k] * self.x1[k] + self.b2[k] * self.x2[k]) - self.a2[k] * self.y2[k]))
                - self.a1[k] * self.y1[k];
        }
        self.x2 = self.x1;
        self.x1 = x;
        self.y2 = self.y1;
        self.y1 = y;
        y
    }

    /// One engine frame: dithers and clamps each sample in place (see [`Dither::frame`]),
    /// returns the sum of squares of the high-pass output, and writes the voicing band (the
    /// low-pass output) at every [`DECIMATE`]th sample, the last of each group, to `voice`.
    pub(crate) fn frame(
        &mut self,
        frame: &mut [f32; FRAME],
        dither: &mut Dither,
        voice: &mut [f32; FRAME / DECIMATE],
    ) -> f64 {
        dither.frame(frame);
        #[cfg(target_arch = "x86_64")]
        if remotemedia_core::cpu::has_avx2() {
            // SAFETY: the CPU has AVX2 (checked at run time).
            return unsafe { self.frame_avx2(frame, voice) };
        }
        self.frame_any(frame, voice, Self::busy_portable)
    }

    /// [`GateFilters::frame`] with the lanes in one AVX2 register (same operations, same bits).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn frame_avx2(
        &mut self,
        frame: &[f32; FRAME],
        voice: &mut [f32; FRAME / DECIMATE],
    ) -> f64 {
        self.frame_any(frame, voice, |f, rest, voice, energy| {
            // SAFETY: this function runs only with AVX2 enabled.
            unsafe { f.busy_avx2(rest, voice, energy) }
        })
    }

    /// A frame: the lane-by-lane steps at its edges around `busy`, the steps in which every
    /// lane has a sample.
    #[inline(always)]
    fn frame_any(
        &mut self,
        frame: &[f32; FRAME],
        voice: &mut [f32; FRAME / DECIMATE],
        busy: impl FnOnce(&mut Self, &[f32], &mut [f32], &mut f64),
    ) -> f64 {
        // Locals for the frame: the state stays in registers.
        let mut f = *self;
        let mut energy = 0.0f64;
        let (head, rest) = frame.split_at(EDGE);
        // The first steps: lane k starts at step SKEW * k.
        for (n, &x) in head.iter().enumerate() {
            let inputs = [f.y2[0], f.y2[1]];
            let y = f.lane(0, x as f64);
            energy += y * y;
            for k in 1..LANES - 1 {
                if n >= SKEW * k {
                    f.lane(k, inputs[k - 1]);
                }
            }
        }
        let (last, busy_voice) = voice.split_last_mut().expect("a frame has voice samples");
        busy(&mut f, rest, busy_voice, &mut energy);
        // The last steps: lane k ends at step FRAME - 1 + SKEW * k. A lane that has
        // stopped no longer shifts its outputs, so the sample the next lane needs moves
        // from `y2` to `y1` one step after it stops.
        for n in FRAME..FRAME + EDGE {
            let fed = |f: &GateFilters, k: usize| {
                // Lane k - 1 stopped after step FRAME - 1 + SKEW * (k - 1).
                if n > FRAME + SKEW * (k - 1) {
                    f.y1[k - 1]
                } else {
                    f.y2[k - 1]
                }
            };
            let inputs = [fed(&f, 1), fed(&f, 2)];
            for k in 1..LANES - 1 {
                if n < FRAME + SKEW * k {
                    let y = f.lane(k, inputs[k - 1]);
                    if k == LANES - 2 && n == FRAME + EDGE - 1 {
                        *last = y as f32;
                    }
                }
            }
        }
        *self = f;
        energy
    }

    /// The steps in which every lane has a sample, over `rest` (the frame after its first
    /// [`EDGE`] samples). The last lane's sample at step `n` is `n - EDGE`, so each group of
    /// [`DECIMATE`] steps ends on a sample the voicing band keeps.
    #[inline(always)]
    fn busy_portable(f: &mut Self, rest: &[f32], voice: &mut [f32], energy: &mut f64) {
        for (group, out) in rest.chunks_exact(DECIMATE).zip(voice.iter_mut()) {
            let mut y = [0.0; LANES];
            for &x in group {
                y = f.step(x as f64);
                *energy += y[0] * y[0];
            }
            *out = y[LANES - 2] as f32;
        }
    }

    /// [`GateFilters::busy_portable`] in AVX2 registers: `step`'s operations, lane for lane
    /// in the same order (LLVM's own vectorisation of `step` mixed 128-bit halves and
    /// scalars and kept little of the gain).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn busy_avx2(&mut self, rest: &[f32], voice: &mut [f32], energy: &mut f64) {
        use std::arch::x86_64::*;
        let load = |a: &[f64; LANES]| _mm256_loadu_pd(a.as_ptr());
        let (b0, b1, b2, a1, a2) = (
            load(&self.b0),
            load(&self.b1),
            load(&self.b2),
            load(&self.a1),
            load(&self.a2),
        );
        let (mut x1, mut x2, mut y1, mut y2) = (
            load(&self.x1),
            load(&self.x2),
            load(&self.y1),
            load(&self.y2),
        );
        let mut acc = *energy;
        for (group, out) in rest.chunks_exact(DECIMATE).zip(voice.iter_mut()) {
            let mut y = y1;
            for &x in group {
                let x0 = x as f64;
                // [x0, y2[0], y2[1], y2[2]]
                let x = _mm256_blend_pd::<0b0001>(
                    _mm256_permute4x64_pd::<0b10_01_00_00>(y2),
                    _mm256_set1_pd(x0),
                );
                let t = _mm256_sub_pd(
                    _mm256_add_pd(_mm256_mul_pd(b1, x1), _mm256_mul_pd(b2, x2)),
                    _mm256_mul_pd(a2, y2),
                );
                y = _mm256_sub_pd(
                    _mm256_add_pd(_mm256_mul_pd(b0, x), t),
                    _mm256_mul_pd(a1, y1),
                );
                x2 = x1;
                x1 = x;
                y2 = y1;
                y1 = y;
                let h = _mm256_cvtsd_f64(y);
                acc += h * h;
            }
            let mut lanes = [0.0; LANES];
            _mm256_storeu_pd(lanes.as_mut_ptr(), y);
            *out = lanes[LANES - 2] as f32;
        }
        *energy = acc;
        let store = |v: __m256d, a: &mut [f64; LANES]| _mm256_storeu_pd(a.as_mut_ptr(), v);
        store(x1, &mut self.x1);
        store(x2, &mut self.x2);
        store(y1, &mut self.y1);
        store(y2, &mut self.y2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::vad_engine::{DITHER, DITHER_LANES};
    use crate::dsp::biquad::{butterworth, Pass};
    use crate::dsp::rng::{signed_unit, xorshift, XorShift};

    fn filters() -> GateFilters {
        let lp = butterworth(Pass::Low, 4, 1000.0, 16_000);
        GateFilters::new(butterworth(Pass::High, 2, 150.0, 16_000)[0], [lp[0], lp[1]])
    }

    /// The sections one after another, sample by sample, in the lanes' own expression.
    fn reference(input: &[f32]) -> (Vec<f32>, Vec<f64>, Vec<f64>) {
        let mut f = filters();
        // The dither by its definition: sample i from generator i % 8.
        let mut lanes = Dither::new().lanes();
        let (mut dithered, mut high, mut voice) = (Vec::new(), Vec::new(), Vec::new());
        for (i, &v) in input.iter().enumerate() {
            let s = &mut lanes[i % DITHER_LANES];
            *s = xorshift(*s);
            let x = (v + signed_unit(*s) * DITHER).clamp(-1.0, 1.0);
            dithered.push(x);
            let h = f.lane(0, x as f64);
            high.push(h);
            let l = f.lane(1, h);
            voice.push(f.lane(2, l));
        }
        (dithered, high, voice)
    }

    fn signal(n: usize) -> Vec<f32> {
        let mut r = XorShift(3);
        (0..n)
            .map(|i| {
                0.5 * (i as f32 * 0.07).sin()
                    + 0.3 * r.next()
                    + if i % 997 == 0 { 4.0 } else { 0.0 }
            })
            .collect()
    }

    #[test]
    fn frames_match_the_sections_one_after_another() {
        let input = signal(FRAME * 9);
        let (dithered, high, voice) = reference(&input);
        let mut f = filters();
        let mut d = Dither::new();
        for (i, chunk) in input.chunks_exact(FRAME).enumerate() {
            let mut frame: [f32; FRAME] = chunk.try_into().unwrap();
            let mut out = [0.0; FRAME / DECIMATE];
            let energy = f.frame(&mut frame, &mut d, &mut out);
            let at = i * FRAME;
            assert_eq!(
                &frame[..],
                &dithered[at..at + FRAME],
                "frame {i}: dithered input"
            );
            let want: f64 = high[at..at + FRAME].iter().fold(0.0, |a, y| a + y * y);
            assert_eq!(energy.to_bits(), want.to_bits(), "frame {i}: energy");
            for (j, &o) in out.iter().enumerate() {
                let want = voice[at + j * DECIMATE + DECIMATE - 1] as f32;
                assert_eq!(o.to_bits(), want.to_bits(), "frame {i}: voice {j}");
            }
        }
    }

    #[test]
    fn the_portable_build_gives_the_same_bits() {
        let input = signal(FRAME * 4);
        let (mut a, mut b) = (filters(), filters());
        let (mut da, mut db) = (Dither::new(), Dither::new());
        for chunk in input.chunks_exact(FRAME) {
            let mut fa: [f32; FRAME] = chunk.try_into().unwrap();
            let mut fb = fa;
            let (mut va, mut vb) = ([0.0; FRAME / DECIMATE], [0.0; FRAME / DECIMATE]);
            let ea = a.frame(&mut fa, &mut da, &mut va);
            db.frame_any(&mut fb);
            let eb = b.frame_any(&fb, &mut vb, GateFilters::busy_portable);
            assert_eq!(ea.to_bits(), eb.to_bits());
            assert_eq!(fa, fb);
            assert_eq!(va, vb);
        }
    }

    #[test]
    fn the_high_pass_removes_dc_and_the_low_pass_keeps_it() {
        // A constant input: the high-pass output decays to 0 and so does everything after it.
        let mut f = filters();
        let mut d = Dither::new();
        let mut out = [0.0; FRAME / DECIMATE];
        let mut energy = 0.0;
        for _ in 0..200 {
            let mut frame = [0.5; FRAME];
            energy = f.frame(&mut frame, &mut d, &mut out);
        }
        // Only the dither's (1 LSB) energy is left.
        assert!(energy < 1e-6, "{energy}");
        assert!(out.iter().all(|v| v.abs() < 1e-4), "{out:?}");
    }
}
