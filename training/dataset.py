"""The training-set folder: how one sample is written, and how the folder is read for SFT and GRPO.

Layout (a Hugging Face `datasets` folder; `load_dataset(folder)` reads the JSONL files named in
its README card, and `preferthinker.benchmark.load_benchmark(folder)` reads `benchmark.jsonl`):

    out/
      README.md                dataset card (configs -> train.jsonl / test.jsonl)
      train.jsonl, test.jsonl  one record per sample (below); test.jsonl only with test users
      benchmark.jsonl          all records, for load_benchmark / ptgen eval
      manifest.json            config, counts, filter report (written by training.data)
      samples/<id>.json        the finished samples, one file each (written atomically)
      images/<user>/liked/, images/<user>/disliked/  references (shared by the user's pairs;
                               usable as `ptgen assess --refs ... --disliked ...` folders)
      images/<id>/{a,b}.png    candidates

A record holds the authors' benchmark fields (`imageA`, `imageB`, `prefered_images`,
`non_prefered_images`, `conversations` = [{"from": "gpt", "value": "Image A"}]) and ours:
`id`, `answer`, `split`, `user_id`, `kind`, `profile`, `prompt_subject`, `cot`, `messages` (the
predict-then-assess conversation with `{"type": "image"}` placeholders and the CoT as the
assistant turn) and `images` (paths in placeholder order). Paths are relative to the folder.
A compact build (`verdict: compact`, `"verdict"` in each record) writes the compact conversation
instead: the known profile and the two candidates, the compact verdict as the assistant turn.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

from preferthinker.errors import InputError
from preferthinker.profile import ELEMENTS, UserProfile

PathLike = Union[str, Path]
SPLIT_FILES = ("train", "test")


@dataclass
class TrainingSample:
    """One finished sample before it is written: PIL images, the ground truth and the CoT."""

    sample_id: str
    split: str  # "train", or a test split name such as "seen-SP" / "unseen-MP"
    user_id: str
    kind: str
    profile: UserProfile
    prompt_subject: str
    liked: list
    disliked: list
    image_a: Any
    image_b: Any
    answer: str
    cot: str
    meta: dict = field(default_factory=dict)
    verdict: str = "full"  # "compact": `cot` is a compact verdict after the compact prompt

    @property
    def file_split(self) -> str:
        """The data file the sample goes to: train.jsonl or test.jsonl."""
        return "train" if self.split == "train" else "test"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that a reader (or a resumed build) never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def _save_png(image: Any, path: Path) -> str:
    import io

    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())
    return path.as_posix()


def _placeholders(conversation: list[dict]) -> tuple[list[dict], list[Any]]:
    """Replace PIL image parts by `{"type": "image"}` placeholders; return (messages, images)."""
    messages, images = [], []
    for message in conversation:
        parts = []
        for part in message["content"]:
            if part.get("type") == "image":
                images.append(part["image"])
                parts.append({"type": "image"})
            else:
                parts.append({"type": "text", "text": part.get("text", "")})
        messages.append({"role": message["role"], "content": parts})
    return messages, images


def sample_record(sample: TrainingSample, root: Path) -> dict[str, Any]:
    """Write the sample's images (references under `images/<user>/liked|disliked/`, candidates under
    `images/<id>/`) and return its JSONL record.

    Example:
        >>> record = sample_record(sample, Path("out"))  # doctest: +SKIP
    """
    from preferthinker.compact import build_compact_messages
    from preferthinker.prompts import build_assess_messages

    def save(image: Any, folder: str, name: str, keep_existing: bool = False) -> str:
        relative = f"images/{folder}/{name}"
        if not (keep_existing and (root / relative).is_file()):
            _save_png(image, root / relative)
        return relative

    # References are the user's, shared by all of the user's pairs: written once, then kept
    # (a resumed build renders the same images, so an existing file is already right).
    liked = [
        save(img, f"{sample.user_id}/liked", f"{i}.png", True) for i, img in enumerate(sample.liked)
    ]
    disliked = [
        save(img, f"{sample.user_id}/disliked", f"{i}.png", True)
        for i, img in enumerate(sample.disliked)
    ]
    path_a = save(sample.image_a, sample.sample_id, "a.png")
    path_b = save(sample.image_b, sample.sample_id, "b.png")
    # Build the conversation with the real images, then map each image to its file, in order.
    paths_by_id = {
        id(img): p
        for img, p in zip(
            [*sample.liked, *sample.disliked, sample.image_a, sample.image_b],
            [*liked, *disliked, path_a, path_b],
        )
    }
    if sample.verdict == "compact":
        conversation = build_compact_messages(sample.profile, sample.image_a, sample.image_b)
    else:
        conversation = build_assess_messages(
            sample.liked, sample.disliked or None, sample.image_a, sample.image_b
        )
    messages, images = _placeholders(conversation)
    image_paths = [paths_by_id[id(img)] for img in images]
    messages.append({"role": "assistant", "content": [{"type": "text", "text": sample.cot}]})
    return {
        "id": sample.sample_id,
        "imageA": path_a,
        "imageB": path_b,
        "prefered_images": liked,
        "non_prefered_images": disliked,
        "conversations": [{"from": "gpt", "value": f"Image {sample.answer}"}],
        "answer": sample.answer,
        "split": sample.split,
        "user_id": sample.user_id,
        "kind": sample.kind,
        "profile": {
            side: {e: list(p.terms(e)) for e in ELEMENTS}
            for side, p in (("liked", sample.profile.liked), ("disliked", sample.profile.disliked))
        },
        "prompt_subject": sample.prompt_subject,
        "cot": sample.cot,
        "verdict": sample.verdict,
        "messages": messages,
        "images": image_paths,
        "meta": sample.meta,
    }


def write_sample(sample: TrainingSample, root: PathLike) -> dict[str, Any]:
    """Write one sample (images, then `samples/<id>.json` last and atomically, so a sample file
    exists only for a complete sample). Returns the record."""
    root = Path(root)
    record = sample_record(sample, root)
    atomic_write_text(
        root / "samples" / f"{sample.sample_id}.json", json.dumps(record, ensure_ascii=False)
    )
    return record


def read_samples(root: PathLike) -> list[dict[str, Any]]:
    """The finished sample records, sorted by id."""
    folder = Path(root) / "samples"
    if not folder.is_dir():
        return []
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))]


DATASET_CARD = """---
configs:
- config_name: default
  data_files:
{files}
---
# ptgen PreferImg-CoT style training set

Built by `ptgen data build`. Each record holds the authors' PreferImg-Bench fields (`imageA`,
`imageB`, `prefered_images`, `non_prefered_images`, `conversations`) and ptgen's (`answer`,
`split`, `profile`, `cot`, `messages`, `images`, ...). Image paths are relative to this folder.
Load with `datasets.load_dataset("<this folder>")`, `preferthinker.benchmark.load_benchmark(
"<this folder>")`, or `training.dataset.load_training_split("<this folder>", "train")`.
"""


def finalize_dataset(root: PathLike) -> dict[str, int]:
    """Assemble train.jsonl / test.jsonl / benchmark.jsonl and the README card from the sample
    files. Cheap and idempotent: run after every (resumed) build. Returns records per file."""
    root = Path(root)
    records = read_samples(root)
    counts: dict[str, int] = {}
    for name in SPLIT_FILES:
        chosen = [r for r in records if (r["split"] == "train") == (name == "train")]
        path = root / f"{name}.jsonl"
        if chosen:
            atomic_write_text(
                path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in chosen)
            )
            counts[name] = len(chosen)
        elif path.exists():
            path.unlink()
    atomic_write_text(
        root / "benchmark.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    )
    files = "\n".join(f"  - split: {name}\n    path: {name}.jsonl" for name in counts)
    atomic_write_text(root / "README.md", DATASET_CARD.format(files=files or "  []"))
    return counts


def _split_records(root: Path, split: str) -> list[dict[str, Any]]:
    path = root / f"{split}.jsonl"
    if not path.is_file():
        # Any JSONL but the evaluation copy is a split (`ptgen data import` writes sft / grpo).
        have = sorted(p.stem for p in root.glob("*.jsonl") if p.stem != "benchmark")
        raise InputError(
            f"{path} not found; build the dataset with `ptgen data build` or `ptgen data import` "
            f"(splits here: {', '.join(have) or 'none'}; choose one with dataset_split)"
        )
    return [
        json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]


def _message_features():
    from datasets import Features, List, Value

    part = {"type": Value("string"), "text": Value("string")}
    return List({"role": Value("string"), "content": List(part)}), Features, Value, List


def load_training_split(
    root: PathLike,
    split: str = "train",
    mode: str = "sft",
    max_pixels: Optional[int] = None,
    max_samples: Optional[int] = None,
):
    """Read a built dataset folder as a `datasets.Dataset` in the shape a TRL trainer wants.

    Args:
        root: the folder `ptgen data build` wrote.
        split: "train" or "test".
        mode: "sft" -> columns `prompt`, `completion` (the CoT as the assistant turn; TRL trains
            on the completion only) and `images`; "grpo" -> `prompt`, `images`, `answer`,
            `profile` (JSON text), `prompt_subject` (the reward functions' inputs).
        max_pixels: downscale images above this many pixels when a row is read (a datasets
            transform; None keeps them as written).
        max_samples: keep only the first N records.

    Images are stored as file paths and decoded when a row is read, so memory stays flat however
    many samples there are.

    Example:
        >>> ds = load_training_split("data/synthpref-cot", "train", mode="grpo")  # doctest: +SKIP
        >>> ds.column_names  # doctest: +SKIP
        ['prompt', 'images', 'answer', 'profile', 'prompt_subject']
    """
    from datasets import Dataset, Image

    if mode not in ("sft", "grpo"):
        raise InputError(f"mode must be 'sft' or 'grpo', got {mode!r}")
    root = Path(root)
    if not root.is_dir():
        raise InputError(
            f"dataset folder not found: {root}; build one with `ptgen data build --config FILE`"
        )
    records = _split_records(root, split)
    if max_samples is not None:
        records = records[:max_samples]
    if not records:
        raise InputError(f"{root}/{split}.jsonl holds no samples")
    if mode == "grpo" and any(r.get("verdict") == "compact" for r in records):
        raise InputError(
            f"{root} holds compact-verdict samples; GRPO's rewards read full verdicts "
            "(build the GRPO set with verdict: full)"
        )
    messages_type, Features, Value, List = _message_features()
    columns = {"prompt": messages_type, "images": List(Image())}
    if mode == "sft":
        columns["completion"] = messages_type
    else:
        columns.update(
            answer=Value("string"), profile=Value("string"), prompt_subject=Value("string")
        )
    features = Features(columns)

    def row(record: dict[str, Any]) -> dict[str, Any]:
        messages = record["messages"]
        # Paths, not pixels: datasets decodes each image when the row is read, so a large set
        # never sits in memory (once per training process) as decoded or re-encoded images.
        values = {
            "prompt": messages[:-1],
            "images": [str((root / p).resolve()) for p in record["images"]],
        }
        if mode == "sft":
            values["completion"] = messages[-1:]
        else:
            values.update(
                answer=record["answer"],
                profile=json.dumps(record["profile"]),
                prompt_subject=record.get("prompt_subject") or "",
            )
        return values

    dataset = Dataset.from_list([row(r) for r in records], features=features)
    if max_pixels is not None:
        dataset.set_transform(_fit_images(max_pixels), columns=["images"], output_all_columns=True)
    return dataset


def _fit_images(max_pixels: int):
    """A datasets transform that downscales the decoded `images` of each row to `max_pixels`."""
    from preferthinker.images import fit_pixels

    def transform(batch: dict[str, list]) -> dict[str, list]:
        from PIL import Image as PILImage

        fitted = []
        for images in batch["images"]:
            row = []
            for image in images:
                if isinstance(image, dict):  # undecoded {"path", "bytes"}
                    image = PILImage.open(image["path"])
                row.append(fit_pixels(image.convert("RGB"), max_pixels))
            fitted.append(row)
        return {"images": fitted}

    return transform


__all__ = [
    "TrainingSample",
    "atomic_write_bytes",
    "atomic_write_text",
    "finalize_dataset",
    "load_training_split",
    "read_samples",
    "sample_record",
    "write_sample",
]
