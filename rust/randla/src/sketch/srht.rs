//! Subsampled randomized Hadamard transform `S = sqrt(n2/k) P H D` with `D`
//! random signs, `H` the orthonormal Walsh–Hadamard matrix of size `n2` (the
//! next power of two >= n, input zero-padded) and `P` the selection of `k`
//! distinct rows, drawn uniformly and kept in increasing order.
//!
//! A product transforms groups of columns: the group is copied (with signs)
//! into an `n2 x w` row-major buffer, so each butterfly works on `w`
//! contiguous lanes, and the transform is cache-blocked (the low stages within
//! L2-sized row blocks, the high stages across blocks on L2-sized row groups):
//! two passes over the buffer in all.

use std::collections::HashSet;

use faer::{MatMut, MatRef};
use rayon::prelude::*;

use super::Sketch;
use crate::ensure;
use crate::error::Result;
use crate::parallel::even_blocks;
use crate::parallel::split_cols;
use crate::rng::{tag, Stream};
use crate::sparse::{Compressed, Index, SparseRef};
use crate::Real;

/// Columns transformed together (SIMD lanes of the butterflies).
const GROUP: usize = 16;
/// Elements of a cache block (128 KiB of f64).
const CACHE_ELEMS: usize = 1 << 14;

#[derive(Debug)]
pub struct Srht {
    k: usize,
    n: usize,
    n2: usize,
    signs: Stream,
    /// The sampled rows of `H D`, increasing.
    rows: Vec<usize>,
}

impl Srht {
    pub fn new(k: usize, n: usize, seed: u64) -> Result<Self> {
        ensure!(k >= 1, "k must be >= 1, got {k}");
        ensure!(n >= 1, "n must be >= 1, got {n}");
        ensure!(n <= 1 << 40, "n = {n} is too large for SRHT");
        let n2 = n.next_power_of_two();
        ensure!(
            k <= n2,
            "srht needs k <= n2 = {n2} (the padded size), got k = {k}"
        );
        let rows = sample_distinct(Stream::new(seed, tag::SAMPLE), n2, k);
        Ok(Self {
            k,
            n,
            n2,
            signs: Stream::new(seed, tag::SIGNS),
            rows,
        })
    }

    /// The sampled row indices (into the padded Hadamard matrix), increasing.
    pub fn sampled_rows(&self) -> &[usize] {
        &self.rows
    }

    fn sign_vector<T: Real>(&self) -> Vec<T> {
        let mut s = vec![0.0f64; self.n];
        self.signs.fill_signs(0, 1.0, &mut s);
        s.into_iter().map(T::from_f64).collect()
    }

    fn scale<T: Real>(&self) -> T {
        T::from_f64(1.0 / (self.k as f64).sqrt())
    }

    /// Runs `fill(group columns, buffer)`, the transform, and `emit(buffer)` on
    /// each group of columns in parallel, each group with its own buffer.
    fn for_each_group<T: Real>(
        &self,
        d: usize,
        out: MatMut<'_, T>,
        fill: impl Fn(std::ops::Range<usize>, &mut [T]) + Sync,
        emit: impl Fn(&[T], usize, &mut MatMut<'_, T>) + Sync,
    ) {
        let groups = even_blocks(d, GROUP);
        let width = groups.iter().map(|g| g.len()).max().unwrap_or(0);
        // One buffer per worker, reused across its groups (no page faults per group).
        split_cols(out, &groups)
            .into_par_iter()
            .zip(groups.par_iter())
            .for_each_init(
                || vec![T::ZERO; self.n2 * width],
                |storage, (mut piece, cols)| {
                    let w = cols.len();
                    let buf = &mut storage[..self.n2 * w];
                    buf.fill(T::ZERO);
                    fill(cols.clone(), buf);
                    fwht(buf, self.n2, w);
                    emit(buf, w, &mut piece);
                },
            );
    }

    fn apply_csc<T: Real, I: Index>(&self, a: Compressed<'_, T, I>, out: MatMut<'_, T>) {
        let signs = self.sign_vector::<T>();
        let scale = self.scale::<T>();
        self.for_each_group(
            a.major(),
            out,
            |cols, buf| {
                let w = cols.len();
                for (c, col) in cols.enumerate() {
                    for (j, v) in a.line(col) {
                        buf[j * w + c] += signs[j] * v;
                    }
                }
            },
            |buf, w, piece| self.gather(buf, w, piece, scale),
        );
    }

    fn gather<T: Real>(&self, buf: &[T], w: usize, piece: &mut MatMut<'_, T>, scale: T) {
        for (t, &r) in self.rows.iter().enumerate() {
            super::store_row(piece, t, &buf[r * w..(r + 1) * w], scale);
        }
    }
}

/// `count` distinct integers from `0..population`, increasing (Floyd's
/// algorithm: draw `t` uses position `t` of the stream).
pub(crate) fn sample_distinct(stream: Stream, population: usize, count: usize) -> Vec<usize> {
    let mut chosen = HashSet::with_capacity(count);
    for (t, m) in ((population - count)..population).enumerate() {
        let r = stream.below_at(t as u64, m as u64 + 1) as usize;
        if !chosen.insert(r) {
            chosen.insert(m);
        }
    }
    let mut rows: Vec<usize> = chosen.into_iter().collect();
    rows.sort_unstable();
    rows
}

impl Sketch for Srht {
    fn shape(&self) -> (usize, usize) {
        (self.k, self.n)
    }

    fn apply<T: Real>(&self, a: MatRef<'_, T>, out: MatMut<'_, T>) {
        let signs = self.sign_vector::<T>();
        let scale = self.scale::<T>();
        self.for_each_group(
            a.ncols(),
            out,
            |cols, buf| {
                let w = cols.len();
                let block = a.subcols(cols.start, w);
                for (j, &s) in signs.iter().enumerate() {
                    super::axpy_row(&mut buf[j * w..(j + 1) * w], s, block, j);
                }
            },
            |buf, w, piece| self.gather(buf, w, piece, scale),
        );
    }

    fn apply_transpose<T: Real>(&self, b: MatRef<'_, T>, out: MatMut<'_, T>) {
        let signs = self.sign_vector::<T>();
        let scale = self.scale::<T>();
        self.for_each_group(
            b.ncols(),
            out,
            |cols, buf| {
                let w = cols.len();
                for (t, &r) in self.rows.iter().enumerate() {
                    for c in 0..w {
                        buf[r * w + c] = b[(t, cols.start + c)];
                    }
                }
            },
            |buf, w, piece| {
                for (j, &s) in signs.iter().enumerate() {
                    super::store_row(piece, j, &buf[j * w..(j + 1) * w], s * scale);
                }
            },
        );
    }

    fn apply_sparse<T: Real, I: Index>(&self, a: SparseRef<'_, T, I>, out: MatMut<'_, T>) {
        match a {
            SparseRef::Csc(c) => self.apply_csc(c, out),
            SparseRef::Csr(c) => self.apply_csc(c.to_other_major().view(), out),
        }
    }

    fn to_dense<T: Real>(&self, out: MatMut<'_, T>) {
        // S = (S^T I_k)^T.
        let eye = faer::Mat::<T>::identity(self.k, self.k);
        self.apply_transpose(eye.as_ref(), out.transpose_mut());
    }
}

/// In-place unnormalized Walsh–Hadamard transform along the rows of a
/// row-major `n2 x w` buffer (each row holds `w` independent lanes).
pub fn fwht<T: Real>(buf: &mut [T], n2: usize, w: usize) {
    debug_assert!(n2.is_power_of_two() && buf.len() == n2 * w);
    crate::simd::dispatch(
        #[inline(always)]
        || fwht_blocked(buf, n2, w),
    )
}

#[inline(always)]
fn fwht_blocked<T: Real>(buf: &mut [T], n2: usize, w: usize) {
    let block_rows = prev_power_of_two((CACHE_ELEMS / w).max(1)).min(n2);
    for block in buf.chunks_exact_mut(block_rows * w) {
        stages(block, 0, block_rows, 1, 1, w);
    }
    if n2 > block_rows {
        // The remaining stages pair rows block_rows apart or more: run them on
        // groups of `g` consecutive rows at each offset, which stay in cache.
        let g = prev_power_of_two((64 / w).max(1)).min(block_rows);
        for r0 in (0..block_rows).step_by(g) {
            stages(buf, r0, n2 / block_rows, block_rows, g, w);
        }
    }
}

/// Stages h = 1, 2, ..., count/2 of the transform over the `count` row groups
/// starting at rows `first + t * stride` (t < count), each group `g` rows of
/// `w` lanes, contiguous.
#[inline(always)]
fn stages<T: Real>(buf: &mut [T], first: usize, count: usize, stride: usize, g: usize, w: usize) {
    let mut h = 1;
    while h < count {
        for t0 in (0..count).step_by(2 * h) {
            if stride == g {
                // Groups are adjacent: the h groups at t0 form one contiguous run.
                let x = (first + t0 * stride) * w;
                butterfly(buf, x, x + h * g * w, h * g * w);
            } else {
                for t in t0..t0 + h {
                    let x = (first + t * stride) * w;
                    butterfly(buf, x, x + h * stride * w, g * w);
                }
            }
        }
        h *= 2;
    }
}

#[inline(always)]
fn butterfly<T: Real>(buf: &mut [T], x: usize, y: usize, len: usize) {
    let (lo, hi) = buf.split_at_mut(y);
    let a = &mut lo[x..x + len];
    let b = &mut hi[..len];
    for (p, q) in a.iter_mut().zip(b.iter_mut()) {
        let (u, v) = (*p, *q);
        *p = u + v;
        *q = u - v;
    }
}

fn prev_power_of_two(x: usize) -> usize {
    1 << (usize::BITS - 1 - x.leading_zeros())
}

#[cfg(test)]
mod tests {
    use super::*;
    use faer::Mat;

    fn hadamard(n2: usize) -> Mat<f64> {
        Mat::from_fn(n2, n2, |i, j| {
            if (i & j).count_ones() % 2 == 0 {
                1.0
            } else {
                -1.0
            }
        })
    }

    #[test]
    fn fwht_matches_the_hadamard_matrix() {
        // Sizes below and above the cache block, several lane counts.
        for &(n2, w) in &[
            (1usize, 3usize),
            (2, 1),
            (64, 5),
            (1 << 13, 16),
            (1 << 15, 2),
        ] {
            let st = Stream::new(1, 0);
            let x: Vec<f64> = (0..n2 * w).map(|p| st.normal_at(p as u64)).collect();
            let mut y = x.clone();
            fwht(&mut y, n2, w);
            if n2 <= 1 << 13 {
                let h = hadamard(n2);
                let xm = Mat::from_fn(n2, w, |i, c| x[i * w + c]);
                let expect = &h * &xm;
                for i in 0..n2 {
                    for c in 0..w {
                        assert!((y[i * w + c] - expect[(i, c)]).abs() < 1e-9);
                    }
                }
            }
            // H H = n2 I
            fwht(&mut y, n2, w);
            for (a, b) in y.iter().zip(&x) {
                assert!((a / n2 as f64 - b).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn apply_matches_the_dense_operator() {
        let (k, n, d) = (40, 300, 19);
        let op = Srht::new(k, n, 8).unwrap();
        let mut s = Mat::<f64>::zeros(k, n);
        op.to_dense(s.as_mut());
        // The dense operator is sqrt(n2/k) P H D restricted to n columns.
        let h = hadamard(512);
        let signs = op.sign_vector::<f64>();
        for (t, &r) in op.rows.iter().enumerate() {
            for j in 0..n {
                let expect = h[(r, j)] * signs[j] / (k as f64).sqrt();
                assert!((s[(t, j)] - expect).abs() < 1e-14);
            }
        }
        let st = Stream::new(3, 0);
        let a = Mat::from_fn(n, d, |i, j| st.normal_at((i * d + j) as u64));
        let mut sa = Mat::<f64>::zeros(k, d);
        op.apply(a.as_ref(), sa.as_mut());
        assert!((&sa - &s * &a).norm_max() < 1e-12);
    }

    #[test]
    fn sampled_rows_are_distinct_and_sorted() {
        let rows = sample_distinct(Stream::new(5, 3), 100, 100);
        assert_eq!(rows, (0..100).collect::<Vec<_>>());
        let rows = sample_distinct(Stream::new(5, 3), 1000, 37);
        assert!(rows.windows(2).all(|w| w[0] < w[1]) && rows.len() == 37);
    }
}
