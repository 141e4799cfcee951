"""``spectral-init``: list and describe the strategies and layer adapters; audit a model's spectral init."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import textwrap
from collections.abc import Callable, Sequence
from typing import Any

import pydantic
import torch.nn as nn

from .. import __version__
from ..adapters import ADAPTERS
from ..geometry import SpectralGeometry
from ..registry import Strategy, UnknownStrategyError, available_strategies, get_strategy, required_params
from .threads import THREADS_HELP, announce_threads, command_threads, positive_thread_count
from .usage import ArgumentParser

__all__ = [
    "build_parser",
    "main",
]

_EXAMPLE_SHAPES = ((32, 32), (32, 16), (64, 128))
_EXAMPLE_MODES = (12, 12)
LIST_WIDTH = 100  # columns of `spectral-init list`


def _summary(strategy: Strategy) -> dict[str, object]:
    return {
        "name": strategy.name,
        "second_moment": strategy.formula,
        "distribution": strategy.distribution,
        "description": strategy.description,
        "params_schema": None if strategy.params_model is None else strategy.params_model.model_json_schema(),
    }


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def _cmd_list(args: argparse.Namespace) -> int:
    strategies = [get_strategy(n) for n in available_strategies()]
    if args.json:
        print(json.dumps([_summary(s) for s in strategies], indent=2))
        return 0
    rows = [[s.name, s.formula, s.distribution] for s in strategies]
    lines = _table(rows, ["name", "E|w|²", "distribution"]).splitlines()
    indent = len(max((s.name for s in strategies), key=len, default="")) + 2
    print("\n".join(lines[:2]))
    for line, strategy in zip(lines[2:], strategies):
        # under each row, as much of the description as LIST_WIDTH columns hold; `describe` prints it whole
        summary = textwrap.shorten(strategy.description, width=max(LIST_WIDTH - indent, 20), placeholder=" …")
        print(f"{line}\n{' ' * indent}{summary}")
    print("\nspectral-init describe NAME: the whole description, parameters and example E|w|²")
    return 0


def _json_object(text: str, flag: str, what: str) -> dict[str, Any]:
    """``text`` parsed as a JSON object; a ValueError naming ``flag`` otherwise."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{flag} is not JSON ({exc.msg} at character {exc.pos}): {text!r}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{flag} must be a JSON object of {what}; got {text!r}")
    return value


def _example_params(strategy: Strategy, given: str | None) -> dict[str, Any]:
    """``--params`` as JSON, else each parameter without a default at its field's first example."""
    if given is not None:
        return _json_object(given, "--params", "the strategy's parameters")
    fields = strategy.params_model.model_fields if strategy.params_model else {}
    return {name: (fields[name].examples or [None])[0] for name in required_params(strategy)}


def _cmd_describe(args: argparse.Namespace) -> int:
    strategy = get_strategy(args.name)
    summary = _summary(strategy)
    params = _example_params(strategy, args.params)
    try:
        strategy.validate_params(params)
    except pydantic.ValidationError as exc:
        raise ValueError(f"--params for {strategy.name}: " + "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'params'}: {e['msg']}" for e in exc.errors())) from None
    # at a stated geometry (a 2-D layer keeping 12 × 12 modes) and the parameters' defaults (or --params, or
    # a required parameter's example): a strategy that reads the modes (edge-of-chaos, mup) has values too
    summary["example_params"] = params
    summary["examples"] = [
        {"in": i, "out": o, "modes": list(_EXAMPLE_MODES), "gain": args.gain,
         "second_moment": strategy.second_moment(gain=args.gain, geometry=SpectralGeometry(i, o, modes=_EXAMPLE_MODES),
                                                 **params)}
        for i, o in _EXAMPLE_SHAPES
    ]
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"{strategy.name}\n  E|w|²: {strategy.formula}\n  distribution: {strategy.distribution}")
    print(f"  {strategy.description}")
    if summary["params_schema"] is not None:
        print("  parameters: " + json.dumps(summary["params_schema"].get("properties", {})))
    if params:
        print(f"  examples with {json.dumps(params)}" + ("" if args.params else " (an example; set with --params)"))
    for ex in summary.get("examples", []):
        print(f"  in={ex['in']:<4} out={ex['out']:<4} modes={'×'.join(map(str, ex['modes']))} gain={ex['gain']:g}: "
              f"E|w|² = {ex['second_moment']:.6g}")
    return 0


def _cmd_adapters(args: argparse.Namespace) -> int:
    adapters = ADAPTERS.items()
    records = [{"name": a.name, "package": a.package, "layout": a.layout, "description": a.description,
                "unavailable": a.unavailable()} for a in adapters]
    if args.json:
        print(json.dumps(records, indent=2))
        return 0
    print("layer adapters, in the order they are tried:")
    for r in records:
        print(f"\n{r['name']}  ({r['package']})")
        text = f"{r['description']} Layout: {r['layout']}."
        if r["unavailable"]:
            text += f" Unavailable here: {r['unavailable']}."
        print(textwrap.fill(text, width=LIST_WIDTH, initial_indent="  ", subsequent_indent="  "))
    return 0


def _model_factory(target: str, kwargs_text: str) -> Callable[[], nn.Module]:
    """``FACTORY(**kwargs)`` from ``MODULE:FACTORY``, to be called; a ValueError naming what was wrong in
    the text, the module or the factory (found before the call)."""
    module_name, sep, attribute = target.partition(":")
    if not (sep and module_name and attribute):
        raise ValueError(f"expected MODULE:FACTORY (e.g. neuralop.models:TFNO); got {target!r}")
    kwargs = _json_object(kwargs_text, "--kwargs", "keyword arguments")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import module {module_name!r}: {exc}") from None
    factory = module
    for part in attribute.split("."):
        if not hasattr(factory, part):
            raise ValueError(f"module {module_name!r} has no {attribute!r}")
        factory = getattr(factory, part)
    if not callable(factory):
        raise ValueError(f"{target} is not callable")

    def build() -> nn.Module:
        try:
            model: Any = factory(**kwargs)
        except Exception as exc:  # noqa: BLE001 - whatever the user's factory raises is reported in one line
            raise ValueError(f"{target}(**{kwargs}) raised {type(exc).__name__}: {exc}") from None
        if not isinstance(model, nn.Module):
            raise ValueError(f"{target} returned {type(model).__name__}, not a torch.nn.Module")
        return model

    return build


EXIT_FLAGGED = 1  # audit --strict: what a linter exits with when it found something


def _cmd_audit(args: argparse.Namespace) -> int:
    from ..analysis.audit import audit

    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()] if args.strategies else None
    if strategies is not None:
        strategies = [get_strategy(s).name for s in strategies]  # an unknown name fails before the model is built
    build = _model_factory(args.target, args.kwargs)
    with command_threads(args.threads):
        model = build()
        announce_threads()  # the model is built: the audit's work begins
        report = audit(model, strategies)
    if args.json:
        print(json.dumps(report.to_json_dict(), indent=2))
    elif not report.rows:
        print(f"{args.target}: no layer adapter recognizes a spectral weight in this model "
              "(`spectral-init adapters` lists what is recognized)")
    else:
        print(report)
    # --strict, for a script or CI: a flagged weight fails, and so does a model with none to check
    return EXIT_FLAGGED if args.strict and (report.flagged or not report.rows) else 0


def _cmd_schema(args: argparse.Namespace) -> int:
    from ..settings import SpectralInitSettings

    print(json.dumps(SpectralInitSettings.model_json_schema(), indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="spectral-init", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", help="what to print")
    p_list = sub.add_parser("list", help="table of every registered strategy")
    p_list.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p_list.set_defaults(func=_cmd_list)
    p_desc = sub.add_parser("describe", help="one strategy in detail")
    p_desc.add_argument("name", help="a strategy name, any case, '-' or '_' (see `spectral-init list`)")
    p_desc.add_argument("--gain", type=float, default=1.0, help="gain for the example moments (default: 1.0)")
    p_desc.add_argument("--params", default=None, metavar="JSON",
                        help="the strategy's parameters for the example moments, as a JSON object")
    p_desc.add_argument("--json", action="store_true", help="print JSON instead of text")
    p_desc.set_defaults(func=_cmd_describe)
    p_adapters = sub.add_parser("adapters", help="the layer adapters: which spectral layers are recognized")
    p_adapters.add_argument("--json", action="store_true", help="print JSON instead of text")
    p_adapters.set_defaults(func=_cmd_adapters)
    p_audit = sub.add_parser("audit", help="every spectral weight of a model: its E|w|² against each strategy's target")
    p_audit.add_argument("target", metavar="MODULE:FACTORY",
                         help="an importable module and a callable in it that builds the model, "
                         "e.g. neuralop.models:TFNO")
    p_audit.add_argument(
        "--kwargs",
        default="{}",
        help='keyword arguments for FACTORY as a JSON object, e.g. \'{"n_modes": [16, 16], '
        '"hidden_channels": 32}\' (default: {})',
    )
    p_audit.add_argument(
        "--strategies",
        default=None,
        help="comma-separated strategies to compare (default: all; the variance-preserving "
        "sqrt_in, xavier-complex and kaiming-complex always)",
    )
    p_audit.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p_audit.add_argument("--strict", action="store_true",
                         help=f"exit {EXIT_FLAGGED} when a weight is flagged, or none is recognized (default: the "
                         "report, exit 0)")
    p_audit.add_argument("--threads", type=positive_thread_count, default=None, help=THREADS_HELP)
    p_audit.set_defaults(func=_cmd_audit)
    p_schema = sub.add_parser("schema", help="JSON schema of SpectralInitSettings (for config tooling)")
    p_schema.set_defaults(func=_cmd_schema)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        status = args.func(args)
        sys.stdout.flush()
        return status
    except (UnknownStrategyError, ValueError) as exc:
        print(f"spectral-init: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # the reader stopped early (`spectral-init list --json | head`): quietly, as Python's docs advise,
        # with stdout pointed at devnull so that the interpreter's own flush at exit cannot fail again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
