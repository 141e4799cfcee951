"""The benchmark scripts, each in a tiny configuration."""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from resumable import recording, without_timings

from benchmarks import gradient_ratios, spectral_conv_speed
from benchmarks.machinery.stats import mean_ci, paired_difference, t_quantile_975
from benchmarks.replot import benchmark_modules

TINY = [
    "--width", "4", "--blocks", "2", "--modes", "2", "--size", "8", "--batch", "1", "--no-progress",
    "--device", "cpu",
]
REPO = Path(__file__).resolve().parents[2]
QUICK_TINY = TINY[:2] + TINY[4:]  # without --blocks: --quick is one block


def all_numbers(obj):
    if isinstance(obj, dict):
        for v in obj.values():
            yield from all_numbers(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from all_numbers(v)
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        yield obj


# its users share a worker, so that the module fixture runs once
TINY_RUN_GROUP = pytest.mark.xdist_group("gradient-ratios-tiny-run")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """The sweep in two worker processes (one is compared with a run in this process below)."""
    out = tmp_path_factory.mktemp("gradient_ratios")
    argv = ["--strategies", "sqrt_in,legacy", "--seeds", "2", "--jobs", "2", "--output-dir", str(out), *TINY]
    assert gradient_ratios.main(argv) == 0
    return out, json.loads((out / "gradient_ratios.json").read_text())


@TINY_RUN_GROUP
def test_gradient_ratios_json_matches_schema(tiny_run) -> None:
    out, data = tiny_run
    report = gradient_ratios.Report.from_json_dict(data)
    assert data["schema"] == gradient_ratios.SCHEMA
    assert report.config.strategies == ["sqrt_in", "legacy"] and report.config.baseline == "legacy"
    # 4 default models × 2 inputs × 2 strategies × 2 seeds × 3 losses
    assert report.config.models == list(gradient_ratios.DEFAULT_MODELS)
    assert len(report.runs) == 96 and all(len(r.blocks) == 2 for r in report.runs)
    assert {r.input for r in report.runs} == {"white-noise", "diffraction"}
    assert all(math.isfinite(x) for x in all_numbers(data))
    assert {"device_name", "versions", "command", "torch_threads"} <= set(data["environment"])
    assert data["environment"]["command"].startswith(
        "python -m benchmarks.gradient_ratios --strategies sqrt_in,legacy --seeds 2"
    )
    assert (out / "gradient_ratios.md").read_text().startswith("# Gradient ratios per init strategy")


@TINY_RUN_GROUP
def test_gradient_ratios_measure_the_right_tensors(tiny_run) -> None:
    _, data = tiny_run
    report = gradient_ratios.Report.from_json_dict(data)
    for run in report.runs:
        for b in run.blocks:
            assert b.grad_ratio_local_over_spectral == pytest.approx(b.grad_mean_abs_local / b.grad_mean_abs_spectral)
            assert b.branch_std_ratio_spectral_over_local == pytest.approx(b.branch_std_spectral / b.branch_std_local)
    # One seed draws the same normals for both strategies, so the first block's spectral output
    # scales exactly by the ratio of stds: √((1/(4·4)²) / (1/4)) = 1/8 at width 4; the FFNO layer
    # sums two branches, so sqrt_in draws 1/(2·4) there and the ratio is √((1/256) / (1/8)) = 1/√32.
    first = {
        (r.model, r.input, r.strategy, r.seed): r.blocks[0].branch_std_spectral for r in report.runs if r.loss == "mean"
    }
    expected = {"blocks": 1 / 8, "generator": 1 / 8, "fno_vanilla": 1 / 8, "ffno": 1 / math.sqrt(32)}
    for model, ratio in expected.items():
        for inp in ("white-noise", "diffraction"):
            for seed in (0, 1):
                measured = first[(model, inp, "legacy", seed)] / first[(model, inp, "sqrt_in", seed)]
                assert measured == pytest.approx(ratio, rel=1e-4), model


@TINY_RUN_GROUP
def test_gradient_ratios_summary_and_baseline(tiny_run) -> None:
    _, data = tiny_run
    report = gradient_ratios.Report.from_json_dict(data)
    for entry in report.summary:
        assert (entry.vs_baseline is None) == (entry.strategy == "legacy")
        runs = [
            r
            for r in report.runs
            if (r.model, r.input, r.loss, r.strategy) == (entry.model, entry.input, entry.loss, entry.strategy)
        ]
        per_seed = [
            sum(b.rel_grad_spectral for b in r.blocks) / len(r.blocks) for r in sorted(runs, key=lambda r: r.seed)
        ]
        assert entry.metrics["rel_grad_spectral"].mean == pytest.approx(sum(per_seed) / 2)
        assert entry.metrics["rel_grad_spectral"].n == 2


@TINY_RUN_GROUP
def test_one_process_measures_what_the_workers_did_and_compare_shows_no_delta(tiny_run, tmp_path, capsys) -> None:
    """The same sweep in this process: every run equal to the workers' (a seed fixes a run wherever it
    runs; one torch thread in both), in the same order; ``--compare`` against the workers' file."""
    out, workers_record = tiny_run
    capsys.readouterr()
    argv = [
        "--strategies", "sqrt_in,legacy", "--seeds", "2", "--jobs", "1", "--output-dir", str(tmp_path), "--compare",
        str(out / "gradient_ratios.json"), *TINY,
    ]
    assert gradient_ratios.main(argv) == 0
    record = json.loads((tmp_path / "gradient_ratios.json").read_text())
    assert (record["config"]["workers"], workers_record["config"]["workers"]) == (1, 2)

    def measured(rec):
        return [{k: v for k, v in run.items() if k != "seconds"} for run in rec["runs"]]

    assert measured(record) == measured(workers_record)
    assert record["spectral_layers"] == workers_record["spectral_layers"]
    printed = capsys.readouterr().out
    rows = [
        line for line in printed.splitlines() if line.startswith(tuple(f"{m} " for m in gradient_ratios.DEFAULT_MODELS))
    ]
    # 4 models × 2 inputs × 3 losses × 2 strategies × 3 metrics, every one unchanged: CPU runs are deterministic.
    assert len(rows) == 144
    assert all(float(row.split()[-1]) == 0 for row in rows)


def test_gradient_ratios_quick(capsys) -> None:
    assert gradient_ratios.main(["--quick", "--strategies", "legacy", *QUICK_TINY]) == 0
    printed = capsys.readouterr().out
    assert "strategy legacy: one PtychoBlock" in printed and "local/spectral mean |grad| ratio" in printed


def test_gradient_ratios_quick_refuses_the_options_it_would_ignore(tmp_path) -> None:
    afile = tmp_path / "file"
    afile.write_text("x")
    quick = ["--quick", "--strategies", "legacy", *QUICK_TINY]
    with pytest.raises(SystemExit, match="--compare has no effect with --quick"):
        gradient_ratios.main([*quick, "--compare", "nope.json"])
    with pytest.raises(SystemExit, match="--output-dir has no effect with --quick"):
        gradient_ratios.main([*quick, "--output-dir", str(afile)])
    with pytest.raises(SystemExit, match="--seeds, --models have no effect with --quick"):
        gradient_ratios.main([*quick, "--seeds", "3", "--models", "blocks"])


def test_every_benchmark_refuses_an_option_its_mode_ignores(tmp_path, monkeypatch) -> None:
    from benchmarks import lattice_cause, training_comparison

    with pytest.raises(SystemExit, match="--anchor-iterations has no effect without --anchor"):
        training_comparison.main(["--anchor-iterations", "5", "--output-dir", str(tmp_path)])
    # lattice_cause --quick sets sizes; an explicit size wins over it instead of being overwritten
    seen = {}

    def record_sizes(args, device):
        seen.update(width=args.width, seeds=args.seeds, N=args.N, nepochs=args.nepochs)
        raise KeyboardInterrupt  # stop before any work

    monkeypatch.setattr(lattice_cause, "run", record_sizes)
    with pytest.raises(KeyboardInterrupt):
        lattice_cause.main(["--quick", "--width", "6", "--device", "cpu", "--output-dir", str(tmp_path)])
    assert seen == {"width": 6, "seeds": 1, "N": 16, "nepochs": 1}
    with pytest.raises(KeyboardInterrupt):
        lattice_cause.main(["--device", "cpu", "--output-dir", str(tmp_path / "full")])
    assert seen == {"width": 32, "seeds": 3, "N": 32, "nepochs": 25}


def test_gradient_ratios_bad_input(tmp_path) -> None:
    afile = tmp_path / "file"
    afile.write_text("x")
    with pytest.raises(SystemExit, match="not a directory"):
        gradient_ratios.main(["--strategies", "legacy", "--seeds", "1", "--output-dir", str(afile), *TINY])
    with pytest.raises(SystemExit, match="did you mean 'xavier-complex'"):
        gradient_ratios.main(["--strategies", "xavier", *TINY])
    with pytest.raises(SystemExit, match="modes must be <="):
        gradient_ratios.main(["--strategies", "legacy", *TINY, "--modes", "5"])
    with pytest.raises(SystemExit, match="size must be even"):
        gradient_ratios.main(["--strategies", "legacy", *TINY, "--size", "9"])


def test_spectral_conv_speed_tiny(tmp_path) -> None:
    argv = [
        "--shapes", "2x2x8x2,1x3x16x4", "--repeats", "3", "--warmup", "1", "--output-dir", str(tmp_path),
        "--no-progress", "--device", "cpu", "--no-memory",
    ]
    assert spectral_conv_speed.main(argv) == 0
    data = json.loads((tmp_path / "spectral_conv_speed.json").read_text())
    assert data["schema"] == spectral_conv_speed.SCHEMA
    assert [(r["layer"], r["batch"], r["channels"], r["size"], r["modes"]) for r in data["results"]] == [
        (layer, *shape) for layer in ("2d", "factorized") for shape in ((2, 2, 8, 2), (1, 3, 16, 4))
    ]
    for r in data["results"]:
        expected = {"ours", "straightforward", "roundtrip"}
        if r["layer"] == "2d" and data["config"]["neuralop_available"]:
            expected.add("neuralop")
        med = r["median_seconds"]
        assert set(med) == expected
        assert all(t > 0 and math.isfinite(t) for t in med.values())
        assert r["ratios"] == pytest.approx({f"ours_over_{n}": med["ours"] / med[n] for n in expected - {"ours"}})
        assert set(r["peak_memory_bytes"]) == expected and not any(r["peak_memory_bytes"].values())
    markdown = (tmp_path / "spectral_conv_speed.md").read_text()
    assert markdown.count("| 2×2×8², 2 |") == 2 and "## factorized layer" in markdown


def test_adapter_init_tiny(tmp_path) -> None:
    pytest.importorskip("neuralop")
    from benchmarks import adapter_init

    argv = ["--seeds", "3", "--width", "4", "--output-dir", str(tmp_path), "--no-progress", "--device", "cpu"]
    assert adapter_init.main(argv) == 0
    data = json.loads((tmp_path / "adapter_init.json").read_text())
    assert data["schema"] == adapter_init.SCHEMA and all(math.isfinite(x) for x in all_numbers(data))
    rows = {r["layer"]: r for r in data["results"]}
    assert rows["neuralop legacy 2-D dense"]["adapters"] == {"neuralop-legacy-spectral-conv": 2}
    # tltorch's tt draw is far too small; initialize_ puts every layer at its target
    assert rows["neuralop legacy 3-D tt"]["own_init"]["mean"] < 1e-3
    assert all(0.5 < r["initialize_"]["mean"] < 2 for r in data["results"])
    assert "| neuralop legacy 3-D tt |" in (tmp_path / "adapter_init.md").read_text()
    with pytest.raises(SystemExit):
        adapter_init.main(["--seeds", "1", "--output-dir", str(tmp_path)])


GENERATOR_STEP_TINY = [
    "--batch", "2", "--N", "16", "--width", "4", "--modes", "2", "--blocks", "1", "--repeats", "2", "--warmup",
    "1", "--no-progress", "--device", "cpu",
]


def test_generator_step_tiny(tmp_path) -> None:
    from benchmarks import generator_step

    argv = ["--architectures", "ffno,fno", "--no-compile", "--output-dir", str(tmp_path), *GENERATOR_STEP_TINY]
    assert generator_step.main(argv) == 0
    data = json.loads((tmp_path / "generator_step.json").read_text())
    assert data["schema"] == generator_step.SCHEMA
    assert [r["architecture"] for r in data["results"]] == ["ffno", "fno"]
    for r in data["results"]:
        assert set(r["median_seconds"]) == {"eager"} and r["median_seconds"]["eager"] > 0
        assert r["compile_over_eager"] is None and r["compile_seconds"] is None and r["compile_error"] is None
    assert data["results"][0]["spectral_layers"] == {"FactorizedSpectralConv2d": 1}
    assert "| ffno | FactorizedSpectralConv2d ×1 |" in (tmp_path / "generator_step.md").read_text()


def test_generator_step_trains_and_records_a_failed_compile(tmp_path, monkeypatch) -> None:
    """The timed step really is an Adam step (the weights move), and a backend that cannot compile
    the model is recorded as a result while the eager time is still measured."""
    from benchmarks import generator_step
    from ptycho_torch.generators.config import GeneratorConfig, build_generator

    model = build_generator(GeneratorConfig(architecture="fno", N=16, fno_width=4, fno_modes=2, fno_blocks=1))
    before = [p.detach().clone() for p in model.parameters()]
    step = generator_step.make_step(model, list(model.parameters()), 2, 16, torch.device("cpu"))
    assert step() > 0
    assert all(not torch.equal(a, p) for a, p in zip(before, model.parameters()) if p.grad is not None)

    def failing_compile(module):
        def call(*args):
            raise RuntimeError("backend cannot compile complex parameters\nsecond line")

        return call

    monkeypatch.setattr(torch, "compile", failing_compile)
    assert generator_step.main(["--architectures", "fno", "--output-dir", str(tmp_path), *GENERATOR_STEP_TINY]) == 0
    result = json.loads((tmp_path / "generator_step.json").read_text())["results"][0]
    assert result["compile_error"] == "RuntimeError: backend cannot compile complex parameters"
    assert set(result["median_seconds"]) == {"eager"} and result["compile_seconds"] is None
    assert "Compilation failed for:" in (tmp_path / "generator_step.md").read_text()
    with pytest.raises(SystemExit, match="modes"):
        generator_step.main(["--architectures", "fno", "--N", "16", "--modes", "9", "--output-dir", str(tmp_path)])


def test_speed_reports_warn_when_the_baseline_was_unsteady(tmp_path) -> None:
    """The same round trip (or eager step) measured > 2× slower somewhere in one run is said in the report."""
    from benchmarks import generator_step

    argv = ["--shapes", "2x2x8x2", "--layers", "2d,factorized", "--repeats", "2", "--warmup", "0", "--output-dir",
            str(tmp_path), "--no-progress", "--device", "cpu", "--no-memory"]
    assert spectral_conv_speed.main(argv) == 0
    record = json.loads((tmp_path / "spectral_conv_speed.json").read_text())
    assert all(r["roundtrip_max_over_min"] >= 1 for r in record["results"])
    for r in record["results"]:
        r["roundtrip_max_over_min"] = 1.0
    record["results"][1]["median_seconds"]["roundtrip"] = 3 * record["results"][0]["median_seconds"]["roundtrip"]
    assert "round trip at 2×2×8², 2 varied 3.0×" in spectral_conv_speed.markdown_report(record)
    record["results"][1]["median_seconds"]["roundtrip"] = record["results"][0]["median_seconds"]["roundtrip"]
    assert "Warning" not in spectral_conv_speed.markdown_report(record)
    step = {"architecture": "fno", "spectral_layers": {}, "median_seconds": {"eager": 0.01}, "compile_over_eager": None,
            "compile_seconds": None, "compile_error": None, "eager_max_over_min": 2.5}
    step_record = {"environment": record["environment"], "results": [step],
                   "config": {"dtype": "float32", "batch": 1, "N": 8, "width": 2, "modes": 2, "blocks": 1,
                              "repeats": 2, "warmup": 0}}
    assert "eager step of fno varied more than 2×" in generator_step.markdown_report(step_record)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="CPU peak memory reads /proc")
@pytest.mark.parametrize("layer", spectral_conv_speed.LAYERS)
def test_cpu_peak_memory_covers_the_tensors_a_pass_must_allocate(layer) -> None:
    shape = (4, 8, 64, 8)
    peak = spectral_conv_speed.peak_memory("ours", layer, shape, torch.float32, torch.device("cpu"))
    x_bytes = 4 * 8 * 64 * 64 * 4
    assert peak >= 2 * x_bytes  # at least the output and the input's gradient
    assert peak < 100 * x_bytes


def test_speed_rejects_bad_shapes() -> None:
    with pytest.raises(SystemExit):
        spectral_conv_speed.main(["--shapes", "2x2x8"])
    with pytest.raises(SystemExit):
        spectral_conv_speed.main(["--shapes", "2x2x8x5"])
    with pytest.raises(SystemExit):
        spectral_conv_speed.main(["--layers", "3d"])


def test_statistics() -> None:
    # textbook values (two-sided 95%): 12.706, 2.776, 2.042, and the normal's 1.960 in the limit
    assert t_quantile_975(1) == pytest.approx(12.7062, abs=1e-4)
    assert t_quantile_975(4) == pytest.approx(2.7764, abs=1e-4)
    assert t_quantile_975(30) == pytest.approx(2.0423, abs=1e-4)
    assert t_quantile_975(10**6) == pytest.approx(1.95996, abs=1e-4)
    stat = mean_ci([1.0, 2.0, 3.0, 4.0, 5.0])
    assert stat["mean"] == 3.0 and stat["std"] == pytest.approx(math.sqrt(2.5))
    assert stat["ci95"] == pytest.approx(2.7764451 * math.sqrt(2.5) / math.sqrt(5))
    assert mean_ci([7.0])["ci95"] is None
    assert paired_difference([3.0, 5.0], [1.0, 2.0])["mean"] == 2.5
    with pytest.raises(ValueError):
        paired_difference([1.0], [1.0, 2.0])


def test_training_comparison_tiny(tmp_path) -> None:
    from benchmarks import training_comparison

    argv = [
        "--strategies", "sqrt_in", "--seeds", "2", "--N", "16", "--width", "4", "--modes", "2", "--blocks", "1",
        "--nepochs", "3", "--nimgs-train", "1", "--device", "cpu", "--no-progress", "--output-dir",
        str(tmp_path),
    ]
    assert training_comparison.main(argv) == 0
    data = json.loads((tmp_path / "training_comparison.json").read_text())
    assert data["schema"] == training_comparison.SCHEMA
    assert data["config"]["strategies"] == ["legacy", "sqrt_in"]  # the baseline joins the sweep
    assert len(data["runs"]) == 4 and all(len(r["epoch_losses"]) == 3 for r in data["runs"])
    assert all(math.isfinite(x) for x in all_numbers(data))
    summary = data["summary"]
    assert summary["legacy"]["vs_baseline"] is None
    final = {(r["strategy"], r["seed"]): r["epoch_losses"][-1] for r in data["runs"]}
    diffs = [final[("sqrt_in", s)] - final[("legacy", s)] for s in (0, 1)]
    assert summary["sqrt_in"]["vs_baseline"]["final_train_loss"]["mean"] == pytest.approx(sum(diffs) / 2)
    # The init shows in the spectral branch's share of the block output from the first step.
    assert (
        summary["sqrt_in"]["metrics"]["participation_start"]["mean"]
        > 5 * summary["legacy"]["metrics"]["participation_start"]["mean"]
    )
    markdown = (tmp_path / "training_comparison.md").read_text()
    assert markdown.startswith("# Training comparison per init strategy")
    # the stitched test object per strategy: each run's value in the mean, the paired Δ SSIM against legacy
    ssim = {(r["strategy"], r["seed"]): r["reconstruction"]["ssim_amp"] for r in data["runs"]}
    assert summary["sqrt_in"]["metrics"]["reconstruction_ssim_amp"]["mean"] == pytest.approx(
        (ssim[("sqrt_in", 0)] + ssim[("sqrt_in", 1)]) / 2)
    assert summary["sqrt_in"]["vs_baseline"]["reconstruction_ssim_amp"]["mean"] == pytest.approx(
        (ssim[("sqrt_in", 0)] - ssim[("legacy", 0)] + ssim[("sqrt_in", 1)] - ssim[("legacy", 1)]) / 2)
    assert "Stitched test object" in markdown and "| variant | mae_amp | mae_phase | ssim_amp" in markdown


def test_training_comparison_crosses_input_transforms_with_strategies(tmp_path) -> None:
    from benchmarks import replot, training_comparison

    argv = [
        "--strategies", "sqrt_in", "--input-layouts", "corner", "--input-transforms", "none,log1p", "--seeds", "2",
        "--N", "16", "--width", "4",
        "--modes", "2", "--blocks", "1", "--nepochs", "2", "--nimgs-train", "1", "--device", "cpu",
        "--test-each-epoch", "--no-progress", "--threads", "1", "--output-dir", str(tmp_path),
    ]
    assert training_comparison.main(argv) == 0
    data = json.loads((tmp_path / "training_comparison.json").read_text())
    runs = {(r["strategy"], r["input_transform"], r["seed"]): r for r in data["runs"]}
    assert len(runs) == len(data["runs"]) == 8  # 2 strategies × 2 transforms × 2 seeds, each once
    assert all(len(r["epoch_test_losses"]) == 2 and None not in r["epoch_test_losses"] for r in data["runs"])
    summary = data["summary"]
    assert list(summary) == ["legacy · none", "legacy · log1p", "sqrt_in · none", "sqrt_in · log1p"]
    assert summary["legacy · none"]["vs_baseline"] is None
    # the transform's effect pairs each seed with the same init's run without it
    ssim = {key: r["reconstruction"]["ssim_phase"] for key, r in runs.items()}
    effect = summary["sqrt_in · log1p"]["vs_first_transform"]["reconstruction_ssim_phase"]["mean"]
    assert effect == pytest.approx(statistics.fmean(ssim[("sqrt_in", "log1p", s)] - ssim[("sqrt_in", "none", s)]
                                                    for s in (0, 1)))
    assert summary["sqrt_in · none"]["vs_first_transform"] is None
    # the lifter's first op differs between the transforms: the same seed trains to another loss
    assert runs[("legacy", "log1p", 0)]["epoch_losses"] != runs[("legacy", "none", 0)]["epoch_losses"]
    markdown = (tmp_path / "training_comparison.md").read_text()
    assert "| sqrt_in | log1p |" in markdown and "against `legacy · none`" in markdown
    # seed 0's first test object per variant, drawn again from the record alone
    objects = data["objects"]
    assert objects["seed"] == 0 and len(objects["variants"]) == 4
    assert {(v["strategy"], v["input"]) for v in objects["variants"]} == {
        (s, t) for s in ("legacy", "sqrt_in") for t in ("none", "log1p")}
    if (tmp_path / "training_comparison.png").exists():  # matplotlib installed
        (tmp_path / "training_comparison_objects.png").unlink()
        assert replot.main([str(tmp_path / "training_comparison.json")]) == 0
        assert (tmp_path / "training_comparison_objects.png").read_bytes().startswith(b"\x89PNG")


def test_training_comparison_crosses_input_layouts_and_adds_the_iterative_anchor(tmp_path) -> None:
    from benchmarks import replot, training_comparison

    argv = [*TINY_COMPARISON, "--input-layouts", "centred,real_space", "--anchor", "--anchor-iterations", "3",
            "--output-dir", str(tmp_path)]
    assert training_comparison.main(argv) == 0
    data = json.loads((tmp_path / "training_comparison.json").read_text())
    assert list(data["summary"]) == ["legacy · centred", "legacy · real_space", "sqrt_in · centred",
                                     "sqrt_in · real_space"]
    assert {(r["input_layout"], r["input_transform"]) for r in data["runs"]} == {("centred", "none"),
                                                                                  ("real_space", "none")}
    # the same seed, another input: another model (2 input channels) and another loss curve
    runs = {(r["strategy"], r["input_layout"], r["seed"]): r for r in data["runs"]}
    assert runs[("legacy", "centred", 0)]["epoch_losses"] != runs[("legacy", "real_space", 0)]["epoch_losses"]
    assert all(0 <= r["reconstruction"]["lattice_amp"] <= 1 for r in data["runs"])
    anchor = data["anchor"]
    assert [a["seed"] for a in anchor["runs"]] == [0, 1] and anchor["summary"]["iterations"] == 3
    assert anchor["summary"]["package"].startswith("cdtools-py ")
    assert all(a["seconds_per_object"] > 0 and -1 <= a["reconstruction"]["ssim_phase"] <= 1 for a in anchor["runs"])
    markdown = (tmp_path / "training_comparison.md").read_text()
    assert "| iterative (cdtools-py" in markdown and "3 iterations) |" in markdown
    # each variant paired with the iterative object of its seed
    iterative = {a["seed"]: a["reconstruction"]["ssim_phase"] for a in anchor["runs"]}
    gaps = [r["reconstruction"]["ssim_phase"] - iterative[r["seed"]] for r in data["runs"]
            if r["variant"] == "sqrt_in · real_space"]
    row = next(line for line in markdown.splitlines() if line.startswith("| sqrt_in · real_space | ")
               and "against the iterative" in markdown.split(line)[0])
    assert row.split(" | ")[2].startswith(f"{statistics.fmean(gaps):.3g}")
    assert "| sqrt_in | real_space |" in markdown  # the layout's effect, the init held fixed
    assert "iterative" in data["objects"]
    if (tmp_path / "training_comparison.png").exists():  # matplotlib installed
        (tmp_path / "training_comparison_objects.png").unlink()
        assert replot.main([str(tmp_path / "training_comparison.json")]) == 0
        assert (tmp_path / "training_comparison_objects.png").read_bytes().startswith(b"\x89PNG")


def test_training_comparison_refuses_a_bad_input_before_any_run(tmp_path, capsys, monkeypatch) -> None:
    from benchmarks import training_comparison
    from benchmarks.machinery.common import UsageError

    out = ["--output-dir", str(tmp_path / "out")]
    for extra, message in ((["--input-layouts", "real_space", "--input-transforms", "none,sqrt"],
                            "input_transform 'sqrt' compresses amplitudes"),
                           (["--probe-defocus", "-40"], "probe_defocus must be within ±π·N/8 = ±6.28 rad")):
        with pytest.raises(UsageError, match=message.replace("+", "\\+")):
            training_comparison.main([*TINY_COMPARISON, *extra, *out])
    with pytest.raises(SystemExit) as exit_info:
        training_comparison.main([*TINY_COMPARISON, "--input-layouts", "diagonal", *out])
    assert exit_info.value.code == 2 and "unknown input layouts ['diagonal']" in capsys.readouterr().err
    with pytest.raises(UsageError, match="--loss-threshold is one absolute training loss.*patches, stitched"):
        training_comparison.main([*TINY_COMPARISON, "--losses-on", "patches,stitched", "--loss-threshold", "0.01",
                                  *out])
    monkeypatch.setattr(training_comparison, "anchor_available", lambda: False)
    with pytest.raises(UsageError, match="--anchor needs CDTools: pip install 'cdtools-py'"):
        training_comparison.main([*TINY_COMPARISON, "--anchor", *out])
    assert not (tmp_path / "out").exists()


def test_a_training_loss_is_compared_within_its_loss_scope_only() -> None:
    """A stitched loss runs far below the per-patch loss of the same patches: its final value and its steps
    to a threshold get a threshold of their own and a Δ against the baseline of their scope only; the
    per-patch test loss, one measure for every scope, is compared across."""
    from benchmarks import training_comparison

    inputs = {"patches": ("real_space", "none", "patches"), "stitched": ("real_space", "none", "stitched")}
    runs = []
    for strategy, shift in (("legacy", 1.0), ("sqrt_in", 0.5)):
        for name, (_, _, loss_on) in inputs.items():
            scale = 1.0 if loss_on == "patches" else 1e-3  # the stitched loss: 1000× lower
            for seed in (0, 1, 2):
                steps = [scale * shift * (1 + seed / 10) * 0.9**k for k in range(30)]
                runs.append({"strategy": strategy, "loss_on": loss_on, "input": name, "seed": seed,
                             "variant": f"{strategy} · {name}", "step_losses": steps, "epoch_losses": steps[9::10],
                             "test": {"physics_loss": 0.05 * shift + seed / 1000, "amplitude_mae": 0.1,
                                      "phase_mae": 0.1},
                             "participation": {"start": [], "end": []},
                             "reconstruction": dict.fromkeys(training_comparison.RECONSTRUCTION_METRICS)})
    thresholds, total_steps, summary = training_comparison.summarize(runs, [], inputs, ["legacy", "sqrt_in"],
                                                                     "legacy", None)
    assert thresholds["stitched"] == pytest.approx(thresholds["patches"] * 1e-3)
    assert total_steps == [30]
    # each run reaches its own scope's threshold at the same step: the curves have one shape
    assert len({r["steps_to_threshold"] for r in runs if r["strategy"] == "legacy" and r["seed"] == 0}) == 1
    stitched_base = summary["legacy · stitched"]["vs_baseline"]
    assert stitched_base["final_train_loss"] is None and stitched_base["steps_to_threshold"] is None
    assert stitched_base["test_physics_loss"]["mean"] == pytest.approx(0.0)  # same test loss: compared across
    own_scope = summary["sqrt_in · stitched"]["vs_baseline"]["final_train_loss"]["mean"]
    legacy_final = statistics.fmean(r["epoch_losses"][-1] for r in runs if r["variant"] == "legacy · stitched")
    assert own_scope == pytest.approx(-legacy_final / 2)  # against legacy's stitched runs, not its per-patch ones
    markdown_row = training_comparison._thresholds_text(thresholds)
    assert "(patches loss)" in markdown_row and "(stitched loss)" in markdown_row


TINY_COMPARISON = ["--strategies", "sqrt_in", "--seeds", "2", "--N", "16", "--width", "4", "--modes", "2",
                   "--blocks", "1", "--nepochs", "1", "--nimgs-train", "1", "--device", "cpu", "--no-progress",
                   "--threads", "1"]


def test_a_diverged_run_is_counted_and_the_others_still_compared(tmp_path, monkeypatch) -> None:
    from benchmarks import training_comparison
    from ptycho_torch.training import DivergenceError

    real_train = training_comparison.train

    def train_diverging_once(config):
        if config.model.spectral_init.strategy == "sqrt_in" and config.seed == 1:
            raise DivergenceError(1, 3, "non-finite loss (nan)")
        return real_train(config)

    monkeypatch.setattr(training_comparison, "train", train_diverging_once)
    assert training_comparison.main([*TINY_COMPARISON, "--output-dir", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "training_comparison.json").read_text())
    assert data["diverged"] == [{"strategy": "sqrt_in", "input_transform": "none", "input_layout": "real_space",
                                 "loss_on": "stitched", "input": "none", "variant": "sqrt_in", "seed": 1, "epoch": 1,
                                 "step": 3, "what": "non-finite loss (nan)"}]
    assert len(data["runs"]) == 3
    entry = data["summary"]["sqrt_in"]
    assert entry["diverged"] == 1 and entry["metrics"]["final_train_loss"]["n"] == 1
    assert entry["vs_baseline"]["final_train_loss"]["n"] == 1  # paired on the seed both finished
    report = (tmp_path / "training_comparison.md").read_text()
    assert "sqrt_in seed 1 at epoch 1, step 3: non-finite loss (nan)" in report


def test_a_rate_that_overflows_the_outputs_counts_as_diverged_not_as_a_nan_score(tmp_path, capsys) -> None:
    # lr 1e9: losses and weights finite, the test predictions inf; their NaN scores made json raise
    from benchmarks import training_comparison

    assert training_comparison.main([*TINY_COMPARISON, "--seeds", "1", "--lr", "1e9", "--output-dir",
                                     str(tmp_path)]) == 3
    err = capsys.readouterr().err
    assert "every run diverged" in err and "non-finite predictions on the test patterns" in err


def test_when_every_run_diverges_the_comparison_says_so_and_exits_3(tmp_path, monkeypatch, capsys) -> None:
    from benchmarks import training_comparison
    from ptycho_torch.training import DivergenceError

    def always_diverging(config):
        raise DivergenceError(1, 1, "non-finite loss (inf)")

    monkeypatch.setattr(training_comparison, "train", always_diverging)
    assert training_comparison.main([*TINY_COMPARISON, "--output-dir", str(tmp_path)]) == 3
    assert capsys.readouterr().err.startswith("error: every run diverged (4; the first, legacy seed 0, at epoch 1")
    assert not (tmp_path / "training_comparison.json").exists()


def test_training_comparison_refuses_an_unknown_input_transform(tmp_path, capsys) -> None:
    from benchmarks import training_comparison

    with pytest.raises(SystemExit) as stop:
        training_comparison.main(["--input-transforms", "none,log", "--output-dir", str(tmp_path)])
    assert stop.value.code == 2
    assert "unknown input transforms ['log']; allowed: none, sqrt, log1p, instancenorm" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # refused before any work


def test_steps_to_threshold() -> None:
    from benchmarks.training_comparison import steps_to_threshold

    assert steps_to_threshold([4.0, 3.0, 2.0, 1.0, 1.0], 2.0) == 4  # running means 4, 3.5, 3, 2, 1.33
    assert steps_to_threshold([1.0], 2.0) == 1
    assert steps_to_threshold([5.0, 5.0], 2.0) is None


def test_training_comparison_bad_input(tmp_path) -> None:
    from benchmarks import training_comparison

    with pytest.raises(SystemExit, match="did you mean"):
        training_comparison.main(["--strategies", "sqrtin_", "--output-dir", str(tmp_path)])
    with pytest.raises(SystemExit, match="fno_modes"):
        training_comparison.main(["--N", "16", "--modes", "12", "--output-dir", str(tmp_path)])
    # pydantic's message, one line per field, without its type codes and links
    with pytest.raises(SystemExit) as stop:
        training_comparison.main(["--offset", "0", "--output-dir", str(tmp_path)])
    assert str(stop.value) == "invalid training configuration:\n  offset: Input should be greater than or equal to 1"


def test_committed_results_match_the_schema() -> None:
    from pathlib import Path

    files = sorted((Path(__file__).resolve().parents[2] / "benchmarks" / "results").glob("*/gradient_ratios.json"))
    assert files, "no committed gradient_ratios.json"
    for path in files:
        data = json.loads(path.read_text())
        report = gradient_ratios.Report.from_json_dict(data)
        assert report.to_json_dict() == data
        assert all(math.isfinite(x) for x in all_numbers(data))


def test_gradient_ratios_hybrid_model(tmp_path) -> None:
    argv = [
        "--strategies", "sqrt_in", "--baseline", "sqrt_in", "--seeds", "1", "--models", "hybrid", "--inputs",
        "white-noise", "--losses", "mean", "--output-dir", str(tmp_path), *TINY,
    ]
    assert gradient_ratios.main(argv) == 0
    report = gradient_ratios.Report.from_json_dict(json.loads((tmp_path / "gradient_ratios.json").read_text()))
    # 2 encoder blocks + the bottleneck, each with its spectral and local branch measured
    assert [len(r.blocks) for r in report.runs] == [3]
    with pytest.raises(SystemExit, match="divisible by 8"):
        gradient_ratios.main([*argv[: -len(TINY)], *TINY, "--blocks", "4", "--size", "12", "--modes", "2"])


def test_neuralop_init_tiny(tmp_path) -> None:
    pytest.importorskip("neuralop")
    from benchmarks import neuralop_init

    argv = ["--seeds", "2", "--width", "4", "--output-dir", str(tmp_path), "--no-progress", "--device", "cpu"]
    assert neuralop_init.main(argv) == 0
    data = json.loads((tmp_path / "neuralop_init.json").read_text())
    assert data["schema"] == neuralop_init.SCHEMA and data["config"]["target"] == pytest.approx(2 / 8)
    assert [(r["dim"], r["kind"]) for r in data["results"]] == [(d, k) for d in (1, 2, 3) for k in neuralop_init.KINDS]
    assert all(r["initialize_"]["n"] == 2 and r["initialize_"]["mean"] > 0 for r in data["results"])
    assert all(math.isfinite(x) for x in all_numbers(data))
    assert "| 3-D | 8×8×8 | tt |" in (tmp_path / "neuralop_init.md").read_text()
    with pytest.raises(SystemExit, match="--rank"):
        neuralop_init.main(["--rank", "0", "--output-dir", str(tmp_path)])


def test_signal_propagation_tiny(tmp_path) -> None:
    from benchmarks import signal_propagation

    argv = [
        "--strategies", "legacy,edge-of-chaos", "--depths", "1,3", "--seeds", "2", "--width", "4", "--modes",
        "2", "--size", "8", "--batch", "1", "--size-1d", "16", "--modes-1d", "4", "--size-3d", "6", "--modes-3d", "3",
        "--device", "cpu", "--no-progress", "--output-dir", str(tmp_path),
    ]
    assert signal_propagation.main(argv) == 0
    data = json.loads((tmp_path / "signal_propagation.json").read_text())
    assert data["schema"] == signal_propagation.SCHEMA
    assert data["config"]["variants"] == ["legacy", "edge-of-chaos", "calibrated"]
    assert len(data["runs"]) == 5 * 2 * 2 * 3  # models × depths × seeds × variants
    shapes = {r["model"]: data["spectral_layers"][f"{r['model']}, depth 3"] for r in data["runs"]}
    assert any("1-D" in kind for kind in shapes["plain-relu-1d"]) and any("3-D" in k for k in shapes["plain-relu-3d"])
    assert all(math.isfinite(x) for x in all_numbers(data))
    for run in data["runs"]:
        assert len(run["forward_second_moment"]) == len(run["backward_norm"]) == run["depth"]
        if run["variant"] == "calibrated" and run["model"] != "blocks":
            # calibrated on this very batch: every layer's output second moment is 1
            assert all(abs(q - 1) < 1e-4 for q in run["forward_second_moment"])
    markdown = (tmp_path / "signal_propagation.md").read_text()
    assert "## plain-relu" in markdown and "| edge-of-chaos |" in markdown and "## plain-relu-3d" in markdown
    assert "1-D: 16 points, n_modes 4; 3-D: 6³ points, n_modes 3" in markdown
    # the mean field: every ReLU stack, depth and drawn strategy (not calibrated), and it is relu_stack_profile's
    predicted = {(r["model"], r["depth"], r["variant"]): r for r in data["mean_field"]}
    assert set(predicted) == {(m, d, v) for m in ("plain-relu", "plain-relu-1d", "plain-relu-3d") for d in (1, 3)
                              for v in ("legacy", "edge-of-chaos")}
    assert all(row["forward_ratio"] == row["backward_ratio"] == 1 for (_, depth, _), row in predicted.items()
               if depth == 1)
    import spectral_init as si
    from spectral_init.analysis.stack_profile import relu_stack_profile

    layer = si.SpectralGeometry(4, 4, 1, (3,))  # n_modes 4 on 16 points keeps 3 frequencies
    moment = si.get_strategy("edge-of-chaos").second_moment(geometry=layer, resolution=16)
    profile = relu_stack_profile(layer, 16, 3, moment)
    assert predicted["plain-relu-1d", 3, "edge-of-chaos"]["forward_ratio"] == pytest.approx(profile.forward_ratio)
    assert predicted["plain-relu-1d", 3, "edge-of-chaos"]["backward_ratio"] == pytest.approx(
        math.sqrt(profile.backward_ratio))
    assert "## Mean field (ReLU stacks)" in markdown and "### plain-relu-3d" in markdown
    # a draw with a mean is not what the mean field models: fno-uniform gets no row
    cfg = {**data["config"], "variants": ["fno-uniform", "sqrt_in", "calibrated"], "depths": [2]}
    assert {r["variant"] for r in signal_propagation.mean_field(cfg)} == {"sqrt_in"}
    with pytest.raises(SystemExit, match="modes must be"):
        signal_propagation.main([*argv[:-2], "--modes", "5", "--output-dir", str(tmp_path)])


def test_strategies_that_need_parameters_are_left_out_of_all_and_refused_by_name() -> None:
    from benchmarks.machinery.common import UsageError, select_strategies

    everything, _ = select_strategies(None, "sqrt_in")
    assert "mup" not in everything and {"edge-of-chaos", "legacy", "sqrt_in"} <= set(everything)
    with pytest.raises(UsageError, match="mup needs base_modes, which this benchmark does not set"):
        select_strategies("sqrt_in,mup", "sqrt_in")


def test_every_benchmark_is_found_without_a_list() -> None:
    from benchmarks.replot import benchmark_modules

    found = {m.__name__.rsplit(".", 1)[1] for m in benchmark_modules()}
    # the modules whose source declares a record schema, read independently of the discovery
    declared = {p.stem for p in (REPO / "benchmarks").glob("**/*.py") if "\nSCHEMA = " in p.read_text()}
    assert found == declared and {"lattice_cause", "training_comparison", "operator_tasks"} <= found


def test_each_study_sits_in_the_folder_of_its_question_and_keeps_its_module_name() -> None:
    import benchmarks
    from benchmarks.replot import benchmark_modules

    for module in benchmark_modules():
        assert Path(module.__file__).parent.name in benchmarks.QUESTIONS, module.__file__
        assert module.__name__.count(".") == 1  # benchmarks.NAME, wherever the file is
    top = {p.name for p in (REPO / "benchmarks").glob("*.py")}
    assert top == {"__init__.py", "replot.py"}


@pytest.mark.parametrize("name", sorted(m.__name__.rsplit(".", 1)[1] for m in benchmark_modules()) + ["replot"])
def test_every_benchmark_flag_has_help_and_shows_its_default(name) -> None:
    import importlib

    parser = importlib.import_module(f"benchmarks.{name}").build_parser()
    formatter = parser._get_formatter()
    for action in parser._actions:
        assert action.help, f"{name}: {action.option_strings or action.dest} has no help"
        shown = formatter._get_help_string(action)
        if action.option_strings and action.default not in (None, False) and action.dest != "help":
            assert "(default" in shown, f"{name}: {action.option_strings} does not show its default"


SIGNAL_TINY = ["--strategies", "legacy,sqrt_in", "--no-calibrated", "--depths", "1", "--seeds", "2", "--width", "4",
               "--modes", "2", "--size", "8", "--batch", "1", "--device", "cpu", "--no-progress", "--threads", "1"]


def test_signal_propagation_without_neuraloperator_runs_the_stacks_it_can_and_says_so(tmp_path, capsys,
                                                                                       monkeypatch) -> None:
    # the README's main-job install has no neuraloperator: the default run left it exit 2
    from benchmarks import signal_propagation
    from benchmarks.machinery.common import UsageError

    monkeypatch.setattr(signal_propagation, "_neuraloperator_installed", lambda: False)
    tiny = [*SIGNAL_TINY, "--seeds", "1", "--strategies", "sqrt_in"]
    assert signal_propagation.main([*tiny, "--output-dir", str(tmp_path / "default")]) == 0
    assert "the 1-D and 3-D stacks (plain-relu-1d, plain-relu-3d) are left out" in capsys.readouterr().err
    record = json.loads((tmp_path / "default" / "signal_propagation.json").read_text())
    assert record["config"]["models"] == ["plain-relu", "plain-gelu", "blocks"]
    with pytest.raises(UsageError, match="need neuraloperator"):  # asked for by name: refused
        signal_propagation.main([*tiny, "--models", "plain-relu-1d", "--output-dir", str(tmp_path / "named")])


@pytest.mark.parametrize("finished_before_interrupt", [0, 3])
def test_an_interrupted_benchmark_keeps_its_finished_runs_and_exits_130(
    tmp_path, capsys, monkeypatch, finished_before_interrupt
) -> None:
    """Ctrl-C (KeyboardInterrupt) in the middle of the sweep: the finished units' runs are written, marked
    incomplete, one line says so, exit 130; interrupted before the first unit ends, nothing is written."""
    from benchmarks import signal_propagation
    from benchmarks.machinery.common import run_cli

    real_measure, calls = signal_propagation.measure, []

    def measure_then_interrupt(*args, **kwargs):
        if len(calls) == finished_before_interrupt:
            raise KeyboardInterrupt
        calls.append(1)
        return real_measure(*args, **kwargs)

    monkeypatch.setattr(signal_propagation, "measure", measure_then_interrupt)
    status = run_cli(lambda _: signal_propagation.main([*SIGNAL_TINY, "--output-dir", str(tmp_path)]))
    err = capsys.readouterr().err
    assert status == 130 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    if finished_before_interrupt == 0:
        assert "nothing was written" in err and not (tmp_path / "signal_propagation.json").exists()
        return
    # a unit (model, depth, seed: every variant) is kept whole: seed 1's first variant went with its unit
    data = json.loads((tmp_path / "signal_propagation.json").read_text())
    assert data["incomplete"] is True and len(data["runs"]) == 2
    assert [(r["variant"], r["seed"]) for r in data["runs"]] == [("legacy", 0), ("sqrt_in", 0)]
    assert f"2 finished runs written to {tmp_path / 'signal_propagation.json'}" in err
    assert "interrupted" in (tmp_path / "signal_propagation.md").read_text()
    # the advice is what works: a plain rerun is refused (the partial record holds the directory), and
    # this sweep has no --resume; a resumable one is told to resume
    assert "rerun with --overwrite for the whole report" in err
    assert run_cli(lambda _: signal_propagation.main([*SIGNAL_TINY, "--output-dir", str(tmp_path)])) == 2
    from benchmarks.machinery.common import BenchmarkInterrupted

    assert "--resume" in BenchmarkInterrupted(1, {}, resumable=True).how_to_go_on()
    from benchmarks import replot

    with pytest.raises(SystemExit, match="interrupted benchmark"):  # a partial record is no report to redraw
        replot.main([str(tmp_path / "signal_propagation.json")])


def test_sigterm_is_handled_as_an_interrupt_inside_the_block_only() -> None:
    import os
    import signal
    import time

    from spectral_init.cli.usage import interrupts_raise_keyboard_interrupt

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt), interrupts_raise_keyboard_interrupt():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(10)  # the handler raises at once, ending the sleep
    assert signal.getsignal(signal.SIGTERM) == before


def test_a_benchmark_refuses_an_output_dir_in_use_and_records_its_threads(tmp_path, capsys) -> None:
    import subprocess

    from test_resume import HOLD_LOCK

    from benchmarks import signal_propagation
    from benchmarks.machinery.common import run_cli

    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(tmp_path / ".lock")], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "holding\n"
        status = run_cli(lambda _: signal_propagation.main([*SIGNAL_TINY, "--output-dir", str(tmp_path)]))
        assert status == 2 and f"is in use by another run (pid {holder.pid})" in capsys.readouterr().err
        assert not (tmp_path / "signal_propagation.json").exists()
    finally:
        holder.communicate("")
    threads_before = torch.get_num_threads()
    assert run_cli(lambda _: signal_propagation.main([*SIGNAL_TINY, "--output-dir", str(tmp_path)])) == 0
    assert torch.get_num_threads() == threads_before  # the command's count does not outlive it
    threads = json.loads((tmp_path / "signal_propagation.json").read_text())["environment"]["threads"]
    assert threads["torch_threads"] == threads["requested"] == 1 and "load_average_end" in threads


def test_lattice_cause_with_a_rate_that_overflows_the_outputs_exits_3_not_with_a_traceback(tmp_path, capsys) -> None:
    # lr 1e9: every loss finite, the weights too, the outputs inf; the record's NaN made json raise
    from benchmarks import lattice_cause
    from benchmarks.machinery.common import run_cli

    argv = ["--architectures", "ffno", "--seeds", "1", "--N", "16", "--width", "4", "--modes", "2", "--blocks", "1",
            "--nepochs", "1", "--nimgs-train", "1", "--nimgs-test", "1", "--device", "cpu", "--no-progress",
            "--threads", "1", "--lr", "1e9", "--output-dir", str(tmp_path)]
    assert run_cli(lambda _: lattice_cause.main(argv)) == 3
    err = capsys.readouterr().err
    assert "non-finite predictions on the test patterns): lower --lr" in err and "Traceback" not in err


def test_lattice_cause_finds_the_dc_print_in_the_centred_layout_only(tmp_path) -> None:
    from benchmarks import lattice_cause, replot

    assert lattice_cause.main(["--quick", "--architectures", "fno,ffno,plain_fno", "--device", "cpu",
                               "--no-progress", "--threads", "1", "--output-dir", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "lattice_cause.json").read_text())
    cell = {(r["architecture"], r["layout"], r["ablation"]): r["concentration"]["mean"] for r in data["at_init"]}
    # deterministic (seeded weights and data): generators with a local path and skips print the DC pixel at
    # the centre (measured 2.6 fno, 3.8 ffno at these sizes), with or without their spectral paths; real
    # space spreads it (0.94, 0.54); a stack of spectral layers without skips (plain_fno) does not print it
    for architecture in ("fno", "ffno"):
        assert cell[(architecture, "centred", "full")] > 2 > cell[(architecture, "real_space", "full")]
        assert cell[(architecture, "centred", "no spectral path")] > 2
    assert cell[("plain_fno", "centred", "full")] < 1.5
    assert [r["layout"] for r in data["trained"]] == ["centred", "corner", "real_space"]
    assert "| ffno |" in (tmp_path / "lattice_cause.md").read_text()
    if (tmp_path / "lattice_cause.png").exists():  # matplotlib installed
        for name in ("lattice_cause.png", "lattice_cause_frame_error.png"):
            (tmp_path / name).unlink()
        assert replot.main([str(tmp_path / "lattice_cause.json")]) == 0
        for name in ("lattice_cause.png", "lattice_cause_frame_error.png"):
            assert (tmp_path / name).read_bytes().startswith(b"\x89PNG")


def test_reports_count_in_words_that_agree() -> None:
    from benchmarks.machinery.common import markdown_header
    from spectral_init import SpectralGeometry, get_strategy

    env = {"device_name": "CPU", "versions": {"torch": "2"}, "command": "python -m x"}
    assert "CPU · torch 2 · 1 thread" in markdown_header("t", {**env, "torch_threads": 1})[2]
    assert "· 2 threads" in markdown_header("t", {**env, "torch_threads": 2})[2]
    with pytest.raises(ValueError, match=r"got spatial rank 2 with 3 summed branches\. "):
        get_strategy("edge-of-chaos").second_moment(geometry=SpectralGeometry(4, 4, 3, modes=(3, 3)))


def test_a_negative_loss_gets_a_threshold_between_its_ends_and_a_linear_axis() -> None:
    from benchmarks import training_comparison

    runs = [{"step_losses": [-2.0, -2.5, -3.0]}, {"step_losses": [-2.2, -2.4, -2.8]}]
    threshold = training_comparison.default_threshold(runs)
    assert threshold == pytest.approx((-2.1 - 2.9) / 2)  # the medians' midpoint, between them
    assert training_comparison.steps_to_threshold(runs[0]["step_losses"], threshold) == 3
    positive = [{"step_losses": [1.0, 0.1]}, {"step_losses": [1.0, 0.1]}]
    assert training_comparison.default_threshold(positive) == pytest.approx(math.sqrt(0.1))


def test_a_resumed_comparison_equals_an_uninterrupted_one_run_for_run(tmp_path, monkeypatch, capsys) -> None:
    """Interrupted after two of its four runs, then --resume: the two are kept (not trained again), the
    other two run, and every run, the summary and the pictured objects equal an uninterrupted run's."""
    from benchmarks import training_comparison
    from benchmarks.machinery.common import run_cli

    argv = [*TINY_COMPARISON, "--strategies", "legacy,sqrt_in"]
    whole = tmp_path / "whole"
    assert training_comparison.main([*argv, "--output-dir", str(whole)]) == 0
    real_train, trained = training_comparison.train, []

    def which(config):
        return config.model.spectral_init.strategy, config.seed

    monkeypatch.setattr(training_comparison, "train", recording(real_train, trained, which, stop_after=2))
    stopped = tmp_path / "stopped"
    assert run_cli(lambda _: training_comparison.main([*argv, "--output-dir", str(stopped)])) == 130
    assert json.loads((stopped / "training_comparison.json").read_text())["incomplete"] is True
    monkeypatch.setattr(training_comparison, "train", recording(real_train, trained, which))
    assert training_comparison.main([*argv, "--output-dir", str(stopped), "--resume"]) == 0
    assert trained == [("legacy", 0), ("sqrt_in", 0), ("legacy", 1), ("sqrt_in", 1)]  # each run trained once
    resumed, uninterrupted = (json.loads((d / "training_comparison.json").read_text()) for d in (stopped, whole))
    assert "incomplete" not in resumed
    for key in ("runs", "diverged", "summary", "objects"):
        assert without_timings(resumed[key]) == without_timings(uninterrupted[key]), key


@pytest.mark.parametrize("extra, message", [
    ([], "already holds a training_comparison result (training_comparison.json, training_comparison.md"),
    (["--resume"], "is a complete result, not an interrupted one"),
])
def test_a_finished_result_is_never_replaced_without_overwrite(tmp_path, capsys, extra, message) -> None:
    from benchmarks import training_comparison
    from benchmarks.machinery.common import run_cli

    argv = [*TINY_COMPARISON, "--seeds", "1", "--output-dir", str(tmp_path)]
    assert training_comparison.main(argv) == 0
    before = {p.name: p.read_bytes() for p in tmp_path.glob("training_comparison*")}
    capsys.readouterr()
    assert run_cli(lambda _: training_comparison.main([*argv, *extra])) == 2
    assert message in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in tmp_path.glob("training_comparison*")} == before
    assert run_cli(lambda _: training_comparison.main([*argv, "--overwrite"])) == 0
    moved = next(tmp_path.glob("replaced-*"))
    assert {p.name: p.read_bytes() for p in moved.iterdir()} == before  # the earlier result, whole, aside
    assert "moved the earlier training_comparison result" in capsys.readouterr().out


def test_resume_refuses_an_interrupted_run_of_other_options(tmp_path, capsys) -> None:
    from benchmarks.machinery.common import run_cli

    (tmp_path / "training_comparison.json").write_text(json.dumps(
        {"incomplete": True, "arguments": {"seeds": 5}, "runs": []}))
    from benchmarks import training_comparison

    assert run_cli(lambda _: training_comparison.main([*TINY_COMPARISON, "--output-dir", str(tmp_path),
                                                       "--resume"])) == 2
    err = capsys.readouterr().err
    assert "--resume: the interrupted run in" in err and "had other options (" in err and "seeds" in err


def test_a_resumed_gradient_sweep_equals_an_uninterrupted_one(tmp_path, monkeypatch) -> None:
    from benchmarks.machinery.common import run_cli

    argv = ["--strategies", "sqrt_in,legacy", "--seeds", "2", "--jobs", "1", *TINY]
    whole = tmp_path / "whole"
    assert gradient_ratios.main([*argv, "--output-dir", str(whole)]) == 0
    real_measure, measured = gradient_ratios.measure_unit, []

    def key(unit):
        return unit.key

    monkeypatch.setattr(gradient_ratios, "measure_unit", recording(real_measure, measured, key, stop_after=1))
    stopped = tmp_path / "stopped"
    assert run_cli(lambda _: gradient_ratios.main([*argv, "--output-dir", str(stopped)])) == 130
    monkeypatch.setattr(gradient_ratios, "measure_unit", recording(real_measure, measured, key))
    assert gradient_ratios.main([*argv, "--output-dir", str(stopped), "--resume"]) == 0
    assert len(measured) == len(set(measured))  # no unit measured twice
    resumed, uninterrupted = (json.loads((d / "gradient_ratios.json").read_text()) for d in (stopped, whole))
    assert without_timings(resumed["runs"]) == without_timings(uninterrupted["runs"])
    assert without_timings(resumed["summary"]) == without_timings(uninterrupted["summary"])


def test_busy_build_times_each_condition_in_fresh_processes(tmp_path) -> None:
    from benchmarks import busy_build

    argv = ["--rounds", "1", "--spinners", "1", "--width", "4", "--depth", "1", "--modes", "2", "--size", "8",
            "--no-progress", "--output-dir", str(tmp_path)]
    assert busy_build.main(argv) == 0
    record = json.loads((tmp_path / "busy_build.json").read_text())
    assert [r["condition"] for r in record["runs"]] == list(busy_build.CONDITIONS)
    threads = {r["condition"]: r["torch_threads"] for r in record["runs"]}
    assert threads["idle, 1 thread"] == threads["busy, 1 thread"] == 1
    fresh = subprocess.run([sys.executable, "-c", "import torch; print(torch.get_num_threads())"],
                           capture_output=True, text=True, check=True).stdout
    assert threads["busy, torch's default"] == int(fresh)  # what a program that sets nothing gets
    assert record["summary"]["idle, 1 thread"]["median_over_reference"] == 1.0
    assert all(r["seconds"] > 0 for r in record["runs"])
    with pytest.raises(SystemExit, match="--threads has no effect here"):
        busy_build.main([*argv, "--threads", "2"])


def test_scan_memory_tiny(tmp_path) -> None:
    from benchmarks import scan_memory

    assert scan_memory.main(["--patterns", "16", "--N", "16", "--step", "4", "--repeats", "1", "--no-progress",
                             "--output-dir", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "scan_memory.json").read_text())
    assert record["schema"] == scan_memory.SCHEMA and record["config"]["canvas"] == 3 * 4 + 16
    for stage in scan_memory.STAGES:
        measured = record["runs"][0][stage]
        assert measured["seconds"] > 0 and measured["peak_growth_bytes"] >= 0
        assert record["summary"][stage]["held_bytes"] > 0
    assert "| read |" in (tmp_path / "scan_memory.md").read_text()
    with pytest.raises(SystemExit, match="square number"):
        scan_memory.main(["--patterns", "15", "--output-dir", str(tmp_path / "bad")])


@pytest.mark.stress  # a 162 MiB scan, three fresh processes
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the peak resident set is Linux's /proc")
def test_a_10000_pattern_scan_is_read_and_stitched_within_a_gib_beyond_its_data(tmp_path) -> None:
    # before the chunked index and checks: 801 MiB beyond the data to read, 1,871 MiB to stitch
    from benchmarks import scan_memory

    assert scan_memory.main(["--repeats", "1", "--no-progress", "--output-dir", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "scan_memory.json").read_text())["summary"]
    assert all(summary[stage]["beyond_data_bytes_max"] <= scan_memory.GIB for stage in scan_memory.STAGES), summary
