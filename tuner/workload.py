"""The real measurer: real ``fit`` epochs in an isolated, restartable runner."""

from __future__ import annotations

import time
from collections.abc import Callable

from probes.profiles import DatasetProfile, ModelProfile
from tuner.epoch_model import with_fixed_cost
from tuner.errors import TuneLoaderError
from tuner.isolation import RunnerProcess, TrialStopped
from tuner.runner import FileSource, PickledSource
from tuner.results import LoaderConfig
from tuner.study import Measurement

STARTUP_TIMEOUT_SECONDS = 300.0
MIN_WINDOW_BATCHES = 32
PROBE_TIMEOUT_SECONDS = 300.0


class RunnerMeasurer:
    """Owns the runner: loads the user's workload once, restarts it after a kill.

    A restart (import, model build, graph tracing: several seconds) happens
    before the next window's clock starts, so it never lands in a timing.
    """

    def __init__(self, source: FileSource | PickledSource, *, memory_budget_bytes: int | None):
        self.source = source
        self.runner = RunnerProcess(memory_budget_bytes)
        self.window_size: Callable[[LoaderConfig], int] = lambda config: MIN_WINDOW_BATCHES
        self.window_timeout: Callable[[int], float] = lambda batches: STARTUP_TIMEOUT_SECONDS
        self.fixed_cost: Callable[[LoaderConfig], tuple[float, float]] | None = None
        self.epoch_batches: int | None = None
        self.loaded: dict = {}

    def start(self) -> None:
        self.runner.start()
        try:
            self.loaded, _ = self.runner.call("load", self.source, timeout=STARTUP_TIMEOUT_SECONDS)
            self.runner.call("prepare", timeout=STARTUP_TIMEOUT_SECONDS)
        except TrialStopped as stop:
            raise TuneLoaderError(f"Loading the dataset and model and running a first epoch failed: {stop.reason}") from stop

    def probe(self, usable_cores: int) -> tuple[DatasetProfile, ModelProfile]:
        try:
            profiles, _ = self.runner.call("probe", usable_cores, timeout=PROBE_TIMEOUT_SECONDS)
        except TrialStopped as stop:
            raise TuneLoaderError(f"Probing the data code and the model failed: {stop.reason}") from stop
        return profiles

    def measure(self, config: LoaderConfig, window_index: int) -> Measurement:
        if self.runner.process is None:
            self.start()
        batches = self.window_size(config)
        offset = (window_index * batches) % self.epoch_batches if self.epoch_batches else 0
        began = time.perf_counter()
        (timing, leftovers), peak = self.runner.call(
            "window", config, batches, offset, timeout=self.window_timeout(batches)
        )
        if self.fixed_cost is not None:
            timing = with_fixed_cost(timing, *self.fixed_cost(config))
        return Measurement(timing, peak, leftovers, time.perf_counter() - began)

    def whole_epochs(self, config: LoaderConfig) -> tuple[float, float]:
        """Real whole epochs under ``config``, the yardstick the epoch model is checked against: the seconds
        of a one-epoch ``fit`` call and of one epoch inside a longer call."""
        seconds, _ = self.runner.call("epochs", config, timeout=STARTUP_TIMEOUT_SECONDS)
        return seconds

    def close(self) -> None:
        self.runner.close()
