"""Pure measurement: the machine, the user's data code and the model step.

No Optuna and no Keras import here; the engine hands in the objects.
"""

from probes.dataset import DataCodeError, probe_dataset
from probes.machine import probe_machine
from probes.memory import tree_pss_bytes
from probes.model import probe_model
from probes.profiles import DatasetProfile, MachineProfile, ModelProfile, Spread

__all__ = [
    "DataCodeError",
    "DatasetProfile",
    "MachineProfile",
    "ModelProfile",
    "Spread",
    "probe_dataset",
    "probe_machine",
    "probe_model",
    "tree_pss_bytes",
]
