"""The analytic assessor: an `Engine` that measures color, saturation and detail from pixels.

No model: it reads the images of a conversation (liked references, disliked references, the two
candidates, or a profile given as text in known-profile prompts), measures each image
(`preferthinker.measure.measure_image`), and writes its answer in the same predict-then-assess
text the VLM writes (`preferthinker.parser.format_output`), so it goes through the same
`Assessor` and parser. It says "unknown" for art style and art medium, which pixels statistics
cannot name, and scores both candidates 2 there.

A trait that liked and disliked references share is not a preference: each measured term
(a color name, a saturation or detail level) found on both sides is kept only on the side where
it is clearly more common (its share of that side's references at least `CLEAR_MAJORITY` times
its share of the other side's) and dropped from the other; at equal footing it is dropped from
both. Dropped references no longer pull scores on that element, and the predicted profile does
not name the term there. (In a profile given as text, a term listed on both sides has the
same target on both and cancels out by itself.)

Useful as a baseline and as a fast pre-filter before VLM reranking (milliseconds per pair).

Example:
    >>> from preferthinker.assessor import Assessor, AssessorConfig
    >>> assessor = Assessor.from_config(AssessorConfig(assessor="analytic"))
    >>> assessor.compare(img_a, img_b, liked=[ref1, ref2], disliked=[ref3]).winner
    'A'
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from preferthinker.engines.base import Conversation, Engine, EngineOutput, GenerationConfig
from preferthinker.engines.registry import EngineBackend
from preferthinker.measure import (
    _SAT_SCALE,
    _VAL_SHIFT,
    COLOR_HUES,
    DETAIL_LEVELS,
    SATURATION_LEVELS,
    hue_distance,
    measure_image,
)
from preferthinker.profile import ELEMENT_NAMES, ELEMENTS, Profile, UserProfile
from preferthinker.results import ElementScore

UNKNOWN = "unknown"
MEASURED = ("color", "saturation", "detail")
# A term on both sides stays on one side only when its share there is at least this many times
# its share on the other (e.g. 5 of 5 liked against 1 of 4 disliked); otherwise it goes from both.
CLEAR_MAJORITY = 2.0


def separating_terms(liked: Sequence[str], disliked: Sequence[str]) -> tuple[set[str], set[str]]:
    """The terms that tell the liked references from the disliked ones, per side.

    Args:
        liked, disliked: the term each reference was measured as (one entry per reference).

    Returns:
        (terms kept for the liked side, terms kept for the disliked side): a term measured on
        one side only is kept there; one measured on both sides is kept only where its share is
        `CLEAR_MAJORITY` times the other side's, else dropped from both.

    Example:
        >>> separating_terms(["Neon", "Neon", "Neon"], ["Neon", "Muted", "Muted"])
        ({'Neon'}, {'Muted'})
        >>> separating_terms(["Neon", "Muted"], ["Neon", "Dull"])
        ({'Muted'}, {'Dull'})
    """
    liked_counts, disliked_counts = Counter(liked), Counter(disliked)
    keep_liked, keep_disliked = set(liked_counts), set(disliked_counts)
    for term in keep_liked & keep_disliked:
        share_liked = liked_counts[term] / len(liked)
        share_disliked = disliked_counts[term] / len(disliked)
        if share_liked < CLEAR_MAJORITY * share_disliked:
            keep_liked.discard(term)
        if share_disliked < CLEAR_MAJORITY * share_liked:
            keep_disliked.discard(term)
    return keep_liked, keep_disliked


def _vocabulary_names() -> dict[str, list[str]]:
    """Names the engine may write: the vocabulary's terms it can measure (all known ones when the
    vocabulary cannot be loaded)."""
    tables = {"color": COLOR_HUES, "saturation": SATURATION_LEVELS, "detail": DETAIL_LEVELS}
    try:
        from preferthinker.vocabulary import load_vocabulary

        vocab = load_vocabulary()
        names = {e: [t for t in vocab.terms(e) if t in tables[e]] for e in MEASURED}
        if all(names.values()):
            return names
    except Exception:  # the vocabulary is optional here; measuring works without it
        pass
    return {e: list(tables[e]) for e in MEASURED}


def _classify_images(
    conversation: Conversation,
) -> tuple[dict[str, list[Any]], Optional[UserProfile]]:
    """Sort the user turn's images into liked / disliked / A / B by the text before them, and
    read a profile written as text (known-profile prompts)."""
    groups: dict[str, list[Any]] = {"liked": [], "disliked": [], "A": [], "B": []}
    profile: Optional[UserProfile] = None
    current = "liked"
    for message in conversation:
        if message.get("role") != "user" or not isinstance(message.get("content"), list):
            continue
        for part in message["content"]:
            if part.get("type") == "text":
                text = part.get("text", "")
                low = text.strip().lower()
                if "<visual preference profile>" in low:
                    from preferthinker.parser import parse_profiles

                    try:
                        profile = parse_profiles(text)
                    except Exception:
                        profile = None
                if low in ("image a", "image a:"):
                    current = "A"
                elif low in ("image b", "image b:"):
                    current = "B"
                elif "images that this user dislikes" in low or "non-preferred images" in low:
                    current = "disliked"
                elif "images that this user likes" in low or "preferred images" in low:
                    current = "liked"
            elif part.get("type") == "image":
                groups[current].append(part.get("image"))
    if not groups["A"] and not groups["B"] and len(groups["liked"]) >= 2 and profile is not None:
        groups["A"], groups["B"] = [groups["liked"][-2]], [groups["liked"][-1]]
        groups["liked"] = groups["liked"][:-2]
    return groups, profile


class AnalyticEngine(Engine):
    """Pixel-measuring assessor engine (see the module docstring).

    Args:
        colors, saturations, details: the terms it may name (default: the vocabulary's
            measurable terms); the fields of `AnalyticOptions`.

    Example:
        >>> engine = AnalyticEngine()
        >>> engine.generate([conversation])[0].text.endswith("</answer>")
        True
    """

    name = "analytic"
    concurrent = False

    def __init__(
        self,
        colors: Optional[Sequence[str]] = None,
        saturations: Optional[Sequence[str]] = None,
        details: Optional[Sequence[str]] = None,
    ):
        defaults = _vocabulary_names()
        self.names = {
            "color": list(colors) if colors else defaults["color"],
            "saturation": list(saturations) if saturations else defaults["saturation"],
            "detail": list(details) if details else defaults["detail"],
        }
        self._cache: dict[int, tuple[Any, dict[str, Any]]] = {}

    # -- measurements ---------------------------------------------------------------------------
    def measure(self, image: Any) -> dict[str, Any]:
        # References repeat across a user's pairs. The cache keeps each image with its measures:
        # an id is reused once its object is freed, so a bare id could return another image's.
        cached = self._cache.get(id(image))
        if cached is None or cached[0] is not image:
            if len(self._cache) >= 64:
                self._cache.clear()
            cached = self._cache[id(image)] = (
                image,
                measure_image(
                    image, self.names["color"], self.names["saturation"], self.names["detail"]
                ),
            )
        return cached[1]

    def profile_from_images(self, images: Sequence[Any]) -> Profile:
        """Name the color(s), saturation and detail shared by `images`; style and medium unknown."""
        measures = [self.measure(img) for img in images]
        return self._profile({e: measures for e in MEASURED})

    def _profile(self, measures: dict[str, list[dict[str, Any]]]) -> Profile:
        """The profile of references, each element from the references kept for it."""
        colors = Counter(m["color"] for m in measures["color"] if m["color"])
        top = colors.most_common()
        # Several colors only when each recurs (multi-preference users); else the most common.
        several = len(measures["color"]) >= 3
        chosen = [c for c, n in top if n >= max(2, top[0][1] // 2)] if several else []
        chosen = chosen or [c for c, _ in top[:1]]
        sat = Counter(m["saturation"] for m in measures["saturation"] if m["saturation"])
        sat = sat.most_common(1)
        detail: tuple[str, ...] = ()
        if measures["detail"]:
            level = sum(m["detail_level"] for m in measures["detail"]) / len(measures["detail"])
            detail = (min(self.names["detail"], key=lambda n: abs(DETAIL_LEVELS[n] - level)),)
        if not any(measures.values()):
            return Profile()
        return Profile(
            art_style=(UNKNOWN,),
            color=tuple(chosen[:3]),
            art_medium=(UNKNOWN,),
            saturation=(sat[0][0],) if sat else (),
            detail=detail,
        )

    def separating_references(
        self, liked: Sequence[Any], disliked: Sequence[Any]
    ) -> tuple[dict[str, list[dict[str, Any]]], dict[str, list[dict[str, Any]]]]:
        """Per element, the measures of the references whose term there is a preference.

        A reference whose term on an element is not kept by `separating_terms` (the other side
        has it as much) says nothing about that element: it is left out of it, on its side.
        """
        liked_m = [self.measure(img) for img in liked]
        disliked_m = [self.measure(img) for img in disliked]
        kept_liked: dict[str, list[dict[str, Any]]] = {}
        kept_disliked: dict[str, list[dict[str, Any]]] = {}
        for element in MEASURED:
            keep_l, keep_d = separating_terms(
                [m[element] for m in liked_m], [m[element] for m in disliked_m]
            )
            kept_liked[element] = [m for m in liked_m if m[element] in keep_l]
            kept_disliked[element] = [m for m in disliked_m if m[element] in keep_d]
        return kept_liked, kept_disliked

    # -- targets and scores ---------------------------------------------------------------------
    @staticmethod
    def _term_targets(profile: Profile) -> dict[str, list[Any]]:
        targets: dict[str, list[Any]] = {e: [] for e in MEASURED}
        for term in profile.color:
            if term in COLOR_HUES:
                targets["color"].append(COLOR_HUES[term])
        for term in profile.saturation:
            if term in SATURATION_LEVELS:
                s, v = SATURATION_LEVELS[term]
                targets["saturation"].append((_SAT_SCALE * s, min(1.0, v + _VAL_SHIFT)))
        for term in profile.detail:
            if term in DETAIL_LEVELS:
                targets["detail"].append(DETAIL_LEVELS[term])
        return targets

    @staticmethod
    def _image_targets(measures: dict[str, list[dict[str, Any]]]) -> dict[str, list[Any]]:
        return {
            "color": [m["hue"] for m in measures["color"] if m["hue"] is not None],
            "saturation": [(m["saturation_value"], m["lightness"]) for m in measures["saturation"]],
            "detail": [m["detail_level"] for m in measures["detail"]],
        }

    @staticmethod
    def _similarity(element: str, m: dict[str, Any], targets: list[Any]) -> Optional[float]:
        """Closeness in [0, 1] of a measured image to the nearest target (None: no target)."""
        if not targets:
            return None
        if element == "color":
            if m["hue"] is None:
                return 0.0
            return max(max(0.0, 1 - hue_distance(m["hue"], t) / 60.0) for t in targets)
        if element == "saturation":
            s, v = m["saturation_value"], m["lightness"]
            return max(
                max(0.0, 1 - ((s - ts) ** 2 + 0.5 * (v - tv) ** 2) ** 0.5 / 0.3)
                for ts, tv in targets
            )
        return max(max(0.0, 1 - abs(m["detail_level"] - t) / 0.4) for t in targets)

    def assess(
        self, a: Any, b: Any, liked: dict[str, list[Any]], disliked: dict[str, list[Any]]
    ) -> tuple[list[ElementScore], str]:
        """Per-element scores (0-5) of both candidates and the answer."""
        ma, mb = self.measure(a), self.measure(b)
        scores: list[ElementScore] = []
        exact = {"A": 0.0, "B": 0.0}
        for element in ELEMENTS:
            if element not in MEASURED:
                scores.append(
                    ElementScore(
                        element,
                        2,
                        2,
                        f"{ELEMENT_NAMES[element].lower()} not measurable from pixels",
                        "not measurable from pixels",
                    )
                )
                continue
            values, notes = {}, {}
            for letter, m in (("A", ma), ("B", mb)):
                like = self._similarity(element, m, liked[element])
                dislike = self._similarity(element, m, disliked[element])
                raw = (
                    2.5 + 2.5 * ((like or 0.0) - (dislike or 0.0))
                    if (like is not None or dislike is not None)
                    else 2.5
                )
                exact[letter] += raw
                values[letter] = int(round(min(5.0, max(0.0, raw))))
                notes[letter] = _describe(element, m)
            scores.append(ElementScore(element, values["A"], values["B"], notes["A"], notes["B"]))
        total_a = sum(s.score_a for s in scores)
        total_b = sum(s.score_b for s in scores)
        if total_a != total_b:
            answer = "A" if total_a > total_b else "B"
        else:
            answer = "A" if exact["A"] >= exact["B"] else "B"
        return scores, answer

    # -- the Engine ---------------------------------------------------------------------------
    def respond(self, conversation: Conversation) -> str:
        from preferthinker.parser import format_output

        groups, given = _classify_images(conversation)
        if given is not None:
            predicted = None
            liked_t, disliked_t = (
                self._term_targets(given.liked),
                self._term_targets(given.disliked),
            )
        else:
            liked_m, disliked_m = self.separating_references(groups["liked"], groups["disliked"])
            predicted = UserProfile(
                liked=self._profile(liked_m), disliked=self._profile(disliked_m)
            )
            liked_t, disliked_t = self._image_targets(liked_m), self._image_targets(disliked_m)
        if not groups["A"] or not groups["B"]:
            return predicted.to_tag_text() if predicted is not None else "<answer>unknown</answer>"
        scores, answer = self.assess(groups["A"][0], groups["B"][0], liked_t, disliked_t)
        return format_output(predicted, scores, answer)

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


def _describe(element: str, m: dict[str, Any]) -> str:
    if element == "color":
        return (
            f"dominant hue {m['hue']:.0f} deg ({m['color']})"
            if m["hue"] is not None
            else "no dominant hue"
        )
    if element == "saturation":
        return (
            f"saturation {m['saturation_value']:.2f}, lightness {m['lightness']:.2f} "
            f"({m['saturation']})"
        )
    return f"edge density {m['edge_density']:.3f} ({m['detail']})"


__all__ = ["AnalyticEngine", "CLEAR_MAJORITY", "UNKNOWN", "measure_image", "separating_terms"]


@dataclass
class AnalyticOptions:
    """Settings of the analytic engine: the terms it may name (None: the vocabulary's measurable
    terms). Each must be one the measurements know."""

    colors: Optional[tuple[str, ...]] = None
    saturations: Optional[tuple[str, ...]] = None
    details: Optional[tuple[str, ...]] = None

    def __post_init__(self) -> None:
        tables = {"colors": COLOR_HUES, "saturations": SATURATION_LEVELS, "details": DETAIL_LEVELS}
        for name, table in tables.items():
            terms = getattr(self, name)
            unknown = [term for term in terms or () if term not in table]
            if unknown:
                raise ValueError(
                    f"{name} must be among {', '.join(table)}, got {', '.join(map(str, unknown))}"
                )


BACKEND = EngineBackend(
    name="analytic",
    spec="'analytic' (pixel measurements, no model)",
    accepts=lambda spec: spec == "analytic",
    engine_class=AnalyticEngine,
    options=AnalyticOptions,
    build=lambda spec, model, options: AnalyticEngine(
        options.colors, options.saturations, options.details
    ),
)
