//! Least squares `min ||A x - b||`: direct (QR, SVD when rank-deficient),
//! sketch-and-solve, and sketch-and-precondition (Rokhlin–Tygert, Blendenpik,
//! LSRN): the sketch `S A` is factored, its `P` makes `A P` well conditioned,
//! and LSQR on `A P` from the sketch-and-solve start converges in a number of
//! iterations that does not depend on `cond(A)`.
//!
//! Tall problems (`n >= d`) precondition on the right with the factor of
//! `S A`; wide ones (`n < d`, minimum-norm solutions) on the left with the
//! factor of `S A^T`. The caller supplies the sketches (any sketching operator).

use faer::{Mat, MatMut, MatRef};

use crate::ensure;
use crate::error::Result;
use crate::factor::TallFactor;
use crate::krylov::vectors::view;
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

/// `A P` for the factor `P` of a sketch of `A` (tall problems).
struct RightPreconditioned<'a, T> {
    a: &'a dyn Operator<T>,
    f: &'a TallFactor<T>,
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
    fn apply_normal(
        &self,
        x: MatRef<'_, T>,
        ax: MatMut<'_, T>,
        atax: MatMut<'_, T>,
    ) -> Result<bool> {
        let mut z = Mat::zeros(self.f.cols(), x.ncols());
        self.f.precondition(x, z.as_mut());
        let mut w = Mat::zeros(self.f.cols(), x.ncols());
        if !self.a.apply_normal(z.as_ref(), ax, w.as_mut())? {
            return Ok(false);
        }
        self.f.precondition_transpose(w.as_ref(), atax);
        Ok(true)
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
        // The preconditioned system is well conditioned by construction, so
        // one pass over A per iteration (A^T u from A^T A v) is accurate.
        conlim: 0.0,
        maxiter: options.maxiter,
        fused_normal: true,
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
    let x0 = f.solve(sb);
    // r0 = b - A x0; LSQR solves min ||A P y - r0|| and x = x0 + P y.
    let mut r0 = Mat::<T>::zeros(n, m);
    a.apply(x0.as_ref(), r0.as_mut())?;
    let r0 = Mat::from_fn(n, m, |i, j| b[(i, j)] - r0[(i, j)]);
    let out = preconditioned_lsqr(&RightPreconditioned { a, f: &f }, r0.as_ref(), options)?;
    let mut x = x0;
    let mut step = Mat::zeros(d, m);
    f.precondition(view(&out.x, f.rank(), m), step.as_mut());
    x += &step;
    finish(a, b, x, out, f.rank())
}

/// LSQR on a preconditioned operator for the right-hand sides `rhs`.
fn preconditioned_lsqr<T: Real>(
    op: &dyn Operator<T>,
    rhs: MatRef<'_, T>,
    options: PreconditionOptions,
) -> Result<crate::krylov::Output<T>> {
    lsqr(
        op,
        &row_major(rhs),
        rhs.ncols(),
        None,
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
) -> Result<Solution<T>> {
    let residual_norm = residual_norms(a, x.as_ref(), b)?;
    Ok(Solution {
        x,
        residual_norm,
        iterations: out.iterations.iter().copied().max().unwrap_or(0),
        converged: out.converged,
        rank,
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
    let out = preconditioned_lsqr(&LeftPreconditioned { a, f: &f }, pb.as_ref(), options)?;
    let x = view(&out.x, d, m).to_owned();
    finish(a, b, x, out, f.rank())
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
    fn fused_normal_product_matches_two_products() {
        let (a, _) = problem();
        let x = Mat::from_fn(12, 3, |i, j| (i as f64 - 5.0) * (j as f64 + 1.0));
        let op = DenseOperator(a.as_ref());
        let (mut ax, mut atax) = (Mat::zeros(3000, 3), Mat::zeros(12, 3));
        assert!(op
            .apply_normal(x.as_ref(), ax.as_mut(), atax.as_mut())
            .unwrap());
        let expect_ax = &a * &x;
        let expect = a.transpose() * &expect_ax;
        assert!((&ax - &expect_ax).norm_max() < 1e-10);
        assert!((&atax - &expect).norm_max() < 1e-8 * expect.norm_max());
    }

    #[test]
    fn preconditioned_lsqr_matches_the_direct_solution() {
        let (a, b) = problem();
        let exact = direct(a.as_ref(), b.as_ref()).unwrap();
        // A "sketch" that is a row subset of A scaled: enough for a preconditioner.
        let sa = Mat::from_fn(60, 12, |i, j| a[(i * 50, j)]);
        let sb = Mat::from_fn(60, 2, |i, j| b[(i * 50, j)]);
        let op = DenseOperator(a.as_ref());
        let options = PreconditionOptions {
            rtol: 1e-12,
            maxiter: 500,
        };
        let got = sketch_precondition(&op, b.as_ref(), sa.as_ref(), sb.as_ref(), options).unwrap();
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
