"""The trial runner's own sizing decisions (no Keras)."""

from tuner.runner import pipeline_probe_batches


def test_pipeline_probe_runs_about_two_seconds_of_a_slow_model_and_sixty_batches_of_a_fast_one():
    assert pipeline_probe_batches(0.002) == 60
    assert pipeline_probe_batches(0.12) == 17
    assert pipeline_probe_batches(1.5) == 16
