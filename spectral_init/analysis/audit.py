"""``audit(model)``: what a model's spectral init *is*, weight by weight, before anyone changes it.

One row per spectral weight the layer adapters find: its qualified name, layer kind,
adapter, layout, geometry, its current E|w|² (for factorized weights, of the
reconstructed tensor) and mean, and the ratio E|w|² / target for each named
strategy's target at that geometry. A weight is *flagged* when it is more than
``FLAG_FACTOR`` (4×) away, in either direction, from every variance-preserving
target (``sqrt_in``: forward variance, ``xavier-complex``: forward and backward
averaged, ``kaiming-complex``: forward through a ReLU/GELU): it then starts far
from any init that keeps the spectral branch's signal at the scale of its input.

Weights that hold identical values (not one tied parameter: two) are reported and
warned about: that is what layers each given the same seed get, since each draws
from its own copy of one stream.
"""

from __future__ import annotations

import hashlib
import math
import textwrap
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn as nn

from ..adapters.discovery import find_spectral_weights
from ..geometry import SpectralGeometry
from ..registry import available_strategies, get_strategy, required_params

__all__ = ["AuditReport", "AuditRow", "FLAG_FACTOR", "IdenticalSpectralWeightsWarning", "VARIANCE_PRESERVING", "audit"]

VARIANCE_PRESERVING = ("sqrt_in", "xavier-complex", "kaiming-complex")
FLAG_FACTOR = 4.0


class IdenticalSpectralWeightsWarning(UserWarning):
    """Distinct spectral weights of one model hold the same values (layers seeded alike)."""


@dataclass(frozen=True)
class AuditRow:
    """One spectral weight as it is now; ``ratios`` is E|w|² / target per strategy (None: no target here)."""

    name: str
    kind: str
    adapter: str
    layout: str
    shape: tuple[int, ...]
    geometry: SpectralGeometry
    second_moment: float
    mean: complex
    ratios: dict[str, float | None]
    flagged: bool


@dataclass
class AuditReport:
    strategies: list[str]
    rows: list[AuditRow] = field(default_factory=list)
    shown: list[str] = field(default_factory=list)  # asked-for strategies the table shows beside the preserving ones
    notes: dict[str, str] = field(default_factory=dict)  # strategy → why it has no target at some weight
    identical: list[list[str]] = field(default_factory=list)  # groups of weights holding the same non-zero values

    @property
    def flagged(self) -> list[AuditRow]:
        return [r for r in self.rows if r.flagged]

    def to_json_dict(self) -> dict[str, Any]:
        rows = []
        for r in self.rows:
            row = asdict(r)
            row["shape"], row["mean"] = list(r.shape), [r.mean.real, r.mean.imag]
            row["geometry"]["modes"] = list(r.geometry.modes)
            del row["geometry"]["layer_modes"]  # a function: the weight's modes are in the row already
            rows.append(row)
        return {"strategies": self.strategies, "variance_preserving": list(VARIANCE_PRESERVING),
                "flag_factor": FLAG_FACTOR, "rows": rows, "notes": self.notes, "identical": self.identical}

    def __str__(self) -> str:
        """A table of at most 100 columns: rows grouped by layer kind, ratios to the variance-preserving targets."""
        columns = [*VARIANCE_PRESERVING, *self.shown]
        width = max(14, 32 - 9 * len(self.shown))  # the weight's name gives way to each further column
        header = f"  {'weight':<{width}} {'in→out':>9} {'b':>1} {'E|w|²':>9} {'|mean|/rms':>10}" + "".join(
            f" {_column(s):>8}" for s in columns) + "  flag"
        lines = [f"{len(self.rows)} spectral weights, {len(self.flagged)} flagged: more than {FLAG_FACTOR:g}× from "
                 f"every variance-preserving target", "(÷name: E|w|² over that strategy's target; b: summed branches)"]
        kind = None
        for r in self.rows:
            if r.kind != kind:
                kind = r.kind
                lines += ["", f"{kind} ({r.layout}; adapter {r.adapter})", header]
            rms = math.sqrt(r.second_moment)
            mean_ratio = abs(r.mean) / rms if rms > 0 else float("nan")
            g = r.geometry
            cells = "".join(f" {_ratio(r.ratios[s]):>8}" for s in columns)
            lines.append(f"  {_clip(r.name, width):<{width}} {f'{g.in_channels}→{g.out_channels}':>9} {g.branches:>1} "
                         f"{r.second_moment:>9.3g} {mean_ratio:>10.3g}{cells}  {'YES' if r.flagged else ''}")
        for group in self.identical:
            lines += textwrap.wrap(f"— identical values: {', '.join(group)}", 100, subsequent_indent="  ")
        for name, why in self.notes.items():
            if name in columns:  # wrapped, so that the report stays within 100 columns
                lines += textwrap.wrap(f"— {name}: no target at some weights ({why})", 100, subsequent_indent="  ")
        return "\n".join(lines)


_COLUMNS = {"sqrt_in": "÷sqrt_in", "xavier-complex": "÷xavier", "kaiming-complex": "÷kaiming"}


def _column(strategy: str) -> str:
    return _COLUMNS.get(strategy, "÷" + strategy[:7])


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.3g}"


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else "…" + text[-(width - 1):]


def _target(strategy: str, geometry: SpectralGeometry) -> tuple[float | None, str | None]:
    """The strategy's E|w|² at ``geometry`` with its default parameters, or None and why it has none there."""
    chosen = get_strategy(strategy)
    required = required_params(chosen)
    if required:  # mup: its target depends on the base the user chose
        return None, f"its target needs its parameters ({', '.join(required)})"
    try:
        return chosen.second_moment(geometry=geometry), None
    except (ValueError, TypeError) as exc:  # e.g. edge-of-chaos on a spatial rank it does not support
        return None, str(exc)


def audit(model: nn.Module, strategies: Sequence[str] | None = None) -> AuditReport:
    """One ``AuditRow`` per spectral weight of ``model``, nothing changed.

    ``strategies``: whose targets to compare (default: every registered one); the
    variance-preserving ones are always compared, since the flag is defined by them.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"audit takes a torch.nn.Module; got {type(model).__name__}")
    names = [get_strategy(s).name for s in (strategies or available_strategies())]
    compared = list(dict.fromkeys([*names, *VARIANCE_PRESERVING]))
    plans, _ = find_spectral_weights(model)
    # the table shows the preserving targets, and beside them the strategies asked for by name
    report = AuditReport(strategies=compared, shown=[n for n in names if n not in VARIANCE_PRESERVING]
                         if strategies else [])
    by_value: dict[tuple[tuple[int, ...], str], list[str]] = {}
    with torch.no_grad():
        for plan in plans:
            weight = plan.dense().to(torch.complex128)
            moment = float(weight.abs().square().mean())
            if moment > 0:  # zero-initialized weights (gates, say) are alike by design
                digest = hashlib.blake2b(weight.cpu().numpy().tobytes(), digest_size=16).hexdigest()
                by_value.setdefault((tuple(weight.shape), digest), []).append(plan.name)
            mean = complex(weight.mean())
            found = {s: _target(s, plan.geometry) for s in compared}
            targets = {s: value for s, (value, _) in found.items()}
            for s, (_, why) in found.items():
                if why is not None:
                    report.notes.setdefault(s, why)
            ratios = {s: (moment / t if t else None) for s, t in targets.items()}  # keyed in ``compared`` order
            preserving = [ratios[s] for s in VARIANCE_PRESERVING if ratios[s] is not None]
            flagged = bool(preserving) and all(not (1 / FLAG_FACTOR <= q <= FLAG_FACTOR) for q in preserving)
            report.rows.append(AuditRow(plan.name, plan.kind, plan.adapter, plan.layout, plan.shape, plan.geometry,
                                        moment, mean, ratios, flagged))
    report.identical = [names for names in by_value.values() if len(names) > 1]
    if report.identical:
        warnings.warn(
            f"spectral weights with identical values: {'; '.join(', '.join(g) for g in report.identical)}. "
            "Layers each given the same seed draw the same numbers; seed a model once: pass one initializer "
            "to all its layers (spectral_init=make_initializer({'seed': 0})) or call "
            "initialize_(model, {'seed': 0}) after building it",
            IdenticalSpectralWeightsWarning, stacklevel=2)
    return report
