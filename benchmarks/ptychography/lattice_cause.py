"""Where the scan-lattice artifact comes from: which path carries the diffraction pattern's DC peak into
the centre of every predicted patch, per generator and input layout.

Two measurements (``ptycho_torch.diagnostics``):

1. **At init, the DC response** of every generator × input layout (``--seeds`` seeded models each): the
   mean |Δ object|² when only the DC pixel of each measured pattern is raised by 10%, and its
   concentration within 3 px of the patch centre relative to an even spread over the probe's support
   (1 = even, ≫ 1 = printed at the centre). For the ``centred`` layout, two ablations say which paths
   carry it: every spectral weight zeroed (only local paths and skips left) and every block's local
   convolution zeroed (spectral paths and skips left).
2. **After training** (``--architecture``, ``--nepochs``, one run per layout): the patch-frame error
   (drawn in NAME_frame_error.png) —
   the predicted test patches' error (after each patch's global phase is aligned) averaged over the
   patches, in patch coordinates — and its mean |error| within 3 px of the centre over the mean over the
   probe's support, beside the stitched object's lattice share and SSIM.

    python -m benchmarks.lattice_cause
    python -m benchmarks.lattice_cause --quick
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pydantic
import torch
import torch.nn as nn

from ptycho_torch.diagnostics import centre_disc, dc_centre_concentration, dc_response
from ptycho_torch.generators import PtychoBlock
from ptycho_torch.generators.config import ARCHITECTURES, GeneratorConfig, build_generator
from ptycho_torch.generators.ffno_bottleneck import FactorizedFfnoBlock
from ptycho_torch.physics import probe_support
from ptycho_torch.simulation import SimulationConfig, simulate_dataset
from ptycho_torch.training import (
    DivergenceError,
    TrainingConfig,
    check_finite_predictions,
    make_datasets,
    predict,
    train,
)
from spectral_init.cli.usage import EXIT_DIVERGED, UsageError, format_validation_error

from .machinery.common import (
    Progress,
    benchmark_parser,
    benchmark_tracking,
    bounded_int,
    comma_separated,
    command_threads,
    environment,
    format_ci,
    keep_finished_runs,
    markdown_header,
    prepare_output_dir,
    publish,
    resolve_device,
    run_cli,
)
from .machinery.figures import bar_groups, one_legend, pyplot
from .machinery.object_grid import decode_image, encode_image
from .machinery.stats import mean_ci

# the layouts of the scan-lattice fix, as its records hold them (flat_field came later, for measured scans)
LAYOUTS = ("centred", "corner", "real_space")
SCHEMA = "spectral-init/lattice-cause/1"
MODULE, STEM = "benchmarks.lattice_cause", "lattice_cause"
CENTRE_RADIUS = 3.0
ABLATIONS = ("full", "no spectral path", "no local conv in blocks")


def ablate(model: nn.Module, ablation: str) -> nn.Module:
    """``model`` with one kind of path switched off in place: every complex (spectral) weight zeroed, or
    every block's local convolution zeroed; ``full`` leaves it as it is."""
    with torch.no_grad():
        for module in model.modules():
            if ablation == "no spectral path":
                for param in module.parameters(recurse=False):
                    if param.is_complex():
                        param.zero_()
            elif ablation == "no local conv in blocks":
                local = module.local_conv if isinstance(module, (PtychoBlock, FactorizedFfnoBlock)) else None
                if local is not None:
                    local.weight.zero_()
                    if local.bias is not None:
                        local.bias.zero_()
    return model


def at_init(args: argparse.Namespace, architecture: str, layout: str, ablation: str, seed: int, data: Any) -> float:
    """The DC response's centre concentration of one seeded model at init."""
    torch.manual_seed(seed)
    model = build_generator(GeneratorConfig(architecture=architecture, N=args.N, C=1, fno_width=args.width,
                                            fno_modes=args.modes, fno_blocks=args.blocks, input_layout=layout),
                            probe=data.probe)
    response = dc_response(ablate(model, ablation), data.amplitudes[:8])
    return dc_centre_concentration(response, data.probe, CENTRE_RADIUS)


def patch_frame_error(preds: torch.Tensor, truth: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Amplitude and phase error per pixel in patch coordinates, averaged over the patches, each patch's
    global phase (unobservable) aligned to its truth first."""
    overlap = (truth * preds.conj()).sum(dim=(-2, -1), keepdim=True)
    aligned = preds * torch.exp(1j * torch.angle(overlap))
    amplitude = (aligned.abs() - truth.abs()).mean(dim=0)
    phase = torch.angle(aligned * truth.conj()).mean(dim=0)
    return amplitude.numpy(), phase.numpy()


def centre_ratio(error: np.ndarray, probe: torch.Tensor) -> float:
    """Mean |error| within CENTRE_RADIUS px of the centre over the mean |error| on the probe's support."""
    near, support = centre_disc(error.shape[-1], CENTRE_RADIUS).numpy(), probe_support(probe).numpy()
    return float(np.abs(error[near & support]).mean() / np.abs(error[support]).mean())


def after_training(args: argparse.Namespace, layout: str, device: torch.device) -> dict[str, Any]:
    config = TrainingConfig(
        model=dict(architecture=args.architecture, fno_width=args.width, fno_modes=args.modes,
                   fno_blocks=args.blocks, input_layout=layout, spectral_init="sqrt_in"),
        data=SimulationConfig(N=args.N, nimgs_train=args.nimgs_train, nimgs_test=args.nimgs_test),
        nepochs=args.nepochs, batch_size=16, lr=args.lr, seed=0, device=device.type)
    result = train(config)
    _, test_set = make_datasets(config)
    preds, _ = predict(result.model, test_set, config, device)
    check_finite_predictions(preds, config.nepochs, len(result.step_losses))
    amplitude, phase = patch_frame_error(preds, test_set.objects)
    response = dc_response(result.model, test_set.amplitudes[:8].to(device)).cpu()
    return {"layout": layout, "reconstruction": result.reconstruction,
            "centre_ratio_amp": centre_ratio(amplitude, test_set.probe),
            "centre_ratio_phase": centre_ratio(phase, test_set.probe),
            "dc_concentration": dc_centre_concentration(response, test_set.probe, CENTRE_RADIUS),
            "frame_error": {"amplitude": encode_image(amplitude), "phase": encode_image(phase)}}


def run(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    architectures = args.architectures
    data = simulate_dataset(SimulationConfig(N=args.N), 1, seed=0)
    cells = [(a, layout, "full") for a in architectures for layout in LAYOUTS]
    cells += [(a, "centred", ablation) for a in architectures for ablation in ABLATIONS[1:]]
    progress = Progress(len(cells) + len(LAYOUTS), "lattice cause", enabled=not args.no_progress)
    init_rows: list[dict[str, Any]] = []
    trained: list[dict[str, Any]] = []
    start = time.perf_counter()

    def partial() -> dict[str, Any]:
        return {"schema": SCHEMA, "environment": environment(device, MODULE, args.argv), "at_init": init_rows,
                "trained": trained}

    with keep_finished_runs(args.output_dir, STEM, partial, lambda: len(init_rows) + len(trained)):
        for architecture, layout, ablation in cells:
            values = [at_init(args, architecture, layout, ablation, seed, data) for seed in range(args.seeds)]
            init_rows.append({"architecture": architecture, "layout": layout, "ablation": ablation,
                              "values": values, "concentration": mean_ci(values)})
            progress.step(f"{architecture} {layout} {ablation}")
        for layout in LAYOUTS:
            trained.append(after_training(args, layout, device))
            progress.step(f"trained {layout}")
    return {**partial(), "config": {k: getattr(args, k) for k in (
        "architectures", "seeds", "N", "architecture", "width", "modes", "blocks", "nepochs", "lr", "nimgs_train",
        "nimgs_test")} | {"centre_radius": CENTRE_RADIUS, "dc_factor": 1.1},
        "timings": {"total_seconds": time.perf_counter() - start}}


def markdown_report(record: dict[str, Any]) -> str:
    env, cfg = record["environment"], record["config"]
    lines = [*markdown_header("Where the scan-lattice artifact comes from", env), "",
             f"At init, N = {cfg['N']}, width {cfg['width']}, {cfg['modes']} modes, {cfg['blocks']} blocks, "
             f"{cfg['seeds']} seeds: concentration of the DC response within {cfg['centre_radius']:g} px of the "
             "patch centre (1 = spread evenly over the probe's support; mean ± 95% CI):", "",
             "| generator | " + " | ".join(LAYOUTS) + " | centred, " + " | centred, ".join(ABLATIONS[1:])
             + " |", "|---|" + "---|" * (len(LAYOUTS) + len(ABLATIONS) - 1)]
    cell = {(r["architecture"], r["layout"], r["ablation"]): r["concentration"] for r in record["at_init"]}
    for architecture in cfg["architectures"]:
        keys = [(architecture, layout, "full") for layout in LAYOUTS]
        keys += [(architecture, "centred", ablation) for ablation in ABLATIONS[1:]]
        lines.append(f"| {architecture} | " + " | ".join(
            format_ci(cell[k]["mean"], cell[k]["ci95"], 2) if k in cell else "—" for k in keys) + " |")
    lines += ["", f"After training ({cfg['architecture']}, N = {cfg['N']}, width {cfg['width']}, {cfg['blocks']} "
              f"blocks, {cfg['modes']} modes, {cfg['nepochs']} epochs, lr {cfg['lr']}, seed 0, sqrt_in): the "
              "patch-frame error's mean |error| within the centre disc over its mean on the probe's support, the "
              "DC response's concentration, and the stitched test object:", "",
              "| input layout | centre/support amplitude | centre/support phase | DC concentration "
              "| lattice_amp | lattice_phase | ssim_amp | ssim_phase |", "|---|---|---|---|---|---|---|---|"]
    for row in record["trained"]:
        rec = row["reconstruction"]
        lines.append(f"| {row['layout']} | {row['centre_ratio_amp']:.2f} | {row['centre_ratio_phase']:.2f} "
                     f"| {row['dc_concentration']:.2f} | {rec['lattice_amp']:.3f} | {rec['lattice_phase']:.3f} "
                     f"| {rec['ssim_amp']:.3f} | {rec['ssim_phase']:.3f} |")
    return "\n".join(lines) + "\n"


def figure(record: dict[str, Any]) -> Any:
    """At init: the DC response's centre concentration per generator, one bar per input layout and per
    ablation of the centred layout, mean ± 95% CI over the seeds; 1 (dotted) is an even spread."""
    plt = pyplot()
    cfg = record["config"]
    cell = {(r["architecture"], r["layout"], r["ablation"]): r["concentration"] for r in record["at_init"]}
    keys = [(layout, "full") for layout in LAYOUTS] + [("centred", a) for a in ABLATIONS[1:]]
    series = [(layout if ablation == "full" else f"centred, {ablation}",
               [cell[(a, layout, ablation)]["mean"] for a in cfg["architectures"]],
               [cell[(a, layout, ablation)]["ci95"] or 0.0 for a in cfg["architectures"]]) for layout, ablation in keys]
    # wide enough for the legend's three columns and the title even with one generator
    fig, ax = plt.subplots(figsize=(max(8.5, 1.3 * len(cfg["architectures"]) + 2), 4.6), layout="constrained")
    bar_groups(ax, cfg["architectures"], series, log=False)
    ax.axhline(1.0, color="gray", linestyle=":", linewidth=1, label="even spread")
    ax.set_xlabel("generator (at init)")
    ax.set_ylabel(f"DC response within {cfg['centre_radius']:g} px of the centre / even share")
    ax.set_title(f"Where a change of the DC pixel alone moves the output, N = {cfg['N']},\nmean ± 95% CI over "
                 f"{cfg['seeds']} seeds", fontsize=9)
    one_legend(fig, [ax], "input layout", columns=3)
    return fig


def frame_error_figure(record: dict[str, Any]) -> Any:
    """The trained models' patch-frame error per layout: amplitude (top) and phase (bottom)."""
    plt = pyplot()
    rows = record["trained"]
    if not rows:
        return None
    fig, axes = plt.subplots(2, len(rows), figsize=(3.2 * len(rows) + 1, 6), squeeze=False, layout="constrained")
    for col, row in enumerate(rows):
        for r, (name, key, unit) in enumerate((("amplitude", "amp", ""), ("phase", "phase", " (rad)"))):
            image = decode_image(row["frame_error"][name])
            bound = float(np.abs(image).max()) or 1.0
            ax = axes[r, col]
            shown = ax.imshow(image, cmap="RdBu_r", vmin=-bound, vmax=bound)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{row['layout']}: {name} error{unit}\ncentre/support {row[f'centre_ratio_{key}']:.2f}",
                         fontsize=8)
            fig.colorbar(shown, ax=ax, shrink=0.8)
    cfg = record["config"]
    fig.supxlabel(f"{cfg['architecture']}, N = {cfg['N']}, {cfg['nepochs']} epochs: the test patches' error "
                  "averaged in patch coordinates (each patch's global phase aligned); the DC peak lies at the centre",
                  fontsize=7)
    return fig


EXTRA_FIGURES = {"frame_error": frame_error_figure}  # NAME_frame_error.png


SIZE_OPTIONS = {  # option: (type, full-size default, --quick default, help)
    "--seeds": (bounded_int(1, 100), 3, 1, "seeded models per cell at init"),
    "--N": (bounded_int(16, 256), 32, 16, "patch size (even)"),
    "--width": (bounded_int(1, 256), 32, 4, "every model's channels"),
    "--modes": (bounded_int(1, 128), 12, 4, "every model's kept modes (<= N // 2)"),
    "--blocks": (bounded_int(1, 16), 4, 2, "every model's blocks"),
    "--nepochs": (bounded_int(1, 10_000), 25, 1, "its training epochs"),
    "--nimgs-train": (bounded_int(1, 1000), 8, 1, "simulated training objects"),
    "--nimgs-test": (bounded_int(1, 1000), 2, 1, "simulated test objects"),
}


def build_parser() -> argparse.ArgumentParser:
    p = benchmark_parser(MODULE, __doc__)
    p.add_argument("--architectures", type=comma_separated(ARCHITECTURES, "generators"),
                   default=",".join(ARCHITECTURES), help="comma-separated generators measured at init")
    for flag, (kind, full, quick, text) in SIZE_OPTIONS.items():
        p.add_argument(flag, type=kind, default=None, help=f"{text} (default: {full}; with --quick {quick})")
    p.add_argument("--architecture", choices=ARCHITECTURES, default="ffno", help="the generator trained")
    p.add_argument("--lr", type=float, default=3e-3, help="its Adam learning rate")
    p.add_argument("--quick", action="store_true",
                   help="tiny sizes, for a smoke test (seconds); explicit size options still win")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = argv
    for flag, (_, full, quick, _) in SIZE_OPTIONS.items():  # an explicit option wins over --quick's size
        if getattr(args, dest := flag.lstrip("-").replace("-", "_")) is None:
            setattr(args, dest, quick if args.quick else full)
    try:  # every model's sizes, checked before any work
        for architecture in {args.architecture, *args.architectures}:
            GeneratorConfig(architecture=architecture, N=args.N, fno_width=args.width, fno_modes=args.modes,
                            fno_blocks=args.blocks)
        if not (args.lr > 0 and math.isfinite(args.lr)):
            raise ValueError(f"--lr must be a finite number > 0; got {args.lr}")
    except pydantic.ValidationError as exc:
        raise UsageError(format_validation_error(exc, "configuration")) from None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    with command_threads(args.threads):
        device = resolve_device(args.device)
        prepare_output_dir(args.output_dir, STEM, overwrite=args.overwrite)
        try:
            record = run(args, device)
        except DivergenceError as exc:
            print(f"error: the trained model diverged ({exc}): lower --lr", file=sys.stderr)
            return EXIT_DIVERGED
        publish(args.output_dir, STEM, record, markdown_report(record), figure, EXTRA_FIGURES,
                tracking=benchmark_tracking(args, STEM))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
