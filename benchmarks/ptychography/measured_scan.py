"""A measured scan reconstructed by the physics-informed generator, beside CDTools' reconstruction of the
same file, and how far the two agree.

The scan: PETRA III beamline P25, a Siemens star, 200 near-field patterns of 100² photon counts (CXI; CC BY
4.0, credit: N. Samadi, A. Karabay, P. Sheng, C. Qiu, K. Spiers, W. Xu, A. Levitan, M. Guizar-Sicairos,
doi:10.5281/zenodo.17899482). Its probe is unknown: the generator learns it beside itself (from a guess
made of the mean pattern), with a sub-pixel correction of every scan position, trained on the scan itself
with the stitched loss (``ptycho_torch.training``, ``learn_probe``, ``refine_positions``). CDTools
(``cdtools-py``) runs its own example's settings on the same file: ``FancyPtycho`` near field with the
focus 3.65 mm upstream, Adam 100 epochs at 0.04 (batches of 10) then 50 at 0.005 (batches of 50).

Agreement: the Pearson correlation of the two phase images where both probes light the object to at
least half its most-lit dose, after offset, ramp and position are taken out
(``ptycho_torch.evaluation.agreement``). For scale, the same correlation between CDTools' reconstruction
and a blur of it (σ = 1 and 2 px) is recorded too.

    python -m benchmarks.measured_scan --output-dir benchmarks/results/cpu-2core/measured-petra-p25
"""

# The figure's panels, the record and the two reconstructions belong to one comparison: one module.

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ptycho_torch.data.measured import DataFiles
from ptycho_torch.data.scan_files import write_object_file
from ptycho_torch.evaluation import stitch_objects
from ptycho_torch.evaluation.agreement import illuminated, phase_agreement, without_offset_and_ramp
from ptycho_torch.training import TrainingConfig, train

from .machinery.common import (
    UsageError,
    benchmark_parser,
    benchmark_tracking,
    bounded_int,
    command_threads,
    environment,
    markdown_header,
    positive_float,
    prepare_output_dir,
    publish,
    run_cli,
)
from .machinery.figures import pyplot
from .machinery.object_grid import decode_image, encode_image

SCHEMA = "spectral-init/measured-scan/2"
MODULE, STEM = "benchmarks.measured_scan", "measured_scan"
DEFAULT_SCAN = (Path(__file__).resolve().parents[3] / "shared" / "data" / "petra-p25-near-field"
                / "PETRAIII_P25_Near_Field_Ptycho.cxi")
CREDIT = ("data: PETRA III P25 (DESY), N. Samadi, A. Karabay, P. Sheng, C. Qiu, K. Spiers, W. Xu, A. Levitan, "
          "M. Guizar-Sicairos, CC BY 4.0, doi:10.5281/zenodo.17899482")
LIT = 0.5  # well lit: at least half the most-lit pixel's summed |probe|²


def training_config(args: argparse.Namespace) -> TrainingConfig:
    files = DataFiles(train_path=args.data, propagation="near-field", focus_distance=args.focus_distance)
    return TrainingConfig(
        files=files, nepochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed, device="cpu",
        learn_probe=True, refine_positions=True, learn_background=not args.no_background, loss_on="stitched",
        model={"architecture": "fno", "fno_width": args.width, "fno_modes": args.modes, "fno_cnn_blocks": 1,
               "input_layout": "flat_field", "output_mode": "real_imag"})


def ours(args: argparse.Namespace) -> dict[str, Any]:
    """The generator trained on the scan; its stitched object, probe and positions (object pixels)."""
    config = training_config(args)
    start = time.perf_counter()
    result = train(config)
    objects, coverage = stitch_objects(result.test_predictions, result.test_set)
    seconds = time.perf_counter() - start
    data = result.test_set
    write_object_file(args.output_dir / "object.npz", objects, coverage, data.positions, data.object_ids,
                      data.probe.shape[-1], data.origin, probe=data.probe)
    record = result.illumination.record()
    background = result.train_set.background
    share = None if background is None else float(
        background.double().square().sum() / result.train_set.amplitudes.double().square().sum(dim=(-2, -1)).mean())
    return {"object": objects[0].numpy(), "background_share": share, "probe": data.probe.numpy(),
            "positions": list(data.positions),
            "geometry": config.files.scans[0].metadata["geometry"],  # as the file was read for training
            "seconds": seconds, "final_loss": result.epoch_losses[-1],
            "max_position_shift_px": record["max_position_shift"], "epochs": config.nepochs}


CDTOOLS_SCHEDULE = ((100, 0.04, 10), (50, 0.005, 50))  # its example's (epochs, lr, batch size)
CDTOOLS_KEPT = (5, 10, 20, 50, 100)  # epochs at which CDTools' object is kept, besides its schedule's end


def _cdtools_state(model: Any, dataset: Any, cdtools: Any) -> dict[str, Any]:
    """CDTools' object, probe and (refined) probe positions on its canvas, as they stand."""
    pixels = cdtools.tools.interactions.translations_to_pixel(model.obj_basis, dataset.translations,
                                                              surface_normal=model.surface_normal)
    pixels = pixels - model.min_translation + model.translation_offsets.detach() * model.translation_scale
    return {"object": model.obj.detach().numpy().copy(), "probe": model.probe.detach()[0].numpy().copy(),
            "positions": [tuple(p) for p in pixels.double().tolist()]}


def cdtools_reconstruction(args: argparse.Namespace) -> dict[str, Any]:
    """CDTools' example on the same file, then ``--cdtools-extension`` more epochs at its last rate and
    batch: its object, probe and positions at the example's end (``final``), at the epochs of
    ``CDTOOLS_KEPT`` and at the extension's end (``kept``: epoch → state), to show how far it has converged."""
    try:
        import cdtools
    except ImportError:
        raise UsageError("CDTools is not installed (pip install cdtools-py, or the 'anchor' extra); "
                         "--no-cdtools runs without it") from None
    torch.manual_seed(args.seed)
    dataset = cdtools.datasets.Ptycho2DDataset.from_cxi(str(args.data))
    model = cdtools.models.FancyPtycho.from_dataset(dataset, n_modes=1, near_field=True,
                                                    propagation_distance=args.focus_distance, units="um")
    reconstructor = cdtools.reconstructors.AdamReconstructor(model, dataset)
    example_epochs = sum(e for e, _, _ in args.cdtools_schedule)
    phases = list(args.cdtools_schedule)
    if args.cdtools_extension:
        phases.append((args.cdtools_extension, *args.cdtools_schedule[-1][1:]))
    kept, epoch, seconds, loss = {}, 0, {}, None
    start = time.perf_counter()
    for epochs, lr, batch in phases:
        for loss in reconstructor.optimize(epochs, lr=lr, batch_size=batch):
            epoch += 1
            if epoch == example_epochs:
                seconds["example"], loss_at_example = time.perf_counter() - start, float(loss)
            if epoch in CDTOOLS_KEPT or epoch == example_epochs or epoch == example_epochs + args.cdtools_extension:
                kept[epoch] = _cdtools_state(model, dataset, cdtools)  # copying is not timed: a few ms
    seconds["all"] = time.perf_counter() - start
    # CDTools learns a detector background b² beside the object (FancyPtycho): how much of a pattern it took
    background = float(model.background.detach().double().square().sum())
    photons = float(dataset.patterns.double().sum(dim=(-2, -1)).mean())
    return {**kept[example_epochs], "kept": kept, "seconds": seconds["example"], "final_loss": loss_at_example,
            "background_share": background / photons,
            "extension_seconds": seconds["all"] - seconds["example"], "epochs": example_epochs,
            "version": cdtools.__version__}


def convergence(theirs: dict[str, Any], mine: dict[str, Any], lit_mine: np.ndarray) -> dict[str, Any]:
    """Each kept CDTools state, and the generator's object, against CDTools' longest run (the extension's
    end): phase correlation and SSIM over the region both light."""
    kept = theirs["kept"]
    last = max(kept)
    reference = kept[last]
    lit_reference = illuminated(reference["probe"], reference["positions"], reference["object"].shape, LIT)
    rows = []
    for epoch, state in sorted(kept.items()):
        if epoch == last:
            continue
        lit = illuminated(state["probe"], state["positions"], state["object"].shape, LIT)
        a = phase_agreement(state["object"], lit, reference["object"], lit_reference)
        rows.append({"epochs": epoch, "phase_pearson": a.pearson, "phase_ssim": a.ssim})
    ours = phase_agreement(mine["object"], lit_mine, reference["object"], lit_reference)
    return {"reference_epochs": last, "cdtools": rows,
            "generator": {"phase_pearson": ours.pearson, "phase_ssim": ours.ssim}}


def _blurred(image: np.ndarray, sigma: float) -> np.ndarray:
    fy = np.fft.fftfreq(image.shape[0])[:, None]
    fx = np.fft.fftfreq(image.shape[1])[None, :]
    return np.fft.ifft2(np.fft.fft2(image) * np.exp(-2 * (math.pi * sigma) ** 2 * (fy**2 + fx**2)))


def _crop(image: np.ndarray, lit: np.ndarray, margin: int = 4) -> tuple[slice, slice]:
    rows, cols = np.nonzero(lit)
    return (slice(max(rows.min() - margin, 0), rows.max() + margin + 1),
            slice(max(cols.min() - margin, 0), cols.max() + margin + 1))


def _panels(obj: np.ndarray, probe: np.ndarray, lit: np.ndarray) -> dict[str, Any]:
    """What the figure shows of one reconstruction: its lit region's phase (offset and ramp out) and
    amplitude, and its probe's amplitude."""
    box = _crop(obj, lit)
    flat = without_offset_and_ramp(obj.astype(np.complex128), lit)[box]  # as the agreement flattens
    shown = lit[box]
    phase, amplitude = np.angle(flat), np.abs(flat)
    # outside the well-lit region: the region's median, so that its noise does not set the colour scale
    return {"phase": encode_image(np.where(shown, phase, np.median(phase[shown]))),
            "amplitude": encode_image(np.where(shown, amplitude, np.median(amplitude[shown]))),
            "probe_amplitude": encode_image(np.abs(probe))}


def _profile(agreement: Any) -> dict[str, Any]:
    """Both compared phases along the row through the middle of the region both light (px from its left)."""
    rows, _ = np.nonzero(agreement.lit)
    row = int(round(rows.mean()))
    columns = np.nonzero(agreement.lit[row])[0]
    return {"row": row, "column_px": (columns - columns[0]).tolist(),
            "ours": agreement.first_phase[row, columns].round(5).tolist(),
            "cdtools": agreement.second_phase[row, columns].round(5).tolist()}


def run(args: argparse.Namespace, argv: Sequence[str] | None) -> dict[str, Any]:
    mine = ours(args)
    pixel = mine["geometry"]["object_pixel_m"][0]
    lit_mine = illuminated(mine["probe"], mine["positions"], mine["object"].shape, LIT)
    record: dict[str, Any] = {
        "schema": SCHEMA, "environment": environment(torch.device("cpu"), MODULE, argv),
        "config": {"data": str(args.data), "focus_distance_m": args.focus_distance, "epochs": args.epochs,
                   "learn_background": not args.no_background, "width": args.width, "modes": args.modes,
                   "batch_size": args.batch_size, "lr": args.lr,
                   "seed": args.seed, "lit_level": LIT, "geometry": mine["geometry"],
                   "cdtools_schedule": None if args.no_cdtools else [list(s) for s in args.cdtools_schedule],
                   "cdtools_extension": None if args.no_cdtools else args.cdtools_extension},
        "credit": CREDIT,
        "ours": {k: mine[k] for k in ("seconds", "final_loss", "max_position_shift_px", "epochs",
                                      "background_share")},
        "images": {"pixel_m": pixel, "ours": _panels(mine["object"], mine["probe"], lit_mine)},
    }
    if not args.no_cdtools:
        theirs = cdtools_reconstruction(args)
        lit_theirs = illuminated(theirs["probe"], theirs["positions"], theirs["object"].shape, LIT)
        agreement = phase_agreement(mine["object"], lit_mine, theirs["object"], lit_theirs)
        blurs = {}
        for sigma in (1.0, 2.0):
            blur = _blurred(theirs["object"], sigma)
            blurred = phase_agreement(blur, lit_theirs, theirs["object"], lit_theirs)
            blurs[f"sigma_{sigma:g}px"] = {"phase_pearson": blurred.pearson, "phase_ssim": blurred.ssim}
        record["cdtools"] = {k: theirs[k] for k in ("seconds", "final_loss", "epochs", "version",
                                                    "extension_seconds", "background_share")}
        if args.cdtools_extension:
            record["convergence"] = convergence(theirs, mine, lit_mine)
        record["agreement"] = {"phase_pearson": agreement.pearson, "phase_ssim": agreement.ssim,
                               "shift_px": list(agreement.shift),
                               "pixels": agreement.pixels, "cdtools_vs_its_blur": blurs,
                               "profile": _profile(agreement)}
        record["images"]["cdtools"] = _panels(theirs["object"], theirs["probe"], lit_theirs)
        np.savez_compressed(args.output_dir / "cdtools.npz", object=theirs["object"], probe=theirs["probe"],
                            positions=np.array(theirs["positions"]))
    return record


def markdown_report(record: dict[str, Any]) -> str:
    cfg, mine = record["config"], record["ours"]
    lines = [*markdown_header("A measured near-field scan: the generator beside CDTools", record["environment"]),
             f"{record['credit']}.", "",
             f"Scan `{Path(cfg['data']).name}`: near field, focus {cfg['focus_distance_m'] * 1e3:g} mm before the "
             f"sample (M = {cfg['geometry']['magnification']:.2f}, object pixel "
             f"{cfg['geometry']['object_pixel_m'][0] * 1e9:.1f} nm). Generator: FNO width {cfg['width']}, "
             f"{cfg['modes']} modes, flat-field input, real/imaginary output, stitched loss, probe learned from "
             f"the mean pattern, positions refined, "
             f"{'a detector background learned' if cfg['learn_background'] else 'no background term'}; "
             f"{cfg['epochs']} epochs, batch {cfg['batch_size']}, "
             f"lr {cfg['lr']:g}, seed {cfg['seed']}.", "",
             "| reconstruction | epochs | seconds | final loss (its own) | largest position correction (px) |",
             "|---|---|---|---|---|",
             f"| generator (this package) | {mine['epochs']} | {mine['seconds']:.0f} | {mine['final_loss']:.4g} "
             f"| {mine['max_position_shift_px']:.2f} |"]
    if "cdtools" in record:
        theirs, agreement = record["cdtools"], record["agreement"]
        lines.append(f"| CDTools {theirs['version']} (its example's settings) | {theirs['epochs']} | "
                     f"{theirs['seconds']:.0f} | {theirs['final_loss']:.4g} | (refined, up to its own) |")
        blur = agreement["cdtools_vs_its_blur"]
        lines += ["", f"**Phase agreement** ({agreement['pixels']:,} pixels both lit to ≥ "
                  f"{cfg['lit_level']:.0%} of their peak dose, offset, ramp and shift "
                  f"({agreement['shift_px'][0]:.2f}, {agreement['shift_px'][1]:.2f}) px taken out): Pearson "
                  f"**{agreement['phase_pearson']:.3f}**, SSIM {_score(agreement['phase_ssim'])}. For scale, "
                  f"CDTools' reconstruction against a Gaussian blur of itself: "
                  f"{_score(blur['sigma_1px']['phase_pearson'])} / {_score(blur['sigma_1px']['phase_ssim'])} "
                  f"(σ = 1 px), {_score(blur['sigma_2px']['phase_pearson'])} / "
                  f"{_score(blur['sigma_2px']['phase_ssim'])} (σ = 2 px)."]
        ours_share = (f"the generator's, {mine['background_share']:.2%}" if mine["background_share"] is not None
                      else "the generator has none")
        lines += ["", f"Detector background learned beside the object, as a share of a mean pattern's photons: "
                  f"CDTools' after its {theirs['epochs'] + (cfg['cdtools_extension'] or 0)} epochs "
                  f"{theirs['background_share']:.2%}; {ours_share}."]
    if "convergence" in record:
        lines += convergence_table(record)
    return "\n".join(lines) + "\n"


def convergence_table(record: dict[str, Any]) -> list[str]:
    """How far CDTools' object had come at each kept epoch, against its longest run."""
    conv, theirs = record["convergence"], record["cdtools"]
    lines = ["", f"**Is the anchor converged?** CDTools went on {record['config']['cdtools_extension']} epochs past "
             f"its example's {theirs['epochs']} at its last rate and batch ({theirs['extension_seconds']:.0f} s "
             f"more); each stage's phase against that {conv['reference_epochs']}-epoch object:", "",
             "| reconstruction | epochs | phase Pearson | phase SSIM |", "|---|---|---|---|"]
    for row in conv["cdtools"]:
        note = " (its example's end: the anchor above)" if row["epochs"] == theirs["epochs"] else ""
        lines.append(f"| CDTools{note} | {row['epochs']} | {_score(row['phase_pearson'], 4)} | "
                     f"{_score(row['phase_ssim'], 4)} |")
    ours = conv["generator"]
    lines.append(f"| generator (this package) | {record['ours']['epochs']} | {_score(ours['phase_pearson'], 4)} | "
                 f"{_score(ours['phase_ssim'], 4)} |")
    return lines


def _score(value: float | None, digits: int = 3) -> str:
    """A score, or "n/a" (an SSIM where no box of the window fits inside the compared region)."""
    return "n/a" if value is None else f"{value:.{digits}f}"


def figure(record: dict[str, Any]) -> Any:
    """The two phases along one row through the star's middle, after offset, ramp and shift are taken
    out: where the spokes are resolved, and how deep. Without CDTools' run, the generator's images."""
    agreement = record.get("agreement")
    if agreement is None:
        return objects_figure(record)
    plt = pyplot()
    profile, pixel_um = agreement["profile"], record["images"]["pixel_m"] * 1e6
    x = [c * pixel_um for c in profile["column_px"]]
    fig, ax = plt.subplots(figsize=(9, 3.8), layout="constrained")
    ax.plot(x, profile["cdtools"], color="C1", linewidth=1.2, label=f"CDTools {record['cdtools']['version']}")
    ax.plot(x, profile["ours"], color="C0", linewidth=1.2, label="generator (this package)")
    ax.set_xlabel("x along the row through the star's middle (µm)")
    ax.set_ylabel("phase (rad), offset and ramp out")
    ax.set_title(f"Both reconstructions of the measured scan, one row: phase correlation "
                 f"{agreement['phase_pearson']:.3f} over the region both light", fontsize=9)
    ax.legend(loc="lower right", fontsize=8)
    fig.supxlabel(record["credit"], fontsize=7)
    return fig


def objects_figure(record: dict[str, Any]) -> Any:
    """Phase, amplitude and probe amplitude of each reconstruction, colour bars, axes in µm."""
    plt = pyplot()
    names = [n for n in ("ours", "cdtools") if n in record["images"]]
    labels = {"ours": "generator (this package)", "cdtools": "CDTools"}
    pixel_um = record["images"]["pixel_m"] * 1e6
    fig, axes = plt.subplots(len(names), 3, figsize=(12, 3.9 * len(names)), layout="constrained", squeeze=False)
    for row, name in zip(axes, names):
        for ax, (key, title, cmap) in zip(row, (("phase", "phase (rad)", "gray"), ("amplitude", "amplitude", "gray"),
                                                ("probe_amplitude", "probe |P|", "magma"))):
            image = decode_image(record["images"][name][key])
            extent = (0, image.shape[1] * pixel_um, image.shape[0] * pixel_um, 0)
            shown = ax.imshow(image, cmap=cmap, extent=extent)
            ax.set_title(f"{labels[name]}: {title}", fontsize=9)
            ax.set_xlabel("x (µm)")
            ax.set_ylabel("y (µm)")
            fig.colorbar(shown, ax=ax, shrink=0.85)
    agreement = record.get("agreement")
    head = "Measured near-field scan (PETRA III P25, Siemens star), each reconstruction's well-lit region"
    if agreement:
        head += f": phase correlation {agreement['phase_pearson']:.3f}"
    # the title line goes to the device (draw_all); the data's credit goes with every copy of the figure
    fig.supxlabel(head + "\n" + record["credit"], fontsize=8)
    return fig


def convergence_figure(record: dict[str, Any]) -> Any:
    """CDTools' phase against its longest run, epoch by epoch, and the generator's, as a line."""
    conv = record.get("convergence")
    if conv is None:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 4.4), layout="constrained")
    epochs = [row["epochs"] for row in conv["cdtools"]]
    for key, label, marker in (("phase_pearson", "Pearson", "o"), ("phase_ssim", "SSIM", "s")):
        values = [math.nan if row[key] is None else row[key] for row in conv["cdtools"]]
        line, = ax.plot(epochs, values, marker=marker, label=f"CDTools, {label}")
        if conv["generator"][key] is not None:
            ax.axhline(conv["generator"][key], color=line.get_color(), linestyle="--",
                       label=f"generator ({record['ours']['epochs']} epochs), {label}")
    ax.axvline(record["cdtools"]["epochs"], color="0.6", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("CDTools epochs (grey: its example's end, the anchor)")
    ax.set_ylabel(f"phase agreement with CDTools at {conv['reference_epochs']} epochs")
    ax.set_title("Is the iterative anchor converged? Each stage against its longest run", fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    fig.supxlabel(record["credit"], fontsize=7)
    return fig


EXTRA_FIGURES = {"objects": objects_figure, "convergence": convergence_figure}  # measured_scan_{name}.png


def _schedule(text: str) -> tuple[tuple[int, float, int], ...]:
    try:
        phases = tuple((int(e), float(lr), int(b)) for e, lr, b in (part.split(":") for part in text.split(",")))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected EPOCHS:LR:BATCH[,…], e.g. 100:0.04:10,50:0.005:50; "
                                         f"got {text!r}") from None
    if not phases or any(e < 1 or not lr > 0 or b < 1 for e, lr, b in phases):
        raise argparse.ArgumentTypeError(f"every phase needs epochs >= 1, lr > 0 and batch >= 1; got {text!r}")
    return phases


def build_parser() -> argparse.ArgumentParser:
    p = benchmark_parser(MODULE, __doc__)
    p.add_argument("--data", type=Path, default=DEFAULT_SCAN, help="the CXI scan (default: the shared PETRA III "
                   "P25 file)")
    p.add_argument("--focus-distance", type=positive_float, default=3.65e-3,
                   help="focus-to-sample distance z1 in m (default: 0.00365, CDTools' example's)")
    p.add_argument("--epochs", type=bounded_int(1, 10_000), default=100, help="generator epochs (default: 100)")
    p.add_argument("--width", type=bounded_int(1, 256), default=16, help="FNO width (default: 16)")
    p.add_argument("--modes", type=bounded_int(1, 512), default=16, help="FNO modes per corner (default: 16)")
    p.add_argument("--batch-size", type=bounded_int(1, 10_000), default=20,
                   help="patterns per step, a tile of neighbouring positions (default: 20)")
    p.add_argument("--lr", type=positive_float, default=1e-3, help="the generator's Adam rate (default: 0.001)")
    p.add_argument("--seed", type=bounded_int(0, 2**31 - 1), default=0, help="seed (default: 0)")
    p.add_argument("--cdtools-schedule", type=_schedule, default=CDTOOLS_SCHEDULE,
                   help="CDTools' Adam phases, EPOCHS:LR:BATCH,… (default: 100:0.04:10,50:0.005:50, its example's)")
    p.add_argument("--no-background", action="store_true",
                   help="no detector background beside the generator (default: one is learned, as CDTools does)")
    p.add_argument("--cdtools-extension", type=bounded_int(0, 100_000), default=150,
                   help="epochs CDTools goes on after its schedule, at its last rate and batch, to show how far the "
                   "schedule's object had converged (default: 150; 0: none)")
    p.add_argument("--no-cdtools", action="store_true", help="the generator alone (no comparison)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.device == "cuda":
        raise UsageError("--device cuda: this comparison runs on the CPU (CDTools' timing beside ours)")
    if not args.data.exists():
        raise UsageError(f"--data {str(args.data)!r}: no such file (the shared scan lies in "
                         "../shared/data/petra-p25-near-field/ beside the repository)")
    with command_threads(args.threads):
        prepare_output_dir(args.output_dir, STEM, overwrite=args.overwrite)
        record = run(args, argv)
        publish(args.output_dir, STEM, record, markdown_report(record), figure, EXTRA_FIGURES,
                tracking=benchmark_tracking(args, STEM))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
