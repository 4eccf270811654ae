# Type stubs of the Rust extension module randla._core (checked by mypy.stubtest).
from collections.abc import Callable
from typing import Any, final

import numpy as np
import numpy.typing as npt

__all__ = [
    "SketchCore",
    "__version__",
    "_panic_for_tests",
    "completion_update",
    "delta_rule",
    "dpp_check_orthonormal",
    "dpp_projection",
    "dpp_dual_eigen",
    "dpp_spectral",
    "householder_apply",
    "householder_wy",
    "monarch_apply",
    "monarch_project",
    "get_num_threads",
    "krylov_solve",
    "leverage_exact",
    "leverage_sketched",
    "lewis_weights",
    "lowrank_nystrom",
    "lp_regression",
    "lowrank_range_finder",
    "lowrank_svd",
    "lstsq_solve",
    "philox4x32_10_block",
    "philox_blocks",
    "random_draws",
    "sample_indices",
    "set_num_threads",
    "simd_level",
]

__version__: str

def set_num_threads(n: int) -> None: ...
def get_num_threads() -> int: ...
def simd_level() -> str: ...
def _panic_for_tests() -> None: ...

@final
class SketchCore:
    def __new__(
        cls,
        kind: str,
        k: int,
        n: int,
        seed: int,
        *,
        nnz_per_col: int = 8,
        density: float = 1.0,
        p: npt.NDArray[np.float64] | None = None,
        replace: bool = True,
    ) -> SketchCore: ...
    @property
    def kind(self) -> str: ...
    @property
    def shape(self) -> tuple[int, int]: ...
    def apply(self, a: npt.NDArray[np.floating], out: npt.NDArray[np.floating]) -> None: ...
    def apply_transpose(
        self, b: npt.NDArray[np.floating], out: npt.NDArray[np.floating]
    ) -> None: ...
    def apply_sparse(
        self,
        format: str,
        shape: tuple[int, int],
        indptr: npt.NDArray[np.integer],
        indices: npt.NDArray[np.integer],
        data: npt.NDArray[np.floating],
        out: npt.NDArray[np.floating],
    ) -> None: ...
    def to_dense(self, out: npt.NDArray[np.floating]) -> None: ...

def philox4x32_10_block(counter: list[int], key: list[int]) -> list[int]: ...
def philox_blocks(seed: int, tag: int, start: int, count: int) -> npt.NDArray[np.uint32]: ...
def random_draws(
    distribution: str, seed: int, tag: int, start: int, count: int
) -> npt.NDArray[np.float64]: ...
def krylov_solve(
    method: str,
    a: tuple[Any, ...],
    b: npt.NDArray[np.floating],
    x0: npt.NDArray[np.floating] | None,
    precond: tuple[Any, ...] | None,
    maxiter: int,
    callback: Callable[[int, npt.NDArray[np.floating], npt.NDArray[np.float64]], bool] | None,
    *,
    rtol: float = 0.0,
    atol: float = 0.0,
    damp: float = 0.0,
    btol: float = 0.0,
    conlim: float = 0.0,
    restart: int = 30,
    flexible: bool = False,
    shift: float = 0.0,
) -> tuple[
    npt.NDArray[np.floating],
    list[bool],
    list[int],
    list[float],
    npt.NDArray[np.float64],
    bool,
    list[int],
]: ...
def lstsq_solve(
    method: str,
    a: tuple[Any, ...],
    b: npt.NDArray[np.floating],
    sa: npt.NDArray[np.floating] | None = None,
    sb: npt.NDArray[np.floating] | None = None,
    *,
    rtol: float = 1e-12,
    maxiter: int = 1000,
) -> tuple[npt.NDArray[np.floating], list[float], int, list[bool], int, str | None]: ...
def lowrank_range_finder(
    a: tuple[Any, ...],
    omega: npt.NDArray[np.floating],
    n_iter: int,
    center: bool = False,
) -> npt.NDArray[np.floating]: ...
def lowrank_svd(
    a: tuple[Any, ...],
    omega: npt.NDArray[np.floating],
    k: int,
    n_iter: int,
    center: bool = False,
    block_krylov: bool = False,
) -> tuple[npt.NDArray[np.floating], npt.NDArray[np.floating], npt.NDArray[np.floating]]: ...
def lowrank_nystrom(
    a: tuple[Any, ...],
    omega: npt.NDArray[np.floating],
    k: int,
) -> tuple[npt.NDArray[np.floating], npt.NDArray[np.floating]]: ...
def leverage_exact(a: npt.NDArray[np.floating]) -> tuple[npt.NDArray[np.float64], int]: ...
def leverage_sketched(
    a: tuple[Any, ...],
    sa: npt.NDArray[np.floating],
    jl: npt.NDArray[np.floating] | None = None,
    rounding: float = 0.0,
) -> tuple[npt.NDArray[np.float64], int]: ...
def lewis_weights(
    a: npt.NDArray[np.floating],
    p: float,
    tol: float,
    maxiter: int,
    method: str,
    sketch_rows: int,
    jl_columns: int,
    seed: int,
) -> tuple[npt.NDArray[np.float64], int, bool, float]: ...
def sample_indices(
    seed: int, k: int, n: int, p: npt.NDArray[np.float64] | None, replace: bool
) -> npt.NDArray[np.int64]: ...
def lp_regression(
    a: npt.NDArray[np.floating],
    b: npt.NDArray[np.floating],
    c: npt.NDArray[np.float64],
    p: float,
    tol: float,
    maxiter: int,
) -> tuple[npt.NDArray[np.floating], float, int, bool]: ...
def monarch_apply(
    x: npt.NDArray[np.floating],
    w1: npt.NDArray[np.floating],
    w2: npt.NDArray[np.floating],
    out: npt.NDArray[np.floating],
    transpose: bool = False,
    name: str = "x",
) -> None: ...
def monarch_project(
    m: npt.NDArray[np.floating], nblocks: int
) -> tuple[npt.NDArray[np.floating], npt.NDArray[np.floating]]: ...
def householder_apply(
    v: npt.NDArray[np.floating],
    tau: npt.NDArray[np.floating],
    c: npt.NDArray[np.floating],
    side: str,
    transpose: bool,
) -> None: ...
def householder_wy(
    v: npt.NDArray[np.floating], tau: npt.NDArray[np.floating]
) -> npt.NDArray[np.floating]: ...
def delta_rule(
    q: npt.NDArray[np.floating],
    k: npt.NDArray[np.floating],
    v: npt.NDArray[np.floating],
    beta: npt.NDArray[np.floating],
    gate: npt.NDArray[np.floating] | None,
    state: npt.NDArray[np.floating],
    out: npt.NDArray[np.floating],
    n_h: int,
    chunk_size: int,
) -> None: ...
def dpp_check_orthonormal(v: npt.NDArray[np.float64], tol: float, probes: int) -> None: ...
def dpp_projection(
    v: npt.NDArray[np.float64], n_samples: int, seed: int, check_tol: float | None = None
) -> npt.NDArray[np.int64]: ...
def dpp_dual_eigen(
    phi: npt.NDArray[np.float64],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]: ...
def dpp_spectral(
    vectors: npt.NDArray[np.float64],
    lambdas: npt.NDArray[np.float64],
    k: int | None,
    n_samples: int,
    seed: int,
    left: npt.NDArray[np.float64] | None = None,
) -> list[npt.NDArray[np.int64]]: ...
def completion_update(
    format: str,
    shape: tuple[int, int],
    indptr: npt.NDArray[np.integer],
    indices: npt.NDArray[np.integer],
    data: npt.NDArray[np.float64],
    fixed: npt.NDArray[np.float64],
    x: npt.NDArray[np.float64],
    reg: float,
    steps: int,
) -> float: ...
