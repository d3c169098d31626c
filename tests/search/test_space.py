import optuna

from tests import builders
from tuner.results import KERAS_DEFAULTS, LoaderConfig
from tuner.search.space import SearchSpace, rule_of_thumb, starting_configs


def test_rule_of_thumb_uses_processes_for_gil_bound_code():
    gil_bound = builders.dataset(cpu_fraction=0.95, thread_speedup=1.02)
    assert rule_of_thumb(builders.machine(4), gil_bound) == LoaderConfig(4, True, 10)


def test_rule_of_thumb_uses_threads_for_waiting_code():
    assert rule_of_thumb(builders.machine(4), builders.dataset()) == LoaderConfig(4, False, 10)


def test_rule_of_thumb_never_uses_processes_for_an_unpicklable_dataset():
    gil_bound = builders.dataset(cpu_fraction=0.95, thread_speedup=1.0, picklable=False)
    assert rule_of_thumb(builders.machine(4), gil_bound).use_multiprocessing is False


SPACE = SearchSpace(max_workers=16, allow_processes=True)


def test_a_start_the_space_excludes_is_not_enqueued():
    gil_bound = builders.dataset(cpu_fraction=0.95, thread_speedup=1.0, picklable=True)
    assert rule_of_thumb(builders.machine(2), gil_bound).use_multiprocessing
    under_jax = SearchSpace.for_profiles(builders.machine(2), gil_bound, backend="jax")
    starts = starting_configs(builders.machine(2), gil_bound, under_jax)
    assert starts == [("keras defaults", KERAS_DEFAULTS)]


def test_single_core_rule_of_thumb_equal_to_defaults_is_not_enqueued_twice():
    starts = starting_configs(builders.machine(1), builders.dataset(), SPACE)
    assert starts == [("keras defaults", KERAS_DEFAULTS)]


def test_a_rule_of_thumb_under_half_the_best_guess_and_unguessed_defaults_are_not_started():
    guess = LoaderConfig(9, False, 8)
    rates = {KERAS_DEFAULTS: 45.0, LoaderConfig(2, False, 10): 160.0, guess: 320.0}
    starts = starting_configs(builders.machine(2), builders.dataset(), SPACE, (guess,), predicted=rates.__getitem__)
    assert starts == [("rule of thumb", LoaderConfig(2, False, 10)), ("prediction", guess)]
    rates[LoaderConfig(2, False, 10)] = 150.0
    starts = starting_configs(builders.machine(2), builders.dataset(), SPACE, (guess,), predicted=rates.__getitem__)
    assert starts == [("prediction", guess)]


def test_the_defaults_are_started_first_when_the_model_guesses_them():
    guess = LoaderConfig(1, False, 4)  # no pool: the same setting as the defaults
    rates = {KERAS_DEFAULTS: 33.0, guess: 33.0, LoaderConfig(2, False, 10): 31.0}
    starts = starting_configs(builders.machine(2), builders.dataset(), SPACE, (guess,), predicted=rates.__getitem__)
    assert starts == [("keras defaults", KERAS_DEFAULTS), ("rule of thumb", LoaderConfig(2, False, 10))]


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
