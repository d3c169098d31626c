"""Which backend tune-loader times under, and what that backend allows (no Keras needed)."""

from __future__ import annotations

import importlib.util

import pytest

from tests import builders
from tuner.analysis.advice import autotune_wait
from tuner.core import KERAS_DEFAULTS, Backend, EngineName
from tuner.engines import backend
from tuner.errors import TuneLoaderError
from tuner.search.space import SearchSpace


def keras_home(tmp_path, content: str | None) -> dict[str, str]:
    if content is not None:
        (tmp_path / "keras.json").write_text(content)
    return {"KERAS_HOME": str(tmp_path)}


def test_the_flag_beats_the_environment_which_beats_keras_json(tmp_path):
    environ = keras_home(tmp_path, '{"backend": "torch"}') | {"KERAS_BACKEND": "jax"}
    assert backend.configured("tensorflow", environ) == backend.BackendChoice("tensorflow", "--backend")
    assert backend.configured(None, environ) == backend.BackendChoice("jax", "KERAS_BACKEND")


def test_keras_json_is_read_where_keras_reads_it(tmp_path):
    environ = keras_home(tmp_path, '{"floatx": "float32", "backend": "jax"}')
    assert backend.configured(None, environ) == backend.BackendChoice("jax", str(tmp_path / "keras.json"))


@pytest.mark.parametrize("content", [None, "{not json", '{"floatx": "float32"}', '["jax"]'])
def test_without_a_usable_setting_keras_defaults_to_tensorflow(tmp_path, content):
    assert backend.configured(None, keras_home(tmp_path, content)) == backend.BackendChoice(
        "tensorflow", "Keras's default")


def test_a_backend_that_cannot_train_is_refused_with_where_it_came_from(tmp_path):
    with pytest.raises(TuneLoaderError, match=r"trains only with the tensorflow, jax, torch backends.*"
                                              r"Received: backend='numpy' from KERAS_BACKEND"):
        backend.configured(None, {"KERAS_BACKEND": "numpy"})


def test_a_backend_that_is_not_installed_names_the_install_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "jax" else real(name))
    with pytest.raises(TuneLoaderError, match=r"jax backend \(--backend\) is not installed.*tune-loader\[jax\]"):
        backend.configured("jax", {})


def test_processes_are_not_searched_under_jax_even_for_a_picklable_dataset():
    machine, dataset = builders.machine(2), builders.dataset(picklable=True)
    assert SearchSpace.for_profiles(machine, dataset, backend="tensorflow").allow_processes
    assert SearchSpace.for_profiles(machine, dataset, backend="torch").allow_processes
    jax = SearchSpace.for_profiles(machine, dataset, backend="jax")
    assert not jax.allow_processes and jax.processes_excluded == backend.FORK_UNSAFE
    assert all(not config.use_multiprocessing for config in jax.grid())


def test_the_autotuner_wait_is_a_tensorflow_pipeline_warning_only():
    assert autotune_wait(KERAS_DEFAULTS, EngineName.KERAS3, 1.0, "tensorflow")
    assert autotune_wait(KERAS_DEFAULTS, EngineName.KERAS3, 1.0, "jax") is None
    assert autotune_wait(KERAS_DEFAULTS, EngineName.KERAS3, 1.0, "torch") is None


def test_a_backend_other_than_the_one_asked_for_is_noted_from_the_engine_s_entry():
    from tuner.api import backend_mismatch

    asked = backend.BackendChoice(Backend.JAX, "KERAS_BACKEND")
    assert backend_mismatch(asked, Backend.JAX, EngineName.KERAS3) is None
    legacy = backend_mismatch(asked, Backend.TENSORFLOW, EngineName.TF_KERAS)
    assert legacy.startswith("tf-keras trains only on TensorFlow, so the jax backend (KERAS_BACKEND) does not apply")
    assert legacy.endswith("Pass --engine keras3 to time this data under Keras 3 on JAX.")
    own = backend_mismatch(asked, Backend.TORCH, EngineName.KERAS3)
    assert own.startswith("Keras loaded the torch backend in your file's process, not jax (KERAS_BACKEND)")
