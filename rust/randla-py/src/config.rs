//! Thread control and build information.

use pyo3::prelude::*;

use crate::error::to_py;

#[pyfunction]
fn set_num_threads(py: Python<'_>, n: usize) -> PyResult<()> {
    randla::parallel::set_num_threads(n).map_err(|e| to_py(py, e))
}

#[pyfunction]
fn get_num_threads() -> usize {
    randla::parallel::num_threads()
}

#[pyfunction]
fn simd_level() -> &'static str {
    randla::simd_level()
}

/// Panics inside the core's error boundary: lets the tests check that a Rust
/// panic surfaces as `randla.RandlaInternalError` and never aborts.
#[pyfunction]
fn _panic_for_tests(py: Python<'_>) -> PyResult<()> {
    crate::error::run(py, || -> randla::Result<()> {
        panic!("deliberate panic for the tests")
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_panic_for_tests, m)?)?;
    m.add_function(wrap_pyfunction!(set_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(get_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(simd_level, m)?)?;
    Ok(())
}
