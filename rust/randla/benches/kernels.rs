//! Micro-benchmarks of the hot kernels: `cargo bench -p randla [-- FILTER]`.
//! Plain timings (best of a few runs), so no benchmark framework is needed.

use std::time::Instant;

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, Par};
use randla::rng::Stream;
use randla::sketch::{Sketch, SketchOperator, SparseKind, SparseSketch};

fn best_of<R>(runs: usize, mut f: impl FnMut() -> R) -> f64 {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(f());
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn report(name: &str, seconds: f64, what: &str) {
    println!("{name:<40} {:>10.4} s   {what}", seconds);
}

fn main() {
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let wanted = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    let (n, d, k) = (200_000usize, 200usize, 800usize);
    // C-order input, as numpy users hold it: the transpose of a column-major d x n matrix.
    let a_storage = Mat::<f64>::from_fn(d, n, |j, i| ((i * 31 + j * 17) % 101) as f64 - 50.0);
    let a = a_storage.transpose();
    let threads = rayon::current_num_threads();

    if wanted("normal") {
        let s = Stream::new(1, 0);
        let mut buf = vec![0.0; 1 << 20];
        let t = best_of(5, || s.bench_blocks(1 << 19));
        report(
            "philox blocks (1 thread)",
            t,
            &format!("{:.1} M blocks/s", 0.524288 / t),
        );
        let t = best_of(5, || s.fill_normal(3, &mut buf));
        report(
            "fill_normal (1 thread)",
            t,
            &format!("{:.1} M normals/s", 1.048576 / t),
        );
    }
    if wanted("spmv") {
        // 2-D Poisson 200 x 200 (n = 40000, 5-point), int32 indices as scipy stores them.
        let g = 200usize;
        let (mut indptr, mut idx, mut val) = (vec![0i32], vec![], vec![]);
        for i in 0..g {
            for j in 0..g {
                let mut push = |r: usize, c: usize, v: f64| {
                    idx.push((r * g + c) as i32);
                    val.push(v);
                };
                if i > 0 {
                    push(i - 1, j, -1.0);
                }
                if j > 0 {
                    push(i, j - 1, -1.0);
                }
                push(i, j, 4.0);
                if j + 1 < g {
                    push(i, j + 1, -1.0);
                }
                if i + 1 < g {
                    push(i + 1, j, -1.0);
                }
                indptr.push(idx.len() as i32);
            }
        }
        let a = randla::sparse::Compressed::new(g * g, g * g, &indptr, &idx, &val).unwrap();
        let x = vec![1.0f64; g * g];
        let mut y = vec![0.0f64; g * g];
        let t = best_of(5, || {
            for _ in 0..100 {
                randla::krylov::vectors::sparse_times(a, &x, &mut y, 1, true);
            }
        });
        report(
            "spmv+dot Poisson 200x200 (x100)",
            t,
            &format!("{:.3} ms each", t * 10.0),
        );
    }
    if wanted("spmv") {
        // Random 200000 x 20000 with 1e6 nonzeros (W19's shape), CSR with int32 indices.
        let (rows, cols, per_row) = (200_000usize, 20_000usize, 5usize);
        let mut state = 12345u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as usize
        };
        let (mut indptr, mut idx, mut val) = (vec![0i32], vec![], vec![]);
        for _ in 0..rows {
            for _ in 0..per_row {
                idx.push((next() % cols) as i32);
                val.push(1.0f64);
            }
            indptr.push(idx.len() as i32);
        }
        let a = randla::sparse::Compressed::new(rows, cols, &indptr, &idx, &val).unwrap();
        let x = vec![1.0f64; cols];
        let xt = vec![1.0f64; rows];
        let mut y = vec![0.0f64; rows];
        let mut yt = vec![0.0f64; cols];
        let t = best_of(10, || {
            randla::krylov::vectors::sparse_times(a, &x, &mut y, 1, false)
        });
        report("spmv random 200000x20000 nnz 1e6", t, "A x");
        let t = best_of(10, || {
            randla::krylov::vectors::sparse_transpose_times(a, &xt, &mut yt, 1)
        });
        report("spmv^T random 200000x20000 nnz 1e6", t, "A^T x (scatter)");
        let other = a.to_other_major();
        let t = best_of(3, || a.to_other_major());
        report("to_other_major random", t, "CSR -> CSC");
        let t = best_of(10, || {
            randla::krylov::vectors::sparse_times(other.view(), &xt, &mut yt, 1, false)
        });
        report("spmv^T via CSC copy", t, "A^T x (gather)");
    }
    if wanted("lewis") {
        use randla::sampling::leverage::Preconditioned;
        let (n, d) = (100_000usize, 50usize);
        let a = Mat::<f64>::from_fn(n, d, |i, j| {
            (((i * 7919 + j * 104_729) % 1009) as f64) / 1009.0 - 0.5
        });
        let t = best_of(3, || Preconditioned::new(a.as_ref()).is_some());
        report(
            "leverage preconditioner 100000x50",
            t,
            "sketch + QR + B = A R^-1",
        );
        let pre = Preconditioned::new(a.as_ref()).unwrap();
        let scale: Vec<f64> = (0..n).map(|i| 1.0 + (i % 7) as f64 / 7.0).collect();
        let t = best_of(5, || pre.scores(Some(&scale)).is_some());
        report("scaled leverage scores 100000x50", t, "one Lewis iteration");
    }
    if wanted("generate") {
        use rayon::prelude::*;
        let s = Stream::new(1, 0);
        let t = best_of(3, || {
            (0..k).into_par_iter().for_each(|i| {
                let mut row = vec![0.0f64; 256];
                for j0 in (0..n).step_by(256) {
                    let w = 256.min(n - j0);
                    s.fill_normal((i * n + j0) as u64, &mut row[..w]);
                }
            })
        });
        report(
            "generate 800x200000 normals (all threads)",
            t,
            &format!("{:.0} M normals/s", (k * n) as f64 / t / 1e6),
        );
    }
    if wanted("gemm") {
        let s = Mat::<f64>::from_fn(k, n, |i, j| ((i + j) % 7) as f64);
        let mut out = Mat::<f64>::zeros(k, d);
        let t = best_of(2, || {
            matmul(
                out.as_mut(),
                Accum::Replace,
                s.as_ref(),
                a,
                1.0,
                Par::rayon(threads),
            )
        });
        report(
            "faer GEMM 800x200000 @ 200000x200",
            t,
            &format!("{:.1} GFLOP/s", 2.0 * (k * n * d) as f64 / t / 1e9),
        );
    }
    if wanted("structure") {
        for (name, kind) in [
            ("countsketch", SparseKind::CountSketch),
            ("sparse_sign", SparseKind::SparseSign { nnz_per_col: 8 }),
        ] {
            let t = best_of(3, || {
                SparseSketch::new(kind.clone(), k, n, 1).unwrap().nnz()
            });
            report(
                &format!("{name} structure (n=200000)"),
                t,
                "by-column entries",
            );
        }
    }
    let ops: Vec<(&str, SketchOperator)> = vec![
        ("gaussian", SketchOperator::gaussian(k, n, 1).unwrap()),
        ("rademacher", SketchOperator::rademacher(k, n, 1).unwrap()),
        ("srht", SketchOperator::srht(k, n, 1).unwrap()),
        (
            "countsketch",
            SketchOperator::sparse(SparseKind::CountSketch, k, n, 1).unwrap(),
        ),
        (
            "sparse_sign",
            SketchOperator::sparse(SparseKind::SparseSign { nnz_per_col: 8 }, k, n, 1).unwrap(),
        ),
    ];
    for (name, op) in &ops {
        if !wanted(name) {
            continue;
        }
        let mut out = Mat::<f64>::zeros(k, d);
        let first = best_of(1, || op.apply(a, out.as_mut()));
        let t = best_of(3, || op.apply(a, out.as_mut()));
        report(
            &format!("{name} S @ A (200000x200, k=800)"),
            t,
            &format!("first call {first:.4} s"),
        );
    }
}
