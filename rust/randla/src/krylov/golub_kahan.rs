//! Golub–Kahan bidiagonalization, shared by LSQR and LSMR: `beta_1 u_1 = b - A
//! x0`, `alpha_1 v_1 = A^T u_1`, then `beta u = A v - alpha u` and
//! `alpha v = A^T u - beta v`, column by column on row-major blocks.

use super::vectors::{axpby, axpby_dots, column_norms, scale, view, view_mut};
use super::Operator;
use crate::error::Result;
use crate::Real;

pub struct GolubKahan<T> {
    pub u: Vec<T>,
    pub v: Vec<T>,
    rows: usize,
    cols: usize,
    m: usize,
    av: Vec<T>,
    /// `A^T u` for the current `u` (kept for the fused step).
    atu: Vec<T>,
    /// `A^T A v` (the fused step's product).
    atav: Vec<T>,
    fused: bool,
}

fn reciprocals<T: Real>(norms: &[f64]) -> Vec<T> {
    norms
        .iter()
        .map(|&s| T::from_f64(if s > 0.0 { 1.0 / s } else { 0.0 }))
        .collect()
}

/// `x[:, c] /= norm[c]` (columns of norm 0 become 0).
fn normalize<T: Real>(x: &mut [T], norms: &[f64]) {
    scale(x, &reciprocals::<T>(norms));
}

fn sqrt_all(squares: Vec<f64>) -> Vec<f64> {
    squares.into_iter().map(f64::sqrt).collect()
}

impl<T: Real> GolubKahan<T> {
    /// Starts from `b - A x0`; returns `(beta_1, alpha_1)` per column.
    /// With `fused`, steps get `A^T u` from `A^T A v` where the operator can
    /// compute both products in one pass (see [`LeastSquaresOptions`]).
    ///
    /// [`LeastSquaresOptions`]: super::LeastSquaresOptions
    pub fn start(
        a: &dyn Operator<T>,
        b: &[T],
        x0: Option<&[T]>,
        m: usize,
        fused: bool,
    ) -> Result<(Self, Vec<f64>, Vec<f64>)> {
        let (rows, cols) = a.shape();
        let mut u = b.to_vec();
        let mut av = vec![T::ZERO; rows * m];
        if let Some(x0) = x0 {
            a.apply(view(x0, cols, m), view_mut(&mut av, rows, m))?;
            axpby(&vec![-T::ONE; m], &av, &vec![T::ONE; m], &mut u);
        }
        let beta = column_norms(&u, m);
        normalize(&mut u, &beta);
        let mut v = vec![T::ZERO; cols * m];
        a.apply_transpose(view(&u, rows, m), view_mut(&mut v, cols, m))?;
        let atu = if fused {
            v.clone()
        } else {
            vec![T::ZERO; cols * m]
        };
        let alpha = column_norms(&v, m);
        normalize(&mut v, &alpha);
        let gk = Self {
            u,
            v,
            rows,
            cols,
            m,
            av,
            atu,
            atav: vec![T::ZERO; if fused { cols * m } else { 0 }],
            fused,
        };
        Ok((gk, beta, alpha))
    }

    /// One step from the previous `alpha`; returns the new `(beta, alpha)`.
    pub fn step(&mut self, a: &dyn Operator<T>, alpha: &[f64]) -> Result<(Vec<f64>, Vec<f64>)> {
        let (rows, cols, m) = (self.rows, self.cols, self.m);
        let ones = vec![T::ONE; m];
        let neg_alpha: Vec<T> = alpha.iter().map(|&x| T::from_f64(-x)).collect();
        if self.fused
            && a.apply_normal(
                view(&self.v, cols, m),
                view_mut(&mut self.av, rows, m),
                view_mut(&mut self.atav, cols, m),
            )?
        {
            // u = (A v - alpha u) / beta and A^T u = (A^T A v - alpha A^T u_old) / beta.
            let beta = sqrt_all(axpby_dots(&ones, &self.av, &neg_alpha, &mut self.u));
            normalize(&mut self.u, &beta);
            axpby(&ones, &self.atav, &neg_alpha, &mut self.atu);
            normalize(&mut self.atu, &beta);
            let neg_beta: Vec<T> = beta.iter().map(|&x| T::from_f64(-x)).collect();
            let new_alpha = sqrt_all(axpby_dots(&ones, &self.atu, &neg_beta, &mut self.v));
            normalize(&mut self.v, &new_alpha);
            return Ok((beta, new_alpha));
        }
        // av = A v - alpha u and its column norms, each block finished while
        // in cache; then av becomes the new u.
        let u = &self.u;
        let subtract = |first: usize, yb: &mut [T]| -> Vec<f64> {
            let ub = &u[first * m..first * m + yb.len()];
            let mut sums = vec![0.0f64; m];
            if m == 1 {
                let (na, mut acc) = (neg_alpha[0], 0.0f64);
                for (yv, &uv) in yb.iter_mut().zip(ub) {
                    let t = *yv + na * uv;
                    *yv = t;
                    acc += t.to_f64() * t.to_f64();
                }
                sums[0] = acc;
            } else {
                for (yr, ur) in yb.chunks_exact_mut(m).zip(ub.chunks_exact(m)) {
                    for c in 0..m {
                        let t = yr[c] + neg_alpha[c] * ur[c];
                        yr[c] = t;
                        sums[c] += t.to_f64() * t.to_f64();
                    }
                }
            }
            sums
        };
        let beta = sqrt_all(a.apply_then(&self.v, &mut self.av, m, &subtract)?);
        std::mem::swap(&mut self.u, &mut self.av);
        normalize(&mut self.u, &beta);
        a.apply_transpose(view(&self.u, rows, m), view_mut(&mut self.atu, cols, m))?;
        let neg_beta: Vec<T> = beta.iter().map(|&x| T::from_f64(-x)).collect();
        let new_alpha = sqrt_all(axpby_dots(&ones, &self.atu, &neg_beta, &mut self.v));
        normalize(&mut self.v, &new_alpha);
        Ok((beta, new_alpha))
    }
}
