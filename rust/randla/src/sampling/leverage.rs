//! Leverage scores `tau_i = ||U_i||^2` for an orthonormal basis `U` of
//! `range(A)`: exactly from a Householder QR (an SVD when `A` is
//! rank-deficient), never from the normal equations; approximately by
//! Drineas, Magdon-Ismail, Mahoney & Woodruff (2012): `R` from a sketch `S A`
//! makes `A R^{-1}` nearly orthonormal, and a JL matrix `G` shrinks it to
//! `A (R^{-1} G)`, one pass over `A`.

use faer::{Mat, MatRef};

use crate::ensure;
use crate::error::Result;
use crate::factor::{
    gram_lower, product_row_norms, spectral_norm_estimate, squared_row_norms, well_scaled,
    TallFactor,
};
use crate::krylov::Operator;
use crate::Real;

/// Exact leverage scores of the rows of a dense `a` and its numerical rank.
pub fn exact<T: Real>(a: MatRef<'_, T>) -> Result<(Vec<f64>, usize)> {
    ensure!(
        a.nrows() >= 1 && a.ncols() >= 1,
        "A must not be empty, got shape ({}, {})",
        a.nrows(),
        a.ncols()
    );
    if let Some(scores) = preconditioned_cholesky(a, None) {
        return Ok((scores, a.ncols()));
    }
    if a.nrows() >= a.ncols() {
        let f = TallFactor::new(a)?;
        Ok((f.row_leverage(), f.rank()))
    } else {
        let f = TallFactor::new(a.transpose())?;
        Ok((f.column_leverage(), f.rank()))
    }
}

/// Leverage scores of the rows of `diag(scale) a` for a tall, full-rank `a`
/// by sketch-preconditioned Cholesky QR: `R` from the QR of a sparse sign
/// sketch `S A` (fixed key: the result does not depend on it beyond
/// rounding) makes `B = A R^{-1}` well conditioned (cond about 3), so the
/// Cholesky factor `L` of `B^T D^2 B` is accurate, and the scores are the
/// squared row norms of `D B L^{-T}`: three GEMM-speed passes over `A`
/// instead of a Householder QR. `None` (use the QR/SVD path) when `A` is not
/// tall enough, the sketch or the Gram matrix is numerically singular.
pub fn preconditioned_cholesky<T: Real>(
    a: MatRef<'_, T>,
    scale: Option<&[f64]>,
) -> Option<Vec<f64>> {
    let b = Preconditioned::new(a)?;
    b.scores(scale)
}

/// `B = A R^{-1}` for `R` from a sketch of `A` (see [`preconditioned_cholesky`]),
/// held as `B^T` (`d x n`, column-major: each row of `B` contiguous).
pub struct Preconditioned<T> {
    bt: Mat<T>,
}

impl<T: Real> Preconditioned<T> {
    pub fn new(a: MatRef<'_, T>) -> Option<Self> {
        use crate::sketch::{SketchOperator, SparseKind};
        use faer::linalg::solvers::Qr;
        use faer::linalg::triangular_solve::solve_lower_triangular_in_place;
        let (n, d) = (a.nrows(), a.ncols());
        let k = 4 * d;
        if n < 2 * k {
            return None;
        }
        crate::parallel::install(|| {
            let s = SketchOperator::sparse(SparseKind::SparseSign { nnz_per_col: 8 }, k, n, 0x5eed)
                .ok()?;
            let mut sa = Mat::<T>::zeros(k, d);
            s.try_apply(a, sa.as_mut()).ok()?;
            let qr = Qr::new(sa.as_ref());
            let r = qr.thin_R();
            let diag: Vec<f64> = (0..d).map(|i| r[(i, i)].to_f64().abs()).collect();
            if !well_scaled(&diag, 1e-10) {
                return None;
            }
            // B^T = R^{-T} A^T, solved in place on a copy of A^T.
            let mut bt = transposed_copy(a);
            solve_lower_triangular_in_place(
                r.transpose(),
                bt.as_mut(),
                crate::parallel::faer_par(),
            );
            Some(Self { bt })
        })
    }

    /// Leverage scores of `diag(scale) B` (= those of `diag(scale) A`): the
    /// Cholesky factor `L` of `G = B^T D^2 B` from one blocked pass, then
    /// `tau_i = s_i^2 ||L^{-1} b_i||^2` as the row norms of `B L^{-T}` from a
    /// second (GEMMs on cache-sized blocks, nothing of size `n x d` formed).
    pub fn scores(&self, scale: Option<&[f64]>) -> Option<Vec<f64>> {
        use faer::linalg::solvers::Llt;
        use faer::linalg::triangular_solve::solve_lower_triangular_in_place;
        let d = self.bt.nrows();
        crate::parallel::install(|| {
            let gram = gram_lower(self.bt.transpose(), scale);
            let l = Llt::new(gram.as_ref(), faer::Side::Lower).ok()?;
            let l = l.L();
            let diag: Vec<f64> = (0..d).map(|i| l[(i, i)].to_f64()).collect();
            if !well_scaled(&diag, 1e-7) {
                return None; // cond(D B) > 1e7: Cholesky would lose too much
            }
            // L^{-T}, by d triangular solves (d x d: negligible).
            let mut inv = Mat::<T>::identity(d, d);
            solve_lower_triangular_in_place(l, inv.as_mut(), faer::Par::Seq);
            let mut tau = product_row_norms(self.bt.transpose(), inv.transpose(), false);
            if let Some(s) = scale {
                for (t, &si) in tau.iter_mut().zip(s) {
                    *t *= si * si;
                }
            }
            Some(tau)
        })
    }
}

/// `A^T` as an owned column-major matrix, copied row by row in parallel
/// (faer's element-wise copy of a transposed view is several times slower).
fn transposed_copy<T: Real>(a: MatRef<'_, T>) -> Mat<T> {
    use rayon::prelude::*;
    let (n, d) = (a.nrows(), a.ncols());
    let mut bt = Mat::<T>::zeros(d, n);
    let cols: Vec<(usize, &mut [T])> = (0..n)
        .zip(bt.col_iter_mut())
        .map(|(i, c)| (i, c.try_as_col_major_mut().expect("owned").as_slice_mut()))
        .collect();
    cols.into_par_iter().with_min_len(1024).for_each(|(i, c)| {
        let row = a.row(i);
        match row.try_as_row_major() {
            Some(r) => c.copy_from_slice(r.as_slice()),
            None => {
                for (j, v) in c.iter_mut().enumerate() {
                    *v = row[j];
                }
            }
        }
    });
    bt
}

/// Exact leverage scores of `diag(scale) A` for many scalings of one `A`
/// (the Lewis iteration): the sketch-preconditioned basis is built once.
pub struct ScaledExact<'a, T> {
    a: MatRef<'a, T>,
    pre: Option<Preconditioned<T>>,
}

impl<'a, T: Real> ScaledExact<'a, T> {
    pub fn new(a: MatRef<'a, T>) -> Self {
        Self {
            a,
            pre: Preconditioned::new(a),
        }
    }

    pub fn scores(&self, scale: &[f64]) -> Result<Vec<f64>> {
        ensure!(scale.len() == self.a.nrows(), "one scale per row");
        if let Some(scores) = self.pre.as_ref().and_then(|p| p.scores(Some(scale))) {
            return Ok(scores);
        }
        exact_scaled(self.a, scale)
    }
}

/// Exact leverage scores of the rows of `diag(scale) a`.
pub fn exact_scaled<T: Real>(a: MatRef<'_, T>, scale: &[f64]) -> Result<Vec<f64>> {
    ensure!(scale.len() == a.nrows(), "one scale per row");
    let scaled = Mat::<T>::from_fn(a.nrows(), a.ncols(), |i, j| {
        a[(i, j)] * T::from_f64(scale[i])
    });
    Ok(exact(scaled.as_ref())?.0)
}

/// Sketched leverage scores of the rows of `diag(scale) a` for a dense `a`
/// (`n >= d`): a sparse sign sketch of `k` rows (seeded by `seed`) gives the
/// preconditioner, and with `jl_columns < rank` a Gaussian JL matrix of that
/// many columns (seeded by `seed + 1`) shrinks `A P` before the row norms.
pub fn sketched_scaled<T: Real>(
    a: MatRef<'_, T>,
    scale: &[f64],
    k: usize,
    jl_columns: usize,
    seed: u64,
) -> Result<Vec<f64>> {
    use crate::sketch::{SketchOperator, SparseKind};
    let (n, d) = (a.nrows(), a.ncols());
    ensure!(scale.len() == n, "one scale per row");
    ensure!(
        n >= d && k >= d && k <= n,
        "need n >= k >= d, got n = {n}, k = {k}, d = {d}"
    );
    let scaled = Mat::<T>::from_fn(n, d, |i, j| a[(i, j)] * T::from_f64(scale[i]));
    let s = SketchOperator::sparse(
        SparseKind::SparseSign {
            nnz_per_col: 8.min(k),
        },
        k,
        n,
        seed,
    )?;
    let mut sa = Mat::<T>::zeros(k, d);
    crate::parallel::install(|| s.try_apply(scaled.as_ref(), sa.as_mut()))?;
    let op = crate::krylov::DenseOperator(scaled.as_ref());
    let f = TallFactor::new(sa.as_ref())?;
    let rank = f.rank();
    if jl_columns == 0 || jl_columns >= rank {
        return from_factor(&op, &f, None, sa.as_ref(), 0.0);
    }
    // Entries N(0, 1/t): the transpose of a t x rank Gaussian sketch.
    let g = SketchOperator::gaussian(jl_columns, rank, seed.wrapping_add(1))?;
    let mut gt = Mat::<T>::zeros(jl_columns, rank);
    g.try_to_dense(gt.as_mut())?;
    from_factor(&op, &f, Some(gt.transpose()), sa.as_ref(), 0.0)
}

/// Sketched leverage scores of the rows of `a` (`n x d`, `n >= d`) from
/// `sa = S A` (`k x d`, `k >= d`) and a JL matrix `jl` (`r x t`, entries of
/// variance `1/t`, with `r` at least the rank of `sa`; only its first `rank`
/// rows are used). With `t = 0` (no JL step) the scores are the row norms of
/// `A P` itself. `rounding` is the relative error of the scores the caller
/// allows for rounding: where an error bound for f32 products of a dense `A`
/// stays below it, they run at f32 speed. Returns the scores and the rank of
/// the sketch.
pub fn approximate<T: Real>(
    a: &dyn Operator<T>,
    sa: MatRef<'_, T>,
    jl: Option<MatRef<'_, T>>,
    rounding: f64,
) -> Result<(Vec<f64>, usize)> {
    let d = a.shape().1;
    ensure!(
        sa.ncols() == d && sa.nrows() >= d,
        "the sketch of A must be k x {d} with k >= {d}, got {} x {}",
        sa.nrows(),
        sa.ncols()
    );
    let f = TallFactor::new(sa)?;
    Ok((from_factor(a, &f, jl, sa, rounding)?, f.rank()))
}

/// Row norms of `A P G` (or `A P`) for the factor `P` of the sketch `sa` of `A`.
fn from_factor<T: Real>(
    a: &dyn Operator<T>,
    f: &TallFactor<T>,
    jl: Option<MatRef<'_, T>>,
    sa: MatRef<'_, T>,
    rounding: f64,
) -> Result<Vec<f64>> {
    let (n, d) = a.shape();
    let rank = f.rank();
    // M = P G (d x t), or P itself.
    let m = match jl {
        Some(g) => {
            ensure!(
                g.nrows() >= rank,
                "the JL matrix needs at least {rank} rows, got {}",
                g.nrows()
            );
            let mut m = Mat::<T>::zeros(d, g.ncols());
            f.precondition(g.get(..rank, ..), m.as_mut());
            m
        }
        None => {
            let eye = Mat::<T>::identity(rank, rank);
            let mut m = Mat::<T>::zeros(d, rank);
            f.precondition(eye.as_ref(), m.as_mut());
            m
        }
    };
    if let Some(dense) = a.as_dense() {
        // Rounding a_i and M to f32 and summing d products changes a_i M by
        // at most about (2 + sqrt(d)) u |a_i| ||M|| (u = 2^-24, probabilistic
        // bound on the sum), and |a_i M| >= |a_i| / ||S A|| up to the sketch's
        // distortion (taken as a factor 2 with the norm estimates'), so the
        // squared norms move by at most twice the relative bound below.
        let single = std::mem::size_of::<T>() > 4 && rounding > 0.0 && {
            let kappa = 2.0 * spectral_norm_estimate(sa) * spectral_norm_estimate(m.as_ref());
            let bound = 2.0 * (2.0 + (d as f64).sqrt()) * f64::from(f32::EPSILON / 2.0) * kappa;
            bound <= rounding
        };
        return Ok(product_row_norms(dense, m.as_ref(), single));
    }
    let mut y = Mat::<T>::zeros(n, m.ncols());
    a.apply(m.as_ref(), y.as_mut())?;
    Ok(squared_row_norms(y.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::krylov::DenseOperator;

    #[test]
    fn exact_scores_sum_to_the_rank() {
        let a = Mat::from_fn(50, 4, |i, j| {
            ((i * 7 + j * 3) % 11) as f64 - 5.0 + (i == j) as u8 as f64
        });
        let (tau, rank) = exact(a.as_ref()).unwrap();
        assert_eq!(rank, 4);
        assert!((tau.iter().sum::<f64>() - 4.0).abs() < 1e-12);
        // Rank 2: the third and fourth columns repeat the first two.
        let b = Mat::from_fn(50, 4, |i, j| a[(i, j % 2)]);
        let (tau, rank) = exact(b.as_ref()).unwrap();
        assert_eq!(rank, 2);
        assert!((tau.iter().sum::<f64>() - 2.0).abs() < 1e-10);
        // Wide and full row rank: every row has leverage 1.
        let (tau, _) = exact(a.transpose()).unwrap();
        assert!(tau.iter().all(|&t| (t - 1.0).abs() < 1e-12));
    }

    #[test]
    fn sketched_scores_without_jl_are_exact_for_an_exact_sketch() {
        // "Sketch" = A itself: P = R^{-1}, A P orthonormal, scores exact.
        let a = Mat::from_fn(40, 3, |i, j| {
            ((i * 5 + j * 7) % 13) as f64 - 6.0 + (i == j) as u8 as f64
        });
        let (tau, _) = exact(a.as_ref()).unwrap();
        let (approx, rank) =
            approximate(&DenseOperator(a.as_ref()), a.as_ref(), None, 0.0).unwrap();
        assert_eq!(rank, 3);
        for (x, y) in tau.iter().zip(&approx) {
            assert!((x - y).abs() < 1e-10);
        }
    }
}
