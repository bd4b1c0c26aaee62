"""A process and its descendants as Linux's /proc shows them: the benchmarks' CPU and memory
figures for the local stack, whose Lambda workers are its grandchildren (children of the
multiprocessing forkserver it starts, itself counted: it holds the preloaded libraries the
workers share), and whose multiprocessing resource tracker is a child too."""

from __future__ import annotations

from pathlib import Path


def process_tree(root: int) -> dict[int, list[str]]:
    """The ``/proc/<pid>/stat`` fields after the command name (``fields[1]`` is the parent,
    ``[11]``/``[12]`` user/system ticks, ``[21]`` resident pages) of ``root`` and every
    process descended from it."""
    parents: dict[int, int] = {}
    stats: dict[int, list[str]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended meanwhile
        pid = int(stat.parent.name)
        parents[pid], stats[pid] = int(fields[1]), fields
    tree, todo = set(), [root]
    while todo:
        pid = todo.pop()
        tree.add(pid)
        todo += [child for child, parent in parents.items() if parent == pid]
    return {pid: stats[pid] for pid in tree if pid in stats}


def proportional_mb(pids: list[int]) -> float:
    """The processes' proportional set size in MB (``Pss`` of ``/proc/<pid>/smaps_rollup``):
    each shared page (the interpreter, shared libraries, the C extension) counted once across
    them, not once per process as a sum of resident sizes counts it."""
    total_kb = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total_kb += int(line.split()[1])
                    break
        except OSError:
            continue  # the process ended meanwhile
    return total_kb / 1024
