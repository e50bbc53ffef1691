"""Closed-form matting, optionally pulled towards a prior: the offline backend's alpha solver.

Pure numpy / scipy (pymatting's conjugate gradients and incomplete Cholesky); no HTTP, no
torch. The energy minimised over the unknown pixels ``u`` (the others fixed) is::

    alpha^T L alpha + sum_u c_u (alpha_u - p_u)^2,   c_u = weight * (floor + |2 p_u - 1|^power)

* ``L``: the closed-form matting Laplacian of Levin, Lischinski & Weiss (2008, "A Closed-Form
  Solution to Natural Image Matting"): for every 3x3 window ``w`` with colour mean ``mu_w``
  and covariance ``S_w``, ``L_ij += delta_ij - (1 + (I_i - mu_w)^T (S_w + eps/9 I)^-1
  (I_j - mu_w)) / 9``. :func:`matting_laplacian` builds it only for the windows that touch
  an unknown pixel and keeps only the rows of unknown pixels, so its cost follows the band,
  not the image (pymatting's ``cf_laplacian`` allocates 25 entries for every pixel of the
  image first). Those rows equal pymatting's exactly (a test checks it).
* the data term (only with a prior ``p``): the closed-form matting with a prior of the
  issue's formula ``a'La + lambda (a - p)' D (a - p)``, ``D`` diagonal. ``D`` trusts the prior
  where it is sure (near 0 or 1: ``|2p - 1|^power``) and hardly where it hesitates (near
  0.5), with a small ``floor`` everywhere so that the system stays well posed. Without a
  prior (a user's trimap) this is exactly closed-form matting.

The minimiser solves ``(L_uu + C) alpha_u = C p_u - L_uk alpha_k``; ``L_uu + C`` is symmetric
positive definite once one pixel is known or ``C > 0``.

* With a prior (the refinement), the system is solved on its 5x5 stencil, compiled:
  a zero fill-in incomplete Cholesky factor (the pattern of the system itself, a few ms)
  and conjugate gradients started from the prior (about 40 iterations at 1 MP, 0.7x the
  time of pymatting's thresholded factor and closer to the exact solution; issue 23,
  docs/photo_speed.md). Should the factor break down at every shift, or the iterations not
  converge, pymatting's path below takes over. A large band (a photo's, from
  :data:`BLOCKS_FROM_UNKNOWNS` unknowns) gets a factor in two blocks of rows, the image's
  upper and lower halves, so that a request alone on the machine solves on two cores: the
  windows, the factor and each step of the iterations run block by block on numba's
  threads (1 MP: 4 more iterations, the solve 1.6x faster). The kernels are compiled twice,
  parallel and serial, with the same arithmetic: a photo gets the same alpha alone or
  beside other requests. The solve streams its arrays from memory once per iteration, so
  the neighbour table is int32.
* Without a prior (a user's trimap), or as that fallback: conjugate gradients with
  pymatting's thresholded incomplete Cholesky preconditioner, started from the prior when
  there is one; the factor discards entries below :data:`ICHOL_DISCARD` (pymatting's
  default, 1e-4, keeps twice the entries for one iteration fewer).
"""

from __future__ import annotations

import types
from collections.abc import Callable

import cv2
import numba
import numpy as np
import scipy.sparse

from trimap.encoding import FOREGROUND, UNKNOWN

#: 3x3 window offsets (dy, dx), row-major.
_OFFSETS = np.array([(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)])
#: The 25 offsets (dy, dx) of the pixels that share a 3x3 window with a pixel, row-major
#: (ascending flat index).
_STENCIL = np.array([(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)])



@numba.njit(cache=True, nogil=True)
def _accumulate_windows(image, cy, cx, row_of, epsilon, stencil, lo, hi):  # pragma: no cover - numba
    """Add the closed-form Laplacian's contributions of the 3x3 windows centred at
    ``(cy[w], cx[w])``, ``lo <= w < hi``, to ``stencil[row, slot]`` of every unknown pixel
    (``row_of[pixel] >= 0``): for window pixels ``k``, ``l``:
    ``delta_kl - (1 + (I_k - mu)^T (S + eps/9)^-1 (I_l - mu)) / 9``.

    ``image`` ``H x W x 3`` float64; ``row_of`` flat ``H * W`` int32 (-1: known pixel);
    ``stencil`` ``nu x 25`` float64, slot ``(dy + 2) * 5 + (dx + 2)`` of the offset of ``l``
    from ``k``.
    """
    width = image.shape[1]
    c = np.empty((9, 3))
    for w in range(lo, hi):
        y0, x0 = cy[w] - 1, cx[w] - 1
        mean = np.zeros(3)
        for k in range(9):
            for ch in range(3):
                c[k, ch] = image[y0 + k // 3, x0 + k % 3, ch]
                mean[ch] += c[k, ch]
        for ch in range(3):
            mean[ch] /= 9.0
        for k in range(9):
            for ch in range(3):
                c[k, ch] -= mean[ch]
        s00 = s01 = s02 = s11 = s12 = s22 = 0.0
        for k in range(9):
            s00 += c[k, 0] * c[k, 0]
            s01 += c[k, 0] * c[k, 1]
            s02 += c[k, 0] * c[k, 2]
            s11 += c[k, 1] * c[k, 1]
            s12 += c[k, 1] * c[k, 2]
            s22 += c[k, 2] * c[k, 2]
        reg = epsilon / 9.0
        s00 = s00 / 9.0 + reg
        s01 /= 9.0
        s02 /= 9.0
        s11 = s11 / 9.0 + reg
        s12 /= 9.0
        s22 = s22 / 9.0 + reg
        # inverse of the symmetric 3x3 covariance by cofactors
        i00 = s11 * s22 - s12 * s12
        i01 = s02 * s12 - s01 * s22
        i02 = s01 * s12 - s02 * s11
        i11 = s00 * s22 - s02 * s02
        i12 = s01 * s02 - s00 * s12
        i22 = s00 * s11 - s01 * s01
        det = s00 * i00 + s01 * i01 + s02 * i02
        i00 /= det
        i01 /= det
        i02 /= det
        i11 /= det
        i12 /= det
        i22 /= det
        for k in range(9):
            row = row_of[(y0 + k // 3) * width + x0 + k % 3]
            if row < 0:
                continue
            a0 = i00 * c[k, 0] + i01 * c[k, 1] + i02 * c[k, 2]
            a1 = i01 * c[k, 0] + i11 * c[k, 1] + i12 * c[k, 2]
            a2 = i02 * c[k, 0] + i12 * c[k, 1] + i22 * c[k, 2]
            for m in range(9):
                value = -(1.0 + a0 * c[m, 0] + a1 * c[m, 1] + a2 * c[m, 2]) / 9.0
                if m == k:
                    value += 1.0
                slot = (m // 3 - k // 3 + 2) * 5 + (m % 3 - k % 3 + 2)
                stencil[row, slot] += value


def _accumulate_halves(image, cy, cx, row_of, epsilon, stencil, split):  # pragma: no cover - numba
    """:func:`_accumulate_windows` of all the centres (``cy`` ascending) in three parts: the
    windows before ``split[0]`` and those from ``split[1]`` on, side by side (their centres
    lie 3 rows or more apart, so they never add to the same pixel), then those between. The
    same order of additions on one thread or two."""
    for part in numba.prange(2):
        lo = 0 if part == 0 else split[1]
        hi = split[0] if part == 0 else cy.shape[0]
        _accumulate_windows(image, cy, cx, row_of, epsilon, stencil, lo, hi)
    _accumulate_windows(image, cy, cx, row_of, epsilon, stencil, split[0], split[1])


def matting_laplacian(
    image: np.ndarray, unknown: np.ndarray, epsilon: float = 1e-7
) -> tuple[scipy.sparse.csr_matrix, scipy.sparse.csr_matrix, np.ndarray, np.ndarray]:
    """The rows of the unknown pixels of the closed-form matting Laplacian.

    Only the 3x3 windows that touch an unknown pixel are built (centred one pixel or more
    away from the border, as in pymatting). A pixel is coupled to the 25 pixels within 2 px
    of it (those that share a window with it): each window's 81 contributions are summed
    straight into those 25 "stencil" slots of the unknown rows (:func:`_accumulate_windows`,
    one pass, compiled by numba), so the sparse blocks come out in order, without sorting or
    summing duplicates.

    Args:
        image: ``H x W x 3`` float64 RGB in ``[0, 1]``, ``H, W >= 3``.
        unknown: ``H x W`` bool.
        epsilon: the regularisation of the window covariances.

    Returns:
        ``(L_uu, L_uk, unknown_idx, known_idx)``: ``L_uu`` the ``nu x nu`` block between the
        unknown pixels (symmetric), ``L_uk`` the ``nu x nk`` block to the known pixels within
        2 px of them, and the flat indices (``y * W + x``, ascending) of both sets.
    """
    stencil, neighbour, is_u, is_k, local, unknown_idx, known_idx = _band_stencil(image, unknown, epsilon)
    nu = len(unknown_idx)

    def block(where: np.ndarray, n_cols: int) -> scipy.sparse.csr_matrix:
        indptr = np.concatenate(([0], np.cumsum(where.sum(axis=1))))
        return scipy.sparse.csr_matrix((stencil[where], local[neighbour[where]], indptr),
                                       shape=(nu, n_cols))

    return block(is_u, nu), block(is_k, len(known_idx)), unknown_idx, known_idx


def _window_stencil(image: np.ndarray, unknown: np.ndarray, epsilon: float, parallel: bool = False
                    ) -> tuple[np.ndarray, np.ndarray]:
    """The unknown rows of the Laplacian as 25 stencil slots (see :func:`matting_laplacian`):
    ``(stencil nu x 25 float64, unknown_idx)``, the flat indices of the unknown pixels
    ascending. ``parallel``: the windows of the image's two halves on numba's threads."""
    flat_unknown = unknown.ravel()
    unknown_idx = np.flatnonzero(flat_unknown)
    nu = len(unknown_idx)
    centres = cv2.dilate(unknown.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    centres[0, :] = centres[-1, :] = False
    centres[:, 0] = centres[:, -1] = False
    cy, cx = np.nonzero(centres)
    stencil = np.zeros((nu, 25))
    row_of = np.full(flat_unknown.size, -1, dtype=np.int32)
    row_of[unknown_idx] = np.arange(nu)
    # the middle row of centres, and the two rows of centres around it whose windows reach
    # pixels of both halves
    middle = cy[len(cy) // 2] if len(cy) else 0
    split = np.searchsorted(cy, [middle - 1, middle + 1]).astype(np.int64)
    accumulate = _accumulate_parallel if parallel else _accumulate_serial
    accumulate(np.ascontiguousarray(image, dtype=np.float64), cy.astype(np.int64),
               cx.astype(np.int64), row_of, epsilon, stencil, split)
    return stencil, unknown_idx


def _band_stencil(image: np.ndarray, unknown: np.ndarray, epsilon: float):
    """The unknown rows of the Laplacian with their neighbours' places, for the sparse blocks
    of :func:`matting_laplacian`.

    Returns ``(stencil nu x 25 float64, neighbour nu x 25 int64 flat index (0 outside the
    image), is_u, is_k nu x 25 bool (the neighbour is unknown / known and inside), local
    H*W int64 (row of an unknown pixel, column of a known one, -1 elsewhere), unknown_idx,
    known_idx)``.
    """
    height, width = unknown.shape
    flat_unknown = unknown.ravel()
    stencil, unknown_idx = _window_stencil(image, unknown, epsilon)
    nu = len(unknown_idx)
    near = cv2.dilate(unknown.astype(np.uint8), np.ones((5, 5), np.uint8)).ravel() > 0
    known_idx = np.flatnonzero(near & ~flat_unknown)
    local = np.full(height * width, -1, dtype=np.int64)
    local[unknown_idx] = np.arange(nu)
    local[known_idx] = np.arange(len(known_idx))
    # the 25 neighbours of each unknown pixel, in ascending flat order
    uy, ux = np.divmod(unknown_idx, width)
    ny = uy[:, None] + _STENCIL[None, :, 0]
    nx = ux[:, None] + _STENCIL[None, :, 1]
    inside = (ny >= 0) & (ny < height) & (nx >= 0) & (nx < width)
    neighbour = np.where(inside, ny * width + nx, 0)
    is_u = inside & flat_unknown[neighbour]
    is_k = inside & ~flat_unknown[neighbour]
    return stencil, neighbour, is_u, is_k, local, unknown_idx, known_idx


def _lower_pairs() -> np.ndarray:
    """``pair[s, t]``, for stencil slots ``s, t < 12`` (the neighbours before a pixel in flat
    order): the slot of neighbour ``t`` seen from neighbour ``s`` when it comes before it and
    lies within 2 px, else -1 (``25 x 25`` int64; the other entries -1)."""
    pair = -np.ones((25, 25), np.int64)
    for s in range(12):
        for t in range(12):
            dy = _STENCIL[t, 0] - _STENCIL[s, 0]
            dx = _STENCIL[t, 1] - _STENCIL[s, 1]
            if abs(dy) <= 2 and abs(dx) <= 2 and (dy < 0 or (dy == 0 and dx < 0)):
                pair[s, t] = (dy + 2) * 5 + dx + 2
    return pair


_PAIRS = _lower_pairs()


@numba.njit(cache=True, nogil=True)
def _ic0_rows(system, nb, pair, shift, lower, diag, lo, hi):  # pragma: no cover - numba
    """Rows ``lo`` to ``hi`` of the zero fill-in incomplete Cholesky factor of the stencil
    ``system`` (``nu x 25``, slot 12 the diagonal; ``nb`` ``nu x 25`` the row of each unknown
    neighbour, -1 for none), its diagonal scaled by ``1 + shift``, the neighbours before
    ``lo`` (another block) left out: ``lower[i, s]`` (``nu x 12``) the factor's entry of the
    neighbour in slot ``s``, ``diag[i]`` its diagonal. False on a non-positive pivot."""
    for i in range(lo, hi):
        for s in range(12):
            k = nb[i, s]
            lower[i, s] = 0.0
            if k < lo:
                continue
            value = system[i, s]
            for t in range(12):
                u = pair[s, t]
                if u >= 0 and nb[i, t] >= lo and nb[k, u] >= lo:
                    value -= lower[i, t] * lower[k, u]
            lower[i, s] = value / diag[k]
        pivot = system[i, 12] * (1.0 + shift)
        for s in range(12):
            pivot -= lower[i, s] * lower[i, s]
        if not pivot > 0.0:
            return False
        diag[i] = np.sqrt(pivot)
    return True


def _ic0_blocks(system, nb, pair, shift, lower, diag, starts):  # pragma: no cover - numba
    """:func:`_ic0_rows` of each block of rows ``starts[b]`` to ``starts[b + 1]``, the
    blocks side by side: a block-diagonal factor, the couplings between blocks dropped.
    False when a pivot of any block is not positive."""
    blocks = starts.shape[0] - 1
    ok = np.zeros(blocks, np.bool_)
    for b in numba.prange(blocks):
        ok[b] = _ic0_rows(system, nb, pair, shift, lower, diag, starts[b], starts[b + 1])
    return ok.all()


@numba.njit(cache=True, nogil=True)
def _grid_rows(stencil, gpos, offsets, row_grid, alpha_grid, nb, rhs):  # pragma: no cover - numba
    """For each unknown pixel ``i`` at ``gpos[i]`` of the padded grid: ``nb[i, s]`` the row
    of its unknown neighbour in slot ``s`` (-1: known, or outside the image), and ``rhs[i]``
    minus the known neighbours' part of its row, ``-sum_s stencil[i, s] alpha_s``
    (``alpha_grid`` 1 on sure foreground, 0 elsewhere and on the padding)."""
    for i in range(gpos.shape[0]):
        g = gpos[i]
        value = 0.0
        for s in range(25):
            k = row_grid[g + offsets[s]]
            nb[i, s] = k
            if k < 0:
                value -= stencil[i, s] * alpha_grid[g + offsets[s]]
        rhs[i] = value


@numba.njit(cache=True, nogil=True)
def _stencil_product(system, nb, x, out, lo, hi):  # pragma: no cover - numba
    """Rows ``lo`` to ``hi`` of ``out = system x`` for the stencil ``system`` (``nu x 25``;
    ``nb`` the row of each unknown neighbour, -1 for none: a known neighbour's part is in
    the right-hand side); returns those rows' part of ``x . out``, summed in row order."""
    dot = 0.0
    for i in range(lo, hi):
        value = 0.0
        for s in range(25):
            k = nb[i, s]
            if k >= 0:
                value += system[i, s] * x[k]
        out[i] = value
        dot += x[i] * value
    return dot


def _ic0_cg(system, nb, lower, diag, starts, rhs, x, rtol, maxiter):  # pragma: no cover - numba
    """Conjugate gradients on the stencil ``system`` (neighbours ``nb``) preconditioned by the
    block factor ``lower``/``diag`` (:func:`_ic0_blocks`, the blocks ``starts``),
    from ``x`` (updated in place). Each step works block by block, the blocks side by side;
    the dot products are summed per block, then over the blocks in order, so the result is
    the same on one thread or several. Returns the iterations, -1 if ``maxiter`` did not
    reach ``|r| < rtol |rhs|``."""
    n = rhs.shape[0]
    blocks = starts.shape[0] - 1
    r = np.empty(n)
    z = np.empty(n)
    p = np.empty(n)
    q = np.empty(n)
    part = np.zeros(blocks)
    part_b = np.zeros(blocks)
    for b in numba.prange(blocks):
        _stencil_product(system, nb, x, r, starts[b], starts[b + 1])
        bb = 0.0
        rr = 0.0
        for i in range(starts[b], starts[b + 1]):
            r[i] = rhs[i] - r[i]
            bb += rhs[i] * rhs[i]
            rr += r[i] * r[i]
        part_b[b] = bb
        part[b] = rr
    norm_b = np.sqrt(part_b.sum())
    rr_all = part.sum()
    rz = 0.0
    for it in range(maxiter + 1):
        if np.sqrt(rr_all) < rtol * norm_b:
            return it
        if it == maxiter:
            break
        # z = (L L^T)^-1 r in each block (forward, then backward substitution), and r.z
        for b in numba.prange(blocks):
            lo = starts[b]
            hi = starts[b + 1]
            for i in range(lo, hi):
                value = r[i]
                for s in range(12):
                    k = nb[i, s]
                    if k >= lo:
                        value -= lower[i, s] * z[k]
                z[i] = value / diag[i]
            rz_b = 0.0
            for i in range(hi - 1, lo - 1, -1):
                value = z[i]
                for s in range(12):
                    k = nb[i, 24 - s]
                    if 0 <= k < hi:
                        value -= lower[k, s] * z[k]
                z[i] = value / diag[i]
                rz_b += r[i] * z[i]
            part[b] = rz_b
        rz_new = part.sum()
        beta = 0.0 if it == 0 else rz_new / rz
        rz = rz_new
        for b in numba.prange(blocks):
            for i in range(starts[b], starts[b + 1]):
                p[i] = z[i] + beta * p[i] if it > 0 else z[i]
        # q = system p (all of p: the rows near a block's edge read the next block's), and p.q
        for b in numba.prange(blocks):
            part[b] = _stencil_product(system, nb, p, q, starts[b], starts[b + 1])
        step = rz / part.sum()
        for b in numba.prange(blocks):
            rr = 0.0
            for i in range(starts[b], starts[b + 1]):
                x[i] += step * p[i]
                r[i] -= step * q[i]
                rr += r[i] * r[i]
            part[b] = rr
        rr_all = part.sum()
    return -1


def _compiled(fn: Callable, parallel: bool) -> Callable:
    """``fn`` compiled by numba (cached), ``parallel=True`` or plain. Each gets a function of
    its own name: numba's cache tells entries apart by name and argument types, not by
    flags, so two compilations of one function would load each other's code."""
    variant = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__)
    variant.__qualname__ = f"{fn.__qualname__}_{'parallel' if parallel else 'serial'}"
    return numba.njit(cache=True, nogil=True, parallel=parallel)(variant)


# Each of the two, compiled twice: parallel for a request alone on the cores (the blocks on
# numba's threads), and plain (prange runs as range, on the calling thread) beside others:
# the same arithmetic in the same order, so the same alpha either way.
_accumulate_parallel = _compiled(_accumulate_halves, parallel=True)
_accumulate_serial = _compiled(_accumulate_halves, parallel=False)
_ic0_parallel = _compiled(_ic0_blocks, parallel=True)
_ic0_serial = _compiled(_ic0_blocks, parallel=False)
_ic0_cg_parallel = _compiled(_ic0_cg, parallel=True)
_ic0_cg_serial = _compiled(_ic0_cg, parallel=False)


#: Systems with at least this many unknowns get a preconditioner of :data:`SOLVE_BLOCKS`
#: blocks of rows (the couplings between blocks dropped from its factor: a few more
#: iterations), so that two cores can share the solve; smaller ones (a video frame's band)
#: keep one block. A fact of the system's size, not of the load, so that a photo gets the
#: same alpha alone or beside other requests.
BLOCKS_FROM_UNKNOWNS = 32_768
#: Blocks of the preconditioner of a large system.
SOLVE_BLOCKS = 2


#: Relative diagonal shifts tried by the zero fill-in factor (:func:`_ic0_blocks`), smallest first.
#: 1e-3 fails on most bands; 1e-2 holds on the dev photos but on half the video frames with
#: the selfie model, and the step from there to 0.1 cost a weak preconditioner: 0.02 holds on
#: 19 of 20 dev video frames and the sample portrait at 1 MP, with as few iterations as 0.01
#: (video: 52.5 -> 39.0 iterations, 30.3 -> 24.3 ms a frame; the portrait: 52 -> 45, 189 ->
#: 181 ms; one core, 2026-12-06), and the refinement benchmark's reporting half is unchanged
#: (SAD lowres 5.44 -> 5.43, flyaway 6.05 -> 6.05).
IC0_SHIFTS = (0.02, 0.04, 0.1, 1.0)

#: The zero fill-in path iterates to this share of ``rtol``: its iterations are cheap, and at
#: 1 MP it then lands 0.012 (SAD / 1000) from the exact solution, pymatting's factor at
#: ``rtol`` 0.044, in 0.7x the time.
IC0_RTOL_SHARE = 0.3


#: Diagonal shifts tried by the incomplete Cholesky factorisation (of the preconditioner
#: only: the system solved is unchanged). pymatting's own list starts at 0, which fails on
#: most bands after discarding small entries (as does 1e-5, now and then) and prints a
#: warning to stdout each time; 1e-3 is small against the diagonal (0.5 to 8).
ICHOL_SHIFTS = (1e-3, 1e-2, 0.1, 1.0, 10.0)

#: Entries of the incomplete Cholesky factor below this are discarded (added to the diagonal).
ICHOL_DISCARD = 1e-3


def _preconditioner(system: scipy.sparse.csc_matrix):
    """pymatting's thresholded incomplete Cholesky factor of ``system``, its size bounded by
    that of the system (pymatting's default reserves room for 250 million entries)."""
    from pymatting import ichol

    return ichol(system, discard_threshold=ICHOL_DISCARD, shifts=list(ICHOL_SHIFTS),
                 max_nnz=max(1 << 20, 40 * system.nnz))


def prior_confidence(prior: np.ndarray, weight: float, floor: float, power: float) -> np.ndarray:
    """The data term's per-pixel weight ``weight * (floor + |2 prior - 1|^power)`` (same shape)."""
    return weight * (floor + np.abs(2.0 * prior - 1.0) ** power)


def solve_alpha(
    image: np.ndarray,
    trimap: np.ndarray,
    prior: np.ndarray | None = None,
    *,
    epsilon: float = 1e-7,
    prior_weight: float = 3e-3,
    prior_floor: float = 0.1,
    prior_power: float = 8.0,
    rtol: float = 1e-4,
    maxiter: int = 2000,
    parallel: bool = False,
) -> np.ndarray:
    """Alpha of the unknown pixels of ``trimap`` (see the module docstring).

    Args:
        image: ``H x W x 3`` float64 RGB in ``[0, 1]``, ``H, W >= 3``.
        trimap: ``H x W`` uint8, 0 / 128 / 255. Without a prior it needs a known pixel of
            each kind (else the minimiser is a constant: the caller decides it).
        prior: ``H x W`` float in ``[0, 1]`` (the segmentation's soft mask), or ``None`` for
            plain closed-form matting.
        epsilon: regularisation of the Laplacian.
        prior_weight, prior_floor, prior_power: the data term's ``weight``, ``floor`` and
            ``power`` (:func:`prior_confidence`); tuned with ``bench/refinement.py``.
        rtol: relative tolerance of the conjugate-gradient solve.
        maxiter: most conjugate-gradient iterations.
        parallel: with a prior, share the solve among numba's threads (as many as
            ``numba.get_num_threads()`` of the calling thread; the caller keeps two threads
            from entering it at once, see :mod:`matting_api.backends.closed_form`). The
            alpha is the same either way.

    Returns:
        ``H x W`` float64 alpha in ``[0, 1]``: 0 / 1 on the known pixels.
    """
    from pymatting import cg

    unknown = trimap == UNKNOWN
    alpha = (trimap == FOREGROUND).astype(np.float64)
    if not unknown.any():
        return alpha
    if prior is not None:
        x = _solve_with_prior(image, unknown, alpha, np.asarray(prior, dtype=np.float64), epsilon,
                              prior_weight, prior_floor, prior_power, rtol, maxiter, parallel)
        if x is not None:
            alpha[unknown] = np.clip(x, 0.0, 1.0)
            return alpha
    system, to_known, unknown_idx, known_idx = matting_laplacian(image, unknown, epsilon)
    rhs = -(to_known @ alpha.ravel()[known_idx])
    start = None
    if prior is not None:
        p = np.asarray(prior, dtype=np.float64).ravel()[unknown_idx]
        confidence = prior_confidence(p, prior_weight, prior_floor, prior_power)
        system = system + scipy.sparse.diags(confidence)
        rhs = rhs + confidence * p
        start = p  # the prior is most of the answer: fewer iterations from there
    x = cg(system.tocsr(), rhs, x0=start, M=_preconditioner(system.tocsc()), rtol=rtol, maxiter=maxiter)
    alpha.ravel()[unknown_idx] = np.clip(x, 0.0, 1.0)
    return alpha


def _solve_with_prior(
    image: np.ndarray, unknown: np.ndarray, alpha: np.ndarray, prior: np.ndarray, epsilon: float,
    prior_weight: float, prior_floor: float, prior_power: float, rtol: float, maxiter: int,
    parallel: bool = False,
) -> np.ndarray | None:
    """The refinement's system solved on its stencil: zero fill-in incomplete Cholesky and
    conjugate gradients from the prior, compiled (:func:`_ic0_blocks`, :func:`_ic0_cg`); the
    unknown pixels' alpha in flat order, or ``None`` when the factor or the iterations fail
    (the caller then takes pymatting's thresholded factor)."""
    stencil, unknown_idx = _window_stencil(image, unknown, epsilon, parallel)
    height, width = unknown.shape
    pad = 2  # a pixel's stencil reaches 2 px
    grid_width = width + 2 * pad
    gy, gx = np.divmod(unknown_idx, width)
    gpos = (gy + pad) * grid_width + gx + pad
    offsets = _STENCIL[:, 0] * grid_width + _STENCIL[:, 1]
    row_grid = np.full((height + 2 * pad) * grid_width, -1, dtype=np.int32)
    row_grid[gpos] = np.arange(len(unknown_idx))
    alpha_grid = np.pad(alpha, pad).ravel()
    nb = np.empty((len(unknown_idx), 25), dtype=np.int32)  # half the memory the solve streams
    rhs = np.empty(len(unknown_idx))
    _grid_rows(stencil, gpos, offsets, row_grid, alpha_grid, nb, rhs)
    p = prior.ravel()[unknown_idx]
    confidence = prior_confidence(p, prior_weight, prior_floor, prior_power)
    stencil[:, 12] += confidence
    rhs += confidence * p
    n = len(unknown_idx)
    blocks = SOLVE_BLOCKS if n >= BLOCKS_FROM_UNKNOWNS else 1
    starts = np.linspace(0, n, blocks + 1).astype(np.int64)
    ic0, ic0_cg = (_ic0_parallel, _ic0_cg_parallel) if parallel else (_ic0_serial, _ic0_cg_serial)
    # the system and its factor in float32 (the iterations' vectors stay float64): each
    # iteration streams them from memory, and at 1 MP this took 0.85-0.9x the time; the
    # alpha moves by 4e-5 at most
    system = stencil.astype(np.float32)
    lower = np.empty((n, 12), np.float32)
    diag = np.empty(n, np.float32)
    for shift in IC0_SHIFTS:
        if ic0(system, nb, _PAIRS, shift, lower, diag, starts):
            x = p.copy()
            if ic0_cg(system, nb, lower, diag, starts, rhs, x, IC0_RTOL_SHARE * rtol, maxiter) >= 0:
                return x
            return None
    return None
