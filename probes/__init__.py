"""Pure measurement: the machine, the user's data code and the model step.

No Optuna and no Keras import here; the engine hands in the objects. The names below load on first use
(PEP 562), so a worker that needs ``probes.profiles`` does not import the probes and SciPy with it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

_WHERE = {
    "DataCodeError": "probes.dataset",
    "probe_dataset": "probes.dataset",
    "probe_machine": "probes.machine",
    "tree_pss_bytes": "probes.memory",
    "probe_model": "probes.model",
    **{name: "probes.profiles" for name in ("DatasetProfile", "MachineProfile", "ModelProfile", "Spread")},
}

__all__ = ["DataCodeError", "DatasetProfile", "MachineProfile", "ModelProfile", "Spread", "probe_dataset",
           "probe_machine", "probe_model", "tree_pss_bytes"]

if TYPE_CHECKING:
    from probes.dataset import DataCodeError, probe_dataset
    from probes.machine import probe_machine
    from probes.memory import tree_pss_bytes
    from probes.model import probe_model
    from probes.profiles import DatasetProfile, MachineProfile, ModelProfile, Spread


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'probes' has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)
