"""CPU that other processes take while a window runs: the interference a timing cannot see in itself.

System-wide busy time minus the CPU of the measured process tree (the trial process, the Keras workers it
has reaped, and the parent that watches it), plus the hypervisor's steal time, over the window's wall time:
the cores others used. Linux reports steal; elsewhere it counts as 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import psutil


@dataclass(frozen=True)
class CpuSnapshot:
    busy_seconds: float
    steal_seconds: float
    ours_seconds: float


def cpu_snapshot(pids: tuple[int, ...], trees: tuple[int, ...] = ()) -> CpuSnapshot:
    """System-wide busy and steal CPU seconds, and the CPU seconds of ``pids``, of ``trees`` and of every
    live descendant of ``trees``, each with its reaped children.

    Live descendants count because a forkserver's workers are its children, not the trial process's: their
    CPU reaches the forkserver's reaped-children times, never the trial process's, and would otherwise read
    as another program's load. A descendant reaped between two snapshots moves from its own times to its
    parent's reaped-children times, so the difference stays what the tree used in between.
    """
    system = psutil.cpu_times()
    busy = sum(getattr(system, field, 0.0) for field in ("user", "nice", "system", "irq", "softirq"))
    tree: dict[int, psutil.Process] = {}
    for pid in pids + trees:
        try:
            root = psutil.Process(pid)
            descendants = root.children(recursive=True) if pid in trees else []
        except psutil.Error:
            continue
        tree |= {process.pid: process for process in [root, *descendants]}
    ours = 0.0
    for process in tree.values():
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        ours += times.user + times.system + getattr(times, "children_user", 0.0) + getattr(times, "children_system", 0.0)
    return CpuSnapshot(busy, getattr(system, "steal", 0.0), ours)


def foreign_cores(before: CpuSnapshot, after: CpuSnapshot, wall_seconds: float) -> float:
    """Cores' worth of CPU that processes outside ``pids`` (and the hypervisor) took between two snapshots."""
    if wall_seconds <= 0:
        return 0.0
    busy = after.busy_seconds - before.busy_seconds
    ours = after.ours_seconds - before.ours_seconds
    steal = after.steal_seconds - before.steal_seconds
    return max(0.0, busy - ours) / wall_seconds + max(0.0, steal) / wall_seconds
