"""Closed-form matting, optionally pulled towards a prior: the offline backend's alpha solver.

Pure numpy / scipy (pymatting's conjugate gradients and incomplete Cholesky); no HTTP, no
torch. The energy minimised over the unknown pixels ``u`` (the others fixed) is::

    alpha^T L alpha + sum_u c_u (alpha_u - p_u)^2,   c_u = weight * (floor + |2 p_u - 1|^power)

* ``L``: the closed-form matting Laplacian of Levin, Lischinski & Weiss (2008, "A Closed-Form
  Solution to Natural Image Matting"): for every 3x3 window ``w`` with colour mean ``mu_w``
  and covariance ``S_w``, ``L_ij += delta_ij - (1 + (I_i - mu_w)^T (S_w + eps/9 I)^-1
  (I_j - mu_w)) / 9``. :func:`matting_laplacian` builds it only for the windows that touch
  an unknown pixel, so its cost follows the band, not the image (pymatting's
  ``cf_laplacian`` allocates 25 entries for every pixel of the image first). Its rows of
  unknown pixels equal pymatting's exactly (a test checks it).
* the data term (only with a prior ``p``): the closed-form matting with a prior of the
  issue's formula ``a'La + lambda (a - p)' D (a - p)``, ``D`` diagonal. ``D`` trusts the prior
  where it is sure (near 0 or 1: ``|2p - 1|^power``) and hardly where it hesitates (near
  0.5), with a small ``floor`` everywhere so that the system stays well posed. Without a
  prior (a user's trimap) this is exactly closed-form matting.

The minimiser solves ``(L_uu + C) alpha_u = C p_u - L_uk alpha_k``; ``L_uu + C`` is symmetric
positive definite once one pixel is known or ``C > 0``. Conjugate gradients with pymatting's
incomplete Cholesky preconditioner converge in a handful of iterations on the band.
"""

from __future__ import annotations

import cv2
import numpy as np
import scipy.sparse

from trimap.encoding import FOREGROUND, UNKNOWN

#: 3x3 window offsets (dy, dx), row-major.
_OFFSETS = np.array([(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)])


def matting_laplacian(
    image: np.ndarray, unknown: np.ndarray, epsilon: float = 1e-7
) -> tuple[scipy.sparse.csr_matrix, np.ndarray]:
    """The closed-form matting Laplacian over the windows touching ``unknown``.

    Args:
        image: ``H x W x 3`` float64 RGB in ``[0, 1]``, ``H, W >= 3``.
        unknown: ``H x W`` bool.
        epsilon: the regularisation of the window covariances.

    Returns:
        ``(L, nodes)``: ``L`` a symmetric ``n x n`` sparse matrix over the ``n`` pixels of
        those windows (the unknown pixels and their known neighbours within 2 px), ``nodes``
        their flat indices (``y * W + x``, ascending). Windows are centred one pixel or more
        away from the border, as in pymatting.
    """
    height, width = unknown.shape
    centres = cv2.dilate(unknown.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    centres[0, :] = centres[-1, :] = False
    centres[:, 0] = centres[:, -1] = False
    cy, cx = np.nonzero(centres)
    if cy.size == 0:
        return scipy.sparse.csr_matrix((0, 0)), np.zeros(0, dtype=np.int64)
    flat = (cy[:, None] + _OFFSETS[None, :, 0]) * width + (cx[:, None] + _OFFSETS[None, :, 1])
    colours = image.reshape(-1, 3)[flat]  # m x 9 x 3
    centred = colours - colours.mean(axis=1, keepdims=True)
    cov = np.einsum("mki,mkj->mij", centred, centred) / 9.0 + (epsilon / 9.0) * np.eye(3)
    inverse = np.linalg.inv(cov)
    affinity = np.einsum("mki,mij,mlj->mkl", centred, inverse, centred, optimize=True)
    values = np.eye(9)[None] - (1.0 + affinity) / 9.0  # m x 9 x 9
    nodes, local = np.unique(flat, return_inverse=True)
    local = local.reshape(flat.shape)
    rows = np.repeat(local, 9, axis=1).ravel()
    cols = np.tile(local, (1, 9)).ravel()
    laplacian = scipy.sparse.csr_matrix((values.ravel(), (rows, cols)), shape=(len(nodes), len(nodes)))
    return laplacian, nodes


#: Diagonal shifts tried by the incomplete Cholesky factorisation (of the preconditioner
#: only: the system solved is unchanged). pymatting's own list starts at 0, which fails on
#: most bands after discarding small entries (as does 1e-5, now and then) and prints a
#: warning to stdout each time; 1e-3 is small against the diagonal (0.5 to 8).
ICHOL_SHIFTS = (1e-3, 1e-2, 0.1, 1.0, 10.0)


def _preconditioner(system: scipy.sparse.csc_matrix):
    """pymatting's thresholded incomplete Cholesky factor of ``system``, its size bounded by
    that of the system (pymatting's default reserves room for 250 million entries)."""
    from pymatting import ichol

    return ichol(system, shifts=list(ICHOL_SHIFTS), max_nnz=max(1 << 20, 40 * system.nnz))


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

    Returns:
        ``H x W`` float64 alpha in ``[0, 1]``: 0 / 1 on the known pixels.
    """
    from pymatting import cg

    unknown = trimap == UNKNOWN
    alpha = (trimap == FOREGROUND).astype(np.float64)
    if not unknown.any():
        return alpha
    laplacian, nodes = matting_laplacian(image, unknown, epsilon)
    is_unknown = unknown.ravel()[nodes]
    rows = laplacian[is_unknown]
    system = rows[:, is_unknown]
    rhs = -(rows[:, ~is_unknown] @ alpha.ravel()[nodes[~is_unknown]])
    if prior is not None:
        p = np.asarray(prior, dtype=np.float64).ravel()[nodes[is_unknown]]
        confidence = prior_confidence(p, prior_weight, prior_floor, prior_power)
        system = system + scipy.sparse.diags(confidence)
        rhs = rhs + confidence * p
    x = cg(system.tocsr(), rhs, M=_preconditioner(system.tocsc()), rtol=rtol, maxiter=maxiter)
    alpha.ravel()[nodes[is_unknown]] = np.clip(x, 0.0, 1.0)
    return alpha
