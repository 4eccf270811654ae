//! l_p regression `min_x sum_i c_i |a_i x - b_i|^p` (`1 <= p < inf`, weights
//! `c_i >= 0`: all ones, or coreset weights) by iteratively reweighted least
//! squares: each step solves the weighted least squares problem with weights
//! `c_i max(|r_i|, eta)^{p-2}` (Householder QR), then a backtracking line
//! search on the true objective keeps every step a descent step (plain IRLS
//! can oscillate for p > 3). For p < 2 the smoothing `eta` halves every
//! iteration, down to a floor relative to `b`, so the limit is the
//! unsmoothed minimizer.

use faer::{Mat, MatRef};

use crate::ensure;
use crate::error::Result;
use crate::factor::TallFactor;
use crate::Real;

/// The result of [`lp_regression`].
#[derive(Clone, Debug)]
pub struct LpSolution<T> {
    pub x: Vec<T>,
    /// `sum_i c_i |a_i x - b_i|^p` at `x`.
    pub objective: f64,
    pub iterations: usize,
    pub converged: bool,
}

fn objective<T: Real>(a: MatRef<'_, T>, b: &[T], c: &[f64], x: &[f64], p: f64) -> (f64, Vec<f64>) {
    let (n, d) = (a.nrows(), a.ncols());
    let mut r = vec![0.0f64; n];
    for j in 0..d {
        let xj = x[j];
        for (i, ri) in r.iter_mut().enumerate() {
            *ri += a[(i, j)].to_f64() * xj;
        }
    }
    let mut f = 0.0;
    for i in 0..n {
        r[i] -= b[i].to_f64();
        f += c[i] * r[i].abs().powf(p);
    }
    (f, r)
}

/// The weighted least squares solution with row weights `omega`.
fn weighted_solve<T: Real>(a: MatRef<'_, T>, b: &[T], omega: &[f64]) -> Result<Vec<f64>> {
    let (n, d) = (a.nrows(), a.ncols());
    let s: Vec<f64> = omega.iter().map(|w| w.max(0.0).sqrt()).collect();
    let wa = Mat::<T>::from_fn(n, d, |i, j| a[(i, j)] * T::from_f64(s[i]));
    let wb = Mat::<T>::from_fn(n, 1, |i, _| b[i] * T::from_f64(s[i]));
    let x = TallFactor::new(wa.as_ref())?.solve(wb.as_ref());
    Ok((0..d).map(|j| x[(j, 0)].to_f64()).collect())
}

/// Minimizes `sum_i c_i |a_i x - b_i|^p` for a dense `a` (`n x d`, `n >= d`)
/// until the objective decreases by less than `tol` relative to itself.
pub fn lp_regression<T: Real>(
    a: MatRef<'_, T>,
    b: &[T],
    c: &[f64],
    p: f64,
    tol: f64,
    maxiter: usize,
) -> Result<LpSolution<T>> {
    let (n, d) = (a.nrows(), a.ncols());
    ensure!(
        p >= 1.0 && p.is_finite(),
        "p must be >= 1 and finite, got {p}"
    );
    ensure!(
        b.len() == n && c.len() == n,
        "b and the weights need {n} entries"
    );
    ensure!(
        n >= d && d >= 1,
        "A must have at least as many rows as columns, got ({n}, {d})"
    );
    let mut x = weighted_solve(a, b, c)?;
    let (mut f, mut r) = objective(a, b, c, &x, p);
    let scale = b
        .iter()
        .map(|v| v.to_f64().abs())
        .fold(0.0, f64::max)
        .max(f64::MIN_POSITIVE);
    let floor = 1e-13 * scale;
    let mut eta = (r.iter().map(|v| v.abs()).sum::<f64>() / n as f64).max(floor);
    let mut iterations = 0;
    let mut stalls = 0;
    let mut converged = p == 2.0 || f == 0.0;
    while !converged && iterations < maxiter {
        iterations += 1;
        let omega: Vec<f64> = (0..n)
            .map(|i| c[i] * r[i].abs().max(eta).powf(p - 2.0))
            .collect();
        let target = weighted_solve(a, b, &omega)?;
        // Backtracking on the true objective.
        let mut step = 1.0;
        let mut accepted = None;
        while step > 1e-6 {
            let trial: Vec<f64> = (0..d).map(|j| x[j] + step * (target[j] - x[j])).collect();
            let (ft, rt) = objective(a, b, c, &trial, p);
            if ft <= f {
                accepted = Some((trial, ft, rt));
                break;
            }
            step *= 0.5;
        }
        let smoothing_done = p >= 2.0 || eta <= floor;
        let previous = f;
        if let Some((trial, ft, rt)) = accepted {
            x = trial;
            r = rt;
            f = ft;
        }
        // Converged after five consecutive iterations that gain less than
        // tol (IRLS can stall for an iteration and then move on).
        if smoothing_done && previous - f <= tol * previous.max(f64::MIN_POSITIVE) {
            stalls += 1;
            converged = stalls >= 5 || f == 0.0;
        } else {
            stalls = 0;
        }
        if p < 2.0 {
            eta = (eta * 0.5).max(floor);
        }
    }
    Ok(LpSolution {
        x: x.into_iter().map(T::from_f64).collect(),
        objective: f,
        iterations,
        converged,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn l1_regression_through_a_median() {
        // A = ones: the l1 minimizer is the median of b, the l2 one the mean.
        let a = Mat::<f64>::from_fn(7, 1, |_, _| 1.0);
        let b = [1.0, 2.0, 3.0, 4.0, 100.0, 5.0, 6.0];
        let c = [1.0; 7];
        let r = lp_regression(a.as_ref(), &b, &c, 1.0, 1e-12, 200).unwrap();
        assert!((r.x[0] - 4.0).abs() < 1e-6, "{:?}", r.x);
        let r2 = lp_regression(a.as_ref(), &b, &c, 2.0, 1e-12, 200).unwrap();
        assert!((r2.x[0] - b.iter().sum::<f64>() / 7.0).abs() < 1e-12);
    }
}
