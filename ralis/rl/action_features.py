"""Hand-crafted action features of the RALIS query agent (reference section 4): per candidate
region, its state features plus two histograms of KL divergences, from its predicted class
distribution to those of the labelled regions and to those of the "unlabelled" regions.

All functions are pure and vectorised: no Python loop runs over region pairs (loops only run
over *chunks* of rows, to bound memory). Notation: ``M`` candidate regions, ``L`` labelled
regions, ``U`` "unlabelled" regions (the authors use the current step's candidates), ``C + 1``
histogram bins (:mod:`ralis.regions.histograms`), ``P`` pooled-entropy features
(:mod:`ralis.rl.state_features`). Layout per candidate: ``[class histogram (C+1) | pooled
entropy (P) | KL-to-labelled histogram (bins) | KL-to-unlabelled histogram (bins)]`` ->
``C + 1 + 192 + 64`` in the paper.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ralis.errors import ConfigError
from ralis.regions.histograms import normalize_histogram

__all__ = [
    "HISTOGRAM_MODES",
    "action_features",
    "kl_histogram",
    "kl_matrix",
    "kl_to_set_histogram",
]

HISTOGRAM_MODES = ("adaptive", "fixed")

# KL values per chunk of rows in the KL histograms: 16M values, about 256 MB of temporaries.
# Big chunks mean few (multi-threaded) tensor ops; on a busy 2-core machine every parallel
# op can cost a scheduler slice, so many small chunks are several times slower there.
_KL_CHUNK = 1 << 24


# ------------------------------------------------------------------------------------------
# KL divergences and their histograms


def _check_mode(mode: str) -> None:
    if mode not in HISTOGRAM_MODES:
        raise ConfigError(f"KL histogram mode must be one of {HISTOGRAM_MODES}, got {mode!r}")


def _kl_operands(
    p: torch.Tensor, q: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Normalised ``p``, ``sum p log p`` per row and ``log q`` (normalised) for :func:`_kl_rows`."""
    if p.dim() != 2 or q.dim() != 2 or p.shape[1] != q.shape[1]:
        raise ValueError(
            f"p and q must be [M, D] and [L, D], got {tuple(p.shape)} and {tuple(q.shape)}"
        )
    dtype = torch.promote_types(p.dtype, q.dtype)
    if not dtype.is_floating_point:
        dtype = torch.get_default_dtype()
    if (p < 0).any() or (q <= 0).any():
        raise ValueError("KL needs p >= 0 and q > 0 (floor empty bins at 1e-7 first)")
    p = normalize_histogram(p.to(dtype))
    log_q = normalize_histogram(q.to(dtype)).log()
    return p, torch.xlogy(p, p).sum(dim=1), log_q


def _kl_rows(p: torch.Tensor, plogp: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """``KL(p_i || q_j) = sum p_i log p_i - p_i . log q_j`` for normalised operands: ``[m, L]``."""
    kl = torch.addmm(plogp.unsqueeze(1), p, log_q.T, alpha=-1)
    return kl.clamp_min_(0.0)  # KL >= 0; removes rounding noise around identical rows


def kl_matrix(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """All pairwise KL divergences ``KL(p_i || q_j)`` (natural log).

    Both sets are normalised to sum 1 first (as ``scipy.stats.entropy(p, q)`` does) and the
    divergences are computed as one matrix product, ``sum p log p - p @ log(q).T``; tiny
    negative rounding results are clamped to 0.

    Args:
        p: ``[M, D]`` non-negative histograms.
        q: ``[L, D]`` strictly positive histograms.

    Returns:
        ``[M, L]`` in the promoted floating dtype of ``p`` and ``q``.
    """
    p, plogp, log_q = _kl_operands(p, q)
    return _kl_rows(p, plogp, log_q)


def _outer_edges(
    values: torch.Tensor, mode: str, value_range: tuple[float, float]
) -> tuple[torch.Tensor, torch.Tensor] | tuple[float, float]:
    """np.histogram's outer edges: per row ``(first [m], last [m])`` or a common float pair."""
    if mode == "adaptive":
        first, last = values.amin(dim=1), values.amax(dim=1)
        same = first == last
        first = torch.where(same, first - 0.5, first)
        last = torch.where(same, last + 0.5, last)
        return first, last
    lo, hi = float(value_range[0]), float(value_range[1])
    if not lo <= hi:
        raise ConfigError(f"KL histogram value_range must satisfy min <= max, got {value_range}")
    return (lo - 0.5, hi + 0.5) if lo == hi else (lo, hi)


def _bin_edges(first, last, bins: int, dtype: torch.dtype, device) -> torch.Tensor:
    """The edges ``np.linspace(first, last, bins + 1)`` computes, bit for bit.

    Adaptive (tensor ``first``/``last`` of ``dtype``): ``k * step + first`` in ``dtype`` ->
    ``[m, bins + 1]``. Fixed (Python floats): computed in float64, then cast to ``dtype`` ->
    ``[1, bins + 1]``.
    """
    if isinstance(first, torch.Tensor):
        step = (last - first) / bins
        k = torch.arange(bins + 1, dtype=dtype, device=device)
        edges = k * step.unsqueeze(1) + first.unsqueeze(1)
        edges[:, -1] = last
        return edges
    k = torch.arange(bins + 1, dtype=torch.float64, device=device)
    edges = k * ((last - first) / bins) + first
    edges[-1] = last
    return edges.to(dtype).unsqueeze(0)


def _histogram_rows(
    values: torch.Tensor, bins: int, mode: str, value_range: tuple[float, float]
) -> torch.Tensor:
    """Row-wise ``np.histogram(row, bins, range)`` counts of ``values [m, L]`` -> ``[m, bins]``.

    Fast path: ``floor((v - first) * bins / (last - first))``. A value whose estimate lies
    within a rounding tolerance of a bin edge (a tiny fraction; every value of an
    ill-conditioned row, whose range is tiny against its magnitude) is re-binned exactly as
    numpy does it (:func:`_exact_bins`). In "fixed" mode values outside the range count in
    the end bins.
    """
    values = values.contiguous()
    m, L = values.shape
    dtype, device = values.dtype, values.device
    first, last = _outer_edges(values, mode, value_range)
    eps = torch.finfo(dtype).eps
    scale = bins / (last - first)
    # g = (v - first) * scale - 0.5, so that the bin estimate floor(g + 0.5) is round(g) and
    # |g - round(g)| is 0.5 minus the distance to the nearest edge (in bins). The rounding
    # error of g and of numpy's edges is below eps * (1.5 * max|edge| * scale + 2.5 * bins);
    # ``tol`` is about twice that.
    if mode == "fixed":
        tol = 4 * eps * (bins + max(abs(first), abs(last)) * scale)
        g = values * scale - (first * scale + 0.5)
    else:
        if not bool(torch.isfinite(first).all() and torch.isfinite(last).all()):
            raise ValueError("KL histogram: values must be finite")
        tol = float((4 * eps * (bins + torch.maximum(first.abs(), last.abs()) * scale)).max())
        g = torch.addcmul((-first * scale - 0.5).unsqueeze(1), values, scale.unsqueeze(1))
    est = g.round()
    # Keep |g - round(g)| only where it is within tol of 0.5 (i.e. v within tol of an edge).
    near_edge = F.threshold_(g.sub_(est).abs_(), 0.5 - tol, 0.0)
    if mode == "fixed":  # values outside the range count in the end bins
        est.clamp_(0, bins - 1)
    if tol >= 0.25:  # ill-conditioned rows (range tiny against magnitude): all exact
        near_edge.fill_(1.0)
    if float(near_edge.amax()) > 0:
        flat = near_edge.view(-1).nonzero().squeeze(1)
        rows = flat // L
        exact = _exact_bins(values.view(-1)[flat], rows, first, last, bins, mode)
        est.view(-1)[flat] = exact.to(dtype)
    est += torch.arange(0, m * bins, bins, device=device, dtype=dtype).unsqueeze(1)
    return torch.bincount(est.view(-1).to(torch.int32), minlength=m * bins).view(m, bins)


def _exact_bins(
    v: torch.Tensor, rows: torch.Tensor, first, last, bins: int, mode: str
) -> torch.Tensor:
    """numpy's bin assignment of values ``v [k]`` of rows ``rows [k]`` -> int64 ``[k]``.

    Mirrors ``np.histogram`` step by step (and its dtype rules): estimate
    ``((v - first) / (last - first)) * bins``, then one correction step against the
    ``np.linspace`` edges (left-closed bins, the last bin right-closed).
    """
    edges = _bin_edges(first, last, bins, v.dtype, v.device)
    if mode == "fixed":
        v = v.clamp(edges[0, 0].item(), edges[0, -1].item())
        # numpy divides by a float64 scalar here, whatever the data's dtype.
        est = ((v - first).double() / (last - first)) * bins
        edges = edges.expand(v.shape[0], bins + 1)
    else:
        lo, hi = first[rows], last[rows]
        est = ((v - lo) / (hi - lo)) * bins
        edges = edges[rows]
    idx = est.long().clamp_(0, bins - 1).unsqueeze(1)
    v = v.unsqueeze(1)
    idx -= (v < edges.gather(1, idx)).long()
    idx += ((v >= edges.gather(1, idx + 1)) & (idx != bins - 1)).long()
    return idx.squeeze(1)


def _rows_per_chunk(L: int, chunk: int | None) -> int:
    return chunk if chunk is not None else max(1, _KL_CHUNK // max(L, 1))


def kl_histogram(
    kl: torch.Tensor,
    bins: int = 32,
    mode: str = "adaptive",
    value_range: tuple[float, float] = (0.0, 10.0),
    chunk: int | None = None,
) -> torch.Tensor:
    """Normalised histogram of every row of a KL matrix.

    Args:
        kl: ``[M, L]`` values (e.g. :func:`kl_matrix`).
        bins: number of equal-width bins (32 in the paper).
        mode: ``"adaptive"`` (the authors): per-row range ``[min, max]``, i.e.
            ``np.histogram(row, bins)``; a constant row uses ``(v - 0.5, v + 0.5)`` like numpy,
            so its mass lands in the middle bin. ``"fixed"``: the common ``value_range`` for
            every row, i.e. ``np.histogram(clip(row, *value_range), bins, value_range)``
            (values outside the range count in the end bins), so bins are comparable across
            candidates.
        chunk: rows per chunk (default: about 16M values per chunk, bounding memory).

    Returns:
        ``[M, bins]`` in ``kl``'s dtype, each row summing to 1; all zeros when ``L == 0``.
        Bin assignment matches ``np.histogram`` exactly (same edges, same corrections).
    """
    _check_mode(mode)
    M, L = kl.shape
    dtype = kl.dtype if kl.dtype.is_floating_point else torch.get_default_dtype()
    out = torch.zeros(M, bins, dtype=dtype, device=kl.device)
    if L == 0 or M == 0:
        return out
    rows = _rows_per_chunk(L, chunk)
    for start in range(0, M, rows):  # loop over chunks of rows only
        counts = _histogram_rows(kl[start : start + rows].to(dtype), bins, mode, value_range)
        out[start : start + rows] = counts.to(dtype) / L
    return out


def kl_to_set_histogram(
    p: torch.Tensor,
    q: torch.Tensor,
    bins: int = 32,
    mode: str = "adaptive",
    value_range: tuple[float, float] = (0.0, 10.0),
    chunk: int | None = None,
) -> torch.Tensor:
    """``kl_histogram(kl_matrix(p, q))`` without materialising the ``[M, L]`` matrix.

    Args:
        p: ``[M, D]`` histograms (e.g. candidates' predicted class counts).
        q: ``[L, D]`` the reference set (labelled regions' GT distributions, or the candidates).

    Returns:
        ``[M, bins]``, rows summing to 1 (zeros when ``L == 0``); identical to the two-step
        computation.
    """
    _check_mode(mode)
    M, L = p.shape[0], q.shape[0]
    if L == 0 or M == 0:
        dtype = torch.promote_types(p.dtype, q.dtype)
        dtype = dtype if dtype.is_floating_point else torch.get_default_dtype()
        return torch.zeros(M, bins, dtype=dtype, device=p.device)
    p, plogp, log_q = _kl_operands(p, q)
    out = torch.empty(M, bins, dtype=p.dtype, device=p.device)
    rows = _rows_per_chunk(L, chunk)
    for start in range(0, M, rows):  # loop over chunks of rows only
        stop = start + rows
        kl = _kl_rows(p[start:stop], plogp[start:stop], log_q)
        out[start:stop] = _histogram_rows(kl, bins, mode, value_range).to(p.dtype) / L
    return out


# ------------------------------------------------------------------------------------------
# Action features


def action_features(
    cand_hist: torch.Tensor,
    cand_entropy: torch.Tensor,
    labelled_dist: torch.Tensor,
    unlabelled_dist: torch.Tensor,
    bins: int = 32,
    mode: str = "adaptive",
    value_range: tuple[float, float] = (0.0, 10.0),
) -> torch.Tensor:
    """Feature vector of every candidate region (one row per candidate).

    Args:
        cand_hist: ``[M, C + 1]`` candidates' class histograms (raw counts as in the state, or
            normalised); the candidate's predicted class distribution is this normalised.
        cand_entropy: ``[M, P]`` candidates' pooled entropy (192 in the paper).
        labelled_dist: ``[L, C + 1]`` GT class distributions of the regions labelled so far
            (:func:`ralis.regions.histograms.region_class_distribution`); ``L`` may be 0 (-> zero histogram).
        unlabelled_dist: ``[U, C + 1]`` distributions of the "unlabelled set" (the authors:
            every candidate of the step, ``normalize_histogram(cand_hist)``, itself included).
        bins, mode, value_range: see :func:`kl_histogram`.

    Returns:
        ``[M, C + 1 + P + 2 * bins]`` = ``[hist | entropy | KL-labelled hist | KL-unlabelled
        hist]`` (``C + 1 + 192 + 64`` in the paper), in ``cand_hist``'s floating dtype.
    """
    if (
        cand_hist.dim() != 2
        or cand_entropy.dim() != 2
        or cand_hist.shape[0] != cand_entropy.shape[0]
    ):
        raise ValueError(
            f"cand_hist [M, C+1] and cand_entropy [M, P] must have the same M, got "
            f"{tuple(cand_hist.shape)} and {tuple(cand_entropy.shape)}"
        )
    dtype = cand_hist.dtype if cand_hist.dtype.is_floating_point else torch.get_default_dtype()
    hist = cand_hist.to(dtype)
    kl_lab = kl_to_set_histogram(hist, labelled_dist.to(dtype), bins, mode, value_range)
    kl_unl = kl_to_set_histogram(hist, unlabelled_dist.to(dtype), bins, mode, value_range)
    return torch.cat([hist, cand_entropy.to(dtype), kl_lab, kl_unl], dim=1)
