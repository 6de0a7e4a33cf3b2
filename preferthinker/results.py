"""Result types shared by the parser, the assessor and everything that reports on them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Optional

from preferthinker.profile import UserProfile

Answer = Literal["A", "B"]


@dataclass
class ElementScore:
    """One line of the assessment: the element, both scores (0-5) and the rationales."""

    element: str
    score_a: Optional[int] = None
    score_b: Optional[int] = None
    rationale_a: str = ""
    rationale_b: str = ""


@dataclass
class ParsedOutput:
    """Everything the parser recovered from one model output.

    `answer` is the final decision after reconciling the stated answer with the scores
    (see `issues` for any disagreement that was resolved and how). `complete` is True when every
    part of the predict-then-assess format was present and consistent.
    """

    profile: Optional[UserProfile] = None
    scores: list[ElementScore] = field(default_factory=list)
    total_a: Optional[int] = None
    total_b: Optional[int] = None
    answer: Optional[Answer] = None
    stated_answer: Optional[Answer] = None
    issues: list[str] = field(default_factory=list)
    complete: bool = False

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["profile"] = self.profile.to_dict() if self.profile else None
        return data


@dataclass
class Usage:
    """Cost of one or more engine calls."""

    calls: int = 0
    images: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0

    def add(self, other: "Usage") -> "Usage":
        self.calls += other.calls
        self.images += other.images
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.seconds += other.seconds
        return self


@dataclass
class ProfilePrediction:
    """A predicted user profile. status: "ok" (complete), "partial" (parsed with issues) or
    "failed"."""

    profile: UserProfile
    status: Literal["ok", "partial", "failed"]
    raw_text: str
    issues: list[str] = field(default_factory=list)
    attempts: int = 1
    usage: Usage = field(default_factory=Usage)

    def to_dict(self) -> dict[str, Any]:
        return {
            "profile": self.profile.to_dict(),
            "status": self.status,
            "raw_text": self.raw_text,
            "issues": list(self.issues),
            "attempts": self.attempts,
            "usage": asdict(self.usage),
        }


@dataclass
class Comparison:
    """The judgement of one candidate pair.

    `winner` is "A", "B", or None when the assessor stayed undecided (unparseable output after all
    retries, or the two orders disagreed under debiasing). `parsed` holds one entry per judged
    order: [A-vs-B] or, with order-swap debiasing, [A-vs-B, B-vs-A] (the second already mapped
    back so that its scores and answer refer to the caller's A and B).
    """

    winner: Optional[Answer]
    parsed: list[ParsedOutput] = field(default_factory=list)
    raw_texts: list[str] = field(default_factory=list)
    profile: Optional[UserProfile] = None
    swap_agrees: Optional[bool] = None
    issues: list[str] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)

    @property
    def undecided(self) -> bool:
        return self.winner is None

    @property
    def scores(self) -> list[ElementScore]:
        return self.parsed[0].scores if self.parsed else []

    def to_dict(self) -> dict[str, Any]:
        return {
            "winner": self.winner,
            "swap_agrees": self.swap_agrees,
            "profile": self.profile.to_dict() if self.profile else None,
            "parsed": [p.to_dict() for p in self.parsed],
            "raw_texts": list(self.raw_texts),
            "issues": list(self.issues),
            "usage": asdict(self.usage),
        }
