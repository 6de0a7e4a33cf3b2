"""The feedback-loop benchmark on a tiny population (real store, renderer, analytic assessor)."""

from __future__ import annotations

import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.feedback_loop import run_feedback_loop, simulated_labels  # noqa: E402


def test_labelling_rule_counts_hidden_elements():
    from generation.loop import Candidate
    from preferthinker.profile import Profile, UserProfile
    from synthpref.renderer import ProceduralRenderer
    from synthpref.users import SimulatedUser

    hidden = UserProfile(
        Profile(
            art_style=["Pop Art"],
            color=["Purple"],
            art_medium=["Mosaic"],
            saturation=["Muted"],
            detail=["Smooth"],
        )
    )
    user = SimulatedUser("u", hidden)
    renderer = ProceduralRenderer(size=64)
    three = renderer.render(
        "a castle",
        {
            "art_style": "Pop Art",
            "color": "Purple",
            "art_medium": "Mosaic",
            "saturation": "Vibrant",
            "detail": "Textured",
        },
        seed=1,
    ).image
    none = renderer.render(
        "a castle",
        {
            "art_style": "Cubism",
            "color": "Orange",
            "art_medium": "Pencil Sketch",
            "saturation": "Vibrant",
            "detail": "Textured",
        },
        seed=2,
    ).image
    liked, disliked = simulated_labels(
        [Candidate(0, three), Candidate(1, none)], user, 3, 0.0, random.Random(0)
    )
    assert liked == [three] and disliked == [none]
    liked, disliked = simulated_labels([Candidate(0, three)], user, 4, 0.0, random.Random(0))
    assert liked == [] and disliked == []
    liked, disliked = simulated_labels([Candidate(0, three)], user, 3, 1.0, random.Random(0))
    assert liked == [] and disliked == [three]  # noise 1: every label flipped


def test_rounds_and_conditions():
    rows = run_feedback_loop(users=2, seeds=1, rounds=2, n=4)
    assert [(r["condition"], r["round"]) for r in rows] == [
        (c, k) for c in ("aggregated", "first 5", "no feedback") for k in (1, 2)
    ]
    by = {(r["condition"], r["round"]): r for r in rows}
    # Round 1 starts every condition from the same 2 + 2 references.
    assert by[("aggregated", 1)]["color"] == by[("no feedback", 1)]["color"]
    # Without feedback the profile never changes.
    for element in ("color", "saturation", "detail"):
        assert by[("no feedback", 1)][element] == by[("no feedback", 2)][element]
    assert all(0.0 <= r["match"] <= 1.0 and r["users"] == 2 for r in rows)
