"""Write a simulated scan in PtychoPINN's canonical dataset format, for training here or in the reference.

    python -m ptycho_torch.simulation --output train.npz --N 64 --scan spiral
    python -m ptycho_torch.simulation --output test.npz --N 64 --scan spiral --seed 5000

The file holds the noisy amplitudes (``diff3d``), the probe, the patch centres (``xcoords``,
``ycoords``), the ground truth (``Y`` patches; ``objectGuess`` too for one object) and, in
``_metadata``, the photon scale and the simulation's settings. Exit status: 0 written, 2 bad input
(nothing written), 130 interrupted (nothing written).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import pydantic

from spectral_init.cli.usage import (
    EXIT_INTERRUPTED,
    ArgumentParser,
    UsageError,
    format_validation_error,
    interrupts_raise_keyboard_interrupt,
)

from ..data.scan_files import write_scan_file
from .dataset import SimulationConfig, simulate_dataset, simulated_objects
from .probe import load_probe

# flag → SimulationConfig field: the settings a scan file needs (the image counts are --nimgs here)
FIELDS = {"--N": "N", "--object-size": "object_size", "--offset": "offset", "--scan": "scan", "--n-lines": "n_lines",
          "--nphotons": "nphotons", "--probe": "probe_path", "--probe-defocus": "probe_defocus"}
TYPES = {"N": int, "object_size": int, "offset": int, "n_lines": int, "nphotons": float, "probe_path": Path,
         "probe_defocus": float, "scan": str}


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m ptycho_torch.simulation", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--output", type=Path, required=True, help="the .npz to write")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output (default: refuse)")
    p.add_argument("--nimgs", type=int, default=1, help="simulated objects in the file (default: 1)")
    p.add_argument("--seed", type=int, default=0,
                   help="the first object's seed; objects seed, seed+1, … (default: 0; training simulates its "
                   "test objects from seed 5000 on)")
    for flag, name in FIELDS.items():
        field = SimulationConfig.model_fields[name]
        p.add_argument(flag, dest=name, type=TYPES[name], default=None,
                       help=f"{field.description} (default: {field.default})")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = SimulationConfig(**{name: getattr(args, name) for name in FIELDS.values()
                                     if getattr(args, name) is not None})
        if config.probe_path is not None:
            load_probe(config.probe_path, config.N)
    except pydantic.ValidationError as exc:
        print(f"error: {format_validation_error(exc, 'simulation settings')}", file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        _check_output(args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with interrupts_raise_keyboard_interrupt():
        try:
            data = simulate_dataset(config, args.nimgs, seed=args.seed)
            truth = simulated_objects(config, 1, args.seed)[0] if args.nimgs == 1 else None
            write_scan_file(args.output, data.amplitudes, data.probe, data.positions, object_index=data.object_ids,
                            object_truth=truth, patch_truth=data.objects,
                            metadata={"intensity_scale": data.intensity_scale, "nphotons": config.nphotons,
                                      "seed": args.seed, "simulation": config.model_dump(mode="json")})
        except KeyboardInterrupt:
            print("interrupted; nothing was written", file=sys.stderr)
            return EXIT_INTERRUPTED
    print(f"wrote {args.output}: {len(data)} patterns of {config.N} × {config.N} ({config.scan} scan, "
          f"{args.nimgs} object{'s' if args.nimgs != 1 else ''})")
    return 0


def _check_output(args: argparse.Namespace) -> None:
    if args.nimgs < 1 or args.seed < 0:
        raise UsageError(f"--nimgs must be >= 1 and --seed >= 0; got {args.nimgs}, {args.seed}")
    if args.output.suffix != ".npz":
        raise UsageError(f"--output {str(args.output)!r}: the format is .npz (name it so)")
    if args.output.is_dir():
        raise UsageError(f"--output {str(args.output)!r} is a directory")
    if args.output.exists() and not args.overwrite:
        raise UsageError(f"--output {str(args.output)!r} exists; pass --overwrite to replace it")


if __name__ == "__main__":
    sys.exit(main())
