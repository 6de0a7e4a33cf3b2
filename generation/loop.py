"""The personalized generation loop: references -> profile -> rewrite -> generate -> rerank -> result.

`PersonalizedGenerator` is the one object creative tools call from Python; `ptgen generate` and
`ptgen rerank` are thin wrappers around it. Each stage reports progress through a callback
(`StageEvent`), and the result (`RunResult`) holds everything a report needs.

Modes:
- "profile" (default): the profile is predicted once per reference set (and cached on disk), and
  every comparison uses the assess-with-a-known-profile prompt: two images per call.
- "full": every comparison uses the authors' full predict-then-assess prompt with all the
  reference images (for comparison and research; about 6x the images for 5+5 references).

Ctrl-C: `run` raises `RunInterrupted` (a `KeyboardInterrupt`) whose `result` holds what finished,
with `status = "partial"`, so the caller can still write it out.

Example:
    >>> loop = PersonalizedGenerator(assessor, DiffusersGenerator(GeneratorConfig()), LoopConfig(n=8))
    >>> result = loop.run("a castle", liked="./liked/", disliked="./disliked/")
    >>> result.best.image.save("best.png")
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Optional, Sequence

from preferthinker.errors import EngineContractError, InputError
from preferthinker.images import DEFAULT_MAX_PIXELS
from preferthinker.references import References
from preferthinker.results import ProfilePrediction, Usage

from generation.rerank import (
    NO_WINNER,
    STRATEGIES,
    TIE_POLICIES,
    Ranking,
    expected_comparisons,
    rank_tournament,
)
from generation.rewrite import ELEMENT_PRIORITY, RewrittenPrompt

logger = logging.getLogger(__name__)

MODES = ("profile", "full")
REWRITERS = ("template", "llm")
STAGES = ("references", "profile", "rewrite", "generate", "rerank")


@dataclass
class LoopConfig:
    """Settings of one personalized run.

    Args:
        n: candidates to generate.
        seed: seed of the first candidate; candidate i uses seed + i.
        strategy: "knockout" (N-1 comparisons), "round-robin" (N(N-1)/2) or "swiss".
        mode: "profile" (predict once, reuse) or "full" (authors' full prompt per comparison).
        personalize: False runs the plain prompt with no profile, rewriting or reranking (a baseline).
        rewrite: inject profile terms into the prompt; rerank: rank the candidates.
        strength: how many profile elements the rewrite injects (0-5).
        rewriter: "template" (deterministic) or "llm" (the assessor's engine rewrites).
        negative_prompt: your own negative prompt, kept before the profile's dislikes.
        max_prompt_tokens: token budget of the prompt (None: the generator's text encoder limit).
        swiss_rounds: Swiss rounds (None: ceil(log2 n) + 1).
        tie_policy: undecided comparisons count "half" a win each, or are "skip"ped.
        cache: reuse cached profiles; cache_dir: where (None: ~/.cache/ptgen/profiles).
        sequential: keep only the model of the running stage on the GPU (the other waits in CPU
            memory): assessor and generator then need not fit the GPU together (24 GB cards).
    """

    n: int = 8
    seed: int = 0
    strategy: str = "knockout"
    mode: str = "profile"
    personalize: bool = True
    rewrite: bool = True
    rerank: bool = True
    strength: int = 5
    rewriter: str = "template"
    negative_prompt: str = ""
    max_prompt_tokens: Optional[int] = None
    swiss_rounds: Optional[int] = None
    tie_policy: str = "half"
    cache: bool = True
    cache_dir: Optional[str] = None
    sequential: bool = False

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"n must be >= 1, got {self.n}")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.rewriter not in REWRITERS:
            raise ValueError(f"rewriter must be one of {', '.join(REWRITERS)}, got {self.rewriter!r}")
        if not 0 <= self.strength <= len(ELEMENT_PRIORITY):
            raise ValueError(f"strength must be between 0 and {len(ELEMENT_PRIORITY)}, got {self.strength}")
        if self.tie_policy not in TIE_POLICIES:
            raise ValueError(f"tie_policy must be one of {', '.join(TIE_POLICIES)}, got {self.tie_policy!r}")
        if self.max_prompt_tokens is not None and self.max_prompt_tokens < 1:
            raise ValueError(f"max_prompt_tokens must be >= 1, got {self.max_prompt_tokens}")
        if self.swiss_rounds is not None and self.swiss_rounds < 1:
            raise ValueError(f"swiss_rounds must be >= 1, got {self.swiss_rounds}")

    @property
    def uses_profile(self) -> bool:
        return self.personalize and (self.rewrite or (self.rerank and self.mode == "profile"))

    @property
    def ranks(self) -> bool:
        return self.personalize and self.rerank


@dataclass
class StageEvent:
    """Progress of one stage: `done` of `total` units (images, comparisons; 1 for one-shot stages)."""

    stage: str
    done: int
    total: int
    message: str = ""


Callback = Callable[[StageEvent], None]


@dataclass
class Candidate:
    """One generated (or given) image with what produced it."""

    index: int
    image: Any
    seed: Optional[int] = None
    prompt: str = ""
    negative_prompt: str = ""
    source: Optional[str] = None  # the file it came from, for `ptgen rerank`


@dataclass
class RunResult:
    """Everything one run produced, complete or partial."""

    prompt: str
    config: LoopConfig
    status: str = "partial"
    mode: str = "profile"
    assessor: Optional[str] = None
    generator: Optional[str] = None
    generator_settings: dict[str, Any] = field(default_factory=dict)
    liked: list[Any] = field(default_factory=list)  # the images the assessor saw
    disliked: list[Any] = field(default_factory=list)
    references: Optional[References] = None  # where they came from, what was skipped or cut
    profile: Optional[ProfilePrediction] = None
    profile_from_cache: bool = False
    profile_key: Optional[str] = None
    rewrite: Optional[RewrittenPrompt] = None
    candidates: list[Candidate] = field(default_factory=list)
    ranking: Optional[Ranking] = None
    timings: dict[str, float] = field(default_factory=dict)
    model_seconds: dict[str, float] = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)
    issues: list[str] = field(default_factory=list)

    @property
    def ranked(self) -> list[Candidate]:
        """Candidates best first (generation order when not ranked)."""
        if self.ranking is None:
            return list(self.candidates)
        return [self.candidates[i] for i in self.ranking.order]

    @property
    def best(self) -> Optional[Candidate]:
        """The winner; None when no comparison was decided (`NO_WINNER` is then in `issues`)."""
        if self.ranking is not None and not self.ranking.decided:
            return None
        ranked = self.ranked
        return ranked[0] if ranked else None


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run; `result` holds what finished (status "partial")."""

    def __init__(self, result: RunResult):
        super().__init__("run interrupted")
        self.result = result


class PersonalizedGenerator:
    """Runs the personalized loop with an assessor and a generator.

    Args:
        assessor: a `preferthinker.assessor.Assessor` (anything with `predict_profile`,
            `compare_many` and `name`).
        generator: a `Generator` (e.g. `DiffusersGenerator`); may be None for `rerank` only.
        config: the run settings.
        cache: a `ProfileCache` (None: one at `config.cache_dir` when `config.cache`).
    """

    def __init__(self, assessor: Any, generator: Any = None, config: Optional[LoopConfig] = None, cache: Any = None):
        from generation.cache import ProfileCache

        self.assessor = assessor
        self.generator = generator
        self.config = config or LoopConfig()
        if cache is None and self.config.cache:
            cache = ProfileCache(self.config.cache_dir)
        self.cache = cache

    # -- stages -----------------------------------------------------------------------------

    def _use_gpu_for(self, active: Any, idle: Any) -> None:
        """Sequential loading: release `idle` first, then bring `active` back, so the two
        models are never on the GPU together."""
        if self.config.sequential:
            for component, call in ((idle, "release"), (active, "restore")):
                getattr(component, call, lambda: None)()

    def _emit(self, callback: Optional[Callback], stage: str, done: int, total: int, message: str = "") -> None:
        if callback is not None:
            callback(StageEvent(stage, done, total, message))

    def _references(self, result: RunResult, liked: Any, disliked: Any, callback: Optional[Callback]) -> None:
        start = time.perf_counter()
        self._emit(callback, "references", 0, 1)
        assessor_config = getattr(self.assessor, "config", None)
        max_pixels = getattr(assessor_config, "max_pixels", DEFAULT_MAX_PIXELS)
        refs = References.coerce(liked, disliked, max_pixels=max_pixels)
        if not refs.liked and self.config.personalize:
            raise InputError("no liked reference images given; pass --refs DIR with images you like")
        result.references = refs
        result.liked, result.disliked = list(refs.liked), list(refs.disliked)
        if refs.cut:
            result.issues.append(refs.cut_message())
        result.timings["references"] = time.perf_counter() - start
        self._emit(callback, "references", 1, 1, f"{len(result.liked)} liked, {len(result.disliked)} disliked")

    def _profile(self, result: RunResult, callback: Optional[Callback],
                 given: Optional[ProfilePrediction] = None) -> None:
        start = time.perf_counter()
        self._emit(callback, "profile", 0, 1)
        key = None
        prediction = given  # predicted by the caller (e.g. aggregated over a user's store)
        if prediction is not None:
            message = "given"
        elif self.cache is not None:
            key = self.cache.key(result.references, None, self.assessor.name)
            prediction = self.cache.get(key)
        if given is not None:
            pass
        elif prediction is not None:
            result.profile_from_cache = True
            message = "from cache"
        else:
            prediction = self.assessor.predict_profile(result.references)
            result.usage.add(prediction.usage)
            result.model_seconds["assessor"] = result.model_seconds.get("assessor", 0.0) + prediction.usage.seconds
            if self.cache is not None and key is not None:
                self.cache.put(key, prediction, {"assessor": self.assessor.name})
            message = prediction.status
        if prediction.status == "failed":
            result.issues.append("profile prediction failed: " + "; ".join(prediction.issues))
        result.profile = prediction
        result.profile_key = key
        result.timings["profile"] = time.perf_counter() - start
        self._emit(callback, "profile", 1, 1, message)

    def _rewrite(self, result: RunResult, callback: Optional[Callback]) -> None:
        from generation.rewrite import LLMRewriter, rewrite_prompt

        start = time.perf_counter()
        self._emit(callback, "rewrite", 0, 1)
        config = self.config
        profile = result.profile.profile if (result.profile and config.rewrite and config.personalize) else None
        tokenizer = getattr(self.generator, "prompt_tokenizer", None)
        limit = config.max_prompt_tokens or getattr(self.generator, "prompt_token_limit", None)
        kwargs = dict(strength=config.strength, tokenizer=tokenizer, token_limit=limit, base_negative=config.negative_prompt)
        if profile is not None and config.rewriter == "llm":
            rewritten = LLMRewriter(self.assessor.engine).rewrite(result.prompt, profile, **kwargs)
        else:
            rewritten = rewrite_prompt(result.prompt, profile, **kwargs)
            if profile is None:
                rewritten.method = "none"
        result.rewrite = rewritten
        if rewritten.negative_prompt and getattr(self.generator, "supports_negative_prompt", True) is False:
            result.issues.append(f"generator {self.generator.name} ignores negative prompts; the dislikes only steer the ranking")
        if rewritten.cut:
            result.issues.append(f"cut for the {rewritten.token_limit}-token budget: " + "; ".join(rewritten.cut))
        result.timings["rewrite"] = time.perf_counter() - start
        self._emit(callback, "rewrite", 1, 1, rewritten.prompt)

    def _generate(self, result: RunResult, callback: Optional[Callback]) -> None:
        start = time.perf_counter()
        config = self.config
        prompt = result.rewrite.prompt if result.rewrite else result.prompt
        negative = result.rewrite.negative_prompt if result.rewrite else config.negative_prompt
        seeds = [config.seed + i for i in range(config.n)]
        self._emit(callback, "generate", 0, len(seeds))
        model_time = 0.0
        try:
            while len(result.candidates) < len(seeds):
                # Re-read the batch size each time: DiffusersGenerator lowers it after an OOM.
                chunk = max(1, int(getattr(self.generator, "batch_size", len(seeds)) or len(seeds)))
                batch = seeds[len(result.candidates) : len(result.candidates) + chunk]
                # Model compute: the pipeline's own time when the generator reports it, else the call.
                timings = getattr(self.generator, "timings", None)
                before = getattr(timings, "seconds", None)
                call_start = time.perf_counter()
                images = self.generator.generate(prompt, negative, seeds=batch)
                elapsed = time.perf_counter() - call_start
                model_time += timings.seconds - before if before is not None else elapsed
                EngineContractError.check(
                    f"generator {self.generator.name}", len(images), len(batch), "images", "seeds"
                )
                for seed, image in zip(batch, images):
                    result.candidates.append(Candidate(len(result.candidates), image, seed, prompt, negative))
                self._emit(callback, "generate", len(result.candidates), len(seeds))
        finally:
            result.model_seconds["generator"] = model_time
            result.timings["generate"] = time.perf_counter() - start

    def _rank(self, result: RunResult, callback: Optional[Callback]) -> None:
        start = time.perf_counter()
        config = self.config
        images = [candidate.image for candidate in result.candidates]
        profile = result.profile.profile if result.profile else None
        mode = config.mode
        if mode == "profile" and (profile is None or profile.liked.is_empty()):
            mode = "full"
            result.issues.append("no usable profile: comparisons use the full prompt with the references")
        result.mode = mode
        kwargs: dict[str, Any]
        if mode == "profile":
            kwargs = {"profile": profile}
        else:
            kwargs = {"liked": result.references}
        compare_many = functools.partial(self.assessor.compare_many, **kwargs)
        total = expected_comparisons(len(images), config.strategy, config.swiss_rounds)
        self._emit(callback, "rerank", 0, total)

        def progress(done: int, planned: int) -> None:
            self._emit(callback, "rerank", done, planned)

        ranking = rank_tournament(
            images, compare_many, config.strategy, rounds=config.swiss_rounds,
            tie_policy=config.tie_policy, progress=progress,
        )
        result.ranking = ranking
        result.usage.add(ranking.usage)
        result.model_seconds["assessor"] = result.model_seconds.get("assessor", 0.0) + ranking.usage.seconds
        if ranking.undecided:
            result.issues.append(f"{ranking.undecided} comparison(s) undecided (tie policy: {config.tie_policy})")
        if not ranking.decided:
            result.issues.append(NO_WINNER)
        result.timings["rerank"] = time.perf_counter() - start
        outcome = f"winner: candidate {ranking.winner}" if ranking.decided else "no winner"
        self._emit(callback, "rerank", total, total, outcome)

    # -- public calls -----------------------------------------------------------------------

    def _new_result(self, prompt: str) -> RunResult:
        return RunResult(
            prompt=prompt,
            config=self.config,
            mode=self.config.mode,
            assessor=getattr(self.assessor, "name", None) if self.assessor is not None else None,
            generator=getattr(self.generator, "name", None),
            generator_settings=self.generator.settings() if hasattr(self.generator, "settings") else {},
        )

    def _finish(self, result: RunResult, start: float, stages: Callable[[], None]) -> RunResult:
        try:
            stages()
        except KeyboardInterrupt:
            result.status = "partial"
            result.issues.append("interrupted: the run stopped before it finished")
            result.timings["total"] = time.perf_counter() - start
            raise RunInterrupted(result) from None
        result.status = "complete"
        result.timings["total"] = time.perf_counter() - start
        return result

    def run(self, prompt: str, liked: Any = None, disliked: Any = None, callback: Optional[Callback] = None,
            profile: Optional[ProfilePrediction] = None) -> RunResult:
        """Generate `config.n` candidates for `prompt`, personalized to the references, and rank them.

        Args:
            prompt: what to draw.
            liked: images the user likes: a `References` (loaded once at the edge), a folder,
                a list of paths, or PIL images.
            disliked: images the user dislikes (optional), same forms (None with a `References`).
            callback: called with a `StageEvent` as each stage progresses.
            profile: a profile already predicted (e.g. `generation.aggregate` over a user's
                store): used instead of predicting one from the references.

        Returns:
            A `RunResult` (status "complete"); `result.best` is the winner.

        Raises:
            RunInterrupted: on Ctrl-C; its `result` is the partial run.

        Example:
            >>> result = loop.run("a castle", "./liked/", callback=print)
            >>> [c.seed for c in result.ranked]
        """
        if self.generator is None:
            raise InputError("PersonalizedGenerator.run needs a generator; use rerank() for existing images")
        if not isinstance(prompt, str) or not prompt.strip():
            raise InputError(f"prompt must be a non-empty string, got {prompt!r}")
        start = time.perf_counter()
        result = self._new_result(prompt.strip())
        config = self.config

        def stages() -> None:
            if config.personalize:
                self._references(result, liked, disliked, callback)
            if config.uses_profile:
                self._use_gpu_for(self.assessor, self.generator)
                self._profile(result, callback, profile)
            self._rewrite(result, callback)
            self._use_gpu_for(self.generator, self.assessor)
            self._generate(result, callback)
            if config.ranks and len(result.candidates) > 1:
                self._use_gpu_for(self.assessor, self.generator)
                self._rank(result, callback)

        return self._finish(result, start, stages)

    def rerank(
        self,
        images: Sequence[Any],
        liked: Any = None,
        disliked: Any = None,
        callback: Optional[Callback] = None,
        sources: Optional[Sequence[str]] = None,
        profile: Optional[ProfilePrediction] = None,
    ) -> RunResult:
        """Rank images the user already has (best-of-N for creative tools), same result as `run`.

        Example:
            >>> result = PersonalizedGenerator(assessor).rerank(images, liked="./liked/")
            >>> result.best.source
        """
        if len(images) < 1:
            raise InputError("rerank needs at least one image")
        start = time.perf_counter()
        result = self._new_result("")
        result.generator = None

        def stages() -> None:
            self._references(result, liked, disliked, callback)
            if self.config.mode == "profile":
                self._profile(result, callback, profile)
            for index, image in enumerate(images):
                source = sources[index] if sources else None
                result.candidates.append(Candidate(index, image, source=source))
            if len(result.candidates) > 1:
                self._rank(result, callback)

        return self._finish(result, start, stages)


def rerank_images(
    images: Sequence[Any],
    assessor: Any,
    *,
    profile: Any = None,
    liked: Any = None,
    disliked: Any = None,
    strategy: str = "knockout",
    tie_policy: str = "half",
    rounds: Optional[int] = None,
    progress: Optional[Callable[[int, int], None]] = None,
) -> Ranking:
    """Rank images for a user: with a known `profile` (two images per comparison) or with the
    `liked`/`disliked` references in every comparison (the authors' full prompt); the references
    (a `References`, folders, paths or PIL images) are loaded once for all rounds.

    Example:
        >>> ranking = rerank_images(images, assessor, profile=prediction.profile)
        >>> best = images[ranking.winner]
    """
    from generation.rerank import rerank

    if profile is None and liked is not None:
        # Loaded once here, not again in every round's comparisons.
        max_pixels = getattr(getattr(assessor, "config", None), "max_pixels", DEFAULT_MAX_PIXELS)
        liked, disliked = References.coerce(liked, disliked, max_pixels=max_pixels), None
    return rerank(images, assessor, strategy=strategy, profile=profile, liked=liked, disliked=disliked,
                  rounds=rounds, tie_policy=tie_policy, progress=progress)


def config_dict(config: LoopConfig) -> dict[str, Any]:
    return asdict(config)
