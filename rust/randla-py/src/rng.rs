//! Raw access to the counter-based generator, for tests against independent
//! implementations and for statistical checks of the distributions.

use numpy::{IntoPyArray, PyArray1, PyArray2, PyArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use randla::rng::{philox4x32_10, Stream};

/// One Philox4x32-10 block.
#[pyfunction]
fn philox4x32_10_block(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    philox4x32_10(counter, key)
}

/// Blocks `start .. start + count` of the stream (seed, tag), lane 0: shape (count, 4).
#[pyfunction]
fn philox_blocks<'py>(
    py: Python<'py>,
    seed: u64,
    tag: u32,
    start: u64,
    count: usize,
) -> Bound<'py, PyArray2<u32>> {
    let stream = Stream::new(seed, tag);
    let flat: Vec<u32> = py.detach(|| {
        (0..count as u64)
            .flat_map(|i| stream.block(start + i, 0))
            .collect()
    });
    flat.into_pyarray(py)
        .reshape([count, 4])
        .expect("count * 4 elements")
}

/// Draws at positions `start .. start + count` of the stream (seed, tag):
/// "normal", "uniform" (open (0, 1)), "sign" (±1) or "u32".
#[pyfunction]
fn random_draws<'py>(
    py: Python<'py>,
    distribution: &str,
    seed: u64,
    tag: u32,
    start: u64,
    count: usize,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let stream = Stream::new(seed, tag);
    let mut out = vec![0.0f64; count];
    match distribution {
        "normal" => py.detach(|| stream.fill_normal(start, &mut out)),
        "sign" => py.detach(|| stream.fill_signs(start, 1.0, &mut out)),
        "uniform" => out
            .iter_mut()
            .enumerate()
            .for_each(|(i, x)| *x = stream.uniform_at(start + i as u64)),
        "u32" => out
            .iter_mut()
            .enumerate()
            .for_each(|(i, x)| *x = stream.u32_at(start + i as u64) as f64),
        other => {
            return Err(PyValueError::new_err(format!(
                "distribution must be normal, uniform, sign or u32, got {other:?}"
            )))
        }
    }
    Ok(out.into_pyarray(py))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(philox4x32_10_block, m)?)?;
    m.add_function(wrap_pyfunction!(philox_blocks, m)?)?;
    m.add_function(wrap_pyfunction!(random_draws, m)?)?;
    Ok(())
}
