//! The network's matrix products ([`Product`]): the shapes checked once, and the portable
//! kernel (the AVX2 one is in `avx2.rs`).

/// Output counts of every product are multiples of this (the AVX2 kernel's smallest block).
const LANES: usize = 32;

/// A product of a matrix and `cols` columns: `out[t][o] = bias[o] + sum over j of m[j][o] *
/// x[t * stride + j]` for `o < n`, `j < k`, `t < cols`, with `m` stored `[k][n]` and `out`
/// `[cols][n]`; each output is summed in the order of `j`, from its bias. Columns may
/// overlap (`stride < k`: the STFT's frames).
pub(super) struct Product<'a> {
    pub(super) out: &'a mut [f32],
    pub(super) bias: &'a [f32],
    pub(super) m: &'a [f32],
    pub(super) x: &'a [f32],
    pub(super) stride: usize,
    pub(super) cols: usize,
}

impl Product<'_> {
    /// `(n, k)`, after checking every shape (so the AVX2 kernel's loads are in bounds).
    pub(super) fn shape(&self) -> (usize, usize) {
        let n = self.bias.len();
        let k = self.m.len() / n.max(1);
        assert!(
            n % LANES == 0
                && self.m.len() == k * n
                && self.out.len() == self.cols * n
                && self.cols >= 1
                && (self.cols - 1) * self.stride + k <= self.x.len(),
            "product shapes"
        );
        (n, k)
    }
}

/// [`Product`], column by column and row by row: a multiply-add over the outputs per input
/// (vectorised by LLVM).
pub(super) fn matmul_any(p: Product<'_>) {
    let (n, k) = p.shape();
    for (t, out) in p.out.chunks_exact_mut(n).enumerate() {
        out.copy_from_slice(p.bias);
        let x = &p.x[t * p.stride..t * p.stride + k];
        for (row, &v) in p.m.chunks_exact(n).zip(x) {
            for (o, &w) in out.iter_mut().zip(row) {
                *o += w * v;
            }
        }
    }
}
