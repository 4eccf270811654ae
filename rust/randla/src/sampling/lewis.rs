//! l_p Lewis weights: the `w > 0` with `w_i = tau_i(W^{1/2 - 1/p} A)` (`tau`
//! the leverage scores), which sum to `rank(A)`; `p = 2` gives the leverage
//! scores. Cohen & Peng (2015) iterate `w_i <- (a_i^T (A^T W^{1-2/p} A)^+
//! a_i)^{p/2}`, a contraction for `p < 4` with Jacobian of spectral radius at
//! most `|p/2 - 1|`. We take the step in log space with length
//! `eta = min(1, 2/p)`: the damped map contracts by at most `max(1 - p/2, 1 -
//! 2/p) < 1` for every `p >= 1`, so the same loop also converges for `p >= 4`,
//! where the plain iteration can oscillate. Anderson mixing of the last few
//! steps (restarted whenever the residual grows) cuts the number of leverage
//! computations several times: for `p < 2` the Jacobian's eigenvalues lie in
//! `[0, 1 - p/2]`, where a fixed-point iteration alone only converges linearly.

use rayon::prelude::*;

use crate::ensure;
use crate::error::Result;

/// Differences kept by the Anderson acceleration.
const ANDERSON_DEPTH: usize = 4;

/// Anderson acceleration (type II, Walker & Ni 2011) of the fixed-point map
/// `x -> g(x)` in log space, `x = ln w`: with `f = g(x) - x` and the last
/// few differences `dF`, `dG` of `f` and `g`, the next iterate is
/// `g(x) - dG gamma` for the `gamma` minimizing `||f - dF gamma||`. Zero
/// weights (zero rows of `A`) stay zero and take no part. Sums run over
/// fixed blocks in order: the result does not depend on the thread count.
struct Anderson {
    depth: usize,
    last: Option<(Vec<f64>, Vec<f64>)>,
    df: std::collections::VecDeque<Vec<f64>>,
    dg: std::collections::VecDeque<Vec<f64>>,
}

impl Anderson {
    fn new(depth: usize) -> Self {
        Self {
            depth,
            last: None,
            df: Default::default(),
            dg: Default::default(),
        }
    }

    /// The accelerated iterate from `w` and its plain step `gw`; `None` when
    /// there is no history yet or the small least-squares problem is singular.
    fn step(&mut self, w: &[f64], gw: &[f64]) -> Option<Vec<f64>> {
        let (g, f): (Vec<f64>, Vec<f64>) = crate::parallel::install(|| {
            w.par_iter()
                .zip(gw)
                .with_min_len(4096)
                .map(|(&x, &y)| {
                    if x > 0.0 && y > 0.0 {
                        let gy = y.ln();
                        (gy, gy - x.ln())
                    } else {
                        (0.0, 0.0)
                    }
                })
                .unzip()
        });
        if let Some((f0, g0)) = self.last.take() {
            self.df
                .push_back(f.iter().zip(&f0).map(|(a, b)| a - b).collect());
            self.dg
                .push_back(g.iter().zip(&g0).map(|(a, b)| a - b).collect());
            if self.df.len() > self.depth {
                self.df.pop_front();
                self.dg.pop_front();
            }
        }
        let k = self.df.len();
        let gamma = if k == 0 {
            None
        } else {
            // Normal equations of min ||f - dF gamma|| (k <= depth columns),
            // with a relative ridge against near-dependent differences.
            let mut gram = faer::Mat::<f64>::zeros(k, k);
            let mut rhs = faer::Mat::<f64>::zeros(k, 1);
            for a in 0..k {
                for b in 0..=a {
                    let v = dot(&self.df[a], &self.df[b]);
                    gram[(a, b)] = v;
                    gram[(b, a)] = v;
                }
                rhs[(a, 0)] = dot(&self.df[a], &f);
            }
            let ridge = 1e-12 * (0..k).map(|a| gram[(a, a)]).sum::<f64>();
            for a in 0..k {
                gram[(a, a)] += ridge;
            }
            faer::linalg::solvers::Llt::new(gram.as_ref(), faer::Side::Lower)
                .ok()
                .map(|llt| {
                    use faer::linalg::solvers::Solve;
                    let sol = llt.solve(rhs.as_ref());
                    (0..k).map(|a| sol[(a, 0)]).collect::<Vec<f64>>()
                })
                .filter(|gamma| gamma.iter().all(|v| v.is_finite()))
        };
        let next = gamma.map(|gamma| {
            let dg = &self.dg;
            crate::parallel::install(|| {
                g.par_iter()
                    .zip(gw)
                    .enumerate()
                    .with_min_len(4096)
                    .map(|(i, (&gi, &y))| {
                        if y > 0.0 && w[i] > 0.0 {
                            let mut x = gi;
                            for (c, d) in gamma.iter().zip(dg) {
                                x -= c * d[i];
                            }
                            x.exp()
                        } else {
                            y
                        }
                    })
                    .collect::<Vec<f64>>()
            })
        });
        self.last = Some((f, g));
        next.filter(|next| next.iter().all(|v| v.is_finite()))
    }
}

/// `x . y` over the Krylov kernels' fixed blocks, added in block order.
fn dot(x: &[f64], y: &[f64]) -> f64 {
    crate::parallel::install(|| crate::krylov::vectors::column_dots(x, y, 1))[0]
}

/// `x^e` for `x > 0`, without `powf` for the exponents the common `p` give.
#[inline]
fn power(x: f64, e: f64) -> f64 {
    if e == 0.0 {
        1.0
    } else if e == 1.0 {
        x
    } else if e == 0.5 {
        x.sqrt()
    } else if e == -0.5 {
        1.0 / x.sqrt()
    } else {
        x.powf(e)
    }
}

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
    // w <- w^{1 - eta} T(w)^eta with T(w)_i = (w_i^{2/p - 1} tau_i)^{p/2}, that
    // is w_i <- w_i^{c_old} tau_i^{c_tau}:
    let (c_old, c_tau) = (1.0 - eta * p / 2.0, eta * p / 2.0);
    let exponent = 0.5 - 1.0 / p;
    // Start from the leverage scores: the answer for p = 2.
    let mut w = leverage(&vec![1.0; n])?;
    let floor = f64::MIN_POSITIVE.sqrt();
    let mut change = f64::INFINITY;
    let mut iterations = 0;
    let mut anderson = Anderson::new(ANDERSON_DEPTH);
    while iterations < maxiter && change > tol {
        iterations += 1;
        let scale: Vec<f64> = crate::parallel::install(|| {
            w.par_iter()
                .with_min_len(4096)
                .map(|&v| power(v.max(floor), exponent))
                .collect()
        });
        let tau = leverage(&scale)?;
        // The plain step G(w) and the largest relative change it makes.
        let (step, step_change) = crate::parallel::install(|| {
            w.par_iter()
                .zip(&tau)
                .with_min_len(4096)
                .map(|(&wi, &ti)| {
                    let old = wi.max(floor);
                    let new = if ti > 0.0 {
                        if c_old == 0.5 && c_tau == 0.5 {
                            (old * ti).sqrt() // p = 1
                        } else {
                            power(old, c_old) * power(ti, c_tau)
                        }
                    } else {
                        0.0
                    };
                    (new, (new - wi).abs() / wi.abs().max(floor))
                })
                .unzip::<_, _, Vec<f64>, Vec<f64>>()
        });
        let step_change = step_change.into_iter().fold(0.0, f64::max);
        let previous = change;
        change = if p == 2.0 { 0.0 } else { step_change };
        if change <= tol || iterations == maxiter {
            w = step;
            break;
        }
        // Anderson acceleration of the map in log space while the residual
        // keeps shrinking; a growing residual restarts from the plain step.
        w = if change < 2.0 * previous {
            anderson.step(&w, &step).unwrap_or(step)
        } else {
            anderson = Anderson::new(ANDERSON_DEPTH);
            step
        };
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
