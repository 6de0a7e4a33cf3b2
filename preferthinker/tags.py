"""The tags of predict-then-assess output and how blocks between them are found.

Shared by the profile reader (`preferthinker.profile_parser`), the output parser
(`preferthinker.parser`), the evaluation harness and the GRPO rewards. It imports nothing from
the package, so it can sit below all of them.

Text normalisation also lives here (`normalize_text`): real models write curly quotes, HTML
entities and full-width punctuation around keys, values and tags; these are mapped to their
ASCII forms before anything is read, so a `“Color”：“Pink”` pair is read like `"Color": "Pink"`.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Optional

# The profile tags: `<visual preference profile>` and `<visual non-preference profile>`, any
# case, spaces / underscores / hyphens between the words, "dis-" for "non-".
PROFILE_TAG = re.compile(
    r"<\s*(?P<close>/)?\s*(?:visual[\s_-]*)?(?P<neg>non[\s_-]*|dis[\s_-]*)?preference[\s_-]*profile\s*>",
    re.I,
)
THINK_OPEN = re.compile(r"<\s*think\s*>", re.I)
THINK_CLOSE = re.compile(r"<\s*/\s*think\s*>", re.I)
ANSWER_OPEN = re.compile(r"<\s*answer\s*>", re.I)
ANSWER_CLOSE = re.compile(r"<\s*/\s*answer\s*>", re.I)
# What ends an unclosed <think> block: an answer tag or a second <think>.
THINK_STOP = re.compile(r"<\s*/?\s*answer\s*>|<\s*think\s*>", re.I)
# Any tag of the format (complete ones only).
ANY_TAG = re.compile(
    r"<\s*/?\s*(?:think|answer|(?:visual[\s_-]*)?(?:non[\s_-]*|dis[\s_-]*)?preference[\s_-]*profile)\s*>",
    re.I,
)
# A tag cut off by the token limit or a typo (`</visual preference prof`, `<answer` at the end):
# an opening `<` followed by a tag word and no `>` before the next `<` or the end of the line.
BROKEN_TAG = re.compile(
    r"<\s*/?\s*(?:think|answer|visual|non|dis|preference)[^<>\n]*(?=<|\n|$)", re.I
)


@dataclass
class Block:
    """Where one tagged block sits in a text.

    Attributes:
        start: start of the opening tag.
        content_start, content_end: the content between the tags.
        end: end of the closing tag (or `content_end` when the block is not closed).
        closed: whether its own closing tag was found.
    """

    start: int
    content_start: int
    content_end: int
    end: int
    closed: bool


def block_after(
    text: str,
    open_match: re.Match,
    close_re: Optional[re.Pattern],
    stop_re: Optional[re.Pattern] = None,
) -> Block:
    """The block opened by `open_match`: up to its closing tag, else up to the next `stop_re` tag
    (default: any tag of the format), else to the end of the text.

    Args:
        text: the whole text.
        open_match: the match of the opening tag.
        close_re: the closing tag's pattern (None: the block never closes).
        stop_re: tags that end an unclosed block.

    Example:
        >>> text = "<think>x</think>"
        >>> block_after(text, THINK_OPEN.search(text), THINK_CLOSE).closed
        True
    """
    start = open_match.end()
    next_tag = (stop_re or ANY_TAG).search(text, start)
    if close_re is not None:
        close = close_re.search(text, start)
        if close and (next_tag is None or close.start() <= next_tag.start()):
            return Block(open_match.start(), start, close.start(), close.end(), True)
    end = next_tag.start() if next_tag else len(text)
    return Block(open_match.start(), start, end, end, False)


def answer_blocks(text: str) -> list[Block]:
    """Every `<answer>` block in `text`, in order (closed or not).

    Example:
        >>> [b.closed for b in answer_blocks("<answer>Image A</answer> <answer>Image B")]
        [True, False]
    """
    return [block_after(text, m, ANSWER_CLOSE) for m in ANSWER_OPEN.finditer(text)]


_WHITESPACE_RUN = re.compile(r"\s{2,}|[\t\r\f\v]")


def squeeze_whitespace(text: str) -> str:
    """Each whitespace run becomes one space, or one newline when it holds a newline.

    Nothing in the parser depends on how much whitespace there is, and with single whitespace
    characters the patterns' adjacent `\\s*` cannot backtrack polynomially on degenerate output
    (a model repeating spaces for thousands of tokens).

    Example:
        >>> squeeze_whitespace("a  b\\n\\n c")
        'a b\\nc'
    """
    return _WHITESPACE_RUN.sub(lambda m: "\n" if "\n" in m.group() else " ", text)


# Curly and full-width forms models write, mapped to the ASCII the format uses. Full-width
# letters and digits (U+FF01-U+FF5E) are mapped by offset below.
_PUNCTUATION = str.maketrans(
    {
        "“": '"',
        "”": '"',
        "„": '"',
        "‟": '"',
        "«": '"',
        "»": '"',
        "＂": '"',
        "‘": "'",
        "’": "'",
        "‚": "'",
        "‛": "'",
        "：": ":",
        "，": ",",
        "、": ",",
        "；": ";",
        "（": "(",
        "）": ")",
        "【": "[",
        "】": "]",
        "《": "<",
        "》": ">",
        "〈": "<",
        "〉": ">",
        "。": ".",
        "　": " ",
        "\u00a0": " ",
        "\u200b": "",
        "\ufeff": "",
    }
)
_FULL_WIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)}


def normalize_text(text: str) -> str:
    """ASCII forms of the punctuation around keys, values and tags: HTML entities decoded
    (`&quot;`, `&lt;answer&gt;`), curly quotes straightened, full-width punctuation, letters and
    digits mapped to ASCII, non-breaking spaces made spaces.

    Example:
        >>> normalize_text("“Color”： “Pink”，&lt;answer&gt;Ｉｍａｇｅ Ｂ")
        '"Color": "Pink",<answer>Image B'
    """
    if "&" in text:
        text = html.unescape(text)
    return text.translate(_PUNCTUATION).translate(_FULL_WIDTH)


__all__ = [
    "ANSWER_CLOSE",
    "ANSWER_OPEN",
    "ANY_TAG",
    "BROKEN_TAG",
    "Block",
    "PROFILE_TAG",
    "THINK_CLOSE",
    "THINK_OPEN",
    "THINK_STOP",
    "answer_blocks",
    "block_after",
    "normalize_text",
    "squeeze_whitespace",
]
