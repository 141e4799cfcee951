"""The documentation's examples run, and its API reference covers the API.

Every fenced block of README.md and docs/*.md is checked:

- ``python``: the page's blocks run in order in one namespace, in a temporary directory, with the
  strategy and adapter registries restored afterwards (the examples register their own);
- ``bash``: each command — lines joined at a trailing ``\\``, split at ``&&`` — by what it is:
  ``python3 -m MODULE ARGS`` (also under ``torchrun … -m``) is parsed by MODULE's own ``build_parser()``,
  so every flag and value of the example exists and is accepted (the runs themselves train or sweep for
  minutes); ``spectral-init ARGS`` runs; ``pip install``, ``pytest``, ``export`` and ``mkdocs`` lines are
  set-up that CI runs itself, and are not run here;
- a block after ``<!-- example: skip (why) -->`` is not run, and says why; ``<!-- example: parse (why) -->``
  marks a bash block whose commands are parsed rather than run (the default for ``python3 -m``).

Blocks in other languages (``text``, ``toml``) are shown output and file contents, not code.
"""

from __future__ import annotations

import importlib
import os
import re
import shlex
from pathlib import Path

import pytest

import spectral_init

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"(?:<!-- example: (\w+) \(([^)]*)\) -->\n)?```(\w+)\n(.*?)\n```", re.S)
SETUP_COMMANDS = ("pip", "pytest", "export", "mkdocs")  # run by CI itself, or a shell's state


def blocks(page: Path) -> list[tuple[str | None, str, str]]:
    """(marker, language, code) of each fenced block of ``page``, in order."""
    return [(m.group(1), m.group(3), m.group(4)) for m in FENCE.finditer(page.read_text())]


def commands(code: str) -> list[list[str]]:
    """The shell commands of a bash block: continuation lines joined, comments dropped, split at ``&&``."""
    joined = re.sub(r"\\\n\s*", " ", code)
    out = []
    for line in joined.splitlines():
        words = shlex.split(os.path.expandvars(line), comments=True)
        while words:
            if "&&" in words:
                cut = words.index("&&")
                out.append(words[:cut])
                words = words[cut + 1:]
            else:
                out.append(words)
                words = []
    return out


def check_command(words: list[str]) -> None:
    while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):  # VAR=value prefixes
        words = words[1:]
    program = words[0]
    if program in ("python3", "python") and words[1] == "-m" and words[2] in SETUP_COMMANDS:
        return
    if program in SETUP_COMMANDS:
        return
    if program == "spectral-init":
        from spectral_init.cli import main

        assert main(words[1:]) == 0, words
        return
    if program == "torchrun":
        words = ["python3", *words[words.index("-m"):]]
    assert program in ("python3", "python", "torchrun") and words[1] == "-m", f"no rule for: {shlex.join(words)}"
    module = words[2] if words[2] != "ptycho_torch.simulation" else "ptycho_torch.simulation.__main__"
    importlib.import_module(module).build_parser().parse_args(words[3:])


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_examples_of_a_page_run(page, tmp_path, monkeypatch, isolated_registry) -> None:
    from spectral_init.adapters.registry import ADAPTERS

    monkeypatch.setattr(ADAPTERS, "_items", dict(ADAPTERS._items))
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": f"example_{page.stem}"}
    for marker, language, code in blocks(page):
        if marker == "skip":
            continue
        if language == "python":
            exec(compile(code, str(page), "exec"), namespace)  # noqa: S102 - the page's own example
        elif language == "bash":
            for words in commands(code):
                check_command(words)


def test_every_skipped_example_says_why() -> None:
    for page in PAGES:
        for match in re.finditer(r"<!-- example: (\w+)(.*?)-->", page.read_text()):
            assert match.group(1) in ("skip", "parse"), (page, match.group(0))
            assert re.fullmatch(r" \(\w[^)]+\) ", match.group(2)), (page, match.group(0))


def test_a_command_with_a_flag_that_does_not_exist_fails_the_check() -> None:
    """The check can fail: a renamed flag in an example is caught."""
    check_command(["python3", "-m", "ptycho_torch.train", "--nepochs", "2", "--output-dir", "x"])
    with pytest.raises(SystemExit):
        check_command(["python3", "-m", "ptycho_torch.train", "--n-epochs", "2", "--output-dir", "x"])


def test_the_api_reference_documents_every_public_name() -> None:
    page = (ROOT / "docs" / "reference" / "spectral_init.md").read_text()
    listed = set(re.findall(r"^\s+- (\w+)$", page, re.M))
    public = set(spectral_init.__all__) - {"__version__"}
    # audit is documented from its module (spectral_init.analysis.audit is also the submodule's name)
    assert public - {"audit"} <= listed and "::: spectral_init.analysis.audit.audit" in page


def test_the_readme_is_a_front_page() -> None:
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    for page in re.findall(r"\]\((docs/[\w/.-]+\.md)\)", text):
        assert (ROOT / page).exists(), page
