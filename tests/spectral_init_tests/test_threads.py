"""Thread policy is the commands': the library never changes torch's thread count; a command caps it on a busy
machine and says so once."""

from __future__ import annotations

import pytest
import torch

import spectral_init as si
from spectral_init.strategies.edge_of_chaos import _fractions


@pytest.fixture
def two_threads():
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(previous)


def test_no_library_call_changes_torchs_thread_count(two_threads, monkeypatch) -> None:
    """torch.set_num_threads is process-wide: building every generator (edge-of-chaos draws included),
    initialize_, calibrate_ and audit never call it — thread policy belongs to the commands."""
    from ptycho_torch import GeneratorConfig, build_generator
    from ptycho_torch.generators.config import ARCHITECTURES

    calls = []
    monkeypatch.setattr(torch, "set_num_threads", lambda n: calls.append(n))
    _fractions.cache_clear()
    models = [build_generator(GeneratorConfig(architecture=a, N=16, fno_width=4, fno_modes=4, fno_blocks=2,
                                              spectral_init={"strategy": s, "seed": 1}))
              for a in ARCHITECTURES for s in ("sqrt_in", "edge-of-chaos")]
    for model in models[:2]:
        si.initialize_(model, {"strategy": "edge-of-chaos", "params": {"resolution": 16}})
        si.calibrate_(model, torch.rand(2, 1, 16, 16))
        si.audit(model, ["sqrt_in", "edge-of-chaos"])
    assert calls == [] and torch.get_num_threads() == 2


def test_the_edge_of_chaos_fixed_point_uses_no_torch_fft(monkeypatch) -> None:
    """Its hundreds of small FFTs run in numpy, off torch's thread pool that a busy machine stalls."""
    def no_torch_fft(*args, **kwargs):
        raise AssertionError("the fixed point called torch.fft")

    monkeypatch.setattr(torch.fft, "fft2", no_torch_fft)
    monkeypatch.setattr(torch.fft, "ifft2", no_torch_fft)
    _fractions.cache_clear()
    geometry = si.SpectralGeometry(8, 8, modes=(6, 4))
    assert si.get_strategy("edge-of-chaos").second_moment(geometry=geometry, resolution=16, activation="gelu") > 0


@pytest.mark.parametrize(("requested", "cores", "load", "threads", "noted"), [
    (None, 2, 0.2, 2, False),  # idle: torch's own count
    (None, 2, 1.1, 1, True),  # one core busy: one thread, said so
    (None, 2, 7.0, 1, True),  # all busy: never below one
    (None, 4, 1.4, 2, False),  # 3 cores free, torch's count (2 here) is below it
    (3, 2, 7.0, 3, False),  # asked for: taken as given
    (None, 2, None, 2, False),  # no load average on this OS: torch's own count
])
def test_choose_threads_caps_the_default_at_the_free_cores(two_threads, requested, cores, load, threads,
                                                          noted, monkeypatch) -> None:
    import spectral_init.cli.threads as threads_module

    monkeypatch.setattr(threads_module, "load_average", lambda: load)
    choice = threads_module.choose_threads(requested, cores=cores)
    assert (choice.threads, choice.requested, choice.load_at_start) == (threads, requested, load)
    assert (choice.note is not None) == noted
    if noted:
        assert f"of {cores} cores busy" in choice.note and "--threads" in choice.note


def test_command_threads_sets_notes_records_and_restores(two_threads, monkeypatch) -> None:
    import io

    import spectral_init.cli.threads as threads_module

    monkeypatch.setattr(threads_module, "load_average", lambda: 1.3)
    log = io.StringIO()
    with threads_module.command_threads(None, stream=log) as choice:
        assert torch.get_num_threads() == choice.threads == 1
        record = threads_module.active_thread_record()
        assert log.getvalue() == ""  # said when the command's work begins, not before its input is checked
        threads_module.announce_threads()
        threads_module.announce_threads()
    assert torch.get_num_threads() == 2 and log.getvalue().count("using 1 torch thread instead of 2") == 1
    assert record == {"torch_threads": 1, "requested": None, "load_average_start": 1.3, "load_average_end": 1.3}
    # a command whose work runs in single-threaded worker processes: the same choice, no note
    quiet_log = io.StringIO()
    with threads_module.command_threads(None, stream=quiet_log, quiet=True) as choice:
        assert torch.get_num_threads() == choice.threads == 1
        threads_module.announce_threads()
    assert torch.get_num_threads() == 2 and quiet_log.getvalue() == ""


@pytest.mark.parametrize(("requested", "device", "workers"), [
    (None, "cpu", 4),  # one per core, whatever the load (it caps threads, not independent processes)
    (1, "cpu", 1),  # --threads 1: the user allowed one core
    (3, "cpu", 3),
    (None, "cuda", 1),  # one process drives the device
])
def test_worker_processes_default_to_the_cores_or_the_threads_asked_for(requested, device, workers,
                                                                        monkeypatch) -> None:
    import os

    from benchmarks.machinery.workers import default_workers

    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    assert default_workers(requested, device) == workers


@pytest.mark.parametrize("extra, noted", [(["--N", "33"], False), ([], True)])
def test_training_says_the_thread_note_once_and_only_when_it_trains(two_threads, tmp_path, monkeypatch, capsys, extra,
                                                                    noted) -> None:
    """On a busy machine: refused input says nothing of threads; a run says it once, before it trains."""
    import spectral_init.cli.threads as threads_module
    from ptycho_torch.train import main

    monkeypatch.setattr(threads_module, "load_average", lambda: 64.0)
    argv = ["--N", "16", "--fno-width", "4", "--fno-modes", "2", "--fno-blocks", "1", "--fno-cnn-blocks", "0",
            "--nepochs", "1", "--device", "cpu", "--no-progress", "--no-figure", "--output-dir", str(tmp_path / "r")]
    code = main([*argv, *extra])
    err = capsys.readouterr().err
    assert code == (0 if noted else 2)
    assert err.count("cores busy") == (1 if noted else 0), err


def test_a_refused_benchmark_says_nothing_of_threads(two_threads, tmp_path, monkeypatch, capsys) -> None:
    import spectral_init.cli.threads as threads_module
    from benchmarks import signal_propagation
    from benchmarks.machinery.common import run_cli

    monkeypatch.setattr(threads_module, "load_average", lambda: 64.0)
    (tmp_path / "signal_propagation.json").write_text("{}")  # an earlier result: refused before any work
    assert run_cli(lambda _: signal_propagation.main(["--output-dir", str(tmp_path)])) == 2
    err = capsys.readouterr().err
    assert "already holds a signal_propagation result" in err and "cores busy" not in err
