"""tuner.fit's report from a hand-made outcome: the files, the claim's words, the floor when the user's own
setting did not race."""

import json
import math

from reports.training import headline, write_training_report
from tests.builders import machine
from tuner.core import KERAS_DEFAULTS, Backend, EngineName, LoaderConfig
from tuner.results import Confirmation, EpochRole, TrainingEpoch, TrainingOutcome, TrainingScreen

EIGHT = LoaderConfig(8, False, 16)


def outcome(claim=None, baseline_raced=False) -> TrainingOutcome:
    epochs = [TrainingEpoch(0, EIGHT, EpochRole.WARM_UP, 3.0), TrainingEpoch(1, EIGHT, EpochRole.RACE, 2.0, 0.5),
              TrainingEpoch(2, LoaderConfig(4, False, 10), EpochRole.FAILED, math.nan),
              TrainingEpoch(2, EIGHT, EpochRole.RETRIED, 2.1), TrainingEpoch(3, EIGHT, EpochRole.TRAIN, 2.0, 0.4)]
    return TrainingOutcome(
        dataset_name="<Shards>", engine=EngineName.KERAS3, backend=Backend.JAX, machine=machine(), epoch_batches=200,
        chosen=EIGHT, baseline=KERAS_DEFAULTS, claim=claim, epochs=tuple(epochs),
        screen=(TrainingScreen(KERAS_DEFAULTS, 10.0, 8), TrainingScreen(EIGHT, 100.0, 16),
                TrainingScreen(LoaderConfig(2, True, 10), 0.0, 8, "PicklingError: no")),
        race_epochs={"8 threads, queue 16": (100.0,)}, race_left={"4 threads, queue 10": "RuntimeError: broke"},
        race_stopped_because="", explored=1, bound=4, candidates_from=None,
        knobs={"workers": 8, "use_multiprocessing": False, "max_queue_size": 16}, setup_seconds=2.5,
        training_seconds=9.1)


def test_without_the_users_setting_in_the_race_the_floor_its_data_sets_is_claimed():
    text = headline(outcome())
    assert "Trained 4 epochs" in text and "at least 20.0 s" in text and "median of 2 epochs" in text
    assert "at least 10.0x" in text


def test_a_raced_claim_is_given_with_its_interval():
    claim = Confirmation((100.0, 101.0), (50.0, 52.0), 1.96, 1.8, 2.1, 0.9)
    assert "1.96x your own setting" in headline(outcome(claim)) and "2 interleaved rounds" in headline(outcome(claim))


def test_the_files_are_written_and_the_users_names_escaped(tmp_path):
    paths = write_training_report(outcome(), tmp_path)
    html = paths["html"].read_text()
    assert "&lt;Shards&gt;" in html and "<Shards>" not in html
    assert "PicklingError: no" in html and "failed" in html and "Validation pass" in html
    assert json.loads(paths["json"].read_text())["chosen"]["workers"] == 8
    assert "| 4 | 8 threads, queue 16 | train |" in paths["markdown"].read_text()
