//! Speech-like test audio shared by the VAD examples: noise bursts shaped by a syllable-rate
//! envelope over a quiet noise floor, deterministic.

struct Rng(u64);

impl Rng {
    fn unit(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
}

/// `secs` seconds at `rate` Hz, each sample repeated over `channels` (interleaved).
pub fn signal(secs: usize, rate: usize, channels: usize) -> Vec<f32> {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let n = rate * secs;
    let mut out = Vec::with_capacity(n * channels);
    let mut lp = 0.0f32;
    for i in 0..n {
        let t = i as f32 / rate as f32;
        // 4 Hz syllables, on for 1.5 s of every 2.5 s.
        let on = (t % 2.5) < 1.5;
        let env = if on {
            0.3 * (std::f32::consts::PI * 4.0 * t).sin().abs()
        } else {
            0.0
        };
        lp = 0.9 * lp + 0.1 * rng.unit();
        let s = env * lp * 3.0 + 0.003 * rng.unit();
        for _ in 0..channels {
            out.push(s);
        }
    }
    out
}
