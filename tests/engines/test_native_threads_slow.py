"""The fourth knob inside real Keras 3 workers: every batch, in threads or forked processes, is made under
the limit, and the training process gets its pools back after the window. Marked slow."""

from __future__ import annotations

import os

import pytest

pytestmark = pytest.mark.slow


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="BLAS starts one thread on a single core")
@pytest.mark.parametrize("processes", [False, True])
def test_each_batch_is_made_under_the_limit_in_every_kind_of_worker(tmp_path, processes):
    import keras
    import numpy as np
    from threadpoolctl import threadpool_info

    from tuner.engines.keras3 import Keras3Engine
    from tuner.core import LoaderConfig

    log = tmp_path / "threads.log"

    def blas_threads() -> int:
        return max(lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas")

    class Recorder(keras.utils.PyDataset):
        def __len__(self):
            return 12

        def __getitem__(self, index):
            with open(log, "a") as out:
                out.write(f"{os.getpid()} {blas_threads()}\n")
            return np.ones((4, 3), dtype="float32") * index, np.zeros(4, dtype="float32")

    engine, default = Keras3Engine(), blas_threads()
    model = engine.build_default_model((np.ones((4, 3), "float32"), np.zeros(4, "float32")))[0]
    seen = {}
    for limit in (1, None):
        log.write_text("")
        engine.run_window(model, Recorder(), LoaderConfig(2, processes, 10, native_threads=limit), 12, 0)
        records = [line.split() for line in log.read_text().splitlines()]
        seen[limit] = {int(threads) for _, threads in records}
        if processes:
            assert {int(pid) for pid, _ in records} - {os.getpid()}, "no batch was made in a worker process"
        assert blas_threads() == default
    assert seen == {1: {1}, None: {default}}
