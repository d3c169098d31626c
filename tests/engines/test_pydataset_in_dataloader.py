"""A PyDataset under the torch backend can also be timed in a torch DataLoader whose workers persist: real
Keras 3 training over it, with the batches the DataLoader's processes make."""

from __future__ import annotations

import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
keras = pytest.importorskip("keras")

from tuner.core import LoaderConfig  # noqa: E402
from tuner.engines.keras3 import Keras3Engine  # noqa: E402

PERSISTENT = LoaderConfig(2, True, 4, persistent_workers=True)


class Indexed(keras.utils.PyDataset):
    """Batch i holds i in x, and y says which process made it."""

    def __len__(self):
        return 6

    def __getitem__(self, index):
        return np.full((4, 2), index, "float32"), np.full((4, 1), os.getpid(), "float32")


def test_a_window_in_the_dataloader_gives_batch_i_from_worker_processes_as_tensors():
    from tuner.engines.torch_data import PyDatasetSource

    batches = list(PyDatasetSource(Indexed()).loader(PERSISTENT, batches=4, offset=4))
    assert [int(x[0, 0]) for x, _ in batches] == [4, 5, 0, 1]  # a window wraps at the epoch's end
    assert all(isinstance(x, torch.Tensor) for x, _ in batches)
    assert os.getpid() not in {int(y[0, 0]) for _, y in batches}


def test_keras_trains_a_pydataset_through_a_persistent_dataloader_for_every_epoch_of_one_fit():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    timing = Keras3Engine().run_window(model, Indexed(), PERSISTENT, batches=6, offset=0, epochs=3)
    assert timing.batches == 6 and timing.timed_epochs >= 2 and timing.epoch_seconds > 0
