"""The study's data: a SynthPref evaluation set and a compact-CoT training set from one seed.

Stages of `build_study_data`:

1. Evaluation set: `synthpref.bench.build_synthpref` writes the four evaluation splits
   (seen-SP, seen-MP, unseen-SP, unseen-MP) in the benchmark format, which
   `preferthinker.benchmark.load_benchmark` and `ptgen eval` read. Unseen users like at least
   one term held out of training.
2. Training users: SynthPref's `train` users of the same seed (`synthpref_users`): other user
   ids, drawn from the seen terms only. As a guard against leaks through coincidence, a training
   user whose liked profile equals an evaluation user's is dropped (the count is reported).
3. Per training user, references and candidate pairs are rendered by the procedural renderer
   (`make_user_items`), the target is written from the ground truth by `training.cot.build_cot`
   (its scores: liked term 4-5, disliked 0-1, neutral 2-3, totals favouring the answer), pairs
   the profile does not support (margin <= 0) are dropped, and the target is rewritten in the
   compact form (`training.study.compact`).
4. The samples go through `training.dataset.write_sample` / `finalize_dataset`, so the folder
   is the training pipeline's own layout and `training.sft` / `training.grpo` read it unchanged.

Example:
    >>> config = StudyDataConfig(seed=0)
    >>> summary = build_study_data("runs/study/seed0/data", config)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import random
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional, Union

EVAL_DIR = "eval"
TRAIN_DIR = "train"
SCORE_MODES = ("ranged", "fixed")
DESCRIBE_MODES = ("none", "profile", "candidates", "observed")
# One score per relation of a candidate's term to the profile (training.cot.relation).
FIXED_SCORES = {"liked": 5, "disliked": 0, "neutral": 2, "unknown": 2}


def fixed_scores(profile: Any, attributes_a: dict, attributes_b: dict) -> list:
    """Deterministic per-element scores from the ground truth: `FIXED_SCORES[relation]`.

    Example:
        >>> from preferthinker.profile import Profile, UserProfile
        >>> up = UserProfile(liked=Profile(color=("Pink",)), disliked=Profile(color=("Gray",)))
        >>> scores = fixed_scores(up, {"color": "Gray"}, {"color": "Pink"})
        >>> [(s.score_a, s.score_b) for s in scores][1]
        (0, 5)
    """
    from preferthinker.profile import ELEMENTS
    from preferthinker.results import ElementScore
    from training.cot import relation

    return [
        ElementScore(
            element=e,
            score_a=FIXED_SCORES[relation(profile, e, attributes_a.get(e))],
            score_b=FIXED_SCORES[relation(profile, e, attributes_b.get(e))],
        )
        for e in ELEMENTS
    ]


@dataclass
class StudyDataConfig:
    """How much data the study builds.

    Args:
        seed: term split, users, renderings and CoT wording all follow from it.
        train_users: SynthPref `train` users (half SP, half MP; seen terms only).
        train_pairs: candidate pairs per training user.
        eval_users: users per evaluation split (four splits).
        eval_pairs: candidate pairs per evaluation user.
        refs: liked references per user (and as many disliked ones).
        size: rendered image side in pixels (SynthPref needs a multiple of 32, >= 64; the
            processor then resizes to the model's image size).
        held_out_fraction: share of each element's terms held out of training (unseen splits).
        scores: "ranged" keeps `training.cot.build_cot`'s scores (liked 4-5, disliked 0-1,
            neutral 2-3, drawn per pair); "fixed" writes one score per relation (liked 5,
            disliked 0, neutral 2; `FIXED_SCORES`), so the only tokens that tell the candidates
            apart are never noise.
        describe: what each element line of the target says before the scores. "none": nothing;
            "profile": the profile's liked / disliked terms (`write_compact`'s `restate`);
            "candidates": those, then the term each candidate shows (the renderer's ground
            truth; `write_compact`'s `described`); "observed": the profile's terms, then each
            candidate's term right before its own score (`write_compact`'s `inline`).
        same_colour_share: share of training users whose candidate pairs show one colour (the
            colour is never the flipped element, and both candidates get the same colour term),
            so that the other elements must decide those pairs. 0 keeps SynthPref's pairs,
            where colour tells about 6 pairs in 10 apart. Evaluation pairs are never changed.
    """

    seed: int = 0
    train_users: int = 600
    train_pairs: int = 4
    eval_users: int = 25
    eval_pairs: int = 4
    refs: int = 3
    size: int = 64
    held_out_fraction: float = 0.25
    scores: str = "ranged"
    describe: str = "none"
    same_colour_share: float = 0.0

    def __post_init__(self) -> None:
        if self.scores not in SCORE_MODES:
            raise ValueError(f"scores must be one of {', '.join(SCORE_MODES)}, got {self.scores!r}")
        if self.describe not in DESCRIBE_MODES:
            raise ValueError(
                f"describe must be one of {', '.join(DESCRIBE_MODES)}, got {self.describe!r}"
            )
        for name in ("train_users", "train_pairs", "eval_users", "eval_pairs", "refs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.size < 64 or self.size % 32:
            raise ValueError(f"size must be a multiple of 32 and >= 64, got {self.size}")
        if not 0 <= self.same_colour_share <= 1:
            raise ValueError(f"same_colour_share must be in [0, 1], got {self.same_colour_share}")
        if not 0 < self.held_out_fraction < 1:
            raise ValueError(f"held_out_fraction must be in (0, 1), got {self.held_out_fraction}")

    def synthpref_config(self, train_users: int = 0, pairs: Optional[int] = None):
        from synthpref.bench import SynthPrefConfig

        return SynthPrefConfig(
            seed=self.seed,
            users=self.eval_users,
            train_users=train_users,
            refs=self.refs,
            pairs=self.eval_pairs if pairs is None else pairs,
            held_out_fraction=self.held_out_fraction,
            size=self.size,
        )


def _liked_key(user: Any) -> tuple:
    liked = user.profile.liked
    return tuple(tuple(sorted(t.lower() for t in liked.terms(e))) for e, _ in liked.items())


def build_study_data(
    out_dir: Union[str, Path], config: Optional[StudyDataConfig] = None
) -> dict[str, Any]:
    """Build `<out_dir>/eval` (SynthPref benchmark) and `<out_dir>/train` (compact-CoT training).

    Returns the summary also written to `<out_dir>/study_data.json`: counts per split, pairs
    dropped and why, training users dropped as look-alikes of evaluation users, the term split.

    Example:
        >>> config = StudyDataConfig(seed=0, train_users=50)
        >>> build_study_data("runs/study/seed0/data", config)  # doctest: +SKIP
    """
    from synthpref.bench import DEFAULT_SUBJECTS, build_synthpref, make_user_items, synthpref_users
    from synthpref.renderer import ProceduralRenderer
    from training.cot import build_cot
    from training.dataset import TrainingSample, finalize_dataset, write_sample
    from training.study.compact import write_compact

    config = config or StudyDataConfig()
    out = Path(out_dir)
    # 1. Evaluation set (no train users in it).
    eval_summary = build_synthpref(
        out / EVAL_DIR, config.synthpref_config(train_users=0), overwrite=True
    )
    # 2. Training users of the same seed; the same term split (it depends on the seed only).
    split, users = synthpref_users(
        config.synthpref_config(train_users=config.train_users, pairs=config.train_pairs)
    )
    eval_ids = {u.user_id for name, us in users.items() if name != "train" for u in us}
    eval_keys = {_liked_key(u) for name, us in users.items() if name != "train" for u in us}
    train_users = [
        u for u in users["train"] if u.user_id not in eval_ids and _liked_key(u) not in eval_keys
    ]
    look_alikes = len(users["train"]) - len(train_users)
    # 3. Render, write targets, filter.
    renderer = ProceduralRenderer(size=config.size)
    dropped: dict[str, int] = {}
    kept = 0
    train_root = out / TRAIN_DIR
    for user in train_users:
        rng = random.Random(f"{config.seed}:{user.user_id}")
        # A separate draw, so the default (share 0) keeps the earlier runs' data bit for bit.
        shared = (
            ("color",)
            if random.Random(f"{config.seed}:{user.user_id}:same").random()
            < config.same_colour_share
            else ()
        )
        items = make_user_items(
            user,
            renderer,
            DEFAULT_SUBJECTS,
            config.refs,
            config.train_pairs,
            rng,
            split="train",
            shared=shared,
        )
        for item in items:
            attrs_a, attrs_b = item.meta["attributes_a"], item.meta["attributes_b"]
            cot = build_cot(
                user.profile,
                attrs_a,
                attrs_b,
                item.answer,
                seed=zlib.crc32(f"{config.seed}:{item.item_id}".encode()),
            )
            if cot.margin <= 0:
                dropped["profile_does_not_support_answer"] = (
                    dropped.get("profile_does_not_support_answer", 0) + 1
                )
                continue
            scores = cot.scores
            if config.scores == "fixed":
                scores = fixed_scores(user.profile, attrs_a, attrs_b)
                totals = {"A": sum(s.score_a for s in scores), "B": sum(s.score_b for s in scores)}
                if totals[item.answer] <= totals["B" if item.answer == "A" else "A"]:
                    dropped["fixed_scores_do_not_favour_answer"] = (
                        dropped.get("fixed_scores_do_not_favour_answer", 0) + 1
                    )
                    continue
            sample = TrainingSample(
                sample_id=item.item_id,
                split="train",
                user_id=user.user_id,
                kind=user.kind,
                profile=user.profile,
                prompt_subject=item.meta.get("subject", ""),
                liked=item.preferred,
                disliked=item.non_preferred,
                image_a=item.image_a,
                image_b=item.image_b,
                answer=item.answer,
                cot=write_compact(
                    user.profile,
                    scores,
                    item.answer,
                    (attrs_a, attrs_b) if config.describe in ("candidates", "observed") else None,
                    restate=config.describe == "profile",
                    inline=config.describe == "observed",
                ),
                meta={
                    "attributes_a": attrs_a,
                    "attributes_b": attrs_b,
                    "mismatched": item.meta.get("mismatched"),
                    "shared": list(shared),
                },
            )
            write_sample(sample, train_root)
            kept += 1
    counts = finalize_dataset(train_root)
    summary = {
        "config": asdict(config),
        "eval_counts": eval_summary["counts"],
        "train_samples": kept,
        "train_users": len(train_users),
        "train_users_dropped_as_eval_look_alikes": look_alikes,
        "train_pairs_dropped": dropped,
        "train_files": counts,
        "term_split": split.to_dict(),
    }
    (out / "study_data.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    return summary


def training_texts(train_root: Union[str, Path]) -> list[str]:
    """The text of every training sample (prompt text parts and the compact target), the corpus
    the study tokenizer is trained on.

    Example:
        >>> texts = training_texts("runs/study/seed0/data/train")  # doctest: +SKIP
    """
    texts: list[str] = []
    path = Path(train_root) / "train.jsonl"
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        for message in record["messages"]:
            if message["role"] == "system":
                continue  # the study chat template leaves the system prompt out
            texts.extend(
                part["text"]
                for part in message["content"]
                if part.get("type") == "text" and part.get("text")
            )
    return texts


__all__ = [
    "DESCRIBE_MODES",
    "EVAL_DIR",
    "FIXED_SCORES",
    "SCORE_MODES",
    "TRAIN_DIR",
    "StudyDataConfig",
    "fixed_scores",
    "build_study_data",
    "training_texts",
]
