"""The run journal: an append-only record of everything a run has finished, so nothing is lost.

Every run folder holds `journal.jsonl`, one JSON object per line, each flushed and fsynced as it
is written. Kinds of record, in the order a run writes them:

- `start`: the settings that shape the results (`settings`) and the command's options
  (`options`, so `--resume` can rebuild the command); a resumed run checks its settings against
  the first `start` and appends another.
- `references`: sha256 of every liked and disliked reference image.
- `profile`: the predicted (or cached) profile.
- `rewrite`: the rewritten prompt.
- `candidate`: one generated (or given) image, with its file in the run folder.
- `comparison`: one finished comparison (candidate indices `a` and `b`, its round, the result).
- `stop`: how the run ended: `status` "complete" or "partial", and the reason.

The journal is the truth: `--resume` reads it and computes only what is not in it, and the
result written at the end (or on a failure or interruption) holds what it records. A line cut
short by a crash is ignored when read.

Example:
    >>> journal = Journal.open(folder)
    >>> journal.append("candidate", index=0, seed=0, file="candidate-00-seed0.png")
    >>> [r["index"] for r in journal.records_of("candidate")]
    [0]
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from pathlib import Path
from typing import Any, Optional, Union

from preferthinker.errors import InputError
from preferthinker.profile import UserProfile
from preferthinker.results import ElementScore, ParsedOutput, ProfilePrediction, Usage

JOURNAL_NAME = "journal.jsonl"
JOURNAL_FORMAT = 1

# The fields each kind of record must hold, and their types: a record without them (a hand-edited
# or damaged line) is skipped like a torn one, so what it held is computed again, not crashed on.
_FIELDS: dict[str, dict[str, Any]] = {
    "start": {"settings": dict, "options": dict},
    "references": {"liked": list, "disliked": list},
    "profile": {"prediction": dict},
    "rewrite": {"rewrite": dict},
    "candidate": {"index": int},
    "comparison": {"a": int, "b": int, "comparison": dict},
}


class ResumeMismatch(InputError):
    """`--resume` with inputs or settings other than the run's: refused, the run left as it was."""


def _well_formed(record: Any) -> bool:
    if not isinstance(record, dict) or not isinstance(record.get("kind"), str):
        return False
    fields = _FIELDS.get(record["kind"], {})
    return all(isinstance(record.get(name), kind) for name, kind in fields.items())


def read_records(path: Union[str, Path]) -> list[dict[str, Any]]:
    """The records of a journal file; a line cut short by a crash, or damaged, is skipped.

    Example:
        >>> read_records("ptgen-runs/run-001/journal.jsonl")[0]["kind"]
        'start'
    """
    records = []
    # ptgen writes ASCII JSON; bytes that are not UTF-8 make a line that is skipped, not a crash.
    with open(path, encoding="utf-8", errors="replace") as file:
        for line in file:
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a torn write: everything before it is intact
            if _well_formed(record):
                records.append(record)
    return records


class Journal:
    """The append-only journal of one run folder (thread-safe appends).

    Args:
        path: the journal file; created when absent, appended to when present.
    """

    def __init__(self, path: Union[str, Path]):
        self.path = Path(path)
        self.folder = self.path.parent
        self.records: list[dict[str, Any]] = read_records(self.path) if self.path.exists() else []
        self._lock = threading.Lock()
        self._file = open(self.path, "a", encoding="utf-8")

    @classmethod
    def open(cls, folder: Union[str, Path]) -> "Journal":
        """The journal of a run folder (`folder/journal.jsonl`)."""
        return cls(Path(folder) / JOURNAL_NAME)

    @property
    def resumed(self) -> bool:
        """True when the journal already held records: this run continues an earlier one."""
        return any(record["kind"] == "start" for record in self.records)

    def append(self, kind: str, **fields: Any) -> dict[str, Any]:
        """Write one record, flushed and fsynced before returning."""
        record = {"kind": kind, "time": round(time.time(), 3), **fields}
        line = json.dumps(record, default=str) + "\n"
        with self._lock:
            self._file.write(line)
            self._file.flush()
            os.fsync(self._file.fileno())
            self.records.append(record)
        return record

    def records_of(self, kind: str) -> list[dict[str, Any]]:
        return [record for record in self.records if record["kind"] == kind]

    def last(self, kind: str) -> Optional[dict[str, Any]]:
        found = self.records_of(kind)
        return found[-1] if found else None

    def start(self, settings: dict[str, Any], options: Optional[dict[str, Any]] = None) -> None:
        """Record the run's settings; on a resumed run, first check they match the earlier ones.

        Raises:
            InputError: a setting that would change the results differs (the message names it).
        """
        earlier = next((r for r in self.records if r["kind"] == "start"), None)
        if earlier is not None:
            before = earlier.get("settings", {})
            normalized = json.loads(json.dumps(settings, default=str))
            for name in sorted(set(before) | set(normalized)):
                if before.get(name) != normalized.get(name):
                    raise ResumeMismatch(
                        f"cannot resume {self.folder}: it ran with {name} = {before.get(name)!r}, "
                        f"this command gives {normalized.get(name)!r}; use the same setting or "
                        "start a new run"
                    )
        self.append("start", format=JOURNAL_FORMAT, settings=settings, options=options or {})

    def close(self) -> None:
        with self._lock:
            if not self._file.closed:
                self._file.close()


def run_options(folder: Union[str, Path]) -> dict[str, Any]:
    """The command options recorded by the first `start` of a run folder (for `--resume`).

    Raises:
        InputError: the folder holds no journal.
    """
    path = Path(folder) / JOURNAL_NAME
    if not path.is_file():
        raise InputError(
            f"--resume {folder}: no {JOURNAL_NAME} there; give a run folder ptgen wrote"
        )
    start = next((r for r in read_records(path) if r["kind"] == "start"), None)
    if start is None:
        raise InputError(f"--resume {folder}: its journal has no start record")
    return dict(start.get("options", {}))


def image_sha256(image: Any) -> str:
    """sha256 of an image's mode, size and pixels (what the assessor sees)."""
    digest = hashlib.sha256(f"{image.mode}:{image.size[0]}x{image.size[1]};".encode())
    digest.update(image.tobytes())
    return digest.hexdigest()


# -- records back into result objects ---------------------------------------------------------


def _damaged(kind: str, error: Exception) -> InputError:
    return InputError(
        f"the run's journal holds a damaged {kind} record ({type(error).__name__}: {error}); "
        "start a new run"
    )


def profile_from_record(data: dict[str, Any]) -> ProfilePrediction:
    """The `ProfilePrediction` a `ProfilePrediction.to_dict()` wrote.

    Raises:
        InputError: the record is damaged.
    """
    try:
        return _profile_from_record(data)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise _damaged("profile", error) from None


def _profile_from_record(data: dict[str, Any]) -> ProfilePrediction:
    return ProfilePrediction(
        profile=UserProfile.from_dict(data["profile"]),
        status=data["status"],
        raw_text=data.get("raw_text", ""),
        issues=list(data.get("issues", [])),
        attempts=int(data.get("attempts", 1)),
        usage=Usage(**data.get("usage", {})),
    )


def _parsed_from_record(data: dict[str, Any]) -> ParsedOutput:
    return ParsedOutput(
        profile=UserProfile.from_dict(data["profile"]) if data.get("profile") else None,
        scores=[ElementScore(**score) for score in data.get("scores", [])],
        total_a=data.get("total_a"),
        total_b=data.get("total_b"),
        answer=data.get("answer"),
        stated_answer=data.get("stated_answer"),
        issues=list(data.get("issues", [])),
        complete=bool(data.get("complete", False)),
    )


def comparison_from_record(data: dict[str, Any]) -> Any:
    """The `Comparison` a `Comparison.to_dict()` wrote.

    Raises:
        InputError: the record is damaged.
    """
    try:
        return _comparison_from_record(data)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise _damaged("comparison", error) from None


def _comparison_from_record(data: dict[str, Any]) -> Any:
    from preferthinker.results import Comparison

    return Comparison(
        winner=data.get("winner"),
        parsed=[_parsed_from_record(p) for p in data.get("parsed", [])],
        raw_texts=list(data.get("raw_texts", [])),
        profile=UserProfile.from_dict(data["profile"]) if data.get("profile") else None,
        swap_agrees=data.get("swap_agrees"),
        issues=list(data.get("issues", [])),
        usage=Usage(**data.get("usage", {})),
    )
