//! The gate's floors: the mean of the last three frames' values and the minimum of that over
//! the last 2 s (the noise floor of the energy, the floor of the voicing).

use std::collections::VecDeque;

/// Noise-floor window: the minimum frame energy over the last 2 s (125 frames of 16 ms),
/// longer than a pause-free stretch of speech, short enough to follow a change of noise.
const FLOOR_FRAMES: usize = 125;

/// The mean of the last 3 values pushed (48 ms of frames). The first value stands for the
/// frames before it: no ramp up from zeros at the start, which would set a floor far too low.
#[derive(Debug, Default)]
pub(super) struct Mean3 {
    last: Option<[f32; 3]>,
}

impl Mean3 {
    pub(super) fn push(&mut self, v: f32) -> f32 {
        let last = self.last.get_or_insert([v; 3]);
        last.rotate_left(1);
        last[2] = v;
        last.iter().sum::<f32>() / 3.0
    }
}

/// The minimum of the last [`FLOOR_FRAMES`] values pushed, the current one included: a
/// sliding-window minimum (the candidates in increasing order, each with its index, so a push
/// is amortised O(1) instead of a scan of the window; the minimum is one of the values, so
/// it is exact whichever way it is found).
#[derive(Debug, Default)]
pub(super) struct Floor {
    candidates: VecDeque<(u64, f32)>,
    pushed: u64,
}

impl Floor {
    pub(super) fn push(&mut self, v: f32) -> f32 {
        let i = self.pushed;
        self.pushed += 1;
        // A value at least `v` can never be the minimum again while `v` is in the window.
        while self.candidates.back().is_some_and(|&(_, b)| b >= v) {
            self.candidates.pop_back();
        }
        self.candidates.push_back((i, v));
        while self
            .candidates
            .front()
            .is_some_and(|&(j, _)| j + FLOOR_FRAMES as u64 <= i)
        {
            self.candidates.pop_front();
        }
        self.candidates.front().map_or(v, |&(_, m)| m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::rng::XorShift;

    #[test]
    fn floor_is_the_minimum_of_the_window() {
        let mut rng = XorShift(7);
        let mut floor = Floor::default();
        let mut seen = Vec::new();
        for i in 0..2000 {
            // Runs of repeats and long monotone stretches as well as noise.
            let v = match i / 300 % 3 {
                0 => (rng.next() * 8.0).round(),
                1 => -(i as f32),
                _ => i as f32 * 0.5 + rng.next(),
            };
            seen.push(v);
            let window = &seen[seen.len().saturating_sub(FLOOR_FRAMES)..];
            let want = window.iter().copied().fold(f32::INFINITY, f32::min);
            assert_eq!(floor.push(v).to_bits(), want.to_bits(), "push {i}");
        }
    }
}
