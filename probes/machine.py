"""The machine as this process sees it: cores and memory it may really use."""

from __future__ import annotations

import math
import multiprocessing
import os
import platform
import sys
from importlib import metadata
from pathlib import Path

import psutil

from probes.profiles import MachineProfile
from tuner.core import StartMethod

_VERSIONED_PACKAGES = ("tensorflow", "tensorflow-cpu", "keras", "tf-keras", "jax", "jaxlib", "torch", "numpy", "optuna",
                       "threadpoolctl")
_CGROUP_ROOT = Path("/sys/fs/cgroup")


def probe_machine(cgroup_root: Path = _CGROUP_ROOT) -> MachineProfile:
    """Profiles cores (affinity, cgroup quota), memory (and its limit) and versions.

    Reads versions from package metadata so that probing never imports
    TensorFlow (seconds, and hundreds of MB).
    """
    logical = os.cpu_count() or 1
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else logical
    quota = read_cgroup_cpu_quota(cgroup_root)
    usable = affinity if quota is None else max(1, min(affinity, math.floor(quota)))
    memory = psutil.virtual_memory()
    return MachineProfile(
        logical_cores=logical,
        affinity_cores=affinity,
        cgroup_cpu_quota=quota,
        usable_cores=usable,
        memory_total_bytes=int(memory.total),
        memory_available_bytes=int(memory.available),
        memory_limit_bytes=read_cgroup_memory_limit(cgroup_root),
        python_version=sys.version.split()[0],
        platform=platform.platform(),
        start_method=StartMethod(multiprocessing.get_start_method(allow_none=True) or _default_start_method()),
        package_versions=_package_versions(),
        cpu_model=cpu_model(),
    )


def cpu_model() -> str:
    """The CPU's marketing name (``/proc/cpuinfo`` on Linux), else what ``platform`` knows."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "Hardware") and value.strip():
                return value.strip()
    return platform.processor() or platform.machine() or "unknown CPU"


def read_cgroup_cpu_quota(cgroup_root: Path = _CGROUP_ROOT) -> float | None:
    """Cores granted by cgroup v2 ``cpu.max`` (or v1 cfs quota); None if unlimited."""
    v2 = cgroup_root / "cpu.max"
    if v2.is_file():
        quota, _, period = v2.read_text().strip().partition(" ")
        if quota == "max" or not period:
            return None
        return int(quota) / int(period)
    v1_quota = cgroup_root / "cpu" / "cpu.cfs_quota_us"
    v1_period = cgroup_root / "cpu" / "cpu.cfs_period_us"
    if v1_quota.is_file() and v1_period.is_file():
        quota_us = int(v1_quota.read_text().strip())
        if quota_us <= 0:
            return None
        return quota_us / int(v1_period.read_text().strip())
    return None


def read_cgroup_memory_limit(cgroup_root: Path = _CGROUP_ROOT) -> int | None:
    """Bytes allowed by cgroup v2 ``memory.max`` (or v1 limit); None if unlimited."""
    for path in (cgroup_root / "memory.max", cgroup_root / "memory" / "memory.limit_in_bytes"):
        if path.is_file():
            text = path.read_text().strip()
            if text == "max":
                return None
            limit = int(text)
            # cgroup v1 reports "unlimited" as a huge page-aligned number.
            return None if limit >= 2**60 else limit
    return None


def _default_start_method() -> str:
    return multiprocessing.get_context().get_start_method()


def _package_versions() -> dict[str, str]:
    versions = {}
    for name in _VERSIONED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions
