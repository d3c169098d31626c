"""tune-loader: measure, don't guess, Keras's workers, use_multiprocessing and max_queue_size."""

from tuner.errors import TuneLoaderError
from tuner.version import VERSION as __version__
from tuner.api import recommend
from tuner.results import (KERAS_DEFAULTS, Confirmation, EngineComparison, EngineName, LoaderConfig, Recommendation,
                           TrialResult, TrialStatus)

__all__ = [
    "__version__",
    "KERAS_DEFAULTS",
    "Confirmation",
    "EngineComparison",
    "EngineName",
    "LoaderConfig",
    "Recommendation",
    "TrialResult",
    "TrialStatus",
    "TuneLoaderError",
    "recommend",
]
