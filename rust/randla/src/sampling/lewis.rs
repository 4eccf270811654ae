//! l_p Lewis weights: the `w > 0` with `w_i = tau_i(W^{1/2 - 1/p} A)` (`tau`
//! the leverage scores), which sum to `rank(A)`; `p = 2` gives the leverage
//! scores. Cohen & Peng (2015) iterate `w_i <- (a_i^T (A^T W^{1-2/p} A)^+
//! a_i)^{p/2}`, a contraction for `p < 4` with Jacobian of spectral radius at
//! most `|p/2 - 1|`. We take the step in log space with length
//! `eta = min(1, 2/p)`: the damped map contracts by at most `max(1 - p/2, 1 -
//! 2/p) < 1` for every `p >= 1`, so the same loop also converges for `p >= 4`,
//! where the plain iteration can oscillate.

use crate::ensure;
use crate::error::Result;

/// Leverage scores of the rows of `diag(scale) A` (exact or sketched), for
/// the `A` the closure holds.
pub type LeverageFn<'a> = dyn FnMut(&[f64]) -> Result<Vec<f64>> + 'a;

/// The result of [`lewis_weights`].
#[derive(Clone, Debug)]
pub struct LewisWeights {
    pub weights: Vec<f64>,
    pub iterations: usize,
    /// The largest relative change of a weight in the last iteration.
    pub change: f64,
    pub converged: bool,
}

/// l_p Lewis weights of the rows of `a` for `1 <= p < inf`, leverage scores
/// from `leverage` (called on `W^{1/2 - 1/p} A` once per iteration), until the
/// largest relative change of a weight is below `tol` or `maxiter` iterations.
pub fn lewis_weights(
    n: usize,
    p: f64,
    tol: f64,
    maxiter: usize,
    leverage: &mut LeverageFn<'_>,
) -> Result<LewisWeights> {
    ensure!(
        p >= 1.0 && p.is_finite(),
        "p must be >= 1 and finite, got {p}"
    );
    let eta = (2.0 / p).min(1.0);
    let exponent = 0.5 - 1.0 / p;
    // Start from the leverage scores: the answer for p = 2.
    let mut w = leverage(&vec![1.0; n])?;
    let floor = f64::MIN_POSITIVE.sqrt();
    let mut change = f64::INFINITY;
    let mut iterations = 0;
    while iterations < maxiter && change > tol {
        iterations += 1;
        let scale: Vec<f64> = w.iter().map(|&v| v.max(floor).powf(exponent)).collect();
        let tau = leverage(&scale)?;
        change = 0.0;
        for (wi, ti) in w.iter_mut().zip(&tau) {
            // T(w)_i = (w_i^{2/p - 1} tau_i)^{p/2}; w <- w^{1 - eta} T(w)^eta.
            let old = wi.max(floor);
            let target = (old.powf(2.0 / p - 1.0) * ti.max(0.0)).powf(p / 2.0);
            let new = if target > 0.0 {
                old.powf(1.0 - eta) * target.powf(eta)
            } else {
                0.0
            };
            change = f64::max(change, (new - *wi).abs() / wi.abs().max(floor));
            *wi = new;
        }
        if p == 2.0 {
            change = 0.0; // leverage scores are the fixed point itself
        }
    }
    Ok(LewisWeights {
        weights: w,
        iterations,
        converged: change <= tol,
        change,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampling::leverage::{exact, exact_scaled};
    use faer::Mat;

    fn rows() -> Mat<f64> {
        Mat::from_fn(60, 3, |i, j| {
            let base = ((i * 7 + j * 11) % 13) as f64 - 6.0;
            if i == 5 {
                base * 20.0 // one heavy row
            } else {
                base + (i % 3 == j) as u8 as f64
            }
        })
    }

    #[test]
    fn weights_satisfy_their_fixed_point_and_sum_to_d() {
        let a = rows();
        for p in [1.0, 1.5, 3.0, 4.0, 6.0] {
            let mut lev = |s: &[f64]| exact_scaled(a.as_ref(), s);
            let r = lewis_weights(60, p, 1e-12, 500, &mut lev).unwrap();
            assert!(r.converged, "p = {p}: change {}", r.change);
            assert!(
                (r.weights.iter().sum::<f64>() - 3.0).abs() < 1e-9,
                "p = {p}"
            );
            let scaled = Mat::from_fn(60, 3, |i, j| a[(i, j)] * r.weights[i].powf(0.5 - 1.0 / p));
            let (tau, _) = exact(scaled.as_ref()).unwrap();
            for (w, t) in r.weights.iter().zip(&tau) {
                assert!((w - t).abs() <= 1e-9 * w.max(1e-3), "p = {p}: {w} vs {t}");
            }
        }
    }
}
