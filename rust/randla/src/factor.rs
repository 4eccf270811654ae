//! Factorizations of a tall matrix `M` (`k x q`, `k >= q`) used as solvers
//! and preconditioners: Householder QR when `M` has full column rank, a thin
//! SVD restricted to the numerical rank otherwise.
//!
//! The factor defines `P` (`q x rank`): `R^{-1}` for QR, `V_r S_r^{-1}` for
//! the SVD, so that `M P` has orthonormal columns. Least squares by
//! sketch-and-precondition uses `P` on the right of `A` (tall problems) and
//! `P^T` on the left (wide ones); the direct solver uses the factor of `A`.

use faer::linalg::matmul::matmul;
use faer::linalg::solvers::{Qr, SolveLstsq, Svd};
use faer::linalg::triangular_solve::{
    solve_lower_triangular_in_place, solve_upper_triangular_in_place,
};
use faer::reborrow::{Reborrow, ReborrowMut};
use faer::{Accum, Mat, MatMut, MatRef};

use crate::ensure;
use crate::error::{Error, Result};
use crate::Real;

enum Kind<T> {
    Qr(Qr<T>),
    /// `u`: `U_r` (`k x rank`); `p`: `V_r S_r^{-1}` (`q x rank`); `s`: `S_r`.
    Svd {
        u: Mat<T>,
        p: Mat<T>,
        s: Vec<f64>,
    },
}

/// A factorization of a tall `k x q` matrix (see the module documentation).
pub struct TallFactor<T> {
    kind: Kind<T>,
    rows: usize,
    cols: usize,
    rank: usize,
}

/// numpy's default cut-off for a numerically zero singular value (`lstsq`,
/// `matrix_rank`): `max(k, q) * eps` relative to the largest one.
fn rank_tolerance<T>(rows: usize, cols: usize) -> f64 {
    rows.max(cols) as f64 * crate::epsilon::<T>()
}

/// Every entry above `rel` times the largest, which is positive and finite
/// (the diagonal of a triangular factor of a numerically nonsingular matrix).
pub(crate) fn well_scaled(diag: &[f64], rel: f64) -> bool {
    let largest = diag.iter().cloned().fold(0.0, f64::max);
    largest > 0.0 && largest.is_finite() && diag.iter().all(|&v| v > rel * largest)
}

impl<T: Real> TallFactor<T> {
    /// QR of `m`, or its SVD when a diagonal entry of `R` is numerically zero
    /// (then `m` is rank-deficient and only the SVD gives the minimum-norm
    /// solution).
    pub fn new(m: MatRef<'_, T>) -> Result<Self> {
        let (rows, cols) = (m.nrows(), m.ncols());
        ensure!(
            rows >= cols && cols >= 1,
            "a tall factorization needs rows >= cols >= 1, got {rows} x {cols}"
        );
        let tol = rank_tolerance::<T>(rows, cols);
        crate::parallel::install(|| {
            let qr = Qr::new(m);
            let r = qr.R();
            let diag: Vec<f64> = (0..cols).map(|i| r[(i, i)].to_f64().abs()).collect();
            if well_scaled(&diag, tol) {
                return Ok(Self {
                    kind: Kind::Qr(qr),
                    rows,
                    cols,
                    rank: cols,
                });
            }
            drop(qr);
            let svd = Svd::new_thin(m)
                .map_err(|_| Error::Numerical("the SVD did not converge".into()))?;
            let s: Vec<f64> = (0..cols).map(|i| svd.S()[i].to_f64()).collect();
            let largest = s.iter().cloned().fold(0.0, f64::max);
            let rank = s.iter().filter(|&&v| v > tol * largest).count();
            let u = svd.U().get(.., ..rank).to_owned();
            let p = Mat::from_fn(cols, rank, |i, j| svd.V()[(i, j)] * T::from_f64(1.0 / s[j]));
            Ok(Self {
                kind: Kind::Svd {
                    u,
                    p,
                    s: s[..rank].to_vec(),
                },
                rows,
                cols,
                rank,
            })
        })
    }

    /// The numerical rank of the factored matrix.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// `"qr"` or `"svd"`: how the matrix was factored.
    pub fn method(&self) -> &'static str {
        match &self.kind {
            Kind::Qr(_) => "qr",
            Kind::Svd { .. } => "svd",
        }
    }

    /// `R` (`q x q`, upper triangular) when the factorization is a QR.
    pub fn r(&self) -> Option<MatRef<'_, T>> {
        match &self.kind {
            Kind::Qr(qr) => Some(qr.thin_R()),
            Kind::Svd { .. } => None,
        }
    }

    /// `q`, the number of columns of the factored matrix.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// `out (q x m) = P x` for `x` of `rank x m`.
    pub fn precondition(&self, x: MatRef<'_, T>, mut out: MatMut<'_, T>) {
        match &self.kind {
            Kind::Qr(qr) => {
                out.copy_from(x);
                solve_upper_triangular_in_place(qr.thin_R(), out, crate::parallel::faer_par());
            }
            Kind::Svd { p, .. } => matmul(
                out,
                Accum::Replace,
                p.as_ref(),
                x,
                T::ONE,
                crate::parallel::faer_par(),
            ),
        }
    }

    /// `out (rank x m) = P^T x` for `x` of `q x m`.
    pub fn precondition_transpose(&self, x: MatRef<'_, T>, mut out: MatMut<'_, T>) {
        match &self.kind {
            Kind::Qr(qr) => {
                out.copy_from(x);
                solve_lower_triangular_in_place(
                    qr.thin_R().transpose(),
                    out,
                    crate::parallel::faer_par(),
                );
            }
            Kind::Svd { p, .. } => matmul(
                out,
                Accum::Replace,
                p.transpose(),
                x,
                T::ONE,
                crate::parallel::faer_par(),
            ),
        }
    }

    /// Squared row norms of an orthonormal basis of `range(M)` (`k` values):
    /// the leverage scores of the rows of `M`.
    pub fn row_leverage(&self) -> Vec<f64> {
        let basis = match &self.kind {
            Kind::Qr(qr) => crate::parallel::install(|| qr.compute_thin_Q()),
            Kind::Svd { u, .. } => u.clone(),
        };
        squared_row_norms(basis.as_ref())
    }

    /// Squared row norms of an orthonormal basis of `range(M^T)` (`q`
    /// values): the leverage scores of the rows of `M^T`, i.e. of the columns of `M`.
    pub fn column_leverage(&self) -> Vec<f64> {
        match &self.kind {
            Kind::Qr(_) => vec![1.0; self.cols],
            Kind::Svd { p, s, .. } => {
                let v = Mat::from_fn(self.cols, self.rank, |i, j| p[(i, j)].to_f64() * s[j]);
                (0..self.cols)
                    .map(|i| (0..self.rank).map(|j| v[(i, j)] * v[(i, j)]).sum())
                    .collect()
            }
        }
    }

    /// The least squares solution in preconditioned coordinates: the `y`
    /// minimizing `||M P y - b||` (so that `P y` is [`Self::solve`]'s `x`):
    /// `R x` for QR, `U_r^T b` for the SVD.
    pub fn solve_preconditioned(&self, b: MatRef<'_, T>) -> Mat<T> {
        match &self.kind {
            Kind::Qr(qr) => upper_times(qr.thin_R(), self.solve(b).as_ref()),
            Kind::Svd { u, .. } => {
                let mut ub = Mat::zeros(self.rank, b.ncols());
                let par = crate::parallel::faer_par();
                crate::parallel::install(|| {
                    matmul(ub.as_mut(), Accum::Replace, u.transpose(), b, T::ONE, par)
                });
                ub
            }
        }
    }

    /// The minimum-norm least squares solution of `M x = b` (`b`: `k x m`).
    pub fn solve(&self, b: MatRef<'_, T>) -> Mat<T> {
        assert_eq!(b.nrows(), self.rows, "right-hand side rows");
        crate::parallel::install(|| match &self.kind {
            Kind::Qr(qr) => qr.solve_lstsq(b),
            Kind::Svd { .. } => {
                // x = P (U_r^T b).
                let mut x = Mat::zeros(self.cols, b.ncols());
                self.precondition(self.solve_preconditioned(b).as_ref(), x.as_mut());
                x
            }
        })
    }

    /// The minimum-norm least squares solution of `M^T x = b` (`b`: `q x m`,
    /// `x`: `k x m`): for `M = Q R`, `x = Q R^{-T} b`; for the SVD,
    /// `x = U_r P^T b`.
    pub fn solve_transposed(&self, b: MatRef<'_, T>) -> Mat<T> {
        assert_eq!(b.nrows(), self.cols, "right-hand side rows");
        crate::parallel::install(|| {
            let mut y = Mat::zeros(self.rank, b.ncols());
            self.precondition_transpose(b, y.as_mut());
            match &self.kind {
                Kind::Qr(qr) => {
                    let mut x = Mat::zeros(self.rows, b.ncols());
                    x.as_mut().get_mut(..self.cols, ..).copy_from(y.as_ref());
                    let block = qr.Q_coeff().nrows();
                    let mut mem = faer::dyn_stack::MemBuffer::new(
                        faer::linalg::householder::apply_block_householder_sequence_on_the_left_in_place_scratch::<T>(
                            self.rows,
                            block,
                            b.ncols(),
                        ),
                    );
                    faer::linalg::householder::apply_block_householder_sequence_on_the_left_in_place_with_conj(
                        qr.Q_basis(),
                        qr.Q_coeff(),
                        faer::Conj::No,
                        x.as_mut(),
                        crate::parallel::faer_par(),
                        faer::dyn_stack::MemStack::new(&mut mem),
                    );
                    x
                }
                Kind::Svd { u, .. } => {
                    let mut x = Mat::zeros(self.rows, b.ncols());
                    matmul(
                        x.as_mut(),
                        Accum::Replace,
                        u.as_ref(),
                        y.as_ref(),
                        T::ONE,
                        crate::parallel::faer_par(),
                    );
                    x
                }
            }
        })
    }
}

/// `u x` for an upper triangular `u` (its strict lower triangle is not read).
pub fn upper_times<T: Real>(u: MatRef<'_, T>, x: MatRef<'_, T>) -> Mat<T> {
    use faer::linalg::matmul::triangular::{matmul, BlockStructure};
    let mut y = Mat::zeros(u.nrows(), x.ncols());
    matmul(
        y.as_mut(),
        BlockStructure::Rectangular,
        Accum::Replace,
        u,
        BlockStructure::TriangularUpper,
        x,
        BlockStructure::Rectangular,
        T::ONE,
        faer::Par::Seq,
    );
    y
}

/// A preconditioner `P` (`cols x rank`), applied as `P x` and `P^T x`.
pub trait Preconditioner<T>: Sync {
    /// Columns of `P`.
    fn rank(&self) -> usize;
    /// Rows of `P`.
    fn cols(&self) -> usize;
    /// `out (cols x m) = P x` for `x` of `rank x m`.
    fn precondition(&self, x: MatRef<'_, T>, out: MatMut<'_, T>);
    /// `out (rank x m) = P^T x` for `x` of `cols x m`.
    fn precondition_transpose(&self, x: MatRef<'_, T>, out: MatMut<'_, T>);
}

impl<T: Real> Preconditioner<T> for TallFactor<T> {
    fn rank(&self) -> usize {
        self.rank
    }
    fn cols(&self) -> usize {
        self.cols
    }
    fn precondition(&self, x: MatRef<'_, T>, out: MatMut<'_, T>) {
        TallFactor::precondition(self, x, out)
    }
    fn precondition_transpose(&self, x: MatRef<'_, T>, out: MatMut<'_, T>) {
        TallFactor::precondition_transpose(self, x, out)
    }
}

/// `P = R^{-1}` for a nonsingular upper triangular `R`.
pub struct UpperInverse<T>(pub Mat<T>);

impl<T: Real> Preconditioner<T> for UpperInverse<T> {
    fn rank(&self) -> usize {
        self.0.ncols()
    }
    fn cols(&self) -> usize {
        self.0.nrows()
    }
    fn precondition(&self, x: MatRef<'_, T>, mut out: MatMut<'_, T>) {
        out.copy_from(x);
        solve_upper_triangular_in_place(self.0.as_ref(), out, crate::parallel::faer_par());
    }
    fn precondition_transpose(&self, x: MatRef<'_, T>, mut out: MatMut<'_, T>) {
        out.copy_from(x);
        solve_lower_triangular_in_place(self.0.transpose(), out, crate::parallel::faer_par());
    }
}

/// The lower triangle of `A^T D^2 A` (`d x d`, the strict upper triangle
/// zero) for `a` (`n x d`) and `D = diag(scale)` (the identity for `None`).
/// Rows are split into at most 32 groups, fixed by the shape (each group's
/// partial product is formed in order by faer's triangular product, half
/// the flops of a full one, and the partials are summed in group order), so
/// the result does not depend on the thread count. A scaled group is
/// multiplied in cache-sized blocks of scaled rows.
pub fn gram_lower<T: Real>(a: MatRef<'_, T>, scale: Option<&[f64]>) -> Mat<T> {
    use faer::linalg::matmul::triangular::{matmul as tri_matmul, BlockStructure};
    use rayon::prelude::*;
    let (n, d) = (a.nrows(), a.ncols());
    if let Some(s) = scale {
        assert_eq!(s.len(), n, "one scale per row");
    }
    // At most 32 partials and 64 MiB of them.
    let groups = n
        .div_ceil(1024)
        .min(32)
        .min((1usize << 23) / (d * d).max(1))
        .max(1);
    let ranges = crate::parallel::even_blocks(n, n.div_ceil(groups).max(1));
    let lower = |g: MatMut<'_, T>, rows: MatRef<'_, T>, accum: Accum| {
        tri_matmul(
            g,
            BlockStructure::TriangularLower,
            accum,
            rows.transpose(),
            BlockStructure::Rectangular,
            rows,
            BlockStructure::Rectangular,
            T::ONE,
            faer::Par::Seq,
        )
    };
    let partials: Vec<Mat<T>> = crate::parallel::install(|| {
        ranges
            .par_iter()
            .map(|range| {
                let mut g = Mat::<T>::zeros(d, d);
                let Some(s) = scale else {
                    lower(g.as_mut(), a.get(range.clone(), ..), Accum::Replace);
                    return g;
                };
                let block = ((1usize << 15) / d.max(1)).clamp(64, 4096);
                // Scaled rows as the columns of `buf` (contiguous copies).
                let mut buf = Mat::<T>::zeros(d, block);
                for (b, first) in range.clone().step_by(block).enumerate() {
                    let rows = block.min(range.end - first);
                    for t in 0..rows {
                        let si = T::from_f64(s[first + t]);
                        let row = a.row(first + t);
                        let col = buf.col_as_slice_mut(t);
                        match row.try_as_row_major() {
                            Some(r) => {
                                for (y, &v) in col.iter_mut().zip(r.as_slice()) {
                                    *y = v * si;
                                }
                            }
                            None => {
                                for (j, y) in col.iter_mut().enumerate() {
                                    *y = row[j] * si;
                                }
                            }
                        }
                    }
                    let accum = if b == 0 { Accum::Replace } else { Accum::Add };
                    lower(g.as_mut(), buf.as_ref().get(.., ..rows).transpose(), accum);
                }
                g
            })
            .collect()
    });
    let mut gram = Mat::<T>::zeros(d, d);
    for p in partials {
        gram += &p;
    }
    gram
}

/// Eigenvalues (ascending) and eigenvectors (columns) of the symmetric `g`,
/// read from its lower triangle, by faer's low-level solver with an explicit
/// `par` (its high-level API takes the global setting, which nests inside our
/// parallel loops). `what` names the matrix in the error.
pub fn symmetric_eigen<T: Real>(
    g: MatRef<'_, T>,
    par: faer::Par,
    what: &str,
) -> Result<(Vec<T>, Mat<T>)> {
    use faer::dyn_stack::{MemBuffer, MemStack};
    use faer::linalg::evd::{self_adjoint_evd, self_adjoint_evd_scratch, ComputeEigenvectors};
    let n = g.nrows();
    let mut s = faer::diag::Diag::<T>::zeros(n);
    let mut q = Mat::<T>::zeros(n, n);
    let params = Default::default();
    let mut buf = MemBuffer::new(self_adjoint_evd_scratch::<T>(
        n,
        ComputeEigenvectors::Yes,
        par,
        params,
    ));
    self_adjoint_evd(
        g,
        s.as_mut(),
        Some(q.as_mut()),
        par,
        MemStack::new(&mut buf),
        params,
    )
    .map_err(|e| Error::Numerical(format!("eigendecomposition of {what} failed: {e:?}")))?;
    Ok(((0..n).map(|i| s[i]).collect(), q))
}

/// The largest eigenvalue of the symmetric `g` (`n x n`, row-major, both
/// triangles stored) and a unit eigenvector, the way LAPACK computes a few
/// eigenpairs: Householder reduction to tridiagonal form (dsytd2), the top
/// eigenvalue of the tridiagonal by Sturm-count bisection (dstebz), its
/// eigenvector by inverse iteration (dstein), transformed back (dormtr).
/// About n^3 flops and no iteration whose count depends on the spectrum:
/// for the 64 x 64 blocks of a Monarch projection, several times faster than
/// faer's full eigendecomposition (about 240 us there). `g` is overwritten.
pub fn symmetric_top_pair(g: &mut [f64], n: usize) -> (f64, Vec<f64>) {
    crate::simd::dispatch(
        #[inline(always)]
        || top_pair_in(g, n),
    )
}

/// `a . b` in eight lanes (vectorizes; a plain sum waits on each add).
#[inline(always)]
fn dot8(a: &[f64], b: &[f64]) -> f64 {
    let mut lanes = [0.0f64; 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f64 = ac
        .remainder()
        .iter()
        .zip(bc.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ac.zip(bc) {
        for l in 0..8 {
            lanes[l] += x[l] * y[l];
        }
    }
    lanes.iter().sum::<f64>() + tail
}

#[inline(always)]
fn top_pair_in(g: &mut [f64], n: usize) -> (f64, Vec<f64>) {
    assert_eq!(g.len(), n * n, "square matrix");
    if n == 0 {
        return (0.0, Vec::new());
    }
    let (mut d, mut e) = (vec![0.0; n], vec![0.0; n.saturating_sub(1)]);
    let mut taus = vec![0.0; n.saturating_sub(1)];
    let (mut p, mut vk) = (vec![0.0; n], vec![0.0; n]);
    for k in 0..n.saturating_sub(1) {
        // The reflector H = I - tau v v^T (v[0] = 1, v[1..] stored in column
        // k below the subdiagonal) that maps g[k+1.., k] to beta e_1.
        let x0 = g[(k + 1) * n + k];
        let sigma: f64 = (k + 2..n).map(|i| g[i * n + k] * g[i * n + k]).sum();
        let (tau, beta) = if sigma == 0.0 {
            (0.0, x0)
        } else {
            let beta = -(x0 * x0 + sigma).sqrt().copysign(x0);
            let scale = 1.0 / (x0 - beta);
            for i in k + 2..n {
                g[i * n + k] *= scale;
            }
            ((beta - x0) / beta, beta)
        };
        d[k] = g[k * n + k];
        e[k] = beta;
        taus[k] = tau;
        if tau == 0.0 {
            continue;
        }
        vk[k + 1] = 1.0;
        for i in k + 2..n {
            vk[i] = g[i * n + k];
        }
        let v = &vk[k + 1..];
        // p = tau A22 v, w = p - (tau / 2)(p^T v) v, A22 -= v w^T + w v^T.
        for i in k + 1..n {
            let row = &g[i * n + k + 1..(i + 1) * n];
            p[i] = tau * dot8(row, v);
        }
        let pv = dot8(&p[k + 1..], v);
        let half = 0.5 * tau * pv;
        for (pi, vi) in p[k + 1..].iter_mut().zip(v) {
            *pi -= half * vi;
        }
        let w = &p[k + 1..];
        for (t, i) in (k + 1..n).enumerate() {
            let (vi, wi) = (v[t], w[t]);
            let row = &mut g[i * n + k + 1..(i + 1) * n];
            for ((a, &vj), &wj) in row.iter_mut().zip(v).zip(w) {
                *a -= vi * wj + wi * vj;
            }
        }
    }
    d[n - 1] = g[(n - 1) * n + n - 1];

    // The largest eigenvalue of the tridiagonal (d, e): bisection on the
    // number of eigenvalues below x (Sturm count of the LDL^T pivots).
    let norm = (0..n)
        .map(|i| {
            d[i].abs()
                + if i > 0 { e[i - 1].abs() } else { 0.0 }
                + e.get(i).map_or(0.0, |v| v.abs())
        })
        .fold(0.0f64, f64::max);
    if norm == 0.0 {
        // The zero matrix: every unit vector is an eigenvector.
        let mut x = vec![0.0; n];
        x[0] = 1.0;
        return (0.0, x);
    }
    let pivmin = f64::MIN_POSITIVE.max(norm * norm * f64::MIN_POSITIVE);
    // Counts at eight points at once: eight independent recurrences (the
    // divisions of one wait on each other), each step cuts the bracket 9x.
    let below = |x: &[f64; 8]| -> [usize; 8] {
        let mut count = [0usize; 8];
        let mut q = [0.0f64; 8];
        for i in 0..n {
            for l in 0..8 {
                let mut v = d[i] - x[l];
                if i > 0 {
                    v -= e[i - 1] * e[i - 1] / q[l];
                }
                if v.abs() < pivmin {
                    v = -pivmin;
                }
                count[l] += (v < 0.0) as usize;
                q[l] = v;
            }
        }
        count
    };
    // lambda_max lies between the largest diagonal entry and the largest
    // Gershgorin bound.
    let hi_bound = (0..n)
        .map(|i| {
            d[i] + if i > 0 { e[i - 1].abs() } else { 0.0 } + e.get(i).map_or(0.0, |v| v.abs())
        })
        .fold(f64::NEG_INFINITY, f64::max);
    let lo_bound = d.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (mut lo, mut hi) = (lo_bound - pivmin, hi_bound + pivmin);
    for _ in 0..100 {
        if hi - lo <= 2.0 * f64::EPSILON * lo.abs().max(hi.abs()) + pivmin {
            break;
        }
        let step = (hi - lo) / 9.0;
        let points: [f64; 8] = std::array::from_fn(|j| lo + step * (j + 1) as f64);
        let counts = below(&points);
        // The first point with every eigenvalue below it bounds lambda above.
        match counts.iter().position(|&c| c == n) {
            Some(0) => hi = points[0],
            Some(j) => (lo, hi) = (points[j - 1], points[j]),
            None => lo = points[7],
        }
        if step == 0.0 {
            break;
        }
    }
    let lambda = 0.5 * (lo + hi);

    // Inverse iteration with mu just above lambda: mu I - T is positive
    // definite, so its LDL^T needs no pivoting; the top eigenvector's part of
    // the iterate grows by (mu - lambda_2) / (mu - lambda) per step.
    let mu = lambda + 4.0 * f64::EPSILON * norm + pivmin;
    let mut x = vec![1.0; n];
    let mut pivots = vec![0.0; n];
    let mut mult = vec![0.0; n];
    pivots[0] = mu - d[0];
    for i in 1..n {
        mult[i] = -e[i - 1] / pivots[i - 1];
        pivots[i] = (mu - d[i] + mult[i] * e[i - 1]).max(pivmin);
    }
    for _ in 0..3 {
        // Solve L D L^T x = b, with L unit lower bidiagonal (mult below the diagonal).
        for i in 1..n {
            x[i] -= mult[i] * x[i - 1];
        }
        for i in 0..n {
            x[i] /= pivots[i];
        }
        for i in (0..n - 1).rev() {
            x[i] -= mult[i + 1] * x[i + 1];
        }
        // Scale by the largest entry first: the iterate can be near overflow.
        let top = x.iter().fold(0.0f64, |a, v| a.max(v.abs()));
        if !(top.is_finite() && top > 0.0) {
            break;
        }
        x.iter_mut().for_each(|v| *v /= top);
        let s = x.iter().map(|v| v * v).sum::<f64>().sqrt();
        x.iter_mut().for_each(|v| *v /= s);
    }

    // Back to g's coordinates: x = H_0 ... H_{n-2} x.
    for k in (0..n.saturating_sub(1)).rev() {
        let tau = taus[k];
        if tau == 0.0 {
            continue;
        }
        let v = |i: usize| if i == k + 1 { 1.0 } else { g[i * n + k] };
        let dot: f64 = (k + 1..n).map(|i| v(i) * x[i]).sum();
        for (i, xi) in x.iter_mut().enumerate().skip(k + 1) {
            *xi -= tau * dot * v(i);
        }
    }
    (lambda, x)
}

/// Squared row norms of the product `a m` (`n x d` times `d x t`), without
/// forming it: blocks of rows of `a` (sized to stay in cache) are multiplied
/// in parallel into a small buffer and reduced at once. With `single`, each
/// block and `m` are rounded to f32 and multiplied at f32 GEMM speed (the
/// caller bounds the rounding error). Each row's norm depends only on its own
/// row, so the result does not depend on the thread count.
pub fn product_row_norms<T: Real>(a: MatRef<'_, T>, m: MatRef<'_, T>, single: bool) -> Vec<f64> {
    let t = m.ncols();
    assert_eq!(m.nrows(), a.ncols(), "inner dimensions");
    // An upper triangular m (R^{-1}, L^{-T}) takes about 2/3 of the flops.
    let upper = m.nrows() == t && (0..t).all(|j| (j + 1..t).all(|i| m[(i, j)] == T::ZERO));
    /// `y = a m`; for an upper triangular `m`, `y[:, h..] = a m[:, h..]` and
    /// `y[:, ..h] = a[:, ..h] m[..h, ..h]` recursively: about 2/3 of the
    /// flops in full-speed GEMMs (faer's triangular product ran at about 60%
    /// of its GEMM rate on these shapes).
    fn product<S: Real>(y: MatMut<'_, S>, a: MatRef<'_, S>, m: MatRef<'_, S>, upper: bool) {
        let t = m.ncols();
        if !upper || t <= 64 {
            matmul(y, Accum::Replace, a, m, S::ONE, faer::Par::Seq);
            return;
        }
        let h = t / 2;
        let (left, right) = y.split_at_col_mut(h);
        matmul(
            right,
            Accum::Replace,
            a,
            m.get(.., h..),
            S::ONE,
            faer::Par::Seq,
        );
        product(left, a.get(.., ..h), m.get(..h, ..h), true);
    }
    if single {
        let m32 = Mat::<f32>::from_fn(m.nrows(), t, |i, j| m[(i, j)].to_f64() as f32);
        blocked_row_norms(a, t, |block, y: MatMut<'_, f32>, buf: &mut Vec<f32>| {
            let (rows, d) = (block.nrows(), block.ncols());
            // The block rounded to f32, row-major (contiguous conversions).
            buf.resize(rows * d, 0.0);
            crate::simd::dispatch(
                #[inline(always)]
                || {
                    for (i, dst) in buf.chunks_exact_mut(d).enumerate() {
                        let src = block.row(i);
                        match src.try_as_row_major() {
                            Some(r) => {
                                for (o, v) in dst.iter_mut().zip(r.as_slice()) {
                                    *o = v.to_f64() as f32;
                                }
                            }
                            None => {
                                for (j, o) in dst.iter_mut().enumerate() {
                                    *o = src[j].to_f64() as f32;
                                }
                            }
                        }
                    }
                },
            );
            let a32 = MatRef::from_row_major_slice(&buf[..], rows, d);
            product(y, a32, m32.as_ref(), upper);
        })
    } else {
        blocked_row_norms(a, t, |block, y: MatMut<'_, T>, _: &mut Vec<T>| {
            product(y, block, m, upper);
        })
    }
}

/// The block loop of [`product_row_norms`]: `product(block, y, scratch)`
/// writes the block's rows of the product into `y`.
fn blocked_row_norms<T: Real, S: Real>(
    a: MatRef<'_, T>,
    t: usize,
    product: impl Fn(MatRef<'_, T>, MatMut<'_, S>, &mut Vec<S>) + Sync,
) -> Vec<f64> {
    use rayon::prelude::*;
    let (n, d) = (a.nrows(), a.ncols());
    let rows = ((1usize << 16) / d.max(t).max(1)).clamp(64, 2048);
    let mut out = vec![0.0f64; n];
    crate::parallel::install(|| {
        out.par_chunks_mut(rows).enumerate().for_each_init(
            || (Mat::<S>::zeros(rows, t), Vec::<S>::new()),
            |(buf, scratch), (b, norms)| {
                let first = b * rows;
                let block = a.get(first..first + norms.len(), ..);
                let mut y = buf.as_mut().get_mut(..norms.len(), ..);
                product(block, y.rb_mut(), scratch);
                norms.fill(0.0);
                let y = y.rb();
                crate::simd::dispatch(
                    #[inline(always)]
                    || {
                        for j in 0..t {
                            let col = y.col(j).try_as_col_major().expect("a column-major buffer");
                            for (o, v) in norms.iter_mut().zip(col.as_slice()) {
                                let v = v.to_f64();
                                *o += v * v;
                            }
                        }
                    },
                );
            },
        );
    });
    out
}

/// An estimate of `||x||_2` from the Rayleigh quotients of ten power
/// iterations on `x^T x` (a lower bound, usually within a few percent), from
/// a fixed start (deterministic).
pub fn spectral_norm_estimate<T: Real>(x: MatRef<'_, T>) -> f64 {
    let (rows, cols) = (x.nrows(), x.ncols());
    let mut v = Mat::<T>::from_fn(cols, 1, |j, _| {
        T::from_f64(1.0 + j as f64 / cols.max(1) as f64)
    });
    let mut xv = Mat::<T>::zeros(rows, 1);
    let mut estimate = 0.0f64;
    for _ in 0..10 {
        let norm = v.norm_l2().to_f64();
        if norm == 0.0 || !norm.is_finite() {
            break;
        }
        let inv = T::from_f64(1.0 / norm);
        for j in 0..cols {
            v[(j, 0)] *= inv;
        }
        matmul(
            xv.as_mut(),
            Accum::Replace,
            x,
            v.as_ref(),
            T::ONE,
            faer::Par::Seq,
        );
        estimate = estimate.max(xv.norm_l2().to_f64());
        matmul(
            v.as_mut(),
            Accum::Replace,
            x.transpose(),
            xv.as_ref(),
            T::ONE,
            faer::Par::Seq,
        );
    }
    estimate
}

/// `sum_j m[i, j]^2` for every row, in f64.
pub fn squared_row_norms<T: Real>(m: MatRef<'_, T>) -> Vec<f64> {
    let mut out = vec![0.0f64; m.nrows()];
    for j in 0..m.ncols() {
        for (i, o) in out.iter_mut().enumerate() {
            let v = m[(i, j)].to_f64();
            *o += v * v;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn residual_orthogonal(m: MatRef<'_, f64>, x: MatRef<'_, f64>, b: MatRef<'_, f64>) -> f64 {
        // M^T (M x - b) = 0 at a least squares solution.
        let r = m * x - b;
        let g = m.transpose() * &r;
        g.norm_max()
    }

    #[test]
    fn gram_lower_matches_the_explicit_product() {
        // Row counts below one group, a few groups, and not a multiple of
        // the scaled block; row-major and column-major inputs.
        for (n, d) in [(50usize, 7usize), (5000, 13), (70001, 5)] {
            let a = Mat::from_fn(n, d, |i, j| (((i * 37 + j * 101) % 61) as f64 - 30.0) / 7.0);
            let scale: Vec<f64> = (0..n).map(|i| 0.5 + (i % 5) as f64).collect();
            let row_major: Vec<f64> = (0..n * d).map(|t| a[(t / d, t % d)]).collect();
            let views = [a.as_ref(), MatRef::from_row_major_slice(&row_major, n, d)];
            for view in views {
                for s in [None, Some(&scale[..])] {
                    let got = gram_lower(view, s);
                    let da = Mat::from_fn(n, d, |i, j| a[(i, j)] * s.map_or(1.0, |s| s[i]));
                    let want = da.transpose() * &da;
                    for i in 0..d {
                        for j in 0..d {
                            let expect = if i >= j { want[(i, j)] } else { 0.0 };
                            assert!(
                                (got[(i, j)] - expect).abs() <= 1e-12 * want.norm_max(),
                                "n {n} d {d} ({i}, {j})"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn full_rank_and_rank_deficient_least_squares() {
        let m = Mat::from_fn(7, 3, |i, j| {
            ((i * 3 + j * 5) % 7) as f64 - 3.0 + (i == j) as u8 as f64
        });
        let b = Mat::from_fn(7, 2, |i, j| (i + 2 * j) as f64);
        let f = TallFactor::new(m.as_ref()).unwrap();
        assert_eq!(f.rank(), 3);
        let x = f.solve(b.as_ref());
        assert!(residual_orthogonal(m.as_ref(), x.as_ref(), b.as_ref()) < 1e-10);

        // Third column = first + second: rank 2, minimum-norm solution
        // orthogonal to the null vector (1, 1, -1).
        let d = Mat::from_fn(7, 3, |i, j| {
            let a = ((i * 3) % 7) as f64 - 2.0;
            let c = ((i * 5 + 1) % 7) as f64 - 3.0;
            [a, c, a + c][j]
        });
        let f = TallFactor::new(d.as_ref()).unwrap();
        assert_eq!(f.rank(), 2);
        let x = f.solve(b.as_ref());
        assert!(residual_orthogonal(d.as_ref(), x.as_ref(), b.as_ref()) < 1e-10);
        for c in 0..2 {
            assert!((x[(0, c)] + x[(1, c)] - x[(2, c)]).abs() < 1e-10);
        }
    }

    #[test]
    fn minimum_norm_solution_of_the_transposed_system() {
        // M^T is 3 x 7 with full row rank: x solves M^T x = b and lies in range(M).
        let m = Mat::from_fn(7, 3, |i, j| {
            ((i * 3 + j * 5) % 7) as f64 - 3.0 + (i == j) as u8 as f64
        });
        let b = Mat::from_fn(3, 1, |i, _| i as f64 + 1.0);
        let f = TallFactor::new(m.as_ref()).unwrap();
        let x = f.solve_transposed(b.as_ref());
        let r = m.transpose() * &x - &b;
        assert!(r.norm_max() < 1e-10);
        // x = M z for z = (M^T M)^{-1} b: the projection onto range(M) keeps x.
        let z = f.solve(x.as_ref());
        let back = &m * &z;
        assert!((&back - &x).norm_max() < 1e-10);
    }

    #[test]
    fn blocked_product_row_norms_match_the_full_product() {
        // 5000 rows (several blocks and a partial one), row-major and
        // column-major views, double and single precision.
        let a = Mat::from_fn(5000, 13, |i, j| {
            (((i * 37 + j * 11) % 23) as f64 - 11.0) / 7.0
        });
        let rect = Mat::from_fn(13, 9, |i, j| {
            ((i * 5 + j * 3) % 7) as f64 - 3.0 + (i == j) as u8 as f64
        });
        // Upper triangular: the half-flop path.
        let upper = Mat::from_fn(13, 13, |i, j| {
            if i <= j {
                1.0 + ((i + 2 * j) % 5) as f64
            } else {
                0.0
            }
        });
        let row_major: Vec<f64> = (0..5000 * 13).map(|t| a[(t / 13, t % 13)]).collect();
        let views = [
            a.as_ref(),
            MatRef::from_row_major_slice(&row_major, 5000, 13),
        ];
        for view in views {
            for m in [&rect, &upper] {
                let full = squared_row_norms((&a * m).as_ref());
                let double = product_row_norms(view, m.as_ref(), false);
                let single = product_row_norms(view, m.as_ref(), true);
                for ((d, s), f) in double.iter().zip(&single).zip(&full) {
                    assert!((d - f).abs() <= 1e-12 * f.max(1.0));
                    assert!((s - f).abs() <= 1e-5 * f.max(1.0));
                }
            }
        }
    }

    #[test]
    fn recursive_triangular_product_matches_the_full_product() {
        // d = 150 > 64: the split path (75 + 37 + 38 columns), both precisions.
        let a = Mat::from_fn(700, 150, |i, j| {
            (((i * 13 + j * 7) % 17) as f64 - 8.0) / 5.0
        });
        let upper = Mat::from_fn(150, 150, |i, j| {
            if i <= j {
                ((i * 3 + j) % 11) as f64 / 10.0 + (i == j) as u8 as f64
            } else {
                0.0
            }
        });
        let full = squared_row_norms((&a * &upper).as_ref());
        let double = product_row_norms(a.as_ref(), upper.as_ref(), false);
        let single = product_row_norms(a.as_ref(), upper.as_ref(), true);
        for ((d, s), f) in double.iter().zip(&single).zip(&full) {
            assert!((d - f).abs() <= 1e-12 * f.max(1.0));
            assert!((s - f).abs() <= 1e-5 * f.max(1.0));
        }
    }

    #[test]
    fn spectral_norm_estimate_is_close_from_below() {
        // Singular values 1..=6 on orthogonal columns (a scaled permutation).
        let x = Mat::from_fn(
            40,
            6,
            |i, j| if i == 3 * j + 1 { (j + 1) as f64 } else { 0.0 },
        );
        let e = spectral_norm_estimate(x.as_ref());
        assert!(e <= 6.0 * (1.0 + 1e-12) && e > 5.0, "{e}");
    }

    #[test]
    fn top_pair_matches_the_full_eigendecomposition() {
        let mut seed = 5usize;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 11) as f64 / (1u64 << 53) as f64) - 0.5
        };
        let mut cases: Vec<(usize, Vec<f64>)> = Vec::new();
        for n in [1usize, 2, 3, 17, 64] {
            // A Gram matrix, a symmetric indefinite one and a negative definite one.
            let b: Vec<f64> = (0..n * n).map(|_| next()).collect();
            let gram = (0..n * n)
                .map(|k| (0..n).map(|t| b[t * n + k / n] * b[t * n + k % n]).sum())
                .collect();
            cases.push((n, gram));
            let sym: Vec<f64> = (0..n * n).map(|k| b[k] + b[(k % n) * n + k / n]).collect();
            cases.push((n, sym.clone()));
            let neg = (0..n * n)
                .map(|k| sym[k] - if k / n == k % n { 3.0 * n as f64 } else { 0.0 })
                .collect();
            cases.push((n, neg));
        }
        // A repeated top eigenvalue, zeros, and a rank-one matrix.
        cases.push((
            4,
            vec![
                2.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0, 0.0, -1.0,
            ],
        ));
        cases.push((5, vec![0.0; 25]));
        let u: Vec<f64> = (0..6).map(|i| i as f64 - 2.5).collect();
        cases.push((6, (0..36).map(|k| u[k / 6] * u[k % 6]).collect()));
        for (n, g) in cases {
            let m = Mat::<f64>::from_fn(n, n, |i, j| g[i * n + j]);
            let (s, _) = symmetric_eigen(m.as_ref(), faer::Par::Seq, "test").unwrap();
            let norm = s.iter().fold(1e-300f64, |a, v| a.max(v.abs()));
            let (lambda, v) = symmetric_top_pair(&mut g.clone(), n);
            assert!(
                (lambda - s[n - 1]).abs() <= 1e-13 * norm + 1e-290,
                "n = {n}: {lambda} vs {}",
                s[n - 1]
            );
            let vn = v.iter().map(|x| x * x).sum::<f64>().sqrt();
            assert!((vn - 1.0).abs() < 1e-12, "unit vector");
            let residual = (0..n)
                .map(|i| ((0..n).map(|j| g[i * n + j] * v[j]).sum::<f64>() - lambda * v[i]).powi(2))
                .sum::<f64>()
                .sqrt();
            assert!(
                residual <= 1e-12 * norm + 1e-290,
                "n = {n}: residual {residual}"
            );
        }
    }
}
