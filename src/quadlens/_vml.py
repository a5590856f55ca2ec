"""Let MKL's vector math library finish its one-time set-up before anything calls it in parallel.

On x86, torch's CPU exp, log, cos, sin (and others) on float tensors call the vector math
library of the MKL linked into libtorch_cpu (vdExp and its kin), from each thread that takes a
share of the tensor. The library sets itself up on its first call in the process. When that
first call is made from two threads at once, one of them can compute its share with a far less
accurate routine: torch.exp on float64 came back with relative errors up to 3.3e-9 (the default
high-accuracy routine is within 1 ulp, ~1e-16) on the rows one thread took, and only in that first
call. Measured on 2026-12-06 (Intel Xeon, 2 threads, torch 2.13.0), in fresh `quadlens train`
processes of a tiny model: 11 of 130 runs. The first call there is the softmax's exp of the first
training step, so the gradient of step 0 (and with it AdamW's moments, and every weight after)
changed: the README's former "training on two threads is not always bit-reproducible".

One call of the library on one thread, before anything runs in parallel, ends it: with such a
call first, 0 of 300 runs (exp or log as the first call, on one thread or two). `warm_up` makes
that call; importing this module runs it, and the package imports this module first. It also
keeps true what the bounds' and certificates' rounding analysis assumes: elementary functions
within 1 ulp.
"""

from __future__ import annotations

import torch


def warm_up() -> None:
    """One call of the vector math library on this thread (a few elements: no other thread
    takes part). Harmless to repeat, and where torch has no MKL."""
    torch.zeros(8, dtype=torch.float64).exp_()


warm_up()
