//! Determinantal point processes: exact projection and spectral samplers.
//!
//! A projection DPP with kernel `K = V V^T` (`V` of shape `N x r`,
//! orthonormal columns) is sampled by the chain rule: at step `t` row `j` is
//! picked with probability `|P_t v_j|^2 / (r - t)`, `P_t` projecting onto
//! the complement of the rows already picked (Hough, Krishnapur, Peres,
//! Virág 2006). Instead of updating all `N` conditional probabilities at
//! every step (`O(N r)` per step), a row is *proposed* from the initial
//! distribution `|v_j|^2 / r` and accepted with probability
//! `|P_t v_j|^2 / |v_j|^2 <= 1`: an exact rejection sampler whose expected
//! number of proposals over a whole sample is `r H_r ~ r ln r`, each costing
//! `O(r t)`. A sample thus costs `O(r^3 log r)` after an `O(N r)` setup,
//! independent of `N`, and samples run in parallel.
//!
//! Spectral DPPs (L-ensembles, marginal kernels, features) first select
//! eigenvectors: independently with probability `lambda / (1 + lambda)`, or,
//! for a k-DPP, by the elementary symmetric polynomials of the eigenvalues,
//! kept in log space so that they neither overflow nor underflow at any `N`.
//!
//! Every draw is a pure function of (seed, sample index, draw index), so
//! results do not depend on the thread count.

use std::borrow::Cow;

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatMut, MatRef, Par};
use rayon::prelude::*;

use crate::ensure;
use crate::error::{Error, Result};
use crate::parallel::install;
use crate::rng::{tag, Stream};

/// Rows of a projection kernel's `V`, row-major, and the proposal distribution.
pub struct Projection<'a> {
    n: usize,
    r: usize,
    rows: Cow<'a, [f64]>,
    norms: Vec<f64>,
    cumulative: Vec<f64>,
}

impl<'a> Projection<'a> {
    /// `v` (`N x r`): the chain-rule sampler of the DPP with kernel `v v^T`
    /// (a C-contiguous `v` is borrowed, any other layout copied).
    pub fn new(v: MatRef<'a, f64>) -> Result<Self> {
        let (n, r) = v.shape();
        ensure!(r <= n, "V has more columns ({r}) than rows ({n})");
        if r > 0 && v.col_stride() == 1 && v.row_stride() == r as isize {
            // SAFETY: a row-major view with unit column stride and row stride
            // r addresses exactly n * r consecutive elements, borrowed for 'a.
            let rows = unsafe { std::slice::from_raw_parts(v.as_ptr(), n * r) };
            return Ok(Self::from_rows(Cow::Borrowed(rows), n, r));
        }
        let mut rows = vec![0.0; n * r];
        if v.row_stride() == 1 {
            for j in 0..r {
                for i in 0..n {
                    rows[i * r + j] = v[(i, j)];
                }
            }
        } else {
            for (i, row) in rows.chunks_exact_mut(r.max(1)).enumerate().take(n) {
                for (j, x) in row.iter_mut().enumerate() {
                    *x = v[(i, j)];
                }
            }
        }
        Ok(Self::from_rows(Cow::Owned(rows), n, r))
    }

    fn from_rows(rows: Cow<'a, [f64]>, n: usize, r: usize) -> Self {
        let norms: Vec<f64> = crate::simd::dispatch(
            #[inline(always)]
            || {
                rows.chunks_exact(r.max(1))
                    .map(|row| dot(row, row))
                    .collect()
            },
        );
        let mut total = 0.0;
        let cumulative = norms
            .iter()
            .map(|&x| {
                total += x;
                total
            })
            .collect();
        Self {
            n,
            r,
            rows,
            norms,
            cumulative,
        }
    }

    fn row(&self, j: usize) -> &[f64] {
        &self.rows[j * self.r..(j + 1) * self.r]
    }

    /// One sample of `r` distinct indices in chain-rule order, drawn from
    /// lane `lane` of `stream`.
    pub fn sample(&self, stream: Stream, lane: u32) -> Result<Vec<usize>> {
        crate::simd::dispatch(
            #[inline(always)]
            || self.sample_impl(stream, lane),
        )
    }

    #[inline(always)]
    fn sample_impl(&self, stream: Stream, lane: u32) -> Result<Vec<usize>> {
        let r = self.r;
        let total = self.cumulative.last().copied().unwrap_or(0.0);
        let mut picked = Vec::with_capacity(r);
        // The orthonormal directions spanned by the picked rows, stored by
        // columns: entry c of direction k at dirs[c r + k]. Then `D v` is r
        // contiguous axpys over the directions (no per-direction reduction).
        let mut dirs = vec![0.0; r * r];
        let mut coef = vec![0.0; r];
        let mut w = vec![0.0; r];
        let mut draw = 0u64;
        // Proposals are bounded only in probability; a cap turns a
        // non-orthonormal V (probabilities that do not add up) into an error.
        let cap = 64 * (r as u64 + 1) * (r as u64 + 1) + 1_000_000;
        while picked.len() < r {
            ensure!(
                draw < cap,
                "projection DPP: no acceptance after {draw} proposals; V is not orthonormal"
            );
            let t = picked.len();
            let u = stream.uniform_at_lane(draw, lane) * total;
            let accept = stream.uniform_at_lane(draw + 1, lane);
            draw += 2;
            let j = self.cumulative.partition_point(|&c| c <= u).min(self.n - 1);
            let nj = self.norms[j];
            if nj <= 0.0 || picked.contains(&j) {
                continue;
            }
            // |P_t v_j|^2 = |v_j|^2 - |D v_j|^2; the difference is
            // recomputed by Gram-Schmidt where it cancels.
            let vj = self.row(j);
            let mut residual = nj - coefficients(vj, &dirs, t, &mut coef);
            if residual < 1e-4 * nj {
                residual = gram_schmidt(vj, &dirs, t, &mut coef, &mut w);
            }
            if accept * nj >= residual {
                continue;
            }
            // The new direction: P_t v_j by two passes of Gram-Schmidt.
            let residual = gram_schmidt(vj, &dirs, t, &mut coef, &mut w);
            if residual <= 0.0 {
                continue;
            }
            let scale = 1.0 / residual.sqrt();
            for (c, &wc) in w.iter().enumerate() {
                dirs[c * r + t] = wc * scale;
            }
            picked.push(j);
        }
        Ok(picked)
    }
}

/// `coef = D v` for the first `t` directions of `dirs` (stored by columns,
/// see [`Projection::sample`]); returns `|D v|^2`.
#[inline(always)]
fn coefficients(v: &[f64], dirs: &[f64], t: usize, coef: &mut [f64]) -> f64 {
    let r = v.len();
    let coef = &mut coef[..t];
    coef.fill(0.0);
    // Four entries of v per sweep over coef (each coef[k] still adds its
    // products in the order of c): a quarter of the loads and stores.
    let whole = r / 4 * 4;
    for c in (0..whole).step_by(4) {
        let (v0, v1, v2, v3) = (v[c], v[c + 1], v[c + 2], v[c + 3]);
        let d0 = &dirs[c * r..c * r + t];
        let d1 = &dirs[(c + 1) * r..(c + 1) * r + t];
        let d2 = &dirs[(c + 2) * r..(c + 2) * r + t];
        let d3 = &dirs[(c + 3) * r..(c + 3) * r + t];
        for ((((a, &x0), &x1), &x2), &x3) in coef.iter_mut().zip(d0).zip(d1).zip(d2).zip(d3) {
            *a = *a + v0 * x0 + v1 * x1 + v2 * x2 + v3 * x3;
        }
    }
    for (c, &vc) in v.iter().enumerate().skip(whole) {
        for (a, &d) in coef.iter_mut().zip(&dirs[c * r..c * r + t]) {
            *a += vc * d;
        }
    }
    dot(coef, coef)
}

/// `w = P_t v` by two passes of classical Gram-Schmidt against the first
/// `t` directions ("twice is enough"); returns `|w|^2`.
#[inline(always)]
fn gram_schmidt(v: &[f64], dirs: &[f64], t: usize, coef: &mut [f64], w: &mut [f64]) -> f64 {
    let r = v.len();
    w.copy_from_slice(v);
    for _ in 0..2 {
        coefficients(w, dirs, t, coef);
        for (c, wc) in w.iter_mut().enumerate() {
            *wc -= dot(&coef[..t], &dirs[c * r..c * r + t]);
        }
    }
    dot(w, w)
}

/// A dot product in sixteen independent lanes (vectorizes; the summation
/// order is fixed, so every instruction set gives the same bits).
#[inline(always)]
fn dot(a: &[f64], b: &[f64]) -> f64 {
    const HALF: usize = 8;
    let (mut lo, mut hi) = ([0.0f64; HALF], [0.0f64; HALF]);
    let (ca, cb) = (a.chunks_exact(2 * HALF), b.chunks_exact(2 * HALF));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..HALF {
            lo[l] += x[l] * y[l];
            hi[l] += x[HALF + l] * y[HALF + l];
        }
    }
    let mut tail = 0.0;
    for (x, y) in ra.iter().zip(rb) {
        tail += x * y;
    }
    sum_lanes(lo, hi, tail)
}

/// The lanes of [`dot`] summed by halving. Kept out of line: inlined, the
/// halving pattern made the compiler split the lanes into 128-bit pieces
/// for the whole loop instead of two 512-bit registers.
#[inline(never)]
fn sum_lanes(mut lo: [f64; 8], hi: [f64; 8], tail: f64) -> f64 {
    for (l, h) in lo.iter_mut().zip(hi) {
        *l += h;
    }
    let mut width = lo.len();
    while width > 1 {
        width /= 2;
        for l in 0..width {
            lo[l] += lo[l + width];
        }
    }
    lo[0] + tail
}

/// Checks `max |(V^T V - I) x| <= tol max |x|` on `probes` fixed Gaussian
/// probe vectors, in one pass over the rows of `v` (`O(N r probes)` instead
/// of the `O(N r^2)` of forming `V^T V`). A deviation with entries well
/// above `tol` escapes every probe with negligible probability.
pub fn check_orthonormal(v: MatRef<'_, f64>, tol: f64, probes: usize) -> Result<()> {
    let (n, r) = v.shape();
    if r == 0 || probes == 0 {
        return Ok(());
    }
    let stream = Stream::new(0x5EED_0DD5, tag::ENTRIES);
    let x: Vec<f64> = (0..probes * r)
        .map(|i| stream.normal_at(i as u64))
        .collect();
    let mut back = vec![0.0; probes * r];
    let contiguous = v.col_stride() == 1 && v.row_stride() == r as isize;
    crate::simd::dispatch(
        #[inline(always)]
        || {
            let mut gathered = vec![0.0; r];
            for i in 0..n {
                let row: &[f64] = if contiguous {
                    // SAFETY: row i of a row-major view with unit column
                    // stride is r consecutive elements.
                    unsafe { std::slice::from_raw_parts(v.as_ptr().add(i * r), r) }
                } else {
                    for (c, g) in gathered.iter_mut().enumerate() {
                        *g = v[(i, c)];
                    }
                    &gathered
                };
                for (xp, bp) in x.chunks_exact(r).zip(back.chunks_exact_mut(r)) {
                    let y = dot(row, xp);
                    for (b, &rc) in bp.iter_mut().zip(row) {
                        *b += y * rc;
                    }
                }
            }
        },
    );
    let scale = x.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let err = back
        .iter()
        .zip(&x)
        .fold(0.0f64, |m, (b, xv)| m.max((b - xv).abs()))
        / scale;
    ensure!(
        err <= tol,
        "V must have orthonormal columns: |(V^T V - I) x| / |x| = {err:.2e} > {tol:e} on a probe vector"
    );
    Ok(())
}

/// `n_samples` projection-DPP samples (sample `s` on lane `first + s`).
pub fn sample_projection(
    v: MatRef<'_, f64>,
    n_samples: usize,
    seed: u64,
) -> Result<Vec<Vec<usize>>> {
    let proj = Projection::new(v)?;
    let stream = Stream::new(seed, tag::DPP);
    install(|| {
        (0..n_samples)
            .into_par_iter()
            .map(|s| proj.sample(stream, lane(s)?))
            .collect()
    })
}

fn lane(s: usize) -> Result<u32> {
    u32::try_from(s).map_err(|_| Error::InvalidArgument("at most 2^32 samples per call".into()))
}

/// The eigendecomposition of the dual kernel `Phi^T Phi` (`D x D`) of the
/// L-ensemble `L = Phi Phi^T`: eigenvalues ascending and the eigenvectors as
/// columns. The Gram matrix is formed on its lower triangle (half the flops)
/// by faer on the library's pool, so no other thread pool is woken.
pub fn dual_eigen(phi: MatRef<'_, f64>) -> Result<(Vec<f64>, Mat<f64>)> {
    use faer::linalg::matmul::triangular::{matmul as tri_matmul, BlockStructure};
    let d = phi.ncols();
    ensure!(d >= 1 && phi.nrows() >= 1, "features must not be empty");
    install(|| {
        let par = crate::parallel::faer_par();
        let mut g = Mat::<f64>::zeros(d, d);
        tri_matmul(
            g.as_mut(),
            BlockStructure::TriangularLower,
            Accum::Replace,
            phi.transpose(),
            BlockStructure::Rectangular,
            phi,
            BlockStructure::Rectangular,
            1.0,
            par,
        );
        crate::factor::symmetric_eigen(g.as_ref(), par, "Phi^T Phi")
    })
}

/// `log e_l(lambda_1..lambda_n)` for `l <= k`, `n <= N`: row `n` of the
/// `(N + 1) x (k + 1)` table, by `e_l^n = e_l^{n-1} + lambda_n e_{l-1}^{n-1}`
/// with log-sum-exp (zero eigenvalues give `-inf`, never NaN).
pub fn log_esp_table(lambdas: &[f64], k: usize) -> Vec<f64> {
    let n = lambdas.len();
    let w = k + 1;
    let mut table = vec![f64::NEG_INFINITY; (n + 1) * w];
    for row in 0..=n {
        table[row * w] = 0.0;
    }
    for i in 1..=n {
        let ll = lambdas[i - 1].ln();
        for l in 1..=k.min(i) {
            let a = table[(i - 1) * w + l];
            let b = ll + table[(i - 1) * w + l - 1];
            table[i * w + l] = log_add(a, b);
        }
    }
    table
}

fn log_add(a: f64, b: f64) -> f64 {
    let (hi, lo) = if a >= b { (a, b) } else { (b, a) };
    if hi == f64::NEG_INFINITY {
        return hi;
    }
    hi + (lo - hi).exp().ln_1p()
}

/// How eigenvectors are selected.
#[derive(Clone, Copy, Debug)]
pub enum Selection {
    /// Each independently with probability `lambda / (1 + lambda)`
    /// (`lambda = inf`: always).
    Bernoulli,
    /// Exactly `k`, with probability proportional to the product of their
    /// eigenvalues (a k-DPP).
    Exactly(usize),
}

/// A spectral DPP: eigenvectors (`N x M`, orthonormal columns) and the
/// L-ensemble eigenvalues (`lambda >= 0`, `inf` allowed for a marginal
/// kernel's unit eigenvalues).
pub struct Spectral<'a> {
    /// The eigenvectors, or with `left` their coefficients: eigenvector `j`
    /// is `left vectors[:, j]` (features: `Phi W_j / sqrt(lambda_j)`).
    vectors: MatRef<'a, f64>,
    left: Option<MatRef<'a, f64>>,
    lambdas: Vec<f64>,
    selection: Selection,
    /// For k-DPPs: indices of infinite eigenvalues (always selected), the
    /// finite ones, and the log-ESP table of the finite ones.
    forced: Vec<usize>,
    finite: Vec<usize>,
    table: Vec<f64>,
}

impl<'a> Spectral<'a> {
    pub fn new(vectors: MatRef<'a, f64>, lambdas: &[f64], selection: Selection) -> Result<Self> {
        ensure!(
            vectors.ncols() == lambdas.len(),
            "{} eigenvalues for {} eigenvectors",
            lambdas.len(),
            vectors.ncols()
        );
        ensure!(
            lambdas.iter().all(|&l| l >= 0.0 && !l.is_nan()),
            "eigenvalues must be >= 0"
        );
        let forced: Vec<usize> = (0..lambdas.len())
            .filter(|&i| lambdas[i].is_infinite())
            .collect();
        let finite: Vec<usize> = (0..lambdas.len())
            .filter(|&i| lambdas[i].is_finite())
            .collect();
        let table = match selection {
            Selection::Bernoulli => Vec::new(),
            Selection::Exactly(k) => {
                let positive = lambdas.iter().filter(|&&l| l > 0.0).count();
                ensure!(
                    k <= positive,
                    "k = {k} exceeds the rank of the kernel ({positive} nonzero eigenvalues)"
                );
                ensure!(
                    forced.len() <= k,
                    "k = {k} is smaller than the number of unit marginal eigenvalues ({})",
                    forced.len()
                );
                let f: Vec<f64> = finite.iter().map(|&i| lambdas[i]).collect();
                log_esp_table(&f, k - forced.len())
            }
        };
        Ok(Self {
            vectors,
            left: None,
            lambdas: lambdas.to_vec(),
            selection,
            forced,
            finite,
            table,
        })
    }

    /// Eigenvector `j` is `left vectors[:, j]`: only the selected ones are formed.
    pub fn with_left_factor(mut self, left: MatRef<'a, f64>) -> Result<Self> {
        ensure!(
            left.ncols() == self.vectors.nrows(),
            "left factor with {} columns for coefficients with {} rows",
            left.ncols(),
            self.vectors.nrows()
        );
        self.left = Some(left);
        Ok(self)
    }

    /// The selected eigenvector indices of sample `s`.
    fn select(&self, stream: Stream, s: u32) -> Vec<usize> {
        match self.selection {
            Selection::Bernoulli => (0..self.lambdas.len())
                .filter(|&i| {
                    let l = self.lambdas[i];
                    l.is_infinite() || stream.uniform_at_lane(i as u64, s) * (1.0 + l) < l
                })
                .collect(),
            Selection::Exactly(k) => {
                // Kulesza & Taskar, Algorithm 8, from the last eigenvalue down.
                let mut chosen = self.forced.clone();
                let w = k - self.forced.len() + 1;
                let mut left = k - self.forced.len();
                let mut i = self.finite.len();
                while left > 0 && i > 0 {
                    let ll = self.lambdas[self.finite[i - 1]].ln();
                    let log_p = ll + self.table[(i - 1) * w + left - 1] - self.table[i * w + left];
                    if stream.uniform_at_lane(i as u64, s).ln() < log_p {
                        chosen.push(self.finite[i - 1]);
                        left -= 1;
                    }
                    i -= 1;
                }
                chosen
            }
        }
    }

    /// `n_samples` samples (index sets in chain-rule order).
    pub fn sample(&self, n_samples: usize, seed: u64) -> Result<Vec<Vec<usize>>> {
        let select = Stream::new(seed, tag::DPP_SELECT);
        let chain = Stream::new(seed, tag::DPP);
        let n = self.left.map_or(self.vectors.nrows(), |l| l.nrows());
        install(|| {
            (0..n_samples)
                .into_par_iter()
                .map(|s| {
                    let s = lane(s)?;
                    let cols = self.select(select, s);
                    let r = cols.len();
                    let mut rows = vec![0.0; n * r];
                    match self.left {
                        None => {
                            for (c, &j) in cols.iter().enumerate() {
                                let col = self.vectors.col(j);
                                for i in 0..n {
                                    rows[i * r + c] = col[i];
                                }
                            }
                        }
                        Some(left) => {
                            let coef = Mat::from_fn(self.vectors.nrows(), r, |i, c| {
                                self.vectors[(i, cols[c])]
                            });
                            let dst = MatMut::from_row_major_slice_mut(&mut rows, n, r);
                            // One sample: the product is the call's main cost, use every thread.
                            let par = if n_samples == 1 {
                                crate::parallel::faer_par()
                            } else {
                                Par::Seq
                            };
                            matmul(dst, Accum::Replace, left, coef.as_ref(), 1.0, par);
                        }
                    }
                    if r == 0 {
                        return Ok(Vec::new());
                    }
                    Projection::from_rows(Cow::Owned(rows), n, r).sample(chain, s)
                })
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_esp_matches_direct_sums() {
        let l = [0.5, 2.0, 3.0, 0.0];
        let t = log_esp_table(&l, 3);
        // e_2 of all four: 0.5*2 + 0.5*3 + 2*3 = 8.5; e_3 = 0.5*2*3 = 3
        assert!((t[4 * 4 + 2].exp() - 8.5).abs() < 1e-12);
        assert!((t[4 * 4 + 3].exp() - 3.0).abs() < 1e-12);
        assert!((t[2 * 4 + 2].exp() - 1.0).abs() < 1e-12);
        // Large N with extreme eigenvalues stays finite.
        let big: Vec<f64> = (0..20_000)
            .map(|i| 10f64.powf(-12.0 + 18.0 * i as f64 / 20_000.0))
            .collect();
        let t = log_esp_table(&big, 50);
        assert!(t[20_000 * 51 + 50].is_finite());
    }

    #[test]
    fn projection_frequencies_match_the_kernel_diagonal() {
        // V: orthonormal 6 x 2 from a fixed QR.
        let a = Mat::<f64>::from_fn(6, 2, |i, j| ((i * 3 + j * 5) % 7) as f64 - 3.0 + j as f64);
        let q = a.qr().compute_thin_Q();
        let n_samples = 20_000;
        let samples = sample_projection(q.as_ref(), n_samples, 42).unwrap();
        let mut counts = [0usize; 6];
        for s in &samples {
            assert_eq!(s.len(), 2);
            assert_ne!(s[0], s[1]);
            for &i in s {
                counts[i] += 1;
            }
        }
        for i in 0..6 {
            let kii: f64 = (0..2).map(|j| q[(i, j)] * q[(i, j)]).sum();
            let freq = counts[i] as f64 / n_samples as f64;
            let sd = (kii * (1.0 - kii) / n_samples as f64).sqrt();
            assert!(
                (freq - kii).abs() < 5.0 * sd + 1e-3,
                "row {i}: {freq} vs {kii}"
            );
        }
        // Same seed, same samples.
        assert_eq!(
            samples,
            sample_projection(q.as_ref(), n_samples, 42).unwrap()
        );
    }
}
