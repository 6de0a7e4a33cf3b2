"""Importing the authors' training data (their PreferThinker-Dataset layout) as a ptgen training
set.

The authors' records (JSON list, JSONL, a Hugging Face `datasets` folder written with
`save_to_disk`, or a parquet export; their GRPO script reads JSONL) hold `imageA`, `imageB`,
`prefered_images`, `non_prefered_images` (their spelling; paths relative to an image folder),
`conversations` = [question turn, answer turn], `user_id`, `reference_prompt_list` (the prompts
the references were generated from) and the ground-truth profiles `prefer_attributes` /
`non_prefer_attributes` (a dict keyed "Art Styles", "Color", "Artistic Medium", "Saturation",
"Detail", or a string).

Stages of `import_dataset` (the `ptgen data import PATH --images DIR --out DATASET` command):

1. check the output folder (new or empty: an earlier import is never overwritten);
2. read the records; report unknown fields and missing optional fields per field name;
3. per record: the truth from the answer turn only (`conversations[1]`; the question turn's
   format line names both answers); an answer that is a full predict-then-assess CoT is checked
   by the same filter as `ptgen data build` (`training.cot.check_cot`) and becomes an SFT target
   as written; a bare answer (`Image A`, `<answer>Image B</answer>`) becomes a GRPO prompt whose
   reward columns are the answer, the ground-truth profiles and the first reference prompt (the
   subject the prediction reward's image term renders both profiles from, as the authors'
   reward does); every image is opened once, and a record with a missing or unreadable image is
   reported and skipped;
4. write `sft.jsonl` (CoT targets), `grpo.jsonl` (GRPO prompts), the dataset card and
   `import_report.json`. The prompt of each record is ptgen's predict-then-assess conversation
   (`preferthinker.prompts.build_assess_messages`, the one the assessor uses at inference,
   matching the authors' evaluation prompt); images stay where they are (absolute paths).

`ptgen train sft` reads it with `dataset_split: sft`, `ptgen train grpo` with
`dataset_split: grpo` (see `training/recipes/preferthinker-7b/`).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Union

from preferthinker.errors import InputError, OutputExistsError
from preferthinker.profile import Profile, UserProfile

PathLike = Union[str, Path]
Progress = Callable[[int, int], None]

SFT_SPLIT, GRPO_SPLIT = "sft", "grpo"
REPORT = "import_report.json"
# Fields of the authors' training records. Required ones make a record unusable when absent.
REQUIRED_FIELDS = ("imageA", "imageB", "prefered_images", "conversations")
OPTIONAL_FIELDS = (
    "non_prefered_images",
    "user_id",
    "reference_prompt_list",
    "prefer_attributes",
    "non_prefer_attributes",
)
# Fields that appear in ptgen's own records or are harmless ids: read, not reported as unknown.
KNOWN_EXTRA_FIELDS = ("id",)
# A bare answer turn: "Image A", "<answer>Image B</answer>", "<answer> Image A </answer>".
_BARE_ANSWER = re.compile(
    r"^\s*(?:<answer>\s*)?Image\s+([AB])\s*(?:</answer>)?\s*\.?\s*$", re.IGNORECASE
)
# How many problems of each kind the report lists by record (the counts are always complete).
MAX_LISTED = 200


@dataclass
class ImportConfig:
    """What `ptgen data import` reads and writes.

    Args:
        source: the authors' training file (JSON list or JSONL), a `datasets` folder written
            with `save_to_disk`, or a parquet file.
        images: the folder the records' image paths start from.
        output_dir: the ptgen training folder to write (must not exist, or be empty).
        check_profile: reject a CoT whose written profile differs from the record's
            ground-truth profile (reason `profile_mismatch`), as `ptgen data build` does.
        cot_as_grpo: CoT records (their answer and profiles are known) also become GRPO
            prompts; false keeps GRPO to the answer-only records.
        max_references: references per side in the prompt (the authors use the first 5).

    Example:
        >>> cfg = ImportConfig(source="train.jsonl", images="images", output_dir="data/authors")
    """

    source: str = ""
    images: str = ""
    output_dir: str = ""
    check_profile: bool = True
    cot_as_grpo: bool = True
    max_references: int = 5

    def __post_init__(self) -> None:
        for name in ("source", "images", "output_dir"):
            if not getattr(self, name):
                raise ValueError(f"{name} must be given, got ''")
        if not isinstance(self.max_references, int) or self.max_references < 1:
            raise ValueError(f"max_references must be an int >= 1, got {self.max_references!r}")


# ---------------------------------------------------------------------------------------------
# 2. Reading the records


def read_records(source: PathLike) -> list[Any]:
    """The records of an authors'-layout file: JSON list, JSONL, `save_to_disk` folder, parquet.
    A JSONL line that is not JSON comes back as an `UnreadableLine` in its place.

    Example:
        >>> read_records("PreferThinker-Dataset/train.jsonl")[0]["imageA"]  # doctest: +SKIP
        'user_1/A.png'
    """
    path = Path(source)
    if path.is_dir():
        return _read_saved_dataset(path)
    if not path.is_file():
        raise InputError(
            f"training data not found: {path}; give the authors' JSON/JSONL file, a "
            "datasets folder (save_to_disk) or a parquet file"
        )
    if path.suffix == ".parquet":
        return _read_parquet([path])
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise InputError(
            f"{path} is not UTF-8 text (byte {error.start}); give JSON or JSONL"
        ) from None
    if text.lstrip().startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise InputError(
                f"{path} is not valid JSON (line {error.lineno}: {error.msg})"
            ) from None
        return data
    records: list[Any] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as error:  # one bad line costs that record only
                records.append(UnreadableLine(number, error.msg))
    return records


@dataclass(frozen=True)
class UnreadableLine:
    """A JSONL line that is not JSON, kept in place so the import reports it and goes on."""

    number: int
    message: str


def _read_parquet(paths: list[Path]) -> list[dict[str, Any]]:
    """The rows of parquet files; a file that is not parquet is an InputError naming it."""
    from datasets import Dataset

    try:
        return Dataset.from_parquet([str(p) for p in paths]).to_list()
    except Exception as error:  # pyarrow raises ArrowInvalid and others for a broken file
        names = ", ".join(str(p) for p in paths)
        raise InputError(f"cannot read parquet {names}: {error}") from None


def _read_saved_dataset(path: Path) -> list[dict[str, Any]]:
    """A `save_to_disk` folder: one Dataset, or a DatasetDict whose splits are read in order."""
    from datasets import DatasetDict, load_from_disk

    if not any(
        (path / name).is_file() for name in ("dataset_info.json", "state.json", "dataset_dict.json")
    ):
        parquet = sorted(path.glob("*.parquet"))
        if parquet:
            return _read_parquet(parquet)
        raise InputError(
            f"{path} is a folder but neither a datasets folder (save_to_disk) nor a "
            "folder of parquet files"
        )
    loaded = load_from_disk(str(path))
    if isinstance(loaded, DatasetDict):
        return [row for split in loaded.values() for row in split.to_list()]
    return loaded.to_list()


# ---------------------------------------------------------------------------------------------
# 3. One record


class _Reject(Exception):
    """A record that cannot be used; `reason` is the report's key."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(reason)
        self.reason, self.detail = reason, detail


def profile_from_attributes(value: Any, side: str, unknown: Counter, field_name: str) -> Profile:
    """One side of the ground truth from the authors' `prefer_attributes` value.

    A dict is read key by key (key spellings as `normalize_element_key` knows them; a key that is
    no element is counted in `unknown` as `<field>.<key>` and left out); a string is read as the
    content of a profile block (their reward wraps it the same way).

    Example:
        >>> profile_from_attributes({"Color": "Pink", "ArtisticMedium": "Coiling"}, "liked",
        ...                         Counter(), "prefer_attributes").art_medium
        ('Coiling',)
    """
    from preferthinker.parser import normalize_element_key, parse_profiles

    if isinstance(value, dict):
        values: dict[str, Any] = {}
        for key, terms in value.items():
            element = normalize_element_key(key)
            if element is None:
                unknown[f"{field_name}.{key}"] += 1
                continue
            if terms is not None and not isinstance(terms, (str, list)):
                raise _Reject(
                    "unreadable_profile", f"{field_name}[{key!r}] is {type(terms).__name__}"
                )
            values[element] = terms
        try:
            return Profile(**values)
        except TypeError as error:
            raise _Reject("unreadable_profile", f"{field_name}: {error}") from None
    if isinstance(value, str):
        tag = "visual preference profile" if side == "liked" else "visual non-preference profile"
        text = value if "profile" in value.lower() and "<" in value else f"<{tag}>{value}</{tag}>"
        try:
            profile = parse_profiles(text)
        except Exception:  # ParseError: no element readable in the text
            raise _Reject("unreadable_profile", f"{field_name}: {value[:60]!r}") from None
        side_profile = getattr(profile, side)
        return side_profile if not side_profile.is_empty() else profile.liked
    raise _Reject(
        "unreadable_profile", f"{field_name} is {type(value).__name__}, not a dict or string"
    )


def _truth_profile(raw: dict, unknown: Counter) -> Optional[UserProfile]:
    """The ground-truth profile, None when the record has no `prefer_attributes`."""
    if raw.get("prefer_attributes") in (None, "", {}):
        return None
    liked = profile_from_attributes(raw["prefer_attributes"], "liked", unknown, "prefer_attributes")
    disliked = Profile()
    if raw.get("non_prefer_attributes") not in (None, "", {}):
        disliked = profile_from_attributes(
            raw["non_prefer_attributes"], "disliked", unknown, "non_prefer_attributes"
        )
    if liked.is_empty():
        raise _Reject("unreadable_profile", "prefer_attributes holds no profile element")
    return UserProfile(liked=liked, disliked=disliked)


def _answer_turn(raw: dict) -> str:
    """The text of `conversations[1]`: the only place the truth is read from."""
    turns = raw["conversations"]
    if not isinstance(turns, list) or len(turns) < 2:
        raise _Reject(
            "no_answer_turn",
            f"conversations holds {len(turns) if isinstance(turns, list) else 0} turn(s)",
        )
    turn = turns[1]
    value = turn.get("value", turn.get("content")) if isinstance(turn, dict) else turn
    if not isinstance(value, str) or not value.strip():
        raise _Reject("no_answer_turn", "conversations[1] has no text value")
    return value


class _ImageCheck:
    """Opens each image file once (references are shared by a user's records)."""

    def __init__(self, root: Path):
        self.root = root
        self.known: dict[str, Optional[str]] = {}  # absolute path -> problem or None

    def resolve(self, value: Any, field_name: str) -> str:
        if not isinstance(value, str) or not value:
            raise _Reject("bad_image_path", f"{field_name} is {value!r}")
        path = Path(value)
        path = str((path if path.is_absolute() else self.root / path).resolve())
        if path not in self.known:
            self.known[path] = self._problem(Path(path))
        problem = self.known[path]
        if problem is not None:
            raise _Reject(problem, f"{field_name}: {path}")
        return path

    @staticmethod
    def _problem(path: Path) -> Optional[str]:
        if not path.is_file():
            return "missing_image"
        from PIL import Image

        try:
            with Image.open(path) as image:
                image.load()
        except Exception:  # PIL raises several types for truncated or non-image files
            return "unreadable_image"
        return None


def _path_list(raw: dict, key: str) -> list:
    value = raw.get(key)
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        raise _Reject("bad_image_path", f"{key} is {type(value).__name__}, not a list of paths")
    return value


def _messages(
    liked: list[str], disliked: list[str], image_a: str, image_b: str, assistant: str
) -> tuple[list[dict], list[str]]:
    """ptgen's predict-then-assess conversation with `{"type": "image"}` placeholders, the
    answer turn as the assistant message, and the image paths in placeholder order."""
    from PIL import Image

    from preferthinker.prompts import build_assess_messages

    # The prompt builder takes PIL images; 1x1 stand-ins carry each path (mapped back by identity).
    paths = [*liked, *disliked, image_a, image_b]
    standins = [Image.new("RGB", (1, 1)) for _ in paths]
    by_id = {id(img): path for img, path in zip(standins, paths, strict=True)}
    n_liked, n_disliked = len(liked), len(disliked)
    conversation = build_assess_messages(
        standins[:n_liked],
        standins[n_liked : n_liked + n_disliked] or None,
        standins[-2],
        standins[-1],
    )
    messages, images = [], []
    for message in conversation:
        parts = []
        for part in message["content"]:
            if part.get("type") == "image":
                images.append(by_id[id(part["image"])])
                parts.append({"type": "image"})
            else:
                parts.append({"type": "text", "text": part.get("text", "")})
        messages.append({"role": message["role"], "content": parts})
    messages.append({"role": "assistant", "content": [{"type": "text", "text": assistant}]})
    return messages, images


def _cot_reject(
    text: str, answer: str, truth: Optional[UserProfile], check_profile: bool
) -> Optional[str]:
    """`check_cot`'s verdict; without a truth to compare (or with the check off) the CoT is
    compared with its own profile, so only the format, totals and answer are checked."""
    from preferthinker.errors import ParseError
    from preferthinker.parser import parse_profiles
    from training.cot import check_cot

    if truth is None or not check_profile:
        try:
            truth = parse_profiles(text)
        except ParseError:
            return "unparseable"
    return check_cot(text, truth, answer)


def _convert(
    raw: Any,
    index: int,
    images: _ImageCheck,
    config: ImportConfig,
    unknown: Counter,
    missing: Counter,
) -> tuple[str, dict[str, Any]]:
    """("sft" | "grpo", the ptgen record) for one authors' record, or raises _Reject."""
    from training.rewards import stated_answer

    if isinstance(raw, UnreadableLine):
        raise _Reject("not_json", f"line {raw.number} is not valid JSON: {raw.message}")
    if not isinstance(raw, dict):
        raise _Reject("not_a_record", f"a {type(raw).__name__}, not an object")
    for key in raw:
        if key not in REQUIRED_FIELDS + OPTIONAL_FIELDS + KNOWN_EXTRA_FIELDS:
            unknown[key] += 1
    for key in OPTIONAL_FIELDS:
        if raw.get(key) in (None, "", [], {}):
            missing[key] += 1
    absent = [key for key in REQUIRED_FIELDS if raw.get(key) in (None, "", [])]
    if absent:
        for key in absent:
            missing[key] += 1
        raise _Reject(f"missing_{absent[0]}", f"no {', '.join(absent)}")
    # The truth, from the answer turn only.
    text = _answer_turn(raw)
    truth = _truth_profile(raw, unknown)
    bare = _BARE_ANSWER.match(text)
    if bare:
        kind, answer = GRPO_SPLIT, bare.group(1).upper()
        if truth is None:
            raise _Reject(
                "no_profile_for_grpo",
                "an answer-only record needs prefer_attributes for the prediction reward",
            )
    else:
        kind, answer = SFT_SPLIT, stated_answer(text)
        if answer is None:
            raise _Reject("no_answer", f"conversations[1] states no <answer>: {text[-60:]!r}")
        reason = _cot_reject(text, answer, truth, config.check_profile)
        if reason is not None:
            raise _Reject(reason)
    # Images: the first max_references per side (what the authors use) and the candidates must
    # all open; references past the cap are neither used nor checked.
    cap = config.max_references
    liked = [
        images.resolve(p, f"prefered_images[{i}]")
        for i, p in enumerate(_path_list(raw, "prefered_images")[:cap])
    ]
    disliked = [
        images.resolve(p, f"non_prefered_images[{i}]")
        for i, p in enumerate(_path_list(raw, "non_prefered_images")[:cap])
    ]
    image_a, image_b = (
        images.resolve(raw["imageA"], "imageA"),
        images.resolve(raw["imageB"], "imageB"),
    )
    messages, image_paths = _messages(liked, disliked, image_a, image_b, text)
    prompts = raw.get("reference_prompt_list") or []
    if isinstance(prompts, str):
        prompts = [prompts]
    if not isinstance(prompts, list) or not all(isinstance(p, str) for p in prompts):
        raise _Reject(
            "bad_reference_prompt_list", f"reference_prompt_list is {prompts!r:.60}, not prompts"
        )
    record_id = str(raw.get("id") if raw.get("id") is not None else index)
    record = {
        "id": record_id,
        "imageA": image_a,
        "imageB": image_b,
        "prefered_images": liked,
        "non_prefered_images": disliked,
        "conversations": [{"from": "gpt", "value": f"Image {answer}"}],
        "answer": answer,
        "split": kind,
        "user_id": str(raw.get("user_id") or ""),
        "profile": truth.to_dict() if truth is not None else None,
        # The subject both profiles are rendered from for the reward's image term (the authors'
        # reward uses the first reference prompt the same way).
        "prompt_subject": str(prompts[0]) if prompts else "",
        "cot": text if kind == SFT_SPLIT else "",
        "messages": messages,
        "images": image_paths,
        "meta": {
            "source_index": index,
            "reference_prompt_list": [str(p) for p in prompts],
            **{
                k: v
                for k, v in raw.items()
                if k not in REQUIRED_FIELDS + OPTIONAL_FIELDS + KNOWN_EXTRA_FIELDS
            },
        },
    }
    return kind, record


# ---------------------------------------------------------------------------------------------
# 1 and 4. The folder


DATASET_CARD = """---
configs:
- config_name: default
  data_files:
{files}
---
# The authors' PreferThinker training data, imported by `ptgen data import`

Source: `{source}` (images under `{images}`, referenced by absolute path: keep them there).
`sft.jsonl` holds the records whose answer turn is a full CoT (SFT targets, as written);
`grpo.jsonl` the GRPO prompts with their ground truth (`answer`, `profile`, `prompt_subject`).
Train with `dataset_split: sft` / `dataset_split: grpo`. The import report is `{report}`.
"""


def _check_output(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise OutputExistsError(
            f"{out} exists and is not empty; choose a new --out folder "
            "(an earlier import is never overwritten)"
        )


def import_dataset(config: ImportConfig, progress: Optional[Progress] = None) -> dict[str, Any]:
    """Import the authors' training data into a ptgen training folder; returns the report.

    Args:
        config: the ImportConfig.
        progress: called as `progress(records_done, records_total)`.

    Returns:
        The report also written to `import_report.json`: `records`, `sft`, `grpo` (records
        written per file), `sft_targets`, `grpo_prompts` (records of each kind accepted),
        `rejected` (count per reason), `rejected_total`, `unknown_fields` and `missing_fields`
        (count per field name), `problems` (record index, reason and detail, first 200),
        `output_dir`.

    Example:
        >>> cfg = ImportConfig("train.jsonl", "images", "data/authors")
        >>> report = import_dataset(cfg)  # doctest: +SKIP
        >>> report["sft_targets"], report["rejected"]  # doctest: +SKIP
        (9950, {'incomplete': 50})
    """
    from training.dataset import atomic_write_text

    # 1. The folder.
    out = Path(config.output_dir)
    _check_output(out)
    root = Path(config.images)
    if not root.is_dir():
        raise InputError(
            f"image folder not found: {root}; "
            "pass --images with the folder the records' paths start from"
        )
    # 2. The records.
    raws = read_records(config.source)
    if not raws:
        raise InputError(f"{config.source} holds no records")
    # 3. Each record.
    images = _ImageCheck(root)
    unknown: Counter = Counter()
    missing: Counter = Counter()
    rejected: Counter = Counter()
    problems: list[dict[str, Any]] = []
    written: dict[str, list[dict]] = {SFT_SPLIT: [], GRPO_SPLIT: []}
    kinds: Counter = Counter()
    for index, raw in enumerate(raws):
        try:
            kind, record = _convert(raw, index, images, config, unknown, missing)
        except _Reject as reject:
            rejected[reject.reason] += 1
            if len(problems) < MAX_LISTED:
                problems.append({"record": index, "reason": reject.reason, "detail": reject.detail})
        else:
            kinds[kind] += 1
            written[kind].append(record)
            if kind == SFT_SPLIT and config.cot_as_grpo and record["profile"] is not None:
                written[GRPO_SPLIT].append(record)
        if progress:
            progress(index + 1, len(raws))
    if not kinds:  # nothing to train on: say why instead of writing an empty dataset
        reasons = ", ".join(f"{reason}: {count}" for reason, count in sorted(rejected.items()))
        first = "; ".join(
            f"record {p['record']}: {p['reason']}" + (f" ({p['detail']})" if p["detail"] else "")
            for p in problems[:3]
        )
        raise InputError(
            f"{config.source}: none of its {len(raws)} records can be used ({reasons}); {first}"
        )
    # 4. The files.
    out.mkdir(parents=True, exist_ok=True)
    for split, records in written.items():
        if records:
            atomic_write_text(
                out / f"{split}.jsonl",
                "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records),
            )
    files = "\n".join(f"  - split: {s}\n    path: {s}.jsonl" for s, r in written.items() if r)
    atomic_write_text(
        out / "README.md",
        DATASET_CARD.format(
            files=files or "  []", source=config.source, images=root.resolve(), report=REPORT
        ),
    )
    report = {
        "records": len(raws),
        "sft": len(written[SFT_SPLIT]),
        "grpo": len(written[GRPO_SPLIT]),
        "sft_targets": kinds[SFT_SPLIT],
        "grpo_prompts": kinds[GRPO_SPLIT],
        "rejected": dict(sorted(rejected.items())),
        "rejected_total": sum(rejected.values()),
        "unknown_fields": dict(sorted(unknown.items())),
        "missing_fields": dict(sorted(missing.items())),
        "problems": problems,
        "output_dir": str(out),
        "source": str(config.source),
        "images": str(root.resolve()),
        "check_profile": config.check_profile,
        "cot_as_grpo": config.cot_as_grpo,
    }
    atomic_write_text(out / REPORT, json.dumps(report, indent=1, ensure_ascii=False))
    return report


def iter_problems(report: dict[str, Any]) -> Iterator[str]:
    """One line per listed problem, for the CLI ("record 3: missing_image (imageA: /x/a.png)")."""
    for problem in report["problems"]:
        detail = f" ({problem['detail']})" if problem["detail"] else ""
        yield f"record {problem['record']}: {problem['reason']}{detail}"


__all__ = [
    "ImportConfig",
    "import_dataset",
    "iter_problems",
    "profile_from_attributes",
    "read_records",
]
