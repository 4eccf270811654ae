//! Randomized range finder, SVD and Nystrom: the Python layer draws the test
//! matrix from a sketching operator; the core does every product and
//! factorization without the GIL.

use numpy::{Element, IntoPyArray, PyReadonlyArray2};
use pyo3::prelude::*;
use randla::krylov::Operator;
use randla::lowrank::{self, Centered};
use randla::Real;

use crate::convert::{by_float_dtype, mat_ref, to_numpy};

const TEST_MATRIX_DTYPE: &str = "the test matrix must be float32 or float64";
use crate::error::run;
use crate::krylov::Holder;

/// Runs `f` on the operator of `a` (centered when asked), without the GIL; a
/// Python exception raised by a callable operator wins over the core's error.
fn with_operator<'py, T: Real + Element, R: Send>(
    py: Python<'py>,
    a: &Bound<'py, PyAny>,
    center: bool,
    f: impl FnOnce(&dyn Operator<T>) -> randla::Result<R> + Send,
) -> PyResult<R> {
    let holder = Holder::<T>::new(a)?;
    let op = holder.operator()?;
    let op_ref: &dyn Operator<T> = op.as_ref();
    let outcome = run(py, || {
        if center {
            f(&Centered::new(op_ref)?)
        } else {
            f(op_ref)
        }
    });
    if let Some(err) = holder.take_error() {
        return Err(err);
    }
    outcome
}

fn range_finder_typed<'py, T: Real + Element>(
    py: Python<'py>,
    a: &Bound<'py, PyAny>,
    omega: &Bound<'py, PyAny>,
    n_iter: usize,
    center: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let omega: PyReadonlyArray2<'py, T> = omega.extract()?;
    let omega = mat_ref(&omega);
    let q = with_operator(py, a, center, |op| lowrank::range_finder(op, omega, n_iter))?;
    Ok(to_numpy(py, &q).into_any())
}

/// Orthonormal basis of range(A Omega) after n_iter power iterations.
#[pyfunction]
#[pyo3(signature = (a, omega, n_iter, center=false))]
fn lowrank_range_finder<'py>(
    py: Python<'py>,
    a: &Bound<'py, PyAny>,
    omega: &Bound<'py, PyAny>,
    n_iter: usize,
    center: bool,
) -> PyResult<Bound<'py, PyAny>> {
    by_float_dtype!(omega, TEST_MATRIX_DTYPE, |T| {
        range_finder_typed::<T>(py, a, omega, n_iter, center)
    })
}

type Triple<'py> = (Bound<'py, PyAny>, Bound<'py, PyAny>, Bound<'py, PyAny>);

fn svd_typed<'py, T: Real + Element>(
    py: Python<'py>,
    a: &Bound<'py, PyAny>,
    omega: &Bound<'py, PyAny>,
    k: usize,
    n_iter: usize,
    center: bool,
    block_krylov: bool,
) -> PyResult<Triple<'py>> {
    let omega: PyReadonlyArray2<'py, T> = omega.extract()?;
    let omega = mat_ref(&omega);
    let r = with_operator(py, a, center, |op| {
        lowrank::svd(op, omega, k, n_iter, block_krylov)
    })?;
    Ok((
        to_numpy(py, &r.u).into_any(),
        r.s.into_pyarray(py).into_any(),
        to_numpy(py, &r.vt).into_any(),
    ))
}

/// Randomized SVD of rank k: (U, s, Vt), by power iterations or block Krylov.
#[pyfunction]
#[pyo3(signature = (a, omega, k, n_iter, center=false, block_krylov=false))]
fn lowrank_svd<'py>(
    py: Python<'py>,
    a: &Bound<'py, PyAny>,
    omega: &Bound<'py, PyAny>,
    k: usize,
    n_iter: usize,
    center: bool,
    block_krylov: bool,
) -> PyResult<Triple<'py>> {
    by_float_dtype!(omega, TEST_MATRIX_DTYPE, |T| {
        svd_typed::<T>(py, a, omega, k, n_iter, center, block_krylov)
    })
}

fn nystrom_typed<'py, T: Real + Element>(
    py: Python<'py>,
    a: &Bound<'py, PyAny>,
    omega: &Bound<'py, PyAny>,
    k: usize,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let omega: PyReadonlyArray2<'py, T> = omega.extract()?;
    let omega = mat_ref(&omega);
    let (w, v) = with_operator(py, a, false, |op| lowrank::nystrom(op, omega, k))?;
    Ok((w.into_pyarray(py).into_any(), to_numpy(py, &v).into_any()))
}

/// Nystrom approximation of a PSD matrix: (w descending, V).
#[pyfunction]
fn lowrank_nystrom<'py>(
    py: Python<'py>,
    a: &Bound<'py, PyAny>,
    omega: &Bound<'py, PyAny>,
    k: usize,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    by_float_dtype!(omega, TEST_MATRIX_DTYPE, |T| {
        nystrom_typed::<T>(py, a, omega, k)
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(lowrank_range_finder, m)?)?;
    m.add_function(wrap_pyfunction!(lowrank_svd, m)?)?;
    m.add_function(wrap_pyfunction!(lowrank_nystrom, m)?)
}
