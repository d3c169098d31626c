"""How the race times each setting (``Facts.race_plan``), from screen windows of the fake kind (no Keras)."""

import dataclasses

from tests import builders
from tuner.api import INLINE_FIT_SECONDS, Facts
from tuner.core import KERAS_DEFAULTS, EngineName, LoaderConfig, WindowTiming
from tuner.results import Provenance, TrialResult
from tuner.search.space import SearchSpace


def facts(batches_per_epoch: int, backend: str = "tensorflow") -> Facts:
    machine, model = builders.machine(), builders.model()
    dataset = dataclasses.replace(builders.dataset(), batches_per_epoch=batches_per_epoch)
    space = SearchSpace.for_profiles(machine, dataset, backend=backend)
    provenance = Provenance("0.1.0", "2026-12-03T20:00:00+00:00", "tune-loader my_data.py", "my_data.py", None)
    return Facts(machine, dataset, model, "my_data", "ShardDataset", EngineName.KERAS3, space, 2**30, 0.0,
                 provenance, backend)


def screened(config: LoaderConfig, rate: float) -> TrialResult:
    window = WindowTiming(40, 40 / rate, rate, 0.0)
    return dataclasses.replace(builders.trial(0, config, rate), windows=(window,))


def test_inline_under_tf_data_is_timed_in_whole_epochs_when_one_fits_in_an_inline_fit():
    # Its wait for tf.data's autotuner ends at a tick set by the epoch's length: a part of an epoch would
    # wait for another share of it.
    plan = facts(120).race_plan(KERAS_DEFAULTS, screened(KERAS_DEFAULTS, 80.0))
    assert plan.batches == 120 and plan.epochs >= 3
    # A pool's window stays about 0.7 s of batches, in fits of two epochs.
    threads = LoaderConfig(2, False, 10)
    assert facts(120).race_plan(threads, screened(threads, 95.0)).epochs == 2


def test_inline_keeps_a_window_when_the_epoch_is_longer_than_an_inline_fit_or_does_not_wait():
    long_epoch = int(INLINE_FIT_SECONDS * 80.0) + 100
    plan = facts(long_epoch).race_plan(KERAS_DEFAULTS, screened(KERAS_DEFAULTS, 80.0))
    assert plan.batches < long_epoch and plan.epochs == 2
    jax = facts(120, backend="jax").race_plan(KERAS_DEFAULTS, screened(KERAS_DEFAULTS, 80.0))
    assert jax.batches < 120  # no tf.data, no autotuner wait
