"""tune-loader: measure, don't guess, Keras's workers, use_multiprocessing and max_queue_size.

The names below load on first use (PEP 562): the trial child and every worker that unpickles one of
tune-loader's wrappers import ``tuner.<module>`` and, through this file, nothing else of the parent's
stack (Optuna, pandas, the report).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from tuner.version import VERSION as __version__

_WHERE = {
    "TuneLoaderError": "tuner.errors",
    "recommend": "tuner.api",
    "fit": "tuner.fitting",
    **{name: "tuner.core" for name in ("KERAS_DEFAULTS", "EngineName", "LoaderConfig", "TrialStatus")},
    **{name: "tuner.results" for name in ("Confirmation", "EngineComparison", "Recommendation", "TrialResult")},
}

__all__ = ["KERAS_DEFAULTS", "Confirmation", "EngineComparison", "EngineName", "LoaderConfig", "Recommendation",
           "TrialResult", "TrialStatus", "TuneLoaderError", "__version__", "fit", "recommend"]

if TYPE_CHECKING:
    from tuner.api import recommend
    from tuner.core import KERAS_DEFAULTS, EngineName, LoaderConfig, TrialStatus
    from tuner.errors import TuneLoaderError
    from tuner.fitting import fit
    from tuner.results import Confirmation, EngineComparison, Recommendation, TrialResult


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'tuner' has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)
