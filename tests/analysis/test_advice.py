"""Advice: the inline autotune warning (when it is given, the bound it states), how the race chose, and
what stopped trials say."""

import dataclasses
import math

import pytest

from probes.profiles import StartCost
from tests import builders
from tuner.analysis import advice
from tuner.core import KERAS_DEFAULTS, LoaderConfig, StopKind, TrialStatus
from tuner.engines.knobs import DATALOADER_KNOBS, GRAIN_KNOBS, KERAS_KNOBS
from tuner.outcomes import Departure, Interleaved, LeaveKind, PoolsNotTried, RaceEnd, RaceStop
from tuner.results import Ceiling, Confirmation
from tuner.search import decision
from tuner.search.space import SearchSpace

LABEL = KERAS_KNOBS.label


@pytest.mark.parametrize(("epoch_seconds", "latest"), [(11.0, "20.5"), (4.2, "5.1"), (0.9, "1.3"), (10.23, "10.2")])
def test_inline_keras3_training_is_warned_of_the_autotuner_wait_up_to_its_next_optimization(epoch_seconds, latest):
    warning = advice.autotune_wait(KERAS_DEFAULTS, "keras3", epoch_seconds)
    assert f"an epoch of {epoch_seconds:.1f} s here may cost up to {latest} s" in warning
    assert "workers=2 with threads" in warning


def test_inline_tf_keras_training_is_warned_in_terms_of_the_users_own_epoch():
    warning = advice.autotune_wait(KERAS_DEFAULTS, "tf-keras", 8.6)
    assert warning.startswith("Without a pool, tf-keras feeds your batches through tf.data")
    assert "an epoch of 8.6 s here may cost up to 10.2 s" in warning
    assert "benchmark" not in warning and "legacy_sequence" not in warning  # the user's numbers, not ours


def test_a_pool_or_an_unknown_epoch_gets_no_autotune_warning():
    assert advice.autotune_wait(LoaderConfig(2, False, 10), "keras3", 11.0) is None
    assert advice.autotune_wait(LoaderConfig(4, False, 10), "tf-keras", 8.6) is None
    assert advice.autotune_wait(KERAS_DEFAULTS, "keras3", None) is None


def test_the_warnings_of_an_inline_keras3_answer_include_the_autotune_wait():
    common = dict(label=LABEL, chosen_trial=None, trials=(), dataset=builders.dataset(), memory_budget_bytes=None,
                  not_tried=PoolsNotTried(), chosen_epoch_seconds=11.0)
    assert any("may cost up to 20.5 s" in w for w in advice.warn(chosen=KERAS_DEFAULTS, engine="keras3", **common))
    assert not any("autotun" in w for w in advice.warn(chosen=LoaderConfig(4, False, 10), engine="keras3", **common))


def test_the_race_summary_gives_every_setting_s_mean_and_how_the_race_chose():
    twelve, six = LoaderConfig(12, False, 16), LoaderConfig(6, False, 10)
    samples = {twelve: (191.3, 185.0, 199.0), six: (194.1, 190.0, 197.0), KERAS_DEFAULTS: (40.0, 41.0)}
    verdict = decision.verdict(samples, [twelve, six])
    race = Interleaved(samples, {}, {}, {KERAS_DEFAULTS: Departure(LeaveKind.CLAIM_DECIDED, six, 2)}, verdict,
                       RaceStop(RaceEnd.SETTLED, six))
    text = advice.race_summary(race, six, LABEL)
    assert "6 threads, queue 10 193.7 batches/s (n=3); 12 threads, queue 16 191.8 batches/s (n=3)" in text
    assert "inline (no pool) 40.5 batches/s (n=2, left early)" in text
    assert text.endswith("6 threads, queue 10 is the simplest within 1% of the fastest of the settings still racing "
                         "at the end; no setting left could beat it by more than 3%.")


def test_the_autotune_wait_is_warned_of_only_where_the_race_timed_windows_shorter_than_the_epoch():
    common = dict(label=LABEL, chosen=KERAS_DEFAULTS, chosen_trial=None, trials=(), dataset=builders.dataset(),
                  memory_budget_bytes=None, not_tried=PoolsNotTried(),
                  chosen_epoch_seconds=0.4)
    assert any("autotun" in w for w in advice.warn(**common))
    assert not any("autotun" in w for w in advice.warn(race_timed_whole_epochs=True, **common))


def test_cpython_s_ast_race_is_explained_once_however_many_settings_it_stopped():
    race = "SystemError: AST constructor recursion depth mismatch (before={}, after=32) (at io.py, line 9, in get)"
    trials = (builders.trial(0, LoaderConfig(16, False, 16), 0.0, status="failed", reason=race.format(36)),
              builders.trial(1, LoaderConfig(32, False, 32), 0.0, status="failed", reason=race.format(40)),
              builders.trial(2, LoaderConfig(2, False, 10), 90.0))
    common = dict(label=LABEL, chosen=LoaderConfig(2, False, 10), chosen_trial=trials[2], dataset=builders.dataset(),
                  memory_budget_bytes=None, not_tried=PoolsNotTried())
    warnings = advice.warn(trials=trials, race_failures={LoaderConfig(8, False, 8): race.format(33)}, **common)
    assert sum("python/cpython#106905" in w for w in warnings) == 1
    assert "8 threads, queue 8 stopped during the race: " + race.format(33) in warnings
    assert [w for w in warnings if w.startswith("Trial ")] == [
        f"Trial 0 (16 threads, queue 16) failed: {race.format(36)}", f"Trial 1 (32 threads, queue 32) failed: {race.format(40)}"]
    assert not any("cpython" in w for w in advice.warn(trials=trials[2:], **common))


def test_race_epochs_that_hyperfine_would_flag_as_outliers_are_warned_of():
    common = dict(label=LABEL, chosen=LoaderConfig(8, False, 16), chosen_trial=None, trials=(), dataset=builders.dataset(),
                  memory_budget_bytes=None, not_tried=PoolsNotTried())
    steady = Confirmation((300.0, 302.0, 298.0, 301.0, 299.0), (45.0, 44.0, 46.0, 45.5, 44.5), 6.6, 6.3, 6.9, 0.9)
    assert not any("outliers" in w for w in advice.warn(confirmation=steady, **common))
    # One defaults epoch at a third of the others' speed: z = (15 - 45) / 0.5 = -60, far beyond 14.8.
    disturbed = dataclasses.replace(steady, default_samples=(45.0, 44.0, 46.0, 15.0, 45.5))
    warning = next(w for w in advice.warn(confirmation=disturbed, **common) if "outliers" in w)
    assert warning.startswith("1 of the race's epochs were statistical outliers") and "quiet system" in warning


def test_three_race_epochs_are_too_few_to_call_one_an_outlier():
    # Two epochs 0.01 apart make the MAD 0.01: the third, 3% off, would score about 130.
    common = dict(label=LABEL, chosen=LoaderConfig(8, False, 16), chosen_trial=None, trials=(), dataset=builders.dataset(),
                  memory_budget_bytes=None, not_tried=PoolsNotTried())
    three = Confirmation((209.9, 227.4, 229.8), (41.63, 41.62, 42.94), 5.46, 4.89, 5.52, 0.95)
    assert not any("outliers" in w for w in advice.warn(confirmation=three, **common))


def test_the_gil_verdict_follows_the_measurements_when_a_thread_pool_beat_inline():
    """Image code: the probe's 2 threads read 1.14x, the trials 1.36x: the text must not say the code holds the GIL."""
    image_code = builders.dataset(cpu_fraction=0.9, thread_speedup=1.14, batch_ms=100.0)
    assert image_code.gil_bound
    four = LoaderConfig(4, False, 10)
    race = {KERAS_DEFAULTS: (5.7, 5.8, 5.6), four: (7.8, 7.9, 7.7)}
    gain = advice.thread_gain((), race)
    assert gain[0] == four and gain[1] == pytest.approx(7.8 / 5.7)
    text = advice.data_nature(image_code, gain)
    assert "holds the GIL" not in text and "releases the GIL in part" in text
    assert "4 threads, queue 10 ran 1.37x inline in the measurements" in text
    # Without a measured gain, or with one inside the noise, the probe's verdict stands.
    assert "holds the GIL" in advice.data_nature(image_code)
    assert "holds the GIL" in advice.data_nature(image_code, (four, 1.04))


def test_without_a_race_the_thread_gain_comes_from_the_trials():
    trials = (builders.trial(0, KERAS_DEFAULTS, 50.0), builders.trial(1, LoaderConfig(2, False, 10), 60.0),
              builders.trial(2, LoaderConfig(2, True, 10), 90.0))
    assert advice.thread_gain(trials, {}) == (LoaderConfig(2, False, 10), pytest.approx(1.2))
    assert advice.thread_gain(trials[1:], {}) is None  # no inline trial to compare with


SPAWN_COST = StartCost("spawn", worker_seconds=0.3, fork_worker_seconds=0.01, keras_seconds=2.0,
                       pickle_seconds=0.05, pickle_bytes=3 * 2**20, import_seconds=0.4)


def test_under_spawn_the_reasons_give_each_worker_s_start_and_what_fork_would_gain():
    spawned = dataclasses.replace(builders.dataset(cpu_fraction=1.0, thread_speedup=0.8), start_cost=SPAWN_COST)
    # 2 processes ran 200-batch epochs at 50 batches/s (4 s), about 2.8 s of it starting the two workers
    trials = (builders.trial(0, KERAS_DEFAULTS, 60.0), builders.trial(1, LoaderConfig(2, True, 10), 50.0))
    text = advice.start_method_cost(spawned, 2, KERAS_DEFAULTS, 60.0, trials, 200, KERAS_KNOBS.pool_start, LABEL)
    assert "start by spawn" in text and "each costs 2.74 s beyond a forked one" in text
    assert "3.0 MiB" in text and "importing your module, in 0.40 s" in text
    # fork: a 4 s epoch less 0.29 + 2.0 (interpreter and Keras, both workers at once on two cores), less
    # 2 x 0.05 pickling and 0.4 importing: 1.21 s, 165 batches/s against the answer's 60
    assert "Under fork, 2 processes, queue 10 would run about 2.75x the answer" in text
    assert "Keras starts fresh workers" in text and "importing Keras 2.00 s" in text
    assert "a torch DataLoader with persistent_workers=True" in text and "set_start_method('fork')" in text
    # the same cost as a DataLoader's: its engine names who starts the workers and its own fixes
    loader = advice.start_method_cost(spawned, 2, KERAS_DEFAULTS, 60.0, trials, 200, DATALOADER_KNOBS.pool_start, LABEL)
    assert "a DataLoader without persistent_workers starts fresh workers" in loader
    assert "importing Keras" not in loader and "multiprocessing_context='fork'" in loader
    # and as Grain's: mp_prefetch spawns whatever the start method, and its pool goes by its own knobs
    grain = advice.start_method_cost(spawned, 2, KERAS_DEFAULTS, 60.0, trials, 200, GRAIN_KNOBS.pool_start,
                                     GRAIN_KNOBS.label)
    assert "Grain's mp_prefetch always spawns" in grain and "Under fork, mp_prefetch 2 workers, buffer 5 would" in grain


def test_under_fork_nothing_is_said_and_a_small_start_cost_is_not_called_a_loss():
    assert advice.start_method_cost(builders.dataset(), 2, KERAS_DEFAULTS, 60.0, (), 200, KERAS_KNOBS.pool_start, LABEL) is None
    cheap = dataclasses.replace(SPAWN_COST, keras_seconds=0.0, worker_seconds=0.02, import_seconds=0.0,
                                pickle_seconds=0.0)
    spawned = dataclasses.replace(builders.dataset(), start_cost=cheap)
    trials = (builders.trial(1, LoaderConfig(2, True, 10), 50.0),)
    assert "Under fork" not in advice.start_method_cost(spawned, 2, KERAS_DEFAULTS, 60.0, trials, 200,
                                                        KERAS_KNOBS.pool_start, LABEL)


def test_when_the_defaults_failed_in_the_race_the_claim_names_the_answer_and_claims_no_speed_up():
    threads = LoaderConfig(2, False, 10)
    text = advice.claim(threads, threads, None, 100, LABEL, "")
    assert "2 threads, queue 10" in text and "without a speed-up claimed" in text and "keep the defaults" not in text
    assert "keep the defaults" in advice.claim(KERAS_DEFAULTS, threads, None, 100, LABEL, "")


def test_an_undecided_answer_gives_its_odds_and_the_time_budget_that_would_decide_it():
    four = LoaderConfig(4, False, 10)
    rounds = {four: (150.0, 160.0), KERAS_DEFAULTS: (100.0, 100.0)}
    result = decision.verdict(rounds, [four, KERAS_DEFAULTS], pooled=decision.Noise(0.3, 3),
                              round_seconds={four: 1.5, KERAS_DEFAULTS: 2.5})
    text = advice.claim(result.chosen, result.best, result.claim, 100, LABEL, "", result.decision, elapsed_seconds=48.0)
    more = result.decision.rounds_to_decide - 2
    assert f"faster than them with probability {result.decision.probability_faster:.0%}" in text
    assert "recommended as the fastest the evidence shows, but the claim is not decided" in text
    assert f"About {more} more interleaved rounds" in text
    assert f"--time-budget {10 * math.ceil((48.0 + 4.0 * more) / 10)}" in text
    assert "keep the defaults" not in text


def test_a_set_aside_leader_is_named_beside_the_defaults_kept():
    eight = LoaderConfig(8, False, 16)
    shaky = decision.Noise(0.03, 6, within={eight: 0.35**2})
    rounds = {eight: (130.0, 125.0, 135.0), KERAS_DEFAULTS: (100.0, 99.0, 101.0)}
    result = decision.verdict(rounds, [eight, KERAS_DEFAULTS], pooled=shaky)
    text = advice.claim(result.chosen, result.best, result.claim, 100, LABEL, "", result.decision)
    assert text.startswith("8 threads, queue 16 looked faster, but its evidence allows a loss of more than 10%")
    assert ": keep the defaults." in text and "not recommended" in text


def test_a_rerun_of_the_defaults_is_reported_with_its_first_failure_and_its_outcome():
    common = dict(label=LABEL, chosen=LoaderConfig(2, False, 10), chosen_trial=None, trials=(), dataset=builders.dataset(),
                  memory_budget_bytes=None, not_tried=PoolsNotTried())
    stall = "timed out: no batch came for 30 s"
    ran = advice.warn(**common, race_reruns={KERAS_DEFAULTS: stall})
    assert any(stall in w and w.endswith("it ran, and the race went on.") for w in ran)
    failed = advice.warn(**common, race_reruns={KERAS_DEFAULTS: stall}, race_failures={KERAS_DEFAULTS: stall})
    assert any(w.endswith("it failed again.") for w in failed)


def test_the_reasons_say_why_tf_data_sat_out_the_race():
    processes = LoaderConfig(2, True, 10)
    samples = {processes: (80.0, 82.0), KERAS_DEFAULTS: (40.0, 41.0)}
    race = Interleaved(samples, {}, {}, {}, decision.verdict(samples, [processes, KERAS_DEFAULTS]),
                       RaceStop(RaceEnd.SETTLED, processes),
                       tf_data_reach=0.5)
    common = dict(label=LABEL, chosen=processes, best=processes, confirmation=race.verdict.claim,
                  ceiling=Ceiling(560.0, 10.0, 2.1, "input-bound", "input-bound"), dataset=builders.dataset(),
                  model=builders.model(), epoch_batches=100)
    sat_out = [r for r in advice.explain(tf_data=None, race=race, **common) if "tf.data" in r]
    assert sat_out == ["A tf.data pipeline was not raced: it runs __getitem__ on threads of the training process, "
                       "and the fastest setting screened there (inline or threads) ran 0.50x the fastest screened: "
                       "tf.data would need 2.0x over that setting to lead, and races only within 1.5x."]
    raced = dataclasses.replace(race, tf_data_reach=None)
    assert not any("tf.data" in r for r in advice.explain(tf_data=None, race=raced, **common))
    short = dataclasses.replace(raced, tf_data_short=(38.0, 23.0))
    (text,) = [r for r in advice.explain(tf_data=None, race=short, elapsed_seconds=52.0, **common) if "tf.data" in r]
    assert "38 s" in text and "23 s" in text and text.endswith("--time-budget 70 would race it.")


def test_thread_pools_a_generator_cannot_run_are_named_together_and_other_infeasible_trials_apart():
    """Grouped by the trial's stop kind, not by its words: a thread pool over the memory budget is its own line."""
    unsafe_text = "the generator is not thread-safe (no lock)"
    space = SearchSpace(max_workers=8, allow_processes=True, threads_infeasible=unsafe_text)
    unsafe = [dataclasses.replace(builders.trial(workers, LoaderConfig(workers, False, 10), 0.0, TrialStatus.INFEASIBLE,
                                                 unsafe_text), stop_kind=StopKind.THREAD_UNSAFE) for workers in (2, 4)]
    too_big = dataclasses.replace(builders.trial(8, LoaderConfig(8, False, 10), 0.0, TrialStatus.INFEASIBLE,
                                                 "memory 900 MiB went over the budget"), stop_kind=StopKind.MEMORY)
    said = advice.warn(chosen=KERAS_DEFAULTS, label=LABEL, chosen_trial=None, trials=(*unsafe, too_big), dataset=builders.dataset(),
                       memory_budget_bytes=None, not_tried=space.not_tried)
    assert f"Thread pools (trials 2, 4) were recorded as infeasible, not timed: {unsafe_text}." in said
    assert any(w.startswith("Trial 8 (8 threads, queue 10) infeasible: memory 900 MiB") for w in said), said
