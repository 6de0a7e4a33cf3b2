"""The hybrid pre-filter: embed all N candidates, keep the K most like the references, and let the
assessor's tournament rank only those K.

`--prefilter similarity:MODEL --keep K` (`LoopConfig.prefilter`, `LoopConfig.keep`): best-of-32
then costs the assessor what best-of-8 costs (a knockout of K candidates: K-1 comparisons). The
score is the similarity assessor's (`preferthinker.image_similarity.reference_scores`: cosine to
the liked prototype minus cosine to the disliked one). The candidates left out keep their
pre-filter order after the tournament's K, and the report shows every candidate's score and
whether it was kept.

Example:
    >>> chosen = prefilter_candidates(images, references, "similarity:efficientnet-lite0", keep=8)
    >>> chosen.kept            # indices of the 8 best by similarity, best first
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from generation.rerank import Match, Ranking
from preferthinker.errors import InputError

PREFIX = "similarity:"
DEFAULT_KEEP = 8


def check_prefilter(prefilter: Optional[str], keep: Optional[int]) -> None:
    """Raise ValueError naming the field for a bad `--prefilter` / `--keep` pair.

    Example:
        >>> check_prefilter("similarity:stats", 8)
    """
    if prefilter is None and keep is None:
        return
    if prefilter is not None:
        if (
            not isinstance(prefilter, str)
            or not prefilter.startswith(PREFIX)
            or not prefilter[len(PREFIX) :].strip()
        ):
            raise ValueError(
                f"prefilter must be similarity:MODEL (e.g. similarity:efficientnet-lite0), "
                f"got {prefilter!r}"
            )
    if keep is not None:
        if prefilter is None:
            raise ValueError(
                "keep needs a prefilter (e.g. --prefilter similarity:efficientnet-lite0)"
            )
        if not isinstance(keep, int) or isinstance(keep, bool) or keep < 2:
            raise ValueError(
                f"keep must be >= 2 (the candidates the tournament ranks), got {keep!r}"
            )


@dataclass
class Prefiltered:
    """The pre-filter's outcome: `scores[i]` for every candidate, `kept` (indices, best first)."""

    model: str
    keep: int
    scores: list[float]
    kept: list[int]
    ms_per_image: Optional[float] = None
    nearest_liked: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "keep": self.keep,
            "kept": list(self.kept),
            "scores": [round(s, 5) for s in self.scores],
            "ms_per_image": None if self.ms_per_image is None else round(self.ms_per_image, 2),
            "rule": "cosine to the liked prototype minus cosine to the disliked prototype "
            "(0 without disliked references)",
        }


def prefilter_candidates(
    images: Sequence[Any],
    references: Any,
    prefilter: str,
    keep: int = DEFAULT_KEEP,
    device: Optional[str] = None,
) -> Prefiltered:
    """Score every candidate by similarity to the references and keep the best `keep`.

    Args:
        images: the N candidates (PIL images).
        references: a `References` (or anything with `liked` and `disliked` image lists).
        prefilter: "similarity:MODEL" (see `preferthinker.image_similarity.create_embedder`).
        keep: how many go on to the tournament (all of them when N <= keep).
        device: torch device for the embedding model.

    Raises:
        InputError: a bad spec, or no liked reference.

    Example:
        >>> prefilter_candidates(images, refs, "similarity:stats", keep=2).kept
        [3, 0]
    """
    from preferthinker.image_similarity import create_embedder, reference_scores

    try:
        check_prefilter(prefilter, keep)
    except ValueError as error:
        raise InputError(str(error)) from None
    embedder = create_embedder(prefilter[len(PREFIX) :].strip(), device)
    liked = list(getattr(references, "liked", None) or [])
    disliked = list(getattr(references, "disliked", None) or [])
    scored = reference_scores(embedder, list(images), liked, disliked)
    scores = [s.score for s in scored]
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    return Prefiltered(
        prefilter,
        keep,
        scores,
        order[:keep],
        embedder.ms_per_image,
        [s.nearest_liked for s in scored],
    )


def expand_ranking(ranking: Ranking, chosen: Prefiltered) -> Ranking:
    """The tournament's ranking of the kept candidates, as a ranking of all N.

    Kept candidates come first in the tournament's order, with their own scores; the others follow
    in pre-filter order, played no game, and get scores below every kept one (the lowest kept
    score minus 1, 2, ...), so `Ranking.scores` still orders all N.

    Example:
        >>> full = expand_ranking(rank_tournament(kept_images, compare), chosen)
        >>> len(full.order) == len(chosen.scores)
        True
    """
    n = len(chosen.scores)
    kept = chosen.kept
    dropped = [
        i for i in sorted(range(n), key=lambda i: (-chosen.scores[i], i)) if i not in set(kept)
    ]
    order = [kept[i] for i in ranking.order] + dropped
    floor = min(ranking.scores) if ranking.scores else 0.0
    scores, wins, games = [0.0] * n, [0.0] * n, [0] * n
    for local, index in enumerate(kept):
        scores[index], wins[index], games[index] = (
            ranking.scores[local],
            ranking.wins[local],
            ranking.games[local],
        )
    for step, index in enumerate(dropped, start=1):
        scores[index] = floor - step
    if not ranking.decided:
        order = list(range(n))  # nothing decided: the input order, as rank_tournament does
    ranks = [0] * n
    for position, index in enumerate(order, start=1):
        ranks[index] = position
    matches = [Match(m.round, kept[m.a], kept[m.b], m.comparison) for m in ranking.matches]
    return Ranking(
        ranking.strategy,
        order,
        scores,
        ranks,
        wins,
        games,
        matches,
        ranking.tie_policy,
        ranking.usage,
    )
