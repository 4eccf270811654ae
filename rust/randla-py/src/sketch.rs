//! `SketchCore`: a sketching operator of the core, with its products.

use numpy::{Element, PyReadonlyArray1, PyReadonlyArray2, PyReadwriteArray2};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use randla::sketch::{Sketch, SketchOperator, SparseKind};
use randla::sparse::Index;
use randla::Real;

use crate::convert::{mat_mut, mat_ref, sparse_ref};
use crate::error::{run, to_py};

#[pyclass(frozen, module = "randla._core")]
pub struct SketchCore {
    op: SketchOperator,
}

/// Calls `$f::<T>` with T the dtype of `out` (float64 or float32).
macro_rules! by_dtype {
    ($out:expr, $f:ident ( $($arg:expr),* )) => {{
        if $out.extract::<PyReadwriteArray2<f64>>().is_ok() {
            $f::<f64>($($arg),*)
        } else if $out.extract::<PyReadwriteArray2<f32>>().is_ok() {
            $f::<f32>($($arg),*)
        } else {
            Err(PyTypeError::new_err("arrays must be writable float32 or float64 matrices of one dtype"))
        }
    }};
}

fn apply<T: Real + Element>(
    py: Python<'_>,
    op: &SketchOperator,
    a: &Bound<'_, PyAny>,
    out: &Bound<'_, PyAny>,
) -> PyResult<()> {
    let a: PyReadonlyArray2<'_, T> = a.extract()?;
    let mut out: PyReadwriteArray2<'_, T> = out.extract()?;
    let (a, out) = (mat_ref(&a), mat_mut(&mut out));
    run(py, || op.try_apply(a, out))
}

fn apply_transpose<T: Real + Element>(
    py: Python<'_>,
    op: &SketchOperator,
    b: &Bound<'_, PyAny>,
    out: &Bound<'_, PyAny>,
) -> PyResult<()> {
    let b: PyReadonlyArray2<'_, T> = b.extract()?;
    let mut out: PyReadwriteArray2<'_, T> = out.extract()?;
    let (b, out) = (mat_ref(&b), mat_mut(&mut out));
    run(py, || op.try_apply_transpose(b, out))
}

fn to_dense<T: Real + Element>(
    py: Python<'_>,
    op: &SketchOperator,
    out: &Bound<'_, PyAny>,
) -> PyResult<()> {
    let mut out: PyReadwriteArray2<'_, T> = out.extract()?;
    let out = mat_mut(&mut out);
    run(py, || op.try_to_dense(out))
}

#[allow(clippy::too_many_arguments)]
fn apply_sparse_indexed<T: Real + Element, I: Index + Element>(
    py: Python<'_>,
    op: &SketchOperator,
    format: &str,
    shape: (usize, usize),
    indptr: &Bound<'_, PyAny>,
    indices: &Bound<'_, PyAny>,
    data: &Bound<'_, PyAny>,
    out: &Bound<'_, PyAny>,
) -> PyResult<()> {
    let indptr: PyReadonlyArray1<'_, I> = indptr.extract()?;
    let indices: PyReadonlyArray1<'_, I> = indices.extract()?;
    let data: PyReadonlyArray1<'_, T> = data.extract()?;
    let mut out: PyReadwriteArray2<'_, T> = out.extract()?;
    let a = sparse_ref(format, shape, &indptr, &indices, &data)?;
    let out = mat_mut(&mut out);
    run(py, || op.try_apply_sparse(a, out))
}

#[allow(clippy::too_many_arguments)]
fn apply_sparse<T: Real + Element>(
    py: Python<'_>,
    op: &SketchOperator,
    format: &str,
    shape: (usize, usize),
    indptr: &Bound<'_, PyAny>,
    indices: &Bound<'_, PyAny>,
    data: &Bound<'_, PyAny>,
    out: &Bound<'_, PyAny>,
) -> PyResult<()> {
    if indptr.extract::<PyReadonlyArray1<'_, i32>>().is_ok() {
        apply_sparse_indexed::<T, i32>(py, op, format, shape, indptr, indices, data, out)
    } else {
        apply_sparse_indexed::<T, i64>(py, op, format, shape, indptr, indices, data, out)
    }
}

#[pymethods]
impl SketchCore {
    #[new]
    #[pyo3(signature = (kind, k, n, seed, *, nnz_per_col=8, density=1.0, p=None, replace=true))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        kind: &str,
        k: usize,
        n: usize,
        seed: u64,
        nnz_per_col: usize,
        density: f64,
        p: Option<PyReadonlyArray1<'_, f64>>,
        replace: bool,
    ) -> PyResult<Self> {
        let sparse = |kind| SketchOperator::sparse(kind, k, n, seed);
        let op = match kind {
            "gaussian" => SketchOperator::gaussian(k, n, seed),
            "rademacher" => SketchOperator::rademacher(k, n, seed),
            "srht" => SketchOperator::srht(k, n, seed),
            "countsketch" => sparse(SparseKind::CountSketch),
            "sparse_sign" => sparse(SparseKind::SparseSign { nnz_per_col }),
            "sparse_rp" => sparse(SparseKind::VerySparse { density }),
            "row_sampling" => {
                let probabilities = match &p {
                    Some(p) => Some(crate::convert::slice(p, "p")?.to_vec()),
                    None => None,
                };
                sparse(SparseKind::RowSampling {
                    probabilities,
                    replace,
                })
            }
            other => {
                return Err(pyo3::exceptions::PyValueError::new_err(format!(
                    "unknown sketch kind {other:?}"
                )))
            }
        };
        Ok(Self {
            op: op.map_err(|e| to_py(py, e))?,
        })
    }

    #[getter]
    fn kind(&self) -> &'static str {
        self.op.kind()
    }

    #[getter]
    fn shape(&self) -> (usize, usize) {
        self.op.shape()
    }

    /// out = S @ a
    fn apply(&self, py: Python<'_>, a: &Bound<'_, PyAny>, out: &Bound<'_, PyAny>) -> PyResult<()> {
        by_dtype!(out, apply(py, &self.op, a, out))
    }

    /// out = S.T @ b
    fn apply_transpose(
        &self,
        py: Python<'_>,
        b: &Bound<'_, PyAny>,
        out: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        by_dtype!(out, apply_transpose(py, &self.op, b, out))
    }

    /// out = S @ a for a sparse a given by its compressed arrays.
    #[allow(clippy::too_many_arguments)]
    fn apply_sparse(
        &self,
        py: Python<'_>,
        format: &str,
        shape: (usize, usize),
        indptr: &Bound<'_, PyAny>,
        indices: &Bound<'_, PyAny>,
        data: &Bound<'_, PyAny>,
        out: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        by_dtype!(
            out,
            apply_sparse(py, &self.op, format, shape, indptr, indices, data, out)
        )
    }

    /// out = S
    fn to_dense(&self, py: Python<'_>, out: &Bound<'_, PyAny>) -> PyResult<()> {
        by_dtype!(out, to_dense(py, &self.op, out))
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<SketchCore>()
}
