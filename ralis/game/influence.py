"""A one-step lookahead of the head game, to first order: how much labelling each candidate
would lower the reward split's loss (influence functions, Koh & Liang 2017).

The head ``w [F + 1, C]`` minimises ``L(w) = mean_i ce_i(w) + l2 / 2 |W|^2`` over ``P``
labelled pixels (:mod:`ralis.game.head_fit`). Adding a candidate region's pixels ``r`` with
weight ``eps`` moves the optimum by ``-eps H^-1 sum_{i in r} grad ce_i`` (``H``: the Hessian of
``L`` at ``w``), so the reward split's class-balanced cross-entropy ``L_R`` changes by
``-eps sum_{i in r} grad ce_i . v`` with ``v = H^-1 grad L_R``. The *lookahead score* of a
candidate is ``sum_{i in r} grad ce_i . v``: its predicted drop of ``L_R`` (larger is better).
It needs the candidate's labels, so only an oracle (an expert to imitate) can use it. One
conjugate-gradient solve per step and one pass over the candidates' pixels replace the ``K x N``
head refits of an exact lookahead.

Pure tensor functions. ``x`` are standardised features ``[P, F]``, ``y [P]`` class ids.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ralis.game.head_fit import head_logits

__all__ = ["loss_gradient", "hessian_vector_product", "conjugate_gradient", "pixel_influence",
           "influence_direction", "unlabelled_influence", "class_bias", "UNLABELLED"]

UNLABELLED = ("pseudo", "expected", "calibrated")
"""Label-free variants (:func:`unlabelled_influence`): they read the reward split's labels,
which a real run has, and never the candidates'."""


def _with_bias(x: torch.Tensor) -> torch.Tensor:
    return torch.cat([x, torch.ones(x.shape[0], 1, dtype=x.dtype)], dim=1)


def loss_gradient(x: torch.Tensor, y: torch.Tensor, w: torch.Tensor,
                  class_weight: torch.Tensor | None = None) -> torch.Tensor:
    """``[F + 1, C]`` gradient of the (``class_weight``-weighted, as ``F.cross_entropy``) mean
    cross-entropy of ``y [P]`` under ``head_logits(x, w)``, without the L2 term."""
    p = torch.softmax(head_logits(x, w), dim=1)
    r = p - F.one_hot(y, w.shape[1]).to(p.dtype)  # [P, C]: d ce_i / d logits
    if class_weight is None:
        return _with_bias(x).T @ r / x.shape[0]
    s = class_weight[y]
    return _with_bias(x).T @ (r * s[:, None]) / s.sum()


def hessian_vector_product(x: torch.Tensor, w: torch.Tensor, v: torch.Tensor, l2: float
                           ) -> torch.Tensor:
    """``H v`` for the head's objective at ``w`` (mean cross-entropy over ``x [P, F]`` plus
    ``l2 / 2`` on the feature rows): ``v, result [F + 1, C]``. The cross-entropy's Hessian does
    not depend on the labels."""
    xb = _with_bias(x)
    p = torch.softmax(head_logits(x, w), dim=1)
    u = xb @ v  # [P, C]
    s = p * u - p * (p * u).sum(1, keepdim=True)  # (diag(p) - p p^T) u, per pixel
    hv = xb.T @ s / x.shape[0]
    hv[:-1] += l2 * v[:-1]
    return hv


def conjugate_gradient(apply, b: torch.Tensor, iterations: int, damping: float = 0.0,
                       rtol: float = 1e-10) -> torch.Tensor:
    """``(A + damping I)^-1 b`` by at most ``iterations`` conjugate-gradient steps from 0 (``A``
    symmetric positive semi-definite, given as ``apply(v) = A v``; ``b`` in its range), stopping
    once the residual is below ``rtol |b|`` or a direction has no curvature left. Deterministic:
    the same inputs give the same result bit for bit."""
    sol = torch.zeros_like(b)
    r = b.clone()
    d = r.clone()
    rr = (r * r).sum()
    stop = rtol * rtol * rr
    for _ in range(iterations):
        if rr <= stop:
            break
        ad = apply(d) + damping * d
        curvature = (d * ad).sum()
        if curvature <= 0:
            break
        alpha = rr / curvature
        sol += alpha * d
        r -= alpha * ad
        rr_new = (r * r).sum()
        d = r + (rr_new / rr) * d
        rr = rr_new
    return sol


def influence_direction(x: torch.Tensor, w: torch.Tensor, l2: float, x_r: torch.Tensor,
                        y_r: torch.Tensor, class_weight: torch.Tensor | None,
                        iterations: int = 50, damping: float = 1e-4) -> torch.Tensor:
    """``v = H^-1 grad L_R`` ``[F + 1, C]``: ``H`` the head objective's Hessian over the
    fitted pixels ``x [P, F]``; ``L_R`` the cross-entropy of the reward split ``(x_r, y_r)``
    weighted by ``class_weight [C]`` (``None``: plain mean). Softmax gradients sum to 0 over
    the classes and ``H`` keeps that subspace, so the solve runs in it (rows centred over the
    classes), where ``H`` is positive definite; in float64, returned as float32."""
    def centred(v: torch.Tensor) -> torch.Tensor:
        return v - v.mean(dim=1, keepdim=True)

    x, w = x.double(), w.double()
    g = centred(loss_gradient(x_r.double(), y_r, w,
                              None if class_weight is None else class_weight.double()))
    return conjugate_gradient(lambda v: centred(hessian_vector_product(x, w, centred(v), l2)),
                              g, iterations, damping).float()


def _label_drops(x: torch.Tensor, w: torch.Tensor, v: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(p, s)``, both ``[P, C]``: the head's probabilities and, with ``u = [x, 1] v``,
    ``s_c = u . p - u_c``: ``grad ce . v`` if the pixel's label were ``c``."""
    p = torch.softmax(head_logits(x, w), dim=1)
    u = _with_bias(x) @ v
    return p, (u * p).sum(1, keepdim=True) - u


def pixel_influence(x: torch.Tensor, y: torch.Tensor, w: torch.Tensor, v: torch.Tensor
                    ) -> torch.Tensor:
    """``[P]``: ``grad ce_i . v`` per labelled pixel ``(x [P, F], y [P])``; summed over a
    region's pixels, the predicted drop of ``L_R`` per unit weight when the region is added."""
    _, s = _label_drops(x, w, v)
    return s.gather(1, y[:, None]).squeeze(1)


def class_bias(logits: torch.Tensor, y: torch.Tensor, iterations: int = 25,
               ridge: float = 1e-3) -> torch.Tensor:
    """``b [C]`` minimising ``mean_i ce(logits_i + b, y_i) + ridge / 2 |b|^2`` (Newton, float64):
    the shift of the head's log-odds that calibrates it on held-out labelled pixels
    ``(logits [P, C], y [P])``, e.g. for the prior shift between the labelled set's class mix
    and the images'. A class absent from ``y`` is pushed down, softly (the ridge)."""
    z, C = logits.double(), logits.shape[1]
    onehot = F.one_hot(y, C).double()
    b = torch.zeros(C, dtype=torch.float64)
    for _ in range(iterations):
        q = torch.softmax(z + b, dim=1)
        grad = (q - onehot).mean(0) + ridge * b
        hess = torch.diag(q.mean(0)) - q.T @ q / len(q) + ridge * torch.eye(C, dtype=z.dtype)
        b = b - torch.linalg.solve(hess, grad)
    return b.float()


def unlabelled_influence(x: torch.Tensor, w: torch.Tensor, v: torch.Tensor, kind: str,
                         bias: torch.Tensor | None = None) -> torch.Tensor:
    """``[P]``: :func:`pixel_influence` without the pixels' labels, from ``s_c`` (the drop if
    the label were ``c``): ``pseudo`` takes the predicted class, ``s_argmax p``; ``expected``
    the expected magnitude ``sum_c p_c |s_c|`` (the expectation of ``s`` itself is 0: a label
    drawn from the model's own belief moves nothing to first order); ``calibrated`` the
    expectation ``sum_c q_c s_c`` under a calibrated belief ``q = softmax(logits + bias)``
    (``bias [C]`` from :func:`class_bias` on the reward split; nonzero where ``q`` and the
    head's own ``p`` disagree)."""
    if kind == "calibrated":  # sum_c q_c s_c = u . (p - q): exactly 0 where q = p
        if bias is None:
            raise ValueError("the calibrated influence needs the class bias (class_bias)")
        logits = head_logits(x, w)
        p, q = torch.softmax(logits, dim=1), torch.softmax(logits + bias, dim=1)
        return ((_with_bias(x) @ v) * (p - q)).sum(1)
    p, s = _label_drops(x, w, v)
    if kind == "pseudo":
        return s.gather(1, p.argmax(1, keepdim=True)).squeeze(1)
    if kind == "expected":
        return (p * s.abs()).sum(1)
    raise ValueError(f"unknown unlabelled influence {kind!r}; valid: {', '.join(UNLABELLED)}")
