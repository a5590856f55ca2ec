"""Mutation check of the proofs: do the tests catch a wrong bound?

Each mutation below makes one term of a certificate or compact bound smaller, drops it, flips
its sign or swaps two terms, so that the proof could claim more than the truth. For each, this
script copies `src/` into a temporary directory, applies the mutation there (the working tree is
never modified), and runs the soundness tests against the copy. A mutation the tests do not
catch is a gap in the tests (or, for the ones marked rounding-level, an error too small for any
test to see).

    .venv/bin/python tools/mutate_proofs.py            # all of them (about 10-20 minutes)
    .venv/bin/python tools/mutate_proofs.py M15 B7     # some, by name

Exit code 0 when every mutation not marked `expected` is caught, 1 otherwise. Some tests draw
their models with hypothesis. Until 2026-12-04 those draws were random, so a mutation that only
they caught could be caught in one run and missed in the next (M6 and B7 were; deterministic
cases now catch both). The tests now draw the same examples on every run (tests/conftest.py),
so this tool's verdict is the suite's. Results: docs/certificates.md ("A mutation run").
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = ["tests/test_certify.py", "tests/test_bound.py"]


def _tests(file: str) -> list[str]:
    """The test files, the mutated module's own first (`-x` stops at the first failure, so a
    mutation of bound.py is caught in seconds, not after all of test_certify.py)."""
    own = f"tests/test_{Path(file).stem}.py"
    return sorted(TESTS, key=lambda t: t != own)


@dataclass(frozen=True)
class Mutation:
    name: str
    file: str  # under src/quadlens
    old: str  # must occur exactly once
    new: str
    expected: str = ""  # why it may survive (then it is reported, not failed)


CERTIFY = "certify.py"
BOUND = "bound.py"
MUTATIONS = [
    Mutation("M1", CERTIFY, "m[t] = margins(L, s[t]) - rng", "m[t] = margins(L, s[t]) - 0.5 * rng"),
    Mutation("M2", CERTIFY, "rho = r.max(1).values - r.min(1).values", "rho = r.max(1).values"),
    Mutation("M3", CERTIFY, "D = ((g[:, None] + g[None, :] - 2 * G)",
             "D = ((g[:, None] + g[None, :] - 2.2 * G)"),
    Mutation("M4", CERTIFY, "take = (raise_c + lower_s)[s_all]", "take = (raise_c)[s_all]"),
    Mutation("M5", CERTIFY, "raise_c = raise_c + (Hh * o.clamp_min(0)).sum(0)",
             "raise_c = raise_c + 0.5 * (Hh * o.clamp_min(0)).sum(0)"),
    Mutation("M6", CERTIFY, "bound = cells.tables[1][a_, j] + cells.tables[2][b_, j]",
             "bound = cells.tables[1][a_, j]"),
    Mutation("M18", CERTIFY, "bound = cells.tables[1][a_, j] + cells.tables[2][b_, j]",
             "bound = cells.tables[2][b_, j]"),
    Mutation("M7", CERTIFY, "                bound += off\n",
             "                bound += 0.5 * off\n"),
    Mutation("M8", CERTIFY, "by_offset = torch.cat([2 * torch.sin(",
             "by_offset = torch.cat([1 * torch.sin("),
    Mutation("M10", CERTIFY, "out[sel] = margins(L, y[sel]) - ex.slack",
             "out[sel] = margins(L, y[sel]) + ex.slack"),
    Mutation("M11", CERTIFY, "cs.sub_(cut.mul_(spread[:, None]).mul_(1 + 4 * rem.gamma))",
             "cs.sub_(cut.mul_(spread[:, None]).mul_(0.95))"),
    Mutation("M12", CERTIFY, "AQ[ci, done:k] = x.A[ci] @ Q[:, done:k]",
             "AQ[ci, done:k] = (x.A[ci] @ Q[:, done:k]) * 1.05"),
    Mutation("M14", CERTIFY, "rp, rn = bd.output_remainder(cl, p, ops)",
             "rn, rp = bd.output_remainder(cl, p, ops)"),
    Mutation("M15", CERTIFY, "W[:, len(used) + i] = cells.C * torch.cos(",
             "W[:, len(used) + i] = 1.05 * cells.C * torch.cos("),
    Mutation("M16", CERTIFY, "return _Exact(c, cfg.d_model, hd, 2 * 16 * gamma * M)",
             "return _Exact(c, cfg.d_model, hd, 0.0)"),
    Mutation("M17", CERTIFY, "cs = rem.mean[s][:, None] - rem.mean[None, :]",
             "cs = 0 * (rem.mean[s][:, None] - rem.mean[None, :])"),
    Mutation("B1", BOUND, "K2 = ((aU + aV) * hs[:, None] ** 2).sum(0)",
             "K2 = 0.5 * ((aU + aV) * hs[:, None] ** 2).sum(0)"),
    Mutation("B2", BOUND, "smooth_g = (K2 * Bh).sum(1) * step**2 / 8",
             "smooth_g = (K2 * Bh).sum(1) * step**2 / 16"),
    Mutation("B3", BOUND, "smooth[0] += C * mk**2 * step**2 / 8",
             "smooth[0] += C * mk**2 * step**2 / 16"),
    Mutation("B4", BOUND, "kink = torch.where(flips, 2 * m0 * m1",
             "kink = torch.where(flips, m0 * m1"),
    Mutation("B5", BOUND, "flips = (g0 * g1 <= 0) | (torch.minimum(m0, m1) <= slack)",
             "flips = (g0 * g1 <= 0)", expected="rounding-level"),
    Mutation("B6", BOUND, "lower = (ag[:-1] + ag[1:] - Lp * step * (1 + fp)) / 2",
             "lower = (ag[:-1] + ag[1:] - 0.5 * Lp * step * (1 + fp)) / 2"),
    Mutation("B7", BOUND, "reach = e.abs() + e_other.abs().max(0).values + fp * cl.mag",
             "reach = e.abs() + fp * cl.mag"),
    Mutation("B8", BOUND, "le = loose * e[sl].abs()", "le = 0.5 * loose * e[sl].abs()"),
    Mutation("B9", BOUND, "Lp = (2 * hs[:, None] * other.abs()).sum(0)",
             "Lp = (1 * hs[:, None] * other.abs()).sum(0)"),
    Mutation("B10", BOUND, "rp = (cl.r.clamp_min(0) * (cl.H / 2)[:, None]).sum(0)",
             "rp = (cl.r.clamp_min(0) * (cl.H / 4)[:, None]).sum(0)"),
    Mutation("B11", BOUND, "return chord, 4 * lam * (1 - lam) * self.smooth_g",
             "return chord, 2 * lam * (1 - lam) * self.smooth_g"),
    Mutation("B12", BOUND, "+ 4 * lam * (1 - lam) * self.smooth + self.kink[t, j] + self",
             "+ 2 * lam * (1 - lam) * self.smooth + self.kink[t, j] + self"),
    Mutation("B13", BOUND, "        F[..., 0] -= P\n", "        F[..., 0] -= 1.05 * P\n"),
    Mutation("B14", BOUND, "H = torch.maximum(umax + vmax + beta,",
             "H = 0.9 * torch.maximum(umax + vmax + beta,"),
    Mutation("B15", BOUND, "self.smooth_g + self.kink[t, j]",
             "self.smooth_g + 0.5 * self.kink[t, j]"),
    Mutation("B16", BOUND, "mk = float(hs[0])", "mk = 1.0"),
    Mutation("B17", BOUND, "smooth[0] += C * mk**2 * step**2 / 8",
             "smooth[0] += C * mk * step**2 / 8"),
    Mutation("B18", BOUND, "kink_P[:, 0] = torch.where(flipP, 2 * P0 * P1",
             "kink_P[:, 0] = torch.where(flipP, P0 * P1"),
    Mutation("M19", CERTIFY, "*theta_delta_cells(p, cl.base, grid)",
             "*theta_delta_cells(p, k, grid)"),
]


def run(m: Mutation) -> tuple[bool, str, float]:
    """(caught, pytest's last line, seconds) for one mutation, in a temporary copy of src/."""
    with tempfile.TemporaryDirectory(prefix="quadlens-mutant-") as tmp:
        src = Path(tmp) / "src"
        shutil.copytree(ROOT / "src", src, ignore=shutil.ignore_patterns("__pycache__"))
        path = src / "quadlens" / m.file
        text = path.read_text()
        if text.count(m.old) != 1:
            raise SystemExit(f"{m.name}: the text to mutate occurs {text.count(m.old)} times in "
                             f"{m.file} (expected once); update the mutation list")  # fmt: skip
        path.write_text(text.replace(m.old, m.new))
        env = {**os.environ, "PYTHONPATH": str(src), "PYTHONDONTWRITEBYTECODE": "1"}
        t = time.perf_counter()
        cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
               *_tests(m.file)]  # fmt: skip
        r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        lines = [x for x in r.stdout.splitlines() if x.strip()]
        return r.returncode != 0, lines[-1] if lines else "", time.perf_counter() - t


def main(argv: list[str]) -> int:
    names = {m.name for m in MUTATIONS}
    unknown = [a for a in argv if a not in names]
    if unknown:
        print(f"unknown mutation(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}",
              file=sys.stderr)  # fmt: skip
        return 2
    chosen = [m for m in MUTATIONS if not argv or m.name in argv]
    missed = []
    for m in chosen:
        caught, last, sec = run(m)
        status = "caught" if caught else ("survived (expected)" if m.expected else "SURVIVED")
        note = f"  [{m.expected}]" if m.expected and not caught else ""
        print(f"{m.name:4s} {m.file:10s} {status:20s} {sec:5.0f} s  {last}{note}", flush=True)
        if not caught and not m.expected:
            missed.append(m.name)
    if missed:
        print(f"not caught: {', '.join(missed)}", file=sys.stderr)
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
