"""The end of a training run: the checkpoint writer leaves no thread behind and keeps its errors, a
snapshot keeps the state_dict's metadata, a bug inside training is a bug (not 'bad input'), and a
signal while a run ends does not claim that nothing was written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch
import torch.nn as nn

import ptycho_torch.train as train_module
from ptycho_torch.train import main
from ptycho_torch.training.checkpoint import CheckpointWriter, _copy_tensors
from spectral_init.cli.usage import EXIT_INTERRUPTED, stop_signals_ignored

FLAGS = ["--threads", "1", "--N", "32", "--fno-width", "8", "--fno-modes", "4", "--fno-blocks", "2",
         "--fno-cnn-blocks", "1", "--nimgs-train", "1", "--nimgs-test", "1", "--device", "cpu", "--no-progress",
         "--no-figure", "--nepochs", "1"]


def writer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("checkpoint-writer")]


def test_a_snapshot_keeps_the_state_dicts_metadata() -> None:
    """``_metadata`` carries each module's version, which ``load_state_dict`` hands to modules that
    convert older layouts (BatchNorm's num_batches_tracked, say)."""
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    state = model.state_dict()
    copy = _copy_tensors({"model_state": state})["model_state"]
    assert copy._metadata == state._metadata and copy._metadata[""]["version"] is not None
    assert all(torch.equal(copy[k], state[k]) and copy[k] is not state[k] for k in state)


def test_the_writer_thread_is_joined_and_not_a_daemon(tmp_path, monkeypatch) -> None:
    release = threading.Event()
    real_write = CheckpointWriter._write

    def slow_write(self, checkpoint):
        release.wait(10)
        real_write(self, checkpoint)

    monkeypatch.setattr(CheckpointWriter, "_write", slow_write)
    writer = CheckpointWriter(lambda c: torch.save(c, tmp_path / "checkpoint.pt"))
    writer.submit({"epoch": 1, "weights": torch.ones(3)})
    busy = writer_threads()
    assert busy and not any(t.daemon for t in busy)  # the interpreter waits for it at exit, never kills it
    release.set()
    writer.close()
    assert writer.written_epoch == 1 and torch.load(tmp_path / "checkpoint.pt")["epoch"] == 1
    assert not any(t.is_alive() for t in busy)


def test_a_failed_write_is_raised_by_the_next_submit_or_close(tmp_path) -> None:
    writer = CheckpointWriter(lambda c: torch.save(c, tmp_path / "missing-dir" / "checkpoint.pt"))
    writer.submit({"epoch": 1})
    with pytest.raises(RuntimeError, match="missing-dir does not exist"):  # torch.save's error, re-raised
        writer.close()
    assert writer.written_epoch is None


def test_a_bug_inside_training_is_not_reported_as_bad_input(tmp_path, monkeypatch) -> None:
    """Bad input is found before any work (exit 2); a ValueError from inside training is a bug: it
    propagates with its traceback."""
    def broken(*args, **kwargs):
        raise ValueError("a shape bug deep in a layer")

    monkeypatch.setattr(train_module, "train", broken)
    with pytest.raises(ValueError, match="a shape bug"):
        main([*FLAGS, "--output-dir", str(tmp_path / "run")])


def test_a_signal_while_the_run_ends_does_not_claim_nothing_was_written(tmp_path, monkeypatch, capsys) -> None:
    def interrupted_while_writing(*args, **kwargs):
        raise KeyboardInterrupt  # as a SIGTERM arriving while rank 0 writes metrics.json

    monkeypatch.setattr(train_module, "write_outputs", interrupted_while_writing)
    out = tmp_path / "run"
    assert main([*FLAGS, "--output-dir", str(out)]) == EXIT_INTERRUPTED
    err = capsys.readouterr().err
    assert "nothing was written" not in err
    assert f"interrupted while the run was ending; what it wrote is in {str(out)!r}" in err


def test_stop_signals_are_ignored_in_the_block_and_restored_after() -> None:
    import signal

    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with stop_signals_ignored():
        assert signal.getsignal(signal.SIGINT) == signal.getsignal(signal.SIGTERM) == signal.SIG_IGN
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_the_checkpoint_is_built_on_rank_0_only_and_touches_no_gpu(monkeypatch) -> None:
    """Under torchrun only rank 0 writes the checkpoint, so only it builds one; a CPU run's checkpoint
    asks no GPU for its RNG state (on a GPU host that would create a context on every GPU)."""
    from ptycho_torch.simulation import SimulationConfig
    from ptycho_torch.training import DistributedContext, TrainingConfig, train

    def no_gpu(*args, **kwargs):
        raise AssertionError("a CPU run asked a GPU for its RNG state")

    monkeypatch.setattr(torch.cuda, "get_rng_state_all", no_gpu)
    monkeypatch.setattr(torch.cuda, "get_rng_state", no_gpu)
    config = TrainingConfig(model=dict(fno_width=4, fno_modes=2, fno_blocks=1, fno_cnn_blocks=0),
                            data=SimulationConfig(N=16), nepochs=1, device="cpu")
    class AnotherRank(DistributedContext):  # rank 0's shard (a world of one: no process group), not rank 0
        is_main = property(lambda self: False)

    built: list[dict] = []
    train(config, AnotherRank(), on_epoch=built.append)
    assert built == []
    train(config, DistributedContext(), on_epoch=built.append)
    assert len(built) == 1 and built[0]["cuda_rng_state"] == []


EXIT_PROBE = """
import atexit, os, sys

def native_threads():
    names = []
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/comm") as f:
                names.append(f.read().strip())
        except OSError:
            pass  # a thread that ended meanwhile
    print(f"rank {os.environ['RANK']} threads at exit: {sorted(names)}", file=sys.stderr)

atexit.register(native_threads)  # runs after main() has left the group, before the interpreter shuts down
from ptycho_torch.train import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.heavy
@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="reads the threads from /proc")
def test_no_gloo_thread_outlives_the_process_group(tmp_path) -> None:
    """The group's worker threads are gone once a torchrun rank has left the group: none is left for
    the interpreter's shutdown to destroy (which aborted a rank now and then)."""
    probe = tmp_path / "probe.py"
    probe.write_text(EXIT_PROBE)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(probe), *FLAGS, "--batch-size", "2", "--nimgs-train", "2",
                           "--output-dir", str(tmp_path / "run")], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    found = re.findall(r"rank (\d) threads at exit: (\[[^]]*\])", done.stderr)  # the ranks' lines may interleave
    assert sorted(rank for rank, _ in found) == ["0", "1"], done.stderr[-3000:]
    assert not [threads for _, threads in found if "gloo" in threads], found
