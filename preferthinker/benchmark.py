"""The benchmark item format: one loader for the authors' PreferImg-Bench JSON and ours.

The authors' items (a JSON list) hold `imageA`, `imageB`, `prefered_images`,
`non_prefered_images` (their spelling) and the ground truth in `conversations[0]["value"]`
as "Image A" / "Image B"; image paths are relative to an image root. Ours carry the same fields
(so the authors' evaluation script can read our sets) plus `answer`, `split`, `user_id`,
`profile` (the hidden ground-truth profile, when known) and `meta`. Ours may also be JSONL.

Example:
    >>> items = load_benchmark("synthpref/benchmark.json")
    >>> items[0].answer, items[0].split
    ('B', 'seen-SP')
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence, Union

from preferthinker.errors import InputError
from preferthinker.profile import ELEMENTS, Profile, UserProfile

ImageRef = Any  # a path (str / Path) or a PIL image (in-memory items)

_ANSWER_RE = re.compile(
    r"^\s*(?:<answer>\s*)?image\s*([AB])\s*(?:</answer>)?\s*\.?\s*$", re.IGNORECASE
)
_TAGGED_ANSWER_RE = re.compile(r"<answer>\s*image\s*([AB])\s*</answer>", re.IGNORECASE)


@dataclass
class BenchmarkItem:
    """One candidate pair for one user.

    Attributes:
        image_a, image_b: the two candidates (paths, resolved against the image root on load;
            PIL images for in-memory items).
        preferred, non_preferred: the user's liked / disliked reference images.
        answer: "A" or "B", the candidate the user prefers.
        split: e.g. "seen-SP", "unseen-MP", "train", or the file's stem for the authors' sets.
        user_id: the user this pair belongs to ("" when unknown).
        profile: the hidden ground-truth profile (SynthPref), None when unknown.
        meta: anything else (rendered attributes, the authors' extra fields).
        item_id: a stable id ("" -> the position in the file).
    """

    image_a: ImageRef
    image_b: ImageRef
    preferred: list[ImageRef] = field(default_factory=list)
    non_preferred: list[ImageRef] = field(default_factory=list)
    answer: str = "A"
    split: str = ""
    user_id: str = ""
    profile: Optional[UserProfile] = None
    meta: dict[str, Any] = field(default_factory=dict)
    item_id: str = ""

    def __post_init__(self) -> None:
        if self.answer not in ("A", "B"):
            raise ValueError(f"BenchmarkItem.answer must be 'A' or 'B', got {self.answer!r}")

    def swapped(self) -> "BenchmarkItem":
        """The same item with the candidates in the other order (answer flipped)."""
        return BenchmarkItem(
            image_a=self.image_b,
            image_b=self.image_a,
            preferred=list(self.preferred),
            non_preferred=list(self.non_preferred),
            answer="B" if self.answer == "A" else "A",
            split=self.split,
            user_id=self.user_id,
            profile=self.profile,
            meta=dict(self.meta),
            item_id=self.item_id,
        )


def user_profile_from_dict(data: Any) -> UserProfile:
    """`UserProfile.from_dict` for our own records: canonical element keys are read directly
    (no parser needed); other key spellings go through `UserProfile.from_dict`.

    Example:
        >>> user_profile_from_dict({"liked": {"color": ["Pink"]}, "disliked": {}}).liked.color
        ('Pink',)
    """
    if not isinstance(data, dict):
        raise TypeError(f"a profile must be a mapping, got {type(data).__name__}")
    sides = [data.get("liked") or {}, data.get("disliked") or {}]
    if all(isinstance(s, dict) and set(s) <= set(ELEMENTS) for s in sides):
        return UserProfile(liked=Profile(**sides[0]), disliked=Profile(**sides[1]))
    return UserProfile.from_dict(data)


def _answer_from(value: Any) -> Optional[str]:
    """ "Image A", "<answer>Image B</answer>", or a full CoT (its last answer block) -> letter."""
    if not isinstance(value, str):
        return None
    match = _ANSWER_RE.match(value)
    if match:
        return match.group(1).upper()
    if _TAGGED_ANSWER_RE.search(value):
        from preferthinker.parser import read_answer

        return read_answer(value)
    return None


_ANSWER_ROLES = {"gpt", "assistant", "model", "bot"}


def _answer_turn(conversations: list) -> Any:
    """The turn that holds the truth: the last turn by the assistant ("from": "gpt" / "role":
    "assistant"), else the last turn. The authors' benchmark has one turn (the answer); their
    training layout has [question, answer], and the question quotes the format line
    "<answer>Image A</answer> or <answer>Image B</answer>", so it is never read."""
    by_assistant = [
        turn
        for turn in conversations
        if isinstance(turn, dict)
        and str(turn.get("from") or turn.get("role") or "").lower() in _ANSWER_ROLES
    ]
    return (by_assistant or conversations)[-1]


def _item_answer(raw: dict[str, Any], where: str) -> str:
    """Ours: `answer`. The authors': the answer turn of `conversations` (see `_answer_turn`)."""
    answer = raw.get("answer")
    if answer is not None:
        if answer in ("A", "B"):
            return answer
        parsed = _answer_from(answer)
        if parsed is None:
            raise InputError(f"{where}: field 'answer' must be 'A' or 'B', got {answer!r}")
        return parsed
    conversations = raw.get("conversations")
    if not isinstance(conversations, list) or not conversations:
        raise InputError(
            f"{where}: no ground truth; expected 'answer' or "
            '\'conversations[0]["value"]\' = "Image A"/"Image B"'
        )
    turn = _answer_turn(conversations)
    value = turn.get("value") if isinstance(turn, dict) else turn
    parsed = _answer_from(value)
    if parsed is None:
        raise InputError(
            f"{where}: field 'conversations': the answer turn holds no "
            '"Image A"/"Image B" answer '
            f"(value: {str(value)[:60]!r})"
        )
    return parsed


def _resolve(path: Any, root: Path, where: str, name: str) -> str:
    if not isinstance(path, str) or not path:
        raise InputError(f"{where}: field {name!r} must be a non-empty path string, got {path!r}")
    candidate = Path(path)
    return str(candidate if candidate.is_absolute() else root / candidate)


def _path_list(raw: dict[str, Any], key: str, root: Path, where: str) -> list[str]:
    value = raw.get(key, [])
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise InputError(
            f"{where}: field {key!r} must be a list of paths, got {type(value).__name__}"
        )
    return [_resolve(v, root, where, f"{key}[{i}]") for i, v in enumerate(value)]


_KNOWN = {
    "imageA",
    "imageB",
    "prefered_images",
    "non_prefered_images",
    "conversations",
    "answer",
    "split",
    "user_id",
    "profile",
    "meta",
    "id",
}


def _parse_item(raw: Any, index: int, root: Path, default_split: str, source: str) -> BenchmarkItem:
    where = f"{source} item {index}"
    if not isinstance(raw, dict):
        raise InputError(f"{where}: must be a JSON object, got {type(raw).__name__}")
    for key in ("imageA", "imageB"):
        if key not in raw:
            raise InputError(f"{where}: missing field {key!r} (a candidate image path)")
    profile = None
    if raw.get("profile") is not None:
        try:
            profile = user_profile_from_dict(raw["profile"])
        except (KeyError, TypeError, AttributeError) as error:
            raise InputError(f"{where}: field 'profile' is not a profile ({error})") from None
    meta = dict(raw.get("meta") or {})
    # Keep the authors' extra fields (prefer_attributes, reference_prompt_list, ...) visible.
    meta.update({k: v for k, v in raw.items() if k not in _KNOWN})
    return BenchmarkItem(
        image_a=_resolve(raw["imageA"], root, where, "imageA"),
        image_b=_resolve(raw["imageB"], root, where, "imageB"),
        preferred=_path_list(raw, "prefered_images", root, where),
        non_preferred=_path_list(raw, "non_prefered_images", root, where),
        answer=_item_answer(raw, where),
        split=str(raw.get("split") or default_split),
        user_id=str(raw.get("user_id") or ""),
        profile=profile,
        meta=meta,
        item_id=str(raw.get("id") if raw.get("id") is not None else index),
    )


def _read_records(path: Path) -> list[Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise InputError(
            f"{path} is not UTF-8 text (byte {error.start}); give JSON or JSONL"
        ) from None
    stripped = text.lstrip()
    if path.suffix == ".jsonl" or (stripped and not stripped.startswith("[")):
        records = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise InputError(f"{path} line {number} is not valid JSON: {error.msg}") from None
        return records
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(f"{path} is not valid JSON (line {error.lineno}: {error.msg})") from None
    if not isinstance(data, list):
        raise InputError(f"{path} must hold a JSON list of items, got {type(data).__name__}")
    return data


def load_benchmark(
    path: Union[str, Path],
    image_root: Optional[Union[str, Path]] = None,
    check_files: bool = False,
    skipped: Optional[list[str]] = None,
) -> list[BenchmarkItem]:
    """Read a benchmark file (the authors' JSON list, ours as JSON list or JSONL).

    Args:
        path: the file; a folder is read as `<folder>/benchmark.json` (what SynthPref writes).
        image_root: folder that relative image paths start from (default: the file's folder).
        check_files: raise `InputError` naming the first item whose image file is missing.
        skipped: a list to collect bad items in: each bad item (no truth, a missing field, a
            missing image file with `check_files`) is then left out and its one-line reason
            appended, instead of raising. Problems of the file itself still raise.

    Returns:
        Items with absolute (or root-joined) image paths. The split of items without one is the
        file's stem (e.g. "SP_ID" for the authors' `SP_ID.json`).

    Example:
        >>> items = load_benchmark(
        ...     "PreferImg-Bench/SP_ID.json", image_root="PreferImg-Bench/images"
        ... )
    """
    path = Path(path)
    if path.is_dir():
        candidates = [path / "benchmark.json", path / "benchmark.jsonl"]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise InputError(
                f"{path} is a folder without benchmark.json; pass the JSON file itself"
            )
        path = found
    if not path.is_file():
        raise InputError(f"benchmark file not found: {path}")
    root = Path(image_root) if image_root is not None else path.parent
    if image_root is not None and not root.is_dir():
        raise InputError(
            f"image root not found: {root}; pass --image-root with the benchmark's image folder"
        )
    items = []
    for index, raw in enumerate(_read_records(path)):
        try:
            item = _parse_item(raw, index, root, path.stem, str(path))
            if check_files:
                for image in [item.image_a, item.image_b, *item.preferred, *item.non_preferred]:
                    if not Path(image).is_file():
                        raise InputError(
                            f"{path} item {index}: image file not found: {image}; "
                            "check --image-root"
                        )
        except InputError as error:
            if skipped is None:
                raise
            skipped.append(str(error))
            continue
        items.append(item)
    return items


def _relative(value: Any, base: Path, where: str) -> str:
    if not isinstance(value, (str, os.PathLike)):
        raise InputError(
            f"{where}: write_benchmark needs image paths; save PIL images to files first"
        )
    p = Path(value)
    try:
        return (
            os.path.relpath(p.resolve(), base.resolve())
            if p.is_absolute() or p.exists()
            else str(p)
        )
    except ValueError:  # another drive on Windows
        return str(p)


def item_to_record(item: BenchmarkItem, base: Path, index: int = 0) -> dict[str, Any]:
    """The JSON record of one item: the authors' fields first, then ours. Paths are made relative
    to `base` (the file's folder) so the set can be moved as one folder."""
    where = f"item {index}"
    record: dict[str, Any] = {
        "id": item.item_id or str(index),
        "imageA": _relative(item.image_a, base, where),
        "imageB": _relative(item.image_b, base, where),
        "prefered_images": [_relative(p, base, where) for p in item.preferred],
        "non_prefered_images": [_relative(p, base, where) for p in item.non_preferred],
        "conversations": [{"from": "gpt", "value": f"Image {item.answer}"}],
        "answer": item.answer,
        "split": item.split,
        "user_id": item.user_id,
        "profile": item.profile.to_dict() if item.profile else None,
        "meta": item.meta,
    }
    return record


def write_benchmark(items: Iterable[BenchmarkItem], path: Union[str, Path]) -> Path:
    """Write items as a JSON list (or JSONL when `path` ends in .jsonl) with the authors' fields
    plus ours; image paths relative to the file's folder. Returns the path written.

    Example:
        >>> write_benchmark(items, "out/benchmark.json")
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    base = path.parent
    records = [item_to_record(item, base, i) for i, item in enumerate(items)]
    if path.suffix == ".jsonl":
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    else:
        text = json.dumps(records, ensure_ascii=False, indent=1)
    path.write_text(text, encoding="utf-8")
    return path


def split_names(items: Sequence[BenchmarkItem]) -> list[str]:
    """The splits present, in first-seen order."""
    return list(dict.fromkeys(item.split for item in items))


__all__ = [
    "BenchmarkItem",
    "item_to_record",
    "load_benchmark",
    "split_names",
    "user_profile_from_dict",
    "write_benchmark",
]
