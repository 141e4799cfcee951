"""The mean field of a deep plain ReLU stack, layer by layer: what depth does to the signal at any E|w|².

A stack h_l = relu(z_l), z_l = S_l(h_{l-1}), of L square spectral layers (in = out = C channels, b summed
branches) with i.i.d. circular (zero-mean) weights of E|w|² = σ², no bias, no skip, fed white noise h_0 = x and
backpropagating a white gradient g_L = ∂L/∂h_L, as ``benchmarks.signal_propagation`` measures it. With the
transmission T and the kernels of :mod:`spectral_init.strategies.edge_of_chaos`, and ρ(P) = Σ T·P / Σ P the share of a
spectrum P that a layer passes:

- forward: E[z_l²] = b·C·σ²·ρ(P_h)·E[h_{l-1}²], E[h²] = E[z²]/2 (ReLU of a centred Gaussian), P_h = DFT(K(c_z))
  with K the arc-cosine kernel of z's correlation c_z; then P_z ← T·P_h. The white input x = h_0 has ρ = Σ T / N
  (and no 1/2: it is not a ReLU's output).
- backward: g_{l-1} = S_l*(u_l), u_l = relu'(z_l)⊙g_l: E[g_{l-1}²] = b·C·σ²·ρ(P_u)·E[g_l²]/2, P_u = DFT(K'(c_z)·c_g)
  (the gradient-independence assumption), then P_g ← T·P_u.

``edge-of-chaos`` reads only the fixed point these maps settle into; here the transient from the white input and
the white output gradient is kept, layer by layer. At the fixed point one layer multiplies the forward second
moment by χ_f = b·C·σ²·ρ_f/2 and the backward one by χ_b = b·C·σ²·ρ_b/2. Both grow with σ², so the
backward ratio over the forward one, ≈ (ρ_b/ρ_f)^L deep in a stack, is the architecture's and not the init's:
an E|w|² only chooses where between the two that factor goes, and where ρ_b ≠ ρ_f none keeps both flat.

A draw with a mean (``fno-uniform``'s Re, Im ~ U[0, a)) adds up coherently over the channels and is not
modelled. These are expectations over draws of the weights. A finite-width draw scatters around them roughly
log-normally, so its median lies below: compare them with means over seeds
(``tests/spectral_init_tests/test_stack_profile.py``).
ReLU only: being positively homogeneous, its gains do not depend on the signal's scale, so one pass through
the maps is exact in the mean field; for GELU or tanh they would depend on each layer's second moment.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..checks import check_positive_int, check_positive_number
from ..geometry import SpectralGeometry
from ..strategies.edge_of_chaos import _HalfSpectrum, _kernel, grid_of, transfer

__all__ = ["StackProfile", "relu_stack_profile"]

MAX_DEPTH = 4096


@dataclass(frozen=True)
class StackProfile:
    """Expected second moments per layer l = 1…L of a plain ReLU stack (module docstring).

    ``forward[l-1]`` = E[z_l²] for a unit input second moment; ``backward[l-1]`` = E[g_l²] for a unit output
    gradient second moment (so ``backward[-1]`` = 1).
    """

    forward: tuple[float, ...]
    backward: tuple[float, ...]

    @property
    def _first(self) -> int:
        return min(1, len(self.forward) - 1)  # layer 2, or layer 1 when the stack has one layer

    @property
    def forward_ratio(self) -> float:
        """E[z_L²] / E[z_2²]: ``benchmarks.signal_propagation``'s forward ratio."""
        return self.forward[-1] / self.forward[self._first]

    @property
    def backward_ratio(self) -> float:
        """E[g_2²] / E[g_L²], a ratio of second moments: ``benchmarks.signal_propagation``'s backward ratio is
        a ratio of norms, its square root."""
        return self.backward[self._first] / self.backward[-1]


def relu_stack_profile(geometry: SpectralGeometry, resolution: int | tuple[int, ...], depth: int,
                       second_moment: float) -> StackProfile:
    """The mean-field second moments through a depth-``depth`` plain ReLU stack of layers of ``geometry``
    (square: in = out) on inputs of ``resolution`` (an int per axis, or one size per axis), with weights of
    E|w|² = ``second_moment`` (module docstring).

    >>> from spectral_init import SpectralGeometry, get_strategy
    >>> layer = SpectralGeometry(32, 32, 1, (7,))  # a 1-D layer keeping 7 frequencies
    >>> moment = get_strategy("edge-of-chaos").second_moment(geometry=layer, resolution=128)
    >>> profile = relu_stack_profile(layer, 128, 32, moment)
    >>> round(profile.forward_ratio, 2), round(profile.backward_ratio, 1)
    (1.06, 17.0)
    """
    if geometry.spatial_rank == 0:
        raise ValueError("relu_stack_profile needs the layer's kept modes (SpectralGeometry.modes)")
    if geometry.in_channels != geometry.out_channels:
        raise ValueError(f"relu_stack_profile models a stack of square layers; got in_channels "
                         f"{geometry.in_channels} → out_channels {geometry.out_channels}")
    check_positive_int(depth, "depth")
    if depth > MAX_DEPTH:
        raise ValueError(f"depth must be at most {MAX_DEPTH}; got {depth}")
    check_positive_number(second_moment, "second_moment (E|w|²)")
    spectrum = _HalfSpectrum(grid_of(resolution, geometry.spatial_rank))
    t = spectrum.half(transfer(geometry, *spectrum.grid).numpy())
    per_pass = geometry.fan_in * second_moment / 2  # b·C·σ²·E[relu(u)²] (= E[relu'(u)²] = 1/2)
    relu, step = _kernel("relu", False), _kernel("relu", True)

    forward, correlations = [], []
    power, moment = np.ones_like(t), 1.0  # the white input
    for layer in range(depth):
        if layer:  # z_{l-1} → h_{l-1} = relu(z_{l-1}): its spectrum, and half of its second moment
            power = spectrum.power(relu(correlations[-1]))
        moment *= (2 * per_pass if layer == 0 else per_pass) * spectrum.share(t, power)  # x is not a relu's output
        power = t * power
        forward.append(moment)
        correlations.append(spectrum.correlation(power))

    backward = [1.0]
    power = np.ones_like(t)  # the white output gradient
    for layer in range(depth - 1, 0, -1):  # g_l → g_{l-1} through relu'(z_l) and layer l's adjoint
        power = spectrum.power(step(correlations[layer]) * spectrum.correlation(power))
        backward.append(backward[-1] * per_pass * spectrum.share(t, power))
        power = t * power
    return StackProfile(tuple(forward), tuple(reversed(backward)))
