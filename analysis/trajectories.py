"""Weight trajectories of one held-out episode: ``trajectories.npz``, read and drawn.

``plasticity verify DIR`` (:func:`distill.verify.write_trajectories`) records the weights
of a few synapses under the teacher, the neural rule and the selected equation;
:func:`read_trajectories` checks the file, :func:`trajectories_figure` draws it.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping
from typing import Any

import matplotlib
import matplotlib.lines
import numpy as np
from matplotlib.figure import Figure

from . import style
from .contract import TRAJECTORIES, TRAJECTORY_ARRAYS, check_dir, regenerate, run_dir_error


def read_trajectories(run_dir: str | os.PathLike) -> dict[str, np.ndarray] | None:
    """Read ``trajectories.npz``: weights of a few synapses over one held-out episode.

    Written by ``plasticity verify DIR`` (:func:`distill.verify.write_trajectories`):
    ``t [R]`` (time of each record), ``time_unit`` (``"steps"`` or ``"ms"``),
    ``synapses [S, 2]`` (``(post, pre)``), ``W0 [S]``, ``W_neural [R, S]`` and, when
    present, ``W_selected [R, S]`` (the selected equation), ``W_teacher [R, S]``
    (``imitate``) and ``pc1 [pre]`` (``oja_pca``). Needs numpy only.

    Args:
      run_dir: the run directory.

    Returns:
      ``{name: array}`` (0-d string arrays as ``str``; ``time_unit`` defaults to
      ``"steps"``), or ``None`` if the file is absent.

    Raises:
      RunDirError: if the file is not a readable ``.npz``, an array is missing or
        the shapes disagree.
    """
    path = check_dir(run_dir) / TRAJECTORIES
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise run_dir_error(f"{path}: cannot be read as .npz ({e}); {regenerate(TRAJECTORIES)}") from None
    missing = [k for k in TRAJECTORY_ARRAYS if k not in data]
    if missing:
        raise run_dir_error(
            f"{path}: missing array{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))} "
            f"(has {', '.join(map(repr, sorted(data)))}); {regenerate(TRAJECTORIES)}"
        )
    out: dict[str, Any] = {}
    for k, v in data.items():
        out[k] = str(v) if v.dtype.kind == "U" and v.ndim == 0 else v
    out.setdefault("time_unit", "steps")
    n_rec, n_syn = len(out["t"]), len(out["W0"])
    for k in ("W_neural", "W_selected", "W_teacher"):
        if k in out and out[k].shape != (n_rec, n_syn):
            raise run_dir_error(
                f"{path}: array {k!r} has shape {out[k].shape}, expected (len(t), len(W0)) = "
                f"{(n_rec, n_syn)}; {regenerate(TRAJECTORIES)}"
            )
    if out["synapses"].shape != (n_syn, 2):
        raise run_dir_error(
            f"{path}: array 'synapses' has shape {out['synapses'].shape}, expected {(n_syn, 2)}; "
            f"{regenerate(TRAJECTORIES)}"
        )
    return out



#: A colour per synapse of the trajectories figure: the Okabe & Ito palette (yellow left out).
SYNAPSE_COLORS: tuple[str, ...] = (*style.CYCLE, "#000000", "#999999")


def _with_start(t: np.ndarray, w0: np.ndarray, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Prepend the initial weights at ``t = 0`` to a recorded trajectory ``[R, S]``."""
    W = np.asarray(W, np.float64)
    W = np.where(np.isfinite(W), W, np.nan)  # a diverged rule: the line stops where it blows up
    return np.concatenate([[0.0], t]), np.vstack([w0[None, :], W])


def trajectories_figure(trajectories: Mapping[str, Any]) -> Figure:
    r"""Weights against time over one held-out episode: teacher, neural rule, selected equation.

    One colour per synapse (at most 8): the teacher's trajectory solid, the neural rule's
    dashed, the selected equation's dotted, each from the initial weight at ``t = 0``.
    For ``oja_pca`` (``pc1`` present) two panels instead: the alignment
    :math:`\cos^2(w, \mathrm{pc}_1) = (w \cdot \mathrm{pc}_1)^2 / |w|^2` and the norm
    :math:`|w|` against time, for the neural rule (dashed) and the equation (dotted), with
    Oja's fixed point (alignment 1, norm 1) as a thin line.

    Args:
      trajectories: ``trajectories.npz`` as :func:`analysis.rundir.read_trajectories`
        returns it (``t, time_unit, synapses, W0, W_neural`` and optionally
        ``W_selected, W_teacher, pc1, selected_id``).

    Returns:
      The figure.

    Example::

      >>> t = np.arange(1, 11.0)
      >>> fig = trajectories_figure({"t": t, "W0": np.array([0.5]), "synapses": np.array([[0, 0]]),
      ...                            "W_neural": 0.5 + 0.01 * t[:, None], "time_unit": "steps"})
    """
    tr = trajectories
    t = np.asarray(tr["t"], np.float64)
    w0 = np.asarray(tr["W0"], np.float64).ravel()
    unit = str(tr.get("time_unit", "steps"))
    sel_id = str(tr.get("selected_id", "") or "")
    sel_label = f"selected equation (eq{sel_id})" if sel_id else "selected equation"
    with matplotlib.rc_context(style.RC):
        if "pc1" in tr:
            return _oja_trajectories(tr, t, w0, unit, sel_label)
        fig, ax = style.new_figure()
        kept: list[np.ndarray] = []
        styles = [("W_teacher", "-", "teacher"), ("W_neural", "--", "neural rule"), ("W_selected", ":", sel_label)]
        for key, ls, _ in styles:
            if key not in tr:
                continue
            tt, W = _with_start(t, w0, tr[key])
            if key != "W_selected":
                kept.append(W)
            for j in range(W.shape[1]):
                ax.plot(tt, W[:, j], linestyle=ls, color=SYNAPSE_COLORS[j % len(SYNAPSE_COLORS)],
                        linewidth=1.8 if ls == ":" else 1.2)
        # A diverged equation must not flatten the lines that matter: keep the view on the
        # teacher and the neural rule, and say so when the equation leaves it.
        ref = np.concatenate([k[np.isfinite(k)] for k in kept]) if kept else np.array([])
        if ref.size and "W_selected" in tr:
            lo, hi = float(ref.min()), float(ref.max())
            pad = max(0.25 * (hi - lo), 1e-3 * max(abs(lo), abs(hi), 1e-12))
            sel = np.asarray(tr["W_selected"], np.float64)
            if not (np.isfinite(sel).all() and sel.min() >= lo - pad and sel.max() <= hi + pad):
                ax.set_ylim(lo - pad, hi + pad)
                ax.annotate("selected equation leaves the plotted range", xy=(0.02, 0.02),
                            xycoords="axes fraction", fontsize=7, color="0.35")
        handles = [matplotlib.lines.Line2D([], [], color="0.3", linestyle=ls, linewidth=1.8 if ls == ":" else 1.2,
                                           label=label) for key, ls, label in styles if key in tr]
        ax.legend(handles=handles, loc="best", fontsize=7)
        ax.set_xlabel(f"time ({unit})")
        ax.set_ylabel("w (a.u.)")
        n = len(w0)
        ax.set_title(f"Weight trajectories, held-out episode ({n} synapse{'s' if n != 1 else ''})")
    return fig


def _oja_trajectories(tr: Mapping[str, Any], t: np.ndarray, w0: np.ndarray, unit: str, sel_label: str) -> Figure:
    fig = Figure(figsize=(style.FIGSIZE[0] * 1.6, style.FIGSIZE[1]), layout="constrained")
    ax_cos, ax_norm = fig.subplots(1, 2)
    pc1 = np.asarray(tr["pc1"], np.float64).ravel()
    if "synapses" in tr and len(pc1) != len(w0):
        pc1 = pc1[np.asarray(tr["synapses"])[:, 1]]  # the kept synapses' components
    for key, ls, color, label in (("W_neural", "--", style.KIND_COLORS["neural"], "neural rule"),
                                  ("W_selected", ":", style.KIND_COLORS["equation"], sel_label)):
        if key not in tr:
            continue
        tt, W = _with_start(t, w0, tr[key])
        norm = np.linalg.norm(W, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            cos2 = (W @ pc1) ** 2 / (norm**2 * (pc1 @ pc1))
        lw = 1.8 if ls == ":" else 1.2
        ax_cos.plot(tt, cos2, linestyle=ls, color=color, linewidth=lw, label=label)
        ax_norm.plot(tt, norm, linestyle=ls, color=color, linewidth=lw, label=label)
    for ax in (ax_cos, ax_norm):
        ax.axhline(1.0, color="0.6", linewidth=0.6)
        ax.set_xlabel(f"time ({unit})")
    ax_cos.set_ylim(-0.03, 1.05)
    ax_cos.set_ylabel("cos² (w, PC1)")
    ax_cos.set_title("Alignment with the first principal component")
    ax_norm.set_ylabel("|w| (a.u.)")
    ax_norm.set_title("Weight norm")
    ax_cos.legend(loc="lower right", fontsize=7)
    return fig


