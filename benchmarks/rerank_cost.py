"""What a rerank costs, how often the cheap default agrees with the expensive one, and the loop's
overhead.

Three measurements (the figures and commands are in docs/benchmarks.md):

1. Cost, N = 8 candidates, 5 liked + 5 disliked references, through the real `Assessor`,
   `rank_tournament` and prompt builders, with a scripted engine standing in for the model:
   - default: the profile predicted once, then a knockout with assess-with-a-known-profile prompts;
   - authors: the full predict-then-assess prompt (all references) for every pair of a round-robin.
   Counted: assessor calls, images sent, prompt and completion tokens, wall time. Image tokens
   follow Qwen2.5-VL's rule (one token per 28x28 pixels after resizing to the pixel budget); text
   tokens are estimated at 4 characters per token; completion tokens from the scripted outputs,
   which are written in the authors' format at realistic length.
2. Agreement: over many simulated trials, how often the default's winner equals the winner of
   the authors' round-robin (the Bradley-Terry top), and how often each finds the true best.
   Each trial draws 8 latent utilities u ~ N(0, 1). A judgement of (a, b) says a when
   u_a + e_a + n > u_b + e_b + n' with n, n' ~ N(0, sigma_judge) fresh per judgement; e_i ~
   N(0, sigma_profile) is fixed per trial and only used with a known profile (a predicted profile
   that misreads some candidates the same way every time).
3. Loop overhead: `PersonalizedGenerator.run` with the tiny diffusion pipeline and the tiny
   Qwen2.5-VL assessor (real loading, prompting, parsing, generation, ranking) plus writing the run
   folder; overhead = wall time - time inside the diffusers pipeline - time inside the engine.

Run:
    python benchmarks/rerank_cost.py --out docs/benchmarks_rerank.json
    python benchmarks/rerank_cost.py --skip-overhead --trials 2000

Example:
    >>> cost = measure_cost(n=8, liked=5, disliked=5)
    >>> cost["default"]["images"], cost["authors"]["images"]
    (24, 336)
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Optional

from PIL import Image

from generation.rerank import rank_tournament
from preferthinker.assessor import Assessor, AssessorConfig
from preferthinker.compact import COMPACT_SYSTEM_PROMPT, format_compact
from preferthinker.engines.base import Conversation, EngineOutput
from preferthinker.engines.scripted import ScriptedEngine
from preferthinker.images import DEFAULT_MAX_PIXELS
from preferthinker.parser import format_output
from preferthinker.profile import Profile, UserProfile
from preferthinker.results import Comparison, ElementScore

PROFILE = UserProfile(
    liked=Profile(
        art_style=["Pixel Art"],
        color=["Pink", "Jungle Green"],
        art_medium=["Digital Painting"],
        saturation=["Pastel"],
        detail=["Fine"],
    ),
    disliked=Profile(
        art_style=["Romanticism"],
        color=["Charcoal Gray"],
        art_medium=["Silkscreen"],
        saturation=["Muted"],
        detail=["Realistic"],
    ),
)
ELEMENT_ORDER = ("art_style", "color", "art_medium", "saturation", "detail")


# -- a model stand-in with realistic output length and token accounting ------------------------


def qwen_image_tokens(
    width: int, height: int, max_pixels: int = DEFAULT_MAX_PIXELS, min_pixels: int = 3136
) -> int:
    """Visual tokens Qwen2.5-VL spends on an image: resize to multiples of 28 within the pixel
    budget (the processor's smart_resize), then one token per 28x28 block."""
    factor = 28
    h = max(factor, round(height / factor) * factor)
    w = max(factor, round(width / factor) * factor)
    if h * w > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h = math.floor(height / beta / factor) * factor
        w = math.floor(width / beta / factor) * factor
    elif h * w < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h = math.ceil(height * beta / factor) * factor
        w = math.ceil(width * beta / factor) * factor
    return (h // factor) * (w // factor)


def _parts(conversation: Conversation) -> list[dict]:
    return [p for m in conversation if isinstance(m["content"], list) for p in m["content"]]


def _utility(image: Image.Image) -> float:
    """The candidate's latent utility, stored in its pixels (red channel, 0-255 -> utility)."""
    return image.getpixel((0, 0))[0]


def realistic_responder(conversation: Conversation) -> str:
    """Answers in the authors' format with rationales of realistic length; prefers the higher
    utility."""
    parts = _parts(conversation)
    texts = [p.get("text", "") for p in parts if p["type"] == "text"]
    images = [p["image"] for p in parts if p["type"] == "image"]
    if "Image A" not in texts:
        return PROFILE.to_tag_text()
    compact = conversation[0]["content"][0]["text"] == COMPACT_SYSTEM_PROMPT
    known = any("profiles are" in t for t in texts)
    ua, ub = _utility(images[-2]), _utility(images[-1])
    sa, sb = (4, 2) if ua >= ub else (2, 4)
    reason = "the {} of this image {} the user's preference for {} and avoids the disliked {}"
    scores = [
        ElementScore(
            e,
            sa,
            sb,
            reason.format(
                e.replace("_", " "), "matches" if sa > sb else "departs from", "it", "terms"
            ),
            reason.format(
                e.replace("_", " "), "matches" if sb > sa else "departs from", "it", "terms"
            ),
        )
        for e in ELEMENT_ORDER
    ]
    if compact:  # what a model following the compact prompt writes (stopped at </answer>)
        return format_compact(scores, "A" if ua >= ub else "B")
    return format_output(None if known else PROFILE, scores, "A" if ua >= ub else "B")


class TokenCountingEngine(ScriptedEngine):
    """A scripted engine whose token counts follow Qwen2.5-VL's image rule and ~4 chars/token."""

    def __init__(self, responder: Callable[[Conversation], str], max_pixels: int):
        super().__init__(responder)
        self.max_pixels = max_pixels

    def generate(self, conversations, config=None):
        outputs = super().generate(conversations, config)
        counted = []
        for conversation, output in zip(conversations, outputs):
            parts = _parts(conversation)
            text_chars = sum(len(p.get("text", "")) for p in parts if p["type"] == "text")
            image_tokens = sum(
                qwen_image_tokens(*p["image"].size, max_pixels=self.max_pixels)
                for p in parts
                if p["type"] == "image"
            )
            counted.append(
                EngineOutput(
                    output.text,
                    text_chars // 4 + image_tokens,
                    len(output.text) // 4,
                    output.seconds,
                )
            )
        return counted


def _candidates(n: int, size: int, rng: random.Random) -> list[Image.Image]:
    return [Image.new("RGB", (size, size), (rng.randrange(256), 90, 90)) for _ in range(n)]


def measure_cost(
    n: int = 8, liked: int = 5, disliked: int = 5, size: int = 1024, seed: int = 0
) -> dict[str, Any]:
    """Assessor cost of the default path vs. the authors' full prompt over a round-robin."""
    rng = random.Random(seed)
    config = AssessorConfig(assessor="scripted", max_retries=0)
    refs_liked = [Image.new("RGB", (size, size), (200, 40 + k, 90)) for k in range(liked)]
    refs_disliked = [Image.new("RGB", (size, size), (30, 40 + k, 200)) for k in range(disliked)]
    images = _candidates(n, size, rng)
    rows: dict[str, Any] = {}

    def count(name: str, run: Callable[[Assessor], Any], verdict: str = "full") -> None:
        settings = AssessorConfig(assessor="scripted", max_retries=0, verdict=verdict)
        assessor = Assessor(TokenCountingEngine(realistic_responder, config.max_pixels), settings)
        start = time.perf_counter()
        ranking, extra = run(assessor)
        seconds = time.perf_counter() - start
        usage = ranking.usage
        usage.add(extra)
        rows[name] = {
            "calls": usage.calls,
            "images": usage.images,
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "comparisons": len(ranking.matches),
            "wall_seconds_scripted": round(seconds, 3),
            "winner": ranking.winner,
        }

    def default(assessor: Assessor):
        prediction = assessor.predict_profile(refs_liked, refs_disliked)

        def compare(pairs, progress=None):
            return assessor.compare_many(pairs, profile=prediction.profile, progress=progress)

        return rank_tournament(images, compare, "knockout"), prediction.usage

    def authors(assessor: Assessor):
        from preferthinker.results import Usage

        def compare(pairs, progress=None):
            return assessor.compare_many(
                pairs, liked=refs_liked, disliked=refs_disliked, progress=progress
            )

        return rank_tournament(images, compare, "round-robin"), Usage()

    count("default", default)
    count("authors", authors)
    count("compact", default, verdict="compact")  # the default path with compact verdicts
    full_tokens = rows["default"]["prompt_tokens"] + rows["default"]["completion_tokens"]
    rows["compact_completion_ratio"] = (
        rows["compact"]["completion_tokens"] / rows["default"]["completion_tokens"]
    )
    rows["compact_total_token_ratio"] = (
        rows["compact"]["prompt_tokens"] + rows["compact"]["completion_tokens"]
    ) / full_tokens
    rows["image_ratio"] = rows["default"]["images"] / rows["authors"]["images"]
    rows["prompt_token_ratio"] = rows["default"]["prompt_tokens"] / rows["authors"]["prompt_tokens"]
    rows["setup"] = {
        "n": n,
        "liked": liked,
        "disliked": disliked,
        "image_size": size,
        "max_pixels": config.max_pixels,
        "tokens_per_image": qwen_image_tokens(size, size),
    }
    return rows


# -- agreement over simulated trials -----------------------------------------------------------


def _judge(utility: list[float], offset: list[float], sigma: float, rng: random.Random):
    """compare_many over candidate indices for a noisy Thurstone judge."""

    def compare_many(pairs, progress=None):
        out = []
        for a, b in pairs:
            va = utility[a] + offset[a] + rng.gauss(0.0, sigma)
            vb = utility[b] + offset[b] + rng.gauss(0.0, sigma)
            out.append(Comparison("A" if va >= vb else "B"))
        return out

    return compare_many


def measure_agreement(
    trials: int = 2000,
    n: int = 8,
    sigma_judge: float = 0.5,
    sigma_profile: float = 0.0,
    seed: int = 0,
) -> dict[str, float]:
    """How often the default (known profile + knockout) and the authors' (full prompt, round-robin)
    pick the same winner, and how often each picks the true best."""
    rng = random.Random(seed)
    agree = default_best = authors_best = 0
    regret_default: list[float] = []
    regret_authors: list[float] = []
    for _ in range(trials):
        utility = [rng.gauss(0.0, 1.0) for _ in range(n)]
        profile_error = [rng.gauss(0.0, sigma_profile) if sigma_profile else 0.0 for _ in range(n)]
        none = [0.0] * n
        candidates = list(range(n))
        default = rank_tournament(
            candidates, _judge(utility, profile_error, sigma_judge, rng), "knockout"
        )
        authors = rank_tournament(
            candidates, _judge(utility, none, sigma_judge, rng), "round-robin"
        )
        best = max(candidates, key=lambda i: utility[i])
        agree += default.winner == authors.winner
        default_best += default.winner == best
        authors_best += authors.winner == best
        regret_default.append(utility[best] - utility[default.winner])
        regret_authors.append(utility[best] - utility[authors.winner])
    # Accuracy of a single judgement on a random pair, for reading the noise level.
    pair_accuracy = _pair_accuracy(sigma_judge, sigma_profile, rng)
    return {
        "sigma_judge": sigma_judge,
        "sigma_profile": sigma_profile,
        "trials": trials,
        "pair_accuracy": round(pair_accuracy, 3),
        "winner_agreement": round(agree / trials, 3),
        "default_finds_best": round(default_best / trials, 3),
        "authors_finds_best": round(authors_best / trials, 3),
        "default_mean_regret": round(statistics.fmean(regret_default), 3),
        "authors_mean_regret": round(statistics.fmean(regret_authors), 3),
    }


def _pair_accuracy(
    sigma_judge: float, sigma_profile: float, rng: random.Random, samples: int = 20000
) -> float:
    right = 0
    for _ in range(samples):
        ua, ub = rng.gauss(0, 1), rng.gauss(0, 1)
        ea, eb = (
            (rng.gauss(0, sigma_profile), rng.gauss(0, sigma_profile))
            if sigma_profile
            else (0.0, 0.0)
        )
        va = ua + ea + rng.gauss(0, sigma_judge)
        vb = ub + eb + rng.gauss(0, sigma_judge)
        right += (va >= vb) == (ua >= ub)
    return right / samples


# -- loop overhead with the tiny models ----------------------------------------------------------


def measure_overhead(
    n: int = 8, repeats: int = 3, max_new_tokens: int = 32, work: Optional[Path] = None
) -> dict[str, Any]:
    """Share of a tiny-model run's wall time that is not model compute (median of `repeats`)."""
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from generation.generator import DiffusersGenerator, GeneratorConfig
    from generation.loop import LoopConfig, PersonalizedGenerator
    from generation.report import prepare_run_dir, write_run
    from generation.tiny import make_tiny_generator
    from preferthinker.tiny import make_tiny_assessor

    work = Path(work or tempfile.mkdtemp(prefix="ptgen-bench-"))
    generator_dir = work / "generator"
    assessor_dir = work / "assessor"
    if not (generator_dir / "model_index.json").is_file():
        make_tiny_generator(generator_dir)
    if not (assessor_dir / "config.json").is_file():
        make_tiny_assessor(assessor_dir)
    refs = [Image.new("RGB", (64, 64), (200 + 10 * k, 40, 40)) for k in range(5)]
    dislikes = [Image.new("RGB", (64, 64), (40, 40, 200 + 10 * k)) for k in range(5)]
    assessor = Assessor.from_config(
        AssessorConfig(
            assessor=str(assessor_dir), max_new_tokens=max_new_tokens, max_retries=0, device="cpu"
        )
    )
    generator = DiffusersGenerator(
        GeneratorConfig(model=str(generator_dir), device="cpu", batch_size=n)
    )
    engine = assessor.engine
    engine_seconds = [0.0]
    original_generate = engine.generate

    def timed_generate(conversations, config=None):
        start = time.perf_counter()
        try:
            return original_generate(conversations, config)
        finally:
            engine_seconds[0] += time.perf_counter() - start

    engine.generate = timed_generate  # time inside the model, measured from outside the engine
    runs = []
    for repeat in range(repeats + 1):  # the first run warms up (lazy imports, allocator)
        engine_seconds[0] = 0.0
        pipeline_before = generator.timings.seconds
        loop = PersonalizedGenerator(assessor, generator, LoopConfig(n=n, seed=repeat, cache=False))
        start = time.perf_counter()
        result = loop.run("a castle", refs, dislikes)
        write_run(result, prepare_run_dir(None, work / "runs"))
        wall = time.perf_counter() - start
        pipeline = generator.timings.seconds - pipeline_before
        model = pipeline + engine_seconds[0]
        if repeat:
            runs.append(
                {
                    "wall": wall,
                    "pipeline": pipeline,
                    "engine": engine_seconds[0],
                    "overhead": wall - model,
                    "share": (wall - model) / wall,
                    "timings": dict(result.timings),
                }
            )
    assessor.close()
    median = sorted(runs, key=lambda r: r["share"])[len(runs) // 2]
    return {
        "n": n,
        "repeats": repeats,
        "max_new_tokens": max_new_tokens,
        "median": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in median.items()},
        "shares": [round(r["share"], 4) for r in runs],
    }


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-overhead", action="store_true")
    parser.add_argument("--out", type=Path, default=None, help="Write all figures as JSON here.")
    args = parser.parse_args(argv)

    report: dict[str, Any] = {"cost": measure_cost(n=args.n)}
    print(json.dumps(report["cost"], indent=2))
    report["agreement"] = []
    for sigma_judge in (0.1, 0.25, 0.5, 1.0):
        for sigma_profile in (0.0, 0.25):
            row = measure_agreement(args.trials, args.n, sigma_judge, sigma_profile)
            report["agreement"].append(row)
            print(json.dumps(row))
    if not args.skip_overhead:
        report["overhead"] = measure_overhead(n=args.n, repeats=args.repeats)
        print(json.dumps(report["overhead"], indent=2))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
