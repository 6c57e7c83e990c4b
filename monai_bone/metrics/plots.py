"""Evaluation plots (PNG) drawn headless with matplotlib's Agg canvas and written atomically.

Figures are built with ``matplotlib.figure.Figure`` + ``FigureCanvasAgg`` directly, never through ``pyplot``, so no
global backend or figure state is touched (safe inside servers, handlers and threads). When ``synthetic=True`` the
title starts with "SYNTHETIC" and the figure carries ``constants.SYNTHETIC_NOTE`` as a red footnote.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.metrics import auc as area_under_curve
from sklearn.metrics import roc_curve

from monai_bone.constants import SYNTHETIC_NOTE
from monai_bone.utils.io import atomic_write_bytes

__all__ = ["plot_bland_altman", "plot_calibration", "plot_confusion_matrix", "plot_pred_vs_true", "plot_roc"]

_DPI = 110


def _vec(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=float).reshape(-1)


def _new_figure(size: tuple[float, float] = (5.6, 5.0)) -> tuple[Figure, Any]:
    fig = Figure(figsize=size, dpi=_DPI)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot(1, 1, 1)


def _save(fig: Figure, ax: Any, title: str, synthetic: bool, path: str | os.PathLike) -> Path:
    if synthetic:
        ax.set_title(f"SYNTHETIC - {title}", fontsize=10, color="firebrick")
        fig.text(0.5, 0.005, SYNTHETIC_NOTE, ha="center", va="bottom", fontsize=7, color="firebrick")
    else:
        ax.set_title(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.03 if synthetic else 0, 1, 1))
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return atomic_write_bytes(path, buf.getvalue())


def plot_roc(
    curves: Mapping[str, tuple[Any, Any]],
    path: str | os.PathLike,
    title: str = "ROC curve",
    synthetic: bool = False,
) -> Path:
    """ROC curves, one per entry, with their AUC in the legend.

    Args:
        curves: ``{name: (score, positive)}``; larger score = more likely positive; ``positive`` boolean-like.
            A curve whose truth holds one class only is listed as "not computable" instead of drawn.
        path: output PNG file.
        title: plot title.
        synthetic: tag the plot as synthetic.

    Returns:
        The written path.
    """
    fig, ax = _new_figure()
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="chance")
    for name, (score, positive) in curves.items():
        s, t = _vec(score), _vec(positive).astype(bool)
        if t.size == 0 or t.all() or not t.any():
            ax.plot([], [], ls="none", label=f"{name}: not computable (one class)")
            continue
        fpr, tpr, _ = roc_curve(t, s)
        auc = float(area_under_curve(fpr, tpr))
        ax.plot(fpr, tpr, lw=2, label=f"{name} (AUC {auc:.3f}, n={t.size}, pos={int(t.sum())})")
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_xlabel("False positive rate (1 - specificity)")
    ax.set_ylabel("True positive rate (sensitivity)")
    ax.set_aspect("equal")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, ax, title, synthetic, path)


def plot_pred_vs_true(
    pred: Any,
    true: Any,
    path: str | os.PathLike,
    thresholds: Mapping[str, float] | None = None,
    title: str = "Predicted vs true BMD",
    units: str = "g/cm²",
    synthetic: bool = False,
) -> Path:
    """Scatter of predicted against true values with the identity line and optional threshold lines.

    Args:
        pred: predicted values ``(N,)``.
        true: reference values ``(N,)``.
        path: output PNG file.
        thresholds: ``{label: value}`` drawn as dotted lines on both axes (e.g. the screening thresholds).
        title: plot title.
        units: axis unit label.
        synthetic: tag the plot as synthetic.

    Returns:
        The written path.
    """
    p, t = _vec(pred), _vec(true)
    fig, ax = _new_figure()
    ax.scatter(t, p, s=14, alpha=0.7, edgecolors="none")
    both = np.concatenate([p, t]) if p.size else np.array([0.0, 1.0])
    lo, hi = float(both.min()), float(both.max())
    pad = 0.05 * (hi - lo or 1.0)
    lo, hi = lo - pad, hi + pad
    ax.plot([lo, hi], [lo, hi], ls="--", color="grey", lw=1, label="identity")
    for i, (name, value) in enumerate((thresholds or {}).items()):
        color = f"C{i + 1}"
        ax.axvline(value, ls=":", color=color, lw=1, label=f"{name} ({value:.3f})")
        ax.axhline(value, ls=":", color=color, lw=1)
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel(f"True ({units})")
    ax.set_ylabel(f"Predicted ({units})")
    ax.set_aspect("equal")
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, ax, title, synthetic, path)


def plot_bland_altman(
    pred: Any,
    true: Any,
    path: str | os.PathLike,
    limits: float = 1.96,
    title: str = "Bland-Altman",
    units: str = "g/cm²",
    synthetic: bool = False,
) -> Path:
    """Bland-Altman plot: difference ``pred - true`` against the mean of the two, with bias and limits of agreement.

    Args:
        pred: predicted values ``(N,)``.
        true: reference values ``(N,)``.
        path: output PNG file.
        limits: limits of agreement in SDs of the differences.
        title: plot title.
        units: axis unit label.
        synthetic: tag the plot as synthetic.

    Returns:
        The written path.
    """
    p, t = _vec(pred), _vec(true)
    mean, diff = (p + t) / 2.0, p - t
    fig, ax = _new_figure((6.4, 4.6))
    ax.scatter(mean, diff, s=14, alpha=0.7, edgecolors="none")
    if diff.size:
        bias = float(diff.mean())
        ax.axhline(bias, color="C1", lw=1.5, label=f"bias {bias:+.4f}")
        if diff.size > 1:
            sd = float(diff.std(ddof=1))
            lo, hi = bias - limits * sd, bias + limits * sd
            ax.axhline(lo, color="C3", ls="--", lw=1, label=f"-{limits:g} SD {lo:+.4f}")
            ax.axhline(hi, color="C3", ls="--", lw=1, label=f"+{limits:g} SD {hi:+.4f}")
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.set_xlabel(f"Mean of predicted and true ({units})")
    ax.set_ylabel(f"Predicted - true ({units})")
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, ax, title, synthetic, path)


def plot_confusion_matrix(
    matrix: Any,
    labels: Sequence[str],
    path: str | os.PathLike,
    title: str = "Confusion matrix",
    synthetic: bool = False,
) -> Path:
    """Confusion matrix heat map (rows true class, columns predicted class) annotated with counts and row %.

    Args:
        matrix: ``(C, C)`` counts.
        labels: class names, length ``C``.
        path: output PNG file.
        title: plot title.
        synthetic: tag the plot as synthetic.

    Returns:
        The written path.

    Raises:
        ValueError: when the matrix is not square or does not match the labels.
    """
    m = np.asarray(matrix, dtype=float)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] != len(labels):
        raise ValueError(f"confusion matrix of shape {m.shape} does not match {len(labels)} labels.")
    row = m.sum(axis=1, keepdims=True)
    frac = np.divide(m, row, out=np.zeros_like(m), where=row > 0)
    fig, ax = _new_figure((5.0, 4.6))
    im = ax.imshow(frac, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of true class")
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            ax.text(
                j,
                i,
                f"{int(m[i, j])}\n{100 * frac[i, j]:.0f}%",
                ha="center",
                va="center",
                fontsize=9,
                color="white" if frac[i, j] > 0.5 else "black",
            )
    ticks = list(range(len(labels)))
    ax.set_xticks(ticks, labels=list(labels), rotation=20)
    ax.set_yticks(ticks, labels=list(labels))
    ax.set_xlabel("Predicted class")
    ax.set_ylabel("True class")
    return _save(fig, ax, title, synthetic, path)


def plot_calibration(
    predicted: Any,
    observed: Any,
    path: str | os.PathLike,
    n_bins: int = 10,
    strategy: str = "uniform",
    xlabel: str = "Predicted probability",
    ylabel: str = "Observed fraction positive",
    title: str = "Calibration",
    synthetic: bool = False,
) -> Path:
    """Calibration (reliability) plot: mean observed value against mean prediction per bin of the prediction.

    For probabilities, ``observed`` is the 0/1 truth (the classic reliability diagram, as
    ``sklearn.calibration.calibration_curve``); for regression, ``observed`` is the true value and the plot shows
    whether each range of predictions is right on average.

    Args:
        predicted: predictions ``(N,)``.
        observed: observed outcome or true value ``(N,)``.
        path: output PNG file.
        n_bins: number of bins.
        strategy: ``"uniform"`` (equal-width bins over [0, 1] for probabilities, else over the prediction range)
            or ``"quantile"`` (equal-count bins).
        xlabel: x-axis label.
        ylabel: y-axis label.
        title: plot title.
        synthetic: tag the plot as synthetic.

    Returns:
        The written path.

    Raises:
        ValueError: on an unknown strategy or ``n_bins < 1``.
    """
    if strategy not in ("uniform", "quantile"):
        raise ValueError(f"strategy must be 'uniform' or 'quantile', got {strategy!r}.")
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}.")
    p, o = _vec(predicted), _vec(observed)
    fig, ax = _new_figure()
    if p.size:
        is_prob = bool(p.min() >= 0.0 and p.max() <= 1.0 and set(np.unique(o)) <= {0.0, 1.0})
        if strategy == "quantile":
            edges = np.unique(np.quantile(p, np.linspace(0.0, 1.0, n_bins + 1)))
        else:
            lo, hi = (0.0, 1.0) if is_prob else (float(p.min()), float(p.max()))
            edges = np.linspace(lo, hi, n_bins + 1)
        if edges.size < 2:
            edges = np.array([p.min(), p.max() + 1e-12])
        which = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, edges.size - 2)
        xs, ys, ns = [], [], []
        for b in range(edges.size - 1):
            sel = which == b
            if sel.any():
                xs.append(p[sel].mean())
                ys.append(o[sel].mean())
                ns.append(int(sel.sum()))
        lo_ax = 0.0 if is_prob else float(min(p.min(), o.min()))
        hi_ax = 1.0 if is_prob else float(max(p.max(), o.max()))
        ax.plot([lo_ax, hi_ax], [lo_ax, hi_ax], ls="--", color="grey", lw=1, label="perfect calibration")
        ax.plot(xs, ys, marker="o", lw=1.5, label=f"{len(xs)} bins ({strategy}), n={p.size}")
        for x, y, k in zip(xs, ys, ns):
            ax.annotate(str(k), (x, y), textcoords="offset points", xytext=(4, -10), fontsize=7, color="dimgrey")
        ax.legend(loc="upper left", fontsize=8)
    else:
        ax.text(0.5, 0.5, "no studies", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    return _save(fig, ax, title, synthetic, path)
