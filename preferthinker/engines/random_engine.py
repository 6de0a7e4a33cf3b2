"""The random baseline as an engine: every comparison is answered "Image A" or "Image B" at random.

Seeded, so a run repeats exactly. It goes through the same `Assessor`, parser and accounting as a
real model (`ptgen eval --assessor random` is the chance line of a results table). It predicts
no profile: a profile request gets an answer without one, which the assessor reports as failed.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Optional

from preferthinker.engines.base import Conversation, Engine, EngineOutput, GenerationConfig
from preferthinker.engines.registry import EngineBackend


@dataclass
class RandomOptions:
    """Settings of the random engine.

    Args:
        seed: seeds the answers (same seed, same answers in the same order).
    """

    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")


class RandomEngine(Engine):
    """Answers each conversation with `<answer>Image A</answer>` or `<answer>Image B</answer>`,
    drawn from a generator seeded with `options.seed`.

    Example:
        >>> engine = RandomEngine(RandomOptions(seed=1))
        >>> engine.generate([[{"role": "user", "content": "which?"}]])[0].text in (
        ...     "<answer>Image A</answer>", "<answer>Image B</answer>")
        True
    """

    name = "random"
    concurrent = False

    def __init__(self, options: Optional[RandomOptions] = None):
        self.options = options or RandomOptions()
        self._rng = random.Random(self.options.seed)

    def generate(
        self, conversations: list[Conversation], config: Optional[GenerationConfig] = None
    ) -> list[EngineOutput]:
        outputs = []
        for _ in conversations:
            start = time.perf_counter()
            text = f"<answer>Image {self._rng.choice('AB')}</answer>"
            outputs.append(EngineOutput(text=text, seconds=time.perf_counter() - start))
        return outputs


BACKEND = EngineBackend(
    name="random",
    spec="'random' (seeded coin flips: the chance baseline)",
    accepts=lambda spec: spec == "random",
    engine_class=RandomEngine,
    options=RandomOptions,
    build=lambda spec, model, options: RandomEngine(options),
)
