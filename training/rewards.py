"""GRPO rewards: plain callables TRL calls as `f(completions, **dataset_columns) -> list[float]`.

The paper's reward is 1.0 x accuracy + 0.3 x format + 0.7 x prediction, where prediction =
w_img * s_img + w_text * s_text compares the predicted profile with the true one:

- s_text: SBERT similarity of the two profile texts (`preferthinker.similarity.ProfileSimilarity`,
  all-MiniLM-L6-v2 by default, as in the paper);
- s_img: similarity of images generated from the subject prompt + the predicted profile and from
  the subject prompt + the true profile (DreamSim when installed, else
  `fallback_image_similarity`; see `training/image_similarity.py`). Renderings are cached so a
  profile is never rendered twice.

TRL multiplies each function by its weight (`GRPOConfig.reward_weights`), so each term is its
own function and its own log line (`rewards/<name>/mean`). A reward never raises: a failure inside
a term is logged and scores 0 for that term.

Completions come as plain strings or TRL conversational lists (`[{"role": "assistant",
"content": ...}]`). Dataset columns used: `answer` ("A"/"B"), `profile` (UserProfile JSON or
dict), `prompt_subject` (optional, the subject prompt the candidates were generated from).
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable, Optional, Sequence, Union

from preferthinker.errors import ParseError
from preferthinker.profile import UserProfile

logger = logging.getLogger(__name__)

# The paper's weights.
DEFAULT_ACCURACY_WEIGHT = 1.0
DEFAULT_FORMAT_WEIGHT = 0.3
DEFAULT_PREDICTION_WEIGHT = 0.7
# Subject used for s_img when a sample carries no `prompt_subject`.
DEFAULT_SUBJECT = "a picture"

Completion = Union[str, list, dict]


def completion_text(completion: Completion) -> str:
    """The text of one completion, whatever form TRL hands it in.

    Example:
        >>> completion_text([{"role": "assistant", "content": "<answer>Image A</answer>"}])
        '<answer>Image A</answer>'
    """
    if completion is None:
        return ""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        content = completion.get("content", "")
        if isinstance(content, list):
            return "".join(
                part.get("text") or ""
                for part in content
                if isinstance(part, dict) and part.get("type") == "text"
            )
        return str(content or "")
    if isinstance(completion, (list, tuple)):
        # Conversational: the assistant turns (usually one) concatenated.
        messages = [m for m in completion if isinstance(m, dict)]
        assistant = [m for m in messages if m.get("role", "assistant") == "assistant"] or messages
        return "".join(completion_text(m) for m in assistant)
    return str(completion)


def normalize_answer(value: Any) -> Optional[str]:
    """ "A", "Image A", "image_a", "a" -> "A" (same for B); anything else -> None."""
    if value is None:
        return None
    text = str(value).strip().lower().replace("_", " ")
    if text in {"a", "image a"}:
        return "A"
    if text in {"b", "image b"}:
        return "B"
    return None


def to_user_profile(value: Any) -> UserProfile:
    """A `profile` dataset value (UserProfile, dict, or JSON text) as a UserProfile."""
    if isinstance(value, UserProfile):
        return value
    if isinstance(value, str):
        value = json.loads(value)
    if isinstance(value, dict):
        return UserProfile.from_dict(value)
    raise TypeError(
        f"profile must be a UserProfile, dict or JSON string, got {type(value).__name__}"
    )


def stated_answer(text: str) -> Optional[str]:
    """The answer the accuracy reward reads: `preferthinker.parser.read_answer` (the last
    `<answer>` block, read tolerantly), None without one.

    Example:
        >>> stated_answer("<think>A is nice, B is not</think><answer>Image B</answer>")
        'B'
    """
    from preferthinker.parser import read_answer

    return read_answer(text or "")


def _safe(term: str, fn: Callable[[], float]) -> float:
    try:
        return float(fn())
    except Exception as error:  # a reward must never stop training
        logger.warning("%s failed (%s: %s); scoring 0", term, type(error).__name__, error)
        return 0.0


def format_reward(completions: Sequence[Completion], **kwargs: Any) -> list[float]:
    """1.0 when a completion is complete predict-then-assess output (both profiles, five scored
    elements, totals that agree with the answer) AND ends its answer in the exact form the
    authors' evaluation reads (`<answer>Image A</answer>` / `<answer>Image B</answer>` as the
    last block), else 0.0. An answer sentence without the tag earns no format credit.

    Example:
        >>> format_reward(["no tags at all"])
        [0.0]
    """
    from preferthinker.parser import parse_output, read_answer

    def score(completion: Completion) -> float:
        text = completion_text(completion)
        if read_answer(text, protocol="authors") is None:
            return 0.0
        try:
            return 1.0 if parse_output(text).complete else 0.0
        except ParseError:
            return 0.0

    return [_safe("format_reward", lambda c=c: score(c)) for c in completions]


def accuracy_reward(
    completions: Sequence[Completion], answer: Sequence[Any], **kwargs: Any
) -> list[float]:
    """1.0 when the stated `<answer>` block names the preferred image (`answer` column), else 0.0
    (also 0.0 without an answer block).

    Example:
        >>> completions = ["<answer>Image B</answer>", "<answer>Image A</answer>"]
        >>> accuracy_reward(completions, answer=["B", "B"])
        [1.0, 0.0]
    """

    def score(completion: Completion, truth: Any) -> float:
        expected = normalize_answer(truth)
        if expected is None:
            raise ValueError(f"answer column value {truth!r} is not A or B")
        return 1.0 if stated_answer(completion_text(completion)) == expected else 0.0

    return [
        _safe("accuracy_reward", lambda c=c, t=t: score(c, t)) for c, t in zip(completions, answer)
    ]


@dataclass
class RewardConfig:
    """Reward weights and the parts of the prediction reward.

    Args:
        accuracy_weight / format_weight / prediction_weight: the GRPO weights (paper: 1.0/0.3/0.7).
        text_weight / image_weight: w_text and w_img inside the prediction reward; renormalised
            to w_text = 1 when no `image_generator` is set.
        similarity_model: SBERT model path or id; None = the bundled all-MiniLM-L6-v2.
        image_generator: what renders profiles for s_img: "procedural" (the SynthPref renderer),
            a diffusers pipeline id or path, or None (no image term).
        generator_options: extra `GeneratorConfig` fields for a diffusers generator
            (steps, width, height, device, dtype, ...).
        image_similarity: "auto" (DreamSim if it loads, else fallback), "dreamsim", "fallback".
        image_seeds: seeds rendered per profile; s_img averages over them.
        cache_dir: folder for rendered images (kept across runs); None = memory only.
        cache_size: renderings kept in memory.
    """

    accuracy_weight: float = DEFAULT_ACCURACY_WEIGHT
    format_weight: float = DEFAULT_FORMAT_WEIGHT
    prediction_weight: float = DEFAULT_PREDICTION_WEIGHT
    text_weight: float = 0.5
    image_weight: float = 0.5
    similarity_model: Optional[str] = None
    image_generator: Optional[str] = None
    generator_options: dict = field(default_factory=dict)
    image_similarity: str = "auto"
    image_seeds: list = field(default_factory=lambda: [0])
    cache_dir: Optional[str] = None
    cache_size: int = 256

    def __post_init__(self) -> None:
        from training.image_similarity import IMAGE_SIMILARITY_KINDS

        for name in (
            "accuracy_weight",
            "format_weight",
            "prediction_weight",
            "text_weight",
            "image_weight",
        ):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")
        if self.text_weight + self.image_weight <= 0:
            raise ValueError(
                "text_weight + image_weight must be > 0, "
                f"got {self.text_weight} + {self.image_weight}"
            )
        if self.image_similarity not in IMAGE_SIMILARITY_KINDS:
            raise ValueError(
                f"image_similarity must be one of {', '.join(IMAGE_SIMILARITY_KINDS)}, "
                f"got {self.image_similarity!r}"
            )
        if not self.image_seeds or not all(isinstance(s, int) for s in self.image_seeds):
            raise ValueError(
                f"image_seeds must be a non-empty list of ints, got {self.image_seeds!r}"
            )
        if self.cache_size < 0:
            raise ValueError(f"cache_size must be >= 0, got {self.cache_size}")
        if not isinstance(self.generator_options, dict):
            raise ValueError(f"generator_options must be a mapping, got {self.generator_options!r}")

    @property
    def weights(self) -> list[float]:
        """[accuracy, format, prediction], the order of `create_reward_funcs`."""
        return [
            float(self.accuracy_weight),
            float(self.format_weight),
            float(self.prediction_weight),
        ]


def profile_prompt(subject: str, profile: UserProfile) -> tuple[str, str]:
    """The (prompt, negative prompt) that renders `subject` in the style of `profile`: the
    template rewrite of `generation.rewrite` (liked terms into the prompt, disliked ones into
    the negative prompt), the same rewrite the personalized loop uses.

    Example:
        >>> from preferthinker.profile import Profile
        >>> profile_prompt("a cat", UserProfile(liked=Profile(color=("Pink",))))
        ('a cat, Pink color palette', '')
    """
    from generation.rewrite import rewrite_prompt

    result = rewrite_prompt(subject, profile)
    return result.prompt, result.negative_prompt


def create_generator(spec: str, options: Optional[dict] = None):
    """A `generation` Generator from a spec: "procedural" or a diffusers model id/path.

    Example:
        >>> gen = create_generator("procedural")  # doctest: +SKIP
    """
    options = dict(options or {})
    if spec == "procedural":
        from synthpref.renderer import ProceduralGenerator

        return ProceduralGenerator(**options)
    from generation.generator import DiffusersGenerator, GeneratorConfig

    return DiffusersGenerator(GeneratorConfig(model=spec, **options))


class PredictionReward:
    """The prediction reward w_img * s_img + w_text * s_text, as a TRL reward callable.

    Args:
        config: the RewardConfig (weights, generator, similarity choices, cache).
        generator: a ready `generation` Generator (overrides `config.image_generator`).
        similarity: a ready ProfileSimilarity (tests share one).
        image_similarity: a ready ImageSimilarity.

    Example:
        >>> reward = PredictionReward(RewardConfig())  # text term only
        >>> truth = '{"liked": {"color": ["Pink"]}}'
        >>> reward(["<visual preference profile>..."], profile=[truth])  # doctest: +SKIP
    """

    def __init__(
        self,
        config: Optional[RewardConfig] = None,
        *,
        generator: Any = None,
        similarity: Any = None,
        image_similarity: Any = None,
    ):
        from training.image_similarity import ImageCache

        self.config = config or RewardConfig()
        self.__name__ = "prediction_reward"  # the name TRL logs under
        self._generator = generator
        self._similarity = similarity
        self._image_similarity = image_similarity
        self.cache = ImageCache(self.config.cache_size, self.config.cache_dir)
        self._lock = threading.Lock()
        self.generation_failures = 0

    # -- components, built on first use ------------------------------------------------------
    @property
    def has_image_term(self) -> bool:
        return self._generator is not None or bool(self.config.image_generator)

    def _text_similarity(self):
        with self._lock:
            if self._similarity is None:
                from preferthinker.similarity import ProfileSimilarity

                self._similarity = ProfileSimilarity(self.config.similarity_model)
            return self._similarity

    def _get_generator(self):
        with self._lock:
            if self._generator is None:
                self._generator = create_generator(
                    self.config.image_generator, self.config.generator_options
                )
            return self._generator

    def _get_image_similarity(self):
        with self._lock:
            if self._image_similarity is None:
                from training.image_similarity import create_image_similarity

                self._image_similarity = create_image_similarity(self.config.image_similarity)
                logger.info("prediction reward image similarity: %s", self._image_similarity.name)
            return self._image_similarity

    # -- the two terms -----------------------------------------------------------------------
    def text_score(self, predicted: UserProfile, truth: UserProfile) -> float:
        """s_text: SBERT similarity of the profile texts, in [0, 1]."""
        return float(self._text_similarity().text_similarity(predicted, truth))

    def render(self, subject: str, profile: UserProfile) -> list:
        """The images of `subject` rendered with `profile` (cached by prompt and seeds)."""
        from training.image_similarity import render_key

        generator = self._get_generator()
        prompt, negative = profile_prompt(subject, profile)
        seeds = list(self.config.image_seeds)
        key = render_key(
            getattr(generator, "name", type(generator).__name__), prompt, negative, seeds
        )
        return self.cache.get_or_render(key, lambda: generator.generate(prompt, negative, seeds))

    def image_score(self, predicted: UserProfile, truth: UserProfile, subject: str) -> float:
        """s_img: similarity of the renderings of the two profiles. Raises on generation errors."""
        return float(
            self._get_image_similarity()(
                self.render(subject, predicted), self.render(subject, truth)
            )
        )

    # -- TRL entry point -----------------------------------------------------------------------
    def __call__(
        self,
        completions: Sequence[Completion],
        profile: Sequence[Any],
        prompt_subject: Optional[Sequence[Optional[str]]] = None,
        **kwargs: Any,
    ) -> list[float]:
        from preferthinker.parser import parse_profiles

        w_text, w_img = self._mix()
        subjects = list(prompt_subject) if prompt_subject is not None else [None] * len(completions)
        rewards: list[float] = []
        text_terms: list[float] = []
        image_terms: list[float] = []
        for completion, true_value, subject in zip(completions, profile, subjects):
            try:
                predicted = parse_profiles(completion_text(completion))
                truth = to_user_profile(true_value)
            except (ParseError, ValueError, TypeError, KeyError):
                rewards.append(0.0)  # no profile predicted: nothing to compare
                continue
            s_text = (
                _safe("prediction_reward text term", partial(self.text_score, predicted, truth))
                if w_text
                else 0.0
            )
            s_img = 0.0
            if w_img:
                try:
                    s_img = self.image_score(predicted, truth, subject or DEFAULT_SUBJECT)
                except (
                    Exception
                ) as error:  # a failed rendering gives 0 for this term, never a crash
                    self.generation_failures += 1
                    logger.warning(
                        "prediction_reward image term failed (%s: %s); scoring 0",
                        type(error).__name__,
                        error,
                    )
                image_terms.append(s_img)
            text_terms.append(s_text)
            rewards.append(w_text * s_text + w_img * s_img)
        log_metric = kwargs.get("log_metric")
        if callable(log_metric):
            try:
                if text_terms:
                    log_metric("prediction/s_text", sum(text_terms) / len(text_terms))
                if image_terms:
                    log_metric("prediction/s_img", sum(image_terms) / len(image_terms))
            except Exception:  # logging is best effort
                pass
        return rewards

    def _mix(self) -> tuple[float, float]:
        """(w_text, w_img) summing to 1; w_img = 0 when nothing can render images."""
        w_text = float(self.config.text_weight)
        w_img = float(self.config.image_weight) if self.has_image_term else 0.0
        if w_text + w_img <= 0:
            return 1.0, 0.0
        return w_text / (w_text + w_img), w_img / (w_text + w_img)


_default_prediction: Optional[PredictionReward] = None


def prediction_reward(
    completions: Sequence[Completion],
    profile: Sequence[Any],
    prompt_subject: Optional[Sequence[Optional[str]]] = None,
    **kwargs: Any,
) -> list[float]:
    """The prediction reward with the default RewardConfig (text term only: SBERT similarity of
    the predicted and true profiles). Use `PredictionReward(config)` for the image term.

    Example:
        >>> prediction_reward(["garbage"], profile=['{"liked": {"color": ["Pink"]}}'])
        [0.0]
    """
    global _default_prediction
    if _default_prediction is None:
        _default_prediction = PredictionReward(RewardConfig())
    return _default_prediction(completions, profile, prompt_subject=prompt_subject, **kwargs)


def create_reward_funcs(
    config: Optional[RewardConfig] = None, **components: Any
) -> tuple[list, list[float]]:
    """The reward functions and weights for GRPOTrainer (`reward_funcs`, `args.reward_weights`).

    Returns ([accuracy_reward, format_reward, PredictionReward(config)], config.weights).
    `components` (generator, similarity, image_similarity) are passed to PredictionReward.

    Example:
        >>> funcs, weights = create_reward_funcs(RewardConfig())
        >>> weights
        [1.0, 0.3, 0.7]
    """
    config = config or RewardConfig()
    return [accuracy_reward, format_reward, PredictionReward(config, **components)], config.weights
