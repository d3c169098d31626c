"""What ``tuner.fit`` needs of an engine beyond timing windows: a setting put on the user's own data for one
``fit`` call (a ``Feeder``), and one callback list that every per-epoch ``fit`` shares (``HeldBounds``), so
that the user's callbacks see one training.

Keras's ``fit`` takes a ``CallbackList`` as it is: it adds no ``History`` and no progress bar of its own, and
``fit`` returns ``model.history``, which the list set to its own ``History``. So one list, built once with the
whole training's ``epochs`` and ``steps``, keeps one ``History`` and one progress bar across every call.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from tuner.core import LoaderConfig


class Feeder(Protocol):
    """The user's data under one setting after another; ``user_setting`` is what it was built with (None
    where the data holds no knobs: tf-keras takes them as ``fit`` arguments)."""

    user_setting: LoaderConfig | None

    def fit_input(self, config: LoaderConfig) -> tuple[Any, dict[str, Any]]:
        """What ``fit`` trains on under ``config``, and the ``fit`` arguments that set it."""

    def runs(self, config: LoaderConfig) -> bool:
        """Whether this feeder can train under ``config``."""

    def close(self) -> None:
        """Leaves the user's data as it was given (its knobs back, any pool this started ended)."""


class HeldBounds:
    """A ``CallbackList`` mixin: ``fit``'s ``on_train_begin`` passes in the first ``fit`` only, where one
    ``fit`` calls it (the model is built by then, and ``BackupAndRestore`` restores there), and every
    ``fit``'s ``on_train_end`` is held until ``finish``: the last epoch's, once."""

    _began = False
    last_epoch: int | None = None  # the last epoch that ended, and its logs: what on_train_end is given
    last_logs: dict | None = None
    _validation: float | None = None  # seconds of validation since the last take_validation_seconds
    _test_began = 0.0

    def on_test_begin(self, logs=None):
        self._test_began = time.perf_counter()
        super().on_test_begin(logs)

    def on_test_end(self, logs=None):
        super().on_test_end(logs)
        self._validation = (self._validation or 0.0) + time.perf_counter() - self._test_began

    def take_validation_seconds(self) -> float | None:
        """What validation took since the last call (None: none ran): a validation pass's cost per epoch."""
        seconds, self._validation = self._validation, None
        return seconds

    def on_epoch_end(self, epoch, logs=None):
        self.last_epoch, self.last_logs = epoch, logs
        super().on_epoch_end(epoch, logs)

    def on_train_begin(self, logs=None):
        if not self._began:
            self._began = True
            super().on_train_begin(logs)

    def on_train_end(self, logs=None):
        """Held: ``finish`` passes it on once training is over."""

    def finish(self) -> None:
        if self._began:
            super().on_train_end(self.last_logs)


def keras_knobs_only(config: LoaderConfig) -> bool:
    """Keras's three knobs, as the user's data or fit takes them: no tf.data pipeline, no native-thread limit
    (it would need a wrapper around the user's batch code), no DataLoader around a PyDataset."""
    return not config.is_tf_data and config.native_threads is None and not config.persistent_workers


class KnobsSet:
    """A feeder for data that holds its own knobs as attributes (a Keras 3 ``PyDataset``): each setting is
    set on it through ``apply``, and the user's are put back at the end."""

    def __init__(self, dataset, user_setting: LoaderConfig, apply):
        self.dataset, self.user_setting, self._apply = dataset, user_setting, apply

    runs = staticmethod(keras_knobs_only)

    def fit_input(self, config: LoaderConfig) -> tuple[Any, dict[str, Any]]:
        self._apply(self.dataset, config)
        return self.dataset, {}

    def close(self) -> None:
        self._apply(self.dataset, self.user_setting)


class FitArguments:
    """A feeder for tf-keras, whose ``fit`` takes the knobs as arguments and whose data holds none."""

    user_setting = None
    runs = staticmethod(keras_knobs_only)

    def __init__(self, dataset):
        self.dataset = dataset

    def fit_input(self, config: LoaderConfig) -> tuple[Any, dict[str, Any]]:
        return self.dataset, {"workers": config.workers, "use_multiprocessing": config.use_multiprocessing,
                              "max_queue_size": config.max_queue_size}

    def close(self) -> None:
        pass
