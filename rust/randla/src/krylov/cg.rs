//! Preconditioned conjugate gradients (Hestenes–Stiefel), scipy's variant:
//! the same recurrences, stopping rule and iteration count as
//! `scipy.sparse.linalg.cg`, for `m` right-hand sides at once.

use super::vectors::{
    axpy, column_dots, column_norms, direction_step, residual_step, view, view_mut,
};
use super::{Callback, Operator, Options, Output};
use crate::error::Result;
use crate::Real;

/// Finite and > 0: what p^T A p and r^T M r are for SPD A and M.
fn positive(v: f64) -> bool {
    v > 0.0 && v.is_finite()
}

/// Solves `A x = b` for symmetric positive definite `A`, `b` of `n x m`
/// (row-major), optionally preconditioned by `precond` (an SPD approximation of
/// `A^{-1}`). A column whose `p^T A p` or `r^T M r` is not positive breaks
/// down (`info = -1`): `A` or `M` is not positive definite.
pub fn cg<T: Real>(
    a: &dyn Operator<T>,
    b: &[T],
    m: usize,
    x0: Option<&[T]>,
    precond: Option<&dyn Operator<T>>,
    options: Options,
    callback: Option<&mut Callback<'_, T>>,
) -> Result<Output<T>> {
    // The whole solve runs inside the pool: the many small parallel passes of
    // an iteration then cost no hand-off from outside.
    crate::parallel::install(move || {
        // x, r, p, q and z
        let vectors = (4 + usize::from(precond.is_some())) * a.shape().1;
        super::blocks_or_columns(a, precond, b, m, x0, vectors, callback, |b, m, x0, cb| {
            cg_in_pool(a, b, m, x0, precond, options, cb)
        })
    })
}

fn cg_in_pool<T: Real>(
    a: &dyn Operator<T>,
    b: &[T],
    m: usize,
    x0: Option<&[T]>,
    precond: Option<&dyn Operator<T>>,
    options: Options,
    mut callback: Option<&mut Callback<'_, T>>,
) -> Result<Output<T>> {
    let (n, mut x) = super::square_start(a, b, m, x0, precond)?;
    // r = b - A x
    let mut r = super::initial_residual(a, b, &x, m, x0.is_some())?;
    let bnorm = column_norms(b, m);
    let tol: Vec<f64> = bnorm
        .iter()
        .map(|&bn| (options.rtol * bn).max(options.atol))
        .collect();
    let mut rnorm = column_norms(&r, m);
    let mut history = vec![rnorm.clone()];
    let mut converged: Vec<bool> = (0..m).map(|c| rnorm[c] <= tol[c]).collect();
    let mut info = vec![0i64; m];
    let mut iterations = vec![0usize; m];
    let mut active: Vec<bool> = converged.iter().map(|&done| !done).collect();
    // scipy returns x = 0 at once for b = 0.
    for c in 0..m {
        if bnorm[c] == 0.0 {
            for i in 0..n {
                x[i * m + c] = T::ZERO;
            }
            converged[c] = true;
            active[c] = false;
        }
    }

    let mut z = vec![T::ZERO; if precond.is_some() { n * m } else { 0 }];
    let apply_precond = |r: &[T], z: &mut Vec<T>| -> Result<()> {
        if let Some(pm) = precond {
            pm.apply(view(r, n, m), view_mut(z, n, m))?;
        }
        Ok(())
    };
    apply_precond(&r, &mut z)?;
    let mut rho = if precond.is_some() {
        column_dots(&r, &z, m)
    } else {
        rnorm.iter().map(|v| v * v).collect()
    };
    let mut p = if precond.is_some() {
        z.clone()
    } else {
        r.clone()
    };
    let mut q = vec![T::ZERO; n * m];
    let mut alpha = vec![T::ZERO; m];
    let mut beta = vec![T::ZERO; m];
    let mut stopped = false;

    for it in 1..=options.maxiter {
        if !active.iter().any(|&a| a) {
            break;
        }
        let pq = a.apply_dot(&p, &mut q, m)?;
        for c in 0..m {
            alpha[c] = T::ZERO;
            if !active[c] {
                continue;
            }
            if !(positive(pq[c]) && positive(rho[c])) {
                info[c] = -1;
                active[c] = false;
                continue;
            }
            alpha[c] = T::from_f64(rho[c] / pq[c]);
        }
        if !active.iter().any(|&a| a) {
            break; // every remaining column broke down
        }
        let rr = residual_step(&mut r, &q, &alpha);
        // x += alpha p rides along with the direction pass below (one pass
        // fewer over the blocks); done on its own before any exit first.
        let mut pending = true;
        for c in 0..m {
            if alpha[c] != T::ZERO || active[c] {
                rnorm[c] = rr[c].sqrt();
                iterations[c] = it;
                if rnorm[c] <= tol[c] {
                    converged[c] = true;
                    active[c] = false;
                }
            }
        }
        history.push(rnorm.clone());
        let last = !active.iter().any(|&a| a);
        if callback.is_some() || last {
            axpy(&alpha, &p, &mut x); // the callback sees this step's x
            pending = false;
        }
        if super::report(&mut callback, it, &x, &rnorm)? {
            if pending {
                axpy(&alpha, &p, &mut x);
            }
            stopped = true;
            break;
        }
        if last {
            break;
        }
        let rho_new = if precond.is_some() {
            apply_precond(&r, &mut z)?;
            column_dots(&r, &z, m)
        } else {
            rr.clone()
        };
        for c in 0..m {
            beta[c] = T::ZERO;
            if active[c] {
                if !positive(rho_new[c]) {
                    info[c] = -1;
                    active[c] = false;
                    continue;
                }
                beta[c] = T::from_f64(rho_new[c] / rho[c]);
                rho[c] = rho_new[c];
            }
        }
        let source = if precond.is_some() { &z } else { &r };
        direction_step(
            &mut p,
            source,
            &beta,
            pending.then_some((&mut x[..], &alpha[..])),
        );
    }
    Ok(super::square_output(
        x, converged, iterations, rnorm, history, stopped, info,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::krylov::SparseOperator;
    use crate::sparse::{Compressed, SparseRef};

    /// 1-D Laplacian tridiag(-1, 2, -1) of size n, CSR.
    fn laplacian(n: usize) -> (Vec<usize>, Vec<usize>, Vec<f64>) {
        let (mut indptr, mut idx, mut val) = (vec![0], vec![], vec![]);
        for i in 0..n {
            if i > 0 {
                idx.push(i - 1);
                val.push(-1.0);
            }
            idx.push(i);
            val.push(2.0);
            if i + 1 < n {
                idx.push(i + 1);
                val.push(-1.0);
            }
            indptr.push(idx.len());
        }
        (indptr, idx, val)
    }

    #[test]
    fn solves_a_laplacian_with_several_right_hand_sides() {
        let n = 200;
        let (indptr, idx, val) = laplacian(n);
        let a = SparseOperator::new(SparseRef::Csr(
            Compressed::new(n, n, &indptr, &idx, &val).unwrap(),
        ));
        let m = 3;
        let b: Vec<f64> = (0..n * m).map(|k| ((k * 37) % 17) as f64 - 8.0).collect();
        let opts = Options {
            rtol: 1e-10,
            atol: 0.0,
            maxiter: 10 * n,
        };
        let out = cg(&a, &b, m, None, None, opts, None).unwrap();
        assert!(out.converged.iter().all(|&c| c));
        let mut ax = vec![0.0; n * m];
        a.apply(view(&out.x, n, m), view_mut(&mut ax, n, m))
            .unwrap();
        for c in 0..m {
            let res: f64 = (0..n)
                .map(|i| (ax[i * m + c] - b[i * m + c]).powi(2))
                .sum::<f64>()
                .sqrt();
            let bn: f64 = (0..n).map(|i| b[i * m + c].powi(2)).sum::<f64>().sqrt();
            assert!(res <= 1e-9 * bn, "column {c}: {res}");
            // CG on an n x n SPD matrix converges in at most n steps (up to rounding).
            assert!(out.iterations[c] <= n + 10);
        }
        // Each column equals its own single solve.
        let single: Vec<f64> = (0..n).map(|i| b[i * m + 1]).collect();
        let one = cg(&a, &single, 1, None, None, opts, None).unwrap();
        assert_eq!(one.iterations[0], out.iterations[1]);
        for i in 0..n {
            assert!((one.x[i] - out.x[i * m + 1]).abs() < 1e-12);
        }
    }

    #[test]
    fn column_at_a_time_equals_the_block_solve() {
        let n = 300;
        let (indptr, idx, val) = laplacian(n);
        let a = SparseOperator::new(SparseRef::Csr(
            Compressed::new(n, n, &indptr, &idx, &val).unwrap(),
        ));
        let m = 3;
        // Column 2 is an eigenvector of A: it stops long before the others.
        let b: Vec<f64> = (0..n * m)
            .map(|k| match k % m {
                2 => (std::f64::consts::PI * (k / m + 1) as f64 / (n + 1) as f64).sin(),
                _ => ((k * 37) % 17) as f64 - 8.0,
            })
            .collect();
        let x0: Vec<f64> = (0..n * m)
            .map(|k| {
                if k % m == 2 {
                    0.0
                } else {
                    (k % 5) as f64 * 0.1
                }
            })
            .collect();
        let opts = Options {
            rtol: 1e-10,
            atol: 0.0,
            maxiter: 10 * n,
        };
        let block = crate::parallel::install(|| {
            cg_in_pool(&a, &b, m, Some(&x0), None, opts, None).unwrap()
        });
        let columns = |side_by_side: bool| {
            crate::parallel::install(|| {
                crate::krylov::by_columns((n, n), &b, m, Some(&x0), side_by_side, |b, x0| {
                    cg_in_pool(&a, b, 1, x0, None, opts, None)
                })
                .unwrap()
            })
        };
        let by_columns = columns(false);
        // Side by side, each column computes the same bits.
        let side_by_side = columns(true);
        assert_eq!(side_by_side.x, by_columns.x);
        assert_eq!(side_by_side.history, by_columns.history);
        assert!(block.iterations.iter().any(|&i| i != block.iterations[0]));
        assert_eq!(block.iterations, by_columns.iterations);
        assert_eq!(block.converged, by_columns.converged);
        assert_eq!(block.info, by_columns.info);
        // Products by diagonals and the dot products sum in the same order
        // for every column count: the same bits, history included (a column
        // keeps its last norm once it has stopped).
        assert_eq!(block.x, by_columns.x);
        assert_eq!(block.history, by_columns.history);
        // The public entry takes the column path here (sparse A, m < 8).
        let public = cg(&a, &b, m, Some(&x0), None, opts, None).unwrap();
        assert_eq!(public.x, by_columns.x);
        assert!(
            crate::krylov::by_columns((n, n), &b[1..], m, None, false, |_, _| unreachable!())
                .is_err()
        );
    }

    #[test]
    fn indefinite_matrix_breaks_down() {
        let n = 10;
        let indptr: Vec<usize> = (0..=n).collect();
        let idx: Vec<usize> = (0..n).collect();
        let val: Vec<f64> = (0..n).map(|i| if i < 5 { 1.0 } else { -1.0 }).collect();
        let a = SparseOperator::new(SparseRef::Csr(
            Compressed::new(n, n, &indptr, &idx, &val).unwrap(),
        ));
        let b: Vec<f64> = (0..n).map(|i| if i % 2 == 0 { 1.0 } else { 0.0 }).collect();
        let b: Vec<f64> = b
            .iter()
            .zip(0..n)
            .map(|(v, i)| if i == 5 { 3.0 } else { *v })
            .collect();
        let opts = Options {
            rtol: 1e-10,
            atol: 0.0,
            maxiter: 100,
        };
        let out = cg(&a, &b, 1, None, None, opts, None).unwrap();
        assert_eq!(out.info[0], -1);
        assert!(!out.converged[0]);
    }
}
