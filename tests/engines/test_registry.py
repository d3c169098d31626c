"""The engine registry and each engine's knob set, without training: names, translations both ways, the
settings each knob set offers the search, what results.json records and the code the answer hands over."""

from __future__ import annotations

import typing
import dataclasses
import importlib.util
import json
import pickle

import optuna
import pytest

from probes.profiles import DataKind
from reports.summary import headline
from tests import builders
from tuner import engines
from tuner.core import KERAS_DEFAULTS, EngineName, LoaderConfig, PoolKind
from tuner.engines import knobs, registry
from tuner.errors import TuneLoaderError
from tuner.results import Recommendation
from tuner.search.candidates import broad_grid
from tuner.search.space import SearchSpace


def test_every_entry_names_an_engine_module_its_class_and_a_knob_set():
    for entry in registry.ENGINES:
        assert importlib.util.find_spec(entry.module) is not None, entry
        assert isinstance(registry.knob_set(entry.name), typing.get_args(knobs.KnobSet))
        assert EngineName(entry.name) is entry.name
    assert [entry.name for entry in registry.ENGINES] == list(EngineName)  # one entry per engine, none without
    assert pickle.loads(pickle.dumps(EngineName.TORCH_DATALOADER)) is EngineName.TORCH_DATALOADER


def test_an_unknown_engine_is_refused_with_the_known_ones():
    with pytest.raises(TuneLoaderError, match="Expected one of keras3, tf-keras, torch-dataloader, grain. Received: "
                                              "engine='torch'"):
        registry.entry("torch")


@pytest.mark.parametrize("knob_set", [knobs.KERAS_KNOBS, knobs.DATALOADER_KNOBS, knobs.PYDATASET_IN_DATALOADER_KNOBS,
                                      knobs.GRAIN_KNOBS], ids=["keras", "dataloader", "pydataset-in-dataloader", "grain"])
def test_a_knob_set_translates_every_setting_it_offers_both_ways(knob_set):
    offered = knob_set.pools(8, knob_set.pool_kinds, 64) + knob_set.model_grid(8, knob_set.pool_kinds)
    assert offered
    for config in offered + [KERAS_DEFAULTS]:
        values = knob_set.values(config)
        assert set(values) == {knob.name for knob in knob_set.knobs}
        assert knob_set.config_of(values) == config


def test_a_dataloader_pool_is_processes_with_its_prefetch_in_flight_and_inline_is_the_keras_reference():
    dl = knobs.DATALOADER_KNOBS
    config = dl.config_of({"num_workers": 4, "prefetch_factor": 3, "persistent_workers": True})
    assert config == LoaderConfig(4, True, 12, persistent_workers=True)
    assert config.kind == PoolKind.PROCESSES and config.effective_parallelism == 4
    assert dl.config_of({"num_workers": 0, "prefetch_factor": None, "persistent_workers": False}) == KERAS_DEFAULTS
    assert dl.recorded(config, "forkserver") == {"num_workers": 4, "prefetch_factor": 3, "persistent_workers": True,
                                                 "multiprocessing_context": "forkserver"}
    assert dl.recorded(KERAS_DEFAULTS, "forkserver") == {"num_workers": 0}
    assert config.label() == "4 processes, queue 12, persistent"
    assert config.equivalence_key() != dataclasses.replace(config, persistent_workers=False).equivalence_key()


def test_the_dataloader_search_has_no_threads_and_tries_workers_with_and_without_persistence():
    space = SearchSpace(8, allow_processes=True, knobs=knobs.DATALOADER_KNOBS)
    grid = broad_grid(space)
    assert grid[0] == KERAS_DEFAULTS
    assert all(c.use_multiprocessing for c in grid[1:])
    assert {(c.workers, c.persistent_workers) for c in grid[1:]} == {
        (w, p) for w in (1, 2, 4, 8) for p in (False, True)}
    assert all(c.use_multiprocessing or not c.parallel for c in space.grid())
    assert broad_grid(dataclasses.replace(space, allow_processes=False)) == [KERAS_DEFAULTS]
    assert not dataclasses.replace(space, allow_processes=False).allows_pools


@pytest.mark.parametrize("config", [KERAS_DEFAULTS, LoaderConfig(2, True, 4, persistent_workers=True),
                                    LoaderConfig(3, True, 12, native_threads=1)])
def test_an_enqueued_dataloader_trial_stores_knobs_that_give_the_setting_back(config):
    space = SearchSpace(8, allow_processes=True, native_threads=(1,), knobs=knobs.DATALOADER_KNOBS)
    trial = optuna.trial.FixedTrial(space.params(config))
    assert space.suggest(trial) == config
    assert space.config_of(trial.params) == config
    assert SearchSpace(8, allow_processes=True).config_of(trial.params) is None  # not Keras's knobs


def test_a_dataloader_answer_records_its_knobs_and_hands_over_a_dataloader_line(tmp_path):
    best = LoaderConfig(2, True, 4, persistent_workers=True)
    answer = builders.recommendation(engine="torch-dataloader", best=best, kind=DataKind.DATALOADER)
    answer = dataclasses.replace(answer, knobs=knobs.DATALOADER_KNOBS.recorded(best, "forkserver"))
    assert answer.settings_text() == ("num_workers=2, prefetch_factor=2, persistent_workers=True, "
                                      "multiprocessing_context='forkserver'")
    block, *_ = engines.code_blocks(answer)
    assert block.title == "torch DataLoader"
    assert ("DataLoader(dataset, batch_size=..., num_workers=2, prefetch_factor=2, persistent_workers=True, "
            "multiprocessing_context='forkserver')") in block.code
    assert Recommendation.from_json(answer.to_json()) == answer
    # Handed over as a module-level make_dataloader(**knobs), the answer is that call.
    (block, *_) = engines.code_blocks(dataclasses.replace(answer, dataset_name="make_dataloader"))
    assert ("loader = make_dataloader(num_workers=2, prefetch_factor=2, persistent_workers=True, "
            "multiprocessing_context='forkserver')\nmodel.fit(loader") in block.code


def test_a_schema_6_file_loads_and_its_knobs_are_kerass_three():
    answer = builders.recommendation()
    data = json.loads(answer.to_json())
    del data["knobs"]
    data["schema_version"] = 6
    old = Recommendation.from_json(json.dumps(data))
    assert old.knobs is None and old.schema_version == 6
    assert old.knob_values() == {"workers": 8, "use_multiprocessing": False, "max_queue_size": 16}
    data["schema_version"] = 5
    with pytest.raises(ValueError, match="schema version 5, this tune-loader reads 6, 7"):
        Recommendation.from_json(json.dumps(data))


def test_a_pydataset_under_torch_also_offers_persistent_dataloader_pools_and_records_them_as_dataloader_knobs():
    assert registry.knob_set("keras3", "torch") is knobs.PYDATASET_IN_DATALOADER_KNOBS
    assert registry.knob_set("keras3", "tensorflow") is registry.knob_set("keras3") is knobs.KERAS_KNOBS
    wrapped = knobs.PYDATASET_IN_DATALOADER_KNOBS
    space = SearchSpace(4, allow_processes=True, knobs=wrapped)
    grid = broad_grid(space)
    assert {c.workers for c in grid if c.persistent_workers} == {1, 2, 4}
    assert [c for c in grid if not c.persistent_workers] == broad_grid(SearchSpace(4, allow_processes=True))
    assert not any(c.persistent_workers for c in broad_grid(dataclasses.replace(space, allow_processes=False)))
    persistent = LoaderConfig(2, True, 4, persistent_workers=True)
    assert wrapped.recorded(persistent, "spawn") == knobs.DATALOADER_KNOBS.recorded(persistent, "spawn")
    assert wrapped.recorded(LoaderConfig(4, False, 10), "spawn") == {"workers": 4, "use_multiprocessing": False,
                                                                     "max_queue_size": 10}
    # Optuna may pair persistence with threads: only processes can persist
    assert wrapped.config_of({"workers": 4, "use_multiprocessing": False, "max_queue_size": 8,
                              "persistent_workers": True}) == LoaderConfig(4, False, 8)
    trial = optuna.trial.FixedTrial(space.params(persistent))
    assert space.suggest(trial) == persistent and space.config_of(trial.params) == persistent


def test_a_pydataset_answered_with_persistent_workers_hands_over_the_dataloader_that_wraps_it():
    best = LoaderConfig(2, True, 4, persistent_workers=True)
    answer = dataclasses.replace(builders.recommendation(best=best), backend="torch",
                                 knobs=knobs.PYDATASET_IN_DATALOADER_KNOBS.recorded(best, "forkserver"))
    block, *_ = engines.code_blocks(answer)
    assert block.title == "Your PyDataset in a torch DataLoader"
    assert "dataset = ShardDataset(...)" in block.code
    assert ("DataLoader(dataset, batch_size=None, shuffle=True, num_workers=2, prefetch_factor=2, persistent_workers=True, "
            "multiprocessing_context='forkserver')") in block.code


@pytest.mark.parametrize("config", [KERAS_DEFAULTS, LoaderConfig(2, True, 8)])
def test_an_enqueued_grain_trial_stores_knobs_that_give_the_setting_back(config):
    space = SearchSpace(8, allow_processes=True, knobs=knobs.GRAIN_KNOBS)
    trial = optuna.trial.FixedTrial(space.params(config))
    assert space.suggest(trial) == config
    assert space.config_of(trial.params) == config


def test_a_grain_answer_records_mp_prefetchs_knobs_and_hands_over_the_mp_prefetch_line():
    best = LoaderConfig(2, True, 8)
    answer = builders.recommendation(engine="grain", best=best, kind=DataKind.GRAIN)
    answer = dataclasses.replace(answer, knobs=knobs.GRAIN_KNOBS.recorded(best, "spawn"))
    assert answer.settings_text() == "worker_count=2, worker_buffer_size=4"
    assert headline(answer) == "Recommended: mp_prefetch 2 workers, buffer 4"  # Grain's words, not a queue's
    (block,) = engines.code_blocks(answer)
    assert block.title == "Grain" and "flags.FLAGS.mark_as_parsed()" in block.code
    assert ".to_iter_dataset().mp_prefetch(" in block.code
    assert "grain.MultiprocessingOptions(num_workers=2, per_worker_buffer_size=4)" in block.code
    assert Recommendation.from_json(answer.to_json()) == answer
    kept = dataclasses.replace(answer, config=KERAS_DEFAULTS, knobs=knobs.GRAIN_KNOBS.recorded(KERAS_DEFAULTS, "spawn"))
    (block,) = engines.code_blocks(kept)
    assert "without mp_prefetch" in block.code and "mp_prefetch(" not in block.code


@pytest.mark.parametrize("knob_set, config, label", [
    (knobs.KERAS_KNOBS, KERAS_DEFAULTS, "inline (no pool)"),
    (knobs.KERAS_KNOBS, LoaderConfig(2, True, 8), "2 processes, queue 8"),
    (knobs.DATALOADER_KNOBS, KERAS_DEFAULTS, "num_workers=0 (inline)"),
    (knobs.DATALOADER_KNOBS, LoaderConfig(2, True, 4, persistent_workers=True), "2 workers, prefetch 2, persistent"),
    (knobs.GRAIN_KNOBS, KERAS_DEFAULTS, "no mp_prefetch"),
    (knobs.GRAIN_KNOBS, LoaderConfig(1, True, 4, native_threads=1), "mp_prefetch 1 worker, buffer 4, 1 BLAS/OpenMP thread"),
])
def test_each_engine_names_a_setting_by_its_own_knobs(knob_set, config, label):
    assert knob_set.label(config) == label


@pytest.mark.parametrize("knob_set", [knobs.KERAS_KNOBS, knobs.TF_KERAS_KNOBS, knobs.DATALOADER_KNOBS,
                                      knobs.PYDATASET_IN_DATALOADER_KNOBS, knobs.GRAIN_KNOBS])
def test_each_knob_sets_typed_values_name_its_knobs_and_their_defaults(knob_set):
    fields = dataclasses.fields(knob_set.setting(KERAS_DEFAULTS))
    assert [(f.name, f.default) for f in fields] == [(knob.name, knob.default) for knob in knob_set.knobs]
    assert knob_set.setting(KERAS_DEFAULTS) == type(knob_set.setting(KERAS_DEFAULTS))()  # the reference: all defaults
