"""MkDocs hooks: the pages' generated parts, so that they come from the code and cannot drift.

- ``<!-- generated: strategies -->``: the strategy table, from the registry (``spectral-init list``);
- ``<!-- generated: adapters -->``: the layer-adapter table, from the adapter registry;
- ``<!-- generated: cli -->``: every command's ``--help``, from its own parser;
- ``<!-- generated: readme -->`` (the home page) and ``<!-- generated: changelog -->``: README.md and
  CHANGELOG.md, with their links rewritten for the site;
- the committed benchmark figures (``benchmarks/results/**/*.png``) join the site, so pages show them
  from where the benchmarks wrote them.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import re
import sys
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent.parent
MARKER = re.compile(r"<!-- generated: (\w+) -->")
COMMANDS = {  # the command as a user types it: the module whose build_parser() defines it
    "spectral-init": "spectral_init.cli",
    "python -m ptycho_torch.train": "ptycho_torch.train",
    "python -m ptycho_torch.predict": "ptycho_torch.predict",
    "python -m ptycho_torch.simulation": "ptycho_torch.simulation.__main__",
}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def strategies() -> str:
    from spectral_init import available_strategies, get_strategy

    rows = ["| name | E\\|w\\|² | distribution | what it is |", "|---|---|---|---|"]
    for name in available_strategies():
        s = get_strategy(name)
        rows.append(f"| `{s.name}` | {_cell(s.formula)} | {_cell(s.distribution)} | {_cell(s.description)} |")
    return "\n".join(rows)


def adapters() -> str:
    from spectral_init.adapters import ADAPTERS

    rows = ["| adapter (in the order tried) | package | weight layout | what it recognizes |", "|---|---|---|---|"]
    for a in ADAPTERS.items():
        rows.append(f"| `{a.name}` | {_cell(a.package)} | {_cell(a.layout)} | {_cell(a.description)} |")
    return "\n".join(rows)


def _help(module: str, prog: str) -> str:
    parser = importlib.import_module(module).build_parser()
    parser.prog = prog
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        parser.print_help()
    return out.getvalue()


def cli() -> str:
    if str(ROOT) not in sys.path:  # benchmarks/ is the repository's, not an installed package (MkDocs resets
        sys.path.insert(0, str(ROOT))  # sys.path after loading the hooks, so this is done here)
    from benchmarks.replot import benchmark_modules

    os.environ["COLUMNS"] = "110"  # argparse wraps to it
    commands = dict(COMMANDS)
    for module in benchmark_modules():
        commands[f"python -m {module.__name__}"] = module.__name__
    commands["python -m benchmarks.replot"] = "benchmarks.replot"
    parts = []
    for prog, module in commands.items():
        parts += [f"## `{prog}`", "", "```text", _help(module, prog).rstrip(), "```", ""]
    return "\n".join(parts)


def _site_links(text: str) -> str:
    """README/CHANGELOG links as the site has them: docs/X.md → X.md, CHANGELOG.md → changelog.md."""
    text = re.sub(r"\]\(docs/", "](", text)
    return text.replace("](CHANGELOG.md)", "](changelog.md)")


def readme() -> str:
    return _site_links((ROOT / "README.md").read_text())


def changelog() -> str:
    return _site_links((ROOT / "CHANGELOG.md").read_text())


GENERATORS = {"strategies": strategies, "adapters": adapters, "cli": cli, "readme": readme, "changelog": changelog}


def on_page_markdown(markdown: str, **_: Any) -> str:
    return MARKER.sub(lambda m: GENERATORS[m.group(1)](), markdown)


def on_files(files: Files, config: Any) -> Files:
    for png in sorted((ROOT / "benchmarks" / "results").rglob("*.png")):
        files.append(File(str(png.relative_to(ROOT)), str(ROOT), config["site_dir"], config["use_directory_urls"]))
    return files
