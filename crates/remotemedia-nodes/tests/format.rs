//! FormatConverterNode and ChannelMixNode through a pipeline.

#[path = "../../remotemedia-core/tests/common/mod.rs"]
mod common;

use common::*;
use remotemedia_core::data::{AudioBuffer, Data, SampleFormat, Samples};

fn convert(input: AudioBuffer, to: SampleFormat) -> AudioBuffer {
    let p = pipeline(&one_node(
        "FormatConverterNode",
        &format!(r#"{{"target_format": "{to}"}}"#),
    ));
    run_whole(&p, input).as_audio().unwrap().clone()
}

#[test]
fn every_pair_converts_with_the_documented_scaling() {
    let base = AudioBuffer::new(vec![-1.0f64, -0.5, 0.0, 0.25, 0.999].into(), 16_000, 1).unwrap();
    for from in SampleFormat::ALL {
        for to in SampleFormat::ALL {
            let input = base.to_format(from);
            let out = convert(input.clone(), to);
            assert_eq!(out.format(), to);
            assert_eq!(out.frames(), 5);
            assert_eq!(out.sample_rate(), 16_000);
            let back = out.samples().to_f64_vec();
            let want = input.samples().to_f64_vec();
            // Quantisation of the narrowest format on the path bounds the error.
            let lsb = if from == SampleFormat::I16 || to == SampleFormat::I16 {
                1.0 / 32768.0
            } else {
                1e-7
            };
            for (a, b) in back.iter().zip(&want) {
                assert!((a - b).abs() <= lsb, "{from}->{to}: {a} vs {b}");
            }
        }
    }
}

#[test]
fn float_to_int_saturates_through_the_node() {
    let input = AudioBuffer::mono_f32(vec![1.5, -3.0, 1.0, -1.0], 16_000);
    let out = convert(input, SampleFormat::I16);
    match out.samples() {
        Samples::I16(b) => assert_eq!(&**b, &[32767, -32768, 32767, -32768]),
        _ => unreachable!(),
    }
}

#[test]
fn i16_to_f32_to_i16_is_exact_through_two_nodes() {
    let all: Vec<i16> = (i16::MIN..=i16::MAX).collect();
    let p = pipeline(
        r#"{"version": "v1", "nodes": [
            {"id": "a", "node_type": "FormatConverterNode", "params": {"target_format": "f32"}},
            {"id": "b", "node_type": "FormatConverterNode", "params": {"target_format": "i16"}}],
          "connections": [{"from": "a", "to": "b"}]}"#,
    );
    let out = run_whole(&p, AudioBuffer::new(all.clone().into(), 16_000, 1).unwrap());
    match out.as_audio().unwrap().samples() {
        Samples::I16(b) => assert_eq!(&**b, &all[..]),
        _ => unreachable!(),
    }
}

#[test]
fn same_format_is_not_copied() {
    let input = AudioBuffer::mono_f32(vec![0.5; 64], 16_000);
    let out = convert(input.clone(), SampleFormat::F32);
    match (input.samples(), out.samples()) {
        (Samples::F32(a), Samples::F32(b)) => assert!(a.shares_storage_with(b)),
        _ => unreachable!(),
    }
}

#[test]
fn channel_mix_down_and_up() {
    let stereo = AudioBuffer::new(vec![1.0f32, 0.0, 0.5, 0.5, -1.0, 1.0].into(), 8_000, 2).unwrap();
    let p = pipeline(&one_node("ChannelMixNode", r#"{"channels": 1}"#));
    let mono = run_whole(&p, stereo);
    assert_eq!(
        mono.as_audio().unwrap().samples().to_f32_vec(),
        vec![0.5, 0.5, 0.0]
    );

    let p = pipeline(&one_node("ChannelMixNode", r#"{"channels": 3}"#));
    let up = run_whole(&p, AudioBuffer::mono_f32(vec![0.25, -0.5], 8_000));
    let a = up.as_audio().unwrap();
    assert_eq!(a.channels(), 3);
    assert_eq!(
        a.samples().to_f32_vec(),
        vec![0.25, 0.25, 0.25, -0.5, -0.5, -0.5]
    );

    // i16 averages round half to even and stay in range.
    let p = pipeline(&one_node("ChannelMixNode", r#"{"channels": 1}"#));
    let ints =
        AudioBuffer::new(vec![32767i16, 32767, -32768, -32767, 1, 2].into(), 8_000, 2).unwrap();
    match run_whole(&p, ints).as_audio().unwrap().samples() {
        Samples::I16(b) => assert_eq!(&**b, &[32767, -32768, 2]),
        _ => unreachable!(),
    }

    // 2 -> 3 is refused with a hint.
    let p = pipeline(&one_node("ChannelMixNode", r#"{"channels": 3}"#));
    let err = rt()
        .block_on(p.run(Data::Audio(
            AudioBuffer::new(vec![0.0f32; 4].into(), 8_000, 2).unwrap(),
        )))
        .unwrap_err();
    assert!(err.to_string().contains("2 -> 1 -> 3"), "{err}");
}

#[test]
fn stateless_nodes_stream_exactly_like_whole_input() {
    let input = AudioBuffer::new(music(44_100, 0.3, 2, 11).into(), 44_100, 2).unwrap();
    for (node_type, params) in [
        ("FormatConverterNode", r#"{"target_format": "i16"}"#),
        ("FormatConverterNode", r#"{"target_format": "f64"}"#),
        ("ChannelMixNode", r#"{"channels": 1}"#),
        ("PassThroughNode", "{}"),
    ] {
        let p = pipeline(&one_node(node_type, params));
        let whole = run_whole(&p, input.clone());
        for (max_chunk, seed) in [(1usize, 5u64), (333, 6), (20_000, 7)] {
            let streamed = run_streamed(&p, &input, max_chunk, seed);
            assert_eq!(streamed, whole, "{node_type} {params} chunks<={max_chunk}");
        }
    }
}

#[test]
fn channel_mix_refuses_nan_and_infinity_naming_the_sample() {
    for (bad, shown) in [(f32::NAN, "NaN"), (f32::INFINITY, "inf")] {
        for channels in ["1", "2"] {
            let p = pipeline(&one_node(
                "ChannelMixNode",
                &format!(r#"{{"channels": {channels}}}"#),
            ));
            let stereo =
                AudioBuffer::new(vec![0.1f32, 0.2, 0.3, bad, 0.5, 0.6].into(), 8_000, 2).unwrap();
            let err = rt().block_on(p.run(Data::Audio(stereo))).unwrap_err();
            assert_eq!(err.kind(), Some("not_finite"), "{err}");
            assert!(
                err.to_string().contains(&format!(
                    "input sample 3 (interleaved index in this chunk) is {shown}"
                )),
                "{err}"
            );
        }
    }
    // Integer audio has no such values; finite float audio mixes as before.
    let p = pipeline(&one_node("ChannelMixNode", r#"{"channels": 1}"#));
    let ok = AudioBuffer::new(vec![f32::MAX, f32::MAX].into(), 8_000, 2).unwrap();
    assert_eq!(run_whole(&p, ok).as_audio().unwrap().frames(), 1);
}

#[test]
fn a_passthrough_stream_refuses_a_rate_or_channel_change() {
    let p = pipeline(&one_node("PassThroughNode", "{}"));
    let mut s = p.session().unwrap();
    rt().block_on(async {
        s.push(Data::Audio(AudioBuffer::mono_f32(vec![0.0; 160], 16_000)))
            .await
            .unwrap();
        let e = s
            .push(Data::Audio(AudioBuffer::mono_f32(vec![0.0; 480], 48_000)))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), Some("sample_rate_changed"), "{e}");
    });
    let mut s = p.session().unwrap();
    rt().block_on(async {
        s.push(Data::Audio(AudioBuffer::mono_f32(vec![0.0; 160], 16_000)))
            .await
            .unwrap();
        let stereo = AudioBuffer::new(vec![0.0f32; 320].into(), 16_000, 2).unwrap();
        let e = s.push(Data::Audio(stereo)).await.unwrap_err();
        assert_eq!(e.kind(), Some("channels_changed"), "{e}");
    });
    // Whole runs of different shapes one after the other are separate streams.
    run_whole(&p, AudioBuffer::mono_f32(vec![0.0; 160], 16_000));
    run_whole(&p, AudioBuffer::mono_f32(vec![0.0; 480], 48_000));
}
