//! Memory layout: [`Aligned`] tables on 64-byte boundaries, each channel's history ([`Hist`],
//! 32-byte blocks), and the (de)interleaving passes of the phase-major kernels.

/// A table whose first value sits on a 64-byte boundary. A vector load that straddles two
/// cache lines costs about two loads; with `Vec`'s 16-byte alignment half the grouped
/// kernel's coefficient loads did (`docs/resampling.md`).
pub struct Aligned<T> {
    buf: Vec<T>,
    off: usize,
    len: usize,
}

impl<T: Copy + Default> Aligned<T> {
    pub(super) fn new(values: &[T]) -> Self {
        let pad = 64 / std::mem::size_of::<T>().max(1);
        let mut buf = vec![T::default(); values.len() + pad];
        let off = buf.as_ptr().align_offset(64).min(pad);
        buf[off..off + values.len()].copy_from_slice(values);
        Self {
            buf,
            off,
            len: values.len(),
        }
    }
}

impl<T> std::ops::Deref for Aligned<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.buf[self.off..self.off + self.len]
    }
}

/// Eight history frames on a 32-byte boundary.
#[derive(Clone, Copy, Default)]
#[repr(C, align(32))]
struct Block<T>([T; 8]);

/// A channel's history: a growable run of frames whose absolute index 8k starts a 32-byte
/// boundary (with `PolyphaseStream::base` a multiple of 8), and whose last block is zero past
/// the end. The row kernel's vector loads are then aligned and may read to the end of the
/// last block. (A `Vec` of aligned blocks is all this needs; the aligned-vector crates add an
/// allocator-level type for the same thing.)
#[derive(Clone, Default)]
pub(super) struct Hist<T> {
    blocks: Vec<Block<T>>,
    len: usize,
}

impl<T: Copy + Default> Hist<T> {
    /// Frames up to the end of the last block (zeros past `len`).
    pub(super) fn padded(&self) -> &[T] {
        const { assert!(std::mem::size_of::<Block<T>>() == 8 * std::mem::size_of::<T>()) };
        // SAFETY: `Block<T>` is `repr(C)` over `[T; 8]` with no padding (asserted above), so
        // the blocks are `8 * blocks.len()` contiguous, initialised `T`s.
        unsafe { std::slice::from_raw_parts(self.blocks.as_ptr().cast(), self.blocks.len() * 8) }
    }

    fn padded_mut(&mut self) -> &mut [T] {
        const { assert!(std::mem::size_of::<Block<T>>() == 8 * std::mem::size_of::<T>()) };
        // SAFETY: as in `padded`, and `&mut self` is the only borrow.
        unsafe {
            std::slice::from_raw_parts_mut(self.blocks.as_mut_ptr().cast(), self.blocks.len() * 8)
        }
    }

    pub(super) fn clear(&mut self) {
        self.blocks.clear();
        self.len = 0;
    }

    /// Grows by `n` frames, zeros, and returns them to be written.
    pub(super) fn grow(&mut self, n: usize) -> &mut [T] {
        let (start, len) = (self.len, self.len + n);
        self.blocks.resize(len.div_ceil(8), Block::default());
        self.len = len;
        &mut self.padded_mut()[start..len]
    }

    pub(super) fn extend_from_slice(&mut self, xs: &[T]) {
        // Fill the last block, then whole blocks straight from `xs` (no zeroing first).
        let fill = (8 - self.len % 8) % 8;
        let (head, rest) = xs.split_at(fill.min(xs.len()));
        if !head.is_empty() {
            let len = self.len;
            self.padded_mut()[len..len + head.len()].copy_from_slice(head);
            self.len += head.len();
        }
        let whole = rest.chunks_exact(8);
        let tail = whole.remainder();
        self.blocks.reserve(rest.len().div_ceil(8));
        self.blocks
            .extend(whole.map(|c| Block(c.try_into().expect("8 frames"))));
        self.len += rest.len() - tail.len();
        self.grow(tail.len()).copy_from_slice(tail);
    }

    /// Zeros up to `len` frames.
    pub(super) fn resize_zeros(&mut self, len: usize) {
        if len > self.len {
            self.grow(len - self.len);
        }
    }

    /// Drops the first `n` frames, a multiple of 8.
    pub(super) fn drop_front(&mut self, n: usize) {
        debug_assert!(n % 8 == 0 && n <= self.len);
        self.blocks.drain(..n / 8);
        self.len -= n;
    }
}

impl<T: Copy + Default> std::ops::Deref for Hist<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.padded()[..self.len]
    }
}

/// `src` (whole frames of `M`) deinterleaved into the first `src.len() / M` values of `M`
/// planes `stride` apart: `planes[r * stride + u] = src[u * M + r]`. With `M` known at
/// compile time this vectorises (the runtime-`M` loop took a quarter of 48k -> 16k's time).
pub(super) fn deinterleave<T: Copy, const M: usize>(planes: &mut [T], stride: usize, src: &[T]) {
    let u_end = src.len() / M;
    let mut rows = planes.chunks_exact_mut(stride);
    let planes: [&mut [T]; M] = std::array::from_fn(|_| {
        let row = rows.next().expect("M planes");
        &mut row[..u_end]
    });
    for (u, f) in src.chunks_exact(M).enumerate() {
        for r in 0..M {
            planes[r][u] = f[r];
        }
    }
}

/// Output frames `t < full` of the interpolation body, `L` phases of `CH` channels:
/// `body[(t * L + p) * CH + c] = planes[(c * L + p) * n + 1 + t]`.
pub(super) fn interleave<T: Copy, const L: usize, const CH: usize>(
    body: &mut [T],
    planes: &[T],
    n: usize,
    full: usize,
) {
    let cols: [[&[T]; L]; CH] =
        std::array::from_fn(|c| std::array::from_fn(|p| &planes[(c * L + p) * n + 1..][..full]));
    for (t, frame) in body[..full * L * CH].chunks_exact_mut(L * CH).enumerate() {
        for p in 0..L {
            for c in 0..CH {
                frame[p * CH + c] = cols[c][p][t];
            }
        }
    }
}
