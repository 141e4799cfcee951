"""No run lost or mixed up: a run stopped by Ctrl-C or killed with SIGKILL resumes to the weights of an
uninterrupted one, alone and under torchrun; a diverging run stops with its last good checkpoint; a bad
checkpoint is refused and kept; two runs never share an output directory."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from ptycho_torch.train import main

pytestmark = pytest.mark.heavy
# the tests that share a reference run (a module fixture) share a worker, so that it is made once
SINGLE_PROCESS_REFERENCE = pytest.mark.xdist_group("resume-single-process")
TORCHRUN_REFERENCE = pytest.mark.xdist_group("resume-torchrun")

REPO = Path(__file__).resolve().parents[2]
# Long enough per epoch that a kill lands between checkpoints, short enough for the suite. One torch
# thread everywhere (``--threads 1`` in this process, OMP_NUM_THREADS=1 in the subprocesses): the same
# reduction order, so runs in either place end on the same bits.
RUN_FLAGS = ["--threads", "1", "--N", "32", "--fno-width", "8", "--fno-modes", "4", "--fno-blocks", "2",
             "--fno-cnn-blocks", "1", "--batch-size", "4", "--nimgs-train", "2", "--nimgs-test", "1", "--device", "cpu",
             "--spectral-backend", "fallback", "--no-progress", "--no-figure", "--nepochs", "6"]
# The interrupted run: more epochs than the others, so that a signal sent at an epoch's end lands
# well before the run's; with progress on, its epoch lines on stderr say when an epoch ends.
EPOCHS = 8
LONG_FLAGS = [*(f for f in RUN_FLAGS if f != "--no-progress"), "--nepochs", str(EPOCHS)]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


def final_state(out: Path) -> dict[str, torch.Tensor]:
    return torch.load(out / "checkpoint.pt", weights_only=True)["model_state"]


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"weights differ: {different[:5]}"


def epochs_done(out: Path) -> int:
    try:
        return torch.load(out / "checkpoint.pt", weights_only=True)["epoch"]
    except Exception:  # noqa: BLE001 - absent, or being replaced at this instant
        return 0


def wait_for_epoch(out: Path, proc: subprocess.Popen, epoch: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while epochs_done(out) < epoch:
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.02)


def read_until_epoch_line(proc: subprocess.Popen, epoch: int) -> None:
    """Read the run's stderr up to its line for ``epoch`` (printed as the epoch ends)."""
    for line in proc.stderr:
        if line.startswith(f"epoch {epoch}/"):
            return
    raise AssertionError(f"the run ended (status {proc.wait()}) before epoch {epoch}")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict[str, torch.Tensor]:
    """In this process (a subprocess would add seconds of imports): the killed runs must end here too."""
    out = tmp_path_factory.mktemp("whole")
    assert main([*LONG_FLAGS, "--output-dir", str(out)]) == 0
    return final_state(out)


@SINGLE_PROCESS_REFERENCE
def test_interrupted_then_killed_run_resumes_to_the_uninterrupted_weights(tmp_path, uninterrupted, capsys) -> None:
    """Ctrl-C: exit 130, one line, the pending checkpoint finished; then SIGKILL of the resumed run: the
    atomic checkpoint survives; resumed again (in this process), the run ends on the uninterrupted
    run's weights."""
    out = tmp_path / "stopped"
    argv = [*LONG_FLAGS, "--output-dir", str(out), "--resume"]
    cmd = [sys.executable, "-m", "ptycho_torch.train", *argv]
    # Ctrl-C as at a terminal: a test runner started in the background may ignore SIGINT, and its children
    # inherit that (Python then installs no KeyboardInterrupt handler), so the child's is reset first
    proc = subprocess.Popen(cmd, cwd=REPO, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    read_until_epoch_line(proc, 1)  # its checkpoint may still be being written: the interrupt finishes it
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    interrupted_at = epochs_done(out)
    assert proc.returncode == 130 and "Traceback" not in err, err[-2000:]
    assert f"rerun with --resume to continue from the checkpoint of epoch {interrupted_at}" in err
    assert 1 <= interrupted_at < EPOCHS and not (out / "metrics.json").exists()

    proc = subprocess.Popen(cmd, cwd=REPO, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    # the line of epoch e + 2 comes after the checkpoint of e + 1 is on disk (a write waits for the one before)
    read_until_epoch_line(proc, interrupted_at + 2)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=120)
    killed_at = epochs_done(out)
    assert interrupted_at < killed_at < EPOCHS and not (out / "metrics.json").exists()

    capsys.readouterr()
    assert main(argv) == 0
    assert f"resuming from {out / 'checkpoint.pt'} after epoch {killed_at}/{EPOCHS}" in capsys.readouterr().out
    assert_same_weights(final_state(out), uninterrupted)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["resumed_from_epoch"] == killed_at and len(metrics["epoch_losses"]) == EPOCHS


def child_pids(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                children.append(int(entry.name))
    return children


TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
            "--max-restarts", "1", "-m", "ptycho_torch.train", *RUN_FLAGS, "--batch-size", "2"]


@pytest.fixture(scope="module")
def torchrun_whole(tmp_path_factory) -> Path:
    """An uninterrupted run of two gloo workers: the reference for the elastic restart, and the check
    that replicas stay identical (one torchrun shared, as each costs seconds of process start-up)."""
    whole = tmp_path_factory.mktemp("torchrun-whole")
    done = subprocess.run([*TORCHRUN, "--output-dir", str(whole)], cwd=REPO, env=ENV, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return whole


@TORCHRUN_REFERENCE
def test_torchrun_two_cpu_processes_keep_identical_replicas(torchrun_whole) -> None:
    metrics = json.loads((torchrun_whole / "metrics.json").read_text())
    ddp = metrics["ddp"]
    assert ddp["world_size"] == 2 and ddp["backend"] == "gloo"
    # rank 0's share of each epoch's steps: with the stitched loss its tiles, and so its patterns, change by epoch
    from ptycho_torch.training import DistributedContext, TrainingConfig, make_datasets, step_batches

    config = TrainingConfig.model_validate(metrics["config"])
    train_set = make_datasets(config)[0]
    expected = [sum(len(b.indices) for b in step_batches(train_set, config, epoch, DistributedContext(0, 2)))
                for epoch in range(config.nepochs)]
    assert ddp["samples_per_rank_per_epoch"] == expected and len(set(expected)) > 1
    assert ddp["replica_max_abs_diff"] == 0.0


@TORCHRUN_REFERENCE
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the workers through /proc")
def test_torchrun_survives_a_killed_worker(tmp_path, torchrun_whole) -> None:
    """Two gloo workers, one SIGKILLed after the first checkpoint: the elastic restart resumes from it."""
    out = tmp_path / "elastic"
    cmd = [*TORCHRUN, "--output-dir", str(out), "--resume"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_epoch(out, proc, 1)
    workers = child_pids(proc.pid)
    assert len(workers) == 2, workers
    os.kill(max(workers), signal.SIGKILL)
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["resumed_from_epoch"] is not None and metrics["resumed_from_epoch"] >= 1
    assert metrics["ddp"]["replica_max_abs_diff"] == 0.0
    # batch 2 on each of two ranks is the single-process run's batch 4, but DDP averages the two
    # halves' gradients: compare with an uninterrupted torchrun, not with the single process
    assert_same_weights(final_state(out), final_state(torchrun_whole))


def test_divergence_stops_with_the_last_good_checkpoint(tmp_path, capsys) -> None:
    out = tmp_path / "diverged"
    assert main([*RUN_FLAGS, "--nepochs", "3", "--lr", "1e30", "--output-dir", str(out)]) == 3
    err = capsys.readouterr().err
    assert "training diverged at epoch" in err and ("non-finite" in err or "the loss is" in err)
    assert not (out / "metrics.json").exists()
    checkpoint = out / "checkpoint.pt"
    if checkpoint.exists():  # only epochs that ended finite were saved
        state = torch.load(checkpoint, weights_only=True)
        assert all(torch.isfinite(t).all() for t in state["model_state"].values() if t.is_floating_point())


def test_a_corrupt_checkpoint_is_refused_and_left_in_place(tmp_path, capsys) -> None:
    out = tmp_path / "corrupt"
    out.mkdir()
    (out / "checkpoint.pt").write_bytes(b"PK\x03\x04 truncated")
    assert main([*RUN_FLAGS, "--output-dir", str(out), "--resume"]) == 2
    assert f"cannot resume from {str(out / 'checkpoint.pt')!r}" in capsys.readouterr().err
    assert (out / "checkpoint.pt").read_bytes() == b"PK\x03\x04 truncated"


def test_resume_refuses_another_config_and_names_the_fields(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    assert main([*RUN_FLAGS, "--nepochs", "1", "--output-dir", str(out)]) == 0
    before = (out / "checkpoint.pt").read_bytes()
    capsys.readouterr()
    assert main([*RUN_FLAGS, "--nepochs", "2", "--fno-width", "16", "--spectral-init", "legacy",
                 "--output-dir", str(out), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "model.fno_width (checkpoint 8, now 16)" in err and "model.spectral_init" in err
    assert "nepochs" not in err.split("configured differently")[1]  # more epochs may continue a run
    assert (out / "checkpoint.pt").read_bytes() == before
    # more epochs with the same config continue it
    assert main([*RUN_FLAGS, "--nepochs", "2", "--output-dir", str(out), "--resume"]) == 0
    assert json.loads((out / "metrics.json").read_text())["resumed_from_epoch"] == 1


def test_a_learning_rate_changed_on_resume_is_the_one_that_trains(tmp_path, capsys) -> None:
    """--lr on a resume with --allow-config-change: Adam's saved state must not bring back the old rate
    (its load_state_dict restores every group's hyperparameters)."""
    out = tmp_path / "run"
    assert main([*RUN_FLAGS, "--nepochs", "1", "--lr", "0.001", "--output-dir", str(out)]) == 0
    capsys.readouterr()
    assert main([*RUN_FLAGS, "--nepochs", "2", "--lr", "0.004", "--output-dir", str(out), "--resume",
                 "--allow-config-change"]) == 0
    checkpoint = torch.load(out / "checkpoint.pt", weights_only=True)
    assert [g["lr"] for g in checkpoint["optimizer_state"]["param_groups"]] == [0.004]
    assert checkpoint["epoch"] == 2


def test_a_fresh_run_never_overwrites_an_earlier_one(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    assert main([*RUN_FLAGS, "--nepochs", "1", "--output-dir", str(out)]) == 0
    before = {name: (out / name).read_bytes() for name in ("metrics.json", "checkpoint.pt")}
    assert main([*RUN_FLAGS, "--nepochs", "1", "--output-dir", str(out)]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert {name: (out / name).read_bytes() for name in before} == before
    # --overwrite moves the earlier run aside, whole, before the new run writes anything
    assert main([*RUN_FLAGS, "--nepochs", "1", "--seed", "1", "--output-dir", str(out), "--overwrite"]) == 0
    (aside,) = out.glob("replaced-*")
    assert f"moved the earlier run's files to {aside}" in capsys.readouterr().out
    assert {name: (aside / name).read_bytes() for name in before} == before
    assert (out / "checkpoint.pt").read_bytes() != before["checkpoint.pt"]
    assert json.loads((out / "metrics.json").read_text())["config"]["seed"] == 1


def test_resuming_a_finished_run_keeps_its_results_and_says_it_was_complete(tmp_path, capsys) -> None:
    # before: a second pass of the test evaluation rewrote metrics.json with train_seconds 1.6e-6
    out = tmp_path / "run"
    assert main([*RUN_FLAGS, "--nepochs", "1", "--output-dir", str(out)]) == 0
    before = {name: (out / name).read_bytes() for name in ("metrics.json", "checkpoint.pt")}
    capsys.readouterr()
    assert main([*RUN_FLAGS, "--nepochs", "1", "--output-dir", str(out), "--resume"]) == 0
    assert "is complete (1 of 1 epochs); its metrics.json and checkpoint are kept" in capsys.readouterr().out
    assert {name: (out / name).read_bytes() for name in before} == before
    assert not list(out.glob("replaced-*"))


def test_resume_without_a_checkpoint_refuses_to_mix_with_earlier_run_files(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "metrics.json").write_text('{"lr": 0.001}')
    assert main([*RUN_FLAGS, "--nepochs", "1", "--output-dir", str(out), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "holds metrics.json of an earlier run but no checkpoint.pt" in err and "--overwrite" in err
    assert (out / "metrics.json").read_text() == '{"lr": 0.001}' and not (out / "checkpoint.pt").exists()
    # an empty directory (or none) is a fresh start for --resume
    assert main([*RUN_FLAGS, "--nepochs", "1", "--output-dir", str(tmp_path / "new"), "--resume"]) == 0


HOLD_LOCK = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(fd, f"{os.getpid()}\\n".encode())
print("holding", flush=True)
sys.stdin.read()
"""


def test_a_second_run_into_a_directory_in_use_is_refused_with_the_holders_pid(tmp_path, capsys) -> None:
    out = tmp_path / "busy"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(out / ".lock")], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "holding\n"
        assert main([*RUN_FLAGS, "--nepochs", "1", "--output-dir", str(out)]) == 2
        assert f"is in use by another run (pid {holder.pid})" in capsys.readouterr().err
        assert sorted(p.name for p in out.iterdir()) == [".lock"]
    finally:
        holder.communicate("")
    assert main([*RUN_FLAGS, "--nepochs", "1", "--output-dir", str(out)]) == 0  # the kernel dropped the lock


WITHOUT_FCNTL = """
import os, sys, types
import torch, spectral_init.cli  # noqa: F401  (what imports the real platform's modules first)
sys.modules["fcntl"] = None  # as on Windows
held = []
msvcrt = types.ModuleType("msvcrt")
msvcrt.LK_NBLCK = 2
def locking(fd, mode, size):
    where = os.lseek(fd, 0, os.SEEK_CUR)
    if held:
        raise OSError(36, "locked")
    held.append(where)
msvcrt.locking = locking
sys.modules["msvcrt"] = msvcrt
real, os.name = os.name, "nt"
import spectral_init.cli.file_lock  # the Windows branch
os.name = real
import ptycho_torch.predict, ptycho_torch.train  # noqa: F401  importable without fcntl
from pathlib import Path
from spectral_init.cli import output_files
out = Path(sys.argv[1])
assert output_files.claim_output_directory(out)
assert held == [1 << 20] and (out / ".lock").read_text() == f"{os.getpid()}\\n"  # the pid stays readable
output_files._CLAIMED.clear()  # as another process would find it
try:
    output_files.claim_output_directory(out)
except ValueError as exc:
    print(exc)
"""


def test_the_output_lock_needs_no_fcntl_and_still_names_the_holder(tmp_path) -> None:
    # before: fcntl imported at module level made ptycho_torch.train and predict unimportable on Windows
    done = subprocess.run([sys.executable, "-c", WITHOUT_FCNTL, str(tmp_path / "run")], cwd=REPO, env=ENV,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "is in use by another run (pid " in done.stdout


@pytest.mark.parametrize(("value", "message"), [
    ("", "argument --output-dir: is empty"),
    ("x" * 300, "has a name of 300 bytes"),
    ("/".join(["y" * 200] * 30), "paths may have at most 4095"),
])
def test_empty_and_over_long_output_paths_are_refused(value, message, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main([*RUN_FLAGS, "--output-dir", value])
    last_line = capsys.readouterr().err.splitlines()[-1]
    assert exc.value.code == 2 and message in last_line and len(last_line) < 300, last_line


@pytest.mark.parametrize("rank", [0, 1])
def test_every_rank_refuses_bad_input_before_the_group_forms(rank, monkeypatch, capsys) -> None:
    """Each rank of a torchrun job runs the checks before it joins the process group, so no rank waits
    there for one that has left: with the group's formation made to fail, bad input still exits 2."""
    import ptycho_torch.training.distributed as distributed

    def must_not_form(*_args) -> None:
        raise AssertionError("the process group formed before the input was checked")

    monkeypatch.setattr(distributed, "init_process_group", must_not_form)
    for name, value in {"RANK": rank, "LOCAL_RANK": rank, "WORLD_SIZE": 2, "MASTER_ADDR": "127.0.0.1",
                        "MASTER_PORT": 1}.items():
        monkeypatch.setenv(name, str(value))
    assert main([*RUN_FLAGS, "--output-dir", "/proc/nope/out"]) == 2
    assert "--output-dir '/proc/nope/out' cannot be created or written" in capsys.readouterr().err


def test_a_checkpoint_from_before_the_input_layouts_resumes_as_the_centred_run_it_was(tmp_path, capsys) -> None:
    """A checkpoint written before ``input_layout``, ``probe_defocus`` and ``loss_on`` existed fed the
    generator the measured (centred) patterns and compared each patch alone: it resumes with
    --input-layout centred --loss-on patches, and the defaults are refused by name."""
    out = tmp_path / "run"
    then = ["--input-layout", "centred", "--loss-on", "patches"]
    assert main([*RUN_FLAGS, "--nepochs", "1", *then, "--output-dir", str(out)]) == 0
    checkpoint = torch.load(out / "checkpoint.pt", weights_only=True)
    del checkpoint["config"]["model"]["input_layout"], checkpoint["config"]["data"]["probe_defocus"]
    del checkpoint["config"]["loss_on"]
    torch.save(checkpoint, out / "checkpoint.pt")
    capsys.readouterr()
    assert main([*RUN_FLAGS, "--nepochs", "2", "--output-dir", str(out), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "model.input_layout (checkpoint 'centred', now 'real_space')" in err
    assert "loss_on (checkpoint 'patches', now 'stitched')" in err
    assert main([*RUN_FLAGS, "--nepochs", "2", *then, "--output-dir", str(out), "--resume"]) == 0
    assert json.loads((out / "metrics.json").read_text())["resumed_from_epoch"] == 1
