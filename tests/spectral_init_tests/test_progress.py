"""Progress on stderr: tqdm's bar on a terminal, one plain final line anywhere else."""

from __future__ import annotations

import io
import re

from test_training import TINY_FLAGS

from ptycho_torch.train import main
from spectral_init.cli.progress import Progress


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_gets_one_final_line_and_no_carriage_return() -> None:
    log = io.StringIO()
    progress = Progress(3, "work", stream=log)
    progress.step("a")
    progress.step("b")
    assert log.getvalue() == ""  # nothing while the work runs
    progress.step("c")
    text = log.getvalue()
    assert "\r" not in text and text.count("\n") == 1 and text.endswith("\n")
    assert text.startswith("work: 100%") and "3/3" in text and "it/s" in text
    progress.close()  # a second close adds nothing
    assert log.getvalue() == text


def test_a_terminal_gets_tqdms_bar_with_rate_and_the_note() -> None:
    terminal = FakeTerminal()
    progress = Progress(2, "work", stream=terminal)
    progress.step("first")
    progress.step("second")
    text = terminal.getvalue()
    assert "\r" in text and "2/2" in text and "it/s" in text and "second" in text
    assert text.endswith("\n")


def test_disabled_prints_nothing_anywhere() -> None:
    for stream in (io.StringIO(), FakeTerminal()):
        progress = Progress(2, "work", enabled=False, stream=stream)
        progress.step()
        progress.step()
        progress.close()
        assert stream.getvalue() == ""


def test_a_resumed_count_starts_where_it_left_off() -> None:
    log = io.StringIO()
    progress = Progress(10, "train", initial=8, stream=log)
    progress.step()
    assert log.getvalue() == ""
    progress.step()
    assert "10/10" in log.getvalue()


def test_an_unfinished_count_ends_with_its_state_on_close() -> None:
    log = io.StringIO()
    progress = Progress(10, "work", stream=log)
    progress.step()
    progress.close()
    assert "1/10" in log.getvalue() and "\r" not in log.getvalue()


def test_a_training_log_gets_one_plain_line_per_epoch(tmp_path, capsys) -> None:
    """Not a terminal: a line per epoch as it ends (train loss, seconds), no bar and no carriage return."""
    flags = [f for f in TINY_FLAGS if f != "--no-progress"]
    assert main([*flags, "--nepochs", "2", "--output-dir", str(tmp_path / "run")]) == 0
    out, err = capsys.readouterr()
    assert "\r" not in err and "train:" not in err
    # the default loss is stitched: the line says so
    lines = re.findall(r"^epoch (\d)/2: train loss \(stitched\) [0-9.e-]+, [0-9.]+ s$", err, re.MULTILINE)
    assert lines == ["1", "2"], err
    # once, not again on stdout at the end: `train … > log 2>&1` reads one line per epoch
    assert not re.search(r"^epoch \d/2", out, re.MULTILINE), out
