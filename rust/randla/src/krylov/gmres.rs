//! Restarted GMRES (Saad & Schultz 1986) with right preconditioning, and its
//! flexible variant FGMRES (Saad 1993) for preconditioners that change from
//! one iteration to the next (a learned or inner-iterative `M`).
//!
//! Right preconditioning keeps the Givens estimate equal to the true residual
//! norm `||b - A x||`, so the stopping rule is scipy's on the unpreconditioned
//! system; the true residual is recomputed at every restart. `maxiter` counts
//! inner iterations (products with `A`), not restart cycles as scipy does.
//! Each right-hand side has its own Arnoldi process and stops on its own.

use super::vectors::{axpby, column_dots, column_norms, view, view_mut};
use super::{Callback, Operator, Options, Output, Progress};
use crate::ensure;
use crate::error::Result;
use crate::Real;

/// The Arnoldi state of one column within a restart cycle.
#[derive(Clone, Default)]
struct Cycle {
    /// Hessenberg columns after the rotations: `h[j][k]` for `k <= j`.
    h: Vec<Vec<f64>>,
    cs: Vec<f64>,
    sn: Vec<f64>,
    g: Vec<f64>,
    /// Arnoldi steps taken in this cycle.
    steps: usize,
    running: bool,
}

impl Cycle {
    /// `y` solving the leading `steps x steps` triangle of `h` against `g`.
    fn coefficients(&self) -> Vec<f64> {
        let k = self.steps;
        let mut y = self.g[..k].to_vec();
        for i in (0..k).rev() {
            for j in i + 1..k {
                y[i] -= self.h[j][i] * y[j];
            }
            // A zero pivot (singular A M): drop that direction rather than divide by zero.
            y[i] = if self.h[i][i] != 0.0 {
                y[i] / self.h[i][i]
            } else {
                0.0
            };
        }
        y
    }
}

/// Solves `A x = b` for a square `A`, `b` of `n x m`, row-major.
#[allow(clippy::too_many_arguments)]
pub fn gmres<T: Real>(
    a: &dyn Operator<T>,
    b: &[T],
    m: usize,
    x0: Option<&[T]>,
    precond: Option<&dyn Operator<T>>,
    restart: usize,
    flexible: bool,
    options: Options,
    callback: Option<&mut Callback<'_, T>>,
) -> Result<Output<T>> {
    crate::parallel::install(move || {
        // the basis (twice, flexible), x, r, w, z and the update
        let vectors = (restart * (1 + usize::from(flexible)) + 6) * a.shape().1;
        super::blocks_or_columns(a, precond, b, m, x0, vectors, callback, |b, m, x0, cb| {
            gmres_in_pool(a, b, m, x0, precond, restart, flexible, options, cb)
        })
    })
}

#[allow(clippy::too_many_arguments)]
fn gmres_in_pool<T: Real>(
    a: &dyn Operator<T>,
    b: &[T],
    m: usize,
    x0: Option<&[T]>,
    precond: Option<&dyn Operator<T>>,
    restart: usize,
    flexible: bool,
    options: Options,
    mut callback: Option<&mut Callback<'_, T>>,
) -> Result<Output<T>> {
    ensure!(restart >= 1, "restart must be >= 1, got {restart}");
    let (n, mut x) = super::square_start(a, b, m, x0, precond)?;
    let ones = vec![T::ONE; m];
    let zeros = vec![T::ZERO; m];
    let bnorm = column_norms(b, m);
    let tol: Vec<f64> = bnorm
        .iter()
        .map(|&bn| (options.rtol * bn).max(options.atol))
        .collect();
    let residual = |x: &[T], r: &mut Vec<T>| -> Result<Vec<f64>> {
        a.apply(view(x, n, m), view_mut(r, n, m))?;
        let ax = r.clone();
        r.copy_from_slice(b);
        axpby(&vec![-T::ONE; m], &ax, &ones, r);
        Ok(column_norms(r, m))
    };
    let mut r = vec![T::ZERO; n * m];
    let mut rnorm = residual(&x, &mut r)?;
    let mut converged: Vec<bool> = (0..m)
        .map(|c| bnorm[c] == 0.0 || rnorm[c] <= tol[c])
        .collect();
    for c in 0..m {
        if bnorm[c] == 0.0 {
            for i in 0..n {
                x[i * m + c] = T::ZERO;
            }
            rnorm[c] = 0.0;
        }
    }
    let mut iterations = vec![0usize; m];
    let mut history = vec![rnorm.clone()];
    let info = vec![0i64; m];
    let mut stopped = false;
    let mut total = 0usize;
    // Krylov vectors, allocated once and reused by every cycle.
    let mut basis: Vec<Vec<T>> = (0..=restart).map(|_| vec![T::ZERO; n * m]).collect();
    let keep_directions = flexible && precond.is_some();
    let mut directions: Vec<Vec<T>> = (0..if keep_directions { restart } else { 0 })
        .map(|_| vec![T::ZERO; n * m])
        .collect();
    let mut w = vec![T::ZERO; n * m];
    let mut z = vec![T::ZERO; n * m];

    // Forms x_start + M (V y) (or x_start + Z y) from each column's current coefficients.
    let combine = |cycles: &[Cycle],
                   basis: &[Vec<T>],
                   directions: &[Vec<T>],
                   z: &mut Vec<T>|
     -> Result<Vec<T>> {
        let ys: Vec<Vec<f64>> = cycles
            .iter()
            .map(|cy| {
                if cy.steps > 0 {
                    cy.coefficients()
                } else {
                    vec![]
                }
            })
            .collect();
        let mut update = vec![T::ZERO; n * m];
        let steps = cycles.iter().map(|cy| cy.steps).max().unwrap_or(0);
        for k in 0..steps {
            let coef: Vec<T> = ys
                .iter()
                .map(|y| T::from_f64(y.get(k).copied().unwrap_or(0.0)))
                .collect();
            let source = if keep_directions {
                &directions[k]
            } else {
                &basis[k]
            };
            axpby(&coef, source, &ones, &mut update);
        }
        if let (Some(pm), false) = (precond, flexible) {
            pm.apply(view(&update, n, m), view_mut(z, n, m))?;
            update.copy_from_slice(z);
        }
        Ok(update)
    };

    while converged.iter().any(|&c| !c) && total < options.maxiter && !stopped {
        // A new cycle from the current residual.
        let mut cycles: Vec<Cycle> = (0..m)
            .map(|c| Cycle {
                g: {
                    let mut g = vec![0.0; restart + 1];
                    g[0] = rnorm[c];
                    g
                },
                running: !converged[c] && rnorm[c] > 0.0,
                ..Cycle::default()
            })
            .collect();
        let scale: Vec<T> = rnorm
            .iter()
            .map(|&v| T::from_f64(if v > 0.0 { 1.0 / v } else { 0.0 }))
            .collect();
        // (b = 0 in axpby discards the previous cycle's finite values.)
        axpby(&scale, &r, &zeros, &mut basis[0]);
        let x_start = x.clone();
        for j in 0..restart {
            if total >= options.maxiter || !cycles.iter().any(|cy| cy.running) {
                break;
            }
            // w = A M v_j (z_j = M v_j kept for FGMRES).
            let source: &[T] = match precond {
                Some(pm) => {
                    pm.apply(view(&basis[j], n, m), view_mut(&mut z, n, m))?;
                    if keep_directions {
                        directions[j].copy_from_slice(&z);
                    }
                    &z
                }
                None => &basis[j],
            };
            a.apply(view(source, n, m), view_mut(&mut w, n, m))?;
            // Modified Gram–Schmidt against v_0 .. v_j.
            let mut hcol: Vec<Vec<f64>> = vec![vec![0.0; j + 2]; m];
            for k in 0..=j {
                let hk = column_dots(&basis[k], &w, m);
                let coef: Vec<T> = (0..m)
                    .map(|c| T::from_f64(if cycles[c].running { -hk[c] } else { 0.0 }))
                    .collect();
                axpby(&coef, &basis[k], &ones, &mut w);
                for c in 0..m {
                    hcol[c][k] = hk[c];
                }
            }
            let hn = column_norms(&w, m);
            let inv: Vec<T> = (0..m)
                .map(|c| {
                    T::from_f64(if cycles[c].running && hn[c] > 0.0 {
                        1.0 / hn[c]
                    } else {
                        0.0
                    })
                })
                .collect();
            axpby(&inv, &w, &zeros, &mut basis[j + 1]);
            total += 1;
            for c in 0..m {
                let cy = &mut cycles[c];
                if !cy.running {
                    continue;
                }
                let mut col = hcol[c].clone();
                col[j + 1] = hn[c];
                for k in 0..j {
                    let (cs, sn) = (cy.cs[k], cy.sn[k]);
                    let (a0, a1) = (col[k], col[k + 1]);
                    col[k] = cs * a0 + sn * a1;
                    col[k + 1] = -sn * a0 + cs * a1;
                }
                let (cs, sn, rr) = super::lsqr::sym_ortho(col[j], col[j + 1]);
                col[j] = rr;
                col[j + 1] = 0.0;
                cy.cs.push(cs);
                cy.sn.push(sn);
                cy.g[j + 1] = -sn * cy.g[j];
                cy.g[j] *= cs;
                cy.h.push(col);
                cy.steps = j + 1;
                iterations[c] += 1;
                rnorm[c] = cy.g[j + 1].abs();
                let lucky =
                    hn[c] <= f64::EPSILON * hcol[c].iter().map(|v| v * v).sum::<f64>().sqrt();
                if rnorm[c] <= tol[c] || lucky || rr == 0.0 {
                    cy.running = false;
                }
            }
            history.push(rnorm.clone());
            if let Some(cb) = callback.as_deref_mut() {
                let update = combine(&cycles, &basis, &directions, &mut z)?;
                let mut current = x_start.clone();
                axpby(&ones, &update, &ones, &mut current);
                if cb(&Progress {
                    iteration: total,
                    x: &current,
                    residual_norm: &rnorm,
                })? {
                    stopped = true;
                    break;
                }
            }
        }
        // x = x_start + M V y (or + Z y), then the true residual.
        let update = combine(&cycles, &basis, &directions, &mut z)?;
        x.copy_from_slice(&x_start);
        axpby(&ones, &update, &ones, &mut x);
        let true_norm = residual(&x, &mut r)?;
        for c in 0..m {
            if !converged[c] {
                rnorm[c] = true_norm[c];
                converged[c] = rnorm[c] <= tol[c];
            }
        }
        if let Some(last) = history.last_mut() {
            last.clone_from(&rnorm);
        }
    }
    Ok(super::square_output(
        x, converged, iterations, rnorm, history, stopped, info,
    ))
}
