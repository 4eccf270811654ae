//! Matrix completion by alternating least squares on the observed entries.
//!
//! One half-sweep fixes one factor (`F`, `n_minor x k`) and solves, for every
//! major line `i` of the observations (a row of the CSR view or a column of
//! the CSC view), `x_i = argmin sum_{j in Omega_i} (M_ij - x_i . f_j)^2 +
//! reg |x_i|^2`. Lines are independent and run in parallel.
//!
//! - [`Solver::Exact`] forms the `k x k` normal equations of the line
//!   (`O(|Omega_i| k^2)`) and solves them by Cholesky.
//! - [`Solver::Sketch`] solves them approximately in `O(|Omega_i| k)`: a few
//!   conjugate-gradient steps warm-started from the previous `x_i`,
//!   preconditioned by the Gram matrix of the *whole* fixed factor. The
//!   line's observed set is a uniform row sample of `F`, so
//!   `F_Omega^T F_Omega ~ (|Omega_i| / n) F^T F` with high probability
//!   (matrix Chernoff, for incoherent `F`), which makes the preconditioned
//!   system well conditioned; the outer iteration tolerates the remaining
//!   error (Gu, Song, Yin & Zhang 2023).
//!
//! Lines without observations get `x_i = 0`.

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatRef, Par};
use rayon::prelude::*;

use crate::ensure;
use crate::error::Result;
use crate::parallel::install;
use crate::sparse::{Compressed, Index};

/// How each line's least-squares problem is solved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Solver {
    /// Cholesky of the line's normal equations.
    Exact,
    /// `steps` preconditioned CG steps from the current value.
    Sketch { steps: usize },
}

/// Solves every line of `obs` against the fixed factor `fixed` (row-major,
/// `obs.minor() x k`), updating `x` (row-major, `obs.major() x k`) in place.
/// Returns the sum of squared residuals on the observed entries after the
/// update.
pub fn update<I: Index>(
    obs: Compressed<'_, f64, I>,
    fixed: &[f64],
    x: &mut [f64],
    k: usize,
    reg: f64,
    solver: Solver,
) -> Result<f64> {
    ensure!(k >= 1, "rank must be >= 1");
    ensure!(
        fixed.len() == obs.minor() * k && x.len() == obs.major() * k,
        "factor sizes do not match the observations"
    );
    ensure!(reg >= 0.0 && reg.is_finite(), "reg must be finite and >= 0");
    // Preconditioner of the sketch solver: Cholesky of F^T F / n (+ a tiny
    // ridge so that a rank-deficient F still factors).
    let chol = match solver {
        Solver::Exact => Vec::new(),
        Solver::Sketch { .. } => {
            let n = obs.minor().max(1) as f64;
            let mut g = gram(fixed, k, obs.minor());
            for v in g.iter_mut() {
                *v /= n;
            }
            let trace: f64 = (0..k).map(|i| g[i * k + i]).sum();
            for i in 0..k {
                g[i * k + i] += 1e-12 * trace.max(f64::MIN_POSITIVE) + reg / n;
            }
            if !cholesky(&mut g, k, 0.0) {
                // A degenerate factor: fall back to the identity preconditioner.
                g.iter_mut().for_each(|v| *v = 0.0);
                for i in 0..k {
                    g[i * k + i] = 1.0;
                }
            }
            g
        }
    };
    let minor = obs.minor() as f64;
    let residuals: Vec<f64> = install(|| {
        x.par_chunks_mut(k)
            .enumerate()
            .map_init(Vec::new, |rows, (i, xi)| {
                let (idx, vals) = obs.line_slices(i);
                if idx.is_empty() {
                    xi.fill(0.0);
                    return 0.0;
                }
                let c = idx.len() as f64 / minor;
                crate::simd::dispatch(
                    #[inline(always)]
                    || solve_line(idx, vals, fixed, xi, rows, reg, solver, &chol, c),
                )
            })
            .collect()
    });
    Ok(residuals.iter().sum())
}

/// Gathers the line's rows of the fixed factor (contiguous, `|Omega_i| x k`),
/// solves for `x_i` and returns the squared residual on the line.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn solve_line<I: Index>(
    idx: &[I],
    vals: &[f64],
    fixed: &[f64],
    xi: &mut [f64],
    rows: &mut Vec<f64>,
    reg: f64,
    solver: Solver,
    chol: &[f64],
    c: f64,
) -> f64 {
    let k = xi.len();
    rows.clear();
    for &j in idx {
        let j = j.to_usize();
        rows.extend_from_slice(&fixed[j * k..(j + 1) * k]);
    }
    match solver {
        // Lines with fewer than 2k observations are far from the sampling
        // regime the preconditioner assumes (their Gram matrix may be
        // singular); solving them exactly costs O(k^3) either way.
        Solver::Sketch { steps } if vals.len() >= 2 * k => {
            solve_cg(rows, vals, xi, reg, chol, c, steps)
        }
        _ => solve_exact(rows, vals, xi, reg),
    }
    let mut ss = 0.0;
    for (f, &m) in rows.chunks_exact(k).zip(vals) {
        let r = m - dot(xi, f);
        ss += r * r;
    }
    ss
}

#[inline(always)]
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut s = 0.0;
    for (x, y) in a.iter().zip(b) {
        s += x * y;
    }
    s
}

/// `F^T F` (`k x k`, row-major) of a row-major `n x k` factor.
fn gram(f: &[f64], k: usize, n: usize) -> Vec<f64> {
    let blocks = crate::parallel::even_blocks(n, 4096);
    let parts: Vec<Vec<f64>> = install(|| {
        blocks
            .into_par_iter()
            .map(|r| {
                let mut g = vec![0.0; k * k];
                for row in f[r.start * k..r.end * k].chunks_exact(k) {
                    for a in 0..k {
                        let ra = row[a];
                        for b in 0..=a {
                            g[a * k + b] += ra * row[b];
                        }
                    }
                }
                g
            })
            .collect()
    });
    let mut g = vec![0.0; k * k];
    for p in parts {
        for (x, y) in g.iter_mut().zip(p) {
            *x += y;
        }
    }
    for a in 0..k {
        for b in 0..a {
            g[b * k + a] = g[a * k + b];
        }
    }
    g
}

/// In-place Cholesky `G = L L^T` (lower triangle of `g`); returns false if a
/// pivot is not above `floor` (a pivot that is positive only by rounding
/// would blow the solution up).
#[inline(always)]
fn cholesky(g: &mut [f64], k: usize, floor: f64) -> bool {
    for j in 0..k {
        let mut d = g[j * k + j];
        for p in 0..j {
            d -= g[j * k + p] * g[j * k + p];
        }
        if d <= floor || !d.is_finite() {
            return false;
        }
        let d = d.sqrt();
        g[j * k + j] = d;
        for i in j + 1..k {
            let mut s = g[i * k + j];
            for p in 0..j {
                s -= g[i * k + p] * g[j * k + p];
            }
            g[i * k + j] = s / d;
        }
    }
    true
}

/// Solves the SPD system `(g + shift I) y = b` by Cholesky, adding a ridge
/// of growing relative size while the factorization fails (singular `g`).
fn solve_spd(g: &[f64], k: usize, shift: f64, b: &[f64], y: &mut [f64]) {
    let trace: f64 = (0..k).map(|i| g[i * k + i]).sum::<f64>() + k as f64 * shift;
    let scale = (trace / k.max(1) as f64).max(f64::MIN_POSITIVE);
    let floor = 64.0 * k as f64 * f64::EPSILON * scale;
    let mut ridge = 0.0;
    loop {
        let mut l = g.to_vec();
        for i in 0..k {
            l[i * k + i] += shift + ridge;
        }
        if cholesky(&mut l, k, floor) || ridge > scale {
            y.copy_from_slice(b);
            cholesky_solve(&l, k, y);
            return;
        }
        ridge = if ridge == 0.0 {
            1e-10 * scale
        } else {
            ridge * 100.0
        };
    }
}

/// Solves `L L^T y = b` in place.
#[inline(always)]
fn cholesky_solve(l: &[f64], k: usize, b: &mut [f64]) {
    for i in 0..k {
        let mut s = b[i];
        for p in 0..i {
            s -= l[i * k + p] * b[p];
        }
        b[i] = s / l[i * k + i];
    }
    for i in (0..k).rev() {
        let mut s = b[i];
        for p in i + 1..k {
            s -= l[p * k + i] * b[p];
        }
        b[i] = s / l[i * k + i];
    }
}

/// The ridge least-squares solution of one line; with fewer observations
/// than `k` (an underdetermined line) the minimum-norm one, through the
/// `|Omega_i| x |Omega_i|` dual system `x = F^T (F F^T + reg I)^{-1} m`.
#[inline(always)]
fn solve_exact(rows: &[f64], vals: &[f64], xi: &mut [f64], reg: f64) {
    let k = xi.len();
    let count = vals.len();
    let f = MatRef::from_row_major_slice(rows, count, k);
    if count < k {
        let mut hm = Mat::<f64>::zeros(count, count);
        matmul(hm.as_mut(), Accum::Replace, f, f.transpose(), 1.0, Par::Seq);
        let h: Vec<f64> = (0..count * count)
            .map(|t| hm[(t / count, t % count)])
            .collect();
        let mut y = vec![0.0; count];
        solve_spd(&h, count, reg, vals, &mut y);
        xi.fill(0.0);
        for (fr, &ya) in rows.chunks_exact(k).zip(&y) {
            for (x, fa) in xi.iter_mut().zip(fr) {
                *x += ya * fa;
            }
        }
        return;
    }
    // G = F^T F and b = F^T m by GEMM on the gathered rows (F row-major).
    let mut gm = Mat::<f64>::zeros(k, k);
    matmul(gm.as_mut(), Accum::Replace, f.transpose(), f, 1.0, Par::Seq);
    let g: Vec<f64> = (0..k * k).map(|t| gm[(t / k, t % k)]).collect();
    let mut b = vec![0.0; k];
    for (fr, &m) in rows.chunks_exact(k).zip(vals) {
        for (ba, fa) in b.iter_mut().zip(fr) {
            *ba += m * fa;
        }
    }
    solve_spd(&g, k, reg, &b, xi);
}

#[inline(always)]
fn solve_cg(
    rows: &[f64],
    vals: &[f64],
    xi: &mut [f64],
    reg: f64,
    chol: &[f64],
    c: f64,
    steps: usize,
) {
    let k = xi.len();
    // Normal-equations residual r = A^T (b - A x) - reg x, A = F_Omega.
    let apply_normal = |p: &[f64], out: &mut [f64]| {
        out.iter_mut().for_each(|o| *o = 0.0);
        for f in rows.chunks_exact(k) {
            let s = dot(f, p);
            for (o, fa) in out.iter_mut().zip(f) {
                *o += s * fa;
            }
        }
        for (o, pa) in out.iter_mut().zip(p) {
            *o += reg * pa;
        }
    };
    let mut r = vec![0.0; k];
    for (f, &m) in rows.chunks_exact(k).zip(vals) {
        let s = m - dot(f, xi);
        for (ra, fa) in r.iter_mut().zip(f) {
            *ra += s * fa;
        }
    }
    for (ra, xa) in r.iter_mut().zip(xi.iter()) {
        *ra -= reg * xa;
    }
    let precondition = |v: &mut [f64]| {
        cholesky_solve(chol, k, v);
        v.iter_mut().for_each(|x| *x /= c);
    };
    let mut z = r.clone();
    precondition(&mut z);
    let mut p = z.clone();
    let mut rz = dot(&r, &z);
    let mut q = vec![0.0; k];
    for _ in 0..steps {
        if rz <= 0.0 || !rz.is_finite() {
            break;
        }
        apply_normal(&p, &mut q);
        let pq = dot(&p, &q);
        if pq <= 0.0 || !pq.is_finite() {
            break;
        }
        let alpha = rz / pq;
        for a in 0..k {
            xi[a] += alpha * p[a];
            r[a] -= alpha * q[a];
        }
        z.copy_from_slice(&r);
        precondition(&mut z);
        let rz_new = dot(&r, &z);
        let beta = rz_new / rz;
        rz = rz_new;
        for a in 0..k {
            p[a] = z[a] + beta * p[a];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testing::uniform as lcg;

    /// Full rank-2 observations of a 30 x 20 matrix: one exact half-sweep
    /// from the true V recovers U; CG steps converge to the same.
    #[test]
    fn half_sweeps_recover_the_factor() {
        let (m, n, k) = (30, 20, 2);
        let mut seed = 9;
        let u: Vec<f64> = (0..m * k).map(|_| lcg(&mut seed)).collect();
        let v: Vec<f64> = (0..n * k).map(|_| lcg(&mut seed)).collect();
        // Observe about half of the entries, CSR.
        let (mut indptr, mut indices, mut data) = (vec![0usize], Vec::new(), Vec::new());
        for i in 0..m {
            for j in 0..n {
                if lcg(&mut seed) < 0.1 {
                    indices.push(j);
                    data.push(dot(&u[i * k..(i + 1) * k], &v[j * k..(j + 1) * k]));
                }
            }
            indptr.push(indices.len());
        }
        let obs = Compressed::new(m, n, &indptr, &indices, &data).unwrap();
        let mut x = vec![0.0; m * k];
        let ss = update(obs, &v, &mut x, k, 0.0, Solver::Exact).unwrap();
        assert!(ss < 1e-20);
        for (a, b) in x.iter().zip(&u) {
            assert!((a - b).abs() < 1e-8);
        }
        let mut y = vec![0.0; m * k];
        for _ in 0..10 {
            update(obs, &v, &mut y, k, 0.0, Solver::Sketch { steps: 2 }).unwrap();
        }
        for (a, b) in y.iter().zip(&u) {
            assert!((a - b).abs() < 1e-8);
        }
    }
}
