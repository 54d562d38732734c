"""Recordings as NWB files (Neurodata Without Borders, read and written with pynwb): what
task ``infer`` reads besides ``.npz`` (:mod:`discover.tasks.infer`).

Layout (one file, ``E`` episodes of ``T`` steps of ``dt`` ms, concatenated in time):

- ``trials``: one row per episode (``start_time``, ``stop_time`` in s, ``T * dt`` apart);
- ``stimulus/inputs``: a ``TimeSeries`` of the presynaptic inputs, ``[E * T, n_pre]``, one
  sample per step (``rate = 1000 / dt`` Hz): rates (rate networks, unit ``"a.u."``) or 0/1
  spikes (spiking networks, unit ``"spikes"``);
- the postsynaptic activity: spiking, the ``units`` table, one unit per postsynaptic neuron
  with its ``spike_times`` (s) and a boolean column ``recorded`` (``False``: NaN in the
  recording); rates, ``acquisition/activity``, a ``TimeSeries`` ``[E * R, n_post]`` of the
  mean rate of each bin of ``record_every`` steps, NaN where a neuron was not recorded;
- scratch ``w0`` ``[E, n_post, n_pre]`` (initial weights), optionally ``w`` ``[E, R, n_post,
  n_pre]``, and ``record_every`` (steps per bin).

:func:`read_nwb` returns the arrays of the ``.npz`` format (``x`` or ``s_pre``, ``y`` or
``s_post`` as spike counts per bin, ``w0``, ``w``, ``dt``, ``record_every``), so both formats
go through the same checks.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import numpy as np


class NWBError(ValueError):
    """An NWB file that does not hold a recording in the layout above."""


def _pynwb():
    try:
        import pynwb
    except ImportError:
        raise NWBError("reading NWB files needs pynwb: pip install pynwb") from None
    return pynwb


def write_nwb(path: str | Path, arrays: dict[str, np.ndarray], description: str = "plasticity recording") -> Path:
    """Write a recording (the arrays of :func:`discover.recordings.simulate_recording`) as NWB.
    Spike counts per bin become spike times spread evenly over the bin's steps."""
    pynwb = _pynwb()
    spiking = "s_pre" in arrays
    X = np.asarray(arrays["s_pre" if spiking else "x"], np.float32)
    Y = np.asarray(arrays["s_post" if spiking else "y"], np.float64)
    E, T, n_pre = X.shape
    R, n_post = Y.shape[1:]
    k = int(arrays.get("record_every", 1))
    dt = float(arrays["dt"]) if spiking else 1.0
    f = pynwb.NWBFile(session_description=description, identifier=Path(path).stem,
                      session_start_time=datetime(2000, 1, 1, tzinfo=timezone.utc))
    for e in range(E):
        f.add_trial(start_time=e * T * dt * 1e-3, stop_time=(e + 1) * T * dt * 1e-3)
    f.add_stimulus(pynwb.TimeSeries(name="inputs", data=X.reshape(E * T, n_pre), unit="spikes" if spiking else "a.u.",
                                    rate=1000.0 / dt, description="presynaptic inputs, one sample per step"))
    if spiking:
        f.add_unit_column(name="recorded", description="whether the neuron was recorded (False: NaN)")
        for j in range(n_post):
            col = Y[:, :, j]
            recorded = bool(np.isfinite(col).all())
            times = []
            if recorded:
                counts = np.rint(col).astype(int)
                if np.any(counts < 0) or not np.allclose(counts, col):
                    raise NWBError("spike counts must be whole numbers >= 0 to become spike times (a recording "
                                   "without observation noise)")
                for e, b in zip(*np.nonzero(counts)):
                    start = (e * T + b * k) * dt
                    times += [(start + (i + 0.5) * k * dt / counts[e, b]) * 1e-3 for i in range(counts[e, b])]
            f.add_unit(spike_times=np.asarray(times, np.float64), recorded=recorded)
    else:
        f.add_acquisition(pynwb.TimeSeries(name="activity", data=Y.astype(np.float32).reshape(E * R, n_post),
                                           unit="a.u.", rate=1.0 / k,
                                           description="mean rate of each bin of record_every steps (NaN: not "
                                                       "recorded)"))
    f.add_scratch(np.asarray(arrays["w0"], np.float32), name="w0", description="initial weights [E, n_post, n_pre]")
    if "w" in arrays:
        f.add_scratch(np.asarray(arrays["w"], np.float32), name="w", description="weights after each bin")
    f.add_scratch(np.asarray(k), name="record_every", description="steps per activity bin")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with pynwb.NWBHDF5IO(str(path), "w") as io:
        io.write(f)
    return path


def read_nwb(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of an NWB recording in the ``.npz`` names; :class:`NWBError` names what is
    missing or inconsistent."""
    pynwb = _pynwb()
    try:
        io = pynwb.NWBHDF5IO(str(path), "r")
        f = io.read()
    except Exception as e:  # h5py / hdmf raise many kinds on a file that is not NWB
        raise NWBError(f"not a readable NWB file ({type(e).__name__}: {e})") from None
    try:
        if "inputs" not in f.stimulus:
            raise NWBError("no stimulus TimeSeries 'inputs' (the presynaptic inputs, one sample per step)")
        ts = f.stimulus["inputs"]
        if f.trials is None or len(f.trials) == 0:
            raise NWBError("no trials table: one row per episode (start_time, stop_time)")
        E = len(f.trials)
        data = np.asarray(ts.data[:], np.float32)
        if data.ndim != 2 or data.shape[0] % E:
            raise NWBError(f"stimulus 'inputs' has shape {data.shape}; it must be [episodes x steps, n_pre] with "
                           f"{E} episodes (trials) of equal length")
        T = data.shape[0] // E
        dt = 1000.0 / float(ts.rate)
        try:
            k = int(np.asarray(f.get_scratch("record_every")))
            W0 = np.asarray(f.get_scratch("w0"), np.float32)
        except (KeyError, ValueError):
            raise NWBError("no scratch data 'w0' (initial weights [E, n_post, n_pre]) and 'record_every'") from None
        out = {"w0": W0, "record_every": np.asarray(k)}
        try:
            out["w"] = np.asarray(f.get_scratch("w"), np.float32)
        except (KeyError, ValueError):
            pass
        X = data.reshape(E, T, -1)
        if ts.unit == "spikes":
            if f.units is None or "recorded" not in f.units.colnames:
                raise NWBError("a spike recording needs a units table with spike_times and a boolean column "
                               "'recorded' (one unit per postsynaptic neuron)")
            R = T // k
            counts = np.full((E, R, len(f.units)), np.nan, np.float32)
            edges = np.arange(E * R + 1) * k * dt * 1e-3
            for j in range(len(f.units)):
                if bool(f.units["recorded"][j]):
                    counts[:, :, j] = np.histogram(np.asarray(f.units["spike_times"][j]), edges)[0].reshape(E, R)
            out.update(s_pre=X, s_post=counts, dt=np.asarray(dt))
        else:
            if "activity" not in f.acquisition:
                raise NWBError("a rate recording needs the acquisition TimeSeries 'activity' [episodes x bins, n_post]")
            Y = np.asarray(f.acquisition["activity"].data[:], np.float32)
            if Y.ndim != 2 or Y.shape[0] % E:
                raise NWBError(f"acquisition 'activity' has shape {Y.shape}; it must be [episodes x bins, n_post]")
            out.update(x=X, y=Y.reshape(E, Y.shape[0] // E, -1))
        return out
    finally:
        io.close()


__all__ = ["write_nwb", "read_nwb", "NWBError"]
