"""Spectral convolutions whose complex weights are drawn by a ``spectral_init`` strategy.

Two backends, one contract (``.in_channels``, ``.out_channels``, ``.modes``,
``.weights``, ``.spectral_init``, ``reset_parameters()``), both keeping the
same retained modes — ky in [0, modes) and kx in [-modes, modes):

- ``SpectralConv2d``: this package's own layer (the reference code's
  ``_FallbackSpectralConv2d``, which stays as a second name of the same class).
- ``NeuralopSpectralConv2d``: neuraloperator's ``SpectralConv`` with the chosen
  strategy written into its dense weight.

``make_spectral_conv`` picks one: ``backend`` argument, else the env var
``PTYCHO_SPECTRAL_BACKEND``, else ``auto``. ``auto`` and ``fallback`` build our
layer, which computes the same operator exactly and faster (see the speed
benchmark); ``neuralop`` builds neuraloperator's. (The reference code's ``auto``
preferred neuraloperator whenever it was importable.)
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any, Literal, get_args

import torch
import torch.nn as nn

from spectral_init import SpectralGeometry, SpectralInitSettings, make_initializer
from spectral_init.checks import check_positive_int
from spectral_init.geometry import both_signs_but_last
from spectral_init.spectral_initializer import SpectralInitializer

from .truncated_dft import complex_dtype_for, spectral_conv2d

__all__ = [
    "BACKEND_ENV_VAR",
    "HAS_NEURALOPERATOR",
    "NeuralopSpectralConv2d",
    "SpectralBackend",
    "SpectralConv2d",
    "SpectralInitArg",
    "SpectralLayerBase",
    "_FallbackSpectralConv2d",
    "make_spectral_conv",
    "resolve_backend",
]

# The PyPI package ``neuraloperator`` installs the module ``neuralop``. Whether it is there is asked
# without importing it: the import takes 1.6 s, which every process would pay, though only the
# ``neuralop`` backend uses it (``NeuralopSpectralConv2d`` imports it when built).
HAS_NEURALOPERATOR = importlib.util.find_spec("neuralop") is not None

SpectralBackend = Literal["auto", "fallback", "neuralop"]
BACKEND_ENV_VAR = "PTYCHO_SPECTRAL_BACKEND"

SpectralInitArg = SpectralInitializer | SpectralInitSettings | str | dict[str, Any] | None


class SpectralLayerBase(nn.Module):
    """What every spectral layer here shares: sizes, the bound initializer, and re-initialization.

    A subclass lists its complex weights with their geometry in
    ``spectral_weights()``; ``reset_parameters`` and ``spectral_init.initialize_``
    both read that one list.

    A seed in settings, a name or a dict seeds this layer's own stream: two layers
    given the same seeded settings get the same weights (``spectral_init.analysis.audit``
    warns of it). To seed a model of several layers, pass them one
    ``make_initializer(...)`` (one stream: they differ), as the generators here do,
    or call ``spectral_init.initialize_(model, {"seed": …})`` once it is built.
    """

    def __init__(self, in_channels: int, out_channels: int, modes: int, spectral_init: SpectralInitArg) -> None:
        super().__init__()
        self.in_channels = check_positive_int(in_channels, "in_channels")
        self.out_channels = check_positive_int(out_channels, "out_channels")
        self.modes = check_positive_int(modes, "modes")
        self._initializer = make_initializer(spectral_init)

    @property
    def spectral_init(self) -> SpectralInitSettings:
        return self._initializer.settings

    def spectral_weights(self) -> list[tuple[str, nn.Parameter, SpectralGeometry]]:
        """(name relative to this module, complex parameter, its geometry) for every spectral weight."""
        raise NotImplementedError

    def bind_spectral_init(self, spectral_init: SpectralInitArg) -> None:
        """Draw from ``spectral_init`` from now on (``spectral_init.initialize_`` calls this after its draw)."""
        self._initializer = make_initializer(spectral_init)

    def reset_parameters(self) -> None:
        """Re-draw every spectral weight from this layer's strategy; all are unchanged if any draw fails."""
        weights = self.spectral_weights()
        drafts = [self._initializer.draft(param, geometry) for _, param, geometry in weights]
        with torch.no_grad():
            for (_, param, _), draft in zip(weights, drafts):
                param.copy_(draft)

    def extra_repr(self) -> str:
        s = self.spectral_init
        seed = "" if s.seed is None else f", seed={s.seed}"
        return (
            f"in_channels={self.in_channels}, out_channels={self.out_channels}, modes={self.modes}, "
            f"spectral_init={s.strategy}, gain={s.gain:g}{seed}"
        )


class _SpectralConv2dBase(SpectralLayerBase):
    """The 2-D layer's contract: one weight (in, out, 2·modes, modes), kx rows and ky columns."""

    weights: nn.Parameter
    _weights_name = "weights"  # its qualified name below the layer

    def spectral_weights(self) -> list[tuple[str, nn.Parameter, SpectralGeometry]]:
        geometry = SpectralGeometry(self.in_channels, self.out_channels, branches=1,
                                    modes=both_signs_but_last((self.modes, self.modes)),
                                    layer_modes=both_signs_but_last)
        return [(self._weights_name, self.weights, geometry)]


class SpectralConv2d(_SpectralConv2dBase):
    """FNO spectral convolution: rfft2 → mix channels at the low modes → irfft2.

    ``weights`` has shape (in, out, 2·modes, modes): rows [0, modes) hold
    kx = 0…modes-1, rows [modes, 2·modes) hold kx = -modes…-1; columns are
    ky = 0…modes-1. Both kx corners are kept (as in Li et al. and
    neuraloperator), so the layer is not orientation-selective. On inputs too
    small for ``modes`` the kept modes are capped, the corners never overlapping.

    The operator is computed on the kept modes only (``truncated_dft``); the
    weights are stored mode-major (strides of a (2·modes, modes, in, out)
    tensor) so that the per-mode channel mixing reads them without a copy.
    Autocast is off inside: the spectral products stay in the input's dtype.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        modes: int,
        spectral_init: SpectralInitArg = None,
    ) -> None:
        super().__init__(in_channels, out_channels, modes, spectral_init)
        dtype = complex_dtype_for(torch.get_default_dtype())
        storage = torch.empty(2 * modes, modes, in_channels, out_channels, dtype=dtype)
        self.weights = nn.Parameter(storage.permute(2, 3, 0, 1))
        self.reset_parameters()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.weights.is_complex():
            raise TypeError(
                f"the spectral weights are {self.weights.dtype}, no longer complex: Module.to(<real dtype>) "
                "casts complex parameters to real and drops the imaginary part; use .float() or .double()"
            )
        with torch.autocast(x.device.type, enabled=False):
            return spectral_conv2d(x, self.weights.to(complex_dtype_for(x.dtype)))


_FallbackSpectralConv2d = SpectralConv2d  # the reference code's name for this layer


class NeuralopSpectralConv2d(_SpectralConv2dBase):
    """neuraloperator's ``SpectralConv`` keeping the same modes, its weight drawn by our strategy.

    ``n_modes=(2·modes, 2·modes-1)`` keeps kx in [-modes, modes) and, after
    neuraloperator's rfft halving, ky in [0, modes). The layer is built without
    a bias (``SpectralConv2d`` has none; the block's local conv carries one) and with
    the global RNG state restored, so a seeded init leaves it untouched.
    """

    _weights_name = "conv.weight.tensor"

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        modes: int,
        spectral_init: SpectralInitArg = None,
    ) -> None:
        if not HAS_NEURALOPERATOR:
            raise ImportError("the neuralop backend needs neuraloperator: pip install 'spectral-init[neuralop]'")
        from neuralop.layers.spectral_convolution import SpectralConv

        super().__init__(in_channels, out_channels, modes, spectral_init)
        with torch.random.fork_rng(devices=[]):
            self.conv = SpectralConv(in_channels, out_channels, n_modes=(2 * modes, 2 * modes - 1), bias=False)
        expected = (in_channels, out_channels, 2 * modes, modes)
        dense = getattr(self.conv.weight, "tensor", None)
        if not isinstance(dense, nn.Parameter) or tuple(dense.shape) != expected or not dense.is_complex():
            raise RuntimeError(
                "cannot apply the spectral init exactly: this neuraloperator version does not hold "
                f"its SpectralConv weight as one dense complex tensor of shape {expected} "
                f"(found {type(self.conv.weight).__name__}); use backend='fallback' "
                f"or {BACKEND_ENV_VAR}=fallback"
            )
        self.reset_parameters()

    @property
    def weights(self) -> nn.Parameter:
        """The dense complex weight, shape (in, out, 2·modes, modes) in fftshift-ed kx order."""
        return self.conv.weight.tensor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)

    def extra_repr(self) -> str:
        return super().extra_repr() + ", backend=neuralop"


def resolve_backend(backend: str | None = None) -> Literal["fallback", "neuralop"]:
    """The backend to build: argument, else ``PTYCHO_SPECTRAL_BACKEND``, else ``auto``."""
    source = "backend"
    if backend is None:
        backend, source = os.environ.get(BACKEND_ENV_VAR, "auto"), BACKEND_ENV_VAR
    choice = backend.strip().lower()
    if choice not in get_args(SpectralBackend):
        raise ValueError(f"{source} must be one of {list(get_args(SpectralBackend))}; got {backend!r}")
    if choice == "auto":
        return "fallback"
    if choice == "neuralop" and not HAS_NEURALOPERATOR:
        raise ImportError(
            f"{source}='neuralop' but neuraloperator is not installed "
            "(pip install 'spectral-init[neuralop]'; it imports as `neuralop`)"
        )
    return choice


def make_spectral_conv(
    in_channels: int,
    out_channels: int,
    modes: int,
    spectral_init: SpectralInitArg = None,
    backend: str | None = None,
) -> SpectralConv2d | NeuralopSpectralConv2d:
    """A spectral convolution of the resolved backend, initialized by ``spectral_init``."""
    cls = NeuralopSpectralConv2d if resolve_backend(backend) == "neuralop" else SpectralConv2d
    return cls(in_channels, out_channels, modes, spectral_init=spectral_init)
