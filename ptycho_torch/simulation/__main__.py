"""Write a simulated scan: in PtychoPINN's canonical dataset format (.npz), for training here or in the
reference, or as CXI (.cxi), the HDF5 layout of measured scans (CDTools, PtyPy, PyNX, ptychodus).

    python -m ptycho_torch.simulation --output train.npz --N 64 --scan spiral
    python -m ptycho_torch.simulation --output test.npz --N 64 --scan spiral --seed 5000
    python -m ptycho_torch.simulation --output unseen.npz --N 64 --nimgs 4 --object-kinds siemens,natural
    python -m ptycho_torch.simulation --output near.cxi --N 64 --scan spiral \
        --propagation near-field --focus-distance 1e-3

The .npz holds the noisy amplitudes (``diff3d``), the probe, the patch centres (``xcoords``,
``ycoords``), the ground truth (``Y`` patches; ``objectGuess`` too for one object) and, in
``_metadata``, the photon scale and the simulation's settings. The .cxi holds one object's photon
counts, the sample translations and the beamline (wavelength, detector distance and pixel) that give
back the same positions and propagation when read (``--train-data near.cxi --propagation near-field
--focus-distance 1e-3``), and the probe unless ``--no-probe`` (a scan whose probe is to be retrieved);
it holds no ground truth. Near-field patterns need the beamline, so only .cxi takes them. Exit status: 0
written, 2 bad input (nothing written), 130 interrupted (nothing written).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pydantic
import torch

from spectral_init.cli.usage import (
    EXIT_INTERRUPTED,
    ArgumentParser,
    UsageError,
    format_validation_error,
    interrupts_raise_keyboard_interrupt,
)

from ..data.cxi import write_cxi
from ..data.scan_files import write_scan_file
from .dataset import PtychoDataset, SimulationConfig, simulate_dataset, simulated_objects
from .geometry import SimulatedGeometry
from .probe import load_probe

# flag → SimulationConfig field: the settings a scan file needs (the image counts are --nimgs here)
FIELDS = {"--N": "N", "--object-size": "object_size", "--offset": "offset", "--scan": "scan", "--n-lines": "n_lines",
          "--object-kinds": "object_kinds", "--nphotons": "nphotons", "--probe": "probe_path",
          "--probe-defocus": "probe_defocus"}
# flag → SimulatedGeometry field: where the detector sits
GEOMETRY_FIELDS = {"--propagation": "propagation", "--wavelength": "wavelength", "--pixel-size": "object_pixel",
                   "--detector-distance": "detector_distance", "--focus-distance": "focus_distance"}
TYPES = {"N": int, "object_size": int, "offset": int, "n_lines": int, "nphotons": float, "probe_path": Path,
         "object_kinds": lambda text: [t.strip() for t in text.split(",")],  # checked by SimulationConfig
         "probe_defocus": float, "scan": str, "propagation": str, "wavelength": float, "object_pixel": float,
         "detector_distance": float, "focus_distance": float}
CHOICES = {"propagation": ("far-field", "near-field"), "scan": ("grid", "random", "spiral")}
FORMATS = (".npz", ".cxi")


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m ptycho_torch.simulation", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--output", type=Path, required=True, help="the file to write: .npz (PtychoPINN's format) or "
                   ".cxi (CXI, one object)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output (default: refuse)")
    p.add_argument("--nimgs", type=int, default=1, help="simulated objects in the file (default: 1)")
    p.add_argument("--seed", type=int, default=0,
                   help="the first object's seed; objects seed, seed+1, … (default: 0; training simulates its "
                   "test objects from seed 5000 on)")
    for model, fields in ((SimulationConfig, FIELDS), (SimulatedGeometry, GEOMETRY_FIELDS)):
        for flag, name in fields.items():
            field = model.model_fields[name]
            default = ",".join(field.default) if isinstance(field.default, list) else field.default
            p.add_argument(flag, dest=name, type=TYPES[name], default=None, choices=CHOICES.get(name),
                           help=f"{field.description} (default: {default})")
    p.add_argument("--no-probe", action="store_true",
                   help=".cxi only: leave the probe out of the file, as in a measured scan whose probe is unknown")
    return p


def _settings(args: argparse.Namespace, fields: dict[str, str]) -> dict[str, object]:
    return {name: getattr(args, name) for name in fields.values() if getattr(args, name) is not None}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = SimulationConfig(**_settings(args, FIELDS))
        geometry = SimulatedGeometry(**_settings(args, GEOMETRY_FIELDS))
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
            data = simulate_dataset(config, args.nimgs, seed=args.seed, propagator=geometry.propagator(config.N))
            if args.output.suffix == ".cxi":
                _write_cxi(args.output, data, geometry, with_probe=not args.no_probe)
            else:
                truth = simulated_objects(config, 1, args.seed)[0] if args.nimgs == 1 else None
                write_scan_file(args.output, data.amplitudes, data.probe, data.positions, object_index=data.object_ids,
                                object_truth=truth, patch_truth=data.objects,
                                metadata={"intensity_scale": data.intensity_scale, "nphotons": config.nphotons,
                                          "seed": args.seed, "simulation": config.model_dump(mode="json")})
        except KeyboardInterrupt:
            print("interrupted; nothing was written", file=sys.stderr)
            return EXIT_INTERRUPTED
    print(f"wrote {args.output}: {len(data)} patterns of {config.N} × {config.N} ({config.scan} scan, "
          f"{args.nimgs} object{'s' if args.nimgs != 1 else ''}, {geometry.propagation})")
    if geometry.propagation == "near-field":
        print(f"read it with --propagation near-field --focus-distance {geometry.focus_distance:g} (Fresnel number "
              f"{geometry.fresnel_number():.3g} per object pixel)")
    return 0


def _write_cxi(path: Path, data: PtychoDataset, geometry: SimulatedGeometry, with_probe: bool) -> None:
    """One object's photon counts at the sample translations of its positions, with the beamline."""
    N = data.probe.shape[-1]
    counts = data.counts[:, 0].round().to(torch.int64).numpy()
    if counts.max() < 2**31:
        counts = counts.astype(np.int32)  # a detector's counts; int64 only where a pattern's peak needs it
    write_cxi(path, counts, geometry.cxi_geometry(N).translations(data.positions), wavelength=geometry.wavelength,
              detector_distance=geometry.detector_distance, pixel_size=geometry.detector_pixel(N),
              probe=data.probe.numpy() if with_probe else None)


def _check_output(args: argparse.Namespace) -> None:
    if args.nimgs < 1 or args.seed < 0:
        raise UsageError(f"--nimgs must be >= 1 and --seed >= 0; got {args.nimgs}, {args.seed}")
    if args.output.suffix not in FORMATS:
        raise UsageError(f"--output {str(args.output)!r}: the format is told by the suffix, .npz or .cxi")
    if args.output.suffix == ".cxi" and args.nimgs != 1:
        raise UsageError(f"--output {str(args.output)!r}: a CXI file holds one object's scan; got --nimgs {args.nimgs}")
    if args.output.suffix == ".npz" and (args.propagation == "near-field" or args.no_probe):
        raise UsageError(f"--output {str(args.output)!r}: near-field patterns and --no-probe need .cxi (PtychoPINN's "
                         ".npz holds far-field patterns with their probe)")
    if args.output.is_dir():
        raise UsageError(f"--output {str(args.output)!r} is a directory")
    if args.output.exists() and not args.overwrite:
        raise UsageError(f"--output {str(args.output)!r} exists; pass --overwrite to replace it")


if __name__ == "__main__":
    sys.exit(main())
