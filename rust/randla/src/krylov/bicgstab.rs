//! BiCGSTAB (van der Vorst 1992), scipy's variant: the same recurrences,
//! breakdown tests (`|rho| < eps^2`: info -10; `|omega| < eps^2` or
//! `rtilde . v = 0`: info -11) and stopping rule as
//! `scipy.sparse.linalg.bicgstab`, for `m` right-hand sides at once. `M` is a
//! right preconditioner (`phat = M p`, `shat = M s`).

use super::vectors::{axpby, column_dots, column_norms, view, view_mut};
use super::{Callback, Operator, Options, Output};
use crate::error::Result;
use crate::Real;

/// Solves `A x = b` for a square `A`, `b` of `n x m`, row-major.
pub fn bicgstab<T: Real>(
    a: &dyn Operator<T>,
    b: &[T],
    m: usize,
    x0: Option<&[T]>,
    precond: Option<&dyn Operator<T>>,
    options: Options,
    callback: Option<&mut Callback<'_, T>>,
) -> Result<Output<T>> {
    crate::parallel::install(move || {
        // x, r, r~, p, v, t, p^ and s^
        let vectors = 8 * a.shape().1;
        super::blocks_or_columns(a, precond, b, m, x0, vectors, callback, |b, m, x0, cb| {
            bicgstab_in_pool(a, b, m, x0, precond, options, cb)
        })
    })
}

#[derive(Clone, Copy, Default)]
struct Column {
    rho_prev: f64,
    alpha: f64,
    omega: f64,
    tol: f64,
    active: bool,
}

fn bicgstab_in_pool<T: Real>(
    a: &dyn Operator<T>,
    b: &[T],
    m: usize,
    x0: Option<&[T]>,
    precond: Option<&dyn Operator<T>>,
    options: Options,
    mut callback: Option<&mut Callback<'_, T>>,
) -> Result<Output<T>> {
    let (n, mut x) = super::square_start(a, b, m, x0, precond)?;
    let ones = vec![T::ONE; m];
    let mut r = super::initial_residual(a, b, &x, m, x0.is_some())?;
    let rtilde = r.clone();
    let bnorm = column_norms(b, m);
    let eps = super::epsilon::<T>();
    let tiny = eps * eps;
    let mut state: Vec<Column> = bnorm
        .iter()
        .map(|&bn| Column {
            tol: (options.rtol * bn).max(options.atol),
            active: bn != 0.0,
            ..Column::default()
        })
        .collect();
    let mut converged: Vec<bool> = bnorm.iter().map(|&bn| bn == 0.0).collect();
    let mut info = vec![0i64; m];
    let mut iterations = vec![0usize; m];
    for (c, s) in state.iter().enumerate() {
        if !s.active {
            for i in 0..n {
                x[i * m + c] = T::ZERO;
            }
        }
    }
    let mut rnorm = column_norms(&r, m);
    let mut history = vec![rnorm.clone()];
    let mut p = vec![T::ZERO; n * m];
    let mut v = vec![T::ZERO; n * m];
    let mut t = vec![T::ZERO; n * m];
    let mut phat = vec![T::ZERO; n * m];
    let mut shat = vec![T::ZERO; n * m];
    let solve_m = |src: &[T], dst: &mut Vec<T>| super::precondition(precond, src, dst, n, m);
    let mut stopped = false;
    let mut coef_a = vec![T::ZERO; m];
    let mut coef_b = vec![T::ONE; m];

    for it in 0..options.maxiter {
        // Convergence test at the top of the loop, as scipy.
        for c in 0..m {
            if state[c].active && rnorm[c] < state[c].tol {
                state[c].active = false;
                converged[c] = true;
            }
        }
        if !state.iter().any(|s| s.active) {
            break;
        }
        let rho = column_dots(&rtilde, &r, m);
        for c in 0..m {
            coef_a[c] = T::ZERO;
            coef_b[c] = T::ONE;
            let s = &mut state[c];
            if !s.active {
                continue;
            }
            if rho[c].abs() < tiny {
                info[c] = -10;
                s.active = false;
                continue;
            }
            if it > 0 && s.omega.abs() < tiny {
                info[c] = -11;
                s.active = false;
            }
        }
        // p = r + beta (p - omega v), or p = r on the first iteration.
        if it == 0 {
            p.copy_from_slice(&r);
        } else {
            let neg_omega: Vec<T> = state
                .iter()
                .map(|s| T::from_f64(if s.active { -s.omega } else { 0.0 }))
                .collect();
            axpby(&neg_omega, &v, &ones, &mut p);
            for c in 0..m {
                let s = &state[c];
                if s.active {
                    coef_b[c] = T::from_f64((rho[c] / s.rho_prev) * (s.alpha / s.omega));
                    coef_a[c] = T::ONE;
                }
            }
            axpby(&coef_a, &r, &coef_b, &mut p);
        }
        solve_m(&p, &mut phat)?;
        a.apply(view(&phat, n, m), view_mut(&mut v, n, m))?;
        let rv = column_dots(&rtilde, &v, m);
        let mut step = vec![T::ZERO; m];
        for c in 0..m {
            let s = &mut state[c];
            if !s.active {
                continue;
            }
            if rv[c] == 0.0 || !rv[c].is_finite() {
                info[c] = -11;
                s.active = false;
                continue;
            }
            s.alpha = rho[c] / rv[c];
            step[c] = T::from_f64(-s.alpha);
        }
        // s = r - alpha v (kept in r).
        axpby(&step, &v, &ones, &mut r);
        let snorm = column_norms(&r, m);
        let mut half = vec![T::ZERO; m];
        for c in 0..m {
            if state[c].active {
                iterations[c] = it + 1;
                if snorm[c] < state[c].tol {
                    // Converged half way: x += alpha phat.
                    half[c] = T::from_f64(state[c].alpha);
                    state[c].active = false;
                    converged[c] = true;
                    rnorm[c] = snorm[c];
                }
            }
        }
        axpby(&half, &phat, &ones, &mut x);
        solve_m(&r, &mut shat)?;
        a.apply(view(&shat, n, m), view_mut(&mut t, n, m))?;
        let ts = column_dots(&t, &r, m);
        let tt = column_dots(&t, &t, m);
        let mut x_alpha = vec![T::ZERO; m];
        let mut x_omega = vec![T::ZERO; m];
        for c in 0..m {
            let s = &mut state[c];
            if !s.active {
                continue;
            }
            s.omega = ts[c] / tt[c];
            s.rho_prev = rho[c];
            x_alpha[c] = T::from_f64(s.alpha);
            x_omega[c] = T::from_f64(s.omega);
        }
        axpby(&x_alpha, &phat, &ones, &mut x);
        axpby(&x_omega, &shat, &ones, &mut x);
        let neg: Vec<T> = x_omega.iter().map(|&w| -w).collect();
        axpby(&neg, &t, &ones, &mut r);
        let now = column_norms(&r, m);
        for c in 0..m {
            if state[c].active {
                rnorm[c] = now[c];
            }
        }
        history.push(rnorm.clone());
        if super::report(&mut callback, it + 1, &x, &rnorm)? {
            stopped = true;
            break;
        }
    }
    Ok(super::square_output(
        x, converged, iterations, rnorm, history, stopped, info,
    ))
}
