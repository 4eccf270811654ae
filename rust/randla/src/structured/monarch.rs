//! Monarch matrices (Dao et al. 2022): `M = P_out blkdiag(w2) P_mid blkdiag(w1)`.
//!
//! `w1` is a stack of `k` blocks of shape `(q, p)` and `w2` one of `l` blocks
//! of shape `(s, r)` with `l r = k q`; `M` maps `k p` inputs to `l s`
//! outputs. Both factors, and the transpose, are one kernel: a *stage*
//! multiplies every block by the columns it reads, where block `b`'s element
//! `e` sits at column `b * block_stride + e * element_stride`. The forward
//! product reads `x` in contiguous blocks and `w2` in interleaved ones (the
//! permutation `P_mid` is that stride); each block product is a GEMM over a
//! chunk of rows, chunks run in parallel. With row-major data the
//! permutation at either end (the forward product's output, the transpose's
//! input) is a transpose of each row through a small buffer, so the GEMMs
//! read and write contiguous blocks rather than strided columns.

use faer::linalg::matmul::matmul;
use faer::prelude::ReborrowMut;
use faer::{Accum, Mat, MatMut, MatRef, Par};
use rayon::prelude::*;

use crate::ensure;
use crate::error::Result;
use crate::parallel::{even_blocks, install, split_rows};
use crate::Real;

/// A stack of `count` row-major blocks of shape `(rows, cols)`.
#[derive(Clone, Copy)]
pub struct Blocks<'a, T> {
    data: &'a [T],
    count: usize,
    rows: usize,
    cols: usize,
}

impl<'a, T: Real> Blocks<'a, T> {
    /// `data` holds the C-order array of shape `(count, rows, cols)`.
    pub fn new(data: &'a [T], count: usize, rows: usize, cols: usize) -> Result<Self> {
        ensure!(
            data.len() == count * rows * cols,
            "block stack of {count} blocks of {rows}x{cols} needs {} values, got {}",
            count * rows * cols,
            data.len()
        );
        Ok(Self {
            data,
            count,
            rows,
            cols,
        })
    }

    fn block(&self, b: usize) -> MatRef<'a, T> {
        let size = self.rows * self.cols;
        MatRef::from_row_major_slice(&self.data[b * size..(b + 1) * size], self.rows, self.cols)
    }
}

/// Where block `b`'s element `e` lives: column `b * block + e * element`.
#[derive(Clone, Copy)]
struct Layout {
    block: usize,
    element: usize,
}

/// Where a stage writes: an affine layout, or the forward product's middle
/// buffer, where column `c` of `out1` is stored at `(c % l) r + c / l` so
/// that the second factor reads each of its blocks contiguously (reading
/// interleaved columns costs a third of the GEMM rate in cache conflicts).
#[derive(Clone, Copy)]
enum Output {
    Affine(Layout),
    Permuted { l: usize, r: usize },
}

/// One block-diagonal factor: `out_b = in_b R_b` with `R_b` the block (or
/// its transpose) as an `(inputs, outputs)` matrix.
#[derive(Clone, Copy)]
struct Stage<'a, T> {
    blocks: Blocks<'a, T>,
    transpose: bool,
    input: Layout,
    output: Output,
}

/// `dst = src r` on the columns of `y` starting at `first` with stride `step`.
///
/// # Safety
/// Columns `first + e * step`, `e < r.ncols()`, must lie inside `y`, and no
/// other writer may touch them concurrently.
unsafe fn gemm_into<T: Real>(
    y: &mut MatMut<'_, T>,
    first: usize,
    step: usize,
    src: MatRef<'_, T>,
    r: MatRef<'_, T>,
    par: Par,
) {
    let dst = MatMut::from_raw_parts_mut(
        y.rb_mut().ptr_inbounds_at_mut(0, first),
        src.nrows(),
        r.ncols(),
        y.row_stride(),
        y.col_stride() * step as isize,
    );
    matmul(dst, Accum::Replace, src, r, T::ONE, par);
}

impl<T: Real> Stage<'_, T> {
    fn inputs(&self) -> usize {
        if self.transpose {
            self.blocks.rows
        } else {
            self.blocks.cols
        }
    }
    fn outputs(&self) -> usize {
        if self.transpose {
            self.blocks.cols
        } else {
            self.blocks.rows
        }
    }

    /// `y[:, out(b, .)] = x[:, in(b, .)] R_b` for every block.
    fn run(&self, x: MatRef<'_, T>, y: MatMut<'_, T>, par: Par) {
        let (rows, ni, no) = (x.nrows(), self.inputs(), self.outputs());
        let mut y = y;
        for b in 0..self.blocks.count {
            let w = self.blocks.block(b);
            let r = if self.transpose { w } else { w.transpose() };
            let ci = b * self.input.block;
            // SAFETY: the layouts address columns `ci + e * element` for
            // `e < ni` (resp. `no`), all inside `x` (resp. `y`), as checked by
            // `Monarch::new`; distinct blocks write disjoint columns.
            let xb = unsafe {
                MatRef::from_raw_parts(
                    x.ptr_at(0, ci),
                    rows,
                    ni,
                    x.row_stride(),
                    x.col_stride() * self.input.element as isize,
                )
            };
            match self.output {
                // SAFETY: as above.
                Output::Affine(layout) => unsafe {
                    gemm_into(&mut y, b * layout.block, layout.element, xb, r, par)
                },
                Output::Permuted { l, r: width } => {
                    let first = b * no;
                    if l >= no {
                        // Runs of consecutive c inside one window [t l, (t + 1) l)
                        // land at stride `width`.
                        let mut j = 0;
                        while j < no {
                            let c = first + j;
                            let len = (l - c % l).min(no - j);
                            let pos = (c % l) * width + c / l;
                            // SAFETY: positions pos + e * width, e < len, stay
                            // below l * width, the buffer's width.
                            unsafe { gemm_into(&mut y, pos, width, xb, r.subcols(j, len), par) };
                            j += len;
                        }
                    } else {
                        // Columns j0, j0 + l, ... share c % l and land contiguously.
                        for j0 in 0..l.min(no) {
                            let c = first + j0;
                            let len = (no - j0).div_ceil(l);
                            let pos = (c % l) * width + c / l;
                            // SAFETY: the columns j0 + u l, u < len, lie inside r.
                            let rs = unsafe {
                                MatRef::from_raw_parts(
                                    r.ptr_at(0, j0),
                                    r.nrows(),
                                    len,
                                    r.row_stride(),
                                    r.col_stride() * l as isize,
                                )
                            };
                            // SAFETY: contiguous positions pos..pos + len in the buffer.
                            unsafe { gemm_into(&mut y, pos, 1, xb, rs, par) };
                        }
                    }
                }
            }
        }
    }
}

/// `dst[c * rows + r] = src[r * cols + c]`: `src` as a row-major
/// `rows x cols` matrix, transposed. `dst` is written in order; with
/// `stream`, by non-temporal stores (a large output then goes to memory
/// without first being read into the cache; the caller fences).
fn transpose_into<T: Copy>(src: &[T], dst: &mut [T], rows: usize, cols: usize, stream: bool) {
    assert!(
        src.len() == rows * cols && dst.len() == rows * cols,
        "transpose shapes"
    );
    #[cfg(target_arch = "x86_64")]
    if stream && matches!(std::mem::size_of::<T>(), 4 | 8) {
        for (c, line) in dst.chunks_exact_mut(rows).enumerate() {
            for (r, d) in line.iter_mut().enumerate() {
                // SAFETY: `d` is a valid, aligned element of size 4 or 8,
                // written as the integer of the same bits.
                unsafe { stream_store(d, src[r * cols + c]) };
            }
        }
        return;
    }
    let _ = stream;
    for (c, line) in dst.chunks_exact_mut(rows).enumerate() {
        for (r, d) in line.iter_mut().enumerate() {
            *d = src[r * cols + c];
        }
    }
}

/// A non-temporal store of a 4- or 8-byte value.
///
/// # Safety
/// `T` is 4 or 8 bytes.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn stream_store<T: Copy>(d: &mut T, v: T) {
    use std::arch::x86_64::{_mm_stream_si32, _mm_stream_si64};
    if std::mem::size_of::<T>() == 8 {
        _mm_stream_si64(d as *mut T as *mut i64, std::mem::transmute_copy(&v));
    } else {
        _mm_stream_si32(d as *mut T as *mut i32, std::mem::transmute_copy(&v));
    }
}

/// Orders this thread's non-temporal stores before what follows.
fn store_fence() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: sfence has no preconditions (SSE is baseline on x86_64).
    unsafe {
        std::arch::x86_64::_mm_sfence()
    };
}

/// The error of [`Monarch::apply_rows`] for an input holding NaN or infinity.
pub const NONFINITE_INPUT: &str = "the input contains NaN or infinity";

/// Whether every entry of `x` is finite (`0 v` is zero exactly then),
/// summed in eight lanes so that the pass runs at memory speed.
fn all_finite<T: Real>(x: MatRef<'_, T>) -> bool {
    crate::simd::dispatch(
        #[inline(always)]
        || {
            let mut lanes = [T::ZERO; 8];
            match x.try_as_row_major() {
                Some(rows) => {
                    for i in 0..rows.nrows() {
                        let chunks = rows.row(i).as_slice().chunks_exact(8);
                        for &v in chunks.remainder() {
                            lanes[0] += v * T::ZERO;
                        }
                        for chunk in chunks {
                            for l in 0..8 {
                                lanes[l] += chunk[l] * T::ZERO;
                            }
                        }
                    }
                }
                None => {
                    for i in 0..x.nrows() {
                        for j in 0..x.ncols() {
                            lanes[0] += x[(i, j)] * T::ZERO;
                        }
                    }
                }
            }
            lanes.iter().all(|&v| v == T::ZERO)
        },
    )
}

/// Outputs at least this large (bytes) are written with non-temporal stores.
const STREAM_BYTES: usize = 1 << 25;

/// A Monarch matrix `P_out blkdiag(w2) P_mid blkdiag(w1)` of shape `(l s, k p)`.
#[derive(Clone, Copy)]
pub struct Monarch<'a, T> {
    w1: Blocks<'a, T>,
    w2: Blocks<'a, T>,
}

/// Rows per parallel chunk of the batch.
const CHUNK_ROWS: usize = 128;

impl<'a, T: Real> Monarch<'a, T> {
    /// `w1` of shape `(k, q, p)` and `w2` of shape `(l, s, r)` with `l r = k q`.
    pub fn new(w1: Blocks<'a, T>, w2: Blocks<'a, T>) -> Result<Self> {
        ensure!(
            w2.count * w2.cols == w1.count * w1.rows,
            "w2 of shape ({}, {}, {}) does not fit w1 of shape ({}, {}, {}): l*r = {} != k*q = {}",
            w2.count,
            w2.rows,
            w2.cols,
            w1.count,
            w1.rows,
            w1.cols,
            w2.count * w2.cols,
            w1.count * w1.rows
        );
        Ok(Self { w1, w2 })
    }

    /// `(l s, k p)`.
    pub fn shape(&self) -> (usize, usize) {
        (self.w2.count * self.w2.rows, self.w1.count * self.w1.cols)
    }

    fn stages(&self, transpose: bool) -> [Stage<'a, T>; 2] {
        let (w1, w2) = (self.w1, self.w2);
        let l = w2.count;
        // Forward: x in contiguous blocks of p; out1[r * l + li] is stored
        // permuted so that w2's block li reads it contiguously; y[s * l + li].
        let contiguous = |size| Layout {
            block: size,
            element: 1,
        };
        let interleaved = Layout {
            block: 1,
            element: l,
        };
        if transpose {
            [
                Stage {
                    blocks: w2,
                    transpose: true,
                    input: interleaved,
                    output: Output::Affine(interleaved),
                },
                Stage {
                    blocks: w1,
                    transpose: true,
                    input: contiguous(w1.rows),
                    output: Output::Affine(contiguous(w1.cols)),
                },
            ]
        } else {
            [
                Stage {
                    blocks: w1,
                    transpose: false,
                    input: contiguous(w1.cols),
                    output: Output::Permuted { l, r: w2.cols },
                },
                Stage {
                    blocks: w2,
                    transpose: false,
                    input: contiguous(w2.cols),
                    output: Output::Affine(interleaved),
                },
            ]
        }
    }

    /// `y = x M^T` (each row of `x` multiplied by `M`), or `y = x M` when
    /// `transpose`: `x` is `(batch, n)`, `y` is `(batch, m)` for `M` of
    /// shape `(m, n)` (swapped when `transpose`). Any strides. An `x` holding
    /// NaN or infinity is an error ([`NONFINITE_INPUT`]; `y` is then partly
    /// written).
    pub fn apply_rows(&self, x: MatRef<'_, T>, y: MatMut<'_, T>, transpose: bool) -> Result<()> {
        let (m, n) = self.shape();
        let (ni, no) = if transpose { (m, n) } else { (n, m) };
        ensure!(
            x.ncols() == ni && y.ncols() == no && x.nrows() == y.nrows(),
            "monarch product: input ({}, {}) and output ({}, {}) do not fit a ({}, {}) operator",
            x.nrows(),
            x.ncols(),
            y.nrows(),
            y.ncols(),
            no,
            ni
        );
        let [first, second] = self.stages(transpose);
        let middle = first.blocks.count * first.outputs();
        let chunks = even_blocks(x.nrows(), CHUNK_ROWS);
        // The forward product writes y's columns interleaved (block li's
        // output ss at column ss l + li). Into a row-major y those are
        // scattered stores, so the blocks write contiguously into a row-major
        // buffer instead, and each row is then transposed into y, written in
        // order (by non-temporal stores when y is too large to stay cached):
        // about 15% of the product on W13.
        let (l, s) = (self.w2.count, self.w2.rows);
        let staged = !transpose && y.col_stride() == 1 && l > 1 && s > 1;
        let stream = y.nrows() * y.ncols() * std::mem::size_of::<T>() >= STREAM_BYTES;
        // The transpose reads x's columns interleaved (block li's input ss at
        // column ss l + li): from a row-major x each row is first transposed
        // into a buffer, so the blocks read it contiguously.
        let staged_in = transpose && x.col_stride() == 1 && l > 1 && s > 1;
        let first = if staged_in {
            Stage {
                input: Layout {
                    block: s,
                    element: 1,
                },
                ..first
            }
        } else {
            first
        };
        let second = if staged {
            Stage {
                output: Output::Affine(Layout {
                    block: s,
                    element: 1,
                }),
                ..second
            }
        } else {
            second
        };
        // The middle buffer of a chunk is written in full by the first stage
        // before the second reads it: one buffer per thread, reused (and the
        // staging buffer likewise: the transpose stages x's rows in it, the
        // forward product the second factor's output).
        let nonfinite = std::sync::atomic::AtomicBool::new(false);
        let run_chunk = |bufs: &mut (Mat<T>, Vec<T>),
                         rows: std::ops::Range<usize>,
                         y: MatMut<'_, T>,
                         par: Par| {
            let (mid, out) = bufs;
            if mid.nrows() != rows.len() {
                *mid = Mat::<T>::zeros(rows.len(), middle);
            }
            let xc = x.subrows(rows.start, rows.len());
            // The input is checked here, chunk by chunk, so the check's read
            // brings the chunk into cache for the products that follow.
            if !all_finite(xc) {
                nonfinite.store(true, std::sync::atomic::Ordering::Relaxed);
                return;
            }
            let width = l * s;
            if staged_in {
                out.resize(rows.len() * width, T::ZERO);
                let xr = xc
                    .try_as_row_major()
                    .expect("staged_in: unit column stride");
                for (i, dst) in out.chunks_exact_mut(width).enumerate() {
                    transpose_into(xr.row(i).as_slice(), dst, s, l, false);
                }
                first.run(
                    MatRef::from_row_major_slice(out, rows.len(), width),
                    mid.as_mut(),
                    par,
                );
            } else {
                first.run(xc, mid.as_mut(), par);
            }
            if staged {
                out.resize(rows.len() * width, T::ZERO);
                second.run(
                    mid.as_ref(),
                    MatMut::from_row_major_slice_mut(out, rows.len(), width),
                    par,
                );
                let mut yr = y
                    .try_as_row_major_mut()
                    .expect("staged: unit column stride");
                for (i, src) in out.chunks_exact(width).enumerate() {
                    transpose_into(src, yr.rb_mut().row_mut(i).as_slice_mut(), l, s, stream);
                }
                if stream {
                    store_fence();
                }
            } else {
                second.run(mid.as_ref(), y, par);
            }
        };
        install(|| {
            if chunks.len() <= 1 {
                let mut bufs = (Mat::<T>::zeros(0, 0), Vec::new());
                run_chunk(&mut bufs, 0..x.nrows(), y, crate::parallel::faer_par());
            } else {
                let pieces = split_rows(y, &chunks);
                chunks.into_par_iter().zip(pieces).for_each_init(
                    || (Mat::<T>::zeros(0, 0), Vec::new()),
                    |bufs, (rows, y)| run_chunk(bufs, rows, y, Par::Seq),
                );
            }
        });
        ensure!(!nonfinite.into_inner(), "{NONFINITE_INPUT}");
        Ok(())
    }
}

/// The Frobenius-optimal Monarch approximation of `a` (`m x n`) with `b`
/// blocks: `w1` of shape `(b, b, n / b)` and `w2` of shape `(b, m / b, b)`
/// (C order), from the top singular pair of each rank-one block
/// `B_lk[s, i] = a[s b + l, k (n / b) + i]`.
pub fn project<T: Real>(a: MatRef<'_, T>, b: usize) -> Result<(Vec<T>, Vec<T>)> {
    let (m, n) = a.shape();
    ensure!(
        b >= 1 && m % b == 0 && n % b == 0,
        "nblocks={b} must divide both dimensions of M ({m}, {n})"
    );
    let (ms, ns) = (m / b, n / b);
    let pairs: Result<Vec<(Vec<T>, Vec<T>)>> = install(|| {
        (0..b * b)
            .into_par_iter()
            .map(|lk| -> Result<(Vec<T>, Vec<T>)> {
                let (l, k) = (lk / b, lk % b);
                // SAFETY: rows l, l + b, ..., l + (ms - 1) b and columns
                // k ns .. (k + 1) ns lie inside `a`.
                let block = unsafe {
                    MatRef::from_raw_parts(
                        a.ptr_at(l, k * ns),
                        ms,
                        ns,
                        a.row_stride() * b as isize,
                        a.col_stride(),
                    )
                };
                top_pair(block)
            })
            .collect()
    });
    let pairs = pairs?;
    let mut w1 = vec![T::ZERO; b * b * ns];
    let mut w2 = vec![T::ZERO; b * ms * b];
    for (lk, (u, v)) in pairs.into_iter().enumerate() {
        let (l, k) = (lk / b, lk % b);
        for (i, &vi) in v.iter().enumerate() {
            w1[(k * b + l) * ns + i] = vi;
        }
        for (s, &us) in u.iter().enumerate() {
            w2[(l * ms + s) * b + k] = us;
        }
    }
    Ok((w1, w2))
}

/// `(sqrt(s) u, sqrt(s) v)` for the top singular triple of `block`, signed
/// so that `v`'s entry of largest magnitude is positive.
///
/// From the top eigenpair of the Gram matrix of the block's shorter side
/// (one small GEMM and [`crate::factor::symmetric_top_pair`], sequential: the
/// blocks already run in parallel), the other vector by one product. The top
/// singular vector's sensitivity is the same as the SVD's,
/// `eps s_1 / (s_1 - s_2)`.
fn top_pair<T: Real>(block: MatRef<'_, T>) -> Result<(Vec<T>, Vec<T>)> {
    let (ms, ns) = block.shape();
    // G = B^T B when the rows are the longer side, else B B^T.
    let tall = ms >= ns;
    let side = if tall { block } else { block.transpose() };
    let n = side.ncols();
    let mut g = Mat::<T>::zeros(n, n);
    matmul(
        g.as_mut(),
        Accum::Replace,
        side.transpose(),
        side,
        T::ONE,
        Par::Seq,
    );
    let mut gv: Vec<f64> = (0..n * n).map(|k| g[(k / n, k % n)].to_f64()).collect();
    let (top, w) = crate::factor::symmetric_top_pair(&mut gv, n);
    ensure!(
        top.is_finite() && w.iter().all(|v| v.is_finite()),
        "the top singular pair of a Monarch block is not finite"
    );
    let sigma = top.max(0.0).sqrt();
    // w: the Gram side's singular vector; z = side w / sigma the other one.
    let z: Vec<f64> = (0..side.nrows())
        .map(|r| {
            let dot: f64 = (0..n).map(|c| side[(r, c)].to_f64() * w[c]).sum();
            if sigma > 0.0 {
                dot / sigma
            } else {
                0.0
            }
        })
        .collect();
    let (u, v) = if tall { (z, w) } else { (w, z) };
    let mut pivot = 0;
    for i in 0..v.len() {
        if v[i].abs() > v[pivot].abs() {
            pivot = i;
        }
    }
    let sign = if v.get(pivot).copied().unwrap_or(0.0) < 0.0 {
        -1.0
    } else {
        1.0
    };
    let scale = sign * sigma.sqrt();
    Ok((
        u.iter().map(|&x| T::from_f64(x * scale)).collect(),
        v.iter().map(|&x| T::from_f64(x * scale)).collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testing::uniform as lcg;

    /// The reference convention, written out index by index.
    fn reference(x: &[f64], w1: &[f64], w2: &[f64], d: [usize; 6]) -> Vec<f64> {
        let [k, q, p, l, s, r] = d;
        let mut out1 = vec![0.0; k * q];
        for kk in 0..k {
            for j in 0..q {
                out1[kk * q + j] = (0..p)
                    .map(|i| w1[(kk * q + j) * p + i] * x[kk * p + i])
                    .sum();
            }
        }
        let mut y = vec![0.0; l * s];
        for li in 0..l {
            for ss in 0..s {
                y[ss * l + li] = (0..r)
                    .map(|rr| w2[(li * s + ss) * r + rr] * out1[rr * l + li])
                    .sum();
            }
        }
        y
    }

    #[test]
    fn transposes_rows_with_and_without_streaming_stores() {
        for (rows, cols) in [(64, 64), (3, 5), (1, 7), (8, 1)] {
            let src: Vec<f64> = (0..rows * cols).map(|v| v as f64 * 0.5 - 3.0).collect();
            let src32: Vec<f32> = src.iter().map(|&v| v as f32).collect();
            for stream in [false, true] {
                let mut dst = vec![0.0f64; rows * cols];
                transpose_into(&src, &mut dst, rows, cols, stream);
                let mut dst32 = vec![0.0f32; rows * cols];
                transpose_into(&src32, &mut dst32, rows, cols, stream);
                store_fence();
                for r in 0..rows {
                    for c in 0..cols {
                        assert_eq!(dst[c * rows + r], src[r * cols + c]);
                        assert_eq!(dst32[c * rows + r], src32[r * cols + c]);
                    }
                }
            }
        }
    }

    #[test]
    fn matches_the_reference_and_its_transpose() {
        // k q p l s r with l r = k q: l < q, l > q with runs crossing windows, square.
        for d in [
            [3usize, 4, 5, 2, 3, 6],
            [4, 3, 2, 4, 2, 3],
            [4, 4, 4, 4, 4, 4],
        ] {
            check_dims(d);
        }
    }

    fn check_dims(d: [usize; 6]) {
        let mut seed = 7;
        let [k, q, p, l, s, r] = d;
        let w1: Vec<f64> = (0..k * q * p).map(|_| lcg(&mut seed)).collect();
        let w2: Vec<f64> = (0..l * s * r).map(|_| lcg(&mut seed)).collect();
        let mon = Monarch::new(
            Blocks::new(&w1, k, q, p).unwrap(),
            Blocks::new(&w2, l, s, r).unwrap(),
        )
        .unwrap();
        let (m, n) = mon.shape();
        let batch = 600;
        let x = Mat::from_fn(batch, n, |_, _| lcg(&mut seed));
        let mut y = Mat::zeros(batch, m);
        mon.apply_rows(x.as_ref(), y.as_mut(), false).unwrap();
        let mut dense = Mat::<f64>::zeros(m, n);
        for c in 0..n {
            let e: Vec<f64> = (0..n).map(|i| (i == c) as u8 as f64).collect();
            let col = reference(&e, &w1, &w2, d);
            for i in 0..m {
                dense[(i, c)] = col[i];
            }
        }
        // A row-major output takes the staged path (contiguous blocks, then
        // each row transposed into place): the same values.
        let mut y_rows = vec![0.0; batch * m];
        let y_rm = MatMut::from_row_major_slice_mut(&mut y_rows, batch, m);
        mon.apply_rows(x.as_ref(), y_rm, false).unwrap();
        for i in 0..batch {
            for c in 0..m {
                assert!((y_rows[i * m + c] - y[(i, c)]).abs() < 1e-12);
            }
        }
        for row in [0, 17, batch - 1] {
            let xr: Vec<f64> = (0..n).map(|i| x[(row, i)]).collect();
            let want = reference(&xr, &w1, &w2, d);
            for i in 0..m {
                assert!((y[(row, i)] - want[i]).abs() < 1e-12);
            }
        }
        // x M (the transpose applied to rows) against the dense matrix.
        let xt = Mat::from_fn(batch, m, |_, _| lcg(&mut seed));
        let mut yt = Mat::zeros(batch, n);
        mon.apply_rows(xt.as_ref(), yt.as_mut(), true).unwrap();
        let want = &xt * &dense;
        assert!((&yt - &want).norm_max() < 1e-12);
        // A row-major input to the transpose is staged (each row transposed
        // into a buffer first): the same values.
        let xt_rows: Vec<f64> = (0..batch * m).map(|t| xt[(t / m, t % m)]).collect();
        let mut yt2 = Mat::zeros(batch, n);
        let xt_rm = MatRef::from_row_major_slice(&xt_rows, batch, m);
        mon.apply_rows(xt_rm, yt2.as_mut(), true).unwrap();
        assert!((&yt2 - &want).norm_max() < 1e-12);
    }

    #[test]
    fn projection_is_exact_on_monarch_matrices() {
        let mut seed = 3;
        let (b, m, n) = (4, 12, 8);
        let w1: Vec<f64> = (0..b * b * (n / b)).map(|_| lcg(&mut seed)).collect();
        let w2: Vec<f64> = (0..b * (m / b) * b).map(|_| lcg(&mut seed)).collect();
        let mon = Monarch::new(
            Blocks::new(&w1, b, b, n / b).unwrap(),
            Blocks::new(&w2, b, m / b, b).unwrap(),
        )
        .unwrap();
        let eye = Mat::<f64>::identity(n, n);
        let mut dense_t = Mat::zeros(n, m);
        mon.apply_rows(eye.as_ref(), dense_t.as_mut(), false)
            .unwrap();
        let dense = dense_t.transpose().to_owned();
        let (p1, p2) = project(dense.as_ref(), b).unwrap();
        let proj = Monarch::new(
            Blocks::new(&p1, b, b, n / b).unwrap(),
            Blocks::new(&p2, b, m / b, b).unwrap(),
        )
        .unwrap();
        let mut back = Mat::zeros(n, m);
        proj.apply_rows(eye.as_ref(), back.as_mut(), false).unwrap();
        assert!((&back - &dense_t).norm_max() < 1e-12);
        assert!(project(dense.as_ref(), 3).is_err());
    }
}
