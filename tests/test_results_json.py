import json

import pytest

from tests import builders
from tuner.results import SCHEMA_VERSION, Recommendation


def test_recommendation_survives_a_json_round_trip():
    original = builders.recommendation()
    restored = Recommendation.from_json(original.to_json())
    assert restored == original  # frozen dataclasses all the way down: every field, nested ones included


def test_results_json_carries_schema_version_and_machine():
    data = json.loads(builders.recommendation().to_json())
    assert data["schema_version"] == SCHEMA_VERSION
    assert data["machine"]["usable_cores"] == 2
    assert data["trials"][2]["windows"][0]["steady_batches_per_second"] == 300.0


def test_other_schema_versions_are_refused_with_advice():
    data = json.loads(builders.recommendation().to_json())
    data["schema_version"] = 99
    with pytest.raises(ValueError, match="Re-run tune-loader"):
        Recommendation.from_json(json.dumps(data))


def test_results_json_from_before_the_stop_reason_still_loads():
    data = json.loads(builders.recommendation().to_json())
    del data["search_stopped_because"]
    assert Recommendation.from_json(json.dumps(data)).search_stopped_because is None


def test_a_schema_8_results_json_still_loads():
    """Before schema 9: the user's knobs under three Keras names, and no trial's stop_kind."""
    data = json.loads(builders.recommendation().to_json())
    data["schema_version"] = 8
    del data["dataset"]["user_knobs"]
    data["dataset"] |= {"user_workers": 1, "user_use_multiprocessing": False, "user_max_queue_size": 10}
    for trial in data["trials"]:
        del trial["stop_kind"]
    old = Recommendation.from_json(json.dumps(data))
    assert old.dataset.user_knobs == {} and all(trial.stop_kind is None for trial in old.trials)
    assert old.config == builders.recommendation().config


def test_provenance_names_the_run_and_the_file_by_its_sha256(tmp_path):
    import hashlib

    from tuner.api import provenance_of
    from tuner.trial.protocol import FileSource
    from tuner.version import VERSION

    path = tmp_path / "my_gen.py"
    path.write_text("x = 1\n")
    provenance = provenance_of(FileSource(str(path)))
    assert provenance.source == str(path) and provenance.source_sha256 == hashlib.sha256(b"x = 1\n").hexdigest()
    assert provenance.tune_loader_version == VERSION and provenance.started_utc.endswith("+00:00")
    assert provenance.command  # the process's command line


def test_the_shipped_schema_is_current_and_results_json_validates_against_it():
    import jsonschema

    from tuner.schema import SCHEMA_PATH, results_schema

    shipped = json.loads(SCHEMA_PATH.read_text())
    assert shipped == results_schema(), "the result dataclasses changed: run python -m tuner.schema"
    data = json.loads(builders.recommendation().to_json())
    jsonschema.validate(data, shipped)
    data["config"]["workers"] = "many"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, shipped)
