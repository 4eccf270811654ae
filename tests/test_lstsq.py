"""rl.lstsq: sketch-and-precondition, sketch-and-solve and direct against numpy references."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import randla as rl
import scipy.sparse as sp
import scipy.sparse.linalg as spla

SKETCHES = ["sparse_sign", "gaussian", "rademacher", "srht", "countsketch", "sparse_rp"]
FULL_METHODS = ["auto", "sketch_precondition", "direct"]
EPS = np.finfo(np.float64).eps


def relative_error(x: np.ndarray, ref: np.ndarray) -> float:
    return float(np.linalg.norm(x - ref) / np.linalg.norm(ref))


def tall_problem(n: int, d: int, seed: int, noise: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """A Gaussian (well-conditioned) ``A`` and ``b = A x + noise``."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, d))
    b = A @ rng.standard_normal(d) + noise * rng.standard_normal(n)
    return A, b


def conditioned_problem(
    n: int, d: int, cond: float, seed: int, noise: float = 1e-6
) -> tuple[np.ndarray, np.ndarray]:
    """``A = U diag(s) V^T`` with log-spaced ``s`` from 1 to ``1/cond``; ``b = A x + noise``."""
    rng = np.random.default_rng(seed)
    U, _ = np.linalg.qr(rng.standard_normal((n, d)))
    V, _ = np.linalg.qr(rng.standard_normal((d, d)))
    A = (U * np.logspace(0.0, -np.log10(cond), d)) @ V.T
    b = A @ rng.standard_normal(d) + noise * rng.standard_normal(n)
    return A, b


def numpy_lstsq(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.linalg.lstsq(A, b, rcond=None)[0]


# --- accuracy ----------------------------------------------------------------


@pytest.mark.parametrize("sketch", SKETCHES)
@pytest.mark.parametrize("method", FULL_METHODS)
def test_well_conditioned_matches_numpy(method: str, sketch: str) -> None:
    A, b = tall_problem(3000, 40, seed=0)
    ref = numpy_lstsq(A, b)
    res = rl.lstsq(A, b, method=method, sketch=sketch, rng=1)
    assert isinstance(res, rl.LstsqResult)
    assert res.x.shape == (40,) and res.x.dtype == np.float64
    assert isinstance(res.residual_norm, float)
    assert res.converged
    assert res.rank == 40
    assert relative_error(res.x, ref) <= 1e-10
    assert res.residual_norm == pytest.approx(np.linalg.norm(A @ res.x - b), rel=1e-12)
    if method == "direct":
        assert res.iterations == 0
    else:
        assert res.method == "sketch_precondition"
        # The iteration count depends on the oversampling, not on the problem.
        assert 0 < res.iterations <= 100


@pytest.mark.parametrize("sketch", ["sparse_sign", "gaussian", "srht"])
@pytest.mark.parametrize("cond", [1e2, 1e6, 1e10])
def test_ill_conditioned_sketch_precondition(cond: float, sketch: str) -> None:
    A, b = conditioned_problem(2000, 30, cond, seed=3)
    ref = numpy_lstsq(A, b)
    optimum = np.linalg.norm(A @ ref - b)
    res = rl.lstsq(A, b, method="sketch_precondition", sketch=sketch, rng=0)
    assert res.converged
    assert res.rank == 30
    # Forward error: LSQR stops on a backward-error test, so the error in x
    # may grow like cond * rtol; a solver without a working preconditioner
    # (or plain sketch-and-solve) is off by many orders of magnitude more.
    assert relative_error(res.x, ref) <= 1e-13 * cond + 1e-10
    # The residual is the robust criterion: optimal to (nearly) working precision.
    residual = np.linalg.norm(A @ res.x - b)
    assert residual <= optimum * (1 + 1e-10)
    assert res.residual_norm == pytest.approx(residual, rel=1e-10)
    # The preconditioned iteration count does not grow with cond(A).
    assert res.iterations <= 60


@pytest.mark.parametrize(
    ("cond", "expected"),
    [(1.0, "qr+cholesky"), (1e6, "qr+cholesky"), (1e7, "qr+cholesky"), (1e10, "qr")],
)
def test_gram_refinement_runs_while_the_sketch_is_moderately_conditioned(
    cond: float, expected: str
) -> None:
    # A dense tall A gets the sketch's R refined by the Cholesky factor of
    # R^-T A^T A R^-1 when eps cond(R)^2 <= 0.1; beyond that (1e10) the
    # rounding of A^T A would swamp it and the sketch's R runs alone. Either
    # way the answer is numpy's to the conditioning-limited accuracy, and the
    # refined preconditioner needs a handful of iterations, not dozens.
    A, b = conditioned_problem(20000, 40, cond, seed=21)
    ref = numpy_lstsq(A, b)
    res = rl.lstsq(A, b, rng=0)
    assert res.method == "sketch_precondition"
    assert res.preconditioner == expected
    assert res.converged
    assert relative_error(res.x, ref) <= 1e-13 * cond + 1e-10
    optimum = np.linalg.norm(A @ ref - b)
    assert np.linalg.norm(A @ res.x - b) <= optimum * (1 + 1e-10)
    if expected == "qr+cholesky":
        assert res.iterations <= 8
    else:
        assert res.iterations > 15  # what the refinement saves


def test_gram_refinement_matches_the_unrefined_solution() -> None:
    # The same problem through a sparse A (no Gram matrix: the sketch's QR
    # alone) and a dense one (refined): both meet rtol, so they agree.
    A, b = conditioned_problem(6000, 30, 1e4, seed=22)
    B = np.stack([b, A @ np.arange(30.0)], axis=1)
    dense = rl.lstsq(A, B, rng=3)
    sparse = rl.lstsq(sp.csr_matrix(A), B, rng=3)
    assert (dense.preconditioner, sparse.preconditioner) == ("qr+cholesky", "qr")
    assert dense.iterations < sparse.iterations
    assert relative_error(dense.x, sparse.x) <= 1e-10
    assert relative_error(dense.x[:, 1], np.arange(30.0)) <= 1e-10  # consistent column
    np.testing.assert_allclose(
        dense.residual_norm, sparse.residual_norm, rtol=1e-10, atol=1e-12 * np.linalg.norm(B)
    )


def test_gram_refinement_is_skipped_when_it_does_not_pay() -> None:
    # Forming A^T A costs about d / 16 passes over A: with a loose rtol the
    # sketch's R alone needs fewer passes than that.
    A, b = tall_problem(4000, 200, seed=23)
    assert rl.lstsq(A, b, rng=0).preconditioner == "qr+cholesky"
    loose = rl.lstsq(A, b, rtol=1e-3, rng=0)
    assert loose.preconditioner == "qr"
    assert loose.converged


def test_preconditioner_of_rank_deficient_and_wide_problems() -> None:
    rng = np.random.default_rng(24)
    A = rng.standard_normal((2000, 5)) @ rng.standard_normal((5, 20))
    b = rng.standard_normal(2000)
    assert rl.lstsq(A, b, rng=0).preconditioner == "svd"
    assert rl.lstsq(rng.standard_normal((2000, 20)), b, rng=0).preconditioner == "qr+cholesky"
    wide = rng.standard_normal((10, 400))
    assert rl.lstsq(wide, rng.standard_normal(10), rng=0).preconditioner == "qr"
    assert rl.lstsq(A, b, method="direct").preconditioner is None
    assert rl.lstsq(A, b, method="sketch_solve", rng=0).preconditioner is None


def test_gram_refinement_on_any_thread_count() -> None:
    # The thread count changes only the rounding of LSQR's sums (as on the
    # unrefined path): the same preconditioner, iterations and solution.
    A, b = conditioned_problem(40000, 60, 1e5, seed=25)
    results = []
    for threads in (1, 2, 3):
        with rl.num_threads(threads):
            results.append(rl.lstsq(A, b, rng=4))
    assert all(r.preconditioner == "qr+cholesky" for r in results)
    assert len({r.iterations for r in results}) == 1
    assert all(relative_error(r.x, results[0].x) <= 1e-10 for r in results[1:])


@pytest.mark.parametrize("method", ["sketch_precondition", "direct"])
@pytest.mark.parametrize(
    ("n", "d", "r"),
    [
        (600, 30, 10),  # tall, rank-deficient
        (2000, 50, 7),  # very tall, very rank-deficient
        (90, 90, 30),  # square, rank-deficient
        (40, 90, 12),  # wide, rank-deficient
        (30, 100, 30),  # wide, full row rank (underdetermined)
        (20, 50, 20),  # wide, full row rank
    ],
)
def test_minimum_norm_solution(method: str, n: int, d: int, r: int) -> None:
    rng = np.random.default_rng(n * 1000 + d)
    A = rng.standard_normal((n, r)) @ rng.standard_normal((r, d))
    b = rng.standard_normal(n)
    ref = np.linalg.pinv(A) @ b
    with warnings.catch_warnings():
        warnings.simplefilter("error", rl.ConvergenceWarning)
        res = rl.lstsq(A, b, method=method, rng=0)
    assert res.x.shape == (d,)
    assert res.rank == r
    assert res.converged
    assert relative_error(res.x, ref) <= 1e-8
    optimum = np.linalg.norm(A @ ref - b)
    assert res.residual_norm == pytest.approx(optimum, rel=1e-8, abs=1e-8 * np.linalg.norm(b))


@pytest.mark.parametrize("method", ["sketch_precondition", "sketch_solve", "direct"])
def test_multiple_right_hand_sides(method: str) -> None:
    A, _ = tall_problem(3000, 40, seed=4)
    rng = np.random.default_rng(5)
    B = A @ rng.standard_normal((40, 3)) + 0.1 * rng.standard_normal((3000, 3))
    res = rl.lstsq(A, B, method=method, rng=5)
    assert res.x.shape == (40, 3)
    assert isinstance(res.residual_norm, np.ndarray)
    assert res.residual_norm.shape == (3,)
    np.testing.assert_allclose(res.residual_norm, np.linalg.norm(A @ res.x - B, axis=0), rtol=1e-12)
    for j in range(3):
        single = rl.lstsq(A, B[:, j], method=method, rng=5)
        assert relative_error(res.x[:, j], single.x) <= 1e-12
        assert res.residual_norm[j] == pytest.approx(single.residual_norm, rel=1e-12)
    if method != "sketch_solve":
        assert relative_error(res.x, numpy_lstsq(A, B)) <= 1e-10


def test_multiple_right_hand_sides_wide() -> None:
    rng = np.random.default_rng(6)
    A = rng.standard_normal((30, 120))
    B = rng.standard_normal((30, 4))
    res = rl.lstsq(A, B, method="sketch_precondition", rng=0)
    assert res.x.shape == (120, 4) and res.residual_norm.shape == (4,)
    assert relative_error(res.x, np.linalg.pinv(A) @ B) <= 1e-8


def _sparse_problem() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    A = rng.standard_normal((2000, 30))
    A[rng.random(A.shape) < 0.7] = 0.0
    b = A @ rng.standard_normal(30) + 0.1 * rng.standard_normal(2000)
    return A, b


INPUT_KINDS = {
    "csr": sp.csr_matrix,
    "csc": sp.csc_matrix,
    "coo": sp.coo_matrix,
    "csr_array": sp.csr_array,
    "linear_operator": spla.aslinearoperator,
    "sparse_linear_operator": lambda A: spla.aslinearoperator(sp.csr_matrix(A)),
}


@pytest.mark.parametrize("kind", list(INPUT_KINDS))
@pytest.mark.parametrize("method", ["auto", "sketch_precondition", "sketch_solve", "direct"])
def test_sparse_and_operator_inputs_match_dense(method: str, kind: str) -> None:
    A, b = _sparse_problem()
    dense = rl.lstsq(A, b, method=method, rng=3)
    res = rl.lstsq(INPUT_KINDS[kind](A), b, method=method, rng=3)
    # auto picks sketch_precondition for every non-dense A.
    assert res.method == ("sketch_precondition" if method == "auto" else method)
    assert res.x.dtype == np.float64
    # sketch_solve: the same sketch of the same matrix, so equal up to rounding too.
    assert relative_error(res.x, dense.x) <= 1e-9
    if method != "sketch_solve":
        assert relative_error(res.x, numpy_lstsq(A, b)) <= 1e-10
    assert res.residual_norm == pytest.approx(np.linalg.norm(A @ res.x - b), rel=1e-10)


@pytest.mark.parametrize("kind", ["csr", "linear_operator"])
def test_wide_sparse_and_operator_inputs(kind: str) -> None:
    W = sp.random(30, 200, density=0.2, rng=np.random.default_rng(1), format="csr")
    b = np.random.default_rng(2).standard_normal(30)
    A = W if kind == "csr" else spla.aslinearoperator(W)
    res = rl.lstsq(A, b, method="sketch_precondition", rng=0)
    assert res.rank == 30
    assert relative_error(res.x, np.linalg.pinv(W.toarray()) @ b) <= 1e-8


@pytest.mark.parametrize("kind", ["dense", "csr", "linear_operator"])
@pytest.mark.parametrize("method", ["sketch_precondition", "direct"])
def test_float32(method: str, kind: str) -> None:
    A, b = _sparse_problem()
    ref = numpy_lstsq(A, b)
    A32, b32 = A.astype(np.float32), b.astype(np.float32)
    operand = {
        "dense": A32,
        "csr": sp.csr_matrix(A32),
        "linear_operator": spla.aslinearoperator(A32),
    }[kind]
    res = rl.lstsq(operand, b32, method=method, rng=0)
    assert res.x.dtype == np.float32
    assert isinstance(res.residual_norm, float)
    assert relative_error(res.x.astype(np.float64), ref) <= 1e-4


def test_float32_with_float64_b_promotes() -> None:
    A, b = _sparse_problem()
    res = rl.lstsq(A.astype(np.float32), b, method="direct")
    assert res.x.dtype == np.float64


def test_sketch_solve_residual_is_near_optimal() -> None:
    rng = np.random.default_rng(8)
    A = rng.standard_normal((5000, 20))
    b = A @ rng.standard_normal(20) + rng.standard_normal(5000)
    optimum = np.linalg.norm(A @ numpy_lstsq(A, b) - b)
    res = rl.lstsq(A, b, method="sketch_solve", sketch="gaussian", oversampling=4, rng=0)
    assert res.method == "sketch_solve"
    assert res.iterations == 0
    assert res.rank == 20
    residual = np.linalg.norm(A @ res.x - b)
    assert res.residual_norm == pytest.approx(residual, rel=1e-12)
    # Sketch-and-solve is only approximately optimal (1 + O(1/sqrt(oversampling)))...
    assert optimum <= residual <= 1.5 * optimum
    # ...and, unlike sketch_precondition, not optimal to working precision.
    assert residual > optimum * (1 + 1e-6)


@pytest.mark.parametrize("method", ["sketch_precondition", "sketch_solve"])
def test_same_rng_is_bitwise_reproducible(method: str) -> None:
    A, b = tall_problem(2000, 25, seed=9)
    first = rl.lstsq(A, b, method=method, rng=7)
    second = rl.lstsq(A, b, method=method, rng=7)
    assert np.array_equal(first.x, second.x)
    assert first.iterations == second.iterations
    third = rl.lstsq(A, b, method=method, rng=np.random.default_rng(7))
    fourth = rl.lstsq(A, b, method=method, rng=np.random.default_rng(7))
    assert np.array_equal(third.x, fourth.x)
    if method == "sketch_solve":
        # A different seed is a different sketch.
        other = rl.lstsq(A, b, method=method, rng=8)
        assert not np.array_equal(first.x, other.x)


# --- method="auto" -------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        ((160, 10), "sketch_precondition"),  # n == 16 d
        ((1000, 20), "sketch_precondition"),
        ((159, 10), "direct"),  # just below 16 d
        ((100, 20), "direct"),
        ((50, 50), "direct"),
        ((20, 400), "sketch_precondition"),  # very wide
        ((20, 50), "direct"),
    ],
)
def test_auto_method(shape: tuple[int, int], expected: str) -> None:
    rng = np.random.default_rng(10)
    A = rng.standard_normal(shape)
    b = rng.standard_normal(shape[0])
    res = rl.lstsq(A, b, rng=0)
    assert res.method == expected
    np.testing.assert_allclose(res.x, np.linalg.pinv(A) @ b, rtol=1e-8, atol=1e-10)


def test_auto_respects_oversampling() -> None:
    rng = np.random.default_rng(11)
    A = rng.standard_normal((100, 10))
    b = rng.standard_normal(100)
    assert rl.lstsq(A, b, rng=0).method == "direct"  # 100 < 4 * ceil(4 * 10)
    assert rl.lstsq(A, b, oversampling=2.5, rng=0).method == "sketch_precondition"


# --- bad input ----------------------------------------------------------------


def _small() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(12)
    return rng.standard_normal((300, 10)), rng.standard_normal(300)


@pytest.mark.parametrize("where", ["A", "b", "A_sparse"])
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_input_raises(where: str, value: float) -> None:
    A, b = _small()
    if where == "b":
        b[5] = value
    else:
        A[3, 4] = value
    operand = sp.csr_matrix(A) if where == "A_sparse" else A
    with pytest.raises(ValueError, match="NaN or infinity"):
        rl.lstsq(operand, b)


@pytest.mark.parametrize("sketch", ["sparse_sign", "gaussian", "srht", "countsketch", "sparse_rp"])
@pytest.mark.parametrize("method", ["auto", "sketch_precondition", "sketch_solve", "direct"])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_dense_a_raises_through_every_path(
    sketch: str, method: str, value: float
) -> None:
    # A dense A is checked through its sketch where every entry reaches it,
    # upfront otherwise: the error is the same on every path, tall and wide,
    # wherever the bad entry sits.
    rng = np.random.default_rng(3)
    for shape in ((4000, 12), (12, 4000)):
        if method == "sketch_solve" and shape[0] < shape[1]:
            continue
        A, b = rng.standard_normal(shape), rng.standard_normal(shape[0])
        for where in ((0, 0), (shape[0] - 1, shape[1] - 1), (7, 3)):
            bad = A.copy()
            bad[where] = value
            with pytest.raises(ValueError, match="A contains NaN or infinity"):
                rl.lstsq(bad, b, method=method, sketch=sketch, rng=1)


@pytest.mark.parametrize("rows", [299, 301])
@pytest.mark.parametrize("ncols", [None, 2])
def test_wrong_number_of_rows_raises(rows: int, ncols: int | None) -> None:
    A, _ = _small()
    b = np.ones(rows if ncols is None else (rows, ncols))
    with pytest.raises(ValueError, match=r"\(300, 10\).*b has shape"):
        rl.lstsq(A, b)


def test_b_with_wrong_ndim_raises() -> None:
    A, _ = _small()
    with pytest.raises(ValueError):
        rl.lstsq(A, np.ones((300, 1, 1)))


@pytest.mark.parametrize("oversampling", [-1, 0, 0.5, 0.999])
def test_bad_oversampling_raises(oversampling: float) -> None:
    A, b = _small()
    with pytest.raises(ValueError, match="oversampling"):
        rl.lstsq(A, b, oversampling=oversampling)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "qr"}, "method"),
        ({"method": "SKETCH_SOLVE"}, "method"),
        ({"sketch": "fjlt"}, "sketch"),
        ({"sketch": "row_sampling"}, "sketch"),
        ({"maxiter": 0}, "maxiter"),
        ({"rtol": -1.0}, "rtol"),
    ],
)
def test_bad_options_raise(kwargs: dict, match: str) -> None:
    A, b = _small()
    with pytest.raises(ValueError, match=match):
        rl.lstsq(A, b, **kwargs)


@pytest.mark.parametrize("which", ["A", "b"])
def test_complex_input_raises_type_error(which: str) -> None:
    A, b = _small()
    if which == "A":
        A = A.astype(np.complex128)
    else:
        b = b.astype(np.complex128)
    with pytest.raises(TypeError, match="complex"):
        rl.lstsq(A, b)


def test_sketch_solve_wide_raises() -> None:
    A, b = _small()
    with pytest.raises(ValueError, match="sketch_solve"):
        rl.lstsq(A.T, b[:10], method="sketch_solve")


def test_maxiter_reached_warns_and_reports_not_converged() -> None:
    A, b = conditioned_problem(2000, 30, 1e10, seed=13, noise=1.0)
    with pytest.warns(rl.ConvergenceWarning, match="maxiter=1"):
        res = rl.lstsq(A, b, method="sketch_precondition", rtol=1e-15, maxiter=1, rng=0)
    assert res.converged is False
    assert res.iterations == 1
    assert res.x.shape == (30,)
    # x is huge (~1e10) after one step, so ||A x - b|| is only known to ~1e-9.
    assert res.residual_norm == pytest.approx(np.linalg.norm(A @ res.x - b), rel=1e-8)


def test_converged_solve_does_not_warn() -> None:
    A, b = tall_problem(2000, 20, seed=14)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = rl.lstsq(A, b, method="sketch_precondition", rng=0)
    assert res.converged is True


def test_check_finite_false_propagates_nan_in_direct() -> None:
    A, b = _small()
    b[0] = np.nan
    res = rl.lstsq(A, b, method="direct", check_finite=False)
    assert not np.isfinite(res.x).all()


@pytest.mark.parametrize("method", ["sketch_solve", "sketch_precondition"])
def test_check_finite_false_does_not_blame_a_for_nan_in_b(method: str) -> None:
    A, b = _small()
    b[0] = np.nan
    try:
        res = rl.lstsq(A, b, method=method, rng=0, check_finite=False)
    except ValueError as exc:
        assert "A contains" not in str(exc)
    else:
        assert not np.isfinite(res.x).all()


def test_repr() -> None:
    A, b = _small()
    text = repr(rl.lstsq(A, b, method="direct"))
    assert text.startswith("LstsqResult(method='direct'")
    assert "shape (10,)" in text
