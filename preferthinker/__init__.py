"""preferthinker: the PreferThinker assessor (profiles, vocabulary, prompts, parser, engines,
assessor).

Nothing here imports diffusers or TRL; heavy packages are imported where they are used.
"""

from preferthinker.errors import (
    ConfigError,
    EngineError,
    InputError,
    ModelNotFoundError,
    ParseError,
    PTGenError,
    ServerUnreachableError,
)
from preferthinker.profile import ELEMENT_LABELS, ELEMENTS, Profile, UserProfile
from preferthinker.results import Comparison, ElementScore, ParsedOutput, ProfilePrediction, Usage

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "EngineError",
    "InputError",
    "ModelNotFoundError",
    "ParseError",
    "PTGenError",
    "ServerUnreachableError",
    "ELEMENT_LABELS",
    "ELEMENTS",
    "Profile",
    "UserProfile",
    "Comparison",
    "ElementScore",
    "ParsedOutput",
    "ProfilePrediction",
    "Usage",
]
