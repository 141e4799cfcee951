"""The library's many-tiny-op computations run on one torch thread and leave the caller's setting alone."""

from __future__ import annotations

import pytest
import torch

import spectral_init as si
from spectral_init.edge_of_chaos import _fractions
from spectral_init.threads import one_intra_op_thread


@pytest.fixture
def two_threads():
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(previous)


def test_one_thread_inside_and_restored_after_even_on_error(two_threads) -> None:
    with one_intra_op_thread():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2
    with pytest.raises(RuntimeError), one_intra_op_thread():
        raise RuntimeError("boom")
    assert torch.get_num_threads() == 2


def test_draws_run_on_one_thread_and_give_the_same_bits(two_threads, isolated_registry) -> None:
    seen = []

    @si.register_strategy("records-threads", second_moment=lambda i, o, g: 1 / i, description="test")
    def fill(weight, *, in_channels, out_channels, gain, generator):
        seen.append(torch.get_num_threads())
        si.complex_normal_(weight, 1 / in_channels, generator)

    weight = torch.empty(8, 8, 6, 4, dtype=torch.cfloat)
    si.init_spectral_weight_(weight, in_channels=8, out_channels=8, spectral_init={"strategy": "records-threads",
                                                                                    "seed": 3})
    assert seen == [1] and torch.get_num_threads() == 2
    reference = torch.empty_like(weight)
    with one_intra_op_thread():  # the same draw made on one thread outside the library
        si.complex_normal_(reference, 1 / 8, torch.Generator().manual_seed(3))
    assert torch.equal(weight, reference)


def test_the_edge_of_chaos_fixed_point_runs_on_one_thread(two_threads, monkeypatch) -> None:
    seen = []
    real_fft2 = torch.fft.fft2
    monkeypatch.setattr(
        torch.fft, "fft2", lambda *a, **k: (seen.append(torch.get_num_threads()), real_fft2(*a, **k))[1]
    )
    _fractions.cache_clear()
    geometry = si.SpectralGeometry(8, 8, modes=(6, 4))
    si.get_strategy("edge-of-chaos").second_moment(geometry=geometry, resolution=16, activation="relu")
    assert seen and set(seen) == {1} and torch.get_num_threads() == 2


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
    import spectral_init.threads as threads_module

    monkeypatch.setattr(threads_module, "load_average", lambda: load)
    choice = threads_module.choose_threads(requested, cores=cores)
    assert (choice.threads, choice.requested, choice.load_at_start) == (threads, requested, load)
    assert (choice.note is not None) == noted
    if noted:
        assert f"of {cores} cores busy" in choice.note and "--threads" in choice.note


def test_command_threads_sets_notes_records_and_restores(two_threads, monkeypatch) -> None:
    import io

    import spectral_init.threads as threads_module

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

    from benchmarks.workers import default_workers

    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    assert default_workers(requested, device) == workers


@pytest.mark.parametrize("extra, noted", [(["--N", "33"], False), ([], True)])
def test_training_says_the_thread_note_once_and_only_when_it_trains(two_threads, tmp_path, monkeypatch, capsys, extra,
                                                                    noted) -> None:
    """On a busy machine: refused input says nothing of threads; a run says it once, before it trains."""
    import spectral_init.threads as threads_module
    from ptycho_torch.train import main

    monkeypatch.setattr(threads_module, "load_average", lambda: 64.0)
    argv = ["--N", "16", "--fno-width", "4", "--fno-modes", "2", "--fno-blocks", "1", "--fno-cnn-blocks", "0",
            "--nepochs", "1", "--device", "cpu", "--no-progress", "--no-figure", "--output-dir", str(tmp_path / "r")]
    code = main([*argv, *extra])
    err = capsys.readouterr().err
    assert code == (0 if noted else 2)
    assert err.count("cores busy") == (1 if noted else 0), err


def test_a_refused_benchmark_says_nothing_of_threads(two_threads, tmp_path, monkeypatch, capsys) -> None:
    import spectral_init.threads as threads_module
    from benchmarks import signal_propagation
    from benchmarks.common import run_cli

    monkeypatch.setattr(threads_module, "load_average", lambda: 64.0)
    (tmp_path / "signal_propagation.json").write_text("{}")  # an earlier result: refused before any work
    assert run_cli(lambda _: signal_propagation.main(["--output-dir", str(tmp_path)])) == 2
    err = capsys.readouterr().err
    assert "already holds a signal_propagation result" in err and "cores busy" not in err
