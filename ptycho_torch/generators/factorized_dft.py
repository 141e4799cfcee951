"""The factorized (FFNO) spectral convolution on the kept frequencies only, as real matrix products.

The layer sums two 1-D spectral convolutions, one along W with ``weights_x``
and one along H with ``weights_y`` (each complex, (in, out, modes)):

    y = irfft_W( Wx · rfft_W(x)[kept] ) + irfft_H( Wy · rfft_H(x)[kept] )

keeping the first q = min(modes, N//2 + 1) frequencies of each N-point axis.
Per axis and kept frequency k, the channels mix as Y_o[k] = Σ_i X_i[k]·w[i, o, k].

``factorized_spectral_conv2d`` never forms a full spectrum. Along an N-point
axis it multiplies by two small real matrices (``AxisDFT``):

    analysis  (N, 2q):  columns (re, im) of Σ_n x[n]·e^{-2πi k n/N}
    synthesis (2q, N):  rows (re, im):  (c_k/N)·Re(Y[k]·e^{2πi k n/N}), summed over k

with c_k = 1 for k = 0 and the Nyquist frequency k = N/2, else 2: exactly
``irfft`` of a half-spectrum that is zero outside the kept frequencies (irfft
drops the imaginary part at k = 0 and k = N/2, and so does Re(·) there). The
channel mixing at each frequency is one real GEMM with the 2·out × 2·in block
matrix [[Re Wᵀ, -Im Wᵀ], [Im Wᵀ, Re Wᵀ]]. The cost is O(B·C·H·W·modes) plus
O(B·C²·(H+W)·modes); the large tensors are read and written once per pass,
and the H-branch's synthesis adds into the W-branch's output in the same GEMM.

``factorized_spectral_conv2d_fft`` is the straightforward formulation (full
rfft per axis, zero-filled half-spectrum, einsum, irfft), kept as the tested
reference.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from .truncated_dft import Relayout, dft_angles

__all__ = ["AxisDFT", "axis_dft", "check_factorized_operands", "factorized_spectral_conv2d",
           "factorized_spectral_conv2d_fft", "kept_frequencies"]

_COMPLEX_OF = {torch.float32: torch.complex64, torch.float64: torch.complex128}


def kept_frequencies(size: int, modes: int) -> int:
    """How many of an axis's rfft frequencies (0…q-1) the layer keeps: min(modes, size//2 + 1)."""
    return min(modes, size // 2 + 1)


class AxisDFT(NamedTuple):
    """The real analysis (N, 2q) and synthesis (2q, N) matrices of one axis, columns/rows (re/im, k).

    ``analysis_t`` and ``synthesis_t`` are their transposes, stored contiguous: multiplied from the
    left they transform the second-to-last axis, and a CPU ``bmm`` given a transposed view would
    copy it once per batch entry.
    """

    analysis: torch.Tensor
    synthesis: torch.Tensor
    analysis_t: torch.Tensor
    synthesis_t: torch.Tensor


_CACHE: dict[tuple, AxisDFT] = {}
_CACHE_SIZE = 64


def axis_dft(size: int, modes: int, dtype: torch.dtype, device: torch.device) -> AxisDFT:
    """The matrices of a ``size``-point axis keeping ``modes``, cached (a dict: torch.compile-friendly)."""
    key = (size, modes, dtype, device)
    if key not in _CACHE:
        if len(_CACHE) >= _CACHE_SIZE:
            del _CACHE[next(iter(_CACHE))]
        _CACHE[key] = _build_axis_dft(size, modes, dtype, device)
    return _CACHE[key]


def _build_axis_dft(size: int, modes: int, dtype: torch.dtype, device: torch.device) -> AxisDFT:
    """Computed in float64, cast once."""
    q = kept_frequencies(size, modes)
    angles = dft_angles(torch.arange(q), size)  # (q, N)
    analysis = torch.cat([angles.cos(), -angles.sin()]).T  # e^{-iθ} = cos θ - i sin θ
    weight = torch.full((q, 1), 2.0, dtype=torch.float64)
    weight[0] = 1.0
    if size % 2 == 0 and q == size // 2 + 1:
        weight[-1] = 1.0  # the Nyquist frequency is its own mirror
    synthesis = torch.cat([weight * angles.cos(), -weight * angles.sin()]) / size
    return AxisDFT(
        *(m.to(device=device, dtype=dtype).contiguous() for m in (analysis, synthesis, analysis.T, synthesis.T))
    )


def check_factorized_operands(x: torch.Tensor, weights_x: torch.Tensor, weights_y: torch.Tensor) -> None:
    """Real (B, C, H, W) input; two complex (C, C, modes) weights of the input's complex dtype."""
    for name, w in (("weights_x", weights_x), ("weights_y", weights_y)):
        if w.dim() != 3 or not w.is_complex() or w.shape[0] != w.shape[1]:
            raise ValueError(
                f"{name} must be complex of shape (channels, channels, modes); got {tuple(w.shape)} {w.dtype}"
            )
    if weights_x.shape != weights_y.shape:
        raise ValueError(
            f"weights_x and weights_y must have one shape; got {tuple(weights_x.shape)} and {tuple(weights_y.shape)}"
        )
    expected = _COMPLEX_OF.get(x.dtype)
    channels = weights_x.shape[0]
    if x.dim() != 4 or expected is None or x.shape[1] != channels:
        raise ValueError(
            f"x must be float32 or float64 of shape (batch, {channels}, H, W); got {tuple(x.shape)} {x.dtype}"
        )
    if weights_x.dtype != expected or weights_y.dtype != expected:
        raise ValueError(f"{x.dtype} input needs {expected} weights; got {weights_x.dtype}, {weights_y.dtype}")


class _AnalyzeBothAxes(torch.autograd.Function):
    """x → (its kept spectrum along W, its kept spectrum along H), one input gradient written once.

    Autograd would sum the two branches' input gradients in a separate full-size add; here the
    H-branch's gradient is accumulated into the W-branch's by the GEMM itself (``baddbmm``).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, dft_w: AxisDFT, dft_h: AxisDFT) -> tuple[torch.Tensor, torch.Tensor]:
        batch, channels, height, width = x.shape
        ctx.shape, ctx.dft_w, ctx.dft_h = x.shape, dft_w, dft_h
        spec_w = torch.mm(dft_w.analysis_t, x.reshape(-1, width).t())
        images = x.reshape(batch * channels, height, width)
        spec_h = torch.bmm(dft_h.analysis_t.expand(batch * channels, -1, -1), images)
        return spec_w, spec_h  # (c,k), (b,i,h) and (b,i), (c,k), w

    @staticmethod
    def backward(ctx, grad_w: torch.Tensor, grad_h: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        batch, channels, height, width = ctx.shape
        grad_x = torch.mm(grad_w.contiguous().t(), ctx.dft_w.analysis_t).view(batch * channels, height, width)
        grad_x = torch.baddbmm(grad_x, ctx.dft_h.analysis.expand(batch * channels, -1, -1), grad_h.contiguous())
        return grad_x.view(ctx.shape), None, None


class _SynthesizeAlongHInto(torch.autograd.Function):
    """``out`` plus each (b, o) image's H-axis synthesis (``synthesis_t`` @ its spectrum), in one GEMM.

    The backward multiplies by the stored contiguous transpose: ``bmm`` of an expanded matrix would
    otherwise differentiate into a product with its transposed, expanded view.
    """

    @staticmethod
    def forward(ctx, out: torch.Tensor, spectrum: torch.Tensor, dft_h: AxisDFT) -> torch.Tensor:
        ctx.dft_h = dft_h
        return torch.baddbmm(out, dft_h.synthesis_t.expand(spectrum.shape[0], -1, -1), spectrum)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None]:
        grad = grad.contiguous()
        return grad, torch.bmm(ctx.dft_h.synthesis.expand(grad.shape[0], -1, -1), grad), None


def _mixing_blocks(weights: torch.Tensor, kept: int) -> torch.Tensor:
    """(kept, 2·out, 2·in) real blocks [[Re Wᵀ, -Im Wᵀ], [Im Wᵀ, Re Wᵀ]] of complex (in, out, modes) weights."""
    w = weights[:, :, :kept].permute(2, 1, 0)  # (k, out, in)
    re, im = w.real, w.imag
    return torch.cat([torch.cat([re, -im], 2), torch.cat([im, re], 2)], 1)


def factorized_spectral_conv2d(x: torch.Tensor, weights_x: torch.Tensor, weights_y: torch.Tensor) -> torch.Tensor:
    """Real (B, C, H, W) → real (B, C, H, W): the W-axis branch plus the H-axis branch, kept frequencies only."""
    check_factorized_operands(x, weights_x, weights_y)
    batch, channels, height, width = x.shape
    modes = weights_x.shape[-1]
    dft_w = axis_dft(width, modes, x.dtype, x.device)
    dft_h = axis_dft(height, modes, x.dtype, x.device)
    q_w, q_h = dft_w.analysis.shape[1] // 2, dft_h.analysis.shape[1] // 2

    # Analysis: along W one GEMM over all rows (b, i, h); along H each (b, i) image from the left.
    # Every relayout below moves whole rows of h (or w): the W analysis is computed transposed,
    # (c, k) outermost, and the W synthesis reads its operand transposed.
    spec_w, spec_h = _AnalyzeBothAxes.apply(x, dft_w, dft_h)

    spec_w = Relayout.apply(spec_w.view(2, q_w, batch, channels, height), (1, 0, 3, 2, 4))  # k, c, i, b, h
    mixed_w = torch.bmm(_mixing_blocks(weights_x, q_w), spec_w.view(q_w, 2 * channels, batch * height))
    mixed_w = Relayout.apply(mixed_w.view(q_w, 2, channels, batch, height), (1, 0, 3, 2, 4))  # c, k, b, o, h
    out = torch.mm(mixed_w.view(2 * q_w, -1).t(), dft_w.synthesis).view(batch * channels, height, width)

    spec_h = Relayout.apply(spec_h.view(batch, channels, 2, q_h, width), (3, 2, 1, 0, 4))  # k, c, i, b, w
    mixed_h = torch.bmm(_mixing_blocks(weights_y, q_h), spec_h.view(q_h, 2 * channels, batch * width))
    mixed_h = Relayout.apply(mixed_h.view(q_h, 2, channels, batch, width), (3, 2, 1, 0, 4))  # b, o, c, k, w
    out = _SynthesizeAlongHInto.apply(out, mixed_h.view(batch * channels, 2 * q_h, width), dft_h)
    return out.view(batch, channels, height, width)


def factorized_spectral_conv2d_fft(x: torch.Tensor, weights_x: torch.Tensor, weights_y: torch.Tensor) -> torch.Tensor:
    """The straightforward formulation: per axis, full rfft, zero-filled half-spectrum, einsum, irfft.

    The reference that ``factorized_spectral_conv2d`` is tested against (outputs and gradients).
    """
    check_factorized_operands(x, weights_x, weights_y)
    batch, channels, height, width = x.shape
    modes = weights_x.shape[-1]
    q_w, q_h = kept_frequencies(width, modes), kept_frequencies(height, modes)

    x_ft = torch.fft.rfft(x, dim=-1)
    out_ft = x_ft.new_zeros(batch, channels, height, width // 2 + 1)
    out_ft[..., :q_w] = torch.einsum("bihk,iok->bohk", x_ft[..., :q_w], weights_x[..., :q_w])
    along_w = torch.fft.irfft(out_ft, n=width, dim=-1)

    x_ft = torch.fft.rfft(x, dim=-2)
    out_ft = x_ft.new_zeros(batch, channels, height // 2 + 1, width)
    out_ft[:, :, :q_h] = torch.einsum("bikw,iok->bokw", x_ft[:, :, :q_h], weights_y[..., :q_h])
    along_h = torch.fft.irfft(out_ft, n=height, dim=-2)
    return along_w + along_h
