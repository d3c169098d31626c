"""A fake measurer whose timings come from a formula, for millisecond tests of study logic.

It is a fake, named as one: no Keras runs here. The formula mimics the
shape measured on real machines: threads scale for waiting code,
processes pay a larger start-up, parallelism is capped by the queue.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tuner.isolation import TrialStopped
from tuner.results import LoaderConfig, WindowTiming
from tuner.study import Measurement

WINDOW_BATCHES = 50


@dataclass
class FakeMeasurer:
    batch_seconds: float = 0.02
    model_seconds: float = 0.002
    noise: float = 0.0
    fail_when: callable = None
    calls: list = field(default_factory=list)

    def rate(self, config: LoaderConfig) -> float:
        producer = config.effective_parallelism / self.batch_seconds
        return min(producer, 1.0 / self.model_seconds)

    def measure(self, config: LoaderConfig, window_index: int) -> Measurement:
        self.calls.append((config, window_index))
        if self.fail_when and self.fail_when(config):
            raise TrialStopped("failed", "fake hang: timed out")
        wobble = 1.0 + self.noise * ((window_index * 7919 + len(self.calls)) % 5 - 2) / 2
        rate = self.rate(config) * wobble
        fixed = 0.05 * config.workers if config.use_multiprocessing else 0.002 * config.workers
        timing = WindowTiming(WINDOW_BATCHES, fixed + WINDOW_BATCHES / rate, rate, fixed)
        memory = (600 + (40 * config.workers if config.use_multiprocessing else 1)) * 2**20
        return Measurement(timing, memory, 0, timing.epoch_seconds)
