"""Is training bit-reproducible on this machine? Run one `quadlens train` command many times,
each in a fresh process, and count the distinct weights it gives.

    python tools/repro_check.py --runs 50
    python tools/repro_check.py --runs 20 --threads 1 -- --preset pizza --seed 3 --epochs 500

Arguments after `--` replace the default training arguments (a tiny model: p = 23, seed 0,
3,000 epochs, ~3 s a run on 2 cores); `--out` is added. Exit status 0 when every run gave the
same weights, 1 when they did not. This is how the first-call race of MKL's vector math library
was measured (`quadlens/_vml.py`): before the fix 3 of 40 runs of the default gave other weights.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

DEFAULT = ["--preset", "pizza", "--seed", "0", "--p", "23", "--d-model", "32", "--n-heads", "4",
           "--d-head", "8", "--d-mlp", "64", "--epochs", "3000", "--lr", "3e-3",
           "--checkpoint-every", "200"]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1 :] if "--" in argv else None
    own = argv[: argv.index("--")] if "--" in argv else argv
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=20, help="fresh processes to run (default 20)")
    ap.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS for each run")
    args = ap.parse_args(own)
    if args.runs < 2:
        ap.error("--runs must be at least 2")
    env = dict(os.environ)
    if args.threads is not None:
        env["OMP_NUM_THREADS"] = str(args.threads)
    counts: collections.Counter[str] = collections.Counter()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        for i in range(args.runs):
            cmd = [sys.executable, "-m", "quadlens", "train", *(extra or DEFAULT), "--quiet",
                   "--overwrite", "--out", str(out)]  # fmt: skip
            res = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if res.returncode != 0:
                print(f"run {i + 1} failed:\n{res.stderr}", file=sys.stderr)
                return 2
            digest = hashlib.sha256((out / "weights.safetensors").read_bytes()).hexdigest()[:16]
            counts[digest] += 1
            print(f"run {i + 1}/{args.runs}: {digest}", flush=True)
    print("\n".join(f"{n:5d} x {d}" for d, n in counts.most_common()))
    same = len(counts) == 1
    print("every run gave the same weights" if same else f"{len(counts)} different sets of weights")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
