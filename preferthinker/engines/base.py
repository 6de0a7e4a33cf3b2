"""The engine interface: turn chat conversations (text + PIL images) into text.

A conversation is a list of messages in the chat format that Hugging Face processors and the
OpenAI API both understand, with images as PIL objects:

    [{"role": "system", "content": [{"type": "text", "text": "..."}]},
     {"role": "user", "content": [{"type": "text", "text": "Image A"},
                                  {"type": "image", "image": <PIL.Image>}]}]

Each backend converts this to what it needs (processor inputs, base64 data URLs).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Optional

Message = dict[str, Any]
Conversation = list[Message]

# The authors' evaluation settings: greedy decoding, repetition penalty 1.15, up to 4096 new tokens.
DEFAULT_MAX_NEW_TOKENS = 4096
DEFAULT_REPETITION_PENALTY = 1.15


@dataclass
class GenerationConfig:
    """Decoding settings shared by every engine. temperature 0 means greedy.

    `max_new_tokens=None` means the model's own limit where its checkpoint sets one
    (`generation_config.json`), else `DEFAULT_MAX_NEW_TOKENS`. When sampling, `top_p` and
    `top_k` (None: no top-k cut) are always sent: otherwise a checkpoint's own
    `generation_config.json` applies (Qwen2.5-VL's top_k=1 would make a sampled retry greedy).
    `chat_template_kwargs` go to the chat template (e.g. `{"add_vision_id": True}`): in-process
    to `apply_chat_template`, over HTTP as vLLM's `chat_template_kwargs` request field.
    """

    max_new_tokens: Optional[int] = None
    temperature: float = 0.0
    top_p: float = 1.0
    repetition_penalty: float = DEFAULT_REPETITION_PENALTY
    seed: Optional[int] = None
    top_k: Optional[int] = None
    chat_template_kwargs: Optional[dict[str, Any]] = None
    stop: tuple[str, ...] = ()  # stop sequences (compact verdicts stop at "</answer>")

    def __post_init__(self) -> None:
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.repetition_penalty <= 0:
            raise ValueError(f"repetition_penalty must be > 0, got {self.repetition_penalty}")
        if self.top_k is not None and self.top_k < 1:
            raise ValueError(f"top_k must be >= 1 or None (no top-k cut), got {self.top_k}")


@dataclass
class EngineOutput:
    """One completion with its cost."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0


def count_images(conversation: Conversation) -> int:
    return sum(
        1
        for message in conversation
        if isinstance(message.get("content"), list)
        for part in message["content"]
        if part.get("type") == "image"
    )


class Engine(ABC):
    """A model that answers chat conversations. Subclasses implement `generate`.

    `concurrent` is True when `generate` runs its conversations in parallel (HTTP servers), so
    callers should hand it whole rounds of work at once rather than one conversation at a time.
    """

    name: str = "engine"
    concurrent: bool = False

    @abstractmethod
    def generate(
        self, conversations: list[Conversation], config: Optional[GenerationConfig] = None
    ) -> list[EngineOutput]:
        """Return one output per conversation, in order."""

    def close(self) -> None:
        """Release resources (HTTP sessions, GPU memory). Safe to call twice."""
        return None  # A concrete default: engines that hold nothing have nothing to release.

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
