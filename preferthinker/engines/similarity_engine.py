"""The similarity assessor: judges a pair by embedding similarity to the reference images.

`--assessor similarity:MODEL`, where MODEL is a name that
`preferthinker.image_similarity.create_embedder` knows: `stats` (colour statistics, no
weights), `efficientnet-lite0` (offline ImageNet weights), `dreamsim`, or a transformers
model with image features (`similarity:openai/clip-vit-base-patch32`, SigLIP). No language
model: it reads the images of the authors' full prompt (liked references,
disliked references, Image A, Image B), scores each candidate with the rule in
`preferthinker/image_similarity.py` (cosine to the liked prototype minus cosine to the disliked
prototype), and writes its verdict in the predict-then-assess format (five element lines and
`<answer>`), so it goes through the same `Assessor`, parser and tournaments as a VLM:

- the winner is the candidate with the higher score; the margin (the score difference) is its
  confidence, written in every rationale with the nearest liked and disliked references;
- the element scores are the candidate's score mapped monotonically to 0-5 (the same on every
  element: an embedding does not separate colour from style), so the totals agree with the answer;
- it predicts no profile terms: `Assessor.predict_profile` reports that plainly
  (`predicts_profiles = False`), and the generation loop then compares with the references.

Cost: no tokens; `EngineOutput.seconds` is the embedding time, and the embedder reports
milliseconds per image (`engine.embedder.ms_per_image`). Embeddings are cached per image hash, so
the references are embedded once per run and every candidate once per tournament.

Example:
    >>> from preferthinker.assessor import Assessor, AssessorConfig
    >>> assessor = Assessor.from_config(AssessorConfig(assessor="similarity:stats"))
    >>> assessor.compare(img_a, img_b, liked=[ref1, ref2], disliked=[ref3]).winner  # doctest: +SKIP
    'A'
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Optional

from preferthinker.engines.base import Conversation, Engine, EngineOutput, GenerationConfig
from preferthinker.engines.registry import EngineBackend
from preferthinker.errors import InputError
from preferthinker.profile import ELEMENTS

PREFIX = "similarity:"
NO_PROFILE = (
    "the similarity assessor predicts no profile terms: it scores candidates by "
    "embedding similarity to the reference images; use a VLM for a profile"
)


@dataclass
class SimilarityOptions:
    """Settings of the similarity engine.

    Args:
        device: torch device for the embedding model (None: cpu).
        batch_size: images per forward pass.
    """

    device: Optional[str] = None
    batch_size: int = 16

    def __post_init__(self) -> None:
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {self.batch_size!r}")


@dataclass
class SimilarityVerdict:
    """One judged pair: `winner` "A"/"B", `margin` = |score A - score B| (the confidence),
    both scores, a one-line `reason` naming the nearest liked and disliked references of the
    winner, and the same line for each candidate (`detail_a`, `detail_b`)."""

    winner: str
    margin: float
    score_a: float
    score_b: float
    reason: str
    detail_a: str = ""
    detail_b: str = ""


def describe(score: Any) -> str:
    """One line about a `ReferenceScore`: the score and the nearest reference on each side."""
    text = (
        f"embedding score {score.score:+.3f}, nearest liked reference: liked "
        f"{score.nearest_liked + 1} (cosine {score.nearest_liked_similarity:.3f})"
    )
    if score.nearest_disliked is not None:
        text += (
            f", nearest disliked reference: disliked {score.nearest_disliked + 1} "
            f"(cosine {score.nearest_disliked_similarity:.3f})"
        )
    return text


def model_of(spec: str) -> str:
    """The embedding model named by a `similarity:MODEL` spec.

    Example:
        >>> model_of("similarity:openai/clip-vit-base-patch32")
        'openai/clip-vit-base-patch32'
    """
    model = spec[len(PREFIX) :].strip() if spec.startswith(PREFIX) else ""
    if not model:
        raise InputError(
            f"similarity assessor spec {spec!r} names no model; give e.g. "
            "similarity:efficientnet-lite0 or similarity:openai/clip-vit-base-patch32"
        )
    return model


def _to_0_5(score: float) -> int:
    # Monotone, so integer totals never contradict the answer (they may tie; the answer decides).
    return int(min(5, max(0, round(2.5 + 10.0 * score))))


class SimilarityEngine(Engine):
    """Embedding-similarity judge (see the module docstring).

    Args:
        model: an embedder name, hub id or path (`create_embedder`).
        options: `SimilarityOptions`; or keyword settings of it.

    Example:
        >>> engine = SimilarityEngine("stats")
        >>> engine.judge(red, blue, liked=[red], disliked=[blue]).winner  # doctest: +SKIP
        'A'
    """

    concurrent = False
    predicts_profiles = False
    no_profile_reason = NO_PROFILE

    def __init__(self, model: str, options: Optional[SimilarityOptions] = None, **settings: Any):
        from preferthinker.image_similarity import create_embedder

        self.options = options or SimilarityOptions(**settings)
        self.embedder = create_embedder(
            model, self.options.device, batch_size=self.options.batch_size
        )
        self.model_name = PREFIX + model
        self.name = self.model_name

    def judge(self, a: Any, b: Any, liked: list, disliked: list) -> SimilarityVerdict:
        """Which of `a`, `b` fits the references better, with the margin and the reason."""
        from preferthinker.image_similarity import reference_scores

        score_a, score_b = reference_scores(self.embedder, [a, b], liked, disliked)
        winner = "A" if score_a.score >= score_b.score else "B"
        margin = abs(score_a.score - score_b.score)
        best = score_a if winner == "A" else score_b
        reason = f"Image {winner} by margin {margin:.3f}: {describe(best)}"
        return SimilarityVerdict(
            winner,
            margin,
            score_a.score,
            score_b.score,
            reason,
            describe(score_a),
            describe(score_b),
        )

    def respond(self, conversation: Conversation) -> str:
        from preferthinker.analytic import _classify_images
        from preferthinker.parser import format_output
        from preferthinker.results import ElementScore

        groups, profile = _classify_images(conversation)
        if not groups["A"] or not groups["B"]:
            return (
                NO_PROFILE  # a profile request (Assessor.predict_profile asks no engine like this)
            )
        if profile is not None or not groups["liked"]:
            raise InputError(
                "the similarity assessor compares candidates with liked reference "
                "images, not with a profile; rerank with --mode full and --refs DIR"
            )
        verdict = self.judge(groups["A"][0], groups["B"][0], groups["liked"], groups["disliked"])
        value_a, value_b = _to_0_5(verdict.score_a), _to_0_5(verdict.score_b)
        scores = [
            ElementScore(element, value_a, value_b, verdict.detail_a, verdict.detail_b)
            for element in ELEMENTS
        ]
        return format_output(None, scores, verdict.winner)

    def generate(
        self, conversations: list[Conversation], config: Optional[GenerationConfig] = None
    ) -> list[EngineOutput]:
        outputs = []
        for conversation in conversations:
            start = time.perf_counter()
            text = self.respond(conversation)
            # No tokens: nothing is tokenized. Reported as 0 so cost tables stay honest.
            outputs.append(EngineOutput(text=text, seconds=time.perf_counter() - start))
        return outputs


BACKEND = EngineBackend(
    name="similarity",
    spec="'similarity:MODEL' (embedding similarity to the references; MODEL: stats, "
    "efficientnet-lite0, dreamsim, or a CLIP/SigLIP id or path)",
    accepts=lambda spec: spec.startswith(PREFIX),
    engine_class=SimilarityEngine,
    options=SimilarityOptions,
    build=lambda spec, model, options: SimilarityEngine(model_of(spec), options),
    config_fields=("device", "batch_size"),
)
