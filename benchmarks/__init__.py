"""The benchmark studies, ``python -m benchmarks.NAME``, in folders by the question they answer:

- ``init_and_signal/``: what each init does to the signal and the gradient through depth, and the E|w|²
  each layer adapter draws (``gradient_ratios``, ``signal_propagation``, ``adapter_init``, ``neuralop_init``);
- ``operator_learning/``: which init trains best on standard operator tasks, and whether the learning rate
  transfers across kept modes (``operator_tasks``, ``lr_transfer``, with their models, tasks and training);
- ``ptychography/``: the physics-informed reconstruction per init, the scan-lattice artifact's cause, a large
  scan's memory, a measured scan against CDTools, the iterative anchor's convergence, the learned
  reconstruction against a converged solver and what improves it (``training_comparison``,
  ``lattice_cause``, ``scan_memory``, ``measured_scan``, ``iterative_convergence``, ``learned_vs_iterative``,
  ``generator_variants``);
- ``speed/``: layer, training-step, inference and model-building times (``spectral_conv_speed``,
  ``generator_step``, ``generator_inference``, ``busy_build``);

and ``machinery/``, what they share (records, resuming, workers, statistics, figures), with ``replot``
beside them. The folders are not subpackages but parts of this package's search path: a study's module
name is ``benchmarks.NAME`` wherever its file sits, so the commands, records and imports that name it
are the same as when the folder was flat.
"""

from pathlib import Path

QUESTIONS = ("init_and_signal", "operator_learning", "ptychography", "speed")

__path__ = [*__path__, *(str(Path(__file__).parent / question) for question in QUESTIONS)]
