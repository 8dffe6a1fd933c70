//! The network's parameters: earshot's `weights.bin` decoded once into fixed-size arrays, the
//! minGRU weights also in the AVX2 kernel's pair layout.

use std::sync::OnceLock;

/// The network's parameters (layout of earshot's `weights.bin`: f32 then Q9 i16, little-endian).
pub(super) struct Weights {
    pub(super) norm: [f32; 40],
    pub(super) l1_kernel: [f32; 9],
    pub(super) l1_weight: [f32; 16],
    pub(super) l1_bias: [f32; 16],
    /// Depthwise taps transposed: `[tap][channel]`.
    pub(super) l2_kernel_t: [[f32; 16]; 3],
    /// Pointwise weights transposed: `[in channel][out channel]`.
    pub(super) l2_weight_t: [[f32; 16]; 16],
    pub(super) l2_bias: [f32; 16],
    pub(super) l3_kernel_t: [[f32; 16]; 3],
    pub(super) l3_weight_t: [[f32; 16]; 16],
    pub(super) rnn1: [[i16; 80]; 128],
    pub(super) rnn2: [[i16; 64]; 128],
    /// `rnn1` for the AVX2 kernel: `[input pair][row]`, each i32 holding the row's weights
    /// for inputs `2p` (low half) and `2p + 1` (high half), as `vpmaddwd` reads them.
    pub(super) rnn1_pairs: [[i32; 128]; 40],
    pub(super) rnn2_pairs: [[i32; 128]; 32],
    pub(super) output: [i16; 128],
}

static WEIGHT_BYTES: &[u8] = include_bytes!("weights.bin");

pub(super) fn weights() -> &'static Weights {
    static W: OnceLock<Box<Weights>> = OnceLock::new();
    W.get_or_init(|| {
        let f32_at = |i: usize| {
            let b = &WEIGHT_BYTES[i * 4..i * 4 + 4];
            f32::from_le_bytes([b[0], b[1], b[2], b[3]])
        };
        let i16_at = |i: usize| {
            let b = &WEIGHT_BYTES[i * 2..i * 2 + 2];
            i16::from_le_bytes([b[0], b[1]])
        };
        fn fill<const N: usize, T: Default + Copy>(f: impl Fn(usize) -> T, at: usize) -> [T; N] {
            let mut a = [T::default(); N];
            for (i, v) in a.iter_mut().enumerate() {
                *v = f(at + i);
            }
            a
        }
        // `[out][in]` (earshot's layout) to `[in][out]`.
        fn transposed(m: [f32; 256]) -> [[f32; 16]; 16] {
            let mut t = [[0.0; 16]; 16];
            for (o, row) in m.chunks_exact(16).enumerate() {
                for (i, &v) in row.iter().enumerate() {
                    t[i][o] = v;
                }
            }
            t
        }
        fn pairs<const IN: usize, const P: usize>(m: &[[i16; IN]; 128]) -> [[i32; 128]; P] {
            let mut t = [[0i32; 128]; P];
            for (p, col) in t.iter_mut().enumerate() {
                for (v, row) in col.iter_mut().zip(m) {
                    *v = (row[2 * p] as u16 as i32) | ((row[2 * p + 1] as i32) << 16);
                }
            }
            t
        }
        // `[channel][tap]` (earshot's layout) to `[tap][channel]`.
        fn taps_transposed(m: [f32; 48]) -> [[f32; 16]; 3] {
            let mut t = [[0.0; 16]; 3];
            for (c, taps) in m.chunks_exact(3).enumerate() {
                for (k, &v) in taps.iter().enumerate() {
                    t[k][c] = v;
                }
            }
            t
        }
        // The i16 part starts after 705 f32 values.
        const Q: usize = 705 * 2;
        let mut rnn1 = [[0i16; 80]; 128];
        for (d, row) in rnn1.iter_mut().enumerate() {
            *row = fill(i16_at, Q + d * 80);
        }
        let mut rnn2 = [[0i16; 64]; 128];
        for (d, row) in rnn2.iter_mut().enumerate() {
            *row = fill(i16_at, Q + 10240 + d * 64);
        }
        assert_eq!(WEIGHT_BYTES.len(), (Q + 10240 + 8192 + 128) * 2);
        Box::new(Weights {
            norm: fill(f32_at, 0),
            l1_kernel: fill(f32_at, 40),
            l1_weight: fill(f32_at, 49),
            l1_bias: fill(f32_at, 65),
            l2_kernel_t: taps_transposed(fill(f32_at, 81)),
            l2_weight_t: transposed(fill(f32_at, 129)),
            l2_bias: fill(f32_at, 385),
            l3_kernel_t: taps_transposed(fill(f32_at, 401)),
            l3_weight_t: transposed(fill(f32_at, 449)),
            rnn1_pairs: pairs(&rnn1),
            rnn2_pairs: pairs(&rnn2),
            rnn1,
            rnn2,
            output: fill(i16_at, Q + 10240 + 8192),
        })
    })
}
