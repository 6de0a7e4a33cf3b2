"""SynthPref: a simulated-user benchmark whose right answers are known by construction.

For each simulated user (`synthpref.users`) the procedural renderer draws liked
references (the liked profile, varied subjects), disliked references (the non-preference
profile) and candidate pairs for one subject: one candidate drawn with the liked terms, the other
with disliked terms on 1-5 elements (the rest liked), the answer placed at A or B at random.
Items are written in the authors' benchmark format plus our fields (`write_benchmark`), images as
PNG files. Splits: seen-SP, seen-MP, unseen-SP, unseen-MP (unseen = at least one held-out term)
and, optionally, a `train` split of seen-term users for the learning study.

Example:
    >>> from synthpref.bench import SynthPrefConfig, build_synthpref
    >>> summary = build_synthpref("synthpref", SynthPrefConfig(seed=0, users=8))
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Union

from PIL import Image

from preferthinker.benchmark import BenchmarkItem, write_benchmark
from preferthinker.errors import OutputExistsError
from preferthinker.profile import ELEMENTS, Profile
from synthpref.renderer import (
    SUPPORTED_TERMS,
    ProceduralGenerator,
    ProceduralRenderer,
    terms_distinct,
)
from synthpref.users import SimulatedUser, TermSplit, sample_users, split_terms

EVAL_SPLITS = ("seen-SP", "seen-MP", "unseen-SP", "unseen-MP")

# Subjects of the references and candidates: words that pick each layout, and some that do not.
DEFAULT_SUBJECTS: tuple[str, ...] = (
    "a cat",
    "a portrait of a woman",
    "a vase of flowers",
    "an owl",
    "a mountain landscape",
    "a beach at sunset",
    "a lake in the hills",
    "a city skyline",
    "a castle",
    "a village street",
    "a garden",
    "a still life with fruit",
    "a school of fish",
    "a river",
    "a bridge",
    "a train",
    "a lighthouse",
    "a robot",
    "a tea party",
    "a dragon",
)

Progress = Callable[[int, int], None]


@dataclass
class SynthPrefConfig:
    """What to build.

    Args:
        seed: everything (term split, users, subjects, image seeds) follows from it.
        users: users per evaluation split (seen-SP, seen-MP, unseen-SP, unseen-MP).
        train_users: users of the `train` split (seen terms, half SP half MP); 0 for none.
        refs: liked references per user (and as many disliked ones).
        pairs: candidate pairs per user.
        held_out_fraction: share of each element's terms held out of seen/train users.
        size: image side in pixels (multiple of 32).
        mismatch: elements on which the non-preferred candidate takes disliked terms; None
            draws 1-5 per pair (a spread of difficulty).
        subjects: subjects drawn for references and pairs.
        splits: which evaluation splits to build.
    """

    seed: int = 0
    users: int = 10
    train_users: int = 0
    refs: int = 3
    pairs: int = 2
    held_out_fraction: float = 0.25
    size: int = 256
    mismatch: Optional[int] = None
    subjects: Sequence[str] = field(default_factory=lambda: list(DEFAULT_SUBJECTS))
    splits: Sequence[str] = field(default_factory=lambda: list(EVAL_SPLITS))

    def __post_init__(self) -> None:
        for name in ("users", "train_users"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("refs", "pairs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 < self.held_out_fraction < 1:
            raise ValueError(f"held_out_fraction must be in (0, 1), got {self.held_out_fraction}")
        if self.size < 64 or self.size % 32:
            raise ValueError(f"size must be a multiple of 32 and >= 64, got {self.size}")
        if self.mismatch is not None and not 1 <= self.mismatch <= len(ELEMENTS):
            raise ValueError(f"mismatch must be in 1..{len(ELEMENTS)} or None, got {self.mismatch}")
        if not self.subjects:
            raise ValueError("subjects must not be empty")
        unknown = [s for s in self.splits if s not in EVAL_SPLITS]
        if unknown:
            raise ValueError(f"splits has unknown names {unknown}; valid: {', '.join(EVAL_SPLITS)}")


def _renderer_of(generator: Any) -> Optional[ProceduralRenderer]:
    if isinstance(generator, ProceduralRenderer):
        return generator
    return (
        getattr(generator, "renderer", None) if isinstance(generator, ProceduralGenerator) else None
    )


def _one_each(profile: Profile, rng: random.Random) -> dict[str, str]:
    return {e: rng.choice(terms) for e, terms in profile.items() if terms}


def _prompt(subject: str, terms: dict[str, str]) -> str:
    return ", ".join([subject] + [terms[e] for e in ELEMENTS if e in terms])


def _draw(
    generator: Any, subject: str, terms: dict[str, str], seed: int
) -> tuple[Image.Image, dict[str, str]]:
    """One image and the terms it shows: exact for the renderer, the requested ones otherwise."""
    renderer = _renderer_of(generator)
    if renderer is not None:
        out = renderer.render(subject, terms, seed=seed)
        return out.image, out.attributes
    return generator.generate(_prompt(subject, terms), "", seeds=[seed])[0], dict(terms)


def make_user_items(
    user: SimulatedUser,
    generator: Any,
    prompts: Sequence[str],
    n_refs: int,
    n_pairs: int,
    rng: random.Random,
    mismatch: Optional[int] = None,
    split: str = "",
    shared: Sequence[str] = (),
) -> list[BenchmarkItem]:
    """The benchmark items of one user, with PIL images (shared references across the user's pairs).

    Args:
        user: the simulated user (hidden profile).
        generator: a `ProceduralRenderer` / `ProceduralGenerator` (attributes known exactly) or any
            `Generator` (prompted with the terms; attributes then are the requested terms).
        prompts: subjects to draw from.
        n_refs: liked references (and as many disliked ones).
        n_pairs: candidate pairs.
        rng: the random source (seeds, subjects, answer positions).
        mismatch: elements on which the non-preferred candidate takes disliked terms (None: 1-5).
        split: the split name written into the items.
        shared: elements the two candidates of each pair show the same liked term in (never
            flipped), so the other elements must tell them apart; ignored for a user whose
            contrastable elements are all shared.

    Returns:
        `BenchmarkItem`s whose images are PIL images; `meta` holds the candidates' attributes
        (`attributes_a`, `attributes_b`), the `subject` and the `mismatched` elements.

    Example:
        >>> items = make_user_items(
        ...     user, ProceduralRenderer(), DEFAULT_SUBJECTS, 3, 2, random.Random(0)
        ... )
    """
    liked_p, disliked_p = user.profile.liked, user.profile.disliked
    liked_refs = [
        _draw(generator, rng.choice(prompts), _one_each(liked_p, rng), rng.randrange(2**31))[0]
        for _ in range(n_refs)
    ]
    disliked_refs = [
        _draw(generator, rng.choice(prompts), _one_each(disliked_p, rng), rng.randrange(2**31))[0]
        for _ in range(n_refs)
    ]
    contrastable = [e for e in ELEMENTS if liked_p.terms(e) and disliked_p.terms(e)]
    if shared and any(e not in shared for e in contrastable):
        contrastable = [e for e in contrastable if e not in shared]
    else:
        shared = ()
    items = []
    for index in range(n_pairs):
        subject = rng.choice(prompts)
        good_terms = _one_each(liked_p, rng)
        k = mismatch if mismatch is not None else rng.randint(1, len(contrastable))
        flipped = sorted(rng.sample(contrastable, min(k, len(contrastable))), key=ELEMENTS.index)
        bad_terms = dict(_one_each(liked_p, rng))
        for element in shared:
            if element in good_terms:
                bad_terms[element] = good_terms[element]
        for element in flipped:
            bad_terms[element] = rng.choice(disliked_p.terms(element))
        good, good_attrs = _draw(generator, subject, good_terms, rng.randrange(2**31))
        bad, bad_attrs = _draw(generator, subject, bad_terms, rng.randrange(2**31))
        answer = rng.choice("AB")
        a, b = (good, bad) if answer == "A" else (bad, good)
        attrs_a, attrs_b = (good_attrs, bad_attrs) if answer == "A" else (bad_attrs, good_attrs)
        items.append(
            BenchmarkItem(
                image_a=a,
                image_b=b,
                preferred=list(liked_refs),
                non_preferred=list(disliked_refs),
                answer=answer,
                split=split,
                user_id=user.user_id,
                profile=user.profile,
                meta={
                    "subject": subject,
                    "mismatched": flipped,
                    "kind": user.kind,
                    "attributes_a": attrs_a,
                    "attributes_b": attrs_b,
                },
                item_id=f"{user.user_id}-{index}",
            )
        )
    return items


def synthpref_users(config: SynthPrefConfig) -> tuple[TermSplit, dict[str, list[SimulatedUser]]]:
    """The term split and the users of every split the config asks for (no images)."""
    split = split_terms(SUPPORTED_TERMS, config.held_out_fraction, seed=config.seed)
    users: dict[str, list[SimulatedUser]] = {}
    for index, name in enumerate(EVAL_SPLITS):
        if name not in config.splits:
            continue
        unseen = name.startswith("unseen")
        users[name] = sample_users(
            config.users,
            SUPPORTED_TERMS,
            seed=config.seed * 100 + index,
            multi_fraction=1.0 if name.endswith("MP") else 0.0,
            split=split,
            unseen=unseen,
            id_prefix=name,
            compatible=terms_distinct,
        )
    if config.train_users:
        users["train"] = sample_users(
            config.train_users,
            SUPPORTED_TERMS,
            seed=config.seed * 100 + 50,
            multi_fraction=0.5,
            split=split,
            id_prefix="train",
            compatible=terms_distinct,
        )
    return split, users


def _save(image: Image.Image, path: Path, saved: dict[int, str]) -> str:
    key = id(image)
    if key not in saved:
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path)
        saved[key] = str(path)
    return saved[key]


def build_synthpref(
    out_dir: Union[str, Path],
    config: Optional[SynthPrefConfig] = None,
    generator: Any = None,
    progress: Optional[Progress] = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Build a SynthPref set in `out_dir`.

    Stages: 1. check the output folder; 2. split the terms and draw users; 3. render each user's
    references and pairs and save them as PNG; 4. write `benchmark.json` (evaluation splits),
    `train.json` (when `train_users` > 0), `users.json` and `synthpref.json` (config, term split,
    counts).

    Args:
        out_dir: output folder (must be empty or absent unless `overwrite`).
        config: a `SynthPrefConfig` (defaults when None).
        generator: the image source (default: `ProceduralRenderer(size=config.size)`).
        progress: called as `progress(users_done, users_total)`.
        overwrite: write into a non-empty folder.

    Returns:
        The summary written to `synthpref.json`.

    Example:
        >>> build_synthpref("data/synthpref", SynthPrefConfig(seed=1, users=20, train_users=200))
    """
    config = config or SynthPrefConfig()
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise OutputExistsError(f"{out} is not empty; choose a new folder or pass --overwrite")
    generator = generator or ProceduralRenderer(size=config.size)
    split, users = synthpref_users(config)
    total = sum(len(v) for v in users.values())
    done = 0
    files: dict[str, list[BenchmarkItem]] = {"benchmark.json": [], "train.json": []}
    for split_name, split_users in users.items():
        target = files["train.json" if split_name == "train" else "benchmark.json"]
        for user in split_users:
            rng = random.Random(f"{config.seed}:{user.user_id}")
            items = make_user_items(
                user,
                generator,
                config.subjects,
                config.refs,
                config.pairs,
                rng,
                mismatch=config.mismatch,
                split=split_name,
            )
            saved: dict[int, str] = {}
            folder = out / "images" / user.user_id
            for item in items:
                item.preferred = [
                    _save(im, folder / f"liked_{i}.png", saved)
                    for i, im in enumerate(item.preferred)
                ]
                item.non_preferred = [
                    _save(im, folder / f"disliked_{i}.png", saved)
                    for i, im in enumerate(item.non_preferred)
                ]
                item.image_a = _save(item.image_a, folder / f"{item.item_id}_A.png", saved)
                item.image_b = _save(item.image_b, folder / f"{item.item_id}_B.png", saved)
            target.extend(items)
            done += 1
            if progress:
                progress(done, total)
    out.mkdir(parents=True, exist_ok=True)
    for name, items in files.items():
        if items:
            write_benchmark(items, out / name)
    (out / "users.json").write_text(
        json.dumps({s: [u.to_dict() for u in us] for s, us in users.items()}, indent=1),
        encoding="utf-8",
    )
    summary = {
        "config": asdict(config)
        | {"subjects": list(config.subjects), "splits": list(config.splits)},
        "generator": getattr(generator, "name", type(generator).__name__),
        "term_split": split.to_dict(),
        "counts": {s: len(us) * config.pairs for s, us in users.items()},
        "files": [n for n, items in files.items() if items],
    }
    (out / "synthpref.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    return summary


__all__ = [
    "DEFAULT_SUBJECTS",
    "EVAL_SPLITS",
    "SynthPrefConfig",
    "build_synthpref",
    "make_user_items",
    "synthpref_users",
]
