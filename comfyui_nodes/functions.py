"""What each node does, as plain functions over library calls (testable without ComfyUI).

Every function takes the node's inputs as keyword arguments (IMAGE inputs as ComfyUI tensors)
and returns a tuple with one value per output. The first paragraph of each docstring is the
node's description in ComfyUI. Heavy work happens in `preferthinker` and `generation`.
"""

from __future__ import annotations

import json
from typing import Any, Optional

from comfyui_nodes.engine_cache import ENGINES
from comfyui_nodes.paths import find_input_path
from comfyui_nodes.tensors import pils_to_tensor, select, tensor_to_pils
from generation.rerank import NO_WINNER
from generation.strategies import STRATEGIES, get_strategy
from preferthinker.engines.openai_engine import DEFAULT_TIMEOUT
from preferthinker.errors import InputError
from preferthinker.images import DEFAULT_MAX_PIXELS
from preferthinker.profile import ELEMENT_NAMES, ELEMENTS, UserProfile
from preferthinker.references import MAX_REFERENCES, References

AUTO = "auto"
DEVICES = (AUTO, "cuda", "cpu", "mps")
DTYPES = (AUTO, "bfloat16", "float16", "float32")
PROFILE_FORMATS = ("tags", "json", "prose")


def _progress(total: int):
    """A callback(done, total) that drives ComfyUI's progress bar when running inside ComfyUI."""
    try:
        from comfy.utils import ProgressBar  # only inside ComfyUI
    except Exception:  # noqa: BLE001 - outside ComfyUI there is simply no bar
        return None
    bar = ProgressBar(max(total, 1))

    def update(done: int, planned: int) -> None:
        bar.update_absolute(done, planned)

    return update


def _batch(images: Any, what: str) -> Any:
    """The IMAGE as a 4-D batch (a single (H, W, C) image becomes a batch of one)."""
    if images is None or not hasattr(images, "ndim"):
        raise InputError(f"{what}: expected an IMAGE tensor, got {type(images).__name__}")
    return images[None] if images.ndim == 3 else images


def _references(assessor: Any, liked: Any, disliked: Any) -> References:
    """The connected reference batches, loaded once for every judgement of this node run
    (falsy when no liked image is connected; at most 5 per side, a warning names the rest)."""
    liked_pils = tensor_to_pils(liked, "liked") if liked is not None else None
    disliked_pils = tensor_to_pils(disliked, "disliked") if disliked is not None else None
    max_pixels = getattr(getattr(assessor, "config", None), "max_pixels", DEFAULT_MAX_PIXELS)
    return References.load(liked_pils, disliked_pils, max_pixels=max_pixels)


# -- assessor ---------------------------------------------------------------------------------


def load_assessor(
    assessor: str,
    model_name: str = "",
    device: str = AUTO,
    dtype: str = AUTO,
    debias: bool = False,
    max_retries: int = 1,
    max_new_tokens: int = 4096,
    timeout: float = DEFAULT_TIMEOUT,
) -> tuple:
    """Load a PreferThinker assessor: a local model id/path, an OpenAI-compatible server URL
    (e.g. from `ptgen serve`), `analytic` or `random` (any spec the engine registry accepts).

    The loaded engine is cached and shared by every assessor node with the same model settings,
    so a workflow loads a model once. For servers that need a key, set OPENAI_API_KEY in the
    environment of ComfyUI (a key typed into a node would be saved inside the workflow file).

    Example:
        >>> (assessor,) = load_assessor(  # doctest: +SKIP
        ...     "http://127.0.0.1:8000/v1", model_name="preferthinker"
        ... )
    """
    from preferthinker.assessor import Assessor, AssessorConfig
    from preferthinker.engines import describe_specs, find_backend

    spec = (assessor or "").strip()
    if not spec:
        raise InputError(f"assessor: give {describe_specs()}")
    config = AssessorConfig(
        assessor=spec,
        assessor_model=model_name.strip() or None,
        device=None if device == AUTO else device,
        dtype=None if dtype == AUTO else dtype,
        debias=debias,
        max_retries=max_retries,
        max_new_tokens=max_new_tokens,
        timeout=timeout,
    )
    backend = find_backend(spec)
    # Only backends with a served model name use it; the others must not split the cache on it.
    model = config.assessor_model if backend.served_model else None
    engine = ENGINES.get(backend, spec, model, **config.engine_options(backend))
    return (Assessor(engine, config),)


# -- profiles ---------------------------------------------------------------------------------


def predict_profile(assessor: Any, liked: Any, disliked: Any = None) -> tuple:
    """Predict a user's visual preference profile (art style, color, medium, saturation,
    detail) from liked and, optionally, disliked images.

    Returns the profile, its text in the authors' tag format, and the status ("ok", "partial"
    or "failed" when the model's answer held no profile).
    """
    prediction = assessor.predict_profile(_references(assessor, liked, disliked))
    return prediction.profile, prediction.profile.to_tag_text(), prediction.status


def profile_text(profile: UserProfile, format: str = "tags") -> tuple:  # noqa: A002 - the widget's name
    """Write a profile as text: the authors' tag format, JSON, or short prose."""
    _check_profile(profile)
    if format == "tags":
        return (profile.to_tag_text(),)
    if format == "json":
        return (profile.to_json(indent=2),)
    if format == "prose":
        liked = profile.liked.describe() or "nothing predicted"
        disliked = profile.disliked.describe() or "nothing predicted"
        return (f"likes: {liked}\ndislikes: {disliked}",)
    raise InputError(f"format must be one of {', '.join(PROFILE_FORMATS)}, got {format!r}")


def _check_profile(profile: Any) -> None:
    if not isinstance(profile, UserProfile):
        raise InputError(
            f"profile must come from a PTGen Predict Profile node, got {type(profile).__name__}"
        )


def _usable_profile(
    profile: Optional[UserProfile], liked_pils: Any, node: str
) -> Optional[UserProfile]:
    """The profile to judge with, or None to judge from the references.

    A failed prediction yields an empty profile; judging with it would be meaningless, so the
    node falls back to the liked references when they are connected, and says so otherwise.
    """
    if profile is None:
        if not liked_pils:
            raise InputError(f"{node} needs a profile or liked reference images")
        return None
    _check_profile(profile)
    if profile.liked.is_empty() and profile.disliked.is_empty():
        if liked_pils:
            return None
        raise InputError(
            f"{node}: the profile is empty (Predict Profile's status was probably 'failed'); "
            "connect the liked images to this node too, to judge from them"
        )
    return profile


def personalize_prompt(
    profile: UserProfile,
    prompt: str,
    strength: int = 5,
    negative: str = "",
    token_limit: int = 75,
) -> tuple:
    """Rewrite a prompt for the user: the prompt first, then the liked terms; the disliked
    terms become the negative prompt.

    `strength` is how many profile elements go in (0-5, most image-changing first); fragments
    that do not fit the text encoder's `token_limit` (CLIP: 75) are left out. Connect the two
    outputs to CLIP Text Encode nodes.
    """
    from generation.rewrite import rewrite_prompt

    _check_profile(profile)
    try:
        result = rewrite_prompt(
            prompt, profile, strength=strength, token_limit=token_limit, base_negative=negative
        )
    except ValueError as error:
        raise InputError(str(error)) from None
    return result.prompt, result.negative_prompt


# -- judging ----------------------------------------------------------------------------------


def _scores_dict(comparison: Any) -> dict[str, Any]:
    """Per-element scores of the first judged order: {element: {"a", "b"}, "total": {...}}."""
    scores: dict[str, Any] = {}
    for score in comparison.scores:
        scores[score.element] = {"a": score.score_a, "b": score.score_b}
    parsed = comparison.parsed[0] if comparison.parsed else None
    if parsed is not None:
        scores["total"] = {"a": parsed.total_a, "b": parsed.total_b}
    return scores


def comparison_reasoning(comparison: Any, name_a: str = "A", name_b: str = "B") -> str:
    """The assessor's element-by-element rationale for one comparison, as readable lines."""
    lines = []
    for score in comparison.scores:
        label = ELEMENT_NAMES.get(score.element, score.element)
        lines.append(
            f"{label}: {name_a} {score.score_a} - {score.rationale_a.strip()}; "
            f"{name_b} {score.score_b} - {score.rationale_b.strip()}"
        )
    parsed = comparison.parsed[0] if comparison.parsed else None
    if parsed is not None and parsed.total_a is not None:
        lines.append(f"Total: {name_a} {parsed.total_a}, {name_b} {parsed.total_b}")
    if comparison.swap_agrees is False:
        lines.append("The two presentation orders disagreed.")
    winner = {"A": name_a, "B": name_b}.get(comparison.winner or "", "undecided")
    lines.append(f"Preferred: {winner}")
    if not comparison.scores and comparison.raw_texts:
        lines.insert(0, comparison.raw_texts[-1].strip())
    return "\n".join(lines)


def compare_pair(
    assessor: Any,
    image_a: Any,
    image_b: Any,
    profile: Optional[UserProfile] = None,
    liked: Any = None,
    disliked: Any = None,
) -> tuple:
    """Judge which of two images the user prefers, from a profile or from liked/disliked reference
    images.

    Returns the winner ("A", "B" or "undecided"), the preferred image (image A when undecided),
    the per-element scores as JSON and the reasoning.
    """
    image_a, image_b = _batch(image_a, "image_a"), _batch(image_b, "image_b")
    # A batch on either input: its first image is the one judged.
    (a,) = tensor_to_pils(image_a[:1], "image_a")
    (b,) = tensor_to_pils(image_b[:1], "image_b")
    references = _references(assessor, liked, disliked)
    profile = _usable_profile(profile, references, "Compare Pair")
    liked_refs = references if profile is None else None
    comparison = assessor.compare(a, b, profile=profile, liked=liked_refs)
    winner_image = image_b[:1] if comparison.winner == "B" else image_a[:1]
    return (
        comparison.winner or "undecided",
        winner_image,
        json.dumps(_scores_dict(comparison)),
        comparison_reasoning(comparison),
    )


def rerank_images(
    assessor: Any,
    images: Any,
    strategy: str = "knockout",
    top_k: int = 0,
    profile: Optional[UserProfile] = None,
    liked: Any = None,
    disliked: Any = None,
    prefilter: str = "",
    keep: int = 8,
) -> tuple:
    """Best-of-N: rank a batch of images for the user with pairwise assessments; returns the
    best one, the batch sorted best first, the scores and the reasoning.

    `prefilter` "similarity:MODEL" (empty: none) ranks only the `keep` images most like the liked
    references (`generation/prefilter.py`); the others follow in similarity order, and the
    scores JSON holds every image's similarity score and whether it was kept.

    Judges from a profile (cheap: two images per comparison) or, without one, from liked and
    disliked reference images; an empty profile (a failed prediction) falls back to the
    references. `strategy`: a registered tournament (knockout: N-1 comparisons, swiss,
    round-robin: every pair). `top_k` keeps the k best in the sorted batch (0 keeps all).
    When no comparison is decided there is no winner: the batch keeps its order, `best` is its
    first image and the reasoning says so.
    """
    from generation.rerank import rerank

    plan = get_strategy(strategy)
    if top_k < 0:
        raise InputError(f"top_k must be >= 0, got {top_k}")
    images = _batch(images, "images")
    candidates = tensor_to_pils(images, "images")
    references = _references(assessor, liked, disliked)
    profile = _usable_profile(profile, references, "Rerank Images")
    chosen = None
    if prefilter.strip():
        from generation.prefilter import expand_ranking, prefilter_candidates

        chosen = prefilter_candidates(candidates, references, prefilter.strip(), keep)
        candidates = [candidates[i] for i in chosen.kept]
    ranking = rerank(
        candidates,
        assessor,
        strategy=strategy,
        profile=profile,
        liked=references if profile is None else None,
        progress=_progress(plan.comparisons(len(candidates))),
    )
    if chosen is not None:
        ranking = expand_ranking(ranking, chosen)
    order = ranking.order[: top_k or len(ranking.order)]
    summary = {
        "strategy": ranking.strategy,
        "order": ranking.order,
        "best": ranking.winner,
        "decided": ranking.decided,
        "candidates": ranking.to_dict()["candidates"],
        "comparisons": [
            {
                "round": m.round,
                "a": m.a,
                "b": m.b,
                "winner": m.winner,
                "total_a": m.totals()[0],
                "total_b": m.totals()[1],
            }
            for m in ranking.matches
        ],
        "undecided": ranking.undecided,
        "prefilter": chosen.to_dict() if chosen is not None else None,
    }
    best = ranking.order[0]  # the winner; with nothing decided, the first of the unchanged batch
    return (
        select(images, [best]),
        select(images, order),
        json.dumps(summary),
        _ranking_reasoning(ranking),
        best,
    )


def _ranking_reasoning(ranking: Any) -> str:
    """One line per match, then the rationale of the winner's last match."""
    if ranking.decided:
        lines = [f"{ranking.strategy}: best is image {ranking.winner} (batch index, 0-based)"]
    else:
        lines = [f"{ranking.strategy}: {NO_WINNER}"]
    for match in ranking.matches:
        outcome = f"image {match.winner}" if match.winner is not None else "undecided"
        total_a, total_b = match.totals()
        totals = f" ({total_a} vs {total_b})" if total_a is not None else ""
        lines.append(
            f"round {match.round}: image {match.a} vs image {match.b} -> {outcome}{totals}"
        )
    decisive = [m for m in ranking.matches if ranking.winner in (m.a, m.b)]
    if decisive:
        last = decisive[-1]
        lines.append("")
        lines.append(comparison_reasoning(last.comparison, f"image {last.a}", f"image {last.b}"))
    return "\n".join(lines)


# -- images -----------------------------------------------------------------------------------


def load_image_folder(folder: str, max_images: int = 0, width: int = 0, height: int = 0) -> tuple:
    """Load every image of a folder (sorted by name) as one IMAGE batch, for reranking or as
    references.

    A relative `folder` is inside ComfyUI's input folder (`name [output]`: its output folder; an
    absolute path works too). A batch needs one size: images are scaled to cover `width` x
    `height` and center-cropped (0 takes the first image's size). `max_images` keeps the first n
    (0 keeps all).
    """
    from preferthinker.images import load_images

    path = find_input_path(folder, "folder")
    pils = load_images(path, max_pixels=None, what=f"images in {path}")
    if max_images > 0:
        pils = pils[:max_images]
    size = (width or pils[0].width, height or pils[0].height)
    return pils_to_tensor(pils, size=size), len(pils)


def folder_fingerprint(folder: str, **_: Any) -> str:
    """Names, sizes and modification times of a folder's files: changes when its images do."""
    from preferthinker.images import image_paths

    try:
        paths = image_paths(find_input_path(folder, "folder"))
    except InputError:
        return "missing"
    stats = []
    for path in paths:
        try:
            info = path.stat()
        except OSError:
            continue
        stats.append(f"{path.name}:{info.st_size}:{info.st_mtime_ns}")
    return "|".join(stats)


# -- the user store ---------------------------------------------------------------------------

FEEDBACK_LABELS = ("liked", "disliked")


def _stored_user(user: str, store: str = ""):
    from generation.store import UserStore

    return UserStore((store or "").strip() or None).user((user or "").strip() or None)


def load_user(
    user: str, store: str = "", assessor: Any = None, width: int = 0, height: int = 0
) -> tuple:
    """Load a stored user (`ptgen user create`, `ptgen like`): the newest 5 liked and disliked
    images, and the profile.

    With an assessor connected, the profile is predicted from all the user's images (subsets of
    5 + 5, a recency-weighted vote; cached) and recorded; without one, the profile recorded last
    (by `ptgen generate --user` or an earlier run of this node) is used. `disliked` is None when
    the user has no disliked image. `user` empty: the default user.
    """
    from preferthinker.images import load_image

    with _stored_user(user, store) as stored:
        if assessor is not None:
            from generation.aggregate import predict_user_profile
            from generation.cache import ProfileCache, prompt_version

            aggregated = predict_user_profile(stored, assessor, ProfileCache())
            profile = aggregated.prediction.profile
            stored.record_profile(
                profile,
                assessor.name,
                prompt_version(),
                aggregated.certainty,
                [h for side in aggregated.subsets for part in side for h in part],
            )
        else:
            recorded = stored.profiles(1)
            if not recorded:
                raise InputError(
                    f"user {stored.name} has no profile yet; connect an assessor to predict one"
                )
            profile = UserProfile.from_dict(recorded[0]["profile"])
        sides = []
        for side in FEEDBACK_LABELS:
            pils = [
                load_image(image.path, max_pixels=None)
                for image in stored.images(side)[:MAX_REFERENCES]
            ]
            if not pils:
                sides.append(None)
                continue
            size = (width or pils[0].width, height or pils[0].height)
            sides.append(pils_to_tensor(pils, size=size))
        if sides[0] is None:
            raise InputError(f"user {stored.name} has no liked image; like some first")
        counts = stored.counts()
    summary = f"{stored.name}: {counts['liked']} liked, {counts['disliked']} disliked"
    return sides[0], sides[1], profile, profile.to_tag_text(), summary


def user_fingerprint(user: str = "", store: str = "", **_: Any) -> str:
    """Changes when the user's store does (its database files' sizes and times)."""
    from generation.store import UserStore

    try:
        root = UserStore((store or "").strip() or None)
        folder = root.folder((user or "").strip() or root.default() or "")
    except InputError:
        return "missing"
    stats = []
    for name in ("store.db", "store.db-wal"):
        try:
            info = (folder / name).stat()
            stats.append(f"{name}:{info.st_size}:{info.st_mtime_ns}")
        except OSError:
            continue
    return "|".join(stats) or "missing"


def record_feedback(
    images: Any, user: str, label: str = "liked", indices: str = "", store: str = ""
) -> tuple:
    """Record that a stored user likes or dislikes images of a batch (all, or the 0-based
    `indices`, e.g. "0, 2"). Each image is stored once; a later label replaces an earlier one.

    Returns one line per image: added, already so, or relabelled.
    """
    if label not in FEEDBACK_LABELS:
        raise InputError(f"label must be liked or disliked, got {label!r}")
    from generation.store import Provenance

    pils = tensor_to_pils(_batch(images, "images"), "images")
    chosen = list(range(len(pils)))
    if (indices or "").strip():
        try:
            chosen = [int(part) for part in indices.replace(" ", "").split(",") if part]
        except ValueError:
            raise InputError(f"indices: give batch numbers like '0, 2', got {indices!r}") from None
        bad = [i for i in chosen if not 0 <= i < len(pils)]
        if bad:
            raise InputError(f"indices {bad} are outside the batch of {len(pils)}")
    with _stored_user(user, store) as stored:
        changes = stored.label(
            [pils[i] for i in chosen],
            label,
            [Provenance(origin=f"ComfyUI batch #{i}") for i in chosen],
        )
        counts = stored.counts()
    lines = [change.describe() for change in changes]
    lines.append(f"user {stored.name}: {counts['liked']} liked, {counts['disliked']} disliked")
    return ("\n".join(lines),)


__all__ = [
    "load_user",
    "record_feedback",
    "load_assessor",
    "predict_profile",
    "profile_text",
    "personalize_prompt",
    "compare_pair",
    "rerank_images",
    "load_image_folder",
    "comparison_reasoning",
    "ELEMENTS",
    "STRATEGIES",
]
