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
    let out = preconditioned_lsqr(
        &RightPreconditioned { a, f: &f },
        b,
        Some(y0.as_ref()),
        options,
    )?;
    let mut x = Mat::zeros(d, m);
    f.precondition(view(&out.x, f.rank(), m), x.as_mut());
    finish(a, b, x, out, f.rank())
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
    let out = preconditioned_lsqr(&LeftPreconditioned { a, f: &f }, pb.as_ref(), None, options)?;
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
