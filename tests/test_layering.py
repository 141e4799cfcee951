"""The libraries hold the library: no module of ``spectral_init`` or of ``ptycho_torch``'s library imports the
command-line plumbing in ``spectral_init.cli`` (thread policy, usage errors, output locks, progress)."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import ptycho_torch
import spectral_init

# the command-line entry points, and what only they use; PLUMBING and everything below it is command-line too
PLUMBING = "spectral_init.cli"
COMMANDS = {"ptycho_torch.train", "ptycho_torch.evaluation.figures", "ptycho_torch.simulation.__main__",
            "ptycho_torch.predict"}


def is_plumbing(name: str) -> bool:
    return name == PLUMBING or name.startswith(PLUMBING + ".")


def library_modules() -> list[str]:
    names = []
    for package in (spectral_init, ptycho_torch):
        names.append(package.__name__)
        names += [m.name for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".")]
    return [n for n in names if n not in COMMANDS and not is_plumbing(n)]


def test_no_library_module_imports_the_command_line_plumbing() -> None:
    modules = library_modules()
    assert {"spectral_init.registry", "ptycho_torch.training", "ptycho_torch.generators.ffno"} <= set(modules)
    script = ("import importlib, sys\n"
              f"for name in {modules!r}:\n"
              "    importlib.import_module(name)\n"
              f"print(sorted(m for m in sys.modules if m == {PLUMBING!r} or m.startswith({PLUMBING + '.'!r})))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    # and the check can see such an import: the commands do pull it in
    probe = f"import sys, ptycho_torch.train; print({PLUMBING + '.usage'!r} in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "True"
