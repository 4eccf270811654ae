//! MINRES (Paige & Saunders 1975) for symmetric, possibly indefinite `A`
//! (and `A - shift I`), with a symmetric positive definite preconditioner:
//! scipy's recurrences, for `m` right-hand sides at once.
//!
//! Stopping rule: the residual estimate `phibar` (`||b - A x||`, or its
//! `M`-norm with a preconditioner) `<= max(rtol * ||b||, atol)` in the same
//! norm, plus scipy's safeguards: `x` an eigenvector (istop 2, converged),
//! `cond(A) >= 0.1/eps` (info -4) and an indefinite `M` (info -9).

use super::vectors::{axpby, axpby_dots, block_dots, column_dots, column_norms, minres_update};
use super::{Callback, Operator, Options, Output};
use crate::error::Result;
use crate::Real;

#[derive(Clone, Copy, Default)]
struct Column {
    beta: f64,
    oldb: f64,
    dbar: f64,
    epsln: f64,
    phibar: f64,
    tnorm2: f64,
    gmax: f64,
    gmin: f64,
    cs: f64,
    sn: f64,
    tol: f64,
    active: bool,
}

/// Solves `(A - shift I) x = b` for symmetric `A`, `b` of `n x m`, row-major.
#[allow(clippy::too_many_arguments)]
pub fn minres<T: Real>(
    a: &dyn Operator<T>,
    b: &[T],
    m: usize,
    x0: Option<&[T]>,
    precond: Option<&dyn Operator<T>>,
    shift: f64,
    options: Options,
    callback: Option<&mut Callback<'_, T>>,
) -> Result<Output<T>> {
    crate::parallel::install(move || {
        // x, y, M b, r1, r2, v and three w
        let vectors = 9 * a.shape().1;
        super::blocks_or_columns(a, precond, b, m, x0, vectors, callback, |b, m, x0, cb| {
            minres_in_pool(a, b, m, x0, precond, shift, options, cb)
        })
    })
}

#[allow(clippy::too_many_arguments)]
fn minres_in_pool<T: Real>(
    a: &dyn Operator<T>,
    b: &[T],
    m: usize,
    x0: Option<&[T]>,
    precond: Option<&dyn Operator<T>>,
    shift: f64,
    options: Options,
    mut callback: Option<&mut Callback<'_, T>>,
) -> Result<Output<T>> {
    let (n, mut x) = super::square_start(a, b, m, x0, precond)?;
    let ones = vec![T::ONE; m];
    let zeros = vec![T::ZERO; m];
    let eps = super::epsilon::<T>();
    let solve_m = |src: &[T], dst: &mut Vec<T>| super::precondition(precond, src, dst, n, m);
    let mut r1 = super::initial_residual(a, b, &x, m, x0.is_some())?;
    let mut y = vec![T::ZERO; n * m];
    solve_m(&r1, &mut y)?;
    let beta1_sq = column_dots(&r1, &y, m);
    // ||b|| in the norm of the residual estimate (the M-norm with a preconditioner).
    let mut mb = vec![T::ZERO; n * m];
    solve_m(b, &mut mb)?;
    let bnorm: Vec<f64> = column_dots(b, &mb, m)
        .into_iter()
        .map(|v| v.max(0.0).sqrt())
        .collect();
    let mut info = vec![0i64; m];
    let mut converged = vec![false; m];
    let mut state: Vec<Column> = (0..m)
        .map(|c| {
            let beta1 = beta1_sq[c].max(0.0).sqrt();
            Column {
                beta: beta1,
                phibar: beta1,
                gmin: f64::MAX,
                cs: -1.0,
                tol: (options.rtol * bnorm[c]).max(options.atol),
                active: beta1 > 0.0,
                ..Column::default()
            }
        })
        .collect();
    let b_euclid = column_norms(b, m);
    let r_euclid = column_norms(&r1, m);
    for c in 0..m {
        if beta1_sq[c] < 0.0 || (beta1_sq[c] == 0.0 && r_euclid[c] > 0.0) {
            // r^T M r <= 0 for a nonzero r: M is not positive definite.
            info[c] = -9;
            state[c].active = false;
        } else if state[c].phibar <= state[c].tol {
            converged[c] = true;
            state[c].active = false;
        }
        if b_euclid[c] == 0.0 {
            for i in 0..n {
                x[i * m + c] = T::ZERO;
            }
            converged[c] = true;
            state[c].active = false;
        }
    }
    let mut iterations = vec![0usize; m];
    let mut rnorm: Vec<f64> = state.iter().map(|s| s.phibar).collect();
    let mut history = vec![rnorm.clone()];
    let mut r2 = r1.clone();
    // z = M^{-1} r2 (only with a preconditioner; otherwise r2 itself).
    let mut z = if precond.is_some() { y } else { Vec::new() };
    let mut v = vec![T::ZERO; n * m];
    let mut w_old = vec![T::ZERO; n * m];
    let mut w_cur = vec![T::ZERO; n * m];
    let mut next = vec![T::ZERO; n * m];
    let mut stopped = false;
    let shift_t = T::from_f64(shift);

    for it in 1..=options.maxiter {
        if !state.iter().any(|s| s.active) {
            break;
        }
        // Lanczos step: v = z / beta; next = (A - shift) v - (beta/oldb) r1 - (alfa/beta) r2.
        let inv_beta: Vec<T> = state
            .iter()
            .map(|s| T::from_f64(if s.active { 1.0 / s.beta } else { 0.0 }))
            .collect();
        let z_now: &[T] = if precond.is_some() { &z } else { &r2 };
        axpby(&inv_beta, z_now, &zeros, &mut v);
        let c1: Vec<T> = state
            .iter()
            .map(|s| {
                T::from_f64(if s.active && it >= 2 {
                    -(s.beta / s.oldb)
                } else {
                    0.0
                })
            })
            .collect();
        // The shift and the r1 term are applied to each block of A v while it
        // is in cache, with alfa = v . next accumulated in the same sweep.
        let (v_ref, r1_ref) = (&v, &r1);
        let lanczos = |first: usize, yb: &mut [T]| -> Vec<f64> {
            let rows = yb.len() / m;
            let vb = &v_ref[first * m..(first + rows) * m];
            let rb = &r1_ref[first * m..(first + rows) * m];
            // Called through `dyn Fn` from inside the product: dispatch here.
            crate::simd::dispatch(
                #[inline(always)]
                || {
                    if m == 1 {
                        let c = c1[0];
                        for ((yv, &vv), &rv) in yb.iter_mut().zip(vb).zip(rb) {
                            *yv = *yv - shift_t * vv + c * rv;
                        }
                    } else {
                        for ((yr, vr), rr) in yb
                            .chunks_exact_mut(m)
                            .zip(vb.chunks_exact(m))
                            .zip(rb.chunks_exact(m))
                        {
                            for c in 0..m {
                                yr[c] = yr[c] - shift_t * vr[c] + c1[c] * rr[c];
                            }
                        }
                    }
                    block_dots(vb, yb, m)
                },
            )
        };
        let alfa = a.apply_then(&v, &mut next, m, &lanczos)?;
        let coef: Vec<T> = (0..m)
            .map(|c| {
                T::from_f64(if state[c].active {
                    -(alfa[c] / state[c].beta)
                } else {
                    0.0
                })
            })
            .collect();
        // r1 <- r2, r2 <- next (buffers rotate, nothing is copied).
        let beta_sq = if precond.is_some() {
            axpby(&coef, &r2, &ones, &mut next);
            std::mem::swap(&mut r1, &mut r2);
            std::mem::swap(&mut r2, &mut next);
            solve_m(&r2, &mut z)?;
            column_dots(&r2, &z, m)
        } else {
            let sq = axpby_dots(&coef, &r2, &ones, &mut next);
            std::mem::swap(&mut r1, &mut r2);
            std::mem::swap(&mut r2, &mut next);
            sq
        };
        let mut phi = vec![T::ZERO; m];
        let mut w_coef = (vec![T::ZERO; m], vec![T::ZERO; m], vec![T::ZERO; m]);
        for c in 0..m {
            let s = &mut state[c];
            if !s.active {
                continue;
            }
            if beta_sq[c] < 0.0 {
                info[c] = -9;
                s.active = false;
                continue;
            }
            s.oldb = s.beta;
            s.beta = beta_sq[c].sqrt();
            s.tnorm2 += alfa[c] * alfa[c] + s.oldb * s.oldb + s.beta * s.beta;
            // QR of the tridiagonal by a Givens rotation.
            let oldeps = s.epsln;
            let delta = s.cs * s.dbar + s.sn * alfa[c];
            let gbar = s.sn * s.dbar - s.cs * alfa[c];
            s.epsln = s.sn * s.beta;
            s.dbar = -s.cs * s.beta;
            let root = gbar.hypot(s.dbar);
            let gamma = gbar.hypot(s.beta).max(eps);
            s.cs = gbar / gamma;
            s.sn = s.beta / gamma;
            let phik = s.cs * s.phibar;
            s.phibar *= s.sn;
            // w = (v - oldeps w1 - delta w2) / gamma; x += phi w.
            w_coef.0[c] = T::from_f64(1.0 / gamma);
            w_coef.1[c] = T::from_f64(-oldeps / gamma);
            w_coef.2[c] = T::from_f64(-delta / gamma);
            phi[c] = T::from_f64(phik);
            s.gmax = s.gmax.max(gamma);
            s.gmin = s.gmin.min(gamma);
            iterations[c] = it;
            rnorm[c] = s.phibar;
            let anorm = s.tnorm2.sqrt();
            let test2 = if anorm == 0.0 {
                f64::INFINITY
            } else {
                root / anorm
            };
            if s.phibar <= s.tol {
                converged[c] = true;
                s.active = false;
            } else if test2 <= options.rtol || 1.0 + test2 <= 1.0 {
                // x is (numerically) an eigenvector: a least squares solution.
                converged[c] = true;
                s.active = false;
            } else if s.gmax / s.gmin >= 0.1 / eps {
                info[c] = -4;
                s.active = false;
            }
        }
        // w = (v - oldeps w_old - delta w_cur) / gamma over the oldest
        // direction, x += phi w, then the two directions swap roles.
        let (scale_v, scale_old, scale_cur) = w_coef;
        minres_update(
            &v, &mut w_old, &w_cur, &mut x, &scale_v, &scale_old, &scale_cur, &phi,
        );
        std::mem::swap(&mut w_old, &mut w_cur);
        history.push(rnorm.clone());
        if super::report(&mut callback, it, &x, &rnorm)? {
            stopped = true;
            break;
        }
    }
    Ok(super::square_output(
        x, converged, iterations, rnorm, history, stopped, info,
    ))
}
