"""Building a PreferImg-CoT style training set: simulated users, rendered references and pairs,
CoT targets from the ground truth, a quality filter, resumable output.

Stages of `build_dataset` (the `ptgen data build --config FILE` command):

1. check the output folder (a folder with the same build's manifest is resumed; another
   build's folder is refused);
2. split the terms and draw users (`synthpref.users`): `train` users with seen terms,
   plus optional evaluation users per split (seen/unseen x SP/MP);
3. per user, render liked/disliked references and candidate pairs with any generator through
   `synthpref.bench.make_user_items` (the procedural SynthPref renderer, or a diffusers
   pipeline such as the `ptgen make-tiny` generator);
4. per pair, write the CoT target (`training.cot`), optionally reworded by an LLM, and filter:
   drop pairs whose profile does not support the answer, whose CoT does not parse, or whose
   totals contradict the answer; count each reason. With `verdict: compact` the target is the
   compact verdict (the same ground-truth scores, `preferthinker.compact`) after the compact
   prompt, which gives the known profile instead of the references;
5. write each kept sample atomically (`training.dataset.write_sample`) and record the user in
   this process's journal (`shards/<rank>-of-<world>.jsonl`, `generation.shards`);
6. the main process waits until every user is recorded, writes `manifest.json` and assembles
   the JSONL files and the dataset card.

Under `accelerate launch` or `torchrun` each process takes every world_size-th user (by index)
and the main process merges; a `build.lock` keeps a second launch out of the folder.
Everything is seeded per user, so an interrupted build continues where it stopped and produces
what an uninterrupted one would, with any number of processes; finished sample files are never
rewritten.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Union

from preferthinker.errors import ConfigError, InputError, OutputExistsError

logger = logging.getLogger(__name__)

EVAL_SPLITS = ("seen-SP", "seen-MP", "unseen-SP", "unseen-MP")
MANIFEST = "manifest.json"
BUNDLED_PROMPTS = Path(__file__).parent / "data" / "prompts.txt"
Progress = Callable[[int, int], None]


@dataclass
class DataConfig:
    """What `ptgen data build` makes.

    Args:
        output_dir: the dataset folder (created; resumed when it holds this build's manifest).
        seed: users, subjects, image seeds, CoT wording all follow from it.
        train_users: users of the `train` split (seen terms only).
        multi_fraction: share of multi-preference users among the train users.
        eval_users: users per evaluation split (0: no test.jsonl).
        eval_splits: which of seen-SP, seen-MP, unseen-SP, unseen-MP to build.
        refs: liked references per user (and as many disliked ones).
        pairs: candidate pairs per user.
        held_out_fraction: share of each element's terms held out for the unseen splits.
        mismatch: elements on which the non-preferred candidate takes disliked terms (None: 1-5).
        generator: "procedural" (the SynthPref renderer; exact ground truth) or a diffusers
            pipeline id/path (e.g. the `ptgen make-tiny` generator).
        generator_options: `GeneratorConfig` fields for a diffusers generator (steps, width,
            height, device, dtype, batch_size) or `size` for the procedural one.
        size: image side of the procedural renderer in pixels.
        prompts_file: subject prompts, one per line (None: the bundled `training/data/prompts.txt`).
        cot_rewriter: an engine spec (OpenAI-compatible URL or model path) that rewords the CoT
            rationales; None keeps the template wording.
        cot_rewriter_model: the served model name for a URL rewriter.
        cot_rewrite_max_new_tokens: token budget of one rewrite.
        verdict: "full" (the predict-then-assess CoT after the reference prompt, the authors'
            format) or "compact" (the compact prompt with the known profile, and the compact
            verdict `<scores>A: ...; B: ...</scores><answer>Image X</answer>` as the target: for
            training a judge for `--verdict compact`).

    Example:
        >>> cfg = DataConfig(output_dir="data/cot", train_users=100, pairs=4)
    """

    output_dir: str = ""
    seed: int = 0
    train_users: int = 8
    multi_fraction: float = 0.5
    eval_users: int = 0
    eval_splits: list = field(default_factory=lambda: list(EVAL_SPLITS))
    refs: int = 3
    pairs: int = 2
    held_out_fraction: float = 0.25
    mismatch: Optional[int] = None
    generator: str = "procedural"
    generator_options: dict = field(default_factory=dict)
    size: int = 256
    prompts_file: Optional[str] = None
    cot_rewriter: Optional[str] = None
    cot_rewriter_model: Optional[str] = None
    cot_rewrite_max_new_tokens: int = 2048
    verdict: str = "full"

    def __post_init__(self) -> None:
        from preferthinker.compact import VERDICTS

        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {', '.join(VERDICTS)}, got {self.verdict!r}")
        if self.verdict == "compact" and self.cot_rewriter:
            raise ValueError(
                "cot_rewriter rewords rationales and compact targets have none; "
                "drop cot_rewriter or use verdict: full"
            )
        if not self.output_dir:
            raise ValueError("output_dir must name the dataset folder to write, got ''")
        for name in ("train_users", "eval_users"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise ValueError(f"{name} must be an int >= 0, got {getattr(self, name)!r}")
        if self.train_users + self.eval_users == 0:
            raise ValueError("train_users and eval_users are both 0: nothing to build")
        for name in ("refs", "pairs"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be an int >= 1, got {getattr(self, name)!r}")
        if not 0 <= self.multi_fraction <= 1:
            raise ValueError(f"multi_fraction must be in [0, 1], got {self.multi_fraction}")
        if not 0 < self.held_out_fraction < 1:
            raise ValueError(f"held_out_fraction must be in (0, 1), got {self.held_out_fraction}")
        if self.mismatch is not None and not 1 <= self.mismatch <= 5:
            raise ValueError(f"mismatch must be in 1..5 or null, got {self.mismatch}")
        unknown = [s for s in self.eval_splits if s not in EVAL_SPLITS]
        if unknown:
            raise ValueError(
                f"eval_splits has unknown names {unknown}; valid: {', '.join(EVAL_SPLITS)}"
            )
        if self.size < 64 or self.size % 32:
            raise ValueError(f"size must be a multiple of 32 and >= 64, got {self.size}")
        if not isinstance(self.generator_options, dict):
            raise ValueError(f"generator_options must be a mapping, got {self.generator_options!r}")
        if self.cot_rewrite_max_new_tokens < 1:
            raise ValueError(
                f"cot_rewrite_max_new_tokens must be >= 1, got {self.cot_rewrite_max_new_tokens}"
            )

    def fingerprint(self) -> str:
        """What must match for a folder to be resumed (everything but where it is)."""
        data = {k: v for k, v in asdict(self).items() if k != "output_dir"}
        if self.verdict == "full":
            del data["verdict"]  # builds from before the option resume as they were
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode("utf-8")).hexdigest()[:16]


def load_prompts(path: Optional[Union[str, Path]] = None) -> list[str]:
    """Subject prompts from a file (one per line, `#` comments and blank lines skipped).

    Example:
        >>> len(load_prompts()) >= 100
        True
    """
    path = Path(path) if path else BUNDLED_PROMPTS
    if not path.is_file():
        raise InputError(
            f"prompts file not found: {path}; give a text file with one subject per line"
        )
    prompts = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    prompts = [p for p in prompts if p and not p.startswith("#")]
    if not prompts:
        raise InputError(f"prompts file {path} holds no prompts")
    return list(dict.fromkeys(prompts))


def create_data_generator(config: DataConfig, process: Any = None) -> Any:
    """The image source: the procedural renderer or a diffusers pipeline (`generation`). In a
    launch of several processes, each uses the GPU of its local rank unless a device is set."""
    options = dict(config.generator_options)
    if config.generator == "procedural":
        from synthpref.renderer import ProceduralGenerator

        options.setdefault("size", config.size)
        return ProceduralGenerator(**options)
    from generation.generator import DiffusersGenerator, GeneratorConfig

    if process is not None and "device" not in options:
        from generation.shards import process_device

        device = process_device(process)
        if device is not None:
            options["device"] = device

    try:
        return DiffusersGenerator(GeneratorConfig(model=config.generator, **options))
    except TypeError as error:
        raise ConfigError(f"generator_options: {error}") from None


def draw_users(config: DataConfig) -> dict[str, list]:
    """The users of each split, deterministic from the seed. The procedural renderer restricts
    terms to those it can draw (and keeps disliked terms visibly apart from liked ones); other
    generators use the whole vocabulary."""
    from synthpref.users import sample_users, split_terms

    if config.generator == "procedural":
        from synthpref.renderer import SUPPORTED_TERMS, terms_distinct

        vocabulary, compatible = SUPPORTED_TERMS, terms_distinct
    else:
        from preferthinker.vocabulary import load_vocabulary

        vocabulary, compatible = load_vocabulary(), None
    split = split_terms(vocabulary, config.held_out_fraction, seed=config.seed)
    users: dict[str, list] = {}
    if config.train_users:
        users["train"] = sample_users(
            config.train_users,
            vocabulary,
            seed=config.seed * 100 + 50,
            multi_fraction=config.multi_fraction,
            split=split,
            id_prefix="train",
            compatible=compatible,
        )
    if config.eval_users:
        for index, name in enumerate(EVAL_SPLITS):
            if name in config.eval_splits:
                users[name] = sample_users(
                    config.eval_users,
                    vocabulary,
                    seed=config.seed * 100 + index,
                    multi_fraction=1.0 if name.endswith("MP") else 0.0,
                    split=split,
                    unseen=name.startswith("unseen"),
                    id_prefix=name,
                    compatible=compatible,
                )
    return users


def _read_manifest(out: Path) -> Optional[dict]:
    path = out / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:  # UnicodeDecodeError is a ValueError
        manifest = error
    if not isinstance(manifest, dict):
        raise OutputExistsError(
            f"{path} is damaged ({manifest}); use a new output_dir, or delete the folder to "
            "rebuild"
        )
    return manifest


def _check_output(out: Path, config: DataConfig) -> dict:
    """The manifest to continue from (a fresh one for a new folder)."""
    from generation.shards import LOCK_FILE, SHARDS_DIR, journals

    manifest = _read_manifest(out)
    if manifest is not None:
        if manifest.get("fingerprint") != config.fingerprint():
            raise ConfigError(
                f"{out} holds a build with another config "
                f"(fingerprint {manifest.get('fingerprint')}); "
                "use a new output_dir, or delete the folder to rebuild"
            )
        journals(out, config.fingerprint())  # shards of another config: refused by name
        return manifest
    if out.exists() and any(p.name not in (LOCK_FILE, SHARDS_DIR) for p in out.iterdir()):
        raise OutputExistsError(
            f"{out} is not empty and holds no {MANIFEST}; choose a new output_dir"
        )
    journals(out, config.fingerprint())
    return {"fingerprint": config.fingerprint(), "config": asdict(config), "users": {}}


def _write_manifest(out: Path, manifest: dict) -> None:
    from training.dataset import atomic_write_text

    atomic_write_text(out / MANIFEST, json.dumps(manifest, indent=1, ensure_ascii=False))


def _rewriter(config: DataConfig, engine: Any) -> Any:
    if engine is not None or not config.cot_rewriter:
        return engine
    from preferthinker.engines import create_engine

    return create_engine(config.cot_rewriter, model=config.cot_rewriter_model)


def _make_sample(
    item: Any, sample_id: str, seed: int, engine: Any, rewrite_config: Any, verdict: str = "full"
):
    """(TrainingSample or None, drop reason or None, rewrite rejection or None) for one pair."""
    from training.cot import build_cot, check_cot, rewrite_cot
    from training.dataset import TrainingSample

    meta = item.meta
    attrs_a, attrs_b = meta.get("attributes_a") or {}, meta.get("attributes_b") or {}
    target = build_cot(item.profile, attrs_a, attrs_b, item.answer, seed=seed, verdict=verdict)
    if target.margin < 0:
        return None, "profile_contradicts_ground_truth", None
    if target.margin == 0:
        return None, "profile_does_not_decide", None
    reason = check_cot(target.text, item.profile, item.answer, target.scores, verdict=verdict)
    if reason is not None:
        return None, reason, None
    text, rejected, source = target.text, None, "template"
    if engine is not None:
        text, rejected = rewrite_cot(target, item.profile, engine, rewrite_config)
        source = "template" if rejected else "llm"
    sample = TrainingSample(
        sample_id=sample_id,
        split=item.split,
        user_id=item.user_id,
        kind=meta.get("kind", "SP"),
        profile=item.profile,
        prompt_subject=meta.get("subject", ""),
        liked=list(item.preferred),
        disliked=list(item.non_preferred),
        image_a=item.image_a,
        image_b=item.image_b,
        answer=item.answer,
        cot=text,
        verdict=verdict,
        meta={
            "attributes_a": dict(attrs_a),
            "attributes_b": dict(attrs_b),
            "mismatched": list(meta.get("mismatched", [])),
            "margin": target.margin,
            "cot_source": source,
            "cot_rewrite_rejected": rejected,
        },
    )
    return sample, None, rejected


def summarize(manifest: dict) -> dict[str, Any]:
    """Counts over the manifest: samples kept, dropped per reason, rewrites rejected per reason."""
    kept, dropped, rejected = 0, {}, {}
    per_split: dict[str, int] = {}
    for entry in manifest["users"].values():
        kept += len(entry["kept"])
        per_split[entry["split"]] = per_split.get(entry["split"], 0) + len(entry["kept"])
        for reason in entry["dropped"].values():
            dropped[reason] = dropped.get(reason, 0) + 1
        for reason in entry.get("rewrite_rejected", {}).values():
            rejected[reason] = rejected.get(reason, 0) + 1
    return {
        "users": len(manifest["users"]),
        "kept": kept,
        "dropped": dropped,
        "dropped_total": sum(dropped.values()),
        "rewrite_rejected": rejected,
        "kept_per_split": per_split,
    }


def _shard_users(users: dict[str, list]) -> list[tuple[str, Any]]:
    """(split, user) in the build's one global order: the order that assigns users to processes."""
    return [(split, user) for split, split_users in users.items() for user in split_users]


def _build_user(
    user: Any,
    split_name: str,
    config: DataConfig,
    out: Path,
    generator: Any,
    prompts: list[str],
    engine: Any,
    rewrite_config: Any,
    step: Callable[[], None],
) -> dict:
    """Render, target, filter and write one user's pairs; returns the user's manifest entry."""
    from synthpref.bench import make_user_items
    from training.dataset import write_sample

    # 3. References and pairs, seeded per user so a resumed build renders the same.
    rng = random.Random(f"data:{config.seed}:{user.user_id}")
    items = make_user_items(
        user,
        generator,
        prompts,
        config.refs,
        config.pairs,
        rng,
        mismatch=config.mismatch,
        split=split_name,
    )
    entry = {
        "split": split_name,
        "kind": user.kind,
        "kept": [],
        "dropped": {},
        "rewrite_rejected": {},
    }
    for index, item in enumerate(items):
        sample_id = f"{user.user_id}-{index:02d}"
        if (out / "samples" / f"{sample_id}.json").is_file():
            entry["kept"].append(sample_id)  # finished before an interruption: untouched
        else:
            # 4. CoT target, optional rewrite, quality filter.
            seed = int(hashlib.sha256(f"{config.seed}:{sample_id}".encode()).hexdigest()[:8], 16)
            sample, reason, rejected = _make_sample(
                item, sample_id, seed, engine, rewrite_config, config.verdict
            )
            if sample is None:
                entry["dropped"][sample_id] = reason
            else:
                # 5. Atomic per-sample write.
                write_sample(sample, out)
                entry["kept"].append(sample_id)
                if rejected:
                    entry["rewrite_rejected"][sample_id] = rejected
        step()
    return entry


def build_dataset(
    config: DataConfig,
    progress: Optional[Progress] = None,
    generator: Any = None,
    rewriter: Any = None,
    process: Any = None,
    resume_command: Optional[str] = None,
    merge_timeout_s: Optional[float] = None,
) -> dict[str, Any]:
    """Build (or resume) the training set described by `config`; returns the report.

    Under `accelerate launch` / `torchrun` every process runs this same call: user i goes to
    process i % world_size, each process writes its users' samples and its journal
    `shards/<rank>-of-<world>.jsonl`, and the main process merges once every user is recorded.
    The dataset is the same whatever the number of processes.

    Args:
        config: the DataConfig.
        progress: called as `progress(pairs_done, pairs_total)` after every pair of this
            process's users (resumed users count as done at once).
        generator: a ready `generation` Generator (default: from `config.generator`).
        rewriter: a ready preferthinker Engine for CoT rewording (default: `config.cot_rewriter`).
        process: this process's `generation.shards.LaunchProcess` (default: from the launcher's
            environment; one process without a launcher).
        resume_command: the command shown when a process failed (default: rebuilt from argv).
        merge_timeout_s: how long the main process waits for the others (None: as long as the
            launch runs).

    Returns:
        The report also stored in `manifest.json` under "report": users, kept, dropped per
        reason, rewrites rejected per reason, kept per split, and how many users were resumed.
        A process other than the main one returns its shard's counts with `"merged": False`.

    Raises:
        ConfigError: the folder (or a shard in it) holds a build with another config.
        OutputExistsError: the folder holds something else, or another launch is writing to it.
        generation.shards.ShardError: a process failed; names it and the resume command.

    Example:
        >>> config = DataConfig(output_dir="data/cot", train_users=4)  # doctest: +SKIP
        >>> report = build_dataset(config)  # doctest: +SKIP
        >>> report["kept"], report["dropped"]  # doctest: +SKIP
        (8, {})
    """
    import time

    from generation.shards import (
        ShardJournal,
        acquire_lock,
        assigned,
        current_process,
        finished_items,
        journals,
        release_lock,
        wait_for_items,
    )
    from preferthinker.engines import GenerationConfig
    from training.dataset import finalize_dataset

    started = time.time()
    process = process or current_process()
    fingerprint = config.fingerprint()
    # 1. The folder: new, or this build's to resume; one launch at a time (build.lock).
    out = Path(config.output_dir)
    if process.is_main:
        manifest = _check_output(out, config)
        acquire_lock(out, process)
        if _read_manifest(out) is None:
            _write_manifest(out, manifest)
    else:
        acquire_lock(out, process)  # waits for the main process to check the folder and claim it
        manifest = _check_output(out, config)
    # 2. Users and prompts; this process's share of the users.
    prompts = load_prompts(config.prompts_file)
    everyone = _shard_users(draw_users(config))
    mine = assigned(everyone, process)
    finished = {**manifest["users"], **finished_items(out, fingerprint)}
    total = len(mine) * config.pairs
    generator = generator or create_data_generator(config, process)
    engine = _rewriter(config, rewriter)
    rewrite_config = GenerationConfig(
        max_new_tokens=config.cot_rewrite_max_new_tokens, temperature=0.7, repetition_penalty=1.0
    )
    journal = ShardJournal(out, process, fingerprint)
    journal.start(len(mine))
    done, resumed = 0, 0

    def step() -> None:
        nonlocal done
        done += 1
        if progress:
            progress(done, total)

    try:
        for split_name, user in mine:
            if user.user_id in finished:
                resumed += 1
                for _ in range(config.pairs):
                    step()
                continue
            entry = _build_user(
                user, split_name, config, out, generator, prompts, engine, rewrite_config, step
            )
            journal.item(user.user_id, entry)
    except BaseException as error:
        journal.failed(error)
        raise
    journal.done(users=len(mine), resumed=resumed)
    name = getattr(generator, "name", type(generator).__name__)
    if not process.is_main:
        return {
            "merged": False,
            "rank": process.rank,
            "world_size": process.world_size,
            "users": len(mine),
            "resumed_users": resumed,
            "output_dir": str(out),
            "generator": name,
        }
    # 6. Merge: wait until every user is recorded (by any process), then one manifest in the
    # global user order and the JSONL files.
    entries = wait_for_items(
        out,
        [user.user_id for _, user in everyone],
        process,
        fingerprint,
        timeout_s=merge_timeout_s,
        resume_command=resume_command,
        since=started,
        finished=lambda: {**manifest["users"], **finished_items(out, fingerprint)},
    )
    manifest["users"] = {user.user_id: entries[user.user_id] for _, user in everyone}
    counts = finalize_dataset(out)
    # Users resumed by this launch's processes (each says so in its last `done` event).
    resumed = 0
    for shard, events in journals(out, fingerprint).items():
        if shard.endswith(f"-of-{process.world_size:05d}"):
            last = [e for e in events if e.get("event") == "done"][-1:]
            resumed += last[0].get("resumed", 0) if last else 0
    report = summarize(manifest) | {
        "resumed_users": resumed,
        "files": counts,
        "output_dir": str(out),
        "generator": name,
        "processes": process.world_size,
        "merged": True,
    }
    manifest["report"] = report
    _write_manifest(out, manifest)
    release_lock(out, process)
    if report["dropped_total"]:
        logger.info("dropped %d pairs: %s", report["dropped_total"], report["dropped"])
    return report


__all__ = [
    "DataConfig",
    "EVAL_SPLITS",
    "build_dataset",
    "create_data_generator",
    "draw_users",
    "load_prompts",
    "summarize",
]
