"""Memory of a process tree without double-counting pages shared after fork.

Summing RSS over a parent and its forked Keras workers counts the pages the
workers share with the TensorFlow parent (hundreds of MB) once per worker.
PSS splits each shared page among its sharers, so the sum over the tree is
what the tree really costs.
"""

from __future__ import annotations

import psutil


def tree_pss_bytes(root_pid: int) -> int:
    """Proportional set size of ``root_pid`` and all its descendants, in bytes.

    Falls back to USS, then RSS, where the kernel does not report PSS.
    Processes that exit while being read are skipped.
    """
    try:
        root = psutil.Process(root_pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for process in processes:
        try:
            info = process.memory_full_info()
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
        except psutil.AccessDenied:
            total += process.memory_info().rss
            continue
        total += getattr(info, "pss", None) or getattr(info, "uss", None) or info.rss
    return total

