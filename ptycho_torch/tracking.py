"""Experiment tracking with MLflow, only when asked: a finished run's configuration as parameters, its
losses and scores as metrics (a series with its steps where there is one), its files as artifacts.

Asked by a command's ``--tracking-uri URI`` or by the ``MLFLOW_TRACKING_URI`` environment variable; a
local store needs no server (``--tracking-uri file:./mlruns``, or a plain path). MLflow is the optional
extra ``tracking`` (``pip install 'spectral-init[tracking]'``, mlflow-skinny), imported only here and
only when a run is logged. Asked by the flag without MLflow installed, a command exits 2 before any work;
asked by the environment alone, it says so in one line and runs without logging. MLflow keeps its file
store in maintenance mode behind ``MLFLOW_ALLOW_FILE_STORE``, which is set for a file store here. The run
is logged once it has finished and its own files are written: a tracking server that fails then costs a
warning, never the result.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["ENV_URI", "INSTALL_HINT", "Tracking", "flat_metrics", "flat_params", "log_run", "tracking_from"]

ENV_URI = "MLFLOW_TRACKING_URI"
INSTALL_HINT = "pip install 'spectral-init[tracking]' (MLflow)"
MAX_PARAM_CHARS = 6000  # MLflow's limit on a parameter's value; the whole config also goes as config.json
_UNSAFE = re.compile(r"[^A-Za-z0-9_\-. /]")  # what MLflow allows in a key


@dataclass(frozen=True)
class Tracking:
    """Where a finished run is logged: the store's URI, the experiment and the run's name."""

    uri: str
    experiment: str
    run_name: str | None = None


def mlflow_installed() -> bool:
    return importlib.util.find_spec("mlflow") is not None


def tracking_from(flag_uri: str | None, experiment: str, run_name: str | None = None) -> Tracking | None:
    """The tracking a command was asked for: ``flag_uri``, else ``MLFLOW_TRACKING_URI``; None when neither.
    A flag without MLflow raises ``ValueError`` (the command's usage error); the environment alone without
    MLflow prints a note and gives None."""
    uri = flag_uri or os.environ.get(ENV_URI) or None
    if uri is None:
        return None
    if not mlflow_installed():
        if flag_uri:
            raise ValueError(f"--tracking-uri needs MLflow, which is not installed: {INSTALL_HINT}")
        print(f"note: {ENV_URI} is set but MLflow is not installed: this run is not logged ({INSTALL_HINT})",
              file=sys.stderr)
        return None
    return Tracking(uri, experiment, run_name)


def _key(text: str) -> str:
    return _UNSAFE.sub("_", text)[:250]


def flat_params(tree: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """A nested mapping as MLflow parameters: dotted keys (``model.spectral_init.strategy``), lists and
    None as JSON text; values beyond MLflow's length limit left out."""
    out: dict[str, str] = {}
    for name, value in tree.items():
        key = f"{prefix}{name}"
        if isinstance(value, Mapping):
            out.update(flat_params(value, f"{key}."))
            continue
        text = value if isinstance(value, str) else json.dumps(value)
        if len(text) <= MAX_PARAM_CHARS:
            out[_key(key)] = text
    return out


def flat_metrics(tree: Any, prefix: str = "") -> dict[str, float]:
    """The finite numbers of a nested mapping (and of its lists, by index) as MLflow metrics with dotted
    keys; booleans, text and None are left out."""
    out: dict[str, float] = {}
    items: Iterable[tuple[Any, Any]] = (tree.items() if isinstance(tree, Mapping)
                                        else enumerate(tree) if isinstance(tree, list) else ())
    for name, value in items:
        key = f"{prefix}{name}"
        if isinstance(value, bool) or value is None or isinstance(value, str):
            continue
        if isinstance(value, int | float):
            if math.isfinite(value):
                out[_key(key)] = float(value)
        else:
            out.update(flat_metrics(value, f"{key}."))
    return out


def log_run(tracking: Tracking, params: Mapping[str, str], metrics: Mapping[str, float] | None = None,
            series: Mapping[str, Sequence[float]] | None = None,
            artifacts: Iterable[Path] = ()) -> str | None:
    """One MLflow run of ``params``, ``metrics``, ``series`` (each value logged at its index as the step)
    and the ``artifacts`` that exist; its run id, or None (with a warning) when the store failed."""
    import mlflow

    logging.getLogger("mlflow").setLevel(logging.WARNING)  # not its INFO line for each new experiment
    if tracking.uri.startswith("file:") or "://" not in tracking.uri:
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    try:
        mlflow.set_tracking_uri(tracking.uri)
        mlflow.set_experiment(tracking.experiment)
        with mlflow.start_run(run_name=tracking.run_name) as run:
            items = list(params.items())
            for start in range(0, len(items), 100):  # MLflow takes at most 100 parameters a call
                mlflow.log_params(dict(items[start:start + 100]))
            values = list((metrics or {}).items())
            for start in range(0, len(values), 1000):  # and at most 1,000 metrics
                mlflow.log_metrics(dict(values[start:start + 1000]))
            for name, values in (series or {}).items():
                for step, value in enumerate(values):
                    if value is not None and math.isfinite(value):
                        mlflow.log_metric(_key(name), float(value), step=step)
            for path in artifacts:
                if path.is_file():
                    mlflow.log_artifact(str(path))
            return run.info.run_id
    except Exception as exc:  # noqa: BLE001 - the run's own files are written; the store's failure is a note
        print(f"warning: the run was not logged to {tracking.uri}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return None
