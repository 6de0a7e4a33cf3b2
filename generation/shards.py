"""Spreading work items (users of a data build, prompts of a batch) over the processes of one
launch: `accelerate launch`, `torchrun`, or a plain single process.

No scheduler of our own: the launcher starts one process per GPU (or CPU slot) on every node and
sets `RANK`, `WORLD_SIZE` and `LOCAL_RANK`; each process takes the items whose index is its rank
modulo the world size, writes them into the shared output folder, and records each finished item
in its own append-only journal `shards/<rank>-of-<world>.jsonl`. The main process then waits until
every item is recorded by some journal (a filesystem barrier: no process-group timeout, works on
any shared filesystem) and merges. Because items are recorded by id, a resumed launch skips what
any earlier launch finished, whatever its number of processes.

A lock file `build.lock` (held by the main process of one launch) refuses a second launch that
writes to the same folder; a lock left by a process that no longer runs on this host is taken over.

Example:
    >>> process = current_process()
    >>> mine = assigned(items, process)
    >>> journal = ShardJournal(folder, process, fingerprint)
    >>> journal.start(); [journal.item(i.id, record(i)) for i in mine]; journal.done()
    >>> records = wait_for_items(folder, [i.id for i in items], process, fingerprint)
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, TypeVar, Union

from preferthinker.errors import ConfigError, OutputExistsError, PTGenError

SHARDS_DIR = "shards"
LOCK_FILE = "build.lock"
T = TypeVar("T")


class ShardError(PTGenError):
    """A process of the launch failed or never finished its items; the message names the process
    and the command that resumes it."""

    exit_code = 5


@dataclass(frozen=True)
class LaunchProcess:
    """This process's place in its launch.

    Args:
        rank: global index of the process (0 is the main process).
        world_size: processes in the launch, all nodes together.
        local_rank: index on this node (picks the GPU).
        launch_id: the same for every process of one launch, different for concurrent launches.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    launch_id: str = ""

    def __post_init__(self) -> None:
        if self.world_size < 1 or not 0 <= self.rank < self.world_size:
            raise ValueError(
                f"rank must be in [0, world_size), got rank {self.rank} of {self.world_size}"
            )

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def shard_name(self) -> str:
        return shard_name(self.rank, self.world_size)


def shard_name(rank: int, world_size: int) -> str:
    return f"{rank:05d}-of-{world_size:05d}"


def current_process() -> LaunchProcess:
    """Rank, world size and launch id from the launcher's environment (`accelerate launch` and
    `torchrun` set RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT); one process otherwise.

    Example:
        >>> current_process().world_size   # plain `ptgen data build`
        1
    """
    env = os.environ
    world = int(env.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return LaunchProcess(launch_id=f"{socket.gethostname()}:{os.getpid()}")
    # Concurrent launches cannot share a rendezvous address, so it identifies the launch.
    address = f"{env.get('MASTER_ADDR', '')}:{env.get('MASTER_PORT', '')}"
    launch = f"{address}:{env.get('TORCHELASTIC_RUN_ID', '')}"
    return LaunchProcess(
        rank=int(env.get("RANK", "0")),
        world_size=world,
        local_rank=int(env.get("LOCAL_RANK", "0")),
        launch_id=launch,
    )


def process_device(process: LaunchProcess) -> Optional[str]:
    """`cuda:<local rank>` for a process of a multi-process launch on a CUDA machine (one GPU per
    process), else None (the usual device pick).

    Example:
        >>> process_device(LaunchProcess(rank=3, world_size=8, local_rank=3))  # on an 8-GPU node
        'cuda:3'
    """
    if process.world_size == 1:
        return None
    import torch

    if not torch.cuda.is_available():
        return None
    return f"cuda:{process.local_rank % torch.cuda.device_count()}"


def assigned(items: Sequence[T], process: LaunchProcess) -> list[T]:
    """The items this process works on: every `world_size`-th, starting at its rank.

    Example:
        >>> assigned(list("abcde"), LaunchProcess(rank=1, world_size=2))
        ['b', 'd']
    """
    return [item for index, item in enumerate(items) if index % process.world_size == process.rank]


def owner(index: int, world_size: int) -> int:
    """The rank that works on item number `index`."""
    return index % world_size


def relaunch_command(process: LaunchProcess, argv: Optional[Sequence[str]] = None) -> str:
    """The command line that runs this launch again (and so resumes it), for error messages.

    Example:
        >>> relaunch_command(LaunchProcess(), ["/x/ptgen/__main__.py", "data", "build"])
        'python -m ptgen data build'
    """
    argv = list(sys.argv if argv is None else argv)
    program = argv[:1]
    if program and Path(program[0]).name == "__main__.py":
        program = ["-m", Path(program[0]).parent.name]
    args = [*program, *argv[1:]]
    if process.world_size == 1:
        runs_python = program[:1] == ["-m"] or (program and program[0].endswith(".py"))
        head = ["python"] if runs_python else []
        return shlex.join(head + args)
    per_node = int(os.environ.get("LOCAL_WORLD_SIZE", process.world_size))
    nodes = max(1, process.world_size // max(1, per_node))
    where = " (on every node, with its rank)" if nodes > 1 else ""
    if any(key.startswith("ACCELERATE_") for key in os.environ):
        extra = ["--num_machines", str(nodes)] if nodes > 1 else []
        world = str(process.world_size)
        launcher = ["accelerate", "launch", "--multi_gpu", "--num_processes", world]
        return shlex.join([*launcher, *extra, *args]) + where
    extra = ["--nnodes", str(nodes)] if nodes > 1 else []
    return shlex.join(["torchrun", "--nproc_per_node", str(per_node), *extra, *args]) + where


# -- the launch lock ---------------------------------------------------------------------------


def _alive(pid: int) -> bool:
    """Whether process `pid` still runs on this host. A killed process that nobody has reaped
    yet (a zombie: in containers PID 1 may never reap it) holds nothing, so it counts as dead."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    except OSError:  # gone in between (Linux), or no /proc at all (macOS: trust the signal)
        return not Path("/proc").is_dir()
    state = next((line.split()[1] for line in status.splitlines() if line.startswith("State:")), "")
    return state not in ("Z", "X")


def _read_lock(path: Path) -> Optional[dict]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except ValueError:
        return {}  # half-written by a process that died while writing it


def _lock_holder(lock: dict) -> str:
    return f"host {lock.get('host', '?')} pid {lock.get('pid', '?')} since {lock.get('since', '?')}"


def acquire_lock(folder: Union[str, Path], process: LaunchProcess, wait_s: float = 300.0) -> Path:
    """Claim `folder` for this launch. The main process creates `build.lock`; the others wait
    (up to `wait_s`) until it holds their launch id.

    Raises:
        OutputExistsError: another launch that is still running holds the folder.

    Example:
        >>> acquire_lock("data/cot", current_process())
        PosixPath('data/cot/build.lock')
    """
    path = Path(folder) / LOCK_FILE
    mine = {
        "launch": process.launch_id,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "since": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "world_size": process.world_size,
    }
    busy = (
        f"{folder} is being written by another launch ({{holder}}); wait for it to finish, or "
        f"delete {path} if no build is running"
    )
    if not process.is_main:
        deadline = time.monotonic() + wait_s
        while True:
            lock = _read_lock(path)
            if lock and lock.get("launch") == process.launch_id:
                return path
            if time.monotonic() > deadline:
                raise OutputExistsError(busy.format(holder=_lock_holder(lock or {})))
            time.sleep(0.2)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        try:
            with open(path, "x", encoding="utf-8") as file:
                json.dump(mine, file)
            return path
        except FileExistsError:
            lock = _read_lock(path)
            if lock is None:
                continue  # released in between: try again
            same_launch = lock.get("launch") == process.launch_id
            stale = lock.get("host") == mine["host"] and not _alive(int(lock.get("pid", 0) or 0))
            if not (same_launch or stale or lock == {}):
                raise OutputExistsError(busy.format(holder=_lock_holder(lock))) from None
            path.unlink(missing_ok=True)  # ours from before a restart, or left by a dead process


def release_lock(folder: Union[str, Path], process: LaunchProcess) -> None:
    """Remove `build.lock` if this launch holds it."""
    path = Path(folder) / LOCK_FILE
    lock = _read_lock(path)
    if lock and lock.get("launch") == process.launch_id:
        path.unlink(missing_ok=True)


# -- the per-process journal -------------------------------------------------------------------


def _read_events(path: Path) -> list[dict]:
    """The journal's events; a torn last line (a process killed while appending) is skipped."""
    events = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    return events


class ShardJournal:
    """One process's append-only record: `start`, one `item` per finished item, then `done` or
    `failed`. A line is flushed and fsynced before the next item starts.

    Args:
        folder: the shared output folder (journals go to `folder/shards/`).
        process: this process.
        fingerprint: what the items depend on; journals of another fingerprint are refused.
    """

    def __init__(self, folder: Union[str, Path], process: LaunchProcess, fingerprint: str):
        self.process = process
        self.fingerprint = fingerprint
        self.path = Path(folder) / SHARDS_DIR / f"{process.shard_name}.jsonl"

    def _append(self, event: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as file:
            file.write(json.dumps(event, ensure_ascii=False) + "\n")
            file.flush()
            os.fsync(file.fileno())

    def start(self, items: int) -> None:
        self._append(
            {
                "event": "start",
                "fingerprint": self.fingerprint,
                "rank": self.process.rank,
                "world_size": self.process.world_size,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "items": items,
                "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            }
        )

    def item(self, item_id: str, record: Any) -> None:
        self._append({"event": "item", "id": item_id, "record": record})

    def done(self, **counts: Any) -> None:
        self._append({"event": "done", **counts})

    def failed(self, error: BaseException) -> None:
        message = str(error).splitlines()[0] if str(error) else ""
        self._append(
            {
                "event": "failed",
                "error": f"{type(error).__name__}: {message}".rstrip(": "),
                "at": time.time(),
            }
        )


def journals(folder: Union[str, Path], fingerprint: Optional[str] = None) -> dict[str, list[dict]]:
    """Every journal in `folder/shards/` by shard name, events in order.

    Raises:
        ConfigError: a journal was written for another fingerprint (another config).
    """
    found = {}
    for path in sorted((Path(folder) / SHARDS_DIR).glob("*-of-*.jsonl")):
        events = _read_events(path)
        if fingerprint is not None:
            for event in events:
                if event.get("event") == "start" and event.get("fingerprint") != fingerprint:
                    raise ConfigError(
                        f"{path} is a shard of another config (fingerprint "
                        f"{event.get('fingerprint')}, this one {fingerprint}); use a new output "
                        "folder, or delete the folder to rebuild"
                    )
        found[path.stem] = events
    return found


def finished_items(folder: Union[str, Path], fingerprint: Optional[str] = None) -> dict[str, Any]:
    """Item id -> record, over every journal in the folder (any launch, any number of processes)."""
    records: dict[str, Any] = {}
    for events in journals(folder, fingerprint).values():
        for event in events:
            if event.get("event") == "item":
                records[event["id"]] = event.get("record")
    return records


def _last_status(events: list[dict]) -> Optional[dict]:
    status = [e for e in events if e.get("event") in ("start", "done", "failed")]
    return status[-1] if status else None


def _shard_state(events: Optional[list[dict]], missing: int, total: int) -> str:
    if not events:
        return "never started (no journal)"
    last = _last_status(events) or {}
    start = next((e for e in reversed(events) if e.get("event") == "start"), {})
    where = f"host {start.get('host', '?')} pid {start.get('pid', '?')}"
    if last.get("event") == "failed":
        return f"failed ({where}): {last.get('error', '?')}"
    return f"stopped or still running ({where}), {missing} of {total} items missing"


def wait_for_items(
    folder: Union[str, Path],
    item_ids: Sequence[str],
    process: LaunchProcess,
    fingerprint: str,
    timeout_s: Optional[float] = None,
    resume_command: Optional[str] = None,
    poll_s: float = 1.0,
    finished: Optional[Callable[[], dict[str, Any]]] = None,
    since: Optional[float] = None,
) -> dict[str, Any]:
    """Wait until every item is recorded as finished, then return id -> record (the merge's
    input). Run by the main process after its own items.

    Args:
        folder: the shared output folder.
        item_ids: all items of the launch, in order (item i belongs to rank i % world_size).
        process: this (main) process.
        fingerprint: the config's fingerprint (journals of another one are refused).
        timeout_s: give up after this long (None: wait as long as the launch runs; a process
            that dies makes the launcher stop the others).
        resume_command: shown in the error (default: `relaunch_command(process)`).
        poll_s: seconds before the second look at the journals (growing to 10 s).
        finished: what counts as finished (default: `finished_items(folder, fingerprint)`).
        since: when this launch started (`time.time()`); failures recorded before it belong to
            an earlier launch and are not reported (default: now).

    Raises:
        ShardError: a process of this launch recorded a failure, or the timeout passed; the
            message names each unfinished process and the command that resumes it.

    Example:
        >>> records = wait_for_items("data/cot", user_ids, current_process(), config.fingerprint())
    """
    finished = finished or (lambda: finished_items(folder, fingerprint))
    since = time.time() if since is None else since
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        records = finished()
        missing = [(index, item) for index, item in enumerate(item_ids) if item not in records]
        if not missing:
            return records
        logs = journals(folder, fingerprint)
        unfinished = {
            shard_name(owner(index, process.world_size), process.world_size) for index, _ in missing
        }
        statuses = {name: _last_status(logs.get(name, [])) or {} for name in unfinished}
        # Failures from before this launch started belong to an earlier launch (a minute of
        # clock skew allowed between nodes).
        failed = [
            name
            for name, status in statuses.items()
            if status.get("event") == "failed" and status.get("at", 0) >= since - 60
        ]
        if failed or (deadline is not None and time.monotonic() > deadline):
            per_rank: dict[int, int] = {}
            for index, _ in missing:
                rank = owner(index, process.world_size)
                per_rank[rank] = per_rank.get(rank, 0) + 1
            totals = {r: len(range(r, len(item_ids), process.world_size)) for r in per_rank}
            parts = [
                f"process {rank} (shard {shard_name(rank, process.world_size)}) "
                + _shard_state(logs.get(shard_name(rank, process.world_size)), count, totals[rank])
                for rank, count in sorted(per_rank.items())
            ]
            command = resume_command or relaunch_command(process)
            raise ShardError(
                f"cannot merge {folder}: {len(missing)} of {len(item_ids)} items unfinished: "
                f"{'; '.join(parts)}; finished items are kept, resume with: {command}"
            )
        time.sleep(poll_s)
        poll_s = min(poll_s * 1.5, 10.0)  # a long wait reads the journals less often


__all__ = [
    "LaunchProcess",
    "ShardError",
    "ShardJournal",
    "acquire_lock",
    "assigned",
    "current_process",
    "finished_items",
    "journals",
    "owner",
    "process_device",
    "relaunch_command",
    "release_lock",
    "shard_name",
    "wait_for_items",
]
