//! Kernels on block vectors (row-major `n x m` arrays): dot products, fused
//! updates, sparse products. Rows go in fixed blocks and partial sums are added
//! in block order, so results do not depend on the thread count; small
//! problems run the same blocks on one thread (no fork-join per pass).

use rayon::prelude::*;

use crate::sparse::{Compressed, Diagonals, Index, Sliced, MAX_DIAGONALS, SLICE_LANES};
use crate::Real;

/// Rows per block.
pub const BLOCK: usize = 4096;
/// Rows per piece when a product's dot products are taken piece by piece (a
/// multiple of [`DOT_LANES`], see [`add_lanes`]): 8 KiB of one column, still
/// in cache for the dot product. 256 spent a quarter of the product with dot
/// (W17b's 40,000 rows: 24-29 against 18 us on two cores) setting up pieces.
const DOT_PIECE: usize = 1024;
/// Lanes of a dot product: row `i` goes into lane `i % DOT_LANES`. Four
/// registers of eight: a single register's sums wait on each other (the
/// adder's latency), which ran at a third of this speed.
const DOT_LANES: usize = 32;
const _: () = assert!(DOT_LANES == 32, "add_lanes keeps four registers of eight");
/// Below this many elements a pass runs on the calling thread.
const PARALLEL_ELEMS: usize = 1 << 14;

/// Runs `f` on every block (given as its index), in parallel for large `elems`;
/// the results come back in block order either way.
fn blocks<B: Send, R: Send>(
    elems: usize,
    items: Vec<B>,
    f: impl Fn(B) -> R + Sync + Send,
) -> Vec<R> {
    if elems >= PARALLEL_ELEMS {
        items
            .into_par_iter()
            .map(|b| {
                crate::simd::dispatch(
                    #[inline(always)]
                    || f(b),
                )
            })
            .collect()
    } else {
        crate::simd::dispatch(
            #[inline(always)]
            || items.into_iter().map(f).collect(),
        )
    }
}

fn ordered_sum(partials: Vec<Vec<f64>>, m: usize) -> Vec<f64> {
    let mut total = vec![0.0; m];
    sum_into(&mut total, partials);
    total
}

/// At most eight fixed groups of `0..len` (boundaries from `len` only), for
/// kernels that keep one partial result per group.
fn eight_groups(len: usize) -> Vec<std::ops::Range<usize>> {
    crate::parallel::even_blocks(len, len.div_ceil(8).max(1))
}

/// `z = sum of parts`, added in order onto zeros.
fn sum_into<T: Real>(z: &mut [T], parts: Vec<Vec<T>>) {
    z.fill(T::ZERO);
    for part in parts {
        for (t, v) in z.iter_mut().zip(part) {
            *t += v;
        }
    }
}

/// Per-block column dot products, accumulated in f64 in [`DOT_LANES`] lanes
/// (row `i` into lane `i % DOT_LANES`, the lanes summed in order, then the
/// last `rows % DOT_LANES` rows):
/// the same order for every `m`, so each column of a block solve rounds exactly
/// like a single solve. Public for the product epilogues of other modules,
/// which run one block inside their own [`crate::simd::dispatch`].
#[inline(always)]
pub fn block_dots<T: Real>(x: &[T], y: &[T], m: usize) -> Vec<f64> {
    let mut lanes = vec![0.0f64; DOT_LANES * m];
    let (xr, yr) = add_lanes(&mut lanes, x, y, m);
    finish_lanes(&lanes, xr, yr, m)
}

/// [`block_dots`] in pieces: adds the whole [`DOT_LANES`]-row chunks of `x` and `y`
/// to `lanes` (`lanes[l * m + c]`: lane `l` of column `c`, so a chunk is one
/// contiguous, vectorized pass) and returns the rows left over. Calls on
/// consecutive pieces whose lengths are multiples of [`DOT_LANES`] rows, then
/// [`finish_lanes`], give exactly [`block_dots`] of the whole.
#[inline(always)]
fn add_lanes<'a, T: Real>(
    lanes: &mut [f64],
    x: &'a [T],
    y: &'a [T],
    m: usize,
) -> (&'a [T], &'a [T]) {
    let (xc, yc) = (x.chunks_exact(DOT_LANES * m), y.chunks_exact(DOT_LANES * m));
    let (xr, yr) = (xc.remainder(), yc.remainder());
    if m == 1 {
        // The lanes in four registers of eight, each its own variable (as
        // one array they went through memory, and each chunk waited on the
        // previous chunk's stores).
        let load = |c: usize| -> [f64; 8] { lanes[c * 8..c * 8 + 8].try_into().expect("8 lanes") };
        let (mut a0, mut a1, mut a2, mut a3) = (load(0), load(1), load(2), load(3));
        for (a, b) in xc.zip(yc) {
            for l in 0..8 {
                a0[l] += a[l].to_f64() * b[l].to_f64();
                a1[l] += a[8 + l].to_f64() * b[8 + l].to_f64();
                a2[l] += a[16 + l].to_f64() * b[16 + l].to_f64();
                a3[l] += a[24 + l].to_f64() * b[24 + l].to_f64();
            }
        }
        for (c, acc) in [a0, a1, a2, a3].iter().enumerate() {
            lanes[c * 8..c * 8 + 8].copy_from_slice(acc);
        }
        return (xr, yr);
    }
    for (a, b) in xc.zip(yc) {
        for ((s, &u), &v) in lanes.iter_mut().zip(a).zip(b) {
            *s += u.to_f64() * v.to_f64();
        }
    }
    (xr, yr)
}

/// The column sums of `lanes` (in lane order), then the left-over rows.
#[inline(always)]
fn finish_lanes<T: Real>(lanes: &[f64], xr: &[T], yr: &[T], m: usize) -> Vec<f64> {
    let mut s: Vec<f64> = (0..m)
        .map(|c| (0..DOT_LANES).map(|l| lanes[l * m + c]).sum::<f64>())
        .collect();
    for (a, b) in xr.chunks_exact(m).zip(yr.chunks_exact(m)) {
        for c in 0..m {
            s[c] += a[c].to_f64() * b[c].to_f64();
        }
    }
    s
}

/// `x[:, c] . y[:, c]` for every column.
pub fn column_dots<T: Real>(x: &[T], y: &[T], m: usize) -> Vec<f64> {
    let items: Vec<(&[T], &[T])> = x.chunks(BLOCK * m).zip(y.chunks(BLOCK * m)).collect();
    ordered_sum(
        blocks(
            x.len(),
            items,
            #[inline(always)]
            |(a, b)| block_dots(a, b, m),
        ),
        m,
    )
}

/// `||x[:, c]||` for every column.
pub fn column_norms<T: Real>(x: &[T], m: usize) -> Vec<f64> {
    column_dots(x, x, m).into_iter().map(f64::sqrt).collect()
}

/// The CG residual step: `r -= alpha q` (per-column alpha); returns
/// `||r[:, c]||^2`, in one pass.
pub fn residual_step<T: Real>(r: &mut [T], q: &[T], alpha: &[T]) -> Vec<f64> {
    let m = alpha.len();
    let elems = r.len();
    let items: Vec<_> = r.chunks_mut(BLOCK * m).zip(q.chunks(BLOCK * m)).collect();
    let partials = blocks(
        elems,
        items,
        #[inline(always)]
        |(rb, qb)| {
            if m == 1 {
                let a = alpha[0];
                for (rv, &qv) in rb.iter_mut().zip(qb) {
                    *rv -= a * qv;
                }
            } else {
                for (rr, qr) in rb.chunks_exact_mut(m).zip(qb.chunks_exact(m)) {
                    // Zipped slices, not indices: this form vectorizes.
                    for ((rv, &qv), &a) in rr.iter_mut().zip(qr).zip(alpha) {
                        *rv -= a * qv;
                    }
                }
            }
            block_dots(rb, rb, m)
        },
    );
    ordered_sum(partials, m)
}

/// The CG direction step: `x += alpha p` first when `x` is given (the step's
/// update of x, sharing this pass), then `p = z + beta p` (per-column alpha
/// and beta).
pub fn direction_step<T: Real>(p: &mut [T], z: &[T], beta: &[T], x: Option<(&mut [T], &[T])>) {
    let m = beta.len();
    let elems = p.len();
    let (x, alpha) = match x {
        Some((x, alpha)) => (Some(x), alpha),
        None => (None, beta),
    };
    let mut x_blocks: Vec<Option<&mut [T]>> = match x {
        Some(x) => x.chunks_mut(BLOCK * m).map(Some).collect(),
        None => Vec::new(),
    };
    x_blocks.resize_with(p.len().div_ceil(BLOCK * m), || None);
    let items: Vec<_> = p
        .chunks_mut(BLOCK * m)
        .zip(z.chunks(BLOCK * m))
        .zip(x_blocks)
        .collect();
    blocks(
        elems,
        items,
        #[inline(always)]
        |((pb, zb), xb)| {
            if let Some(xb) = xb {
                axpy_rows(xb, alpha, pb, m);
            }
            if m == 1 {
                let b = beta[0];
                for (pv, &zv) in pb.iter_mut().zip(zb) {
                    *pv = zv + b * *pv;
                }
                return;
            }
            for (pr, zr) in pb.chunks_exact_mut(m).zip(zb.chunks_exact(m)) {
                for ((pv, &zv), &b) in pr.iter_mut().zip(zr).zip(beta) {
                    *pv = zv + b * *pv;
                }
            }
        },
    );
}

/// `y += alpha x` (per-column alpha).
pub fn axpy<T: Real>(alpha: &[T], x: &[T], y: &mut [T]) {
    let m = alpha.len();
    let elems = y.len();
    let items: Vec<_> = y.chunks_mut(BLOCK * m).zip(x.chunks(BLOCK * m)).collect();
    blocks(
        elems,
        items,
        #[inline(always)]
        |(yb, xb)| axpy_rows(yb, alpha, xb, m),
    );
}

/// `y += alpha x` on a block (per-column alpha).
#[inline(always)]
fn axpy_rows<T: Real>(y: &mut [T], alpha: &[T], x: &[T], m: usize) {
    if m == 1 {
        let a = alpha[0];
        for (yv, &xv) in y.iter_mut().zip(x) {
            *yv += a * xv;
        }
        return;
    }
    for (yr, xr) in y.chunks_exact_mut(m).zip(x.chunks_exact(m)) {
        for ((yv, &xv), &a) in yr.iter_mut().zip(xr).zip(alpha) {
            *yv += a * xv;
        }
    }
}

/// A row-major block as a faer view.
pub fn view<T>(v: &[T], n: usize, m: usize) -> faer::MatRef<'_, T> {
    faer::MatRef::from_row_major_slice(v, n, m)
}

/// A row-major block as a mutable faer view.
pub fn view_mut<T>(v: &mut [T], n: usize, m: usize) -> faer::MatMut<'_, T> {
    faer::MatMut::from_row_major_slice_mut(v, n, m)
}

/// `y[:, c] = a[c] x[:, c] + b[c] y[:, c]`.
pub fn axpby<T: Real>(a: &[T], x: &[T], b: &[T], y: &mut [T]) {
    let m = a.len();
    let elems = y.len();
    let items: Vec<_> = y.chunks_mut(BLOCK * m).zip(x.chunks(BLOCK * m)).collect();
    blocks(
        elems,
        items,
        #[inline(always)]
        |(yb, xb)| {
            if m == 1 {
                let (a, b) = (a[0], b[0]);
                for (yv, &xv) in yb.iter_mut().zip(xb) {
                    *yv = a * xv + b * *yv;
                }
                return;
            }
            for (yr, xr) in yb.chunks_exact_mut(m).zip(xb.chunks_exact(m)) {
                for (((yv, &xv), &ac), &bc) in yr.iter_mut().zip(xr).zip(a).zip(b) {
                    *yv = ac * xv + bc * *yv;
                }
            }
        },
    );
}

/// `x[:, c] *= s[c]`.
pub fn scale<T: Real>(x: &mut [T], s: &[T]) {
    let m = s.len();
    let elems = x.len();
    let items: Vec<_> = x.chunks_mut(BLOCK * m).collect();
    blocks(
        elems,
        items,
        #[inline(always)]
        |xb| {
            if m == 1 {
                let s = s[0];
                for v in xb.iter_mut() {
                    *v *= s;
                }
                return;
            }
            for xr in xb.chunks_exact_mut(m) {
                for (xv, &sc) in xr.iter_mut().zip(s) {
                    *xv *= sc;
                }
            }
        },
    );
}

/// `y[:, c] = a[c] x[:, c] + b[c] y[:, c]` and returns `||y[:, c]||^2`, in one pass.
pub fn axpby_dots<T: Real>(a: &[T], x: &[T], b: &[T], y: &mut [T]) -> Vec<f64> {
    let m = a.len();
    let elems = y.len();
    let items: Vec<_> = y.chunks_mut(BLOCK * m).zip(x.chunks(BLOCK * m)).collect();
    let partials = blocks(
        elems,
        items,
        #[inline(always)]
        |(yb, xb)| axpby_block(a, xb, b, yb),
    );
    ordered_sum(partials, m)
}

/// [`axpby_dots`] for one block of rows, on the calling thread: for the
/// epilogues of the sparse products, which already run inside a parallel
/// product (and are called through `dyn Fn`, so they dispatch here).
pub fn axpby_dots_in_block<T: Real>(a: &[T], x: &[T], b: &[T], y: &mut [T]) -> Vec<f64> {
    crate::simd::dispatch(
        #[inline(always)]
        || axpby_block(a, x, b, y),
    )
}

#[inline(always)]
fn axpby_block<T: Real>(a: &[T], x: &[T], b: &[T], y: &mut [T]) -> Vec<f64> {
    let m = a.len();
    if m == 1 {
        let (a, b) = (a[0], b[0]);
        for (yv, &xv) in y.iter_mut().zip(x) {
            *yv = a * xv + b * *yv;
        }
    } else {
        for (yr, xr) in y.chunks_exact_mut(m).zip(x.chunks_exact(m)) {
            for (((yv, &xv), &ac), &bc) in yr.iter_mut().zip(xr).zip(a).zip(b) {
                *yv = ac * xv + bc * *yv;
            }
        }
    }
    block_dots(y, y, m)
}

/// MINRES's direction and iterate update in one pass:
/// `w_old = sv v + s_old w_old + s_cur w_cur` (the new direction, written over
/// the oldest one) and `x += phi w_old`.
#[allow(clippy::too_many_arguments)]
pub fn minres_update<T: Real>(
    v: &[T],
    w_old: &mut [T],
    w_cur: &[T],
    x: &mut [T],
    sv: &[T],
    s_old: &[T],
    s_cur: &[T],
    phi: &[T],
) {
    let m = sv.len();
    let elems = x.len();
    let items: Vec<_> = w_old
        .chunks_mut(BLOCK * m)
        .zip(x.chunks_mut(BLOCK * m))
        .zip(v.chunks(BLOCK * m).zip(w_cur.chunks(BLOCK * m)))
        .collect();
    blocks(
        elems,
        items,
        #[inline(always)]
        |((wo, xb), (vb, wc))| {
            if m == 1 {
                let (a, b, c, p) = (sv[0], s_old[0], s_cur[0], phi[0]);
                for ((wv, xv), (&vv, &cv)) in
                    wo.iter_mut().zip(xb.iter_mut()).zip(vb.iter().zip(wc))
                {
                    let w = a * vv + b * *wv + c * cv;
                    *wv = w;
                    *xv += p * w;
                }
                return;
            }
            for ((wr, xr), (vr, cr)) in wo
                .chunks_exact_mut(m)
                .zip(xb.chunks_exact_mut(m))
                .zip(vb.chunks_exact(m).zip(wc.chunks_exact(m)))
            {
                let coefficients = sv.iter().zip(s_old).zip(s_cur.iter().zip(phi));
                for (((wv, xv), (&vv, &cv)), ((&a, &b), (&c, &p))) in wr
                    .iter_mut()
                    .zip(xr.iter_mut())
                    .zip(vr.iter().zip(cr))
                    .zip(coefficients)
                {
                    let w = a * vv + b * *wv + c * cv;
                    *wv = w;
                    *xv += p * w;
                }
            }
        },
    );
}

/// Work done on a block of rows of a product right after the block is
/// computed (while it is in cache): called with the first row of the block and
/// the block (`rows x m`, row-major); returns per-column partial sums, which
/// are added in block order.
pub type Epilogue<'a, T> = dyn Fn(usize, &mut [T]) -> Vec<f64> + Sync + 'a;

/// Runs `then` over `y` (`n x m`, row-major) in the blocks the sparse
/// products use; returns the summed partials.
pub fn epilogue_blocks<T: Real>(y: &mut [T], m: usize, then: &Epilogue<'_, T>) -> Vec<f64> {
    let elems = y.len();
    let items: Vec<(usize, &mut [T])> = y.chunks_mut(BLOCK * m).enumerate().collect();
    ordered_sum(
        blocks(
            elems,
            items,
            #[inline(always)]
            |(b, yb)| then(b * BLOCK, yb),
        ),
        m,
    )
}

/// `y = A x` for a sparse `A` given by its rows, `x` and `y` row-major with
/// `m` columns; with `dot`, also returns `x[:, c] . y[:, c]` (square `A`),
/// fused into the same pass.
pub fn sparse_times<T: Real, I: Index>(
    a: Compressed<'_, T, I>,
    x: &[T],
    y: &mut [T],
    m: usize,
    dot: bool,
) -> Option<Vec<f64>> {
    sparse_times_then(a, x, y, m, dot, None)
}

/// [`sparse_times`], then `then` on each block of `y` as soon as it is done
/// (its partial sums are returned, in place of the dot products).
pub fn sparse_times_then<T: Real, I: Index>(
    a: Compressed<'_, T, I>,
    x: &[T],
    y: &mut [T],
    m: usize,
    dot: bool,
    then: Option<&Epilogue<'_, T>>,
) -> Option<Vec<f64>> {
    assert!(
        x.len() == a.minor() * m && y.len() == a.major() * m,
        "block shapes"
    );
    let elems = a.nnz() + y.len();
    let items: Vec<(usize, &mut [T])> = y.chunks_mut(BLOCK * m).enumerate().collect();
    let partials = blocks(
        elems,
        items,
        #[inline(always)]
        |(b, yb)| {
            let first = b * BLOCK;
            let mut sums = vec![0.0f64; m];
            if m == 1 {
                let (indptr, indices, values) = a.arrays();
                let mut start = indptr[first].to_usize();
                // A local accumulator: through `sums` every row would wait on a
                // store and reload of the previous row's sum.
                let mut dot_sum = 0.0f64;
                for (t, yv) in yb.iter_mut().enumerate() {
                    // SAFETY: the structure was checked at construction (indptr
                    // nondecreasing up to nnz, indices < ncols = x.len()), and
                    // first + t + 1 <= nrows.
                    let end = unsafe { indptr.get_unchecked(first + t + 1) }.to_usize();
                    let mut s = T::ZERO;
                    for k in start..end {
                        unsafe {
                            let j = indices.get_unchecked(k).to_usize();
                            s += *values.get_unchecked(k) * *x.get_unchecked(j);
                        }
                    }
                    start = end;
                    *yv = s;
                    if dot {
                        dot_sum += s.to_f64() * x[first + t].to_f64();
                    }
                }
                sums[0] = dot_sum;
            } else {
                let (indptr, indices, values) = a.arrays();
                let mut start = indptr[first].to_usize();
                for (t, yr) in yb.chunks_exact_mut(m).enumerate() {
                    // SAFETY: as for m = 1; x holds ncols * m values.
                    unsafe {
                        let end = indptr.get_unchecked(first + t + 1).to_usize();
                        let (idx, vals) = (
                            indices.get_unchecked(start..end),
                            values.get_unchecked(start..end),
                        );
                        line_times(idx, vals, x, yr);
                        start = end;
                    }
                    if dot {
                        let xr = &x[(first + t) * m..(first + t + 1) * m];
                        for c in 0..m {
                            sums[c] += yr[c].to_f64() * xr[c].to_f64();
                        }
                    }
                }
            }
            match then {
                Some(f) => f(first, yb),
                None => sums,
            }
        },
    );
    (dot || then.is_some()).then(|| ordered_sum(partials, m))
}

/// [`sparse_times_then`] for a matrix stored by diagonals, on the same row
/// blocks. Each row adds its products in the order of its diagonals (as CSR
/// adds them in the order of its sorted indices, so `y` is the same up to the
/// sign of zeros); the slots outside the matrix's entries hold zeros. Rows
/// where every diagonal lies inside the matrix run eight at a time with no
/// index to read; the dot products go in [`block_dots`]'s order.
pub fn diagonal_times_then<T: Real>(
    a: &Diagonals<T>,
    x: &[T],
    y: &mut [T],
    m: usize,
    dot: bool,
    then: Option<&Epilogue<'_, T>>,
) -> Option<Vec<f64>> {
    assert!(
        x.len() == a.ncols() * m && y.len() == a.nrows() * m,
        "block shapes"
    );
    let elems = a.offsets().len() * a.nrows() + y.len();
    let items: Vec<(usize, &mut [T])> = y.chunks_mut(BLOCK * m).enumerate().collect();
    let partials = blocks(
        elems,
        items,
        #[inline(always)]
        |(b, yb)| {
            let first = b * BLOCK;
            if let (None, true) = (then, dot) {
                // The dot products of each piece of rows while it is in cache.
                let mut lanes = vec![0.0f64; DOT_LANES * m];
                let rows = yb.len() / m;
                let mut left = (&[][..], &[][..]);
                for start in (0..rows).step_by(DOT_PIECE) {
                    let end = (start + DOT_PIECE).min(rows);
                    let piece = &mut yb[start * m..end * m];
                    diagonal_rows(a, x, piece, first + start, m);
                    let xs = &x[(first + start) * m..(first + end) * m];
                    left = add_lanes(&mut lanes, xs, piece, m);
                }
                return finish_lanes(&lanes, left.0, left.1, m);
            }
            diagonal_rows(a, x, yb, first, m);
            match then {
                Some(f) => f(first, yb),
                None => Vec::new(),
            }
        },
    );
    (dot || then.is_some()).then(|| ordered_sum(partials, m))
}

/// `y = A x` for the rows `first..first + y.len() / m` of a matrix stored by
/// diagonals, at whichever width it keeps its values.
#[inline(always)]
fn diagonal_rows<T: Real>(a: &Diagonals<T>, x: &[T], yb: &mut [T], first: usize, m: usize) {
    if a.is_narrow() {
        let diagonal = |d: usize| a.narrow_diagonal(d).expect("narrow values");
        diagonal_rows_with(a, diagonal, |v: f32| T::from_f64(v as f64), x, yb, first, m);
    } else {
        diagonal_rows_with(a, |d: usize| a.diagonal(d), |v: T| v, x, yb, first, m);
    }
}

/// [`diagonal_rows`] with the values of diagonal `d` given by `diagonal(d)`
/// and widened by `lift` (exactly).
#[inline(always)]
fn diagonal_rows_with<'a, T: Real, V: Copy + 'a>(
    a: &Diagonals<T>,
    diagonal: impl Fn(usize) -> &'a [V],
    lift: impl Fn(V) -> T + Copy,
    x: &[T],
    yb: &mut [T],
    first: usize,
    m: usize,
) {
    let rows = first..first + yb.len() / m;
    let interior = a.interior();
    let lo = interior.start.clamp(rows.start, rows.end);
    let hi = interior.end.clamp(lo, rows.end);
    for i in (rows.start..lo).chain(hi..rows.end) {
        if m == 1 {
            // The same sum in a register (this loop ran at a tenth of the
            // interior rows' speed through memory).
            let mut s = T::ZERO;
            for (d, &off) in a.offsets().iter().enumerate() {
                let j = i as isize + off;
                if j >= 0 && (j as usize) < a.ncols() {
                    s += lift(diagonal(d)[i]) * x[j as usize];
                }
            }
            yb[i - first] = s;
            continue;
        }
        let yr = &mut yb[(i - first) * m..(i - first + 1) * m];
        yr.fill(T::ZERO);
        for (d, &off) in a.offsets().iter().enumerate() {
            let j = i as isize + off;
            if j < 0 || j as usize >= a.ncols() {
                continue; // a slot outside the matrix
            }
            let v = lift(diagonal(d)[i]);
            let j = j as usize;
            for (s, &xv) in yr.iter_mut().zip(&x[j * m..(j + 1) * m]) {
                *s += v * xv;
            }
        }
    }
    if lo == hi {
        return;
    }
    // Interior rows: i + offset is a column for every diagonal, so every
    // position read is below ncols * m = x.len().
    // On the stack: this runs for every piece of rows of every product.
    let mut table: [(&[V], isize); MAX_DIAGONALS] = [(&[], 0); MAX_DIAGONALS];
    for ((d, &off), slot) in a.offsets().iter().enumerate().zip(table.iter_mut()) {
        *slot = (&diagonal(d)[lo..hi], off);
    }
    let diagonals = &table[..a.offsets().len()];
    let yi = &mut yb[(lo - first) * m..(hi - first) * m];
    if m == 1 {
        // Thirty-two rows per step in four independent sums of eight (one
        // sum's additions wait on each other: a single chain of eight-row
        // sums ran at the adder's latency, a third of this speed), then
        // eight rows per step, the sums in registers.
        const WIDE: usize = 4 * LANES;
        let mut wide = yi.chunks_exact_mut(WIDE);
        let mut t = 0;
        for yc in &mut wide {
            let mut acc = [[T::ZERO; LANES]; 4];
            for &(v, off) in diagonals {
                let j = ((lo + t) as isize + off) as usize;
                let v: &[V; WIDE] = v[t..t + WIDE].try_into().expect("32 rows");
                // SAFETY: j + WIDE <= x.len() (interior rows, see above).
                let xs = unsafe { x.get_unchecked(j..j + WIDE) };
                for (c, a) in acc.iter_mut().enumerate() {
                    for (l, s) in a.iter_mut().enumerate() {
                        *s += lift(v[c * LANES + l]) * xs[c * LANES + l];
                    }
                }
            }
            for (c, a) in acc.iter().enumerate() {
                yc[c * LANES..(c + 1) * LANES].copy_from_slice(a);
            }
            t += WIDE;
        }
        let mut chunks = wide.into_remainder().chunks_exact_mut(LANES);
        for yc in &mut chunks {
            let mut acc = [T::ZERO; LANES];
            for &(v, off) in diagonals {
                let j = ((lo + t) as isize + off) as usize;
                let v: &[V; LANES] = v[t..t + LANES].try_into().expect("eight rows");
                // SAFETY: j + LANES <= x.len() (interior rows, see above).
                let xs = unsafe { x.get_unchecked(j..j + LANES) };
                for (l, s) in acc.iter_mut().enumerate() {
                    *s += lift(v[l]) * xs[l];
                }
            }
            yc.copy_from_slice(&acc);
            t += LANES;
        }
        for yv in chunks.into_remainder() {
            let mut s = T::ZERO;
            for &(v, off) in diagonals {
                s += lift(v[t]) * x[((lo + t) as isize + off) as usize];
            }
            *yv = s;
            t += 1;
        }
    } else {
        // Eight columns of a row per step, the sums in registers (through
        // memory, each diagonal would reload and store the row's sums); the
        // row's values and x rows are looked up once, not once per step.
        let mut vs = [T::ZERO; MAX_DIAGONALS];
        let mut starts = [0usize; MAX_DIAGONALS];
        let nd = diagonals.len();
        for (t, yr) in yi.chunks_exact_mut(m).enumerate() {
            for (d, &(v, off)) in diagonals.iter().enumerate() {
                vs[d] = lift(v[t]);
                starts[d] = ((lo + t) as isize + off) as usize * m;
            }
            let (vs, starts) = (&vs[..nd], &starts[..nd]);
            let mut c0 = 0;
            while c0 + LANES <= m {
                let mut acc = [T::ZERO; LANES];
                for (&v, &j) in vs.iter().zip(starts) {
                    // SAFETY: j + m <= x.len() (interior rows, see above).
                    let xr = unsafe { x.get_unchecked(j + c0..j + c0 + LANES) };
                    for l in 0..LANES {
                        acc[l] += v * xr[l];
                    }
                }
                yr[c0..c0 + LANES].copy_from_slice(&acc);
                c0 += LANES;
            }
            for (c, yv) in yr.iter_mut().enumerate().skip(c0) {
                let mut s = T::ZERO;
                for (&v, &j) in vs.iter().zip(starts) {
                    s += v * x[j + c];
                }
                *yv = s;
            }
        }
    }
}

/// `y = A x` for the rows of window `w` of a sliced matrix (one column),
/// `yb` holding those rows.
#[inline(always)]
fn sliced_rows<T: Real>(a: &Sliced<T>, x: &[T], yb: &mut [T], w: usize) {
    let first = w * a.window();
    for c in a.chunks_of(w, w + 1) {
        let (lanes, idx, vals) = a.chunk(c);
        let mut acc = [T::ZERO; SLICE_LANES];
        for (ic, vc) in idx
            .chunks_exact(SLICE_LANES)
            .zip(vals.chunks_exact(SLICE_LANES))
        {
            for l in 0..SLICE_LANES {
                // SAFETY: the indices come from a checked CSR matrix (< ncols = x.len()).
                acc[l] += vc[l] * unsafe { *x.get_unchecked(ic[l] as usize) };
            }
        }
        for (&row, &s) in lanes.iter().zip(&acc) {
            if row != u32::MAX {
                yb[row as usize - first] = s;
            }
        }
    }
    for &row in a.empty_rows(w) {
        yb[row as usize - first] = T::ZERO;
    }
}

/// `acc[:ncols] += A^T y` for the rows of window `w` of a sliced matrix (one
/// column), `yb` holding those rows of `y`.
#[inline(always)]
fn sliced_scatter<T: Real>(a: &Sliced<T>, yb: &[T], acc: &mut [T], w: usize) {
    let first = w * a.window();
    for c in a.chunks_of(w, w + 1) {
        let (lanes, idx, vals) = a.chunk(c);
        let mut yl = [T::ZERO; SLICE_LANES];
        for (v, &row) in yl.iter_mut().zip(lanes) {
            if row != u32::MAX {
                *v = yb[row as usize - first];
            }
        }
        for (ic, vc) in idx
            .chunks_exact(SLICE_LANES)
            .zip(vals.chunks_exact(SLICE_LANES))
        {
            for l in 0..SLICE_LANES {
                // SAFETY: the indices come from a checked CSR matrix (< ncols <= acc.len()).
                unsafe { *acc.get_unchecked_mut(ic[l] as usize) += vc[l] * yl[l] };
            }
        }
    }
}

/// [`sparse_times_then`] for one column and a sliced matrix whose window is
/// [`BLOCK`] (so its windows are the row blocks).
pub fn sliced_times_then<T: Real>(
    a: &Sliced<T>,
    x: &[T],
    y: &mut [T],
    dot: bool,
    then: Option<&Epilogue<'_, T>>,
) -> Option<Vec<f64>> {
    assert!(
        x.len() == a.ncols() && y.len() == a.nrows() && a.window() == BLOCK,
        "block shapes"
    );
    let elems = a.nrows() * 8;
    let items: Vec<(usize, &mut [T])> = y.chunks_mut(BLOCK).enumerate().collect();
    let partials = blocks(
        elems,
        items,
        #[inline(always)]
        |(w, yb)| {
            sliced_rows(a, x, yb, w);
            let first = w * BLOCK;
            match then {
                Some(f) => f(first, yb),
                None if dot => block_dots(&x[first..first + yb.len()], yb, 1),
                None => Vec::new(),
            }
        },
    );
    (dot || then.is_some()).then(|| ordered_sum(partials, 1))
}

/// [`sparse_times_then_transpose`] for one column and a sliced matrix whose
/// window is [`BLOCK`]: at most eight fixed groups of windows each keep their
/// own partial `z`, added in group order.
pub fn sliced_times_then_transpose<T: Real>(
    a: &Sliced<T>,
    x: &[T],
    y: &mut [T],
    z: &mut [T],
    then: &Epilogue<'_, T>,
) -> Vec<f64> {
    assert!(
        x.len() == a.ncols() && y.len() == a.nrows() && z.len() == x.len() && a.window() == BLOCK,
        "block shapes"
    );
    let windows = a.windows();
    let groups = eight_groups(windows);
    let mut items = Vec::with_capacity(groups.len());
    let mut rest = &mut y[..];
    for g in &groups {
        let rows = (g.end * BLOCK).min(a.nrows()) - g.start * BLOCK;
        let (piece, tail) = rest.split_at_mut(rows);
        items.push((g.clone(), piece));
        rest = tail;
    }
    let zlen = z.len();
    let partials = blocks(
        a.nrows() * 8,
        items,
        #[inline(always)]
        |(g, piece)| {
            let mut acc = vec![T::ZERO; zlen];
            let mut sum = 0.0f64;
            for (w, yb) in g.zip(piece.chunks_mut(BLOCK)) {
                sliced_rows(a, x, yb, w);
                sum += then(w * BLOCK, yb)[0];
                sliced_scatter(a, yb, &mut acc, w);
            }
            (acc, sum)
        },
    );
    let (accs, sums): (Vec<_>, Vec<f64>) = partials.into_iter().unzip();
    sum_into(z, accs);
    vec![sums.into_iter().fold(0.0, |t, s| t + s)]
}

/// [`sparse_transpose_times`] for one column and a sliced matrix whose window
/// is [`BLOCK`]: `z = A^T y`, in at most eight fixed groups of windows.
pub fn sliced_transpose_times<T: Real>(a: &Sliced<T>, y: &[T], z: &mut [T]) {
    assert!(
        y.len() == a.nrows() && z.len() == a.ncols() && a.window() == BLOCK,
        "block shapes"
    );
    let windows = a.windows();
    let groups = eight_groups(windows);
    let zlen = z.len();
    let partials = blocks(
        a.nrows() * 8,
        groups,
        #[inline(always)]
        |g| {
            let mut acc = vec![T::ZERO; zlen];
            for w in g {
                let rows = w * BLOCK..((w + 1) * BLOCK).min(a.nrows());
                sliced_scatter(a, &y[rows], &mut acc, w);
            }
            acc
        },
    );
    sum_into(z, partials);
}

/// `yr = sum_k vals[k] x[idx[k], :]` for one line of a sparse matrix, `x`
/// row-major with `yr.len()` columns.
///
/// # Safety
/// Every index is `< x.len() / yr.len()`.
#[inline(always)]
unsafe fn line_times<T: Real, I: Index>(idx: &[I], vals: &[T], x: &[T], yr: &mut [T]) {
    let m = yr.len();
    yr.fill(T::ZERO);
    for (&j, &v) in idx.iter().zip(vals) {
        let j = j.to_usize();
        let xr = x.get_unchecked(j * m..(j + 1) * m);
        for (s, &xv) in yr.iter_mut().zip(xr) {
            *s += v * xv;
        }
    }
}

/// `acc[idx[k], :] += vals[k] yr` for one line of a sparse matrix, `acc`
/// row-major with `yr.len()` columns.
///
/// # Safety
/// Every index is `< acc.len() / yr.len()`.
#[inline(always)]
unsafe fn line_scatter<T: Real, I: Index>(idx: &[I], vals: &[T], yr: &[T], acc: &mut [T]) {
    let m = yr.len();
    for (&j, &v) in idx.iter().zip(vals) {
        let j = j.to_usize();
        let ar = acc.get_unchecked_mut(j * m..(j + 1) * m);
        for (s, &yv) in ar.iter_mut().zip(yr) {
            *s += v * yv;
        }
    }
}

/// Entries per step of the single-column row kernels.
const LANES: usize = 8;

/// `sum_k values[k] x[indices[k]]` over `start..end`. The last step reads a
/// full `LANES` entries (past the row, within the arrays) and masks out the
/// extra products, so a row of up to `LANES` entries takes no branch that
/// depends on its length: with short rows of varying length, mispredicted
/// loop exits otherwise cost more than the arithmetic.
///
/// # Safety
/// `start <= end <= indices.len() == values.len()` and every index is `< x.len()`.
#[inline(always)]
unsafe fn row_dot<T: Real, I: Index>(
    indices: &[I],
    values: &[T],
    x: &[T],
    start: usize,
    end: usize,
) -> T {
    let mut acc = [T::ZERO; LANES];
    let mut k = start;
    while end - k > LANES {
        for (t, a) in acc.iter_mut().enumerate() {
            *a += *values.get_unchecked(k + t)
                * *x.get_unchecked(indices.get_unchecked(k + t).to_usize());
        }
        k += LANES;
    }
    let left = end - k;
    if k + LANES <= values.len() {
        for (t, a) in acc.iter_mut().enumerate() {
            let p = *values.get_unchecked(k + t)
                * *x.get_unchecked(indices.get_unchecked(k + t).to_usize());
            *a += if t < left { p } else { T::ZERO };
        }
    } else {
        for (t, a) in acc.iter_mut().enumerate().take(left) {
            *a += *values.get_unchecked(k + t)
                * *x.get_unchecked(indices.get_unchecked(k + t).to_usize());
        }
    }
    let [a0, a1, a2, a3, a4, a5, a6, a7] = acc;
    ((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7))
}

/// `acc[indices[k]] += values[k] y` over `start..end`, branch-free for rows
/// of up to `LANES` entries as [`row_dot`]: the masked entries go to the
/// scratch slot `acc[minor]` (one past the columns), which is discarded.
///
/// # Safety
/// As [`row_dot`], with every index `< minor` and `acc.len() == minor + 1`.
#[inline(always)]
unsafe fn row_scatter<T: Real, I: Index>(
    indices: &[I],
    values: &[T],
    y: T,
    acc: &mut [T],
    start: usize,
    end: usize,
) {
    let scratch = acc.len() - 1;
    let mut k = start;
    while end - k > LANES {
        for t in 0..LANES {
            *acc.get_unchecked_mut(indices.get_unchecked(k + t).to_usize()) +=
                *values.get_unchecked(k + t) * y;
        }
        k += LANES;
    }
    let left = end - k;
    if k + LANES <= values.len() {
        for t in 0..LANES {
            let j = indices.get_unchecked(k + t).to_usize();
            let j = if t < left { j } else { scratch };
            *acc.get_unchecked_mut(j) += *values.get_unchecked(k + t) * y;
        }
    } else {
        for t in 0..left {
            *acc.get_unchecked_mut(indices.get_unchecked(k + t).to_usize()) +=
                *values.get_unchecked(k + t) * y;
        }
    }
}

/// `y = A x`, then `then` on each block of `y` (which may rewrite it), then
/// `z = A^T y` with the rewritten `y`, all in one pass over the rows of `A`:
/// each block of rows is scattered into `z` while it is still in cache. At
/// most eight fixed chunks of rows each keep their own partial `z` and sums,
/// added in chunk order, so the result does not depend on the thread count.
/// Returns the summed partials of `then`.
pub fn sparse_times_then_transpose<T: Real, I: Index>(
    a: Compressed<'_, T, I>,
    x: &[T],
    y: &mut [T],
    z: &mut [T],
    m: usize,
    then: &Epilogue<'_, T>,
) -> Vec<f64> {
    assert!(
        x.len() == a.minor() * m && y.len() == a.major() * m && z.len() == x.len(),
        "block shapes"
    );
    let chunks = eight_groups(a.major());
    let mut items = Vec::with_capacity(chunks.len());
    let mut rest = &mut y[..];
    for range in &chunks {
        let (piece, tail) = rest.split_at_mut(range.len() * m);
        items.push((range.clone(), piece));
        rest = tail;
    }
    let (indptr, indices, values) = a.arrays();
    let zlen = z.len();
    let elems = a.nnz() + a.major() * m;
    let partials = blocks(
        elems,
        items,
        #[inline(always)]
        |(range, piece)| {
            // One extra slot: the scratch of `row_scatter`.
            let mut acc = vec![T::ZERO; zlen + 1];
            let mut sums = vec![0.0f64; m];
            for (b, yb) in piece.chunks_mut(BLOCK * m).enumerate() {
                let first = range.start + b * BLOCK;
                let rows = first..first + yb.len() / m;
                // SAFETY (both loops): the structure was checked at construction
                // (indptr nondecreasing up to nnz, indices < minor), rows lie in
                // 0..major, x and acc hold minor * m values.
                if m == 1 {
                    let mut start = indptr[rows.start].to_usize();
                    for (t, yv) in yb.iter_mut().enumerate() {
                        let end = unsafe { indptr.get_unchecked(rows.start + t + 1) }.to_usize();
                        *yv = unsafe { row_dot(indices, values, x, start, end) };
                        start = end;
                    }
                } else {
                    for (i, yr) in rows.clone().zip(yb.chunks_exact_mut(m)) {
                        let (idx, vals) = a.line_slices(i);
                        unsafe { line_times(idx, vals, x, yr) };
                    }
                }
                for (s, p) in sums.iter_mut().zip(then(first, yb)) {
                    *s += p;
                }
                if m == 1 {
                    let mut start = indptr[rows.start].to_usize();
                    for (t, &yv) in yb.iter().enumerate() {
                        let end = unsafe { indptr.get_unchecked(rows.start + t + 1) }.to_usize();
                        unsafe { row_scatter(indices, values, yv, &mut acc, start, end) };
                        start = end;
                    }
                } else {
                    for (i, yr) in rows.zip(yb.chunks_exact(m)) {
                        let (idx, vals) = a.line_slices(i);
                        unsafe { line_scatter(idx, vals, yr, &mut acc) };
                    }
                }
            }
            (acc, sums)
        },
    );
    let (accs, sums): (Vec<_>, Vec<_>) = partials.into_iter().unzip();
    sum_into(z, accs);
    ordered_sum(sums, m)
}

/// `y = A^T x` for a sparse `A` given by its rows (the same as `y = B x` for
/// `B` given by its columns), `x` and `y` row-major with `m` columns: each of at
/// most eight fixed chunks of lines scatters into its own partial sum, and the
/// partials are added in chunk order. No transposed copy of `A` is built.
pub fn sparse_transpose_times<T: Real, I: Index>(
    a: Compressed<'_, T, I>,
    x: &[T],
    y: &mut [T],
    m: usize,
) {
    assert!(
        x.len() == a.major() * m && y.len() == a.minor() * m,
        "block shapes"
    );
    let chunks = eight_groups(a.major());
    let partials = blocks(
        a.nnz() + y.len(),
        chunks,
        #[inline(always)]
        |lines| {
            let mut acc = vec![T::ZERO; y.len()];
            if m == 1 {
                let (indptr, indices, values) = a.arrays();
                let (first, last) = (indptr[lines.start].to_usize(), indptr[lines.end].to_usize());
                let mut start = first;
                for i in lines {
                    // SAFETY: the structure was checked at construction (indptr
                    // nondecreasing up to nnz, indices < minor = acc.len()).
                    let end = unsafe { indptr.get_unchecked(i + 1) }.to_usize();
                    let xi = x[i];
                    for k in start..end {
                        unsafe {
                            let j = indices.get_unchecked(k).to_usize();
                            *acc.get_unchecked_mut(j) += *values.get_unchecked(k) * xi;
                        }
                    }
                    start = end;
                }
                debug_assert_eq!(start, last);
                return acc;
            }
            for i in lines {
                let (indices, values) = a.line_slices(i);
                // SAFETY: indices < minor (checked at construction); acc holds minor * m.
                unsafe { line_scatter(indices, values, &x[i * m..(i + 1) * m], &mut acc) };
            }
            acc
        },
    );
    let mut parts = partials.into_iter();
    match parts.next() {
        Some(first) => y.copy_from_slice(&first),
        None => y.fill(T::ZERO),
    }
    for p in parts {
        for (t, v) in y.iter_mut().zip(p) {
            *t += v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_match_plain_loops() {
        for (n, m) in [(20_001, 3), (100_003, 1), (50, 2)] {
            let x: Vec<f64> = (0..n * m).map(|i| ((i * 7) % 13) as f64 - 6.0).collect();
            let y: Vec<f64> = (0..n * m).map(|i| ((i * 5) % 11) as f64 - 5.0).collect();
            let dots = column_dots(&x, &y, m);
            for c in 0..m {
                let expect: f64 = (0..n).map(|i| x[i * m + c] * y[i * m + c]).sum();
                assert_eq!(dots[c], expect, "integers sum exactly");
            }
            let alpha: Vec<f64> = (0..m).map(|c| 0.5 + c as f64).collect();
            let beta: Vec<f64> = (0..m).map(|c| 0.25 - c as f64).collect();
            let mut rs = y.clone();
            let norms = residual_step(&mut rs, &x, &alpha);
            let (mut xs, mut p) = (x.clone(), y.clone());
            direction_step(&mut p, &rs, &beta, Some((&mut xs, &alpha)));
            let mut p_only = y.clone();
            direction_step(&mut p_only, &rs, &beta, None);
            assert_eq!(p_only, p);
            for c in 0..m {
                let mut expect = 0.0;
                for i in 0..n {
                    let k = i * m + c;
                    let r = y[k] - alpha[c] * x[k];
                    assert_eq!(rs[k], r);
                    expect += r * r;
                    assert_eq!(xs[k], x[k] + alpha[c] * y[k]);
                    assert_eq!(p[k], r + beta[c] * y[k]);
                }
                assert_eq!(norms[c], expect);
            }
        }
    }

    #[test]
    fn fused_updates_match_plain_loops() {
        for (n, m) in [(9_001, 2), (70_001, 1)] {
            let f = |i: usize, k: usize| ((i * k) % 17) as f64 - 8.0;
            let v: Vec<f64> = (0..n * m).map(|i| f(i, 3)).collect();
            let w0: Vec<f64> = (0..n * m).map(|i| f(i, 5)).collect();
            let w1: Vec<f64> = (0..n * m).map(|i| f(i, 7)).collect();
            let x0: Vec<f64> = (0..n * m).map(|i| f(i, 11)).collect();
            let coef = |k: f64| (0..m).map(|c| k + c as f64).collect::<Vec<f64>>();
            let (sv, so, sc, phi) = (coef(0.5), coef(-2.0), coef(0.25), coef(2.0));
            let (mut w, mut x) = (w0.clone(), x0.clone());
            minres_update(&v, &mut w, &w1, &mut x, &sv, &so, &sc, &phi);
            let mut y = w1.clone();
            let sq = axpby_dots(&sv, &v, &so, &mut y);
            let mut z = v.clone();
            scale(&mut z, &phi);
            let mut t = v.clone();
            let sums = epilogue_blocks(&mut t, m, &|first, yb: &mut [f64]| {
                let mut s = vec![0.0; m];
                for (k, val) in yb.iter_mut().enumerate() {
                    *val += ((first * m + k) % 3) as f64;
                    s[k % m] += *val;
                }
                s
            });
            let mut expect_sq = vec![0.0; m];
            let mut expect_sums = vec![0.0; m];
            for i in 0..n * m {
                let c = i % m;
                let nw = sv[c] * v[i] + so[c] * w0[i] + sc[c] * w1[i];
                assert_eq!(w[i], nw);
                assert_eq!(x[i], x0[i] + phi[c] * nw);
                let ny = sv[c] * v[i] + so[c] * w1[i];
                assert_eq!(y[i], ny);
                expect_sq[c] += ny * ny;
                assert_eq!(z[i], v[i] * phi[c]);
                assert_eq!(t[i], v[i] + (i % 3) as f64);
                expect_sums[c] += t[i];
            }
            assert_eq!(sq, expect_sq, "integers sum exactly");
            assert_eq!(sums, expect_sums);
        }
    }

    #[test]
    fn diagonal_product_matches_the_row_product() {
        // Banded rectangular matrices (offsets -3..5 with gaps, some slots
        // empty), rows over several blocks: the diagonal kernel must give the
        // row kernel's y exactly (same order of additions) and its dot
        // products and epilogue sums to rounding.
        let lcg = |k: usize| ((k.wrapping_mul(2654435761) >> 7) % 1000) as f64 / 250.0 - 2.0;
        // Values exact in f32 (kept narrow) for the first shape, not for the others.
        let shapes = [
            (9000usize, 9000usize, true),
            (9000, 9000, false),
            (9000, 8990, false),
            (8990, 9000, false),
            (5, 3, false),
        ];
        for (nrows, ncols, narrow) in shapes {
            let (mut indptr, mut idx, mut val) = (vec![0usize], vec![], vec![]);
            for i in 0..nrows {
                for off in [-3isize, -1, 0, 2, 5] {
                    let j = i as isize + off;
                    if j < 0 || j as usize >= ncols || (i * 7 + off as usize) % 11 == 0 {
                        continue;
                    }
                    idx.push(j as usize);
                    let v = lcg(idx.len());
                    val.push(if narrow { (v * 4.0).round() } else { v });
                }
                indptr.push(idx.len());
            }
            let a = Compressed::new(nrows, ncols, &indptr, &idx, &val).unwrap();
            let d = Diagonals::from_rows(&a).expect("banded");
            assert_eq!(d.is_narrow(), narrow);
            for m in [1usize, 3] {
                let x: Vec<f64> = (0..ncols * m).map(|k| lcg(k + 17)).collect();
                let (mut y0, mut y1) = (vec![0.0; nrows * m], vec![1.0; nrows * m]);
                sparse_times(a, &x, &mut y0, m, false);
                diagonal_times_then(&d, &x, &mut y1, m, false, None);
                assert_eq!(y0, y1, "{nrows}x{ncols}, m = {m}");
                let double = |_: usize, yb: &mut [f64]| {
                    let mut s = vec![0.0; m];
                    for (k, v) in yb.iter_mut().enumerate() {
                        s[k % m] += *v;
                        *v *= 2.0;
                    }
                    s
                };
                let s0 = sparse_times_then(a, &x, &mut y0, m, false, Some(&double)).unwrap();
                let s1 = diagonal_times_then(&d, &x, &mut y1, m, false, Some(&double)).unwrap();
                assert_eq!(y0, y1);
                assert_eq!(s0, s1);
                if nrows == ncols {
                    let d0 = sparse_times(a, &x, &mut y0, m, true).unwrap();
                    let d1 = diagonal_times_then(&d, &x, &mut y1, m, true, None).unwrap();
                    // Taken piece by piece, in exactly column_dots' order.
                    assert_eq!(d1, column_dots(&x, &y1, m));
                    for (u, v) in d0.iter().zip(&d1) {
                        assert!((u - v).abs() <= 1e-12 * u.abs().max(1.0), "{u} vs {v}");
                    }
                }
            }
        }
    }

    #[test]
    fn sliced_products_match_the_row_products() {
        // Rows of 0 to 40 entries (empty rows, rows longer than a slot run,
        // unsorted columns), over several windows, square and rectangular.
        let lcg = |k: usize| (k.wrapping_mul(2654435761) >> 5) % 1000;
        for (nrows, ncols) in [(9000usize, 9000usize), (10_000, 700), (700, 9000)] {
            let (mut indptr, mut idx, mut val) = (vec![0usize], vec![], vec![]);
            for i in 0..nrows {
                let len = match lcg(i) % 10 {
                    0 => 0,
                    1 => 9 + lcg(i + 1) % 32,
                    _ => 1 + lcg(i + 2) % 7,
                };
                let mut cols: Vec<usize> =
                    (0..len).map(|t| lcg(i * 64 + t) * 7919 % ncols).collect();
                cols.dedup();
                for j in cols {
                    idx.push(j);
                    val.push(lcg(idx.len() + 3) as f64 / 250.0 - 2.0);
                }
                indptr.push(idx.len());
            }
            let a = Compressed::new(nrows, ncols, &indptr, &idx, &val).unwrap();
            let sl = Sliced::from_rows(&a, BLOCK).expect("short rows");
            let x: Vec<f64> = (0..ncols)
                .map(|k| lcg(k + 11) as f64 / 100.0 - 5.0)
                .collect();
            let (mut y0, mut y1) = (vec![0.0; nrows], vec![1.0; nrows]);
            sparse_times(a, &x, &mut y0, 1, false);
            sliced_times_then(&sl, &x, &mut y1, false, None);
            assert_eq!(y0, y1, "{nrows}x{ncols}: rows add in the same order");
            let close = |u: &[f64], v: &[f64]| {
                let scale = u.iter().fold(1.0f64, |s, w| s.max(w.abs()));
                u.iter().zip(v).all(|(p, q)| (p - q).abs() <= 1e-12 * scale)
            };
            let (mut z0, mut z1) = (vec![0.0; ncols], vec![1.0; ncols]);
            sparse_transpose_times(a, &y0, &mut z0, 1);
            sliced_transpose_times(&sl, &y0, &mut z1);
            assert!(close(&z0, &z1), "{nrows}x{ncols}: A^T y");
            let half = |_: usize, yb: &mut [f64]| {
                let mut s = 0.0;
                for v in yb.iter_mut() {
                    *v *= 0.5;
                    s += *v;
                }
                vec![s]
            };
            let mut z2 = vec![1.0; ncols];
            let s1 = sliced_times_then_transpose(&sl, &x, &mut y1, &mut z2, &half);
            let mut expect_y = y0.clone();
            let s0 = half(0, &mut expect_y);
            assert_eq!(y1, expect_y);
            assert!((s0[0] - s1[0]).abs() <= 1e-9 * s0[0].abs().max(1.0));
            sparse_transpose_times(a, &expect_y, &mut z0, 1);
            assert!(close(&z0, &z2), "{nrows}x{ncols}: fused");
            if nrows == ncols {
                let d0 = sparse_times(a, &x, &mut y0, 1, true).unwrap();
                let d1 = sliced_times_then(&sl, &x, &mut y1, true, None).unwrap();
                assert!((d0[0] - d1[0]).abs() <= 1e-12 * d0[0].abs().max(1.0));
            }
        }
    }

    #[test]
    fn sparse_product_and_fused_dot() {
        // Tridiagonal n x n with integer entries: exact arithmetic.
        let n: usize = 10_000;
        let (mut indptr, mut idx, mut val) = (vec![0usize], vec![], vec![]);
        for i in 0..n {
            for j in i.saturating_sub(1)..(i + 2).min(n) {
                idx.push(j);
                val.push(if i == j { 2.0 } else { -1.0 });
            }
            indptr.push(idx.len());
        }
        let a = Compressed::new(n, n, &indptr, &idx, &val).unwrap();
        for m in [1usize, 3] {
            let x: Vec<f64> = (0..n * m).map(|k| (k % 7) as f64).collect();
            let mut y = vec![0.0; n * m];
            let dots = sparse_times(a, &x, &mut y, m, true).unwrap();
            for c in 0..m {
                let mut d = 0.0;
                for i in 0..n {
                    let mut s = 2.0 * x[i * m + c];
                    if i > 0 {
                        s -= x[(i - 1) * m + c];
                    }
                    if i + 1 < n {
                        s -= x[(i + 1) * m + c];
                    }
                    assert_eq!(y[i * m + c], s);
                    d += s * x[i * m + c];
                }
                assert_eq!(dots[c], d);
            }
            // The tridiagonal is symmetric: A^T x = A x.
            let mut yt = vec![0.0; n * m];
            sparse_transpose_times(a, &x, &mut yt, m);
            assert_eq!(yt, y);
        }
    }

    #[test]
    fn fused_product_epilogue_and_transpose_match_plain_loops() {
        // A rectangular 30001 x 500 matrix with small integer entries (exact
        // sums), rows of 0 to 6 entries; y = A x - u, z = A^T y, against
        // dense loops, for one and three columns.
        let (rows, cols) = (30_001usize, 500usize);
        let (mut indptr, mut idx, mut val) = (vec![0usize], vec![], vec![]);
        for i in 0..rows {
            let mut line: Vec<usize> = (0..i % 7).map(|t| (i * 31 + t * 97) % cols).collect();
            line.sort_unstable();
            line.dedup();
            for j in line {
                idx.push(j);
                val.push(((i + j) % 5) as f64 - 2.0);
            }
            indptr.push(idx.len());
        }
        let a = Compressed::new(rows, cols, &indptr, &idx, &val).unwrap();
        for m in [1usize, 3] {
            let x: Vec<f64> = (0..cols * m).map(|k| (k % 9) as f64 - 4.0).collect();
            let u: Vec<f64> = (0..rows * m).map(|k| (k % 4) as f64).collect();
            let then = |first: usize, yb: &mut [f64]| -> Vec<f64> {
                let mut sums = vec![0.0; m];
                for (t, v) in yb.iter_mut().enumerate() {
                    *v -= u[first * m + t];
                    sums[t % m] += *v * *v;
                }
                sums
            };
            let (mut y, mut z) = (vec![0.0; rows * m], vec![7.0; cols * m]);
            let sums = sparse_times_then_transpose(a, &x, &mut y, &mut z, m, &then);
            let (mut ey, mut ez, mut es) = (vec![0.0; rows * m], vec![0.0; cols * m], vec![0.0; m]);
            for i in 0..rows {
                for k in indptr[i]..indptr[i + 1] {
                    for c in 0..m {
                        ey[i * m + c] += val[k] * x[idx[k] * m + c];
                    }
                }
                for c in 0..m {
                    ey[i * m + c] -= u[i * m + c];
                    es[c] += ey[i * m + c] * ey[i * m + c];
                }
                for k in indptr[i]..indptr[i + 1] {
                    for c in 0..m {
                        ez[idx[k] * m + c] += val[k] * ey[i * m + c];
                    }
                }
            }
            assert_eq!(y, ey);
            assert_eq!(z, ez);
            assert_eq!(sums, es);
        }
    }
}
