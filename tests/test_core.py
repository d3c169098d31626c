"""The ground floor's vocabulary (``tuner.core``): tf.data is a pipeline of its own, not a number of workers."""

from probes.serde import from_dict, to_dict
from tuner.core import KERAS_DEFAULTS, LoaderConfig, Pipeline, PoolKind


def test_tf_data_is_its_own_pipeline_and_workers_zero_is_keras_inline():
    tf_data = LoaderConfig.tf_data()
    assert tf_data.is_tf_data and tf_data.pipeline == Pipeline.TF_DATA and tf_data.label() == "tf.data (AUTOTUNE)"
    assert tf_data.equivalence_key() != KERAS_DEFAULTS.equivalence_key()
    zero = LoaderConfig(0, False, 10)  # what Keras itself runs inline
    assert not zero.is_tf_data and zero.kind == PoolKind.INLINE and zero.label() == "inline (no pool)"


def test_a_stored_setting_keeps_its_pipeline_and_one_stored_without_it_is_keras():
    assert from_dict(LoaderConfig, to_dict(LoaderConfig.tf_data())) == LoaderConfig.tf_data()
    old = {"workers": 2, "use_multiprocessing": True, "max_queue_size": 4}
    assert from_dict(LoaderConfig, old).pipeline == Pipeline.KERAS
