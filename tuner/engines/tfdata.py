"""tf.data over the user's per-batch function: the alternative both Keras engines measure.

``map(num_parallel_calls=AUTOTUNE)`` and ``prefetch(AUTOTUNE)`` over
``get_item(i)`` through ``tf.py_function``: exactly what the report's
tf.data code tells the user to write.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf

from tuner.core import LoaderConfig, WindowTiming
from tuner.engines import KerasEngine
from tuner.engines.common import standardize
from tuner.measure import heartbeat


class TfDataEngine:
    """Times the tf.data pipeline under the host engine's ``fit`` (implements ``engines.Engine``)."""

    def __init__(self, host: KerasEngine):
        self.host = host

    def run_window(self, model, dataset, config: LoaderConfig, batches: int, offset: int,
                   epochs: int = 1) -> WindowTiming:
        """``config`` is ``LoaderConfig.tf_data()``: tf.data's autotuner sets the parallelism itself."""
        def get_item(index: int):
            with heartbeat.batch(index):
                return self.host.batch(dataset, index)

        data = pipeline(get_item, self.host.num_batches(dataset), batches, offset)
        return self.host.fit_epochs(model, data, config, epochs)


def pipeline(get_item: Callable[[int], Any], length: int | None, batches: int, offset: int) -> tf.data.Dataset:
    def at(position: int):
        return standardize(get_item(position % length if length else position))

    example = at(offset)
    flat = tf.nest.flatten(example)
    specs = [tf.TensorSpec(np.asarray(part).shape, tf.as_dtype(np.asarray(part).dtype)) for part in flat]

    def load(index):
        return [np.asarray(part) for part in tf.nest.flatten(at(int(index)))]

    def load_tensor(index):
        parts = tf.py_function(load, [index], Tout=[spec.dtype for spec in specs])
        for part, spec in zip(parts, specs):
            part.set_shape(spec.shape)
        return tf.nest.pack_sequence_as(example, parts)

    return (
        tf.data.Dataset.range(offset, offset + batches)
        .map(load_tensor, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )
