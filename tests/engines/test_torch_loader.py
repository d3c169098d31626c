"""The torch DataLoader engine's data side, without training: which engine a DataLoader gets, that a window
makes exactly the user's batches, and the loaders it refuses."""

from __future__ import annotations

import multiprocessing
import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch.utils.data import DataLoader, Dataset, IterableDataset  # noqa: E402

from tuner import engines  # noqa: E402
from tuner.core import EngineName, LoaderConfig  # noqa: E402
from tuner.errors import TuneLoaderError  # noqa: E402


class Squares(Dataset):
    def __len__(self):
        return 10

    def __getitem__(self, index):
        return torch.tensor([float(index)]), torch.tensor(float(index) ** 2)


class BuildsItsOwn(Squares):
    def make_dataloader(self, **knobs):
        return DataLoader(self, batch_size=4, drop_last=True, **knobs)


class Stream(IterableDataset):
    def __iter__(self):
        return iter([torch.zeros(1)])


def test_a_dataloader_or_a_dataset_that_builds_one_gets_the_dataloader_engine_and_no_other():
    assert engines.choose(DataLoader(Squares(), batch_size=3), None) == EngineName.TORCH_DATALOADER
    assert engines.choose(BuildsItsOwn(), None) == EngineName.TORCH_DATALOADER
    assert not engines.is_torch_loader(Squares())  # a bare Dataset says nothing about batches
    with pytest.raises(TuneLoaderError, match="only the torch-dataloader engine times.*Received: engine='keras3'"):
        engines.choose(DataLoader(Squares()), "keras3")


@pytest.mark.parametrize("user, batches", [(DataLoader(Squares(), batch_size=3), 4), (BuildsItsOwn(), 2)])
def test_a_window_makes_the_users_batches_in_order_from_its_offset(user, batches):
    from tuner.engines.torch_loader import TorchLoaderEngine

    engine = TorchLoaderEngine()
    source = engine.adopt(user)
    template = user if isinstance(user, DataLoader) else user.make_dataloader()
    expected = [tuple(t.numpy() for t in batch) for batch in template]
    assert engine.num_batches(source) == batches == len(expected)
    window = list(source.loader(LoaderConfig(), batches=3, offset=1))
    assert len(window) == 3
    for got, index in zip(window, [1 % batches, 2 % batches, 3 % batches]):  # a window wraps at the epoch's end
        np.testing.assert_array_equal(got[0].numpy(), expected[index][0])
    first = engine.batch(source, 0)
    assert isinstance(first[0], np.ndarray)
    np.testing.assert_array_equal(first[1], expected[0][1])


def test_a_window_loader_sets_the_knobs_it_was_given():
    from tuner.engines.torch_loader import TorchLoaderEngine

    source = TorchLoaderEngine().adopt(DataLoader(Squares(), batch_size=2))
    loader = source.loader(LoaderConfig(2, True, 6, persistent_workers=True), batches=5, offset=0)
    assert (loader.num_workers, loader.prefetch_factor, loader.persistent_workers) == (2, 3, True)
    # The start method the tune runs under, passed explicitly (the DataLoader's own default is None).
    assert loader.multiprocessing_context.get_start_method() == multiprocessing.get_start_method()
    assert source.loader(LoaderConfig(), batches=5, offset=0).num_workers == 0


def test_an_iterable_dataset_is_refused_with_the_fix():
    from tuner.engines.torch_loader import TorchLoaderEngine

    with pytest.raises(TuneLoaderError, match="Stream is an IterableDataset.*Fix: give a map-style Dataset"):
        TorchLoaderEngine().adopt(DataLoader(Stream()))


def test_a_file_with_only_a_module_level_make_dataloader_gets_the_dataloader_engine(tmp_path):
    from tuner.userfile import find_dataset, import_user_file

    path = tmp_path / "loader_only.py"
    path.write_text("from torch.utils.data import DataLoader\nfrom tests.engines.test_torch_loader import Squares\n\n"
                    "def make_dataloader(**knobs):\n    return DataLoader(Squares(), batch_size=5, **knobs)\n")
    found = find_dataset(import_user_file(path), None, is_dataset=engines.is_dataset,
                         is_dataset_class=engines.is_dataset_class)
    loader = found.build()
    assert found.name == "make_dataloader" and loader.num_workers == 0 and loader.batch_size == 5
    assert engines.choose(loader, None) == EngineName.TORCH_DATALOADER
