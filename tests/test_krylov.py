"""rl.krylov: solvers against scipy.sparse.linalg on a registry of problems."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pytest
import randla as rl
import scipy.sparse as sp
import scipy.sparse.linalg as spla


def poisson2d(k: int) -> sp.csr_matrix:
    """5-point Laplacian on a k x k grid (SPD, n = k^2)."""
    t = sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(k, k))
    eye = sp.identity(k)
    return (sp.kron(t, eye) + sp.kron(eye, t)).tocsr()


def spd_dense(n: int, cond: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return (q * np.geomspace(1.0, cond, n)) @ q.T


@dataclass
class Problem:
    name: str
    make: Callable[[], Any]  # -> (A as given to the solver, dense reference, M or None)
    rtol: float = 1e-8


def _jacobi(A: sp.spmatrix) -> sp.spmatrix:
    return sp.diags(1.0 / A.diagonal())


SPD_PROBLEMS = [
    Problem("poisson_csr", lambda: (poisson2d(20), None)),
    Problem("poisson_csc", lambda: (poisson2d(20).tocsc(), None)),
    Problem("poisson_coo_array", lambda: (sp.coo_array(poisson2d(15)), None)),
    Problem("dense_cond1e3", lambda: (spd_dense(120, 1e3, 0), None)),
    Problem("ill_conditioned_diag_jacobi", lambda: _ill_conditioned()),
    Problem("poisson_linear_operator", lambda: (spla.aslinearoperator(poisson2d(15)), None)),
    Problem("poisson_callable", lambda: (_callable(poisson2d(15)), None)),
    Problem("poisson_jacobi", lambda: (poisson2d(20), _jacobi(poisson2d(20)))),
    Problem("dense_callable_preconditioner", lambda: _dense_with_callable_m()),
]


def _ill_conditioned() -> tuple[Any, Any]:
    # A badly scaled SPD matrix: Jacobi fixes the scaling.
    A = poisson2d(12)
    d = sp.diags(np.geomspace(1.0, 1e4, A.shape[0]))
    B = (d @ A @ d).tocsr()
    return B, _jacobi(B)


def _callable(A: Any) -> Callable[[np.ndarray], np.ndarray]:
    return lambda x: A @ x


def _dense_with_callable_m() -> tuple[Any, Any]:
    A = spd_dense(80, 1e2, 3)
    diag = np.diag(A).copy()
    return A, spla.LinearOperator(A.shape, matvec=lambda x: x / diag, dtype=np.float64)


def _dense(A: Any, n: int) -> np.ndarray:
    if sp.issparse(A):
        return A.toarray()
    if isinstance(A, np.ndarray):
        return A
    if hasattr(A, "matvec"):
        return np.column_stack([A.matvec(e) for e in np.eye(n)])
    return np.column_stack([A(e) for e in np.eye(n)])


def scipy_cg(A: Any, b: np.ndarray, rtol: float, M: Any = None) -> tuple[np.ndarray, int, int]:
    count = [0]

    def tick(_: Any) -> None:
        count[0] += 1

    op = (
        spla.LinearOperator((b.shape[0],) * 2, matvec=A, dtype=b.dtype)
        if callable(A) and not hasattr(A, "shape")
        else A
    )
    m_op = M
    x, info = spla.cg(op, b, rtol=rtol, atol=0.0, M=m_op, callback=tick, maxiter=10 * b.shape[0])
    return x, info, count[0]


@pytest.mark.parametrize("problem", SPD_PROBLEMS, ids=lambda p: p.name)
def test_cg_matches_scipy(problem: Problem) -> None:
    A, M = problem.make()
    n = A.shape[0] if hasattr(A, "shape") else 225
    rng = np.random.default_rng(7)
    b = rng.standard_normal(n)
    res = rl.krylov.cg(A, b, rtol=problem.rtol, M=M)
    x_ref, info, iterations = scipy_cg(A, b, problem.rtol, M)
    assert info == 0 and res.converged and res.info == 0
    dense = _dense(A, n)
    assert np.linalg.norm(dense @ res.x - b) <= 1.01 * problem.rtol * np.linalg.norm(b)
    np.testing.assert_allclose(res.x, x_ref, rtol=0, atol=1e-5 * np.abs(x_ref).max())
    # Same recurrences: the iteration count within 2% of scipy's.
    assert abs(res.iterations - iterations) <= max(1, 0.02 * iterations), (
        res.iterations,
        iterations,
    )
    assert res.residual_history.shape == (res.iterations + 1,)
    assert res.residual_history[0] == pytest.approx(np.linalg.norm(b))
    assert res.residual_norm == res.residual_history[-1]


def test_cg_iterations_match_scipy_on_a_larger_poisson_problem() -> None:
    A = poisson2d(60)
    b = np.random.default_rng(1).standard_normal(A.shape[0])
    res = rl.krylov.cg(A, b, rtol=1e-8)
    _, _, iterations = scipy_cg(A, b, 1e-8)
    assert abs(res.iterations - iterations) <= 0.02 * iterations


def test_cg_float32() -> None:
    A = poisson2d(15).astype(np.float32)
    b = np.random.default_rng(2).standard_normal(A.shape[0]).astype(np.float32)
    res = rl.krylov.cg(A, b, rtol=1e-4)
    assert res.x.dtype == np.float32 and res.converged
    x64 = np.linalg.solve(A.toarray().astype(np.float64), b.astype(np.float64))
    np.testing.assert_allclose(res.x, x64, rtol=0, atol=1e-3 * np.abs(x64).max())
    # float64 data with float32 b promotes to float64.
    assert rl.krylov.cg(A.astype(np.float64), b).x.dtype == np.float64


def _never(info: rl.krylov.IterationInfo) -> bool:
    """A callback that never stops: it keeps a solve on block products (see `_both_paths`)."""
    return False


def _both_paths(solve: Callable[..., Any], A: Any, B: np.ndarray, **kw: Any) -> list[Any]:
    """The solve of the block B on both paths: one column at a time (a sparse A,
    fewer than eight columns, no callback) and block products (a callback
    watches every column's iterations together, so it keeps the block)."""
    return [solve(A, B, **kw), solve(A, B, callback=_never, **kw)]


def test_several_right_hand_sides_equal_separate_solves() -> None:
    A = poisson2d(20)
    B = np.random.default_rng(3).standard_normal((A.shape[0], 4))
    B[:, 2] += 1e2  # a column with a smooth part converges on its own schedule
    by_columns, block = _both_paths(rl.krylov.cg, A, B, rtol=1e-9)
    for res in (by_columns, block):
        assert res.x.shape == B.shape and res.residual_history.shape[1] == 4
        assert res.converged.all() and res.info.tolist() == [0, 0, 0, 0]
        for c in range(4):
            one = rl.krylov.cg(A, B[:, c], rtol=1e-9)
            assert one.iterations == res.iterations[c]
            np.testing.assert_allclose(res.x[:, c], one.x, rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(res.residual_norm[c], one.residual_norm, rtol=1e-8)
    assert len(set(block.iterations.tolist())) > 1
    # A column's norms stay at their last value once it stops, on both paths.
    np.testing.assert_allclose(by_columns.residual_history, block.residual_history, rtol=1e-8)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", ["plain", "x0", "maxiter"])
def test_columns_and_block_agree_on_every_field(case: str, dtype: Any) -> None:
    # A zero column (x = 0 at once), a start x0, an iteration limit (info and
    # the warning per column): the two paths give the same bits and fields.
    A = poisson2d(20).astype(dtype)
    rng = np.random.default_rng(6)
    B = rng.standard_normal((A.shape[0], 3)).astype(dtype)
    B[:, 1] = 0
    kw: dict[str, Any] = {
        "plain": {},
        "x0": {"x0": rng.standard_normal(B.shape).astype(dtype)},
        "maxiter": {"maxiter": 5},
    }[case]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        by_columns, block = _both_paths(rl.krylov.cg, A, B, **kw)
    assert by_columns.x.dtype == block.x.dtype == dtype
    assert np.array_equal(by_columns.x, block.x)
    assert np.array_equal(by_columns.residual_history, block.residual_history)
    for field in ("iterations", "info", "converged", "residual_norm"):
        assert np.array_equal(getattr(by_columns, field), getattr(block, field)), field
    assert by_columns.iterations[1] == 0 and not by_columns.x[:, 1].any()
    messages = [str(w.message) for w in caught if issubclass(w.category, rl.ConvergenceWarning)]
    # One warning per call, the same text from both paths.
    assert len(messages) == (2 if case == "maxiter" else 0) and len(set(messages)) <= 1


def test_wide_blocks_run_by_columns_where_a_column_fits_in_cache() -> None:
    # 16 columns of 65,536 unknowns: CG's four blocks take 32 MiB, above the
    # cache budget, while a column's take 2 MiB; with a callback, the block runs.
    A = poisson2d(256)
    B = np.random.default_rng(5).standard_normal((A.shape[0], 16))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rl.ConvergenceWarning)
        by_columns, block = _both_paths(rl.krylov.cg, A, B, rtol=1e-12, maxiter=40)
    # Products by diagonals sum in the same order for every column count.
    assert np.array_equal(by_columns.x, block.x)
    assert np.array_equal(by_columns.residual_history, block.residual_history)
    assert by_columns.info.tolist() == block.info.tolist() == [40] * 16


def test_x0_is_used() -> None:
    A = poisson2d(15)
    b = np.random.default_rng(4).standard_normal(A.shape[0])
    exact = spla.spsolve(A.tocsc(), b)
    res = rl.krylov.cg(A, b, x0=exact + 1e-9, rtol=1e-6)
    assert res.iterations <= 1 and res.converged
    cold = rl.krylov.cg(A, b, rtol=1e-6)
    assert cold.iterations > 10


def test_zero_right_hand_side() -> None:
    A = poisson2d(5)
    res = rl.krylov.cg(A, np.zeros(25), x0=np.ones(25))
    assert res.converged and res.iterations == 0 and np.array_equal(res.x, np.zeros(25))


def test_callback_sees_every_iteration_and_can_stop() -> None:
    A = poisson2d(20)
    b = np.ones(A.shape[0])
    seen: list[rl.krylov.IterationInfo] = []

    def watch(info: rl.krylov.IterationInfo) -> bool:
        seen.append(info)
        return info.iteration == 7

    res = rl.krylov.cg(A, b, rtol=1e-10, callback=watch)
    assert [i.iteration for i in seen] == list(range(1, 8))
    assert res.stopped and not res.converged and res.iterations == 7
    np.testing.assert_array_equal(seen[-1].x, res.x)
    assert seen[-1].residual_norm == res.residual_norm
    # The residual norm reported is the true residual up to rounding.
    assert seen[-1].residual_norm == pytest.approx(np.linalg.norm(b - A @ seen[-1].x), rel=1e-8)
    # A callback that returns None never stops.
    full = rl.krylov.cg(A, b, rtol=1e-10, callback=lambda info: None)
    assert full.converged and not full.stopped


def test_callback_exception_propagates() -> None:
    def boom(info: Any) -> bool:
        raise KeyError("from the callback")

    with pytest.raises(KeyError, match="from the callback"):
        rl.krylov.cg(poisson2d(5), np.ones(25), callback=boom)


def test_maxiter_gives_convergence_warning() -> None:
    A = poisson2d(30)
    with pytest.warns(rl.ConvergenceWarning, match="did not converge in 5 iterations"):
        res = rl.krylov.cg(A, np.ones(A.shape[0]), rtol=1e-12, maxiter=5)
    assert not res.converged and res.iterations == 5 and res.info == 5


def test_indefinite_matrix_breaks_down_with_warning() -> None:
    A = sp.diags(np.r_[np.ones(5), -np.ones(5)]).tocsr()
    b = np.r_[np.ones(5), 3 * np.ones(5)]
    with pytest.warns(rl.ConvergenceWarning, match="broke down.*not positive definite"):
        res = rl.krylov.cg(A, b)
    assert res.info < 0 and not res.converged
    assert np.all(np.isfinite(res.x))
    assert res.residual_history.shape == (res.iterations + 1,)


@pytest.mark.parametrize("form", ["diagonals", "rows"])
def test_threads_give_identical_results(form: str) -> None:
    # Several row blocks; by diagonals, and by rows (entries not in canonical
    # order). On two threads the two columns run side by side, on one after
    # each other: the same bits.
    A = poisson2d(120) if form == "diagonals" else _unsorted_copy(poisson2d(120))
    B = np.random.default_rng(5).standard_normal((A.shape[0], 2))
    with rl.num_threads(1):
        one = rl.krylov.cg(A, B, rtol=1e-8)
    with rl.num_threads(2):
        two = rl.krylov.cg(A, B, rtol=1e-8)
    assert np.array_equal(one.x, two.x) and np.array_equal(one.iterations, two.iterations)


def _unsorted_copy(A: sp.csr_matrix) -> sp.csr_matrix:
    """The same matrix with each row's entries in reverse order (still valid
    CSR, but not canonical): solvers then take the general row kernel."""
    indices, data = A.indices.copy(), A.data.copy()
    for i in range(A.shape[0]):
        lo, hi = A.indptr[i], A.indptr[i + 1]
        indices[lo:hi] = indices[lo:hi][::-1]
        data[lo:hi] = data[lo:hi][::-1]
    out = sp.csr_matrix((data, indices, A.indptr.copy()), shape=A.shape)
    assert not out.has_sorted_indices
    return out


@pytest.mark.parametrize("solver", ["cg", "minres", "gmres", "bicgstab"])
def test_banded_matrices_take_the_diagonal_kernel_and_agree_with_rows(solver: str) -> None:
    # A canonical banded CSR matrix is multiplied by diagonals, the same
    # matrix with unsorted rows by the row kernel: the solves must agree.
    A = convection_diffusion(40) if solver in ("gmres", "bicgstab") else poisson2d(70)
    rng = np.random.default_rng(11)
    B = rng.standard_normal((A.shape[0], 2))
    run = getattr(rl.krylov, solver)
    banded, rows = run(A, B, rtol=1e-10), run(_unsorted_copy(A), B, rtol=1e-10)
    assert np.all(banded.converged) and np.all(rows.converged)
    assert np.abs(banded.iterations - rows.iterations).max() <= 2
    assert np.allclose(banded.x, rows.x, rtol=0, atol=1e-8 * np.abs(rows.x).max())
    assert np.allclose(A @ banded.x, B, atol=1e-8 * np.abs(B).max() * 10)


@pytest.mark.parametrize("method", ["lsqr", "lsmr"])
def test_sparse_least_squares_threads_and_formats_agree(method: str) -> None:
    # Short rows of varying length (some empty) take the sliced row kernel:
    # one and two threads must give identical iterates, and CSR, CSC and a
    # CSR with unsorted rows the same solution as scipy.
    rng = np.random.default_rng(21)
    m, n = 30_000, 2_000
    A = sp.random(m, n, density=4.0 / n, random_state=rng, format="csr") + sp.eye(m, n)
    A = A.tocsr()
    b = rng.standard_normal(m)
    run = getattr(rl.krylov, method)
    with rl.num_threads(1):
        one = run(A, b, atol=1e-10, btol=1e-10)
    with rl.num_threads(2):
        two = run(A, b, atol=1e-10, btol=1e-10)
    assert np.array_equal(one.x, two.x) and one.iterations == two.iterations
    ref = getattr(spla, method)(A, b, atol=1e-10, btol=1e-10)[0]
    for variant in (A, A.tocsc(), _unsorted_copy(A)):
        res = run(variant, b, atol=1e-10, btol=1e-10)
        assert np.linalg.norm(res.x - ref) <= 1e-8 * np.linalg.norm(ref)


def test_repr_is_readable() -> None:
    res = rl.krylov.cg(poisson2d(5), np.ones(25))
    text = repr(res)
    assert "converged=True" in text and "iterations=" in text and "(25,)" in text


# --- bad input -----------------------------------------------------------------------


def test_bad_input_raises() -> None:
    A = poisson2d(5)
    b = np.ones(25)
    with pytest.raises(ValueError, match="square"):
        rl.krylov.cg(sp.random(25, 20, density=0.2, format="csr", random_state=0), b)
    with pytest.raises(ValueError, match=r"b has shape \(24,\)"):
        rl.krylov.cg(A, np.ones(24))
    with pytest.raises(ValueError, match="b contains NaN"):
        rl.krylov.cg(A, np.r_[np.nan, np.ones(24)])
    bad = A.copy()
    bad.data[3] = np.inf
    with pytest.raises(ValueError, match="A contains NaN"):
        rl.krylov.cg(bad, b)
    dense = A.toarray()
    dense[0, 0] = np.nan
    with pytest.raises(ValueError, match="A contains NaN"):
        rl.krylov.cg(dense, b)
    with pytest.raises(ValueError, match=r"M has shape \(24, 24\)"):
        rl.krylov.cg(A, b, M=sp.identity(24))
    with pytest.raises(ValueError, match="x0 has shape"):
        rl.krylov.cg(A, b, x0=np.ones(3))
    with pytest.raises(ValueError, match=r"returned an array of shape \(3, 1\)"):
        rl.krylov.cg(lambda x: np.ones(3), b)
    with pytest.raises(ValueError, match=r"M returned an array of shape"):
        rl.krylov.cg(A, b, M=lambda x: np.ones(2))
    with pytest.raises(TypeError, match="complex"):
        rl.krylov.cg(A.astype(complex), b)
    with pytest.raises(TypeError, match="complex"):
        rl.krylov.cg(A, b.astype(complex))
    with pytest.raises(ValueError, match="rtol"):
        rl.krylov.cg(A, b, rtol=-1.0)
    with pytest.raises(ValueError, match="maxiter"):
        rl.krylov.cg(A, b, maxiter=0)
    with pytest.raises(ValueError, match="b must be 1-D or 2-D"):
        rl.krylov.cg(A, np.ones((25, 1, 1)))


def test_no_warning_on_success() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rl.krylov.cg(poisson2d(10), np.ones(100))


# --- LSQR --------------------------------------------------------------------------


def _rectangular(kind: str) -> tuple[Any, np.ndarray]:
    A = sp.random(600, 80, density=0.05, format="csr", random_state=11) + sp.eye(600, 80)
    dense = A.toarray()
    if kind == "csr":
        return A, dense
    if kind == "csc":
        return A.tocsc(), dense
    if kind == "dense":
        return dense, dense
    if kind == "fortran":
        return np.asfortranarray(dense), dense
    return spla.aslinearoperator(A), dense


LEAST_SQUARES = {
    # name: (scipy's function, index of its residual norm in the returned tuple)
    "lsqr": (spla.lsqr, 4),
    "lsmr": (spla.lsmr, 3),
}


@pytest.mark.parametrize("method", sorted(LEAST_SQUARES))
@pytest.mark.parametrize("kind", ["csr", "csc", "dense", "fortran", "operator"])
@pytest.mark.parametrize("damp", [0.0, 0.3])
def test_least_squares_match_scipy(method: str, kind: str, damp: float) -> None:
    A, dense = _rectangular(kind)
    b = np.random.default_rng(12).standard_normal(600)
    res = getattr(rl.krylov, method)(A, b, damp=damp, atol=1e-10, btol=1e-10)
    reference, residual_at = LEAST_SQUARES[method]
    ref = reference(sp.csr_matrix(dense), b, damp=damp, atol=1e-10, btol=1e-10)
    assert res.iterations == ref[2] and res.info == ref[1] and res.converged
    np.testing.assert_allclose(res.x, ref[0], rtol=1e-8, atol=1e-10)
    assert res.residual_norm == pytest.approx(ref[residual_at], rel=1e-10)
    # The normal equations of the damped problem hold.
    normal = dense.T @ (dense @ res.x - b) + damp**2 * res.x
    assert np.linalg.norm(normal) <= 1e-6 * np.linalg.norm(dense.T @ b)


@pytest.mark.parametrize("method", sorted(LEAST_SQUARES))
def test_underdetermined_gives_minimum_norm(method: str) -> None:
    A = np.random.default_rng(13).standard_normal((30, 90))
    b = np.random.default_rng(14).standard_normal(30)
    res = getattr(rl.krylov, method)(A, b, atol=1e-12, btol=1e-12)
    np.testing.assert_allclose(res.x, np.linalg.pinv(A) @ b, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("method", sorted(LEAST_SQUARES))
def test_least_squares_several_right_hand_sides_and_float32(method: str) -> None:
    solve = getattr(rl.krylov, method)
    A, dense = _rectangular("csr")
    B = np.random.default_rng(15).standard_normal((600, 3))
    for res in _both_paths(solve, A, B, atol=1e-10, btol=1e-10):
        for c in range(3):
            one = solve(A, B[:, c], atol=1e-10, btol=1e-10)
            assert one.iterations == res.iterations[c]
            # One column may run the sliced (SELL) kernel, several the CSR kernel
            # in other row groups: the partial sums round differently, and after
            # ~80 iterations the columns agree to about the solve's tolerance
            # times cond(A), not bitwise (measured up to 4e-9 relative).
            np.testing.assert_allclose(res.x[:, c], one.x, rtol=1e-7, atol=1e-10)
    res32 = solve(A.astype(np.float32), B[:, 0].astype(np.float32), atol=1e-5, btol=1e-5)
    assert res32.x.dtype == np.float32
    np.testing.assert_allclose(res32.x, res.x[:, 0], rtol=0, atol=1e-3 * np.abs(res.x[:, 0]).max())


@pytest.mark.parametrize("kind", ["csr", "csc", "dense", "fortran", "operator"])
@pytest.mark.parametrize("method", sorted(LEAST_SQUARES))
def test_least_squares_from_x0_match_scipy_per_column(method: str, kind: str) -> None:
    # The start b - A x0 and its transpose product come from one pass where
    # the operator fuses them; every column must follow scipy's iteration
    # from its own x0, as separate solves.
    solve = getattr(rl.krylov, method)
    reference = LEAST_SQUARES[method][0]
    A, dense = _rectangular(kind)
    rng = np.random.default_rng(21)
    B = rng.standard_normal((600, 3))
    X0 = rng.standard_normal((80, 3))
    for res in _both_paths(solve, A, B, x0=X0, atol=1e-10, btol=1e-10):
        for c in range(3):
            ref = reference(dense, B[:, c], x0=X0[:, c], atol=1e-10, btol=1e-10)
            scale = np.abs(ref[0]).max()
            np.testing.assert_allclose(res.x[:, c], ref[0], rtol=0, atol=1e-8 * scale)
            assert abs(int(res.iterations[c]) - int(ref[2])) <= 1


@pytest.mark.parametrize("method", sorted(LEAST_SQUARES))
def test_least_squares_x0_maxiter_and_callback(method: str) -> None:
    solve = getattr(rl.krylov, method)
    A, dense = _rectangular("csr")
    b = dense @ np.ones(80)
    warm = solve(A, b, x0=np.ones(80) + 1e-9, atol=1e-8, btol=1e-8)
    assert warm.iterations <= 2 and warm.converged
    with pytest.warns(rl.ConvergenceWarning, match="did not converge in 3 iterations"):
        short = solve(A, b, maxiter=3)
    assert not short.converged and short.info == 7 and short.iterations == 3
    steps: list[int] = []

    def watch(info: rl.krylov.IterationInfo) -> bool:
        steps.append(info.iteration)
        return info.iteration == 4

    stopped = solve(A, b, callback=watch)
    assert stopped.stopped and stopped.iterations == 4 and steps == [1, 2, 3, 4]
    assert not stopped.converged and stopped.info == 7


@pytest.mark.parametrize("method", sorted(LEAST_SQUARES))
def test_least_squares_bad_input(method: str) -> None:
    solve = getattr(rl.krylov, method)
    A, dense = _rectangular("csr")
    with pytest.raises(ValueError, match=r"b has shape \(80,\)"):
        solve(A, np.ones(80))
    with pytest.raises(ValueError, match="x0 has shape"):
        solve(A, np.ones(600), x0=np.ones(600))
    with pytest.raises(ValueError, match="damp"):
        solve(A, np.ones(600), damp=-1.0)
    no_transpose = spla.LinearOperator((600, 80), matvec=lambda x: dense @ x, dtype=np.float64)
    with pytest.raises(TypeError, match="rmatvec"):
        solve(no_transpose, np.ones(600))
    with pytest.raises(ValueError, match="b contains NaN"):
        solve(A, np.full(600, np.nan))


# --- BiCGSTAB ------------------------------------------------------------------------


def convection_diffusion(k: int, wind: float = 0.6) -> sp.csr_matrix:
    """Upwinded 2-D convection-diffusion on a k x k grid: nonsymmetric."""
    t = sp.diags([-1.0 - wind, 2.0 + wind, -1.0], [-1, 0, 1], shape=(k, k))
    eye = sp.identity(k)
    return (sp.kron(t, eye) + sp.kron(eye, t)).tocsr()


def scipy_bicgstab(A: Any, b: np.ndarray, rtol: float, M: Any = None) -> tuple[np.ndarray, int]:
    x, info = spla.bicgstab(A, b, rtol=rtol, atol=0.0, M=M)
    assert info == 0
    return x, info


@pytest.mark.parametrize(
    "make",
    [
        lambda: (convection_diffusion(40), None),
        lambda: (convection_diffusion(30).tocsc(), None),
        lambda: (convection_diffusion(25).toarray(), None),
        lambda: (spla.aslinearoperator(convection_diffusion(25)), None),
        lambda: (convection_diffusion(40), sp.diags(1.0 / convection_diffusion(40).diagonal())),
        lambda: (
            convection_diffusion(40),
            spla.LinearOperator(
                (1600, 1600), matvec=spla.spilu(convection_diffusion(40).tocsc()).solve
            ),
        ),
    ],
    ids=["csr", "csc", "dense", "operator", "jacobi", "ilu"],
)
def test_bicgstab_matches_scipy(make: Callable[[], Any]) -> None:
    A, M = make()
    n = A.shape[0]
    b = np.random.default_rng(21).standard_normal(n)
    res = rl.krylov.bicgstab(A, b, rtol=1e-9, M=M)
    x_ref, _ = scipy_bicgstab(A, b, 1e-9, M)
    assert res.converged and res.info == 0
    dense = _dense(A, n)
    assert np.linalg.norm(dense @ res.x - b) <= 1e-8 * np.linalg.norm(b)
    np.testing.assert_allclose(res.x, x_ref, rtol=0, atol=1e-6 * np.abs(x_ref).max())


def test_bicgstab_several_right_hand_sides() -> None:
    A = convection_diffusion(30)
    B = np.random.default_rng(22).standard_normal((900, 3))
    for res in _both_paths(rl.krylov.bicgstab, A, B, rtol=1e-9):
        for c in range(3):
            one = rl.krylov.bicgstab(A, B[:, c], rtol=1e-9)
            assert one.iterations == res.iterations[c]
            np.testing.assert_allclose(res.x[:, c], one.x, rtol=1e-9, atol=1e-12)


def test_bicgstab_breakdown_is_reported() -> None:
    A = np.array([[0.0, 1.0], [-1.0, 0.0]])  # r0 . A r0 = 0
    with pytest.warns(rl.ConvergenceWarning, match="broke down.*vanished"):
        res = rl.krylov.bicgstab(A, np.array([1.0, 0.0]))
    assert res.info == -11 and not res.converged


def test_bicgstab_maxiter_and_callback() -> None:
    A = convection_diffusion(30)
    b = np.ones(900)
    with pytest.warns(rl.ConvergenceWarning, match="did not converge in 4 iterations"):
        res = rl.krylov.bicgstab(A, b, rtol=1e-12, maxiter=4)
    assert res.info == 4 and not res.converged
    stop = rl.krylov.bicgstab(A, b, rtol=1e-12, callback=lambda info: info.iteration == 3)
    assert stop.stopped and stop.iterations == 3
    with pytest.raises(ValueError, match="square"):
        rl.krylov.bicgstab(np.ones((3, 2)), np.ones(3))


# --- GMRES / FGMRES ------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: (convection_diffusion(40), None),
        lambda: (convection_diffusion(30).toarray(), None),
        lambda: (spla.aslinearoperator(convection_diffusion(30)), None),
        lambda: (convection_diffusion(40), sp.diags(1.0 / convection_diffusion(40).diagonal())),
    ],
    ids=["csr", "dense", "operator", "jacobi"],
)
@pytest.mark.parametrize("restart", [10, 30])
def test_gmres_matches_scipy(make: Callable[[], Any], restart: int) -> None:
    A, M = make()
    n = A.shape[0]
    b = np.random.default_rng(31).standard_normal(n)
    res = rl.krylov.gmres(A, b, rtol=1e-9, restart=restart, M=M)
    x_ref, info = spla.gmres(A, b, rtol=1e-10, atol=0.0, restart=restart, M=M, maxiter=10 * n)
    assert info == 0 and res.converged and res.info == 0
    dense = _dense(A, n)
    true = np.linalg.norm(dense @ res.x - b)
    assert true <= 1.01e-9 * np.linalg.norm(b)
    assert res.residual_norm == pytest.approx(true, rel=1e-3)  # recomputed at the restart
    np.testing.assert_allclose(res.x, x_ref, rtol=0, atol=1e-6 * np.abs(x_ref).max())


def test_fgmres_handles_a_changing_preconditioner() -> None:
    A = convection_diffusion(30)
    d = A.diagonal()
    rng = np.random.default_rng(32)

    def noisy_jacobi(x: np.ndarray) -> np.ndarray:
        # A different preconditioner at every call, as a learned one may be.
        return x / d * (1.0 + 0.3 * rng.standard_normal(x.shape))

    M = spla.LinearOperator(A.shape, matvec=noisy_jacobi, dtype=np.float64)
    b = np.ones(A.shape[0])
    res = rl.krylov.gmres(A, b, rtol=1e-8, M=M, flexible=True, maxiter=2000)
    assert res.converged
    assert np.linalg.norm(A @ res.x - b) <= 1.01e-8 * np.linalg.norm(b)


def test_gmres_several_right_hand_sides_and_callback() -> None:
    A = convection_diffusion(30)
    B = np.random.default_rng(33).standard_normal((900, 3))
    for res in _both_paths(rl.krylov.gmres, A, B, rtol=1e-9, restart=20):
        for c in range(3):
            one = rl.krylov.gmres(A, B[:, c], rtol=1e-9, restart=20)
            assert one.iterations == res.iterations[c]
            np.testing.assert_allclose(res.x[:, c], one.x, rtol=1e-8, atol=1e-11)
    seen: list[rl.krylov.IterationInfo] = []

    def watch(info: rl.krylov.IterationInfo) -> bool:
        seen.append(info)
        return info.iteration == 5

    stop = rl.krylov.gmres(A, B[:, 0], rtol=1e-12, callback=watch)
    assert stop.stopped and stop.iterations == 5 and len(seen) == 5
    # The callback's x is the GMRES iterate: its residual is the reported estimate.
    true = np.linalg.norm(A @ seen[-1].x - B[:, 0])
    assert seen[-1].residual_norm == pytest.approx(true, rel=1e-6)
    with pytest.warns(rl.ConvergenceWarning, match="did not converge in 7 iterations"):
        short = rl.krylov.gmres(A, B[:, 0], rtol=1e-12, maxiter=7)
    assert short.info == 7 and not short.converged
    with pytest.raises(ValueError, match="restart"):
        rl.krylov.gmres(A, B[:, 0], restart=0)


# --- MINRES --------------------------------------------------------------------------


def indefinite(k: int) -> sp.csr_matrix:
    return (poisson2d(k) - 0.5 * sp.identity(k * k)).tocsr()


@pytest.mark.parametrize(
    "make",
    [
        lambda: (indefinite(30), None),
        lambda: (indefinite(20).toarray(), None),
        lambda: (spla.aslinearoperator(indefinite(20)), None),
        lambda: (poisson2d(30), sp.diags(1.0 / poisson2d(30).diagonal())),
    ],
    ids=["indefinite_csr", "indefinite_dense", "operator", "spd_jacobi"],
)
def test_minres_matches_scipy(make: Callable[[], Any]) -> None:
    A, M = make()
    n = A.shape[0]
    b = np.random.default_rng(41).standard_normal(n)
    res = rl.krylov.minres(A, b, rtol=1e-10, M=M)
    x_ref, info = spla.minres(A, b, rtol=1e-12, M=M)
    assert res.converged and res.info == 0
    dense = _dense(A, n)
    assert np.linalg.norm(dense @ res.x - b) <= 1e-8 * np.linalg.norm(b)
    np.testing.assert_allclose(res.x, x_ref, rtol=0, atol=1e-7 * np.abs(x_ref).max())


def test_minres_shift_and_several_right_hand_sides() -> None:
    A = poisson2d(20)
    B = np.random.default_rng(42).standard_normal((400, 3))
    shifted = A.toarray() - 0.7 * np.eye(400)
    for res in _both_paths(rl.krylov.minres, A, B, rtol=1e-10, shift=0.7):
        np.testing.assert_allclose(shifted @ res.x, B, atol=1e-8 * np.abs(B).max())
        for c in range(3):
            one = rl.krylov.minres(A, B[:, c], rtol=1e-10, shift=0.7)
            # Block kernels sum in the same order for every column count: identical bits.
            assert one.iterations == res.iterations[c]
            assert np.array_equal(res.x[:, c], one.x)


def test_minres_indefinite_preconditioner_is_reported() -> None:
    A = poisson2d(10)
    M = sp.diags(np.r_[np.ones(50), -np.ones(50)])
    with pytest.warns(rl.ConvergenceWarning, match="M is not positive definite"):
        res = rl.krylov.minres(A, np.ones(100), M=M)
    assert res.info == -9 and not res.converged
