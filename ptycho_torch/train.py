"""``python -m ptycho_torch.train``: the reference plan's FNO smoke run, single-process or under torchrun.

    python -m ptycho_torch.train --N 64 --gridsize 1 --architecture fno --nepochs 5 \\
        --nimgs-train 1 --nimgs-test 1 --torch-infer-batch-size 8 --output-dir runs/smoke
    torchrun --standalone --nproc_per_node 2 -m ptycho_torch.train --output-dir runs/ddp ...

Values come from ``--config FILE`` (TOML or JSON, the fields of
``TrainingConfig``: top-level training fields, a ``[model]`` and a ``[data]``
table), overridden by the flags given. Writes ``metrics.json`` and
``checkpoint.pt`` to the output directory (rank 0 only).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

import pydantic
import torch
import torch.distributed as dist

from spectral_init.config_files import read_config_file

from .config import ARCHITECTURES
from .progress import Progress
from .training import DistributedContext, TrainingConfig, TrainResult, pick_device, resolved_spectral_init, train

# flag destination → path in the nested config
_FLAG_PATHS: dict[str, tuple[str, ...]] = {
    "architecture": ("model", "architecture"),
    "fno_width": ("model", "fno_width"),
    "fno_modes": ("model", "fno_modes"),
    "fno_blocks": ("model", "fno_blocks"),
    "fno_cnn_blocks": ("model", "fno_cnn_blocks"),
    "input_transform": ("model", "input_transform"),
    "output_mode": ("model", "output_mode"),
    "spectral_init": ("model", "spectral_init"),
    "spectral_backend": ("model", "spectral_backend"),
    "gridsize": ("data", "gridsize"),
    "nimgs_train": ("data", "nimgs_train"),
    "nimgs_test": ("data", "nimgs_test"),
    "object_size": ("data", "object_size"),
    "offset": ("data", "offset"),
    "nphotons": ("data", "nphotons"),
    "probe": ("data", "probe_path"),
    "nepochs": ("nepochs",),
    "batch_size": ("batch_size",),
    "infer_batch_size": ("infer_batch_size",),
    "lr": ("lr",),
    "loss": ("loss",),
    "seed": ("seed",),
    "device": ("device",),
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ptycho_torch.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    # Defaults are None: only flags actually given override the config file.
    p.add_argument("--config", type=Path, help="TOML or JSON file of TrainingConfig fields")
    p.add_argument("--output-dir", type=Path, required=True)
    p.add_argument("--N", type=int, help="patch size (sets model.N and data.N)")
    p.add_argument("--gridsize", type=int)
    p.add_argument("--architecture", help=" | ".join(ARCHITECTURES))
    p.add_argument("--nepochs", "--torch-epochs", dest="nepochs", type=int)
    p.add_argument("--nimgs-train", type=int)
    p.add_argument("--nimgs-test", type=int)
    p.add_argument("--torch-infer-batch-size", dest="infer_batch_size", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--loss", help="mae | poisson")
    p.add_argument("--spectral-init", help="strategy name; see `spectral-init list`")
    p.add_argument("--spectral-backend", help="auto | fallback | neuralop")
    p.add_argument("--seed", type=int)
    p.add_argument("--device", help="auto | cpu | cuda")
    p.add_argument("--fno-width", type=int)
    p.add_argument("--fno-modes", type=int)
    p.add_argument("--fno-blocks", type=int)
    p.add_argument("--fno-cnn-blocks", type=int)
    p.add_argument("--input-transform", help="none | sqrt | log1p | instancenorm")
    p.add_argument("--output-mode", help="real_imag | amp_phase")
    p.add_argument("--object-size", type=int)
    p.add_argument("--offset", type=int)
    p.add_argument("--nphotons", type=float)
    p.add_argument("--probe", type=Path, help=".npz file with a complex N×N 'probeGuess'")
    p.add_argument("--no-progress", action="store_true")
    return p


def assemble_config(args: argparse.Namespace) -> TrainingConfig:
    """File values, then the flags given; N and gridsize reach both model and data."""
    raw = read_config_file(args.config, "--config") if args.config else {}
    merged: dict[str, Any] = {**raw, "model": dict(raw.get("model", {})), "data": dict(raw.get("data", {}))}
    for dest, path in _FLAG_PATHS.items():
        value = getattr(args, dest)
        if value is not None:
            target = merged
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = value
    if args.N is not None:
        merged["model"]["N"] = merged["data"]["N"] = args.N
    data_n = merged["data"].get("N", merged["model"].get("N"))
    if data_n is not None:
        merged["data"].setdefault("N", data_n)
        merged["model"].setdefault("N", data_n)
    merged["model"].setdefault("C", merged["data"].get("gridsize", 1) ** 2)
    return TrainingConfig.model_validate(merged)


def _format_validation_error(exc: pydantic.ValidationError) -> str:
    lines = []
    for err in exc.errors():
        where = ".".join(str(part) for part in err["loc"]) or "config"
        lines.append(f"  {where}: {err['msg']}")
    return "invalid training configuration:\n" + "\n".join(lines)


def _write_atomically(path: Path, write: Callable[[Path], object]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = assemble_config(args)
    except pydantic.ValidationError as exc:
        print(f"error: {_format_validation_error(exc)}", file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.output_dir.exists() and not args.output_dir.is_dir():
        print(f"error: --output-dir {str(args.output_dir)!r} exists and is not a directory", file=sys.stderr)
        return 2
    ctx = DistributedContext.from_env()
    try:
        device = pick_device(config.device, ctx)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if ctx.active:
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    try:
        progress: Progress | None = None

        def on_step(epoch: int, step: int, total_steps: int, loss: float) -> None:
            nonlocal progress
            if progress is None:
                progress = Progress(total_steps, "train", enabled=ctx.is_main and not args.no_progress)
            progress.step(f"epoch {epoch + 1}/{config.nepochs} loss {loss:.5g}")

        try:
            result = train(config, ctx, on_step=on_step)
        except (ValueError, FileNotFoundError) as exc:
            print(f"\nerror: {exc}", file=sys.stderr)
            return 2
        if ctx.is_main:
            for epoch, loss in enumerate(result.epoch_losses, 1):
                print(f"epoch {epoch}/{config.nepochs}: train loss {loss:.6g}")
            print(f"test: physics loss {result.test['physics_loss']:.6g}, amplitude MAE "
                  f"{result.test['amplitude_mae']:.4f}, phase MAE {result.test['phase_mae']:.4f} rad")
            write_outputs(args.output_dir, config, result, device, argv)
            print(f"wrote {args.output_dir / 'metrics.json'} and {args.output_dir / 'checkpoint.pt'}")
    finally:
        if ctx.active:
            dist.barrier()
            dist.destroy_process_group()
    return 0


def write_outputs(output_dir: Path, config: TrainingConfig, result: TrainResult, device: torch.device,
                  argv: Sequence[str] | None) -> None:
    """``metrics.json`` and ``checkpoint.pt``, each written whole or not at all."""
    output_dir.mkdir(parents=True, exist_ok=True)
    metrics = {
        "config": config.model_dump(mode="json"),
        "spectral_init": resolved_spectral_init(config),
        "epoch_losses": result.epoch_losses,
        "step_losses": result.step_losses,
        "test": result.test,
        "spectral_participation": result.participation,
        "timings": result.timings,
        "intensity_scale": result.intensity_scale,
        "n_train": result.n_train,
        "n_test": result.n_test,
        "ddp": result.ddp,
        "device": str(device),
        "torch": torch.__version__,
        "command": " ".join(["python -m ptycho_torch.train", *(sys.argv[1:] if argv is None else argv)]),
    }
    _write_atomically(output_dir / "metrics.json", lambda p: p.write_text(json.dumps(metrics, indent=2) + "\n"))
    checkpoint = {"model_state": result.model.state_dict(), "config": config.model_dump(mode="json")}
    _write_atomically(output_dir / "checkpoint.pt", lambda p: torch.save(checkpoint, p))


if __name__ == "__main__":
    sys.exit(main())
