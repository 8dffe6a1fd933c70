//! The segment rules (the hysteresis machine): segments open at `threshold`, continue down to
//! `end_threshold`, close after `min_silence_ms`, count from `min_speech_ms`, widened by `pad_ms`,
//! split at `max_speech_ms`.

use super::params::{SpeechVadEmit, SpeechVadParams};
use super::ENGINE_RATE;

/// The rules of one stream's parameters, in engine frames and input samples.
#[derive(Debug, Clone, Copy)]
pub(super) struct Rules {
    threshold: f32,
    end_threshold: f32,
    min_speech_frames: u64,
    min_silence_frames: u32,
    /// `max_speech_ms` in frames (a segment reaching it is split); `None`: no limit.
    max_frames: Option<u64>,
    /// `pad_ms` in input samples.
    pad: u64,
    /// emit="speech": the input ranges of speech audio are tracked.
    want_speech: bool,
    /// Engine samples per frame and the input's rate, for [`Rules::frame_start`].
    frame_samples: u128,
    rate: u128,
}

impl Rules {
    /// The rules of `p` for an input at `rate`.
    pub(super) fn new(p: &SpeechVadParams, rate: u32) -> Self {
        let fl = p.frame_samples();
        let frame_ms = fl as u32 * 1000 / ENGINE_RATE;
        Self {
            threshold: p.threshold as f32,
            end_threshold: p.end_threshold() as f32,
            min_speech_frames: (p.min_speech_ms.div_ceil(frame_ms) as u64).max(1),
            min_silence_frames: p.min_silence_ms.div_ceil(frame_ms).max(1),
            max_frames: p.max_speech_ms.map(|m| (m / frame_ms) as u64),
            pad: (p.pad_ms as u64 * rate as u64).div_ceil(1000),
            want_speech: p.emit == SpeechVadEmit::Speech,
            frame_samples: fl as u128,
            rate: rate as u128,
        }
    }

    /// Engine frame index -> input sample of its first engine sample.
    pub(super) fn frame_start(&self, f: u64) -> u64 {
        (f as u128 * self.frame_samples * self.rate / ENGINE_RATE as u128) as u64
    }
}

/// A segment being tracked (engine frame indices).
#[derive(Debug, Clone, Copy)]
struct Open {
    start: u64,
    last_speech: u64,
    silence: u32,
    confirmed: bool,
    /// Sum of probabilities from `start` through the current frame, and through `last_speech`.
    prob_sum: f64,
    prob_sum_speech: f64,
    /// Padded start in input samples (fixed when the segment opens).
    padded_start: u64,
}

/// A decision, in input samples.
#[derive(Debug, Clone, Copy)]
pub(super) enum Event {
    Start {
        start: u64,
    },
    End {
        start: u64,
        end: u64,
        confidence: f64,
    },
    Prob {
        start: u64,
        end: u64,
        p: f32,
    },
}

/// One stream's segments: the one being tracked and what has been reported.
#[derive(Debug, Default)]
pub(super) struct Segments {
    open: Option<Open>,
    /// Padded end of the last reported segment (input samples): the next may not start before.
    prev_end: u64,
    /// emit="speech": how far speech audio has been emitted (input samples).
    emitted_to: u64,
    /// With `max_speech_ms`: the probabilities of the open segment's frames (at most the
    /// limit's frame count), to find where to split it.
    probs: Vec<f32>,
}

impl Segments {
    /// Takes the probability of engine frame `j`, input samples `f_start..f_end`, pushing the
    /// decisions it makes to `events` and, for `emit="speech"`, the input ranges of speech
    /// audio now known to `ranges`.
    pub(super) fn frame(
        &mut self,
        r: &Rules,
        j: u64,
        prob: f32,
        (f_start, f_end): (u64, u64),
        events: &mut Vec<Event>,
        ranges: &mut Vec<(u64, u64)>,
    ) {
        let probf = prob as f64;
        let mut ended = None;
        match self.open.as_mut() {
            None => {
                if prob >= r.threshold {
                    let padded_start = f_start
                        .saturating_sub(r.pad)
                        .max(self.prev_end)
                        .min(f_start);
                    self.open = Some(Open {
                        start: j,
                        last_speech: j,
                        silence: 0,
                        confirmed: false,
                        prob_sum: probf,
                        prob_sum_speech: probf,
                        padded_start,
                    });
                }
            }
            Some(o) => {
                o.prob_sum += probf;
                if prob >= r.end_threshold {
                    o.last_speech = j;
                    o.silence = 0;
                    o.prob_sum_speech = o.prob_sum;
                } else {
                    o.silence += 1;
                }
            }
        }
        if r.max_frames.is_some() {
            match self.open {
                Some(o) if o.start == j => self.probs = vec![prob],
                Some(_) => self.probs.push(prob),
                None => self.probs.clear(),
            }
        }
        if let Some(o) = self.open.as_mut() {
            if !o.confirmed && o.last_speech + 1 - o.start >= r.min_speech_frames {
                o.confirmed = true;
                events.push(Event::Start {
                    start: o.padded_start,
                });
            }
            if o.silence >= r.min_silence_frames {
                ended = self.open.take();
            }
        }
        if let (None, Some(o), Some(max)) = (ended, self.open, r.max_frames) {
            if o.silence < r.min_silence_frames && j + 1 - o.start >= max {
                self.split(r, o, f_end, events, ranges);
                return;
            }
        }
        if let Some(o) = ended {
            self.end(r, &o, f_end, events, ranges);
        } else if let Some(o) = self.open.filter(|o| o.confirmed) {
            if r.want_speech {
                // Audio up to here is speech whatever comes next: the segment ends no
                // earlier than after its last speech frame plus padding.
                let safe = (r.frame_start(o.last_speech + 1) + r.pad).min(f_end);
                push_range(ranges, &mut self.emitted_to, o.padded_start, safe);
            }
        }
    }

    /// Splits segment `o`, `max_speech_ms` long at frame `j = o.start + probs.len() - 1`: it
    /// ends at its least speech-like frame `k` after `min_speech_ms` (the latest of equals, so
    /// a pause is preferred to a dip within a word only by its probability), and the frames
    /// after `k` are replayed as the start of the next segment.
    fn split(
        &mut self,
        r: &Rules,
        o: Open,
        f_end: u64,
        events: &mut Vec<Event>,
        ranges: &mut Vec<(u64, u64)>,
    ) {
        let probs = std::mem::take(&mut self.probs);
        let first = (r.min_speech_frames as usize).min(probs.len() - 1).max(1);
        let k = (first..probs.len())
            .rev()
            .min_by(|&a, &b| probs[a].total_cmp(&probs[b]))
            .unwrap_or(probs.len() - 1);
        // The first part: its speech frames up to (not including) k (reported only if it was
        // confirmed, as any segment).
        let mut head = o;
        head.prob_sum = probs[..k].iter().map(|&p| p as f64).sum();
        let last = (0..k)
            .rev()
            .find(|&i| probs[i] >= r.end_threshold)
            .unwrap_or(0);
        head.last_speech = o.start + last as u64;
        head.prob_sum_speech = probs[..=last].iter().map(|&p| p as f64).sum();
        self.open = None;
        self.end(
            r,
            &head,
            r.frame_start(o.start + k as u64).min(f_end),
            events,
            ranges,
        );
        // The rest, replayed frame by frame as the stream saw it.
        for (i, &p) in probs.iter().enumerate().skip(k + 1) {
            let f = o.start + i as u64;
            let span = (r.frame_start(f), r.frame_start(f + 1).min(f_end));
            self.frame(r, f, p, span, events, ranges);
        }
    }

    /// End of stream (`total_input` input samples): a confirmed segment still open ends after
    /// its last speech frame.
    pub(super) fn finish(
        &mut self,
        r: &Rules,
        total_input: u64,
        events: &mut Vec<Event>,
        ranges: &mut Vec<(u64, u64)>,
    ) {
        if let Some(o) = self.open.take() {
            self.end(r, &o, total_input, events, ranges);
        }
    }

    /// Ends the confirmed segment `o` no later than `end_cap`: its `speech_end` and, for
    /// `emit="speech"`, its audio up to the padded end.
    fn end(
        &mut self,
        r: &Rules,
        o: &Open,
        end_cap: u64,
        events: &mut Vec<Event>,
        ranges: &mut Vec<(u64, u64)>,
    ) {
        if let Some((event, padded_end)) = close(o, end_cap, r) {
            events.push(event);
            self.prev_end = padded_end;
            if r.want_speech {
                push_range(ranges, &mut self.emitted_to, o.padded_start, padded_end);
            }
        }
    }

    /// The first input sample any later output can need, `frames_done` engine frames in.
    pub(super) fn keep_from(&self, r: &Rules, frames_done: u64) -> u64 {
        match self.open {
            Some(o) => o.padded_start.max(self.emitted_to),
            // The next segment starts at a frame not yet analysed.
            None => r
                .frame_start(frames_done)
                .saturating_sub(r.pad)
                .max(self.prev_end),
        }
    }
}

/// Adds input samples `a..b` (less what was already emitted) to `ranges`, joined to the last
/// range when they continue it.
fn push_range(ranges: &mut Vec<(u64, u64)>, emitted_to: &mut u64, a: u64, b: u64) {
    let a = a.max(*emitted_to);
    if b > a {
        match ranges.last_mut() {
            Some(r) if r.1 == a => r.1 = b,
            _ => ranges.push((a, b)),
        }
        *emitted_to = b;
    }
}

/// Closes segment `o` with its end capped at `end_cap` input samples (the audio known so
/// far); `None` when it never reached `min_speech_ms` (dropped).
fn close(o: &Open, end_cap: u64, r: &Rules) -> Option<(Event, u64)> {
    if !o.confirmed {
        return None;
    }
    let end = r.frame_start(o.last_speech + 1).min(end_cap);
    let padded_end = (end + r.pad).min(end_cap).max(o.padded_start);
    let frames = (o.last_speech + 1 - o.start) as f64;
    let event = Event::End {
        start: o.padded_start,
        end: padded_end,
        confidence: o.prob_sum_speech / frames,
    };
    Some((event, padded_end))
}
