//! Bytes -> audio: raw little-endian samples (as they arrive over gRPC or from a file) with an
//! arbitrary format, rate and channel count become an `AudioBuffer`, which is converted to
//! every format, sliced and joined. Checks the documented conversion rules (data/convert.rs)
//! against a plain f64 reference: exact round trips, round half to even, saturation, NaN -> 0.
#![no_main]

use libfuzzer_sys::fuzz_target;
use remotemedia_core::data::convert;
use remotemedia_core::data::{AudioBuffer, SampleFormat, Samples};

fn samples_from_le(format: SampleFormat, b: &[u8]) -> Samples {
    match format {
        SampleFormat::F32 => b
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect::<Vec<_>>()
            .into(),
        SampleFormat::I16 => b
            .chunks_exact(2)
            .map(|c| i16::from_le_bytes(c.try_into().unwrap()))
            .collect::<Vec<_>>()
            .into(),
        SampleFormat::I32 => b
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes(c.try_into().unwrap()))
            .collect::<Vec<_>>()
            .into(),
        SampleFormat::F64 => b
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
            .collect::<Vec<_>>()
            .into(),
    }
}

/// The documented float -> integer rule, computed plainly in f64.
fn reference_to_int(x: f64, bits: u32) -> i64 {
    if x.is_nan() {
        return 0;
    }
    let scale = (1u64 << (bits - 1)) as f64;
    (x * scale).clamp(-scale, scale - 1.0).round_ties_even() as i64
}

fn check_conversions(s: &Samples) {
    let n = s.len();
    for f in SampleFormat::ALL {
        let out = s.to_format(f);
        assert_eq!(out.len(), n);
        assert_eq!(out.format(), f);
    }
    match s {
        Samples::I16(b) => {
            let b = b.as_slice();
            assert_eq!(convert::f32_to_i16(&convert::i16_to_f32(b)), b);
            assert_eq!(convert::f64_to_i16(&convert::i16_to_f64(b)), b);
            assert_eq!(convert::i32_to_i16(&convert::i16_to_i32(b)), b);
            // The aligned/unaligned split of the AVX2 kernel: any offset gives the same values.
            let mut dst = vec![0.0f32; b.len() + 16];
            let off = b.len() % 16;
            convert::i16_to_f32_into(b, &mut dst[off..off + b.len()]);
            for (i, &x) in b.iter().enumerate() {
                assert_eq!(dst[off + i], x as f32 / 32768.0);
            }
        }
        Samples::I32(b) => {
            let b = b.as_slice();
            assert_eq!(convert::f64_to_i32(&convert::i32_to_f64(b)), b);
            for (&x, &y) in b.iter().zip(&convert::i32_to_i16(b)) {
                let want = (x as f64 / 65536.0)
                    .clamp(-32768.0, 32767.0)
                    .round_ties_even() as i16;
                assert_eq!(y, want, "i32 {x} -> i16");
            }
        }
        Samples::F32(b) => {
            let b = b.as_slice();
            for (&x, &y) in b.iter().zip(&convert::f32_to_i16(b)) {
                assert_eq!(y as i64, reference_to_int(x as f64, 16), "f32 {x:e} -> i16");
            }
            for (&x, &y) in b.iter().zip(&convert::f32_to_i32(b)) {
                assert_eq!(y as i64, reference_to_int(x as f64, 32), "f32 {x:e} -> i32");
            }
            let back = convert::f64_to_f32(&convert::f32_to_f64(b));
            for (&x, &y) in b.iter().zip(&back) {
                assert!(x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()));
            }
        }
        Samples::F64(b) => {
            let b = b.as_slice();
            for (&x, &y) in b.iter().zip(&convert::f64_to_i16(b)) {
                assert_eq!(y as i64, reference_to_int(x, 16), "f64 {x:e} -> i16");
            }
            for (&x, &y) in b.iter().zip(&convert::f64_to_i32(b)) {
                assert_eq!(y as i64, reference_to_int(x, 32), "f64 {x:e} -> i32");
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let format = SampleFormat::ALL[data[0] as usize % 4];
    let channels = u16::from(data[1]);
    let rate = u32::from(u16::from_le_bytes([data[2], data[3]])) * 8;
    let body = &data[4..];
    let samples = samples_from_le(format, body);
    check_conversions(&samples);
    let Ok(audio) = AudioBuffer::new(samples, rate, channels) else {
        return;
    };
    assert_eq!(audio.frames() * channels as usize, audio.samples().len());
    // Split at a frame boundary and join again: the same audio.
    let cut = if audio.frames() == 0 {
        0
    } else {
        body.len() % (audio.frames() + 1)
    };
    let (a, b) = (
        audio.slice_frames(0, cut),
        audio.slice_frames(cut, audio.frames()),
    );
    let joined = AudioBuffer::concat(&[&a, &b]).expect("same shape");
    assert_eq!(format!("{joined:?}"), format!("{audio:?}"));
    for f in SampleFormat::ALL {
        let other = audio.to_format(f);
        assert_eq!(other.frames(), audio.frames());
        assert_eq!(
            other.byte_len(),
            audio.samples().len() * f.bytes_per_sample()
        );
    }
});
