//! Matrix completion half-sweeps: the Python layer (`randla.completion`)
//! runs the outer loop (callbacks, progress, history); each half-sweep over
//! all rows or all columns runs here in parallel without the GIL.

use numpy::{Element, PyReadonlyArray1, PyReadonlyArray2, PyReadwriteArray2};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use randla::completion::{self, Solver};
use randla::sparse::{Index, SparseRef};

use crate::convert::sparse_ref;
use crate::error::run;

#[allow(clippy::too_many_arguments)]
fn update_typed<I: Index + Element>(
    py: Python<'_>,
    format: &str,
    shape: (usize, usize),
    indptr: &Bound<'_, PyAny>,
    indices: &Bound<'_, PyAny>,
    data: PyReadonlyArray1<'_, f64>,
    fixed: PyReadonlyArray2<'_, f64>,
    mut x: PyReadwriteArray2<'_, f64>,
    reg: f64,
    solver: Solver,
) -> PyResult<f64> {
    let indptr: PyReadonlyArray1<I> = indptr.extract()?;
    let indices: PyReadonlyArray1<I> = indices.extract()?;
    let obs = match sparse_ref(format, shape, &indptr, &indices, &data)? {
        SparseRef::Csr(c) | SparseRef::Csc(c) => c,
    };
    let k = fixed.as_array().ncols();
    let fixed = fixed
        .as_slice()
        .map_err(|_| PyValueError::new_err("the fixed factor must be C-contiguous"))?;
    let x = x
        .as_slice_mut()
        .map_err(|_| PyValueError::new_err("the factor must be C-contiguous"))?;
    run(py, || completion::update(obs, fixed, x, k, reg, solver))
}

/// One half-sweep of alternating least squares over the major lines of a
/// CSR (rows) or CSC (columns) matrix: updates `x` in place, returns the sum
/// of squared residuals on the observed entries.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn completion_update(
    py: Python<'_>,
    format: &str,
    shape: (usize, usize),
    indptr: &Bound<'_, PyAny>,
    indices: &Bound<'_, PyAny>,
    data: PyReadonlyArray1<'_, f64>,
    fixed: PyReadonlyArray2<'_, f64>,
    x: PyReadwriteArray2<'_, f64>,
    reg: f64,
    steps: usize,
) -> PyResult<f64> {
    let solver = if steps == 0 {
        Solver::Exact
    } else {
        Solver::Sketch { steps }
    };
    if indptr.extract::<PyReadonlyArray1<i32>>().is_ok() {
        update_typed::<i32>(
            py, format, shape, indptr, indices, data, fixed, x, reg, solver,
        )
    } else {
        update_typed::<i64>(
            py, format, shape, indptr, indices, data, fixed, x, reg, solver,
        )
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(completion_update, m)?)?;
    Ok(())
}
