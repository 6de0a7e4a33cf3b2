"""The extension points work alone: a throwaway engine and a throwaway strategy, added through the
registries and nothing else, rerank images through the library and through `ptgen rerank`.

This is the recipe of docs/architecture.md ("How to extend"), run: if adding a backend or a
strategy ever needs an edit elsewhere (a hard-coded tuple, an if/elif on names), this fails.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Iterator, Optional

import pytest
from PIL import Image

from generation.rerank import rerank
from generation.strategies import (
    Pair,
    Strategy,
    TournamentState,
    register_strategy,
    unregister_strategy,
)
from preferthinker.assessor import Assessor, AssessorConfig
from preferthinker.engines import (
    Engine,
    EngineBackend,
    EngineOutput,
    create_engine,
    register_backend,
    unregister_backend,
)
from preferthinker.errors import InputError
from ptgen.cli.main import main

CHANNELS = {"red": 0, "green": 1, "blue": 2}


@dataclass
class ChannelOptions:
    margin: float = 0.0  # differences of mean channel value up to this are undecided

    def __post_init__(self) -> None:
        if self.margin < 0:
            raise ValueError(f"margin must be >= 0, got {self.margin}")


class ChannelEngine(Engine):
    """Prefers the candidate with more of one colour channel (the last two images are A and B)."""

    def __init__(self, channel: str, options: ChannelOptions):
        self.name = f"prefer:{channel}"
        self.channel = CHANNELS[channel]
        self.options = options

    def _mean(self, image) -> float:
        pixels = list(image.convert("RGB").getdata())
        return sum(p[self.channel] for p in pixels) / len(pixels)

    def generate(self, conversations, config=None):
        outputs = []
        for conversation in conversations:
            parts = [
                part
                for message in conversation
                if isinstance(message["content"], list)
                for part in message["content"]
            ]
            images = [part["image"] for part in parts if part.get("type") == "image"]
            a, b = (self._mean(images[-2]), self._mean(images[-1])) if len(images) >= 2 else (0, 0)
            margin = self.options.margin
            answer = "A" if a - b > margin else "B" if b - a > margin else "none"
            outputs.append(EngineOutput(f"<answer>Image {answer}</answer>"))
        return outputs


_SPEC = re.compile(r"^prefer:(red|green|blue)$")
CHANNEL_BACKEND = EngineBackend(
    name="channel-test",
    spec="'prefer:red|green|blue' (test engine)",
    accepts=lambda spec: bool(_SPEC.match(spec)),
    engine_class=ChannelEngine,
    options=ChannelOptions,
    build=lambda spec, model, options: ChannelEngine(_SPEC.match(spec).group(1), options),
)


class Ladder(Strategy):
    """King of the hill: the champion so far meets the next candidate, one match per round."""

    name = "ladder-test"
    summary = "N-1 comparisons, one per round"

    def pairings(self, state: TournamentState) -> Iterator[list[Pair]]:
        champion: Optional[int] = 0
        for challenger in range(1, state.n):
            yield [(champion, challenger)]
            last = state.matches[-1]
            champion = last.winner if last.winner is not None else champion

    def comparisons(self, n: int, rounds: Optional[int] = None) -> int:
        return max(n - 1, 0)


@pytest.fixture
def registered():
    register_backend(CHANNEL_BACKEND)
    register_strategy(Ladder())
    yield
    unregister_backend(CHANNEL_BACKEND.name)
    unregister_strategy(Ladder.name)


REDS = [(90, 0, 0), (250, 0, 0), (30, 0, 0), (160, 0, 0), (200, 0, 0)]  # best: index 1


def test_throwaway_engine_and_strategy_through_the_library(registered):
    images = [Image.new("RGB", (16, 16), color) for color in REDS]
    assessor = Assessor.from_config(AssessorConfig(assessor="prefer:red"))
    assert isinstance(assessor.engine, ChannelEngine)
    ranking = rerank(images, assessor, strategy="ladder-test", liked=images[:1])
    assert ranking.strategy == "ladder-test" and ranking.winner == 1
    played = [(m.round, m.a, m.b) for m in ranking.matches]
    assert played == [(1, 0, 1), (2, 1, 2), (3, 1, 3), (4, 1, 4)]
    # its options are validated and passed like any backend's
    with pytest.raises(InputError, match="channel-test engine: margin must be >= 0, got -1"):
        create_engine("prefer:red", margin=-1)
    blind = Assessor(create_engine("prefer:red", margin=255.0))
    assert rerank(images, blind, strategy="ladder-test", liked=images[:1]).winner is None


def test_throwaway_engine_and_strategy_through_the_cli(registered, tmp_path):
    shots, refs = tmp_path / "shots", tmp_path / "refs"
    shots.mkdir()
    refs.mkdir()
    for k, color in enumerate(REDS):
        Image.new("RGB", (16, 16), color).save(shots / f"{k}.png")
    Image.new("RGB", (16, 16), (255, 0, 0)).save(refs / "liked.png")
    out = tmp_path / "run"
    code = main(
        [
            "rerank",
            str(shots),
            "--refs",
            str(refs),
            "--assessor",
            "prefer:red",
            "--strategy",
            "ladder-test",
            "--out",
            str(out),
            "--cache-dir",
            str(tmp_path / "cache"),
        ]
    )
    assert code == 0
    data = json.loads((out / "result.json").read_text())
    assert data["best"]["index"] == 1
    assert data["candidates"][1]["source"] == str(shots / "1.png")
    assert data["candidates"][1]["rank"] == 1
    assert data["ranking"]["strategy"] == "ladder-test" and len(data["ranking"]["comparisons"]) == 4
    assert data["models"]["assessor"] == "prefer:red"


@pytest.mark.parametrize(
    "flags,words",
    [
        (
            ["--assessor", "prefer:red"],
            "unknown assessor 'prefer:red'; give an http(s)://HOST:PORT/v1 URL",
        ),
        (
            ["--assessor", "random", "--strategy", "ladder-test"],
            "strategy must be one of knockout, round-robin, swiss",
        ),
    ],
)
def test_without_registration_the_names_are_refused_in_one_line(tmp_path, capsys, flags, words):
    Image.new("RGB", (16, 16), (255, 0, 0)).save(tmp_path / "a.png")
    code = main(
        [
            "rerank",
            str(tmp_path),
            "--refs",
            str(tmp_path),
            *flags,
            "--out",
            str(tmp_path / "run"),
            "--cache-dir",
            str(tmp_path / "cache"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and words in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if line.strip()]) == 1
