//! Least squares `min ||A x - b||`: direct (QR, SVD when rank-deficient),
//! sketch-and-solve, and sketch-and-precondition (Rokhlin–Tygert, Blendenpik,
//! LSRN): the sketch `S A` is factored, its `P` makes `A P` well conditioned,
//! and LSQR on `A P` from the sketch-and-solve start converges in a number of
//! iterations that does not depend on `cond(A)`.
//!
//! Tall problems (`n >= d`) precondition on the right with the factor of
//! `S A`; wide ones (`n < d`, minimum-norm solutions) on the left with the
//! factor of `S A^T`. The caller supplies the sketches (any sketching operator).

use faer::{Accum, Mat, MatMut, MatRef};

use crate::ensure;
use crate::error::Result;
use crate::factor::{
    gram_lower, spectral_norm_estimate, upper_times, Preconditioner, TallFactor, UpperInverse,
};
use crate::krylov::vectors::{view, Epilogue};
use crate::krylov::{lsqr, LeastSquaresOptions, Operator};
use crate::Real;

/// A least squares solution and how it was reached.
#[derive(Clone, Debug)]
pub struct Solution<T> {
    /// `d x m`.
    pub x: Mat<T>,
    /// `||A x - b||` per column, computed from `x`.
    pub residual_norm: Vec<f64>,
    pub iterations: usize,
    pub converged: Vec<bool>,
    /// The numerical rank of the factored matrix (`A` or its sketch).
    pub rank: usize,
    /// The preconditioner LSQR ran with: `"qr"` or `"svd"` of the sketch,
    /// `"qr+cholesky"` when refined by [`refine`]; `None` without LSQR.
    pub preconditioner: Option<&'static str>,
}

/// Column norms of `b - A x`.
fn residual_norms<T: Real>(
    a: &dyn Operator<T>,
    x: MatRef<'_, T>,
    b: MatRef<'_, T>,
) -> Result<Vec<f64>> {
    let mut r = Mat::<T>::zeros(b.nrows(), b.ncols());
    a.apply(x, r.as_mut())?;
    Ok((0..b.ncols())
        .map(|c| {
            (0..b.nrows())
                .map(|i| (r[(i, c)] - b[(i, c)]).to_f64().powi(2))
                .sum::<f64>()
                .sqrt()
        })
        .collect())
}

fn row_major<T: Real>(m: MatRef<'_, T>) -> Vec<T> {
    let mut v = Vec::with_capacity(m.nrows() * m.ncols());
    for i in 0..m.nrows() {
        for j in 0..m.ncols() {
            v.push(m[(i, j)]);
        }
    }
    v
}

/// The direct solution for a dense `A` (`n x d`) and `b` (`n x m`).
pub fn direct<T: Real>(a: MatRef<'_, T>, b: MatRef<'_, T>) -> Result<Solution<T>> {
    let (n, d) = (a.nrows(), a.ncols());
    ensure!(b.nrows() == n, "b has {} rows, A has {n}", b.nrows());
    let (x, rank) = if n >= d {
        let f = TallFactor::new(a)?;
        (f.solve(b), f.rank())
    } else {
        let f = TallFactor::new(a.transpose())?;
        (f.solve_transposed(b), f.rank())
    };
    let op = crate::krylov::DenseOperator(a);
    let residual_norm = residual_norms(&op, x.as_ref(), b)?;
    Ok(Solution {
        x,
        residual_norm,
        iterations: 0,
        converged: vec![true; b.ncols()],
        rank,
        preconditioner: None,
    })
}

/// Sketch-and-solve: the least squares solution of `(S A) x = S b`.
pub fn sketch_solve<T: Real>(
    a: &dyn Operator<T>,
    b: MatRef<'_, T>,
    sa: MatRef<'_, T>,
    sb: MatRef<'_, T>,
) -> Result<Solution<T>> {
    let (n, d) = a.shape();
    check_sketch(n, d, b, sa, sb)?;
    let f = TallFactor::new(sa)?;
    let x = f.solve(sb);
    let residual_norm = residual_norms(a, x.as_ref(), b)?;
    Ok(Solution {
        x,
        residual_norm,
        iterations: 0,
        converged: vec![true; b.ncols()],
        rank: f.rank(),
        preconditioner: None,
    })
}

fn check_sketch<T>(
    n: usize,
    d: usize,
    b: MatRef<'_, T>,
    sa: MatRef<'_, T>,
    sb: MatRef<'_, T>,
) -> Result<()> {
    ensure!(b.nrows() == n, "b has {} rows, A has {n}", b.nrows());
    ensure!(
        sa.ncols() == d && sa.nrows() >= d,
        "the sketch of A must be k x {d} with k >= {d}, got {} x {}",
        sa.nrows(),
        sa.ncols()
    );
    ensure!(
        sb.nrows() == sa.nrows() && sb.ncols() == b.ncols(),
        "the sketch of b must be {} x {}",
        sa.nrows(),
        b.ncols()
    );
    Ok(())
}

/// `A P` for a right preconditioner `P` (tall problems).
struct RightPreconditioned<'a, T> {
    a: &'a dyn Operator<T>,
    f: &'a dyn Preconditioner<T>,
}

impl<T: Real> Operator<T> for RightPreconditioned<'_, T> {
    fn shape(&self) -> (usize, usize) {
        (self.a.shape().0, self.f.rank())
    }
    fn apply(&self, x: MatRef<'_, T>, y: MatMut<'_, T>) -> Result<()> {
        let mut z = Mat::zeros(self.f.cols(), x.ncols());
        self.f.precondition(x, z.as_mut());
        self.a.apply(z.as_ref(), y)
    }
    fn apply_transpose(&self, x: MatRef<'_, T>, y: MatMut<'_, T>) -> Result<()> {
        let mut w = Mat::zeros(self.f.cols(), x.ncols());
        self.a.apply_transpose(x, w.as_mut())?;
        self.f.precondition_transpose(w.as_ref(), y);
        Ok(())
    }
    fn apply_then_transpose(
        &self,
        x: &[T],
        y: &mut [T],
        z: &mut [T],
        m: usize,
        then: &Epilogue<'_, T>,
    ) -> Result<Option<Vec<f64>>> {
        let cols = self.f.cols();
        let mut p = vec![T::ZERO; cols * m];
        self.f.precondition(
            MatRef::from_row_major_slice(x, self.f.rank(), m),
            MatMut::from_row_major_slice_mut(&mut p, cols, m),
        );
        let mut w = vec![T::ZERO; cols * m];
        let Some(sums) = self.a.apply_then_transpose(&p, y, &mut w, m, then)? else {
            return Ok(None);
        };
        self.f.precondition_transpose(
            MatRef::from_row_major_slice(&w, cols, m),
            MatMut::from_row_major_slice_mut(z, self.f.rank(), m),
        );
        Ok(Some(sums))
    }
}

/// `P^T A` for the factor `P` of a sketch of `A^T` (wide problems).
struct LeftPreconditioned<'a, T> {
    a: &'a dyn Operator<T>,
    f: &'a TallFactor<T>,
}

impl<T: Real> Operator<T> for LeftPreconditioned<'_, T> {
    fn shape(&self) -> (usize, usize) {
        (self.f.rank(), self.a.shape().1)
    }
    fn apply(&self, x: MatRef<'_, T>, y: MatMut<'_, T>) -> Result<()> {
        let mut t = Mat::zeros(self.f.cols(), x.ncols());
        self.a.apply(x, t.as_mut())?;
        self.f.precondition_transpose(t.as_ref(), y);
        Ok(())
    }
    fn apply_transpose(&self, x: MatRef<'_, T>, y: MatMut<'_, T>) -> Result<()> {
        let mut t = Mat::zeros(self.f.cols(), x.ncols());
        self.f.precondition(x, t.as_mut());
        self.a.apply_transpose(t.as_ref(), y)
    }
}

/// Stopping rule and limit of the preconditioned LSQR.
#[derive(Clone, Copy, Debug)]
pub struct PreconditionOptions {
    /// LSQR's `atol` and `btol` (Paige–Saunders backward-error tests on the
    /// preconditioned system).
    pub rtol: f64,
    pub maxiter: usize,
}

fn lsqr_options(options: PreconditionOptions) -> LeastSquaresOptions {
    LeastSquaresOptions {
        damp: 0.0,
        atol: options.rtol,
        btol: options.rtol,
        conlim: 0.0,
        maxiter: options.maxiter,
    }
}

/// Sketch-and-precondition for a tall `A` (`n >= d`): `sa = S A` (`k x d`,
/// `k >= d`) and `sb = S b`. LSQR runs on `A P` from the sketch-and-solve start.
pub fn sketch_precondition<T: Real>(
    a: &dyn Operator<T>,
    b: MatRef<'_, T>,
    sa: MatRef<'_, T>,
    sb: MatRef<'_, T>,
    options: PreconditionOptions,
) -> Result<Solution<T>> {
    let (n, d) = a.shape();
    check_sketch(n, d, b, sa, sb)?;
    let m = b.ncols();
    let f = TallFactor::new(sa)?;
    // LSQR on min ||A P y - b|| from the sketch-and-solve y0 (x0 = P y0);
    // its start forms b - A P y0 and its transpose product in one pass.
    let y0 = f.solve_preconditioned(sb);
    let refined = match (a.as_dense(), f.r()) {
        (Some(dense), Some(r)) if gram_pays(n, d, sa.nrows(), options.rtol) => refine(dense, r),
        _ => None,
    };
    let (p, y0): (&dyn Preconditioner<T>, Mat<T>) = match &refined {
        // y = R x = R_M (R_s x) = R_M y0.
        Some((r, r_m)) => (r, upper_times(r_m.as_ref(), y0.as_ref())),
        None => (&f, y0),
    };
    let out = preconditioned_lsqr(
        &RightPreconditioned { a, f: p },
        b,
        Some(y0.as_ref()),
        options,
    )?;
    let mut x = Mat::zeros(d, m);
    p.precondition(view(&out.x, p.rank(), m), x.as_mut());
    let kind = if refined.is_some() {
        "qr+cholesky"
    } else {
        f.method()
    };
    finish(a, b, x, out, f.rank(), kind)
}

/// The largest `eps * cond^2` (with `cond` the condition number of the
/// sketch's `R` with unit columns) for which [`refine`] runs. The rounding of
/// `A^T A` perturbs `M` by at most about that much relative to its smallest
/// eigenvalue (in practice far less: 200000 x 200 problems took 3, 4, 5 and
/// 7 iterations to `rtol = 1e-12` at 3e-3, 3e-2, 0.2 and 2.5, against 34
/// without refinement), so LSQR converges in a few iterations and the
/// Cholesky factorization of `M` is far from failing.
const REFINE_LIMIT: f64 = 0.1;

/// Whether forming the Gram matrix of a dense `A` (`n x d`, sketch of `k`
/// rows) costs less than the LSQR iterations it saves. A Gram matrix takes
/// `n d^2` flops against `n d` words read by a pass over `A`: `d / r`
/// passes for a GEMM rate `r` times the bandwidth in f64 words (measured
/// 110 ms against 11.5 ms a pass for 200000 x 200 on two cores, `r` about
/// 21; `r = 16` is taken, erring towards the plain path); LSQR preconditioned by
/// the sketch alone converges by a factor about `sqrt(d / k)` per iteration
/// (the distortion of the sketch), refined by about `1e-2`.
fn gram_pays(n: usize, d: usize, k: usize, rtol: f64) -> bool {
    if n < 4 * d || k <= d {
        return false;
    }
    // rtol = 0 runs to maxiter: count it as full f64 precision.
    let digits = -rtol.max(f64::EPSILON).log10();
    let plain = digits / (-0.5 * (d as f64 / k as f64).log10());
    let refined = digits / 2.0 + 1.0;
    d as f64 / 16.0 + refined < plain
}

/// Refines the sketch's `R_s` (`d x d`) for a dense tall `A`: `M =
/// R_s^{-T} (A^T A) R_s^{-1}` is `A R_s^{-1}`'s Gram matrix (condition
/// number about 9 for a sketch of `4d` rows), up to the rounding of `A^T A`,
/// and its Cholesky factor `R_M` makes `A (R_M R_s)^{-1}` orthonormal up to
/// that rounding (sketch-preconditioned Cholesky QR of `A` used as a
/// preconditioner: no `n x d` matrix is formed). Returns `R = R_M R_s` as
/// the preconditioner and `R_M`, or `None` when `R_s` is too ill-conditioned
/// for `A^T A` to be useful ([`REFINE_LIMIT`]) or `M` is numerically not
/// positive definite.
fn refine<T: Real>(a: MatRef<'_, T>, r_s: MatRef<'_, T>) -> Option<(UpperInverse<T>, Mat<T>)> {
    use faer::linalg::matmul::matmul;
    use faer::linalg::solvers::Llt;
    use faer::linalg::triangular_solve::solve_upper_triangular_in_place;
    let d = r_s.ncols();
    crate::parallel::install(|| {
        let mut inv = Mat::<T>::identity(d, d);
        solve_upper_triangular_in_place(r_s, inv.as_mut(), faer::Par::Seq);
        // cond(R_s D^{-1}) for D the column norms of R_s: the rounding of
        // A^T A is relative to the column norms of A.
        let norms: Vec<f64> = (0..d).map(|j| r_s.col(j).norm_l2().to_f64()).collect();
        if !norms.iter().all(|v| v.is_finite() && *v > 0.0) {
            return None;
        }
        let scaled = Mat::<T>::from_fn(d, d, |i, j| r_s[(i, j)] * T::from_f64(1.0 / norms[j]));
        let scaled_inv = Mat::<T>::from_fn(d, d, |i, j| inv[(i, j)] * T::from_f64(norms[i]));
        let cond =
            spectral_norm_estimate(scaled.as_ref()) * spectral_norm_estimate(scaled_inv.as_ref());
        let rounding = crate::epsilon::<T>() * cond * cond;
        if !rounding.is_finite() || rounding > REFINE_LIMIT {
            return None;
        }
        let gram = gram_lower(a, None);
        let gram = Mat::<T>::from_fn(
            d,
            d,
            |i, j| if i >= j { gram[(i, j)] } else { gram[(j, i)] },
        );
        // M = inv^T G inv.
        let mut g_inv = Mat::<T>::zeros(d, d);
        matmul(
            g_inv.as_mut(),
            Accum::Replace,
            gram.as_ref(),
            inv.as_ref(),
            T::ONE,
            faer::Par::Seq,
        );
        let mut m = Mat::<T>::zeros(d, d);
        matmul(
            m.as_mut(),
            Accum::Replace,
            inv.transpose(),
            g_inv.as_ref(),
            T::ONE,
            faer::Par::Seq,
        );
        let l = Llt::new(m.as_ref(), faer::Side::Lower).ok()?;
        let r_m = l.L().transpose().to_owned();
        let r = upper_times(r_m.as_ref(), r_s);
        Some((UpperInverse(r), r_m))
    })
}

/// LSQR on a preconditioned operator for the right-hand sides `rhs`, from
/// `x0` (zero if `None`).
fn preconditioned_lsqr<T: Real>(
    op: &dyn Operator<T>,
    rhs: MatRef<'_, T>,
    x0: Option<MatRef<'_, T>>,
    options: PreconditionOptions,
) -> Result<crate::krylov::Output<T>> {
    let x0 = x0.map(row_major);
    lsqr(
        op,
        &row_major(rhs),
        rhs.ncols(),
        x0.as_deref(),
        lsqr_options(options),
        None,
    )
}

/// The solution with its exact residual norms and LSQR's statistics.
fn finish<T: Real>(
    a: &dyn Operator<T>,
    b: MatRef<'_, T>,
    x: Mat<T>,
    out: crate::krylov::Output<T>,
    rank: usize,
    preconditioner: &'static str,
) -> Result<Solution<T>> {
    let residual_norm = residual_norms(a, x.as_ref(), b)?;
    Ok(Solution {
        x,
        residual_norm,
        iterations: out.iterations.iter().copied().max().unwrap_or(0),
        converged: out.converged,
        rank,
        preconditioner: Some(preconditioner),
    })
}

/// Sketch-and-precondition for a wide `A` (`n < d`): `sat = S A^T` (`k x n`,
/// `k >= n`). LSQR from zero on `P^T A x = P^T b` converges to the
/// minimum-norm least squares solution (its iterates stay in the row space of
/// `A`, and `P^T` is invertible on the range of `A`).
pub fn sketch_precondition_wide<T: Real>(
    a: &dyn Operator<T>,
    b: MatRef<'_, T>,
    sat: MatRef<'_, T>,
    options: PreconditionOptions,
) -> Result<Solution<T>> {
    let (n, d) = a.shape();
    ensure!(b.nrows() == n, "b has {} rows, A has {n}", b.nrows());
    ensure!(
        sat.ncols() == n && sat.nrows() >= n,
        "the sketch of A^T must be k x {n} with k >= {n}, got {} x {}",
        sat.nrows(),
        sat.ncols()
    );
    let m = b.ncols();
    let f = TallFactor::new(sat)?;
    let mut pb = Mat::zeros(f.rank(), m);
    f.precondition_transpose(b, pb.as_mut());
    let out = preconditioned_lsqr(&LeftPreconditioned { a, f: &f }, pb.as_ref(), None, options)?;
    let x = view(&out.x, d, m).to_owned();
    finish(a, b, x, out, f.rank(), f.method())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::krylov::DenseOperator;

    fn problem() -> (Mat<f64>, Mat<f64>) {
        let a = Mat::from_fn(3000, 12, |i, j| {
            (((i * 7919 + j * 104729) % 1009) as f64 / 1009.0 - 0.5) * (1.0 + j as f64)
        });
        let b = Mat::from_fn(3000, 2, |i, j| ((i * 31 + j * 17) % 97) as f64 / 97.0);
        (a, b)
    }

    #[test]
    fn fused_product_matches_separate_products() {
        // y = A x - u (the epilogue) and z = A^T y in one pass, against two
        // plain products; blocks of 2 row-major columns.
        let (a, _) = problem();
        let x = Mat::from_fn(12, 2, |i, j| (i as f64 - 5.0) * (j as f64 + 1.0));
        let u = Mat::from_fn(3000, 2, |i, j| ((i * 13 + j * 7) % 29) as f64 - 14.0);
        let row_major =
            |m: &Mat<f64>| -> Vec<f64> { (0..m.nrows() * 2).map(|t| m[(t / 2, t % 2)]).collect() };
        let (xs, us) = (row_major(&x), row_major(&u));
        let subtract = |first: usize, yb: &mut [f64]| -> Vec<f64> {
            let mut sums = vec![0.0; 2];
            for (t, v) in yb.iter_mut().enumerate() {
                *v -= us[first * 2 + t];
                sums[t % 2] += *v;
            }
            sums
        };
        let op = DenseOperator(a.as_ref());
        let (mut y, mut z) = (vec![0.0; 3000 * 2], vec![0.0; 12 * 2]);
        let sums = op
            .apply_then_transpose(&xs, &mut y, &mut z, 2, &subtract)
            .unwrap()
            .expect("a dense operator fuses");
        let expect_y = &a * &x - &u;
        let expect_z = a.transpose() * &expect_y;
        for c in 0..2 {
            let col_sum: f64 = (0..3000).map(|i| expect_y[(i, c)]).sum();
            assert!((sums[c] - col_sum).abs() < 1e-8 * (1.0 + col_sum.abs()));
        }
        assert!(y
            .iter()
            .zip(row_major(&expect_y))
            .all(|(p, q)| (p - q).abs() < 1e-10));
        let scale = expect_z.norm_max();
        assert!(z
            .iter()
            .zip(row_major(&expect_z))
            .all(|(p, q)| (p - q).abs() < 1e-12 * scale));
    }

    #[test]
    fn refined_preconditioner_makes_a_nearly_orthonormal() {
        // R_s from a row subset of A (a crude "sketch"), refined: A R^{-1}
        // has orthonormal columns up to the rounding of A^T A, and R_M is
        // the factor that takes R_s to R.
        let (a, _) = problem();
        let sa = Mat::from_fn(60, 12, |i, j| a[(i * 50, j)]);
        let f = TallFactor::new(sa.as_ref()).unwrap();
        let (r, r_m) = refine(a.as_ref(), f.r().unwrap()).expect("well conditioned");
        let mut q = a.transpose().to_owned();
        faer::linalg::triangular_solve::solve_lower_triangular_in_place(
            r.0.transpose(),
            q.as_mut(),
            faer::Par::Seq,
        );
        let gram = &q * q.transpose();
        assert!((&gram - Mat::<f64>::identity(12, 12)).norm_max() < 1e-12);
        let product = upper_times(r_m.as_ref(), f.r().unwrap());
        assert!((&product - &r.0).norm_max() <= 1e-14 * r.0.norm_max());
        // A sketch this ill-conditioned is not refined (eps cond^2 > 0.1).
        let mut bad = sa.clone();
        for i in 0..60 {
            bad[(i, 11)] = bad[(i, 10)] * (1.0 + 1e-9 * (i % 3) as f64);
        }
        let f = TallFactor::new(bad.as_ref()).unwrap();
        assert!(f.r().is_some());
        assert!(refine(a.as_ref(), f.r().unwrap()).is_none());
    }

    /// A dense matrix that does not say so: the sketch's `R` alone.
    struct Opaque<'a>(DenseOperator<'a, f64>);

    impl Operator<f64> for Opaque<'_> {
        fn shape(&self) -> (usize, usize) {
            self.0.shape()
        }
        fn apply(&self, x: MatRef<'_, f64>, y: MatMut<'_, f64>) -> Result<()> {
            self.0.apply(x, y)
        }
        fn apply_transpose(&self, x: MatRef<'_, f64>, y: MatMut<'_, f64>) -> Result<()> {
            self.0.apply_transpose(x, y)
        }
    }

    #[test]
    fn preconditioned_lsqr_matches_the_direct_solution() {
        // Both paths: the dense operator gets the refined preconditioner and
        // converges in a few iterations, the opaque one the sketch's R alone.
        let (a, b) = problem();
        let exact = direct(a.as_ref(), b.as_ref()).unwrap();
        // A "sketch" that is a row subset of A scaled: enough for a preconditioner.
        let sa = Mat::from_fn(60, 12, |i, j| a[(i * 50, j)]);
        let sb = Mat::from_fn(60, 2, |i, j| b[(i * 50, j)]);
        let options = PreconditionOptions {
            rtol: 1e-12,
            maxiter: 500,
        };
        let dense = DenseOperator(a.as_ref());
        let opaque = Opaque(DenseOperator(a.as_ref()));
        let ops: [(&dyn Operator<f64>, &str); 2] = [(&dense, "qr+cholesky"), (&opaque, "qr")];
        for (op, kind) in ops {
            let got =
                sketch_precondition(op, b.as_ref(), sa.as_ref(), sb.as_ref(), options).unwrap();
            assert_eq!(got.preconditioner, Some(kind));
            if kind == "qr+cholesky" {
                assert!(got.iterations <= 4, "{} iterations", got.iterations);
            }
            assert!(got.converged.iter().all(|&c| c));
            assert!((&got.x - &exact.x).norm_max() < 1e-9 * exact.x.norm_max());
            for c in 0..2 {
                assert!(
                    (got.residual_norm[c] - exact.residual_norm[c]).abs()
                        < 1e-9 * exact.residual_norm[c]
                );
            }
        }
    }
}
