//! Low-rank approximation from random test matrices: the range finder and
//! randomized SVD of Halko, Martinsson and Tropp (2011), with power iterations
//! re-orthonormalized by QR at every pass, and the numerically stable Nyström
//! approximation of a PSD matrix (Tropp, Yurtsever, Udell, Cevher 2017).
//!
//! Every product goes through [`Operator`], so dense, sparse and user
//! operators share one code path; [`Centered`] subtracts the column means
//! implicitly (randomized PCA without densifying a sparse `A`).

use faer::linalg::matmul::matmul;
use faer::linalg::solvers::{Llt, Qr, Svd};
use faer::linalg::triangular_solve::solve_lower_triangular_in_place;
use faer::reborrow::ReborrowMut;
use faer::{Accum, Mat, MatMut, MatRef, Par, Side};

use crate::ensure;
use crate::error::{Error, Result};
use crate::krylov::Operator;
use crate::Real;

/// `A - 1 mean^T`, applied without forming it.
pub struct Centered<'a, T> {
    a: &'a dyn Operator<T>,
    mean: Mat<T>,
}

impl<'a, T: Real> Centered<'a, T> {
    /// Computes the column means of `a` (one product with `A^T`).
    pub fn new(a: &'a dyn Operator<T>) -> Result<Self> {
        let (rows, cols) = a.shape();
        ensure!(rows >= 1, "cannot center a matrix with no rows");
        let ones = Mat::<T>::from_fn(rows, 1, |_, _| T::ONE);
        let mut mean = Mat::<T>::zeros(cols, 1);
        a.apply_transpose(ones.as_ref(), mean.as_mut())?;
        let inv = T::from_f64(1.0 / rows as f64);
        for j in 0..cols {
            mean[(j, 0)] *= inv;
        }
        Ok(Self { a, mean })
    }
}

impl<T: Real> Operator<T> for Centered<'_, T> {
    fn shape(&self) -> (usize, usize) {
        self.a.shape()
    }
    fn apply(&self, x: MatRef<'_, T>, mut y: MatMut<'_, T>) -> Result<()> {
        self.a.apply(x, y.rb_mut())?;
        // y -= 1 (mean^T x)
        let mut t = Mat::<T>::zeros(1, x.ncols());
        matmul(
            t.as_mut(),
            Accum::Replace,
            self.mean.transpose(),
            x,
            T::ONE,
            Par::Seq,
        );
        for c in 0..y.ncols() {
            let tc = t[(0, c)];
            for i in 0..y.nrows() {
                y[(i, c)] -= tc;
            }
        }
        Ok(())
    }
    fn apply_transpose(&self, x: MatRef<'_, T>, mut y: MatMut<'_, T>) -> Result<()> {
        self.a.apply_transpose(x, y.rb_mut())?;
        // y -= mean (1^T x)
        for c in 0..x.ncols() {
            let mut s = 0.0f64;
            for i in 0..x.nrows() {
                s += x[(i, c)].to_f64();
            }
            let s = T::from_f64(s);
            for j in 0..y.nrows() {
                y[(j, c)] -= self.mean[(j, 0)] * s;
            }
        }
        Ok(())
    }
}

/// Orthonormal columns spanning `y` (thin Householder QR).
fn orthonormal_basis<T: Real>(y: MatRef<'_, T>) -> Mat<T> {
    Qr::new(y).compute_thin_Q()
}

fn times<T: Real>(a: &dyn Operator<T>, x: MatRef<'_, T>) -> Result<Mat<T>> {
    let mut y = Mat::zeros(a.shape().0, x.ncols());
    a.apply(x, y.as_mut())?;
    Ok(y)
}

fn transpose_times<T: Real>(a: &dyn Operator<T>, x: MatRef<'_, T>) -> Result<Mat<T>> {
    let mut y = Mat::zeros(a.shape().1, x.ncols());
    a.apply_transpose(x, y.as_mut())?;
    Ok(y)
}

/// An orthonormal basis `Q` (`nrows x l`) of `range(A Omega)` refined by
/// `n_iter` power iterations `Q <- orth(A orth(A^T Q))`; `omega` is the
/// `ncols x l` test matrix (`l <= min(nrows, ncols)`).
pub fn range_finder<T: Real>(
    a: &dyn Operator<T>,
    omega: MatRef<'_, T>,
    n_iter: usize,
) -> Result<Mat<T>> {
    let (rows, cols) = a.shape();
    ensure!(
        omega.nrows() == cols,
        "the test matrix has {} rows, A has {cols} columns",
        omega.nrows()
    );
    ensure!(
        omega.ncols() >= 1 && omega.ncols() <= rows.min(cols),
        "the test matrix must have between 1 and min(A.shape) = {} columns, got {}",
        rows.min(cols),
        omega.ncols()
    );
    crate::parallel::install(|| {
        let mut q = orthonormal_basis(times(a, omega)?.as_ref());
        for _ in 0..n_iter {
            let z = orthonormal_basis(transpose_times(a, q.as_ref())?.as_ref());
            q = orthonormal_basis(times(a, z.as_ref())?.as_ref());
        }
        Ok(q)
    })
}

/// An orthonormal basis of the block Krylov space `[A Omega, (A A^T) A Omega,
/// ..., (A A^T)^q A Omega]` (Musco & Musco 2015): `nrows x l (q + 1)` columns
/// (fewer if that exceeds `min(nrows, ncols)`). Each block is orthonormalized
/// as it is made and the whole basis once more at the end.
pub fn block_krylov_basis<T: Real>(
    a: &dyn Operator<T>,
    omega: MatRef<'_, T>,
    q: usize,
) -> Result<Mat<T>> {
    let (rows, cols) = a.shape();
    ensure!(
        omega.nrows() == cols && omega.ncols() >= 1 && omega.ncols() <= rows.min(cols),
        "the test matrix must be {cols} x l with 1 <= l <= {}, got {} x {}",
        rows.min(cols),
        omega.nrows(),
        omega.ncols()
    );
    let l = omega.ncols();
    let steps = q.min(rows.min(cols) / l - 1);
    crate::parallel::install(|| {
        let mut krylov = Mat::<T>::zeros(rows, l * (steps + 1));
        let mut block = orthonormal_basis(times(a, omega)?.as_ref());
        krylov.as_mut().get_mut(.., ..l).copy_from(block.as_ref());
        for i in 1..=steps {
            let z = transpose_times(a, block.as_ref())?;
            block = orthonormal_basis(times(a, z.as_ref())?.as_ref());
            krylov
                .as_mut()
                .get_mut(.., i * l..(i + 1) * l)
                .copy_from(block.as_ref());
        }
        Ok(orthonormal_basis(krylov.as_ref()))
    })
}

/// Flips column signs of `u` (and the matching rows of `vt`, if given) so the
/// largest-magnitude entry of each column of `u` is positive (scikit-learn's
/// `svd_flip`; the first such entry on ties).
pub fn flip_signs<T: Real>(mut u: MatMut<'_, T>, mut vt: Option<MatMut<'_, T>>) {
    for j in 0..u.ncols() {
        let mut best = 0usize;
        for i in 1..u.nrows() {
            if u[(i, j)].to_f64().abs() > u[(best, j)].to_f64().abs() {
                best = i;
            }
        }
        if u.nrows() > 0 && u[(best, j)] < T::ZERO {
            for i in 0..u.nrows() {
                u[(i, j)] = -u[(i, j)];
            }
            if let Some(vt) = vt.as_mut() {
                for c in 0..vt.ncols() {
                    vt[(j, c)] = -vt[(j, c)];
                }
            }
        }
    }
}

/// A truncated SVD `A ~ U diag(s) Vt`.
pub struct LowRankSvd<T> {
    /// `nrows x k`.
    pub u: Mat<T>,
    /// Descending.
    pub s: Vec<T>,
    /// `k x ncols`.
    pub vt: Mat<T>,
}

/// Randomized SVD of rank `k` from the range of `A Omega` (`omega`:
/// `ncols x l`, `k <= l`) after `n_iter` power iterations, or from the block
/// Krylov space of `n_iter` steps.
pub fn svd<T: Real>(
    a: &dyn Operator<T>,
    omega: MatRef<'_, T>,
    k: usize,
    n_iter: usize,
    block_krylov: bool,
) -> Result<LowRankSvd<T>> {
    ensure!(
        k >= 1 && k <= omega.ncols(),
        "k must be between 1 and the number of test vectors {}, got {k}",
        omega.ncols()
    );
    crate::parallel::install(|| {
        let q = if block_krylov {
            block_krylov_basis(a, omega, n_iter)?
        } else {
            range_finder(a, omega, n_iter)?
        };
        // B = Q^T A, factored through its transpose A^T Q = Ub S Vb^T, so
        // B = Vb S Ub^T.
        let bt = transpose_times(a, q.as_ref())?;
        let f = Svd::new_thin(bt.as_ref())
            .map_err(|_| Error::Numerical("the SVD did not converge".into()))?;
        let mut u = Mat::zeros(q.nrows(), k);
        matmul(
            u.as_mut(),
            Accum::Replace,
            q.as_ref(),
            f.V().get(.., ..k),
            T::ONE,
            crate::parallel::faer_par(),
        );
        let mut vt = f.U().get(.., ..k).transpose().to_owned();
        let s = (0..k).map(|i| f.S()[i]).collect();
        flip_signs(u.as_mut(), Some(vt.as_mut()));
        Ok(LowRankSvd { u, s, vt })
    })
}

/// The rank-`k` Nyström approximation `A ~ V diag(w) V^T` of a symmetric
/// positive semidefinite `A` from `A Omega` (`omega`: `n x l`, `k <= l`),
/// with the stabilizing shift of Tropp et al.: `w` descending, `V` `n x k`.
pub fn nystrom<T: Real>(
    a: &dyn Operator<T>,
    omega: MatRef<'_, T>,
    k: usize,
) -> Result<(Vec<T>, Mat<T>)> {
    let (n, cols) = a.shape();
    ensure!(n == cols, "A must be square, got shape ({n}, {cols})");
    ensure!(
        omega.nrows() == n && omega.ncols() >= k && k >= 1 && omega.ncols() <= n,
        "the test matrix must be {n} x l with k <= l <= {n}, got {} x {}",
        omega.nrows(),
        omega.ncols()
    );
    crate::parallel::install(|| {
        // A thin orthonormal test matrix keeps the core matrix well scaled.
        let omega = orthonormal_basis(omega);
        let l = omega.ncols();
        let y = times(a, omega.as_ref())?;
        let eps = crate::epsilon::<T>();
        // The Frobenius norm bounds ||Y||_2 from above: a slightly larger, still tiny shift.
        let nu = (n as f64).sqrt() * eps * y.norm_l2().to_f64();
        let nu_t = T::from_f64(nu);
        let y_nu = Mat::from_fn(n, l, |i, j| y[(i, j)] + nu_t * omega[(i, j)]);
        let mut core = Mat::zeros(l, l);
        matmul(
            core.as_mut(),
            Accum::Replace,
            omega.transpose(),
            y_nu.as_ref(),
            T::ONE,
            crate::parallel::faer_par(),
        );
        let half = T::from_f64(0.5);
        let core = Mat::from_fn(l, l, |i, j| half * (core[(i, j)] + core[(j, i)]));
        let chol = Llt::new(core.as_ref(), Side::Lower).map_err(|_| {
            Error::Numerical(
                "the Nystrom core matrix is not positive definite: A is not symmetric positive semidefinite"
                    .into(),
            )
        })?;
        // E = Y_nu L^{-T}, i.e. E^T = L^{-1} Y_nu^T.
        let mut et = y_nu.transpose().to_owned();
        solve_lower_triangular_in_place(chol.L(), et.as_mut(), crate::parallel::faer_par());
        let f = Svd::new_thin(et.transpose())
            .map_err(|_| Error::Numerical("the SVD did not converge".into()))?;
        let w: Vec<T> = (0..k)
            .map(|i| {
                let s = f.S()[i].to_f64();
                T::from_f64((s * s - nu).max(0.0))
            })
            .collect();
        let mut v = f.U().get(.., ..k).to_owned();
        flip_signs(v.as_mut(), None);
        Ok((w, v))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::krylov::DenseOperator;

    #[test]
    fn exact_on_a_low_rank_matrix() {
        // Rank 3, 40 x 30: a range finder with 6 vectors captures it exactly.
        let left = Mat::from_fn(40, 3, |i, j| ((i * 7 + j * 3) % 11) as f64 - 5.0);
        let right = Mat::from_fn(3, 30, |i, j| ((i * 5 + j * 2) % 13) as f64 - 6.0);
        let a = &left * &right;
        let omega = Mat::from_fn(30, 6, |i, j| (((i * 31 + j * 17) % 23) as f64 - 11.0) / 7.0);
        let op = DenseOperator(a.as_ref());
        let r = svd(&op, omega.as_ref(), 3, 1, false).unwrap();
        let rk = svd(&op, omega.as_ref(), 3, 1, true).unwrap();
        for j in 0..3 {
            assert!((r.s[j] - rk.s[j]).abs() < 1e-9 * r.s[0]);
        }
        let mut approx = Mat::<f64>::zeros(40, 30);
        for j in 0..3 {
            for (row, col) in (0..40).flat_map(|i| (0..30).map(move |c| (i, c))) {
                approx[(row, col)] += r.u[(row, j)] * r.s[j] * r.vt[(j, col)];
            }
        }
        assert!((&approx - &a).norm_max() < 1e-9 * a.norm_max());
        assert!(r.s[0] >= r.s[1] && r.s[1] >= r.s[2]);
    }

    #[test]
    fn centering_matches_the_explicit_centered_matrix() {
        let a = Mat::from_fn(9, 4, |i, j| ((i * 3 + j * 7) % 5) as f64 + j as f64);
        let op = DenseOperator(a.as_ref());
        let c = Centered::new(&op).unwrap();
        let x = Mat::from_fn(4, 2, |i, j| (i + j) as f64 - 1.0);
        let mut y = Mat::zeros(9, 2);
        c.apply(x.as_ref(), y.as_mut()).unwrap();
        let means: Vec<f64> = (0..4)
            .map(|j| (0..9).map(|i| a[(i, j)]).sum::<f64>() / 9.0)
            .collect();
        let ac = Mat::from_fn(9, 4, |i, j| a[(i, j)] - means[j]);
        assert!((&y - &ac * &x).norm_max() < 1e-12);
        let z = Mat::from_fn(9, 2, |i, j| (i * j) as f64 - 2.0);
        let mut yt = Mat::zeros(4, 2);
        c.apply_transpose(z.as_ref(), yt.as_mut()).unwrap();
        assert!((&yt - ac.transpose() * &z).norm_max() < 1e-12);
    }
}
