"""What a generator sees of a diffraction pattern: where its DC peak lies, or an image in real space.

A diffraction pattern lives in reciprocal space: its pixel (i, j) says nothing about the object's pixel
(i, j), and its DC peak (10³× the median amplitude) sits at the patch centre. Every generator here
starts with 3×3 convolutions and carries skips and pointwise paths, all of which map an input pixel to
the output pixel at the same place, so the DC peak prints a blob at the centre of every predicted patch
and the stitching repeats it at every scan position (the scan-lattice artifact; docs/benchmarks.md, "Reading the
reconstruction comparison"). The layouts:

- ``centred``: the amplitudes as measured, DC at the centre (the reference's input; earlier results).
- ``corner``: the same amplitudes ``ifftshift``-ed, DC at pixel (0, 0), where a probe-weighted stitching
  weighs the output least. The peak still prints, only where it is seen less.
- ``real_space``: the exit wave back-propagated with the known probe's far-field phase,
  ψ₀ = IFFT₂(A · e^{i·arg FFT₂(P)}) (orthonormal, as the forward model), as two channels (Re, Im).
  For an object of 1 it is the probe itself; in general it is the first error-reduction estimate of
  P·O, an image whose pixel (i, j) does belong to the object's pixel (i, j), and the DC peak becomes
  the probe's smooth footprint instead of a point. The global transform comes first, so no local path
  sees the reciprocal-space pixels. In the near field (in-line holography) the pattern is already an image
  of the object, blurred by propagation: ``real_space`` carries it back to the sample plane with a flat
  phase, ψ₀ = IFFT₂(FFT₂(A)·H*), no probe needed.
- ``flat_field``: each pattern over the training scan's mean pattern, minus 1 — holography's flat-field
  correction, which divides the illumination's own structure out of a near-field pattern and leaves the
  object's contrast (the mean pattern is a buffer saved with the weights).
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
import torch.nn as nn

from ..optics import FAR_FIELD, Propagator
from .blocks import check_choice

__all__ = ["INPUT_LAYOUTS", "DiffractionInput", "InputLayout", "LaidOutGenerator", "layout_channels"]

InputLayout = Literal["centred", "corner", "real_space", "flat_field"]
INPUT_LAYOUTS: tuple[str, ...] = get_args(InputLayout)


def layout_channels(layout: InputLayout) -> int:
    """Input channels per measured pattern that ``layout`` gives the generator."""
    return 2 if layout == "real_space" else 1


class DiffractionInput(nn.Module):
    """Measured amplitudes (B, C, N, N), DC-centred as ``ptycho_torch.simulation`` makes them (far field) or
    as the detector saw them (near field), laid out for the generator: (B, C, N, N) for ``centred``,
    ``corner`` and ``flat_field`` (which takes the (N, N) mean amplitude ``flat``), (B, 2C, N, N) (all real
    parts, then all imaginary parts) for ``real_space``, which in the far field needs the (N, N) complex
    ``probe`` and in the near field the ``propagator``."""

    def __init__(self, layout: InputLayout, probe: torch.Tensor | None = None,
                 propagator: Propagator = FAR_FIELD, flat: torch.Tensor | None = None) -> None:
        super().__init__()
        self.layout = check_choice(layout, INPUT_LAYOUTS, "input_layout")
        self.propagator = propagator
        if layout == "corner" and propagator.kind == "near-field":
            raise ValueError("input_layout 'corner' moves a far-field pattern's DC to pixel (0, 0); a near-field "
                             "pattern has none: take real_space, flat_field or centred")
        if layout == "flat_field":
            if flat is not None and flat.ndim != 2:
                raise ValueError("input_layout 'flat_field' needs the mean amplitude, an N × N tensor")
            # saved with the weights: the training scan's mean pattern is part of the model
            self.register_buffer("flat", torch.ones(1, 1) if flat is None else flat.float().clone())
        if layout == "real_space" and propagator.kind == "far-field":
            if probe is None or probe.ndim != 2 or probe.shape[0] != probe.shape[1]:
                raise ValueError("input_layout 'real_space' needs the probe, a complex N × N tensor")
            far_field = torch.fft.fft2(probe.to(torch.complex64), norm="ortho")
            # not saved with the weights: the probe belongs to the data, given again when the model is built
            self.register_buffer("probe_phase", torch.exp(1j * torch.angle(far_field)), persistent=False)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        key = prefix + "flat"
        if self.layout == "flat_field" and key in state_dict:  # the saved mean pattern, whatever size was built
            self.flat = torch.empty_like(state_dict[key])
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, amplitudes: torch.Tensor) -> torch.Tensor:
        if self.layout == "centred":
            return amplitudes
        if self.layout == "flat_field":
            return amplitudes / self.flat.clamp_min(0.05 * self.flat.max()) - 1
        if self.layout == "real_space" and self.propagator.kind == "near-field":
            exit_wave = self.propagator.back(amplitudes.to(torch.complex64))
            return torch.cat([exit_wave.real, exit_wave.imag], dim=1)
        unshifted = torch.fft.ifftshift(amplitudes, dim=(-2, -1))
        if self.layout == "corner":
            return unshifted
        if unshifted.shape[-2:] != self.probe_phase.shape:
            raise ValueError(f"patterns of {tuple(unshifted.shape[-2:])} px for a probe of "
                             f"{tuple(self.probe_phase.shape)}")
        exit_wave = torch.fft.ifft2(unshifted * self.probe_phase, norm="ortho")
        return torch.cat([exit_wave.real, exit_wave.imag], dim=1)

    def extra_repr(self) -> str:
        return f"layout={self.layout!r}"


class LaidOutGenerator(nn.Module):
    """A generator behind a ``DiffractionInput``: ``generator(input(amplitudes))``, same output contract."""

    def __init__(self, input: DiffractionInput, generator: nn.Module) -> None:
        super().__init__()
        self.input = input
        self.generator = generator

    def forward(self, amplitudes: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        return self.generator(self.input(amplitudes))
