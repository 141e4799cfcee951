"""The spectral convolution computed on the retained modes only, as real matrix products.

For the kept modes kx ∈ {0…p-1} ∪ {-n…-1} (``retained_rows``) and ky ∈ {0…q-1}:

    X[b,i,kx,ky] = Σ_h Σ_w x[b,i,h,w] · e^{-2πi (kx·h/H + ky·w/W)}                  (analysis)
    Y[b,o,kx,ky] = Σ_i X[b,i,kx,ky] · W[i,o,kx,ky]                                    (mixing)
    y[b,o,h,w]   = 1/(H·W) Σ_{kx,ky} c_ky · Re(Y[b,o,kx,ky] · e^{2πi (kx·h/H + ky·w/W)})  (synthesis)

with c_ky = 1 for ky = 0 and for the Nyquist column ky = W/2, else 2. That is
exactly ``irfft2`` of a spectrum that is zero outside the kept modes, which is
what ``spectral_conv2d_fft`` (the straightforward formulation, kept as the
reference) computes with full transforms.

``spectral_conv2d`` never forms the full spectrum: each direction is one
product with a small precomputed matrix (W×2q, 2R×2H, 2H×2R, 2q×W with
R = p + n), so the cost is O(H·W·modes) per image and the large tensors are
only read and written once per pass. Complex numbers travel as (re, im) pairs
and every product is a real GEMM, because complex batched matmul on the CPU
copies each small matrix. The ``SpectralConv2d`` parameter is stored
mode-major, so the mixing reads it as (modes, in, out) matrices without a copy.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

__all__ = [
    "Relayout", "TruncatedDFT", "check_operands", "complex_dtype_for", "dft_angles", "kept_weights",
    "retained_cols", "retained_rows", "spectral_conv2d", "spectral_conv2d_fft", "truncated_dft",
]


def retained_rows(height: int, modes: int) -> tuple[int, int]:
    """How many kx >= 0 and kx < 0 rows are kept for an input of ``height`` rows.

    kx = 0…p-1 and kx = -n…-1 with p + n <= height, so the two corners never
    overlap; on odd heights the extra row goes to kx >= 0.
    """
    return min(modes, (height + 1) // 2), min(modes, height // 2)


_COMPLEX_OF = {torch.float32: torch.complex64, torch.float64: torch.complex128}


def complex_dtype_for(real_dtype: torch.dtype) -> torch.dtype:
    """The weights' dtype for an input of ``real_dtype`` (float64 → complex128, else complex64)."""
    return _COMPLEX_OF.get(real_dtype, torch.complex64)


def retained_cols(width: int, modes: int) -> int:
    """How many ky columns (0…q-1) of the rfft half-spectrum are kept."""
    return min(modes, width // 2 + 1)


class TruncatedDFT(NamedTuple):
    """Real matrices of the DFT restricted to the kept modes, for one input size.

    Column and row orders name the (re, im) part ``c`` and the mode:

    - ``analysis_w`` (W, 2q): x rows → columns (c, ky) of Σ_w x·e^{-2πi ky w/W}.
    - ``analysis_h`` (2R, 2H): rows (c, kx), columns (h, c): the complex product
      Σ_h e^{-2πi kx h/H}·t[h] written as one real matrix.
    - ``synthesis_h`` (2H, 2R): rows (h, c), columns (c, kx): (1/H) Σ_kx e^{2πi kx h/H}·Y[kx].
    - ``synthesis_w`` (2q, W): rows (c, ky): (c_ky/W)·Re(A[ky]·e^{2πi ky w/W}) summed over ky.
    """

    analysis_w: torch.Tensor
    analysis_h: torch.Tensor
    synthesis_h: torch.Tensor
    synthesis_w: torch.Tensor


def dft_angles(freqs: torch.Tensor, size: int) -> torch.Tensor:
    """2π·(f·n mod size)/size for every (f, n): reduced before scaling, so large sizes stay exact."""
    n = torch.arange(size, dtype=torch.int64)
    return (2 * math.pi / size) * torch.remainder(freqs.view(-1, 1) * n.view(1, -1), size).double()


_CACHE: dict[tuple, TruncatedDFT] = {}
_CACHE_SIZE = 64


def truncated_dft(
    height: int, width: int, modes: int, dtype: torch.dtype, device: torch.device
) -> TruncatedDFT:
    """The matrices for an H×W input keeping ``modes``, cached per size, dtype and device.

    A plain dict rather than ``functools.lru_cache``, whose wrapper torch.compile
    warns about and then ignores.
    """
    key = (height, width, modes, dtype, device)
    if key not in _CACHE:
        if len(_CACHE) >= _CACHE_SIZE:
            del _CACHE[next(iter(_CACHE))]
        _CACHE[key] = _build_truncated_dft(height, width, modes, dtype, device)
    return _CACHE[key]


def _build_truncated_dft(
    height: int, width: int, modes: int, dtype: torch.dtype, device: torch.device
) -> TruncatedDFT:
    """The matrices, computed in float64 and cast once."""
    n_pos, n_neg = retained_rows(height, modes)
    n_cols = retained_cols(width, modes)
    kx = torch.cat([torch.arange(n_pos), torch.arange(-n_neg, 0)])
    ky = torch.arange(n_cols)

    ang_w = dft_angles(ky, width)  # (q, W)
    analysis_w = torch.cat([ang_w.cos(), -ang_w.sin()]).T  # e^{-iθ} = cos θ - i sin θ

    ang_h = dft_angles(kx, height)  # (R, H)
    cos_h, sin_h = ang_h.cos(), ang_h.sin()
    # Re: cos·t_re + sin·t_im ; Im: -sin·t_re + cos·t_im, columns interleaved (h, c)
    analysis_h = torch.cat([torch.stack([cos_h, sin_h], -1), torch.stack([-sin_h, cos_h], -1)]).flatten(1)
    # Re: cos·Y_re - sin·Y_im ; Im: sin·Y_re + cos·Y_im, rows interleaved (h, c)
    synthesis_h = torch.stack(
        [torch.cat([cos_h.T, -sin_h.T], 1), torch.cat([sin_h.T, cos_h.T], 1)], 1
    ).flatten(0, 1) / height

    weight = torch.full((n_cols, 1), 2.0, dtype=torch.float64)
    weight[0] = 1.0
    if width % 2 == 0 and n_cols == width // 2 + 1:
        weight[-1] = 1.0  # the Nyquist column is its own mirror
    synthesis_w = torch.cat([weight * ang_w.cos(), -weight * ang_w.sin()]) / width

    return TruncatedDFT(
        *(m.to(device=device, dtype=dtype).contiguous() for m in (analysis_w, analysis_h, synthesis_h, synthesis_w))
    )


class Relayout(torch.autograd.Function):
    """Permute into a contiguous tensor, and the gradient back the same way.

    Plain ``permute().contiguous()`` hands its backward a permuted *view*, and
    a CPU ``bmm`` fed such a view copies it one small matrix at a time.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
        ctx.inverse = tuple(sorted(range(len(dims)), key=dims.__getitem__))
        return x.permute(dims).contiguous()

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad.permute(ctx.inverse).contiguous(), None


class _ComplexProductToModes(torch.autograd.Function):
    """(kx, ky, c_x, b, o, c_w) products of parts → the complex product, laid out (b, o, c, kx, ky).

    Re = re·re - im·im and Im = re·im + im·re; written by hand so that the
    backward fills each of the four gradient blocks once instead of
    zero-filling and summing four full-size select gradients.
    """

    @staticmethod
    def forward(ctx, prod: torch.Tensor) -> torch.Tensor:
        real = prod[:, :, 0, :, :, 0] - prod[:, :, 1, :, :, 1]
        imag = prod[:, :, 0, :, :, 1] + prod[:, :, 1, :, :, 0]
        return torch.stack([real, imag]).permute(3, 4, 0, 1, 2).contiguous()

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        real, imag = grad.permute(2, 3, 4, 0, 1)
        rows, cols, batch, out_ch = real.shape
        out = grad.new_empty(rows, cols, 2, batch, out_ch, 2)
        out[:, :, 0, :, :, 0] = real
        out[:, :, 1, :, :, 1] = -real
        out[:, :, 0, :, :, 1] = imag
        out[:, :, 1, :, :, 0] = imag
        return out


def kept_weights(weights: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The (in, out, R, q) part of (in, out, 2·modes, modes) weights that an H×W input uses."""
    modes = weights.shape[-1]
    n_pos, n_neg = retained_rows(height, modes)
    n_cols = retained_cols(width, modes)
    if (n_pos, n_neg, n_cols) == (modes, modes, modes):
        return weights
    return torch.cat([weights[:, :, :n_pos], weights[:, :, 2 * modes - n_neg :]], 2)[..., :n_cols]


def check_operands(x: torch.Tensor, weights: torch.Tensor) -> None:
    """Both formulations take real (B, I, H, W) input and complex (I, O, 2m, m) weights of the matching dtype."""
    w_shape = tuple(weights.shape)
    if weights.dim() != 4 or not weights.is_complex() or w_shape[2] != 2 * w_shape[3]:
        raise ValueError(f"weights must be complex of shape (in, out, 2·modes, modes); got {w_shape} {weights.dtype}")
    expected = _COMPLEX_OF.get(x.dtype)
    if x.dim() != 4 or expected is None or x.shape[1] != w_shape[0]:
        raise ValueError(
            f"x must be float32 or float64 of shape (batch, {w_shape[0]}, H, W); got {tuple(x.shape)} {x.dtype}"
        )
    if weights.dtype != expected:
        raise ValueError(f"{x.dtype} input needs {expected} weights; got {weights.dtype}")


def spectral_conv2d(x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Real (B, I, H, W) → real (B, O, H, W) through the kept modes of complex (I, O, 2m, m) weights.

    Any weight layout works; a mode-major one (``weights.permute(2, 3, 0, 1)``
    contiguous) saves a copy of the weights per call.
    """
    check_operands(x, weights)
    batch, in_ch, height, width = x.shape
    out_ch = weights.shape[1]
    dft = truncated_dft(height, width, weights.shape[-1], x.dtype, x.device)
    w = kept_weights(weights, height, width)
    rows, cols = w.shape[2], w.shape[3]
    n_modes, images = rows * cols, batch * in_ch

    t = torch.mm(x.reshape(images * height, width), dft.analysis_w)  # (b,i,h), (c,ky)
    spec = torch.bmm(dft.analysis_h.expand(images, -1, -1), t.view(images, 2 * height, cols))
    # → modes-major (kx,ky), (c,b), i: one small copy, so the mixing is a plain batched GEMM
    spec = Relayout.apply(spec.view(batch, in_ch, 2, rows, cols), (3, 4, 2, 0, 1)).view(n_modes, 2 * batch, in_ch)
    # mode-major storage makes this a view: (kx,ky), i, (o,c)
    mix = torch.view_as_real(w.permute(2, 3, 0, 1).reshape(n_modes, in_ch, out_ch)).reshape(n_modes, in_ch, 2 * out_ch)
    prod = torch.bmm(spec, mix).view(rows, cols, 2, batch, out_ch, 2)  # (kx,ky), c_x, b, o, c_w
    out_spec = _ComplexProductToModes.apply(prod).view(batch * out_ch, 2 * rows, cols)
    field = torch.bmm(dft.synthesis_h.expand(batch * out_ch, -1, -1), out_spec)  # (b,o), (h,c), ky
    return torch.mm(field.view(batch * out_ch * height, 2 * cols), dft.synthesis_w).view(batch, out_ch, height, width)


def spectral_conv2d_fft(x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """The straightforward formulation: full rfft2, zero-filled spectrum, einsum per corner, irfft2.

    The reference that ``spectral_conv2d`` is tested against (outputs and gradients).
    """
    check_operands(x, weights)
    batch, _, height, width = x.shape
    modes = weights.shape[-1]
    x_ft = torch.fft.rfft2(x)
    n_pos, n_neg = retained_rows(height, modes)
    n_cols = retained_cols(width, modes)
    out_ft = x_ft.new_zeros(batch, weights.shape[1], height, width // 2 + 1)
    out_ft[:, :, :n_pos, :n_cols] = torch.einsum(
        "bixy,ioxy->boxy", x_ft[:, :, :n_pos, :n_cols], weights[:, :, :n_pos, :n_cols]
    )
    if n_neg:
        out_ft[:, :, height - n_neg :, :n_cols] = torch.einsum(
            "bixy,ioxy->boxy", x_ft[:, :, height - n_neg :, :n_cols], weights[:, :, 2 * modes - n_neg :, :n_cols]
        )
    return torch.fft.irfft2(out_ft, s=(height, width))
