"""The assessor: predict a user's profile, and judge which of two images fits the user better.

`Assessor` ties an engine (the model), the prompt builders and the parser together:

    profile prediction   liked (+ disliked) images -> ProfilePrediction
    comparison           two candidates + (a known profile | the reference images) -> Comparison

Model output is never trusted to be well formed: unparseable answers are retried a bounded number
of times (sampling, since greedy decoding would repeat the same text) and then reported as an
undecided `Comparison` or a "failed" `ProfilePrediction`, which callers handle.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Union

from preferthinker.engines import (
    Conversation,
    Engine,
    EngineBackend,
    EngineOutput,
    GenerationConfig,
    count_images,
    find_backend,
)
from preferthinker.engines.openai_engine import DEFAULT_TIMEOUT
from preferthinker.errors import EngineContractError, InputError, ParseError
from preferthinker.images import DEFAULT_MAX_PIXELS
from preferthinker.profile import ELEMENTS, UserProfile
from preferthinker.references import References
from preferthinker.results import Comparison, ElementScore, ParsedOutput, ProfilePrediction, Usage

logger = logging.getLogger(__name__)

# The paper's base model, until ptgen publishes its own PreferThinker checkpoint.
DEFAULT_ASSESSOR = "Qwen/Qwen2.5-VL-7B-Instruct"

ImageLike = Any  # PIL.Image.Image, or a path that preferthinker.images can load
Progress = Callable[[int, int], None]


@dataclass
class AssessorConfig:
    """How to build and drive an assessor.

    Args:
        assessor: what `preferthinker.engines.describe_specs()` lists: a model id or local path
            (in-process transformers), an `http(s)://.../v1` URL (OpenAI-compatible server such
            as vLLM), `analytic` (pixel measurements, no model), `random` (the chance baseline).
        assessor_model: the served model name, for URLs (None: ask the server).
        device, dtype: for in-process models (None: chosen from the hardware).
        max_new_tokens: the most tokens per answer (None: the model's own limit where its
            checkpoint sets one, else the authors' 4096).
        temperature, repetition_penalty: decoding (authors' defaults: greedy, 1.15).
        debias: judge every pair in both orders and combine (counters position bias).
        max_retries: extra attempts for an unparseable output, sampled at `retry_temperature`.
        max_pixels: images are downscaled to this many pixels before they reach the model.
        timeout, max_concurrency: for HTTP engines.
        batch_size: conversations per forward pass, for in-process engines.
        trust_remote_code: run a model repository's own Python code (off unless you ask: it
            executes code from the model's author).
        quantization: "none", "8bit" or "4bit" weights for in-process models (bitsandbytes,
            CUDA only; see `TransformersEngine`).
        add_vision_id: render prompts with the chat template's `add_vision_id` ("Picture N:"
            before each image, as the authors do); None = on for Qwen2.5-VL models, off otherwise.
            Passed to `apply_chat_template` in-process and as `chat_template_kwargs` over HTTP.
        verdict: "full" (the authors' format with rationales) or "compact" (scores and answer
            only, stopping at `</answer>`; comparisons with a known profile only; see
            `preferthinker/compact.py`).
    """

    assessor: str = DEFAULT_ASSESSOR
    assessor_model: Optional[str] = None
    device: Optional[str] = None
    dtype: Optional[str] = None
    max_new_tokens: Optional[int] = None
    temperature: float = 0.0
    repetition_penalty: float = 1.15
    debias: bool = False
    max_retries: int = 1
    retry_temperature: float = 0.7
    max_pixels: int = DEFAULT_MAX_PIXELS
    timeout: float = DEFAULT_TIMEOUT  # seconds per HTTP request
    max_concurrency: int = 8
    batch_size: int = 4
    trust_remote_code: bool = False
    quantization: str = "none"
    add_vision_id: Optional[bool] = None
    verdict: str = "full"

    def __post_init__(self) -> None:
        if not self.assessor or not isinstance(self.assessor, str):
            raise ValueError(f"assessor must be a model id, path or URL, got {self.assessor!r}")
        for name in ("max_new_tokens", "max_pixels", "max_concurrency", "batch_size"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")
        if self.timeout <= 0:
            raise ValueError(f"timeout must be > 0, got {self.timeout}")
        if self.quantization not in ("none", "8bit", "4bit"):
            raise ValueError(f"quantization must be none, 8bit or 4bit, got {self.quantization!r}")
        if self.verdict not in ("full", "compact"):
            raise ValueError(f"verdict must be full or compact, got {self.verdict!r}")
        # GenerationConfig validates the decoding fields.
        self.generation_config()

    def generation_config(self, temperature: Optional[float] = None) -> GenerationConfig:
        return GenerationConfig(
            max_new_tokens=self.max_new_tokens,
            temperature=self.temperature if temperature is None else temperature,
            repetition_penalty=self.repetition_penalty,
        )

    def engine_options(self, backend: Optional[EngineBackend] = None) -> dict[str, Any]:
        """The options `create_engine` passes to the backend this config names: the fields that
        backend declares in its `config_fields`.

        Args:
            backend: the backend of `self.assessor`, when the caller has already looked it up.

        Example:
            >>> AssessorConfig(assessor="http://127.0.0.1:8000/v1").engine_options()
            {'timeout': 300.0, 'max_concurrency': 8}
        """
        backend = backend or find_backend(self.assessor)
        return {name: getattr(self, name) for name in backend.config_fields}


def is_qwen25_vl(engine: Engine) -> bool:
    """Whether the engine runs a Qwen2.5-VL model (its config's model type, else its name or
    local folder), the family whose template the authors render with `add_vision_id`.

    Example:
        >>> is_qwen25_vl(create_engine("analytic"))  # doctest: +SKIP
        False
    """
    import json
    import re

    config = getattr(getattr(engine, "model", None), "config", None)
    if getattr(config, "model_type", None):
        return config.model_type == "qwen2_5_vl"
    name = str(getattr(engine, "model_name", None) or engine.name)
    if "qwen25vl" in re.sub(r"[^a-z0-9]", "", name.lower()):
        return True
    config_file = Path(name) / "config.json"
    try:
        return json.loads(config_file.read_text(encoding="utf-8")).get("model_type") == "qwen2_5_vl"
    except (OSError, ValueError, AttributeError):
        return False


def _load(images: Sequence[ImageLike], max_pixels: int) -> list:
    """PIL images (the candidates of one pair) from PIL images or paths, within the pixel budget."""
    from preferthinker.images import load_image

    return [load_image(image, max_pixels=max_pixels) for image in images]


def _swap_back(parsed: ParsedOutput) -> ParsedOutput:
    """Map a judgement of (B, A) back onto the caller's (A, B)."""
    flip = {"A": "B", "B": "A", None: None}
    return replace(
        parsed,
        scores=[
            ElementScore(s.element, s.score_b, s.score_a, s.rationale_b, s.rationale_a)
            for s in parsed.scores
        ],
        total_a=parsed.total_b,
        total_b=parsed.total_a,
        answer=flip[parsed.answer],
        stated_answer=flip[parsed.stated_answer],
    )


def _usage(conversation: Conversation, output: EngineOutput) -> Usage:
    return Usage(
        calls=1,
        images=count_images(conversation),
        prompt_tokens=output.prompt_tokens,
        completion_tokens=output.completion_tokens,
        seconds=output.seconds,
    )


@dataclass
class _Attempt:
    """The outcome of one conversation after retries."""

    parsed: Optional[ParsedOutput]
    text: str
    attempts: int
    usage: Usage = field(default_factory=Usage)
    error: str = ""


class Assessor:
    """Predicts profiles and compares candidates with a PreferThinker-style model.

    Args:
        engine: any `Engine` (in-process transformers, OpenAI-compatible HTTP, analytic, scripted).
        config: decoding, retry and debiasing settings.

    Example:
        >>> assessor = Assessor.from_config(AssessorConfig(assessor="http://127.0.0.1:8000/v1"))
        >>> prediction = assessor.predict_profile(liked_images, disliked_images)
        >>> comparison = assessor.compare(image_a, image_b, profile=prediction.profile)
        >>> comparison.winner
        'B'
    """

    def __init__(self, engine: Engine, config: Optional[AssessorConfig] = None):
        if not isinstance(engine, Engine):
            raise InputError(f"engine must be a preferthinker Engine, got {type(engine).__name__}")
        self.engine = engine
        self.config = config or AssessorConfig()
        self._template_kwargs: Optional[dict[str, Any]] = None  # decided on first use

    @classmethod
    def from_config(cls, config: AssessorConfig) -> "Assessor":
        """Build the engine that `config.assessor` names and wrap it."""
        backend = find_backend(config.assessor)
        options = config.engine_options(backend)
        engine = backend.create(config.assessor, config.assessor_model, **options)
        return cls(engine, config)

    @property
    def name(self) -> str:
        """The model behind this assessor (used in cache keys and reports)."""
        return getattr(self.engine, "model_name", None) or self.engine.name

    def close(self) -> None:
        self.engine.close()

    def release(self) -> None:
        """Free the accelerator for another model (sequential loading); engines that hold no
        GPU memory ignore it. `restore()` undoes it."""
        getattr(self.engine, "release", lambda: None)()

    def restore(self) -> None:
        getattr(self.engine, "restore", lambda: None)()

    def __enter__(self) -> "Assessor":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def chat_template_kwargs(self) -> dict[str, Any]:
        """What the chat template gets with every conversation (`add_vision_id`, see config)."""
        if self._template_kwargs is None:
            vision_id = self.config.add_vision_id
            if vision_id is None:
                vision_id = is_qwen25_vl(self.engine)
            self._template_kwargs = {"add_vision_id": True} if vision_id else {}
        return self._template_kwargs

    # -- running conversations with retries -------------------------------------------------

    def _run(
        self,
        conversations: list[Conversation],
        parse: Callable[[str], ParsedOutput],
        progress: Optional[Progress] = None,
        stop: tuple[str, ...] = (),
    ) -> list[_Attempt]:
        """Generate and parse every conversation; re-ask those that fail, up to max_retries."""
        results: list[Optional[_Attempt]] = [None] * len(conversations)
        pending = list(range(len(conversations)))
        done = 0
        chunk = max(
            self.config.max_concurrency if self.engine.concurrent else self.config.batch_size, 1
        )
        for attempt in range(self.config.max_retries + 1):
            temperature = (
                None
                if attempt == 0
                else max(self.config.retry_temperature, self.config.temperature)
            )
            config = replace(
                self.config.generation_config(temperature),
                chat_template_kwargs=self.chat_template_kwargs() or None,
                stop=stop,
            )
            failed: list[int] = []
            for start in range(0, len(pending), chunk):
                indices = pending[start : start + chunk]
                outputs = self.engine.generate([conversations[i] for i in indices], config)
                EngineContractError.check(
                    f"engine {self.engine.name}",
                    len(outputs),
                    len(indices),
                    "outputs",
                    "conversations",
                )
                for index, output in zip(indices, outputs):
                    previous = results[index]
                    usage = (previous.usage if previous else Usage()).add(
                        _usage(conversations[index], output)
                    )
                    try:
                        parsed = parse(output.text)
                        results[index] = _Attempt(parsed, output.text, attempt + 1, usage)
                    except ParseError as error:
                        results[index] = _Attempt(
                            None, output.text, attempt + 1, usage, error.reason
                        )
                        failed.append(index)
                        logger.info(
                            "unparseable output (attempt %d): %s", attempt + 1, error.reason
                        )
                    if index not in failed or attempt == self.config.max_retries:
                        done += 1
                        if progress:
                            progress(done, len(conversations))
            pending = failed
            if not pending:
                break
        return [r for r in results if r is not None]

    # -- profile prediction -----------------------------------------------------------------

    def references(self, liked: Any, disliked: Any = None) -> References:
        """`liked` when it is a `References`, else the images loaded once within this
        assessor's pixel budget (folders, paths or PIL images; at most 5 per side).

        Example:
            >>> refs = assessor.references("refs/liked", "refs/disliked")  # doctest: +SKIP
        """
        return References.coerce(liked, disliked, max_pixels=self.config.max_pixels)

    def predict_profile(
        self,
        liked: Union[References, Sequence[ImageLike]],
        disliked: Optional[Sequence[ImageLike]] = None,
    ) -> ProfilePrediction:
        """Predict the visual preference (and non-preference) profile from reference images.

        Args:
            liked: a `References` (used as it is), or images the user likes (PIL images or
                paths, or a folder); at least one.
            disliked: images the user dislikes, optional (None when `liked` is a `References`).

        Returns:
            A `ProfilePrediction`: status "ok" (every element predicted), "partial" or "failed"
            (no profile could be read after all retries; the profile is then empty).
        """
        from preferthinker.parser import parse_profiles
        from preferthinker.prompts import build_profile_messages

        refs = self.references(liked, disliked)
        if not refs.liked:
            raise InputError("predict_profile needs at least one liked image")
        if getattr(self.engine, "predicts_profiles", True) is False:
            # Embedding judges (the similarity assessor) name no terms: say so, ask nothing.
            reason = getattr(self.engine, "no_profile_reason", f"{self.name} predicts no profile")
            return ProfilePrediction(
                profile=UserProfile(),
                status="failed",
                raw_text="",
                issues=[reason],
                attempts=0,
                usage=Usage(),
            )
        conversation = build_profile_messages(refs)

        def parse(text: str) -> ParsedOutput:
            return ParsedOutput(profile=parse_profiles(text))

        (result,) = self._run([conversation], parse)
        if result.parsed is None or result.parsed.profile is None:
            return ProfilePrediction(
                profile=UserProfile(),
                status="failed",
                raw_text=result.text,
                issues=[result.error or "no profile in the output"],
                attempts=result.attempts,
                usage=result.usage,
            )
        profile = result.parsed.profile
        issues = [
            f"no {element} predicted" for element in ELEMENTS if not profile.liked.terms(element)
        ]
        if refs.disliked and profile.disliked.is_empty():
            issues.append("no non-preference profile predicted")
        return ProfilePrediction(
            profile=profile,
            status="partial" if issues else "ok",
            raw_text=result.text,
            issues=issues,
            attempts=result.attempts,
            usage=result.usage,
        )

    # -- comparisons ------------------------------------------------------------------------

    def compare(
        self,
        a: ImageLike,
        b: ImageLike,
        *,
        profile: Optional[UserProfile] = None,
        liked: Union[References, Sequence[ImageLike], None] = None,
        disliked: Optional[Sequence[ImageLike]] = None,
    ) -> Comparison:
        """Judge which of two candidates the user prefers.

        With `profile`, the model sees the profile as text and only the two candidates
        (cheap; the profile is predicted once and reused). Without it, the model sees the
        reference images and predicts the profile itself (the authors' full prompt). `liked`
        may be a `References` (then `disliked` is None), loaded once for many calls.

        Example:
            >>> assessor.compare(img1, img2, profile=profile).winner
            'A'
        """
        return self.compare_many([(a, b)], profile=profile, liked=liked, disliked=disliked)[0]

    def compare_many(
        self,
        pairs: Sequence[tuple[ImageLike, ImageLike]],
        *,
        profile: Optional[UserProfile] = None,
        liked: Union[References, Sequence[ImageLike], None] = None,
        disliked: Optional[Sequence[ImageLike]] = None,
        progress: Optional[Progress] = None,
        without_references: bool = False,
        verdict: Optional[str] = None,
    ) -> list[Comparison]:
        """Judge many pairs in one go: HTTP engines run them concurrently, in-process engines
        batch them. With `config.debias`, each pair is also judged in the swapped order.
        `verdict` ("full"/"compact") overrides `config.verdict` for this call (`--explain`).

        `without_references=True` judges with neither a profile nor reference images (the
        authors' prompt for items without references: the candidates and the format only).

        Returns one `Comparison` per pair, in order; `winner` is None when undecided.
        """
        from preferthinker.compact import COMPACT_STOP, build_compact_messages, parse_compact
        from preferthinker.parser import parse_output
        from preferthinker.prompts import (
            build_assess_messages,
            build_known_profile_messages,
            build_no_reference_messages,
        )

        if profile is not None and not isinstance(profile, UserProfile):
            raise InputError(f"profile must be a UserProfile, got {type(profile).__name__}")
        if without_references and (profile is not None or bool(liked) or bool(disliked)):
            raise InputError("without_references=True takes no profile and no reference images")
        # The references matter only without a profile: load them then, once for every pair.
        refs = (
            self.references(liked, disliked) if profile is None and not without_references else None
        )
        if profile is None and not refs and not without_references:
            raise InputError("compare needs either a profile or liked reference images")

        loaded: list[tuple[Any, Any]] = []
        for index, pair in enumerate(pairs):
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise InputError(f"pair {index} must be two images, got {type(pair).__name__}")
            a, b = _load(list(pair), self.config.max_pixels)
            loaded.append((a, b))

        compact = profile is not None and (verdict or self.config.verdict) == "compact"

        def build(a: Any, b: Any) -> Conversation:
            if without_references:
                return build_no_reference_messages(a, b)
            if compact:
                return build_compact_messages(profile, a, b)
            if profile is not None:
                return build_known_profile_messages(profile, a, b)
            return build_assess_messages(refs, None, a, b)

        orders = [(0, False), (1, True)] if self.config.debias else [(0, False)]
        conversations = []
        for a, b in loaded:
            for _, swapped in orders:
                conversations.append(build(b, a) if swapped else build(a, b))

        expect_profile = profile is None

        def parse(text: str) -> ParsedOutput:
            parsed = (
                parse_compact(text)
                if compact
                else parse_output(text, expect_profile=expect_profile)
            )
            if parsed.answer is None:
                raise ParseError("no answer could be recovered", text)
            return parsed

        attempts = self._run(conversations, parse, progress, (COMPACT_STOP,) if compact else ())
        per_pair = len(orders)
        return [
            self._combine(attempts[i * per_pair : (i + 1) * per_pair], profile)
            for i in range(len(loaded))
        ]

    def _combine(self, attempts: list[_Attempt], profile: Optional[UserProfile]) -> Comparison:
        """One Comparison from the judgement(s) of one pair (one order, or both with debiasing)."""
        usage = Usage()
        parsed: list[ParsedOutput] = []
        issues: list[str] = []
        for order, attempt in enumerate(attempts):
            usage.add(attempt.usage)
            if attempt.parsed is None:
                issues.append(f"order {'BA' if order else 'AB'}: {attempt.error}")
                continue
            parsed.append(_swap_back(attempt.parsed) if order == 1 else attempt.parsed)
            issues.extend(attempt.parsed.issues)
        raw_texts = [attempt.text for attempt in attempts]
        found_profile = profile or next((p.profile for p in parsed if p.profile), None)
        if not parsed:
            return Comparison(None, [], raw_texts, found_profile, None, issues, usage)
        if len(attempts) == 1 or len(parsed) == 1:
            return Comparison(
                parsed[0].answer, parsed, raw_texts, found_profile, None, issues, usage
            )
        agree = parsed[0].answer == parsed[1].answer
        winner = parsed[0].answer if agree else self._tiebreak(parsed)
        if not agree:
            issues.append(
                "position bias: the answer changed when A and B were swapped"
                + ("" if winner else "; undecided")
            )
        return Comparison(winner, parsed, raw_texts, found_profile, agree, issues, usage)

    @staticmethod
    def _tiebreak(parsed: list[ParsedOutput]) -> Optional[str]:
        """When the two orders disagree, the summed totals of both orders decide; equal -> None."""
        if any(p.total_a is None or p.total_b is None for p in parsed):
            return None
        total_a = sum(p.total_a for p in parsed)  # type: ignore[misc]
        total_b = sum(p.total_b for p in parsed)  # type: ignore[misc]
        if total_a == total_b:
            return None
        return "A" if total_a > total_b else "B"
