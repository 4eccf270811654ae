//! LSMR (Fong & Saunders 2011) for `min ||A x - b||^2 + damp^2 ||x||^2`,
//! scipy's variant: the same recurrences, estimates and stopping tests as
//! `scipy.sparse.linalg.lsmr`, for `m` right-hand sides at once. `||A^T r||`
//! decreases monotonically, so it stops earlier than LSQR on least squares
//! problems.

use super::golub_kahan::GolubKahan;
use super::lsqr::{rectangular_start, stopping_test, sym_ortho, LeastSquaresOptions};
use super::vectors::{axpby, column_norms};
use super::{Callback, Operator, Output};
use crate::error::Result;
use crate::Real;

/// The scalar state of one column (scipy's names).
#[derive(Clone, Copy, Default)]
struct Column {
    alpha: f64,
    zetabar: f64,
    alphabar: f64,
    rho: f64,
    rhobar: f64,
    cbar: f64,
    sbar: f64,
    betadd: f64,
    betad: f64,
    rhodold: f64,
    tautildeold: f64,
    thetatilde: f64,
    zeta: f64,
    d: f64,
    norm_a2: f64,
    norm_a: f64,
    rhotemp: f64,
    maxrbar: f64,
    minrbar: f64,
    normb: f64,
    normr: f64,
    istop: i64,
    active: bool,
}

/// Solves `min ||A x - b||` (damped) for `b` of `nrows x m`, row-major;
/// `info` holds scipy's `istop` as for [`super::lsqr`].
pub fn lsmr<T: Real>(
    a: &dyn Operator<T>,
    b: &[T],
    m: usize,
    x0: Option<&[T]>,
    options: LeastSquaresOptions,
    callback: Option<&mut Callback<'_, T>>,
) -> Result<Output<T>> {
    crate::parallel::install(move || {
        // u and A v; v, A^T u, h, h bar and x
        let vectors = 2 * a.shape().0 + 5 * a.shape().1;
        super::blocks_or_columns(a, None, b, m, x0, vectors, callback, |b, m, x0, cb| {
            lsmr_in_pool(a, b, m, x0, options, cb)
        })
    })
}

fn lsmr_in_pool<T: Real>(
    a: &dyn Operator<T>,
    b: &[T],
    m: usize,
    x0: Option<&[T]>,
    options: LeastSquaresOptions,
    mut callback: Option<&mut Callback<'_, T>>,
) -> Result<Output<T>> {
    let (cols, mut x) = rectangular_start(a, b, m, x0)?;
    let ones = vec![T::ONE; m];
    let (mut gk, beta, alpha) = GolubKahan::start(a, b, x0, m)?;
    let normb = column_norms(b, m);
    let mut h = gk.v.clone();
    let mut hbar = vec![T::ZERO; cols * m];
    let ctol = if options.conlim > 0.0 {
        1.0 / options.conlim
    } else {
        0.0
    };
    let mut state: Vec<Column> = (0..m)
        .map(|c| Column {
            alpha: alpha[c],
            zetabar: alpha[c] * beta[c],
            alphabar: alpha[c],
            rho: 1.0,
            rhobar: 1.0,
            cbar: 1.0,
            betadd: beta[c],
            rhodold: 1.0,
            norm_a2: alpha[c] * alpha[c],
            minrbar: 1e100,
            normb: normb[c],
            normr: beta[c],
            active: alpha[c] * beta[c] != 0.0 && normb[c] != 0.0,
            ..Column::default()
        })
        .collect();
    // scipy returns x = 0 for b = 0.
    for (c, s) in state.iter().enumerate() {
        if s.normb == 0.0 {
            for i in 0..cols {
                x[i * m + c] = T::ZERO;
            }
        }
    }
    let mut iterations = vec![0usize; m];
    let mut history = vec![state.iter().map(|s| s.normr).collect::<Vec<f64>>()];
    let mut stopped = false;
    let mut hbar_scale = vec![T::ONE; m];
    let mut h_keep = vec![T::ONE; m];
    let mut x_step = vec![T::ZERO; m];
    let mut v_take = vec![T::ZERO; m];

    for it in 1..=options.maxiter {
        if !state.iter().any(|s| s.active) {
            break;
        }
        let previous: Vec<f64> = state.iter().map(|s| s.alpha).collect();
        let (beta, alpha) = gk.step(a, &previous)?;
        for c in 0..m {
            let s = &mut state[c];
            hbar_scale[c] = T::ONE;
            h_keep[c] = T::ONE;
            x_step[c] = T::ZERO;
            v_take[c] = T::ZERO;
            if !s.active {
                continue;
            }
            let beta = beta[c];
            if beta > 0.0 {
                s.alpha = alpha[c];
            }
            let alpha = s.alpha;
            // Rotations: eliminate damp, then beta; then the upper bidiagonal R.
            let (chat, shat, alphahat) = sym_ortho(s.alphabar, options.damp);
            let rhoold = s.rho;
            let (c1, s1, rho) = sym_ortho(alphahat, beta);
            s.rho = rho;
            let thetanew = s1 * alpha;
            s.alphabar = c1 * alpha;
            let rhobarold = s.rhobar;
            let zetaold = s.zeta;
            let thetabar = s.sbar * rho;
            s.rhotemp = s.cbar * rho;
            let (cbar, sbar, rhobar) = sym_ortho(s.cbar * rho, thetanew);
            (s.cbar, s.sbar, s.rhobar) = (cbar, sbar, rhobar);
            s.zeta = cbar * s.zetabar;
            s.zetabar *= -sbar;
            // hbar = h - (thetabar rho / (rhoold rhobarold)) hbar; x += zeta/(rho rhobar) hbar;
            // h = v - (thetanew / rho) h.
            hbar_scale[c] = T::from_f64(-(thetabar * rho / (rhoold * rhobarold)));
            x_step[c] = T::from_f64(s.zeta / (rho * rhobar));
            h_keep[c] = T::from_f64(-(thetanew / rho));
            v_take[c] = T::ONE;
            // Estimate ||r||.
            let betaacute = chat * s.betadd;
            let betacheck = -shat * s.betadd;
            let betahat = c1 * betaacute;
            s.betadd = -s1 * betaacute;
            let thetatildeold = s.thetatilde;
            let (ctildeold, stildeold, rhotildeold) = sym_ortho(s.rhodold, thetabar);
            s.thetatilde = stildeold * rhobar;
            s.rhodold = ctildeold * rhobar;
            s.betad = -stildeold * s.betad + ctildeold * betahat;
            s.tautildeold = (zetaold - thetatildeold * s.tautildeold) / rhotildeold;
            let taud = (s.zeta - s.thetatilde * s.tautildeold) / s.rhodold;
            s.d += betacheck * betacheck;
            s.normr = (s.d + (s.betad - taud).powi(2) + s.betadd * s.betadd).sqrt();
            // Estimate ||A|| and cond(A).
            s.norm_a2 += beta * beta;
            s.norm_a = s.norm_a2.sqrt();
            s.norm_a2 += alpha * alpha;
            s.maxrbar = s.maxrbar.max(rhobarold);
            if it > 1 {
                s.minrbar = s.minrbar.min(rhobarold);
            }
            iterations[c] = it;
        }
        // The vector updates, all columns in one pass each (inactive columns unchanged).
        let unit: Vec<T> = ones.clone();
        axpby(&unit, &h, &hbar_scale, &mut hbar);
        axpby(&x_step, &hbar, &ones, &mut x);
        axpby(&v_take, &gk.v, &h_keep, &mut h);
        let normx = column_norms(&x, m);
        for c in 0..m {
            let s = &mut state[c];
            if !s.active || iterations[c] != it {
                continue;
            }
            let norm_a = s.norm_a;
            let cond_a = s.maxrbar.max(s.rhotemp) / s.minrbar.min(s.rhotemp);
            let normar = s.zetabar.abs();
            let test1 = s.normr / s.normb;
            let test2 = if norm_a * s.normr != 0.0 {
                normar / (norm_a * s.normr)
            } else {
                f64::INFINITY
            };
            let test3 = 1.0 / cond_a;
            let t1 = test1 / (1.0 + norm_a * normx[c] / s.normb);
            let rtol = options.btol + options.atol * norm_a * normx[c] / s.normb;
            let istop = stopping_test(it, &options, [test1, test2, test3, t1], rtol, ctol);
            if istop != 0 {
                s.istop = istop;
                s.active = false;
            }
        }
        let norms: Vec<f64> = state.iter().map(|s| s.normr).collect();
        history.push(norms.clone());
        if super::report(&mut callback, it, &x, &norms)? {
            stopped = true;
            break;
        }
    }
    let info: Vec<i64> = state
        .iter()
        // A column still running when the limit or a callback ended the solve: 7.
        .map(|s| if s.active { 7 } else { s.istop })
        .collect();
    Ok(Output {
        x,
        converged: info
            .iter()
            .map(|&i| matches!(i, 0 | 1 | 2 | 4 | 5))
            .collect(),
        iterations,
        residual_norm: state.iter().map(|s| s.normr).collect(),
        history,
        stopped,
        info,
    })
}
