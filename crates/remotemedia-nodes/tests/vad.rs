//! VADNode: segments, speech audio, silence, streaming == whole input, bad input.

#[path = "../../remotemedia-core/tests/common/mod.rs"]
mod common;

use common::*;
use remotemedia_core::data::{AudioBuffer, Data, SampleFormat, Segment};

/// 0.5 s silence, 0.6 s tone, 0.4 s silence, 0.3 s tone, 0.2 s silence at 16 kHz.
fn bursts(rate: u32, channels: u16) -> AudioBuffer {
    let mut v = Vec::new();
    let mut push = |secs: f64, amp: f64| {
        v.extend(sine(440.0, rate, secs, amp, channels));
    };
    push(0.5, 0.0);
    push(0.6, 0.5);
    push(0.4, 0.0);
    push(0.3, 0.5);
    push(0.2, 0.0);
    AudioBuffer::new(v.into(), rate, channels).unwrap()
}

fn vad(params: &str) -> remotemedia_core::Pipeline {
    pipeline(&one_node("VADNode", params))
}

fn segments(d: &Data) -> Vec<Segment> {
    match d {
        Data::Segments(s) => s.clone(),
        other => panic!("expected segments, got {}", other.describe()),
    }
}

#[test]
fn finds_the_bursts_with_frame_accurate_bounds() {
    let s = segments(&run_whole(&vad("{}"), bursts(16_000, 1)));
    assert_eq!(s.len(), 2, "{s:?}");
    // Burst edges fall on multiples of 30 ms only approximately: a frame partly covering
    // the tone is speech when its RMS clears -30 dBFS.
    assert!((480.0..=510.0).contains(&s[0].start_ms()), "{s:?}");
    assert!((1080.0..=1110.0).contains(&s[0].end_ms()), "{s:?}");
    assert!((1470.0..=1500.0).contains(&s[1].start_ms()), "{s:?}");
    assert!((1800.0..=1830.0).contains(&s[1].end_ms()), "{s:?}");
    // A 0.5-amplitude sine is at -9.03 dBFS RMS.
    assert!((s[0].energy_db.unwrap() + 9.03).abs() < 0.5, "{s:?}");
    // Frame-aligned bounds.
    for seg in &s {
        assert_eq!(seg.start_ms() % 30.0, 0.0);
    }
}

#[test]
fn digital_silence_gives_no_segments_and_no_nan() {
    let p = vad(r#"{"threshold": -120.0}"#);
    let out = run_whole(&p, AudioBuffer::mono_f32(vec![0.0; 16_000], 16_000));
    assert_eq!(segments(&out), vec![]);
    // With a threshold below the floor everything is speech, and the level is the floor.
    let p = vad(r#"{"threshold": -120.0}"#);
    let _ = p;
    let out = run_whole(
        &vad(r#"{"threshold": -119.0}"#),
        AudioBuffer::mono_f32(vec![1e-7; 1600], 16_000),
    );
    for s in segments(&out) {
        assert!(
            s.energy_db.is_some_and(f64::is_finite)
                && s.start_ms().is_finite()
                && s.end_ms().is_finite()
        );
    }
    let json = serde_json::to_string(&out.to_json().unwrap()).unwrap();
    assert!(!json.contains("NaN") && !json.contains("inf"), "{json}");
}

#[test]
fn speech_mode_emits_only_the_speech_audio_in_the_input_format() {
    for format in [SampleFormat::F32, SampleFormat::I16] {
        let input = bursts(16_000, 2).to_format(format);
        let out = run_whole(&vad(r#"{"emit": "speech"}"#), input);
        let a = out.as_audio().unwrap();
        assert_eq!(a.format(), format);
        assert_eq!(a.channels(), 2);
        // About 0.9 s of speech, in whole 30 ms frames (480 samples).
        assert_eq!(a.frames() % 480, 0);
        let secs = a.duration_secs();
        assert!((0.87..=0.99).contains(&secs), "{secs}");
        // No silent frames made it in.
        let s = a.samples().to_f32_vec();
        for frame in s.chunks(480 * 2) {
            assert!(rms(frame) > 0.03);
        }
    }
}

#[test]
fn streamed_equals_whole_for_any_chunking() {
    for emit in ["segments", "speech"] {
        for (rate, ch) in [(16_000, 1u16), (44_100, 2), (8_000, 1)] {
            let p = vad(&format!(r#"{{"emit": "{emit}", "frame_length_ms": 20}}"#));
            let input = bursts(rate, ch);
            let whole = run_whole(&p, input.clone());
            for (max_chunk, seed) in [(1usize, 1u64), (37, 2), (480, 3), (20_000, 4)] {
                if max_chunk == 1 && rate != 8_000 {
                    continue;
                }
                let streamed = run_streamed(&p, &input, max_chunk, seed);
                assert_eq!(
                    streamed, whole,
                    "{emit} {rate} Hz x{ch} chunks<={max_chunk}"
                );
            }
        }
    }
}

#[test]
fn partial_last_frame_is_analysed() {
    // 100 ms of tone: three full 30 ms frames plus a 10 ms partial one.
    let out = run_whole(
        &vad("{}"),
        AudioBuffer::mono_f32(sine(440.0, 16_000, 0.1, 0.5, 1), 16_000),
    );
    let s = segments(&out);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].start_ms(), 0.0);
    assert_eq!(s[0].end_ms(), 100.0);
    // The one segment type: exact samples at the input rate, seconds, the level, no confidence.
    assert_eq!(
        (s[0].start_sample, s[0].end_sample, s[0].sample_rate),
        (0, 1600, 16_000)
    );
    assert_eq!((s[0].start_s(), s[0].end_s()), (0.0, 0.1));
    assert!(s[0].energy_db.is_some() && s[0].confidence.is_none());
    let json = out.to_json().unwrap();
    let keys: Vec<&str> = json[0]
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    assert_eq!(
        keys,
        [
            "start_ms",
            "end_ms",
            "start_s",
            "end_s",
            "start_sample",
            "end_sample",
            "sample_rate",
            "energy_db"
        ]
    );
}

#[test]
fn bad_params_and_input_are_named() {
    let err = remotemedia_core::Pipeline::from_json(
        &one_node(
            "VADNode",
            r#"{"threshold": 5.0, "frame_length_ms": 0, "emit": "loud"}"#,
        ),
        &registry(),
    )
    .err()
    .unwrap()
    .to_string();
    // serde stops at the first type error (emit), so check it names node and field.
    assert!(err.contains("node 'n' (VADNode): params.emit"), "{err}");

    let err = remotemedia_core::Pipeline::from_json(
        &one_node("VADNode", r#"{"threshold": 5.0, "frame_length_ms": 0}"#),
        &registry(),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(
        err.contains("params.threshold: 5.0 is out of range"),
        "{err}"
    );
    assert!(
        err.contains("params.frame_length_ms: 0 is out of range"),
        "{err}"
    );

    let err = rt()
        .block_on(vad("{}").run(Data::Json(serde_json::json!({"a": 1}))))
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("(VADNode) failed: expected audio, got json"),
        "{err}"
    );
}

#[test]
fn hangover_bridges_short_pauses_and_extends_ends() {
    // The bursts are separated by 400 ms of silence.
    let s = segments(&run_whole(
        &vad(r#"{"hangover_ms": 300}"#),
        bursts(16_000, 1),
    ));
    assert_eq!(s.len(), 2, "{s:?}");
    // The first segment now ends ~300 ms (10 frames) after the tone.
    assert!((1380.0..=1410.0).contains(&s[0].end_ms()), "{s:?}");
    let s = segments(&run_whole(
        &vad(r#"{"hangover_ms": 500}"#),
        bursts(16_000, 1),
    ));
    assert_eq!(s.len(), 1, "{s:?}");
    assert!((480.0..=510.0).contains(&s[0].start_ms()));
}

#[test]
fn events_report_start_as_soon_as_decided_and_end_after_the_hangover() {
    let p = vad(r#"{"emit": "events", "hangover_ms": 150}"#);
    let input = bursts(16_000, 1);
    let whole = run_whole(&p, input.clone());
    let events = whole.to_json().unwrap();
    let kinds: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["speech_start", "speech_end", "speech_start", "speech_end"]
    );
    // Streamed in 20 ms chunks, each event arrives in the chunk where it is decided.
    let rt = rt();
    let mut arrivals = Vec::new();
    rt.block_on(async {
        let mut s = p.session().unwrap();
        let mut pos = 0;
        while pos < input.frames() {
            let end = (pos + 320).min(input.frames());
            let outs = s
                .push(Data::Audio(input.slice_frames(pos, end)))
                .await
                .unwrap();
            for o in outs {
                for e in o.data.to_json().unwrap().as_array().unwrap() {
                    arrivals.push((
                        e["event"].as_str().unwrap().to_string(),
                        end as f64 / 16.0,
                        e.clone(),
                    ));
                }
            }
            pos = end;
        }
        for o in s.finish().await.unwrap() {
            for e in o.data.to_json().unwrap().as_array().unwrap() {
                arrivals.push((
                    e["event"].as_str().unwrap().to_string(),
                    f64::INFINITY,
                    e.clone(),
                ));
            }
        }
    });
    assert_eq!(arrivals.len(), 4);
    for (kind, arrived_ms, e) in &arrivals {
        let decided_ms = if kind == "speech_start" {
            e["start_ms"].as_f64().unwrap()
        } else {
            e["end_ms"].as_f64().unwrap()
        };
        // Known within one frame plus one chunk of the moment it happened; none waits for close.
        assert!(arrived_ms.is_finite(), "{kind} arrived only at close");
        assert!(
            *arrived_ms - decided_ms <= 30.0 + 20.0 + 1e-9,
            "{kind}: {decided_ms} ms arrived at {arrived_ms} ms"
        );
    }
    let streamed = Data::join(
        arrivals
            .iter()
            .map(|a| Data::Json(serde_json::json!([a.2.clone()])))
            .collect(),
    )
    .unwrap();
    assert_eq!(streamed, whole);
}

/// `(start_sample, end_sample)` of each span of an audio output's origin.
fn origin(d: &Data) -> Vec<(u64, u64)> {
    d.as_audio()
        .expect("audio")
        .origin()
        .expect("speech audio says where it came from")
        .iter()
        .map(|s| (s.start_sample, s.end_sample))
        .collect()
}

#[test]
fn speech_audio_says_which_input_samples_it_is_whole_and_streamed() {
    for (rate, ch) in [(16_000, 1u16), (44_100, 2)] {
        let input = bursts(rate, ch);
        let segs = segments(&run_whole(&vad("{}"), input.clone()));
        let want: Vec<(u64, u64)> = segs
            .iter()
            .map(|s| (s.start_sample, s.end_sample))
            .collect();
        let speech = run_whole(&vad(r#"{"emit": "speech"}"#), input.clone());
        assert_eq!(origin(&speech), want, "{rate} Hz");
        // The spans are the audio, sample for sample.
        let a = speech.as_audio().unwrap();
        let mut at = 0;
        for &(s, e) in &want {
            let n = (e - s) as usize;
            let from_input = input.slice_frames(s as usize, e as usize);
            assert_eq!(
                a.slice_frames(at, at + n).samples(),
                from_input.samples(),
                "{rate} Hz span {s}..{e}"
            );
            at += n;
        }
        assert_eq!(at, a.frames());
        // Each stream output covers its own frames; together they are the whole run's spans.
        let p = vad(r#"{"emit": "speech"}"#);
        rt().block_on(async {
            let mut session = p.session().unwrap();
            let mut all = Vec::new();
            for pos in (0..input.frames()).step_by(rate as usize / 50) {
                let end = (pos + rate as usize / 50).min(input.frames());
                let chunk = input.slice_frames(pos, end);
                for o in session.push(Data::Audio(chunk)).await.unwrap() {
                    let spans = origin(&o.data);
                    let n: u64 = spans.iter().map(|(s, e)| e - s).sum();
                    assert_eq!(n, o.data.as_audio().unwrap().frames() as u64);
                    assert!(
                        spans.iter().all(|&(_, e)| e <= end as u64),
                        "no future audio"
                    );
                    all.extend(spans);
                }
            }
            for o in session.finish().await.unwrap() {
                all.extend(origin(&o.data));
            }
            let mut merged: Vec<(u64, u64)> = Vec::new();
            for (s, e) in all {
                match merged.last_mut() {
                    Some(last) if last.1 == s => last.1 = e,
                    _ => merged.push((s, e)),
                }
            }
            assert_eq!(merged, want, "{rate} Hz streamed");
        });
    }
}
