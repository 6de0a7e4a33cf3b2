"""The personalized generation loop: references -> profile -> rewrite -> generate -> rerank ->
result.

`PersonalizedGenerator` is the one object creative tools call from Python; `ptgen generate` and
`ptgen rerank` are thin wrappers around it. Each stage reports progress through a callback
(`StageEvent`), and the result (`RunResult`) holds everything a report needs.

Modes:
- "profile" (default): the profile is predicted once per reference set (and cached on disk), and
  every comparison uses the assess-with-a-known-profile prompt: two images per call.
- "full": every comparison uses the authors' full predict-then-assess prompt with all the
  reference images (for comparison and research; about 6x the images for 5+5 references).

Journal (optional, `generation/journal.py`): with `journal=`, each stage records what it finished
as it finishes it (references, profile, rewrite, every candidate as written, every comparison as it
returns), and a resumed run takes those from the journal instead of computing them again.

Failures: on Ctrl-C `run` raises `RunInterrupted` (a `KeyboardInterrupt`) whose `result` holds
what finished, with `status = "partial"`; on any other error the exception goes through unchanged
with that partial result attached as `error.partial_result`. Either way the partial result ranks
the candidates over the comparisons that finished (see `RunResult.unranked`).

Example:
    >>> loop = PersonalizedGenerator(
    ...     assessor, DiffusersGenerator(GeneratorConfig()), LoopConfig(n=8)
    ... )
    >>> result = loop.run("a castle", liked="./liked/", disliked="./disliked/")
    >>> result.best.image.save("best.png")
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Optional, Sequence

from generation.journal import ResumeMismatch
from generation.rerank import (
    NO_WINNER,
    STRATEGIES,
    TIE_POLICIES,
    Match,
    Ranking,
    expected_comparisons,
    rank_tournament,
    ranking_from_matches,
)
from generation.rewrite import ELEMENT_PRIORITY, RewrittenPrompt
from preferthinker.cancel import atomic
from preferthinker.errors import EngineContractError, InputError
from preferthinker.images import DEFAULT_MAX_PIXELS
from preferthinker.references import References
from preferthinker.results import ProfilePrediction, Usage

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
        personalize: False runs the plain prompt with no profile, rewriting or reranking
            (a baseline).
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
        compare_adapter: with a style adapter on the generator, also draw the first seed without
            it, so the report shows a with/without pair (same seed, same prompt).
        prefilter: "similarity:MODEL": rank only the `keep` candidates most like the references
            (`generation/prefilter.py`); None ranks all. keep: how many (default 8).
        explain: after the tournament, judge the winner's last match again with a full verdict
            (rationales), for runs with `--verdict compact`; stored as `RunResult.explanation`.
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
    compare_adapter: bool = False
    prefilter: Optional[str] = None
    keep: Optional[int] = None
    explain: bool = False

    def __post_init__(self) -> None:
        from generation.prefilter import check_prefilter

        check_prefilter(self.prefilter, self.keep)
        if self.n < 1:
            raise ValueError(f"n must be >= 1, got {self.n}")
        if self.strategy not in STRATEGIES:
            raise ValueError(
                f"strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}"
            )
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.rewriter not in REWRITERS:
            raise ValueError(
                f"rewriter must be one of {', '.join(REWRITERS)}, got {self.rewriter!r}"
            )
        if not 0 <= self.strength <= len(ELEMENT_PRIORITY):
            raise ValueError(
                f"strength must be between 0 and {len(ELEMENT_PRIORITY)}, got {self.strength}"
            )
        if self.tie_policy not in TIE_POLICIES:
            raise ValueError(
                f"tie_policy must be one of {', '.join(TIE_POLICIES)}, got {self.tie_policy!r}"
            )
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
    """Progress of one stage: `done` of `total` units (images, comparisons; 1 for one-shot
    stages)."""

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
    style: Optional[dict[str, Any]] = None  # the style adapter, its scale, the references used
    style_off: Optional[Candidate] = None  # --compare-adapter: the first seed without the adapter
    reason: str = ""  # why a partial run stopped
    planned_comparisons: int = 0
    matches: list[Match] = field(default_factory=list)  # finished comparisons, as they return

    @property
    def unranked(self) -> list[int]:
        """Candidates that no finished comparison involves (all of them before ranking starts)."""
        if self.ranking is None:
            return (
                [c.index for c in self.candidates]
                if self.config.ranks and len(self.candidates) > 1
                else []
            )
        return [i for i, games in enumerate(self.ranking.games) if games == 0]

    prefilter: Any = None  # generation.prefilter.Prefiltered, when --prefilter ran
    explanation: Any = None  # a Match: the winner's last match, full verdict (--explain)

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
    """Ctrl-C (or SIGTERM) during a run; `result` holds what finished (status "partial").

    `exit_code` is 128 + the signal number (130 for Ctrl-C, 143 for SIGTERM).
    """

    def __init__(self, result: RunResult, exit_code: int = 130):
        super().__init__("run interrupted")
        self.result = result
        self.exit_code = exit_code


class PersonalizedGenerator:
    """Runs the personalized loop with an assessor and a generator.

    Args:
        assessor: a `preferthinker.assessor.Assessor` (anything with `predict_profile`,
            `compare_many` and `name`).
        generator: a `Generator` (e.g. `DiffusersGenerator`); may be None for `rerank` only.
        config: the run settings.
        cache: a `ProfileCache` (None: one at `config.cache_dir` when `config.cache`).
    """

    def __init__(
        self,
        assessor: Any,
        generator: Any = None,
        config: Optional[LoopConfig] = None,
        cache: Any = None,
    ):
        from generation.cache import ProfileCache

        self.assessor = assessor
        self.generator = generator
        self.config = config or LoopConfig()
        if cache is None and self.config.cache:
            cache = ProfileCache(self.config.cache_dir)
        self.cache = cache
        self.journal: Any = None  # the `Journal` of the run in progress, if any

    # -- stages -----------------------------------------------------------------------------

    def _use_gpu_for(self, active: Any, idle: Any) -> None:
        """Sequential loading: release `idle` first, then bring `active` back, so the two
        models are never on the GPU together."""
        if self.config.sequential:
            for component, call in ((idle, "release"), (active, "restore")):
                getattr(component, call, lambda: None)()

    def _emit(
        self, callback: Optional[Callback], stage: str, done: int, total: int, message: str = ""
    ) -> None:
        if callback is not None:
            callback(StageEvent(stage, done, total, message))

    def _references(
        self, result: RunResult, liked: Any, disliked: Any, callback: Optional[Callback]
    ) -> None:
        start = time.perf_counter()
        self._emit(callback, "references", 0, 1)
        assessor_config = getattr(self.assessor, "config", None)
        max_pixels = getattr(assessor_config, "max_pixels", DEFAULT_MAX_PIXELS)
        refs = References.coerce(liked, disliked, max_pixels=max_pixels)
        if not refs.liked and self.config.personalize:
            raise InputError(
                "no liked reference images given; pass --refs DIR with images you like"
            )
        result.references = refs
        result.liked, result.disliked = list(refs.liked), list(refs.disliked)
        if refs.cut:
            result.issues.append(refs.cut_message())
        if self.journal is not None:
            from generation.journal import image_sha256

            hashes = {
                "liked": [image_sha256(im) for im in result.liked],
                "disliked": [image_sha256(im) for im in result.disliked],
            }
            earlier = self.journal.last("references")
            if earlier is None:
                self.journal.append("references", **hashes)
            elif {k: earlier.get(k) for k in hashes} != hashes:
                raise ResumeMismatch(
                    f"cannot resume {self.journal.folder}: the reference images differ "
                    "from the ones it started with (--refs / --disliked)"
                )
        result.timings["references"] = time.perf_counter() - start
        self._emit(
            callback,
            "references",
            1,
            1,
            f"{len(result.liked)} liked, {len(result.disliked)} disliked",
        )

    def _profile(
        self,
        result: RunResult,
        callback: Optional[Callback],
        given: Optional[ProfilePrediction] = None,
    ) -> None:
        start = time.perf_counter()
        self._emit(callback, "profile", 0, 1)
        key = None
        prediction = None
        journaled = self.journal.last("profile") if self.journal is not None else None
        if journaled is not None:
            from generation.journal import profile_from_record

            result.profile = profile_from_record(journaled["prediction"])
            result.profile_from_cache = bool(journaled.get("from_cache"))
            result.profile_key = journaled.get("key")
            result.usage.add(result.profile.usage)
            result.timings["profile"] = time.perf_counter() - start
            self._emit(callback, "profile", 1, 1, "from the journal")
            return
        if given is not None:  # predicted by the caller (e.g. aggregated over a user's store)
            prediction, message = given, "given"
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
            result.model_seconds["assessor"] = (
                result.model_seconds.get("assessor", 0.0) + prediction.usage.seconds
            )
            if self.cache is not None and key is not None:
                self.cache.put(key, prediction, {"assessor": self.assessor.name})
            message = prediction.status
        if prediction.status == "failed":
            result.issues.append("profile prediction failed: " + "; ".join(prediction.issues))
        with atomic():  # the record and the partial result agree
            result.profile = prediction
            result.profile_key = key
            if self.journal is not None:
                self.journal.append(
                    "profile",
                    prediction=prediction.to_dict(),
                    from_cache=result.profile_from_cache,
                    key=key,
                )
        result.timings["profile"] = time.perf_counter() - start
        self._emit(callback, "profile", 1, 1, message)

    def _rewrite(self, result: RunResult, callback: Optional[Callback]) -> None:
        from generation.rewrite import LLMRewriter, rewrite_prompt

        start = time.perf_counter()
        self._emit(callback, "rewrite", 0, 1)
        config = self.config
        profile = (
            result.profile.profile
            if (result.profile and config.rewrite and config.personalize)
            else None
        )
        tokenizer = getattr(self.generator, "prompt_tokenizer", None)
        limit = config.max_prompt_tokens or getattr(self.generator, "prompt_token_limit", None)
        kwargs = dict(
            strength=config.strength,
            tokenizer=tokenizer,
            token_limit=limit,
            base_negative=config.negative_prompt,
        )
        journaled = self.journal.last("rewrite") if self.journal is not None else None
        if journaled is not None:
            rewritten = RewrittenPrompt(**journaled["rewrite"])
        elif profile is not None and config.rewriter == "llm":
            rewritten = LLMRewriter(self.assessor.engine).rewrite(result.prompt, profile, **kwargs)
        else:
            rewritten = rewrite_prompt(result.prompt, profile, **kwargs)
            if profile is None:
                rewritten.method = "none"
        if self.journal is not None and journaled is None:
            self.journal.append("rewrite", rewrite=rewritten.to_dict())
        result.rewrite = rewritten
        if (
            rewritten.negative_prompt
            and getattr(self.generator, "supports_negative_prompt", True) is False
        ):
            result.issues.append(
                f"generator {self.generator.name} ignores negative prompts; "
                "the dislikes only steer the ranking"
            )
        if rewritten.cut:
            result.issues.append(
                f"cut for the {rewritten.token_limit}-token budget: " + "; ".join(rewritten.cut)
            )
        result.timings["rewrite"] = time.perf_counter() - start
        self._emit(callback, "rewrite", 1, 1, rewritten.prompt)

    def _generate(self, result: RunResult, callback: Optional[Callback]) -> None:
        start = time.perf_counter()
        config = self.config
        prompt = result.rewrite.prompt if result.rewrite else result.prompt
        negative = result.rewrite.negative_prompt if result.rewrite else config.negative_prompt
        seeds = [config.seed + i for i in range(config.n)]
        if self.journal is not None:
            self._journaled_candidates(result)
        self._emit(callback, "generate", len(result.candidates), len(seeds))
        model_time = 0.0
        try:
            while len(result.candidates) < len(seeds):
                # Re-read the batch size each time: DiffusersGenerator lowers it after an OOM.
                chunk = max(1, int(getattr(self.generator, "batch_size", len(seeds)) or len(seeds)))
                batch = seeds[len(result.candidates) : len(result.candidates) + chunk]
                # Model compute: the pipeline's own time when the generator reports it, else
                # the call.
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
                    candidate = Candidate(len(result.candidates), image, seed, prompt, negative)
                    self._keep(result, candidate)
                self._emit(callback, "generate", len(result.candidates), len(seeds))
        finally:
            result.model_seconds["generator"] = model_time
            result.timings["generate"] = time.perf_counter() - start

    def _style_references(self, result: RunResult) -> None:
        """Hand the references to the generator's style adapter (it embeds them once, cached)."""
        if getattr(self.generator, "style", None) is None:
            return
        if not result.liked:
            raise InputError("the style adapter needs liked reference images; pass --refs DIR")
        self.generator.set_style_references(result.liked, result.disliked)
        result.style = self.generator.style_info()
        refs = result.references
        if refs is not None and len(refs.liked_sources) == len(result.liked):
            result.style["liked_files"] = [
                refs.liked_sources[i] for i in result.style["liked_used"]
            ]
            result.style["disliked_files"] = list(refs.disliked_sources)

    def _style_comparison(self, result: RunResult) -> None:
        """The first candidate's seed and prompt again, without the adapter (--compare-adapter)."""
        style = getattr(self.generator, "style", None)
        if style is None or not self.config.compare_adapter or not result.candidates:
            return
        first = result.candidates[0]
        with style.disabled():
            image = self.generator.generate(first.prompt, first.negative_prompt, [first.seed])[0]
        result.style_off = Candidate(-1, image, first.seed, first.prompt, first.negative_prompt)

    def _keep(self, result: RunResult, candidate: Candidate) -> None:
        """Add a candidate; with a journal, write its PNG and record it at once."""
        if self.journal is not None:
            from generation.journal import image_sha256
            from generation.report import save_candidate

            with atomic():  # the PNG, its record and the result agree, whatever signal comes
                path = save_candidate(
                    candidate, self.journal.folder, result.generator, result.generator_settings
                )
                self.journal.append(
                    "candidate",
                    index=candidate.index,
                    seed=candidate.seed,
                    file=path.name,
                    source=candidate.source,
                    sha256=image_sha256(candidate.image),
                )
                result.candidates.append(candidate)
            return
        result.candidates.append(candidate)

    def _journaled_candidates(self, result: RunResult) -> None:
        """The candidates an earlier attempt of this run generated (PNGs in the run folder)."""
        from PIL import Image

        prompt = result.rewrite.prompt if result.rewrite else result.prompt
        negative = result.rewrite.negative_prompt if result.rewrite else self.config.negative_prompt
        for record in sorted(self.journal.records_of("candidate"), key=lambda r: r["index"]):
            path = self.journal.folder / str(record.get("file") or "")
            if record["index"] != len(result.candidates) or not path.is_file():
                break  # a gap: generate from here on
            with Image.open(path) as image:
                result.candidates.append(
                    Candidate(
                        record["index"], image.convert("RGB"), record.get("seed"), prompt, negative
                    )
                )

    def _compare_journaled(
        self, result: RunResult, images: list, compare_many: Callable[..., list]
    ):
        """`compare_many` over candidate indices that records each comparison as it returns and
        takes the ones the journal already holds from there."""
        from generation.journal import comparison_from_record

        finished: dict[tuple[int, int], Any] = {}
        if self.journal is not None:
            for record in self.journal.records_of("comparison"):
                finished[(record["a"], record["b"])] = comparison_from_record(record["comparison"])
        engine = getattr(self.assessor, "engine", None)
        assessor_config = getattr(self.assessor, "config", None)
        concurrent = bool(getattr(engine, "concurrent", False))
        rounds = [0]

        def compare(
            pairs: list[tuple[int, int]], progress: Optional[Callable[[int, int], None]] = None
        ) -> list:
            from preferthinker.cancel import map_in_threads

            rounds[0] += 1
            round_index = rounds[0]
            out: list[Any] = [finished.get(pair) for pair in pairs]
            for pair, comparison in zip(pairs, out, strict=True):
                if comparison is not None:
                    result.matches.append(Match(round_index, pair[0], pair[1], comparison))
            todo = [k for k, comparison in enumerate(out) if comparison is None]
            done = [len(pairs) - len(todo)]
            if progress:
                progress(done[0], len(pairs))

            def record(position: int, comparison: Any) -> None:
                k = todo[position]
                a, b = pairs[k]
                out[k] = comparison
                with atomic():  # the record and the partial result agree
                    if self.journal is not None:
                        record_data = comparison.to_dict()
                        self.journal.append(
                            "comparison", round=round_index, a=a, b=b, comparison=record_data
                        )
                    result.matches.append(Match(round_index, a, b, comparison))
                done[0] += 1
                if progress:
                    progress(done[0], len(pairs))

            if concurrent:  # one pair per call, all in flight at once: each is kept as it returns
                orders = 2 if getattr(assessor_config, "debias", False) else 1  # requests per pair
                workers = max(1, getattr(assessor_config, "max_concurrency", 8) // orders)
                map_in_threads(
                    lambda k: compare_many([(images[pairs[k][0]], images[pairs[k][1]])])[0],
                    todo,
                    workers,
                    on_done=record,
                )
            else:  # in-process engines batch: record each batch as it returns
                size = max(1, getattr(assessor_config, "batch_size", 1) or 1)
                for start in range(0, len(todo), size):
                    chunk = todo[start : start + size]
                    compared = compare_many(
                        [(images[pairs[k][0]], images[pairs[k][1]]) for k in chunk]
                    )
                    for offset, comparison in enumerate(compared):
                        record(start + offset, comparison)
            return out

        return compare

    def _rank(self, result: RunResult, callback: Optional[Callback]) -> None:
        start = time.perf_counter()
        config = self.config
        images = [candidate.image for candidate in result.candidates]
        profile = result.profile.profile if result.profile else None
        mode = config.mode
        if mode == "profile" and (profile is None or profile.liked.is_empty()):
            mode = "full"
            result.issues.append(
                "no usable profile: comparisons use the full prompt with the references"
            )
        result.mode = mode
        kwargs: dict[str, Any]
        if mode == "profile":
            kwargs = {"profile": profile}
        else:
            kwargs = {"liked": result.references}
        compare_many = functools.partial(self.assessor.compare_many, **kwargs)
        chosen = None
        if config.prefilter:
            chosen = self._prefilter(result, images, callback)
            images = [images[i] for i in chosen.kept]
        total = expected_comparisons(len(images), config.strategy, config.swiss_rounds)
        result.planned_comparisons = total
        self._emit(callback, "rerank", 0, total)

        def progress(done: int, planned: int) -> None:
            self._emit(callback, "rerank", done, planned)

        ranking = rank_tournament(
            list(range(len(images))),
            self._compare_journaled(result, images, compare_many),
            config.strategy,
            rounds=config.swiss_rounds,
            tie_policy=config.tie_policy,
            progress=progress,
        )
        if chosen is not None:
            from generation.prefilter import expand_ranking

            ranking = expand_ranking(ranking, chosen)
        result.ranking = ranking
        result.usage.add(ranking.usage)
        if config.explain and ranking.decided and ranking.matches:
            self._explain(result, kwargs)
        result.model_seconds["assessor"] = (
            result.model_seconds.get("assessor", 0.0) + ranking.usage.seconds
        )
        if ranking.undecided:
            result.issues.append(
                f"{ranking.undecided} comparison(s) undecided (tie policy: {config.tie_policy})"
            )
        if not ranking.decided:
            result.issues.append(NO_WINNER)
        result.timings["rerank"] = time.perf_counter() - start
        outcome = f"winner: candidate {ranking.winner}" if ranking.decided else "no winner"
        self._emit(callback, "rerank", total, total, outcome)

    def _explain(self, result: RunResult, kwargs: dict[str, Any]) -> None:
        """The winner's last match judged again with a full verdict (the rationale of the win)."""
        from generation.rerank import Match

        last = [m for m in result.ranking.matches if result.ranking.winner in (m.a, m.b)][-1]
        pair = (result.candidates[last.a].image, result.candidates[last.b].image)
        (comparison,) = self.assessor.compare_many([pair], verdict="full", **kwargs)
        result.explanation = Match(last.round, last.a, last.b, comparison)
        result.usage.add(comparison.usage)

    def _prefilter(self, result: RunResult, images: list, callback: Optional[Callback]) -> Any:
        from generation.prefilter import DEFAULT_KEEP, prefilter_candidates

        start = time.perf_counter()
        keep = self.config.keep or DEFAULT_KEEP
        self._emit(callback, "rerank", 0, 1, f"pre-filter: keeping {keep} of {len(images)}")
        device = getattr(getattr(self.assessor, "config", None), "device", None)
        chosen = prefilter_candidates(
            images, result.references, self.config.prefilter, keep, device
        )
        result.prefilter = chosen
        result.timings["prefilter"] = time.perf_counter() - start
        return chosen

    # -- public calls -----------------------------------------------------------------------

    def _new_result(self, prompt: str) -> RunResult:
        return RunResult(
            prompt=prompt,
            config=self.config,
            mode=self.config.mode,
            assessor=getattr(self.assessor, "name", None) if self.assessor is not None else None,
            generator=getattr(self.generator, "name", None),
            generator_settings=self.generator.settings()
            if hasattr(self.generator, "settings")
            else {},
        )

    def _settings(self, result: RunResult) -> dict[str, Any]:
        """What shapes this run's results; a resumed run must match them (see `Journal.start`)."""
        config = self.config
        assessor_config = getattr(self.assessor, "config", None)
        settings: dict[str, Any] = {
            "prompt": result.prompt,
            "n": config.n,
            "seed": config.seed,
            "strategy": config.strategy,
            "mode": config.mode,
            "personalize": config.personalize,
            "strength": config.strength,
            "rewriter": config.rewriter,
            "negative_prompt": config.negative_prompt,
            "max_prompt_tokens": config.max_prompt_tokens,
            "swiss_rounds": config.swiss_rounds,
            "tie_policy": config.tie_policy,
            "assessor": result.assessor,
            "generator": result.generator,
            "rewrite": config.rewrite,
            "prefilter": config.prefilter,
            "keep": config.keep,
        }
        style = getattr(self.generator, "style", None)
        if style is not None:  # the adapter and its scale shape every image
            settings["style_adapter"] = {
                "adapter": style.resolved.label,
                "scale": style.scale,
                "blocks": style.blocks,
                "top_k": style.config.top_k,
            }
        for name in (
            "debias",
            "max_new_tokens",
            "temperature",
            "repetition_penalty",
            "max_pixels",
            "verdict",
        ):
            settings[name] = getattr(assessor_config, name, None)
        for name in ("steps", "guidance", "width", "height"):
            settings[name] = result.generator_settings.get(name)
        return settings

    def _finish(
        self,
        result: RunResult,
        start: float,
        stages: Callable[[], None],
        journal: Any,
        options: Optional[dict[str, Any]],
    ) -> RunResult:
        from preferthinker import cancel

        if journal is not None:  # a resume with other settings fails here, before anything changes
            journal.start(self._settings(result), options)
        self.journal = journal
        try:
            stages()
        except ResumeMismatch:
            raise  # refused before anything ran: the run's result and report stay as they were
        except BaseException as error:
            result.status = "partial"
            interrupted = isinstance(error, KeyboardInterrupt)
            result.reason = (
                "interrupted"
                if interrupted
                else " ".join(str(error).split()) or type(error).__name__
            )
            result.issues.append(f"partial run: {result.reason}")
            if result.matches and result.ranking is None:
                result.ranking = ranking_from_matches(
                    len(result.candidates),
                    result.matches,
                    self.config.strategy,
                    self.config.tie_policy,
                )
            result.timings["total"] = time.perf_counter() - start
            if journal is not None:
                journal.append("stop", status="partial", reason=result.reason)
            if interrupted:
                code = getattr(error, "exit_code", 130)
                raise RunInterrupted(result, code if isinstance(code, int) else 130) from None
            error.partial_result = result  # type: ignore[attr-defined]
            raise
        finally:
            self.journal = None
        cancel.check()  # a cancel that came in as the last step finished still stops the run
        result.status = "complete"
        result.timings["total"] = time.perf_counter() - start
        if journal is not None:
            journal.append("stop", status="complete", reason="")
        return result

    def run(
        self,
        prompt: str,
        liked: Any = None,
        disliked: Any = None,
        callback: Optional[Callback] = None,
        journal: Any = None,
        options: Optional[dict[str, Any]] = None,
        profile: Optional[ProfilePrediction] = None,
    ) -> RunResult:
        """Generate `config.n` candidates for `prompt`, personalized to the references, and rank
        them.

        Args:
            prompt: what to draw.
            liked: images the user likes: a `References` (loaded once at the edge), a folder,
                a list of paths, or PIL images.
            disliked: images the user dislikes (optional), same forms (None with a `References`).
            callback: called with a `StageEvent` as each stage progresses.
            journal: a `generation.journal.Journal` to record into and resume from (None: none).
            options: the command's options, recorded in the journal for `--resume`.
            profile: a profile already predicted (e.g. `generation.aggregate` over a user's
                store): used instead of predicting one from the references.

        Returns:
            A `RunResult` (status "complete"); `result.best` is the winner.

        Raises:
            RunInterrupted: on Ctrl-C; its `result` is the partial run.
            Any other error, with the partial run as `error.partial_result`.

        Example:
            >>> result = loop.run("a castle", "./liked/", callback=print)
            >>> [c.seed for c in result.ranked]
        """
        if self.generator is None:
            raise InputError(
                "PersonalizedGenerator.run needs a generator; use rerank() for existing images"
            )
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
            self._style_references(result)
            self._generate(result, callback)
            self._style_comparison(result)
            if config.ranks and len(result.candidates) > 1:
                self._use_gpu_for(self.assessor, self.generator)
                self._rank(result, callback)

        return self._finish(result, start, stages, journal, options)

    def rerank(
        self,
        images: Sequence[Any],
        liked: Any = None,
        disliked: Any = None,
        callback: Optional[Callback] = None,
        sources: Optional[Sequence[str]] = None,
        journal: Any = None,
        options: Optional[dict[str, Any]] = None,
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
            # The given images first: a run stopped during the profile still lists them.
            given = [
                Candidate(index, image, source=sources[index] if sources else None)
                for index, image in enumerate(images)
            ]
            if self.journal is not None:
                self._check_given(given)
            result.candidates.extend(given)
            if self.config.mode == "profile":
                self._profile(result, callback, profile)
            if len(result.candidates) > 1:
                self._rank(result, callback)

        return self._finish(result, start, stages, journal, options)

    def _check_given(self, given: list[Candidate]) -> None:
        """Record the images to rank; on resume, check they are the ones the run started with."""
        from generation.journal import image_sha256

        earlier = {r["index"]: r.get("sha256") for r in self.journal.records_of("candidate")}
        for candidate in given:
            digest = image_sha256(candidate.image)
            if not earlier:
                continue
            if earlier.get(candidate.index) != digest:
                raise ResumeMismatch(
                    f"cannot resume {self.journal.folder}: image {candidate.index} "
                    f"({candidate.source or 'given'}) differs from the one the run started with"
                )
        if not earlier:
            for candidate in given:
                self.journal.append(
                    "candidate",
                    index=candidate.index,
                    seed=None,
                    file=None,
                    source=candidate.source,
                    sha256=image_sha256(candidate.image),
                )
        elif len(earlier) != len(given):
            raise ResumeMismatch(
                f"cannot resume {self.journal.folder}: it ranked {len(earlier)} images, "
                f"this command gives {len(given)}"
            )


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
    return rerank(
        images,
        assessor,
        strategy=strategy,
        profile=profile,
        liked=liked,
        disliked=disliked,
        rounds=rounds,
        tie_policy=tie_policy,
        progress=progress,
    )


def config_dict(config: LoopConfig) -> dict[str, Any]:
    return asdict(config)
