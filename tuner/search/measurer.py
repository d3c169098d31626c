"""What the search needs from whoever times a setting: one window at a time, or a reason it stopped."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from tuner.core import LoaderConfig, StopKind, TrialStatus, WindowTiming


class TrialStopped(Exception):
    """A setting could not be timed: ``status`` is ``failed`` or ``infeasible``, ``kind`` what stopped it,
    ``reason`` says why in words."""

    def __init__(self, status: TrialStatus, reason: str, kind: StopKind = StopKind.ERROR):
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.kind = kind


@dataclass(frozen=True)
class Measurement:
    """One timed window as the search sees it; ``foreign_cores`` is the CPU other processes (and the
    hypervisor's steal) took meanwhile, in cores (``probes.load``)."""

    timing: WindowTiming
    peak_memory_bytes: int
    leftover_processes: int
    wall_seconds: float
    foreign_cores: float = 0.0


class Measurer(Protocol):
    """Runs one window of ``config``; raises ``TrialStopped`` when it cannot."""

    def measure(self, config: LoaderConfig, window_index: int, epochs: int = 1,
                batches: int | None = None) -> Measurement:
        """One ``fit`` of ``epochs`` epochs of ``batches`` batches each (None: the measurer's screen window
        for ``config``); with more than one epoch, every epoch but the first is timed from the end of the one
        before and they are averaged: epochs as the user's training runs them."""
