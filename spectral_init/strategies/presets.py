"""The built-in strategies, each a preset of the variance-scaling core.

| name            | E|w|²                 | distribution             |
|-----------------|-----------------------|--------------------------|
| legacy          | gain²/(in·out)²       | circular complex normal  |
| sqrt_in         | gain²/(b·in)          | circular complex normal  |
| xavier-complex  | 2·gain²/(b·(in+out))  | circular complex normal  |
| kaiming-complex | 2·gain²/(b·in)        | circular complex normal  |
| fno-uniform     | (2/3)·gain²/(in·out)² | Re, Im each a·U[0,1)     |
| ffno-reference  | gain²/in              | circular complex normal  |

b is the number of spectral branches summed into one output (1 for the 2-D
layer, 2 for the factorized one).
"""

from __future__ import annotations

from ..registry import Strategy, register_strategy
from .scaling import Distribution, FanMode, VarianceScaling

__all__ = [
    "register_variance_scaling",
]


def register_variance_scaling(
    name: str,
    *,
    scale: float,
    fan: FanMode,
    distribution: Distribution,
    description: str,
    override: bool = False,
) -> Strategy:
    """Register E|w|² = scale·gain²/fan(in, out) under ``name``; plugins may use it too."""
    core = VarianceScaling(scale=scale, fan=fan, distribution=distribution)
    return register_strategy(
        name,
        second_moment=core.second_moment,
        description=description,
        override=override,
        formula=core.formula,
        distribution=core.distribution_label,
    )(core.fill)


register_variance_scaling(
    "legacy",
    scale=1.0,
    fan="in_out_squared",
    distribution="complex_normal",
    description="Reference PtychoPINN fallback before its fix: std gain/(in·out); "
    "the spectral path starts almost silent.",
)
register_variance_scaling(
    "sqrt_in",
    scale=1.0,
    fan="in",
    distribution="complex_normal",
    description="Reference fallback after its fix (default): std gain/√(b·in); passes a "
    "band-limited input's variance through on every layer kind (exactly for modes with ky > 0).",
)
register_variance_scaling(
    "xavier-complex",
    scale=1.0,
    fan="avg",
    distribution="complex_normal",
    description="Complex Glorot (Trabelsi et al. 2018); neuraloperator's init_std='auto'.",
)
register_variance_scaling(
    "kaiming-complex",
    scale=2.0,
    fan="in",
    distribution="complex_normal",
    description="Complex He, for GELU/ReLU stacks.",
)
register_variance_scaling(
    "fno-uniform",
    scale=2.0 / 3.0,
    fan="in_out_squared",
    distribution="uniform_parts",
    description="Li et al. 2020 reference FNO code: scale·torch.rand(cfloat), scale "
    "gain/(in·out); mean not zero.",
)
register_variance_scaling(
    "ffno-reference",
    scale=1.0,
    fan="in_per_branch",
    distribution="complex_normal",
    description="The reference FactorizedSpectralConv2d's own draw: std gain/√in on each "
    "branch, summed branches not counted (Var(y)/Var(x) = 2 on that layer; = sqrt_in elsewhere).",
)
