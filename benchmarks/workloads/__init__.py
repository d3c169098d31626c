"""The workloads the in-process benchmarks (plateau.py, allocator.py, inline_stall.py) time, and a trial
process for one of them with windows sized the way tune-loader sizes them."""

from __future__ import annotations

import time
from pathlib import Path

from probes import probe_machine
from tuner.api import Facts, configure_measurer, provenance_of
from tuner.core import LoaderConfig
from tuner.search.space import SearchSpace
from tuner.trial.parent import TrialMeasurer
from tuner.trial.protocol import FileSource, Window

ROOT = Path(__file__).resolve().parents[2]
WORKLOADS = {
    "io_bound": ROOT / "examples" / "io_bound.py",
    "gil_bound": ROOT / "examples" / "gil_bound.py",
    "numpy_augment": ROOT / "examples" / "numpy_augment.py",
    "model_bound": ROOT / "benchmarks" / "workloads" / "model_bound.py",
    "legacy_sequence": ROOT / "examples" / "legacy_sequence.py",
    "legacy_generator": ROOT / "examples" / "legacy_generator.py",
}
KERAS3_WORKLOADS = ("model_bound", "numpy_augment", "gil_bound", "io_bound")
WINDOW_TIMEOUT_SECONDS = 300.0


def keras3_workload(name: str):
    """A Keras 3 workload's module and model, in this process: the file's ``make_model`` when it has one,
    else the small model tune-loader trains by default."""
    from tuner.engines.common import standardize
    from tuner.engines.keras3 import Keras3Engine
    from tuner.userfile import import_user_file

    module = import_user_file(WORKLOADS[name])
    if hasattr(module, "make_model"):
        return module, module.make_model()
    model, _ = Keras3Engine().build_default_model(standardize(module.make_dataset()[0]))
    return module, model


class Session:
    """A trial process for one workload, its windows sized the way tune-loader sizes them."""

    def __init__(self, path: Path):
        machine = probe_machine()
        source = FileSource(str(path))
        self.measurer = TrialMeasurer(source, memory_budget_bytes=None)
        self.measurer.start()
        dataset, model = self.measurer.probe(machine.usable_cores)
        loaded = self.measurer.loaded
        self.facts = Facts(machine, dataset, model, loaded.dataset_name, loaded.class_name, loaded.engine,
                           SearchSpace.for_profiles(machine, dataset, backend=loaded.backend), 0, time.monotonic(),
                           provenance_of(source), loaded.backend)
        configure_measurer(self.measurer, self.facts, WINDOW_TIMEOUT_SECONDS)
        self.epoch = self.facts.epoch_batches

    def whole_epoch(self, config: LoaderConfig) -> float:
        """Batches per second over one real epoch of the dataset's length, from its first batch: the raw
        epoch, not a short window read through the epoch model. Only the cost after ``on_epoch_end``
        (tf-keras's Sequence stall) comes from the probes."""
        (timing, _), _ = self.measurer.process.call(Window(config, self.epoch, 0), timeout=WINDOW_TIMEOUT_SECONDS)
        _, after_epoch = self.facts.fixed_cost(config)
        return self.epoch / (timing.epoch_seconds + after_epoch)

    def close(self) -> None:
        self.measurer.close()
