"""Fast exact training step for the constant-attention ReLU (or x^2) transformer.

It evaluates the same function with the same parameters as `Model.forward`, restricted to the
training pairs, through the circuit view (science.md §1), and back-propagates by hand:

    E   = [W_E + W_pos[0]; W_E + W_pos[1]]                       [2 vocab, d_model]
    R   = [1/2 E_a W_OV; E_b + 1/2 E_b W_OV]                     residual at position 1 per token
    U;V = R @ W_in,  D_a;D_b = R @ W_U,  O = W_out @ W_U,  bias = b_out @ W_U
    logits[t] = act(U[a_t] + V[b_t] + b_in) @ O + D_a[a_t] + D_b[b_t] + bias

Every tensor has a leading model axis S, so one `Step` trains S models of one shape at once,
each with its own training pairs. On the CPU each model gets exactly the bits of its single run
(tested); the torch path (CUDA) batches the matmuls over models, which may round differently.
The three N x d_mlp x p products dominate; a general transformer step costs ~N d_model
(3 d_model + 2 d_mlp) multiply-adds per position instead. On the CPU everything between the
circuit's forward and its backward (the pair gather, the ReLU, the three large products, the
direct path, the float64 softmax, the ReLU's backward and the sums over the pairs that share a
token) runs in the fused kernels (`_kernels`: C with OpenMP on torch's threads, compiled on first
use, BLAS calls on chunks of 128 pairs that stay in the cache). Elsewhere (CUDA, a machine
without a C compiler, a torch without a BLAS gemm to call) it runs as torch operations over all
pairs at once. The two compute the same
function and agree to float rounding (tested); their bits differ, because the kernels sum over the
pairs chunk by chunk. On the CPU the circuit's own forward and backward (the small matmuls
through W_E ... W_U, `circuit` and `circuit_backward` here) run in C too (`_kernels`: each
product one single-threaded BLAS call, independent ones side by side on the threads); elsewhere
they are the torch functions below. The kernels' gradients come out laid out like their
parameters; the torch functions' W_V gradient is a permuted view, which optim.AdamW copies into
W_V's layout (the CPU's fused AdamW kernel misreads any other layout).

Gradients are checked against autograd through `Model.forward` in the tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from quadlens import _kernels

# Parameters the fast path reads and writes gradients for (W_Q and W_K play no role).
FAST_PARAMS = _kernels.PARAMS


def tr(x: Tensor) -> Tensor:
    """Batched transpose of the last two axes."""
    return x.transpose(-1, -2)


@dataclass
class _Circuit:
    """The circuit of S models and what its backward pass needs."""

    E: Tensor  # [S, 2p, d_model]
    Wv: Tensor  # [S, d_model, head*d_head]
    Wo: Tensor  # [S, head*d_head, d_model]
    W_OV: Tensor  # [S, d_model, d_model]
    R: Tensor  # [S, 2p, d_model]
    UV: Tensor  # [S, 2p, neuron]  U over V
    D: Tensor  # [S, 2p, p]  D_a over D_b
    O: Tensor  # [S, neuron, p]
    bias: Tensor  # [S, 1, p]  b_out @ W_U


@dataclass
class _Grads:
    """Gradients of the loss with respect to the circuit's pieces."""

    dUV: Tensor  # [S, 2p, neuron]  dU over dV
    dD: Tensor  # [S, 2p, p]  dD_a over dD_b
    dO: Tensor  # [S, neuron, p]
    dbias: Tensor  # [S, p]


def circuit(P: dict[str, Tensor]) -> _Circuit:
    W_E, W_pos, W_V, W_O = P["W_E"], P["W_pos"], P["W_V"], P["W_O"]
    S, p, d = W_E.shape
    E = torch.cat([W_E + W_pos[:, 0:1], W_E + W_pos[:, 1:2]], 1)  # [S, 2p, d]
    Wv = W_V.permute(0, 2, 1, 3).reshape(S, d, -1)  # [S, d, head*d_head]
    Wo = W_O.reshape(S, -1, d)  # [S, head*d_head, d]
    W_OV = Wv @ Wo
    R = 0.5 * (E @ W_OV)
    R[:, p:] += E[:, p:]  # token b also reaches position 1 through the residual stream
    bias = P["b_out"][:, None, :] @ P["W_U"]
    return _Circuit(E, Wv, Wo, W_OV, R, R @ P["W_in"], R @ P["W_U"], P["W_out"] @ P["W_U"], bias)


def circuit_backward(P: dict[str, Tensor], c: _Circuit, d: _Grads) -> dict[str, Tensor]:
    """Gradients of every name in FAST_PARAMS from those of the circuit's pieces."""
    W_in, W_U, W_out = P["W_in"], P["W_U"], P["W_out"]
    S, p, dm = P["W_E"].shape
    g: dict[str, Tensor] = {}
    dUV, dD = d.dUV, d.dD
    dR = dUV @ tr(W_in) + dD @ tr(W_U)  # [S, 2p, d]
    g["W_in"] = tr(c.R) @ dUV
    g["b_in"] = dUV[:, :p].sum(1)
    g["W_U"] = tr(c.R) @ dD + tr(W_out) @ d.dO + P["b_out"][:, :, None] * d.dbias[:, None, :]
    g["W_out"] = d.dO @ tr(W_U)
    g["b_out"] = (W_U * d.dbias[:, None, :]).sum(-1)  # (not a matvec: same bits for any S)
    dT = 0.5 * dR
    dE = dT @ tr(c.W_OV)
    dE[:, p:] += dR[:, p:]
    dW_OV = tr(c.E) @ dT  # [S, d, d]
    h, e = P["W_V"].shape[1], P["W_V"].shape[3]
    g["W_V"] = (dW_OV @ tr(c.Wo)).reshape(S, dm, h, e).permute(0, 2, 1, 3)
    g["W_O"] = (tr(c.Wv) @ dW_OV).reshape(S, h, e, dm)
    g["W_E"] = dE[:, :p] + dE[:, p:]
    g["W_pos"] = torch.stack([dE[:, :p].sum(1), dE[:, p:].sum(1)], 1)
    return g


class Step:
    """Loss and gradients of S stacked models on their training pairs.

    P holds the parameters [S, ...] (read afresh on every call); `pairs` [S, N] are the flat
    indices a p + b of each model's training pairs and `y` [S, N] their labels. `kernels`
    chooses the fused CPU kernels (the default on the CPU, where they build) or torch operations
    (elsewhere)."""

    def __init__(self, P: dict[str, Tensor], pairs: Tensor, y: Tensor, activation: str,
                 kernels: bool | None = None) -> None:  # fmt: skip
        if activation not in ("relu", "quadratic"):
            raise ValueError(f"the fast path handles relu and quadratic, not {activation!r}")
        self.P, self.activation, self.y = P, activation, y
        S, p, _ = P["W_E"].shape
        self.S, self.p, self.N, self.H = S, p, pairs.shape[1], P["W_in"].shape[-1]
        on_cpu = P["W_E"].device.type == "cpu"
        self.kernels = on_cpu and _kernels.available() if kernels is None else kernels
        if self.kernels and not on_cpu:
            raise ValueError("the fused kernels run on the CPU only")
        if self.kernels and not _kernels.available():
            raise ValueError("the fused CPU kernels are not available (no working C compiler, "
                             "or no BLAS gemm in torch); use kernels=False")  # fmt: skip
        self.a, self.b = pairs // p, pairs % p
        if self.kernels:
            self._setup_kernels(P["W_E"].dtype)
        else:  # rows of [U; V] stacked over models that each pair sums (embedding bags)
            s = torch.arange(S, device=pairs.device)[:, None]
            self.bags = torch.stack([s * p + self.a, S * p + s * p + self.b], -1).reshape(-1, 2)

    def __call__(self) -> tuple[Tensor, list[dict[str, Tensor]]]:
        """(mean cross-entropy per model [S] (log-softmax in float64), each model's gradients by
        name)."""
        if not self.kernels:
            loss, g = self.stacked()
            return loss, [{k: v[s] for k, v in g.items()} for s in range(self.S)]
        # One model at a time, each (in a batch) from its own aligned copy of its parameters:
        # every operation then sees what it sees in a single run, so each model gets a single
        # run's bits (batched matmuls over misaligned slices round differently); on the CPU
        # stacking models saves nothing (benchmarks/README.md).
        def own(s: int) -> dict[str, Tensor]:
            return self.P if self.S == 1 else {k: v[s : s + 1].clone() for k, v in self.P.items()}

        out = [self._one(s, own(s)) for s in range(self.S)]
        return torch.cat([x for x, _ in out]), [g for _, g in out]

    def stacked(self) -> tuple[Tensor, dict[str, Tensor]]:
        """(mean cross-entropy per model [S], the gradients by name, each stacked [S, ...]): the
        torch operations over the whole stack (on a GPU, a few dozen kernels for any S); with
        the fused CPU kernels, each model's gradients stacked."""
        if self.kernels:
            loss, grads = self()
            return loss, {k: torch.stack([g[k] for g in grads]) for k in grads[0]}
        c = circuit(self.P)
        loss, d = self._middle_torch(c)
        return loss, circuit_backward(self.P, c, d)

    def _one(self, s: int, P: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """Model s (P: its parameters [1, ...]) through the fused kernels: its loss [1] and
        gradients (without the model axis)."""
        k, (a, b, y), sq = _kernels, self._idx[s], self.activation == "quadratic"
        p, buf = self.p, self._buf
        P1 = {name: v[0] for name, v in P.items()}
        k.circuit_forward(P1, buf)
        Ub, V, Ot, D = buf["UVb"][:p], buf["UVb"][p:], buf["Ot"], buf["D"]
        k.fused_forward(Ub, V, Ot, D, buf["bias"], a, b, y, self.z, self.z_label, sq)
        e = self.z.exp_()  # torch's vectorised exp, in place
        total = e.sum(-1)
        dUV, dD, dOt, dbias = k.fused_backward(Ub, V, Ot, e, total, a, b, y, self.parts, sq)
        g = k.circuit_backward(P1, buf, dUV, dD, dOt, dbias)
        loss = (total.log() - self.z_label).mean(-1, keepdim=True)
        return loss, g

    def _middle_torch(self, c: _Circuit) -> tuple[Tensor, _Grads]:
        p, relu = self.p, self.activation == "relu"
        pre = _pair_sum(c.UV[:, :p] + self.P["b_in"][:, None], c.UV[:, p:], self.bags)
        hidden = pre.relu_() if relu else pre * pre
        # (O^T hidden^T)^T is the same product; MKL runs this orientation ~15% faster here
        logits = tr(tr(c.O) @ tr(hidden)) + _pair_sum(c.D[:, :p], c.D[:, p:], self.bags)
        logits += c.bias
        loss, G = loss_and_grad(logits, self.y)
        dO = tr(tr(G) @ hidden)  # [S, neuron, p]; this order is ~30% faster on the CPU
        dh = G @ tr(c.O)  # [S, N, neuron]
        if relu:  # in place: dh is not needed again
            dpre = torch.ops.aten.threshold_backward.grad_input(dh, hidden, 0.0, grad_input=dh)
        else:
            dpre = dh.mul_(pre).mul_(2.0)
        dUV = torch.cat(_pair_reduce(dpre, self.bags, p), 1)
        dD = torch.cat(_pair_reduce(G, self.bags, p), 1)
        return loss, _Grads(dUV, dD, dO, G.sum(1))

    def _setup_kernels(self, dtype: torch.dtype) -> None:
        N, H, p = self.N, self.H, self.p
        self._idx = [tuple(x[s].to(torch.int64).contiguous() for x in (self.a, self.b, self.y))
                     for s in range(self.S)]  # fmt: skip
        # fixed buffers (fresh blocks every step would cost page faults)
        self.z = torch.empty(N, p, dtype=torch.float64)
        self.z_label = torch.empty(N, dtype=torch.float64)
        self.parts = torch.empty(_kernels.parts_size(p, H), dtype=dtype)
        self._buf = _kernels.circuit_buffers({k: v[0] for k, v in self.P.items()})


def _pair_sum(U: Tensor, V: Tensor, bags: Tensor) -> Tensor:
    """U[a] + V[b] for every pair: [S, N, k], in one embedding-bag pass over the table [U; V]
    (without materialising the p^2 grid or gathering twice)."""
    S, p, k = U.shape
    table = torch.cat([U.reshape(S * p, k), V.reshape(S * p, k)])
    return torch.nn.functional.embedding_bag(bags, table, mode="sum").view(S, -1, k)


def _pair_reduce(grad: Tensor, bags: Tensor, p: int) -> tuple[Tensor, Tensor]:
    """Adjoint of _pair_sum: sums of grad [S, N, k] over the pairs sharing a (for U) and
    sharing b (for V), added in pair order from zero."""
    S, _, k = grad.shape
    flat = grad.reshape(-1, k)
    out = []
    for idx in (bags[:, 0], bags[:, 1] - S * p):  # s p + a, s p + b
        zeros = torch.zeros(S * p, k, dtype=grad.dtype, device=grad.device)
        out.append(zeros.index_add_(0, idx, flat).view(S, p, k))
    return out[0], out[1]


def loss_and_grad(logits: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """Mean cross-entropy per model [S] (log-softmax in float64) and dloss/dlogits in the
    logits' dtype: (softmax - onehot) / N."""
    n = labels.shape[-1]
    z = logits.to(torch.float64, copy=True)  # [S, N, p]; never modify the caller's logits
    z -= z.amax(-1, keepdim=True)
    e = z.exp()
    total = e.sum(-1, keepdim=True)
    loss = (total.log()[..., 0] - z.gather(-1, labels[..., None])[..., 0]).mean(-1)
    G = e.div_(total * n)
    G.scatter_add_(-1, labels[..., None], torch.full_like(G[..., :1], -1.0 / n))
    G = G.to(logits.dtype)
    # subnormal entries flushed to zero, as the fused kernels do (_kernels.c): a trained model's
    # off-label probabilities / N fall below the dtype's smallest normal number, and on the CPU
    # the products with them ran ~1.5x slower by epoch 1,300
    return loss, G.masked_fill_(G.abs() < torch.finfo(G.dtype).tiny, 0.0)
