import dataclasses

import optuna

from tests import builders
from tuner.core import KERAS_DEFAULTS, LoaderConfig
from tuner.engines.knobs import DATALOADER_KNOBS, KERAS_KNOBS
from tuner.search.candidates import candidates
from tuner.search.space import SearchSpace, rule_of_thumb


def test_rule_of_thumb_uses_processes_for_gil_bound_code():
    gil_bound = builders.dataset(cpu_fraction=0.95, thread_speedup=1.02)
    assert rule_of_thumb(builders.machine(4), gil_bound) == LoaderConfig(4, True, 10)


def test_rule_of_thumb_uses_threads_for_waiting_code():
    assert rule_of_thumb(builders.machine(4), builders.dataset()) == LoaderConfig(4, False, 10)


def test_rule_of_thumb_never_uses_processes_for_an_unpicklable_dataset():
    gil_bound = builders.dataset(cpu_fraction=0.95, thread_speedup=1.0, picklable=False)
    assert rule_of_thumb(builders.machine(4), gil_bound).use_multiprocessing is False


SPACE = SearchSpace(max_workers=16, allow_processes=True)


def test_a_rule_of_thumb_the_space_excludes_is_not_screened():
    gil_bound = builders.dataset(cpu_fraction=0.95, thread_speedup=1.0, picklable=True)
    rule = rule_of_thumb(builders.machine(2), gil_bound)
    assert rule.use_multiprocessing
    under_jax = SearchSpace.for_profiles(builders.machine(2), gil_bound, backend="jax")
    listed = [config for _, config in candidates(under_jax, rule, lambda c: 1.0, limit=50)]
    assert rule not in listed and not any(config.use_multiprocessing for config in listed)


def test_single_core_rule_of_thumb_equal_to_defaults_is_screened_once():
    rule = rule_of_thumb(builders.machine(1), builders.dataset())
    listed = candidates(SearchSpace(max_workers=1, allow_processes=False), rule, lambda c: 1.0, limit=50)
    assert listed == [("keras defaults", KERAS_DEFAULTS)]


def test_space_bounds_follow_usable_cores_except_for_waiting_code():
    space = SearchSpace.for_profiles(builders.machine(3), builders.dataset(cpu_fraction=0.9))
    assert space.max_workers == 12
    # Waiting code needs its throughput times its latency under load in flight, far more than 4 per core.
    assert SearchSpace.for_profiles(builders.machine(3), builders.dataset(cpu_fraction=0.05)).max_workers == 48
    # A plain generator's threads take turns in next(): more of them cannot help.
    generator = builders.dataset(cpu_fraction=0.05, kind="generator")
    assert SearchSpace.for_profiles(builders.machine(3), generator).max_workers == 12
    config = space.suggest(optuna.trial.FixedTrial({"workers": 12, "use_multiprocessing": True, "max_queue_size": 64}))
    assert config == LoaderConfig(12, True, 64)


def test_effective_parallelism_is_capped_by_the_queue():
    assert LoaderConfig(8, False, 2).effective_parallelism == 3
    assert LoaderConfig(1, False, 64).effective_parallelism == 1
    assert LoaderConfig(1, True, 10).parallel
    assert LoaderConfig(1, False, 5).equivalence_key() == KERAS_DEFAULTS.equivalence_key()


def test_under_spawn_a_generator_gets_no_processes_and_an_unpicklable_dataset_is_told_why():
    spawn = dataclasses.replace(builders.machine(), start_method="spawn")
    generator = SearchSpace.for_profiles(spawn, builders.dataset(kind="generator"), allow_duplicated_data=True)
    assert not generator.allow_processes and "started by spawn" in generator.processes_excluded
    locked = builders.dataset(picklable=False, pickle_error="cannot pickle '_thread.lock' object")
    space = SearchSpace.for_profiles(spawn, locked)
    assert not space.allow_processes and "under spawn every worker is sent it by pickle" in space.processes_excluded


def test_under_fork_an_unpicklable_dataset_runs_in_processes_and_under_forkserver_it_does_not():
    """Keras's pool hands the dataset over as initargs and a DataLoader's workers are forked with it: a fork
    inherits it either way, without pickling. forkserver pickles it to every worker."""
    locked = builders.dataset(picklable=False, pickle_error="cannot pickle 'sqlite3.Connection' object")
    fork = dataclasses.replace(builders.machine(), start_method="fork")
    for knobs in (DATALOADER_KNOBS, KERAS_KNOBS):
        space = SearchSpace.for_profiles(fork, locked, knobs=knobs)
        assert space.allow_processes and not space.processes_excluded
    forkserver = dataclasses.replace(fork, start_method="forkserver")
    for knobs in (DATALOADER_KNOBS, KERAS_KNOBS):
        space = SearchSpace.for_profiles(forkserver, locked, knobs=knobs)
        assert not space.allow_processes and "sqlite3.Connection" in space.processes_excluded


def test_fresh_process_pools_are_not_searched_when_a_worker_s_start_outweighs_a_whole_inline_epoch():
    from probes.profiles import StartCost

    forkserver = dataclasses.replace(builders.machine(), start_method="forkserver")
    # 200 batches of 20 ms data and a 2 ms step: an inline epoch of about 4.4 s
    def started(keras_seconds):
        cost = StartCost("forkserver", worker_seconds=0.9, fork_worker_seconds=0.03, keras_seconds=keras_seconds,
                         pickle_seconds=0.0, pickle_bytes=100, import_seconds=0.0)
        return dataclasses.replace(builders.dataset(), start_cost=cost)

    slow = SearchSpace.for_profiles(forkserver, started(9.0), model=builders.model())  # 9.87 s > 2 x 4.4 s
    assert not slow.allow_processes
    assert "takes 9.9 s to start, at every epoch" in slow.processes_excluded
    assert "about 4.40 s for 200 batches" in slow.processes_excluded and "persistent_workers=True" in slow.processes_excluded
    assert SearchSpace.for_profiles(forkserver, started(4.0), model=builders.model()).allow_processes  # 4.87 s
    # a DataLoader's persistent workers start once per fit, and without the model nothing is ruled out
    assert SearchSpace.for_profiles(forkserver, started(9.0), model=builders.model(), knobs=DATALOADER_KNOBS).allow_processes
    assert SearchSpace.for_profiles(forkserver, started(9.0)).allow_processes
