//! DPP samplers: the Python layer (`randla.dpp`) validates kernels and
//! computes eigendecompositions; the chain-rule sampling of every sample
//! runs here, in parallel, without the GIL.

use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;
use randla::dpp::{self, Selection, Spectral};

use crate::convert::{mat_ref, slice};
use crate::error::run;

fn sorted(mut s: Vec<usize>) -> Vec<i64> {
    s.sort_unstable();
    s.into_iter().map(|i| i as i64).collect()
}

/// `n_samples` projection-DPP samples of the kernel `v v^T`: (n_samples, r),
/// rows sorted; with `check_tol`, V's orthonormality is checked first (on
/// two probes: the check sits on the sampler's hot path).
#[pyfunction]
#[pyo3(signature = (v, n_samples, seed, check_tol=None))]
fn dpp_projection<'py>(
    py: Python<'py>,
    v: PyReadonlyArray2<'py, f64>,
    n_samples: usize,
    seed: u64,
    check_tol: Option<f64>,
) -> PyResult<Bound<'py, PyArray2<i64>>> {
    let r = v.as_array().ncols();
    let vm = mat_ref(&v);
    let samples = run(py, || {
        if let Some(tol) = check_tol {
            dpp::check_orthonormal(vm, tol, 2)?;
        }
        dpp::sample_projection(vm, n_samples, seed)
    })?;
    let flat: Vec<i64> = samples.into_iter().flat_map(sorted).collect();
    let arr = numpy::ndarray::Array2::from_shape_vec((n_samples, r), flat)
        .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(e.to_string()))?;
    Ok(arr.into_pyarray(py))
}

/// Spectral DPP samples: eigenvectors (N, M), L-eigenvalues (M,) (inf: always
/// selected), k for a k-DPP, optionally a left factor (eigenvector j is
/// left @ vectors[:, j]); a list of sorted index arrays.
#[pyfunction]
#[pyo3(signature = (vectors, lambdas, k, n_samples, seed, left=None))]
fn dpp_spectral<'py>(
    py: Python<'py>,
    vectors: PyReadonlyArray2<'py, f64>,
    lambdas: PyReadonlyArray1<'py, f64>,
    k: Option<usize>,
    n_samples: usize,
    seed: u64,
    left: Option<PyReadonlyArray2<'py, f64>>,
) -> PyResult<Vec<Bound<'py, PyArray1<i64>>>> {
    let vm = mat_ref(&vectors);
    let left = left.as_ref().map(mat_ref);
    let lambdas = slice(&lambdas, "lambdas")?;
    let selection = k.map_or(Selection::Bernoulli, Selection::Exactly);
    let samples = run(py, || {
        let spectral = Spectral::new(vm, lambdas, selection)?;
        let spectral = match left {
            Some(l) => spectral.with_left_factor(l)?,
            None => spectral,
        };
        spectral.sample(n_samples, seed)
    })?;
    Ok(samples
        .into_iter()
        .map(|s| sorted(s).into_pyarray(py))
        .collect())
}

/// Raises ValueError unless `v` has orthonormal columns to `tol`, on `probes`
/// probe vectors of `V^T V - I`.
#[pyfunction]
fn dpp_check_orthonormal(
    py: Python<'_>,
    v: PyReadonlyArray2<'_, f64>,
    tol: f64,
    probes: usize,
) -> PyResult<()> {
    let vm = mat_ref(&v);
    run(py, || dpp::check_orthonormal(vm, tol, probes))
}

type Eigen<'py> = (Bound<'py, PyArray1<f64>>, Bound<'py, PyArray2<f64>>);

/// Eigenvalues (ascending) and eigenvectors of the dual kernel `Phi^T Phi`.
#[pyfunction]
fn dpp_dual_eigen<'py>(py: Python<'py>, phi: PyReadonlyArray2<'py, f64>) -> PyResult<Eigen<'py>> {
    let pm = mat_ref(&phi);
    let (w, q) = run(py, || dpp::dual_eigen(pm))?;
    let d = w.len();
    let vectors = numpy::ndarray::Array2::from_shape_fn((d, d), |(i, j)| q[(i, j)]);
    Ok((w.into_pyarray(py), vectors.into_pyarray(py)))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(dpp_dual_eigen, m)?)?;
    m.add_function(wrap_pyfunction!(dpp_check_orthonormal, m)?)?;
    m.add_function(wrap_pyfunction!(dpp_projection, m)?)?;
    m.add_function(wrap_pyfunction!(dpp_spectral, m)?)?;
    Ok(())
}
