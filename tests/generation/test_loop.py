"""The loop with a scripted assessor and a fake generator: stages, modes, cache, partial runs."""

from __future__ import annotations

import json

import pytest

from generation.loop import LoopConfig, PersonalizedGenerator, RunInterrupted, rerank_images
from generation.report import prepare_run_dir, write_run
from preferthinker.errors import InputError

from .conftest import RED_PROFILE, SolidGenerator


def _loop(assessor, tmp_path, **overrides):
    config = LoopConfig(n=6, cache_dir=str(tmp_path / "cache"), **overrides)
    return PersonalizedGenerator(assessor, SolidGenerator(), config)


def test_run_profile_mode_picks_the_reddest_and_reports_every_stage(
    scripted_assessor, refs_dir, tmp_path
):
    loop = _loop(scripted_assessor, tmp_path)
    events = []
    result = loop.run("a castle", refs_dir / "liked", refs_dir / "disliked", callback=events.append)
    assert result.status == "complete" and result.mode == "profile"
    reds = [loop.generator.red(c.seed) for c in result.candidates]
    assert result.best.index == max(range(6), key=lambda i: reds[i])
    assert [c.seed for c in result.candidates] == list(range(6))
    assert result.rewrite.prompt.startswith("a castle, Pixel Art style")
    assert result.rewrite.negative_prompt == "Cobalt Blue color palette"
    assert (
        loop.generator.calls[0][0] == result.rewrite.prompt
    )  # generated from the rewritten prompt
    assert [len(c[2]) for c in loop.generator.calls] == [
        3,
        3,
    ]  # chunks of the generator's batch size
    assert {e.stage for e in events} == {"references", "profile", "rewrite", "generate", "rerank"}
    assert events[-1].stage == "rerank" and events[-1].done == events[-1].total == 5
    # profile once + 5 knockout comparisons of two images each
    assert result.usage.calls == 6 and result.usage.images == 5 + 5 * 2


def test_second_run_reuses_cached_profile(scripted_assessor, refs_dir, tmp_path):
    first = _loop(scripted_assessor, tmp_path).run(
        "a castle", refs_dir / "liked", refs_dir / "disliked"
    )
    engine = scripted_assessor.engine
    calls_before = len(engine.calls)
    second = _loop(scripted_assessor, tmp_path).run(
        "a castle", refs_dir / "liked", refs_dir / "disliked"
    )
    assert not first.profile_from_cache and second.profile_from_cache
    assert second.profile.profile == RED_PROFILE
    new_calls = engine.calls[calls_before:]
    assert all(
        "Image A" in json.dumps([p.get("text") for m in c for p in m["content"]]) for c in new_calls
    )
    assert len(new_calls) == 5


def test_full_mode_sends_references_in_every_comparison(scripted_assessor, refs_dir, tmp_path):
    result = _loop(scripted_assessor, tmp_path, mode="full", strategy="round-robin").run(
        "a castle", refs_dir / "liked", refs_dir / "disliked"
    )
    assert result.mode == "full"
    comparisons = result.ranking.matches
    assert len(comparisons) == 15
    # 3 liked + 2 disliked + 2 candidates per comparison
    assert all(m.comparison.usage.images == 7 for m in comparisons)
    assert result.best.index == max(range(6), key=lambda i: SolidGenerator().red(i))


def test_no_personalize_is_plain_generation(scripted_assessor, tmp_path):
    loop = _loop(scripted_assessor, tmp_path, personalize=False)
    result = loop.run("a castle")
    assert result.ranking is None and result.profile is None
    assert result.rewrite.prompt == "a castle" and result.rewrite.method == "none"
    assert len(scripted_assessor.engine.calls) == 0 and len(result.candidates) == 6


def test_missing_refs_is_an_input_error(scripted_assessor, tmp_path):
    with pytest.raises(InputError, match="--refs"):
        _loop(scripted_assessor, tmp_path).run("a castle", None)


def test_ctrl_c_during_generation_keeps_finished_candidates(scripted_assessor, refs_dir, tmp_path):
    loop = _loop(scripted_assessor, tmp_path)
    original = loop.generator.generate

    def interrupt_second_batch(prompt, negative_prompt="", seeds=(0,)):
        if loop.generator.calls:
            raise KeyboardInterrupt
        return original(prompt, negative_prompt, seeds)

    loop.generator.generate = interrupt_second_batch
    with pytest.raises(RunInterrupted) as caught:
        loop.run("a castle", refs_dir / "liked")
    partial = caught.value.result
    assert partial.status == "partial" and len(partial.candidates) == 3 and partial.ranking is None
    folder = prepare_run_dir(tmp_path / "out")
    data = write_run(partial, folder)
    assert data["status"] == "partial" and len(list(folder.glob("*.png"))) == 3
    assert json.loads((folder / "result.json").read_text())["status"] == "partial"


def test_rerank_existing_images(scripted_assessor, refs_dir, tmp_path):
    from PIL import Image

    images = [Image.new("RGB", (16, 16), (r, 0, 0)) for r in (10, 200, 90, 250)]
    loop = PersonalizedGenerator(scripted_assessor, None, LoopConfig(strategy="swiss", cache=False))
    result = loop.rerank(images, refs_dir / "liked", sources=["a.png", "b.png", "c.png", "d.png"])
    assert result.best.source == "d.png" and result.status == "complete"
    ranking = rerank_images(images, scripted_assessor, profile=RED_PROFILE, strategy="round-robin")
    assert ranking.order == [3, 1, 2, 0]


@pytest.mark.parametrize(
    "field,value",
    [
        ("n", 0),
        ("strategy", "ladder"),
        ("mode", "fast"),
        ("strength", 6),
        ("rewriter", "gpt"),
        ("tie_policy", "coin"),
        ("swiss_rounds", 0),
    ],
)
def test_loop_config_errors_name_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        LoopConfig(**{field: value})
