//! The reproducibility contract of the public core API: the same key gives the
//! same operator and the same products, bit for bit, on any thread count.

use faer::Mat;
use randla::rng::Stream;
use randla::sketch::{SketchOperator, SparseKind};

fn operators() -> Vec<SketchOperator> {
    let (k, n, seed) = (300, 40_000, 77);
    vec![
        SketchOperator::gaussian(k, n, seed).unwrap(),
        SketchOperator::rademacher(k, n, seed).unwrap(),
        SketchOperator::srht(k, n, seed).unwrap(),
        SketchOperator::sparse(SparseKind::CountSketch, k, n, seed).unwrap(),
        SketchOperator::sparse(SparseKind::SparseSign { nnz_per_col: 4 }, k, n, seed).unwrap(),
        SketchOperator::sparse(SparseKind::VerySparse { density: 0.01 }, k, n, seed).unwrap(),
        SketchOperator::sparse(
            SparseKind::RowSampling {
                probabilities: None,
                replace: true,
            },
            k,
            n,
            seed,
        )
        .unwrap(),
    ]
}

#[test]
fn products_are_bitwise_identical_on_one_and_three_threads() {
    let st = Stream::new(5, 9);
    let a = Mat::from_fn(40_000, 7, |i, j| st.normal_at((i * 7 + j) as u64));
    // Row-major input exercises the gather/streaming paths, column-major the others.
    let a_rows = a.transpose().to_owned();
    for op in operators() {
        let run = |threads: usize| {
            randla::parallel::set_num_threads(threads).unwrap();
            let mut out = Mat::<f64>::zeros(300, 7);
            op.try_apply(a.as_ref(), out.as_mut()).unwrap();
            let mut out_rows = Mat::<f64>::zeros(300, 7);
            op.try_apply(a_rows.as_ref().transpose(), out_rows.as_mut())
                .unwrap();
            let mut dense = Mat::<f64>::zeros(300, 40_000);
            op.try_to_dense(dense.as_mut()).unwrap();
            (out, out_rows, dense)
        };
        let one = run(1);
        let three = run(3);
        assert!(one == three, "{} differs across thread counts", op.kind());
        let reference = &one.2 * &a;
        assert!(
            (&one.0 - &reference).norm_max() < 1e-10 * reference.norm_max(),
            "{}",
            op.kind()
        );
        assert!(
            (&one.1 - &reference).norm_max() < 1e-10 * reference.norm_max(),
            "{}",
            op.kind()
        );
    }
}

#[test]
fn shape_errors_are_reported_not_panicked() {
    let op = SketchOperator::gaussian(10, 100, 1).unwrap();
    let a = Mat::<f64>::zeros(99, 3);
    let mut out = Mat::<f64>::zeros(10, 3);
    assert!(op.try_apply(a.as_ref(), out.as_mut()).is_err());
    let mut wrong = Mat::<f64>::zeros(11, 3);
    assert!(op
        .try_apply(Mat::<f64>::zeros(100, 3).as_ref(), wrong.as_mut())
        .is_err());
    assert!(SketchOperator::srht(200, 100, 1).is_err());
    assert!(SketchOperator::gaussian(0, 100, 1).is_err());
}
