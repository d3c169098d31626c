"""The broad candidate set the screen times (tuner/search/candidates.py)."""

import dataclasses

from tests import builders
from tuner.core import KERAS_DEFAULTS, LoaderConfig, PoolKind
from tuner.engines.knobs import worker_ladder
from tuner.search.candidates import TRIM_SHARE, broad_grid, candidates
from tuner.search.space import SearchSpace


def test_workers_climb_a_log_ladder_to_the_space_s_most():
    assert worker_ladder(2, 32) == [2, 4, 8, 16, 32]
    assert worker_ladder(1, 12) == [1, 2, 4, 8, 12]
    assert worker_ladder(2, 2) == [2]


def test_the_grid_spans_both_pool_kinds_with_the_default_queue_and_twice_the_workers():
    grid = broad_grid(SearchSpace(max_workers=32, allow_processes=True))
    assert grid[0] == KERAS_DEFAULTS
    threads = {(c.workers, c.max_queue_size) for c in grid if c.parallel and not c.use_multiprocessing}
    assert threads == {(2, 10), (4, 10), (8, 10), (8, 16), (16, 10), (16, 32), (32, 10), (32, 64)}
    processes = {(c.workers, c.max_queue_size) for c in grid if c.use_multiprocessing}
    assert (1, 10) in processes and (32, 64) in processes
    assert len({c.equivalence_key() for c in grid}) == len(grid)
    # Where processes are not allowed, none are listed; a native-thread limit doubles every setting.
    assert not any(c.use_multiprocessing for c in broad_grid(SearchSpace(max_workers=8, allow_processes=False)))
    native = broad_grid(SearchSpace(max_workers=8, allow_processes=False, native_threads=(1,)))
    assert len(native) == 2 * len(broad_grid(SearchSpace(max_workers=8, allow_processes=False)))
    # Threads the data cannot run: one stands for all, and is recorded infeasible.
    unsafe = SearchSpace(max_workers=8, allow_processes=False, threads_infeasible="not thread-safe")
    assert broad_grid(unsafe) == [KERAS_DEFAULTS, LoaderConfig(2, False, 10)]


def test_the_defaults_come_first_then_the_model_s_favourites_and_far_below_its_best_is_dropped():
    space = SearchSpace(max_workers=8, allow_processes=True)
    rule = LoaderConfig(2, True, 10)

    def model(config):  # a model that likes threads, thinks little of processes, and least of 1 process
        return {True: 50.0, False: 100.0}[config.use_multiprocessing] * (0.2 if config.workers == 1 else 1.0) * (
            config.effective_parallelism ** 0.1)

    listed = candidates(space, rule, model, limit=50)
    assert listed[0] == ("keras defaults", KERAS_DEFAULTS)
    configs = [config for _, config in listed]
    assert ("rule of thumb", rule) in listed
    assert LoaderConfig(1, True, 10) not in configs  # 0.2 x 50 is under a third of the best guess
    assert all(model(c) >= TRIM_SHARE * max(map(model, configs)) or c == rule for c in configs[1:])
    # The favourite of each family leads (here the best thread pool, then the best process pool), then the
    # rest in the model's order.
    heads, rest = configs[1:3], configs[3:]
    assert [c.use_multiprocessing for c in heads] == [False, True]
    assert [model(c) for c in heads] == [max(model(c) for c in configs if c.use_multiprocessing == m)
                                         for m in (False, True)]
    assert [model(c) for c in rest] == sorted((model(c) for c in rest), reverse=True)
    assert len(candidates(space, rule, model, limit=3)) == 3  # --trials caps the screen


def test_native_thread_limits_ride_along_with_their_pool():
    space = SearchSpace.for_profiles(builders.machine(2), builders.dataset(native=builders.native_pools()))
    configs = [config for _, config in candidates(space, LoaderConfig(2, False, 10), lambda c: 1.0, limit=100)]
    assert dataclasses.replace(KERAS_DEFAULTS, native_threads=1) in configs
    assert LoaderConfig(2, True, 10, native_threads=1) in configs and LoaderConfig(2, True, 10) in configs


def test_a_family_the_model_ranks_last_is_still_screened_early():
    """The whitened_windows miss: BLAS work read as GIL-bound put every thread pool last."""
    space = SearchSpace(max_workers=8, allow_processes=True, native_threads=(1,))

    def model(config):
        return 10.0 if config.kind == PoolKind.THREADS else 20.0 + config.workers

    configs = [config for _, config in candidates(space, LoaderConfig(2, True, 10), model, limit=50)]
    families = {(c.kind, c.native_threads) for c in configs[1:]}
    heads = configs[1:1 + len(families)]
    assert {(c.kind, c.native_threads) for c in heads} == families
    assert LoaderConfig(2, False, 10) in heads and LoaderConfig(2, False, 10, native_threads=1) in heads
