"""A scripted engine for tests and dry runs: it answers from a list or a function, no model.

Used by the fast logic tests (tournaments, parsing, caching, files) the way simonw/llm uses its
mock model. It is a real `Engine`, so the code under test cannot tell the difference.
"""

from __future__ import annotations

import time
from typing import Callable, Optional, Sequence, Union

from preferthinker.engines.base import Conversation, Engine, EngineOutput, GenerationConfig, count_images

Responder = Callable[[Conversation], str]


class ScriptedEngine(Engine):
    """Answers each conversation with the next scripted text, or with `responder(conversation)`.

    Args:
        responses: texts returned in order (cycled when exhausted), or a function of the conversation.
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
