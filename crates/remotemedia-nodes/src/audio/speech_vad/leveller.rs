//! The levelling (`max_gain_db`): the gain each frame's features get so the network hears quiet
//! input louder and loud input quieter, following the loudest frame of the recent past.

use super::ENGINE_FRAME;

/// Levelling (`max_gain_db`), in the network's feature level (the mean log energy of a
/// frame's lowest 28 mel bands, those 8 kHz audio carries, in dB; see
/// `Engine::predict_levelled`). The network's decisions depend on the level, though its
/// features are normalised per frame (by their RMS, not their mean): 20 dB below the
/// benchmark's level its mean noisy F1 fell from 0.918 to 0.79, 30 dB below to 0.57, and
/// 12 dB above it took loud brown noise for speech (false alarms 0.81 of the time at 0 dB
/// SNR). So the loudest frame of the recent past is brought to [`LEVEL_TARGET`] (within the
/// range of the benchmark's loudest frames at its own level)...
pub(super) const LEVEL_TARGET: f32 = 2.0;
/// ...only cut when it is above this (loud input)...
const LEVEL_CUT_ABOVE: f32 = 6.0;
/// ...and never boosted so far that the input's mean power of the last ~2 s (an exponential
/// average over 125 frames, dBFS) would exceed this: the network takes brown noise at
/// -20 dBFS RMS for speech, at -25 dBFS not, so a quiet room's rumble alone must not be
/// boosted up to speech level (a cap on the feature level instead held brown noise back
/// but also the boost of quiet speech in white noise, whose mel bands are all full).
/// The values were chosen on the dev and held splits at levels from -30 to +12 dB
/// (docs/benchmarks.md, "Levelling").
const LEVEL_MAX_MEAN_POWER_DB: f32 = -26.0;
/// How fast the gain may rise (dB per 16 ms frame: 15 dB/s), from 0 at the start of a
/// stream: the quiet lead-in of a stream of any level would otherwise be boosted by up to
/// `max_gain_db` at once, which moved the first onset of the bundled clip by 2-3 frames and
/// apart between 8 and 16 kHz copies; quiet audio gets its whole gain within 2 s.
const LEVEL_RISE_DB: f32 = 15.0 * 0.016;
/// How fast the remembered loudest level falls (dB per 16 ms frame: 0.1 dB/s), so the gain
/// follows a talker who moves away over minutes yet stays put through pauses (a 4 s window,
/// whose gain rose in every pause, lost F1 on every split).
const LEVEL_DECAY_DB: f32 = 0.1 * 0.016;

/// The gain the network hears each frame with (`max_gain_db`; see [`LEVEL_TARGET`]).
#[derive(Debug)]
pub(super) struct Leveller {
    /// The loudest feature level seen, falling by [`LEVEL_DECAY_DB`] a frame.
    peak: f32,
    /// The input's mean power, an exponential average over 125 frames (`None`: no frame yet).
    mean_power: Option<f32>,
    /// The gain given to the last frame (dB).
    last_gain: f32,
}

impl Default for Leveller {
    fn default() -> Self {
        Self {
            peak: f32::NEG_INFINITY,
            mean_power: None,
            last_gain: 0.0,
        }
    }
}

impl Leveller {
    /// The gain (dB) for the next frame, of feature level `level` and samples `frame`.
    pub(super) fn gain(
        &mut self,
        level: f32,
        frame: &[f32; ENGINE_FRAME],
        max_gain_db: f32,
    ) -> f32 {
        if max_gain_db == 0.0 {
            return 0.0;
        }
        // In eight lanes (the loop vectorises), then across them.
        let mut lanes = [0.0f32; 8];
        for block in frame.chunks_exact(8) {
            for (l, &s) in lanes.iter_mut().zip(block) {
                *l += s * s;
            }
        }
        let power = lanes.iter().sum::<f32>() / ENGINE_FRAME as f32;
        let mean = match self.mean_power {
            None => power,
            Some(m) => m + (power - m) * (1.0 / 125.0),
        };
        self.mean_power = Some(mean);
        let mean_db = 10.0 * (mean + 1e-12).log10();
        // Instant attack, slow release.
        self.peak = level.max(self.peak - LEVEL_DECAY_DB);
        let gain = if self.peak > LEVEL_CUT_ABOVE {
            (LEVEL_CUT_ABOVE - self.peak).max(-max_gain_db)
        } else {
            (LEVEL_TARGET - self.peak)
                .min(LEVEL_MAX_MEAN_POWER_DB - mean_db)
                .clamp(0.0, max_gain_db)
        };
        // The gain falls at once and rises by LEVEL_RISE_DB a frame at most, from 0 at the
        // start.
        let gain = gain.min(self.last_gain.max(0.0) + LEVEL_RISE_DB);
        self.last_gain = gain;
        gain
    }
}
