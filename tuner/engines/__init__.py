"""Keras-version code lives here and only here.

``keras3`` drives ``keras.utils.PyDataset``. Detection checks ``sys.modules``
first: if the user's file did not import Keras, nothing in it can be a Keras
dataset, and tune-loader does not pay seconds of import to find that out.
"""

from __future__ import annotations

import sys
from typing import Any


def is_keras3_dataset(obj: Any) -> bool:
    return "keras" in sys.modules and isinstance(obj, sys.modules["keras"].utils.PyDataset)


def is_keras3_dataset_class(cls: type) -> bool:
    return "keras" in sys.modules and issubclass(cls, sys.modules["keras"].utils.PyDataset)


def is_keras3_model(obj: Any) -> bool:
    return "keras" in sys.modules and isinstance(obj, sys.modules["keras"].Model)
