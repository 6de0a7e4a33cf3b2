"""`ptgen demo`: personalization shown end to end, offline, on a CPU, in seconds.

A simulated user with a hidden taste (a SynthPref profile) gets liked and disliked reference
images from the procedural renderer (a simulator for evaluation, not a text-to-image model).
Then the real `generate` loop runs against that renderer with the best assessor that works
offline (the analytic assessor, which measures color, saturation and detail from pixels):
predict the profile, rewrite the prompt, generate candidates, rerank them. The same run also
does the non-personalized baseline (plain prompt, first candidate). Because the renderer records
what it drew, how well each pick matches the hidden profile is known exactly.

Example:
    >>> outcome = run_demo(DemoConfig(seed=3))
    >>> outcome.personalized_match, outcome.baseline_match
    (0.8, 0.2)
"""

from __future__ import annotations

import html
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from generation.loop import Callback, LoopConfig, PersonalizedGenerator, RunResult
from preferthinker.profile import ELEMENT_LABELS, ELEMENTS, UserProfile

DEMO_PROMPTS = (
    "a castle",
    "a lighthouse by the sea",
    "a cat",
    "a city skyline",
    "a garden",
    "a mountain lake",
)


@dataclass
class DemoConfig:
    """Settings of `ptgen demo`.

    Args:
        seed: picks the simulated user, the prompt and the candidates' seeds.
        n: candidates per run (personalized and baseline alike).
        refs: liked references (and as many disliked ones).
        prompt: what to draw (None: one of DEMO_PROMPTS, by seed).
        size: image side in pixels.
        strategy: the reranking tournament.
    """

    seed: int = 0
    n: int = 8
    refs: int = 5
    prompt: Optional[str] = None
    size: int = 256
    strategy: str = "knockout"

    def __post_init__(self) -> None:
        if self.n < 2:
            raise ValueError(f"n must be >= 2 so there is something to rerank, got {self.n}")
        if not 1 <= self.refs <= 5:
            raise ValueError(f"refs must be between 1 and 5, got {self.refs}")
        if self.size < 32:
            raise ValueError(f"size must be >= 32, got {self.size}")


@dataclass
class DemoOutcome:
    """Both runs of a demo and how well each pick matches the hidden profile (0-1)."""

    hidden: UserProfile
    prompt: str
    personalized: RunResult
    baseline: RunResult
    personalized_match: float
    baseline_match: float
    per_element: dict[str, dict[str, bool]] = field(default_factory=dict)


def match_score(image: Any, profile: UserProfile) -> tuple[float, dict[str, bool]]:
    """Share of the liked elements an image drawn by the procedural renderer shows."""
    from synthpref.renderer import image_attributes
    from synthpref.users import profile_matches

    attributes = image_attributes(image)
    if attributes is None:
        raise ValueError(
            "the image carries no SynthPref attributes; it was not drawn by the procedural renderer"
        )
    matches = profile_matches(profile.liked, attributes)
    return sum(matches.values()) / max(1, len(matches)), matches


def run_demo(
    config: Optional[DemoConfig] = None, callback: Optional[Callback] = None
) -> DemoOutcome:
    """Run the personalized loop and the baseline for one simulated user.

    Args:
        config: demo settings.
        callback: receives the personalized run's `StageEvent`s (for progress bars).
    """
    from preferthinker.analytic import AnalyticEngine
    from preferthinker.assessor import Assessor, AssessorConfig
    from synthpref.bench import DEFAULT_SUBJECTS, make_user_items
    from synthpref.renderer import SUPPORTED_TERMS, ProceduralGenerator, terms_distinct
    from synthpref.users import sample_users

    config = config or DemoConfig()
    rng = random.Random(f"ptgen-demo:{config.seed}")
    (user,) = sample_users(
        1, SUPPORTED_TERMS, seed=config.seed, compatible=terms_distinct, id_prefix="demo"
    )
    generator = ProceduralGenerator(size=config.size)
    (refs,) = make_user_items(user, generator, DEFAULT_SUBJECTS, config.refs, 1, rng)
    prompt = config.prompt or rng.choice(DEMO_PROMPTS)
    assessor = Assessor(AnalyticEngine(), AssessorConfig(assessor="analytic"))
    seed = rng.randrange(100_000)

    def run(personalize: bool, events: Optional[Callback]) -> RunResult:
        loop_config = LoopConfig(
            n=config.n, seed=seed, strategy=config.strategy, personalize=personalize, cache=False
        )
        loop = PersonalizedGenerator(assessor, generator, loop_config)
        return loop.run(prompt, refs.preferred, refs.non_preferred, callback=events)

    personalized = run(True, callback)
    baseline = run(False, None)
    # The baseline's pick is its first candidate: no reranking, the same seeds.
    personalized_match, personalized_elements = match_score(personalized.best.image, user.profile)
    baseline_match, baseline_elements = match_score(baseline.candidates[0].image, user.profile)
    return DemoOutcome(
        hidden=user.profile,
        prompt=prompt,
        personalized=personalized,
        baseline=baseline,
        personalized_match=personalized_match,
        baseline_match=baseline_match,
        per_element={"personalized": personalized_elements, "baseline": baseline_elements},
    )


def demo_section(outcome: DemoOutcome) -> str:
    """The report's demo section: hidden vs. predicted profile, baseline vs. personalized pick."""
    from generation.report import data_url
    from synthpref.renderer import image_attributes

    predicted = (
        outcome.personalized.profile.profile if outcome.personalized.profile else UserProfile()
    )
    personalized_image = outcome.personalized.best.image
    baseline_image = outcome.baseline.candidates[0].image
    drawn = {
        "personalized": image_attributes(personalized_image) or {},
        "baseline": image_attributes(baseline_image) or {},
    }

    def cell(pick: str, element: str) -> str:
        term = drawn[pick].get(element, "")
        ok = outcome.per_element[pick].get(element)
        mark = "&#10003;" if ok else ("&#10007;" if ok is not None else "")
        return f"{html.escape(term)} {mark}"

    rows = []
    for element in ELEMENTS:
        rows.append(
            f"<tr><th>{html.escape(ELEMENT_LABELS[element])}</th>"
            f"<td>{html.escape(', '.join(outcome.hidden.liked.terms(element)))}</td>"
            f"<td>{html.escape(', '.join(predicted.liked.terms(element)) or 'unknown')}</td>"
            f"<td>{cell('baseline', element)}</td><td>{cell('personalized', element)}</td></tr>"
        )
    baseline_src = data_url(baseline_image, 512)
    personalized_src = data_url(personalized_image, 512)
    rewrite = outcome.personalized.rewrite
    personalized_prompt = rewrite.prompt if rewrite else ""
    # A backslash at a line end continues the same HTML line (keeps the source under 100 columns).
    return f"""
<h2 id="demo">Demo: a simulated user with a hidden taste</h2>
<p class="muted">The references were drawn from a hidden profile by ptgen's procedural renderer \
(a simulator,
not a text-to-image model). The analytic assessor predicted the profile from the references alone;
it measures color, saturation and detail, and cannot see art style or medium.</p>
<div class="grid">
<div class="card"><img alt="baseline pick" src="{baseline_src}">
<div><b>baseline pick</b> (plain prompt, no reranking)</div>\
<div>profile match {outcome.baseline_match:.0%}</div></div>
<div class="card best"><img alt="personalized pick" src="{personalized_src}">
<div><b>personalized pick</b> (rewrite + rerank)</div>\
<div>profile match {outcome.personalized_match:.0%}</div></div>
</div>
<table id="demo-profiles"><tr><th>element</th><th>hidden (liked)</th><th>predicted (liked)</th>
<th>baseline pick drew</th><th>personalized pick drew</th></tr>{"".join(rows)}</table>
<p class="muted">baseline prompt: {html.escape(outcome.baseline.prompt)}<br>
personalized prompt: {html.escape(personalized_prompt)}</p>
"""


def write_demo(outcome: DemoOutcome, folder: Path) -> dict[str, Any]:
    """The usual run folder for the personalized run, its report with the demo section added."""
    from generation.report import write_run

    data = write_run(outcome.personalized, folder, extra_html=demo_section(outcome))
    return data


def summary_lines(outcome: DemoOutcome) -> list[str]:
    """The three lines `ptgen demo` prints."""
    hidden = outcome.hidden.liked.describe()
    predicted = (
        outcome.personalized.profile.profile.liked.describe()
        if outcome.personalized.profile
        else ""
    )
    return [
        f"hidden taste:    {hidden}",
        f"predicted taste: {predicted or '(nothing)'}",
        f"profile match of the pick: personalized {outcome.personalized_match:.0%} "
        f"vs. baseline {outcome.baseline_match:.0%}",
    ]


def evaluate_demo(
    seeds: range,
    config: Optional[DemoConfig] = None,
    progress: Optional[Callable[[int, int], None]] = None,
) -> list[tuple[int, float, float]]:
    """(seed, personalized match, baseline match) for each seed; for docs/results.md."""
    base = config or DemoConfig()
    rows = []
    for done, seed in enumerate(seeds, start=1):
        outcome = run_demo(
            DemoConfig(
                seed=seed,
                n=base.n,
                refs=base.refs,
                prompt=base.prompt,
                size=base.size,
                strategy=base.strategy,
            )
        )
        rows.append((seed, outcome.personalized_match, outcome.baseline_match))
        if progress:
            progress(done, len(seeds))
    return rows
