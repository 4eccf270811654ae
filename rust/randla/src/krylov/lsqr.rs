//! LSQR (Paige & Saunders 1982) for `min ||A x - b||^2 + damp^2 ||x||^2`,
//! scipy's variant: the same recurrences, estimates and stopping tests as
//! `scipy.sparse.linalg.lsqr`, for `m` right-hand sides at once.

use super::golub_kahan::GolubKahan;
use super::vectors::{axpby, column_norms};
use super::{Callback, Operator, Output};
use crate::error::Result;
use crate::Real;

/// Tolerances of LSQR and LSMR (scipy's names and meaning).
#[derive(Clone, Copy, Debug)]
pub struct LeastSquaresOptions {
    pub damp: f64,
    pub atol: f64,
    pub btol: f64,
    pub conlim: f64,
    pub maxiter: usize,
}

/// Checks `b` (`nrows x m`) and `x0` (`ncols x m`); returns `ncols` and the
/// starting iterate (`x0` or zeros).
pub(crate) fn rectangular_start<T: Real>(
    a: &dyn Operator<T>,
    b: &[T],
    m: usize,
    x0: Option<&[T]>,
) -> Result<(usize, Vec<T>)> {
    let cols = a.shape().1;
    super::check_blocks(a.shape(), b, m, x0)?;
    let x = x0.map_or_else(|| vec![T::ZERO; cols * m], <[T]>::to_vec);
    Ok((cols, x))
}

/// scipy's `istop` for LSQR and LSMR from `[test1, test2, test3, t1]` (the
/// later tests take precedence); 0 while none holds.
pub(crate) fn stopping_test(
    it: usize,
    options: &LeastSquaresOptions,
    [test1, test2, test3, t1]: [f64; 4],
    rtol: f64,
    ctol: f64,
) -> i64 {
    let mut istop = 0;
    if it >= options.maxiter {
        istop = 7;
    }
    if 1.0 + test3 <= 1.0 {
        istop = 6;
    }
    if 1.0 + test2 <= 1.0 {
        istop = 5;
    }
    if 1.0 + t1 <= 1.0 {
        istop = 4;
    }
    if test3 <= ctol {
        istop = 3;
    }
    if test2 <= options.atol {
        istop = 2;
    }
    if test1 <= rtol {
        istop = 1;
    }
    istop
}

/// A stable Givens rotation: `(c, s, r)` with `c a + s b = r`, `-s a + c b = 0`.
pub(crate) fn sym_ortho(a: f64, b: f64) -> (f64, f64, f64) {
    if b == 0.0 {
        (if a == 0.0 { 1.0 } else { a.signum() }, 0.0, a.abs())
    } else if a == 0.0 {
        (0.0, b.signum(), b.abs())
    } else if b.abs() > a.abs() {
        let tau = a / b;
        let s = b.signum() / (1.0 + tau * tau).sqrt();
        (s * tau, s, b / s)
    } else {
        let tau = b / a;
        let c = a.signum() / (1.0 + tau * tau).sqrt();
        (c, c * tau, a / c)
    }
}

/// The scalar state of one column.
#[derive(Clone, Copy, Default)]
struct Column {
    alpha: f64,
    beta: f64,
    rhobar: f64,
    phibar: f64,
    anorm: f64,
    acond: f64,
    ddnorm: f64,
    res2: f64,
    xxnorm: f64,
    z: f64,
    cs2: f64,
    sn2: f64,
    bnorm: f64,
    rnorm: f64,
    istop: i64,
    active: bool,
}

/// Solves `min ||A x - b||` (damped) for `b` of `nrows x m`, row-major.
/// `info` holds scipy's `istop` (1, 2, 4, 5: converged; 3, 6: conditioning
/// limit; 7: iteration limit; 0: b = 0, x = 0).
pub fn lsqr<T: Real>(
    a: &dyn Operator<T>,
    b: &[T],
    m: usize,
    x0: Option<&[T]>,
    options: LeastSquaresOptions,
    callback: Option<&mut Callback<'_, T>>,
) -> Result<Output<T>> {
    crate::parallel::install(move || {
        // u and A v; v, A^T u, w and x
        let vectors = 2 * a.shape().0 + 4 * a.shape().1;
        super::blocks_or_columns(a, None, b, m, x0, vectors, callback, |b, m, x0, cb| {
            lsqr_in_pool(a, b, m, x0, options, cb)
        })
    })
}

fn lsqr_in_pool<T: Real>(
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
    let bnorm = column_norms(b, m);
    let mut w = gk.v.clone();
    let dampsq = options.damp * options.damp;
    let ctol = if options.conlim > 0.0 {
        1.0 / options.conlim
    } else {
        0.0
    };
    let eps = f64::EPSILON;
    let mut state: Vec<Column> = (0..m)
        .map(|c| Column {
            alpha: alpha[c],
            beta: beta[c],
            rhobar: alpha[c],
            phibar: beta[c],
            cs2: -1.0,
            bnorm: bnorm[c],
            rnorm: beta[c],
            active: alpha[c] * beta[c] != 0.0,
            ..Column::default()
        })
        .collect();
    let mut iterations = vec![0usize; m];
    let mut history = vec![state.iter().map(|s| s.rnorm).collect::<Vec<f64>>()];
    let mut stopped = false;
    let mut t1s = vec![T::ZERO; m];
    let mut t2s = vec![T::ZERO; m];

    for it in 1..=options.maxiter {
        if !state.iter().any(|s| s.active) {
            break;
        }
        let previous: Vec<f64> = state.iter().map(|s| s.alpha).collect();
        let (beta, alpha) = gk.step(a, &previous)?;
        let wnorm = column_norms(&w, m);
        for c in 0..m {
            let s = &mut state[c];
            t1s[c] = T::ZERO;
            t2s[c] = T::ZERO;
            if !s.active {
                continue;
            }
            s.beta = beta[c];
            if s.beta > 0.0 {
                s.anorm = (s.anorm * s.anorm + s.alpha * s.alpha + s.beta * s.beta + dampsq).sqrt();
            }
            let (rhobar1, psi) = if options.damp > 0.0 {
                let rhobar1 = (s.rhobar * s.rhobar + dampsq).sqrt();
                let (cs1, sn1) = (s.rhobar / rhobar1, options.damp / rhobar1);
                let psi = sn1 * s.phibar;
                s.phibar *= cs1;
                (rhobar1, psi)
            } else {
                (s.rhobar, 0.0)
            };
            let (cs, sn, rho) = sym_ortho(rhobar1, s.beta);
            let new_alpha = if s.beta > 0.0 { alpha[c] } else { s.alpha };
            let theta = sn * new_alpha;
            s.rhobar = -cs * new_alpha;
            let phi = cs * s.phibar;
            s.phibar *= sn;
            let tau = sn * phi;
            t1s[c] = T::from_f64(phi / rho);
            t2s[c] = T::from_f64(-theta / rho);
            s.ddnorm += (wnorm[c] / rho).powi(2);
            // Estimate ||x||.
            let delta = s.sn2 * rho;
            let gambar = -s.cs2 * rho;
            let rhs = phi - delta * s.z;
            let zbar = rhs / gambar;
            let xnorm = (s.xxnorm + zbar * zbar).sqrt();
            let gamma = (gambar * gambar + theta * theta).sqrt();
            s.cs2 = gambar / gamma;
            s.sn2 = theta / gamma;
            s.z = rhs / gamma;
            s.xxnorm += s.z * s.z;
            s.acond = s.anorm * s.ddnorm.sqrt();
            s.res2 += psi * psi;
            s.rnorm = (s.phibar * s.phibar + s.res2).sqrt();
            s.alpha = new_alpha;
            let arnorm = s.alpha * tau.abs();
            let test1 = s.rnorm / s.bnorm;
            let test2 = arnorm / (s.anorm * s.rnorm + eps);
            let test3 = 1.0 / (s.acond + eps);
            let t1 = test1 / (1.0 + s.anorm * xnorm / s.bnorm);
            let rtol = options.btol + options.atol * s.anorm * xnorm / s.bnorm;
            let istop = stopping_test(it, &options, [test1, test2, test3, t1], rtol, ctol);
            iterations[c] = it;
            if istop != 0 {
                s.istop = istop;
                s.active = false;
            }
        }
        // x += t1 w, w = v + t2 w (columns that stopped this iteration still take
        // their last step, as scipy does).
        axpby(&t1s, &w, &ones, &mut x);
        let keep: Vec<T> = t2s.clone();
        let mut new_w = gk.v.clone();
        axpby(&keep, &w, &ones, &mut new_w);
        for c in 0..m {
            if t1s[c] != T::ZERO || t2s[c] != T::ZERO {
                for i in 0..cols {
                    w[i * m + c] = new_w[i * m + c];
                }
            }
        }
        let norms: Vec<f64> = state.iter().map(|s| s.rnorm).collect();
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
        residual_norm: state.iter().map(|s| s.rnorm).collect(),
        history,
        stopped,
        info,
    })
}
