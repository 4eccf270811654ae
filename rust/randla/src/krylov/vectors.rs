//! Kernels on block vectors (row-major `n x m` arrays): dot products, fused
//! updates. Rows go in fixed blocks and partial sums are added in block order,
//! so results do not depend on the thread count.

use rayon::prelude::*;

use crate::Real;

/// Rows per block.
const BLOCK: usize = 8192;

fn ordered_sum(partials: Vec<Vec<f64>>, m: usize) -> Vec<f64> {
    let mut total = vec![0.0; m];
    for p in partials {
        for (t, v) in total.iter_mut().zip(p) {
            *t += v;
        }
    }
    total
}

/// Per-block column dot products, accumulated in f64 (eight lanes when m = 1).
#[inline(always)]
fn block_dots<T: Real>(x: &[T], y: &[T], m: usize) -> Vec<f64> {
    if m == 1 {
        let mut lanes = [0.0f64; 8];
        let (xc, yc) = (x.chunks_exact(8), y.chunks_exact(8));
        let (xr, yr) = (xc.remainder(), yc.remainder());
        for (a, b) in xc.zip(yc) {
            for l in 0..8 {
                lanes[l] += a[l].to_f64() * b[l].to_f64();
            }
        }
        let mut s = lanes.iter().sum::<f64>();
        for (a, b) in xr.iter().zip(yr) {
            s += a.to_f64() * b.to_f64();
        }
        return vec![s];
    }
    let mut s = vec![0.0; m];
    for (a, b) in x.chunks_exact(m).zip(y.chunks_exact(m)) {
        for c in 0..m {
            s[c] += a[c].to_f64() * b[c].to_f64();
        }
    }
    s
}

/// `x[:, c] . y[:, c]` for every column.
pub fn column_dots<T: Real>(x: &[T], y: &[T], m: usize) -> Vec<f64> {
    let partials = crate::parallel::install(|| {
        x.par_chunks(BLOCK * m)
            .zip(y.par_chunks(BLOCK * m))
            .map(|(a, b)| crate::simd::dispatch(|| block_dots(a, b, m)))
            .collect()
    });
    ordered_sum(partials, m)
}

/// `||x[:, c]||` for every column.
pub fn column_norms<T: Real>(x: &[T], m: usize) -> Vec<f64> {
    column_dots(x, x, m).into_iter().map(f64::sqrt).collect()
}

/// The fused CG step: `x += alpha p`, `r -= alpha q` (per-column alpha), and
/// returns `||r[:, c]||^2`: one pass over the four vectors.
pub fn cg_step<T: Real>(x: &mut [T], r: &mut [T], p: &[T], q: &[T], alpha: &[T]) -> Vec<f64> {
    let m = alpha.len();
    let partials = crate::parallel::install(|| {
        x.par_chunks_mut(BLOCK * m)
            .zip(r.par_chunks_mut(BLOCK * m))
            .zip(p.par_chunks(BLOCK * m).zip(q.par_chunks(BLOCK * m)))
            .map(|((xb, rb), (pb, qb))| {
                crate::simd::dispatch(|| {
                    if m == 1 {
                        let a = alpha[0];
                        for ((xv, rv), (&pv, &qv)) in
                            xb.iter_mut().zip(rb.iter_mut()).zip(pb.iter().zip(qb))
                        {
                            *xv += a * pv;
                            *rv -= a * qv;
                        }
                    } else {
                        for ((xr, rr), (pr, qr)) in xb
                            .chunks_exact_mut(m)
                            .zip(rb.chunks_exact_mut(m))
                            .zip(pb.chunks_exact(m).zip(qb.chunks_exact(m)))
                        {
                            for c in 0..m {
                                xr[c] += alpha[c] * pr[c];
                                rr[c] -= alpha[c] * qr[c];
                            }
                        }
                    }
                    block_dots(rb, rb, m)
                })
            })
            .collect()
    });
    ordered_sum(partials, m)
}

/// `p = z + beta p` (per-column beta).
pub fn update_direction<T: Real>(p: &mut [T], z: &[T], beta: &[T]) {
    let m = beta.len();
    crate::parallel::install(|| {
        p.par_chunks_mut(BLOCK * m)
            .zip(z.par_chunks(BLOCK * m))
            .for_each(|(pb, zb)| {
                crate::simd::dispatch(|| {
                    for (pr, zr) in pb.chunks_exact_mut(m).zip(zb.chunks_exact(m)) {
                        for c in 0..m {
                            pr[c] = zr[c] + beta[c] * pr[c];
                        }
                    }
                })
            })
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_match_plain_loops() {
        let (n, m) = (20_001, 3);
        let x: Vec<f64> = (0..n * m).map(|i| ((i * 7) % 13) as f64 - 6.0).collect();
        let y: Vec<f64> = (0..n * m).map(|i| ((i * 5) % 11) as f64 - 5.0).collect();
        let dots = column_dots(&x, &y, m);
        for c in 0..m {
            let expect: f64 = (0..n).map(|i| x[i * m + c] * y[i * m + c]).sum();
            assert_eq!(dots[c], expect, "integers sum exactly");
        }
        let (mut xs, mut rs) = (x.clone(), y.clone());
        let alpha = [0.5, -1.0, 2.0];
        let norms = cg_step(&mut xs, &mut rs, &y, &x, &alpha);
        for c in 0..m {
            let mut expect = 0.0;
            for i in 0..n {
                let k = i * m + c;
                assert_eq!(xs[k], x[k] + alpha[c] * y[k]);
                let r = y[k] - alpha[c] * x[k];
                assert_eq!(rs[k], r);
                expect += r * r;
            }
            assert_eq!(norms[c], expect);
        }
    }
}
