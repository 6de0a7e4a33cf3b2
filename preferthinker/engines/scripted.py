"""A scripted engine for tests and dry runs: it answers from a list or a function, no model.

Used by the fast logic tests (tournaments, parsing, caching, files) the way simonw/llm uses its
mock model. It is a real `Engine`, so the code under test cannot tell the difference.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Optional, Sequence, Union

from preferthinker.engines.base import (
    Conversation,
    Engine,
    EngineOutput,
    GenerationConfig,
    count_images,
)
from preferthinker.engines.registry import EngineBackend

Responder = Callable[[Conversation], str]


class ScriptedEngine(Engine):
    """Answers each conversation with the next scripted text, or with `responder(conversation)`.

    Args:
        responses: texts returned in order (cycled when exhausted), or a function of the
            conversation.
        concurrent: pretend to be a concurrent (HTTP-like) engine.

    Example:
        >>> engine = ScriptedEngine(["<answer>Image A</answer>"])
    """

    name = "scripted"

    def __init__(self, responses: Union[Sequence[str], Responder] = (), concurrent: bool = False):
        self.responses = responses
        self.concurrent = concurrent
        self.calls: list[Conversation] = []
        self._index = 0

    def _answer(self, conversation: Conversation) -> str:
        if callable(self.responses):
            return self.responses(conversation)
        if not self.responses:
            return ""
        text = self.responses[self._index % len(self.responses)]
        self._index += 1
        return text

    def generate(
        self, conversations: list[Conversation], config: Optional[GenerationConfig] = None
    ) -> list[EngineOutput]:
        outputs = []
        for conversation in conversations:
            start = time.perf_counter()
            self.calls.append(conversation)
            text = self._answer(conversation)
            outputs.append(
                EngineOutput(
                    text=text,
                    prompt_tokens=100 * count_images(conversation) + 50,
                    completion_tokens=len(text.split()),
                    seconds=time.perf_counter() - start,
                )
            )
        return outputs


@dataclass
class ScriptedOptions:
    """Settings of the scripted engine: what it answers (see `ScriptedEngine`)."""

    responses: Union[Sequence[str], Responder] = ()
    concurrent: bool = False

    def __post_init__(self) -> None:
        texts = isinstance(self.responses, (list, tuple)) and all(
            isinstance(text, str) for text in self.responses
        )
        if not (texts or callable(self.responses)):
            raise ValueError(
                "responses must be a list of texts or a function of the conversation, "
                f"got {self.responses!r}"
            )


BACKEND = EngineBackend(
    name="scripted",
    spec="'scripted' (canned answers, for tests)",
    accepts=lambda spec: spec == "scripted",
    engine_class=ScriptedEngine,
    options=ScriptedOptions,
    build=lambda spec, model, options: ScriptedEngine(options.responses, options.concurrent),
)
