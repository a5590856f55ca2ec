"""Time of the quadrature lens on a p = 59 model (the issue's target: seconds on 2 cores).

Runs `lens.analyze` (Fourier fits of all 512 neurons, clusters, closed forms over all p^3
(a, b, c), G_k at 2p points) and the figures on the Zhong et al. fixture, and, for scale, one
alternative a notebook user would write: per-neuron least-squares fits of U, V and O onto
cos/sin at every frequency (numpy lstsq), which yields the same amplitudes and phases.

    python -m benchmarks.analyze_speed
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import timed
from quadlens import plots
from quadlens.circuit import circuit
from quadlens.imports import import_zhong
from quadlens.lens import analyze, logit_maps

FIX = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "zhong-model-a"


def lstsq_fits(U: np.ndarray) -> np.ndarray:
    """Amplitude per (frequency, neuron) by least squares, one neuron at a time."""
    p, n = U.shape
    x = np.arange(p)
    ks = np.arange(1, (p - 1) // 2 + 1)
    design = np.concatenate(
        [np.ones((p, 1)), np.cos(2 * np.pi * np.outer(x, ks) / p),
         np.sin(2 * np.pi * np.outer(x, ks) / p)], axis=1)  # fmt: skip
    amps = np.empty((len(ks), n))
    for i in range(n):
        coef, *_ = np.linalg.lstsq(design, U[:, i], rcond=None)
        amps[:, i] = np.hypot(coef[1 : 1 + len(ks)], coef[1 + len(ks) :])
    return amps


def main() -> None:
    _, model = import_zhong(FIX / "model_p99zdpze5l.pt", FIX / "config_p99zdpze5l.json")
    an = analyze(model)
    t_analyze = timed(lambda: analyze(model))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)

        def figures() -> None:
            plots.spectrum(an, out)
            plots.phase_wheels(an, out)
            plots.quadrature_picture(an, out)
            maps = {k: v.numpy() for k, v in logit_maps(circuit(model), an).items()}
            plots.logit_heatmaps(maps, 0, out)
            plots.secondary_phases(an, out)

        t_fig = timed(figures, reps=2)
    with torch.no_grad():
        c = circuit(model)
    U, V, O = (t.double().numpy() for t in (c.U, c.V, c.O.T))
    t_lstsq = timed(lambda: [lstsq_fits(M) for M in (U, V, O)], reps=2)
    t_fft = timed(lambda: [torch.fft.fft(torch.from_numpy(M), dim=0) for M in (U, V, O)])
    result = {
        "analyze_seconds": round(t_analyze, 3),
        "figures_seconds": round(t_fig, 3),
        "neuron_fits_fft_seconds": round(t_fft, 5),
        "neuron_fits_lstsq_loop_seconds": round(t_lstsq, 3),
        "fits_speedup": round(t_lstsq / t_fft, 1),
    }
    print(json.dumps(result, indent=2))
    Path("benchmarks/out").mkdir(parents=True, exist_ok=True)
    Path("benchmarks/out/analyze_speed.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
