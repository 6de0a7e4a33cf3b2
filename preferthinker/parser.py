"""A tolerant parser for predict-then-assess output, and the writer of the canonical format.

The authors' format (tags, quoted keys, no braces; each profile's keys are on one line, wrapped
here):

    <visual preference profile>
    "Art Styles": "Pixel Art", "Color": "Pink", "Artistic Medium": "...", "Saturation": "...",
    "Detail": "..."
    </visual preference profile>
    <visual non-preference profile> ...same keys... </visual non-preference profile>
    <think> 1. Artistic style: Image A(2) - rationale; Image B(5) - rationale ... 5. Detail: ...
    Total: Image A: total_score=2+1+2+3+3=11  Image B: total_score=5+5+4+4+4=22 </think>
    <answer>Image B</answer>

Real models drift from it, so every part is found independently: key spellings vary, tags go
missing or unclosed, profiles come as JSON, scores as "Image A (2/5)" or "Image A: 2", the answer
as "B", "**Image B**" or "Image B is better". Curly quotes, HTML entities and full-width
punctuation are mapped to ASCII first (`tags.normalize_text`).

Reconciliation rules (recorded in `ParsedOutput.issues` whenever they fire):
- Totals: when all five elements carry both scores, the per-element sums win over stated totals
  that disagree with them (arithmetic slips are the common failure). With fewer scored elements,
  the stated totals win when present, else the partial sums are used.
- Answer: the explicit answer (the LAST `<answer>` block, the rule of `read_answer`, else a clear
  answer sentence after the reasoning) wins over the totals, because it is what the authors'
  evaluation and accuracy reward read; a contradiction
  with the totals is recorded and makes the output incomplete. With no explicit answer the
  higher total decides; a tie leaves the answer undecided (None).
- Scores outside 0-5 are clamped, fractions rounded, "x/10" rescaled to 0-5; each repair is
  recorded and makes the output incomplete (it did not follow the format).

`parse_output` raises `ParseError` (and no other exception type) when nothing usable is present.
"""

from __future__ import annotations

import re
from typing import Any, Optional, Sequence

from preferthinker.errors import ParseError
from preferthinker.profile import ELEMENT_NAMES, ELEMENTS, UserProfile, normalize_element_key
from preferthinker.profile_parser import DROPPED_FIELD, EMPTY_TERMS, find_profiles, parse_profiles
from preferthinker.results import ElementScore, ParsedOutput
from preferthinker.tags import (
    THINK_CLOSE,
    THINK_OPEN,
    THINK_STOP,
    Block,
    answer_blocks,
    block_after,
    normalize_text,
    squeeze_whitespace,
)

MIN_SCORE = 0
MAX_SCORE = 5

# ---------------------------------------------------------------------------------------------
# The answer

PROTOCOLS = ("ptgen", "authors")

_STRIP_MARKUP = re.compile(r"<\s*/?\s*answer\s*>|[*_`#\"]", re.I)
_LETTER = r"(?:image|img|picture|candidate|option)\s*[-#]?\s*(?P<L>[ab])(?![a-z0-9])"
_ANSWER_WHOLE = re.compile(
    r"^(?:(?:the\s+)?(?:final\s+)?(?:answer|choice|winner|verdict|preference)\s*(?:is)?\s*[:=-]?\s*)?"
    r"(?:(?:image|img|picture|candidate|option)\s*[-#]?\s*)?[(\[]?(?P<L>[ab])[)\]]?\s*[.!]?$",
    re.I,
)
_ANSWER_EXPLICIT = re.compile(
    r"(?<![a-z-])(?:answer|choice|winner|verdict|prefer(?:s|red|ence)?|choose|chooses|select|pick)"
    r"(?:\s+image)?\s*(?:is|would\s+be|will\s+be|:|=|-|for|the)?\s*"
    r"(?:is|would\s+be|:|=|-|for|the)?\s*" + _LETTER,
    re.I,
)
_ANSWER_LETTER_AFTER_LABEL = re.compile(r"\banswer\s*[:=]\s*[(\[]?(?P<L>[AB])(?![A-Za-z0-9])")
_ANSWER_BETTER = re.compile(
    _LETTER + r"\s*(?:is|was|would\s+be|seems|appears|looks|wins|,)?\s*(?:clearly\s+|much\s+|"
    r"slightly\s+|the\s+|a\s+|overall\s+)*(?:better|preferred|winner|wins|superior|stronger|"
    r"more\s+(?:aligned|suitable|appealing|consistent|likely|preferred))",
    re.I,
)
# `\boxed{B}` (maths-tuned models) and JSON answers (`{"winner": "B"}`, `{"answer": "Image A"}`).
_ANSWER_BOXED = re.compile(r"\\boxed\s*\{\s*(?:\\text\s*\{\s*)?(?:image\s*)?(?P<L>[AB])\s*\}", re.I)
_ANSWER_JSON = re.compile(
    r"[{,]\s*\"(?:answer|winner|choice|preferred|preferred_image|preference)\"\s*:\s*"
    r"\"\s*(?:image\s*)?(?P<L>[AB])\s*\"\s*[,}]",
    re.I,
)
_MENTION = re.compile(_LETTER, re.I)
# A negation in the clause before a match ("would not prefer Image A") voids the match.
# A bare "No," retracts what came before ("Image B is better? No, Image A is better"): it negates
# nothing after it.
_NEGATION = re.compile(
    r"\b(?:not|never|no(?!\s*[,.!:;])|neither|nor|cannot|unlikely)\b|n't\b", re.I
)
# "rather than Image A", "Image B over Image A": the named image is the one NOT chosen.
# "The least preferred is Image A": the phrase names the image not chosen.
_CONTRAST = re.compile(r"\b(?:rather\s+than|instead\s+of|than|over|least|less)\s*$", re.I)
# Words that speak against the image a lone mention names ("I would reject Image A"): such a
# mention is no verdict for it.
_AGAINST = re.compile(
    r"rather\s+than|instead\s+of|\b(?:reject\w*|dislike\w*|worse|worst|inferior|fail\w*|lacks?|"
    r"lacking|poor\w*|weak\w*|less|avoid\w*|mismatch\w*|wrong|bad|unlike\w*|opposite|"
    r"los(?:e|es|er|ing)|lower|least|non-?prefer\w*|hate\w*|other|if|only|exclud\w*|"
    r"eliminat\w*|farther)\b",
    re.I,
)
_CLAUSE_START = re.compile(r"[.!?;\n]|\bbut\b|\bhowever\b|\bwhereas\b|\bwhile\b", re.I)


# "Image A is not preferred", "Image A isn't": a negation right after the named image.
_NEGATED_AFTER = re.compile(
    r"\s*(?:(?:is|was|would|does|did|should|could|will|has)(?:\s+be)?\s*(?:not|n't|never)\b"
    r"|(?:isn't|wasn't|doesn't|didn't|won't|wouldn't)\b)",
    re.I,
)


def _negated(text: str, start: int, end: Optional[int] = None) -> bool:
    """Whether the clause that `text[start:]` begins in holds a negation before `start`, the
    words just before it set it aside ("rather than Image A"), or a negation follows the match
    at `end` ("Answer: Image A is not preferred")."""
    if end is not None and _NEGATED_AFTER.match(text, end):
        return True
    if end is not None:
        # "Answer: Image A is worse than Image B", "Image A is more aligned with the disliked
        # profile": words against the image before the clause or the next image mention ends.
        stop = _CLAUSE_START.search(text, end)
        stop_at = stop.start() if stop else len(text)
        if text.startswith("?", stop_at):  # "The user prefers Image A?" asks, it does not answer
            return True
        if re.match(r"(?:\.{2,}|\u2026)\s*not\b", text[stop_at:], re.I):  # "better... not"
            return True
        mention = _MENTION.search(text, end, stop_at)
        if _AGAINST.search(text, end, mention.start() if mention else stop_at):
            return True
    clause_start = 0
    for clause_start_match in _CLAUSE_START.finditer(text, 0, start):
        clause_start = clause_start_match.end()
    if _CONTRAST.search(text[max(clause_start, start - 20) : start]):
        return True
    return bool(_NEGATION.search(text, clause_start, start))


def parse_answer(text: Any, mentions: bool = True) -> Optional[str]:
    """Read "A" or "B" from an answer: "B", "Image B", "**Image B**", "Answer: B",
    "Image B is better".

    Negated statements ("The user would not prefer Image A") are not read as an answer; text that
    only names Image 1/2 or "the first/second image" is undecided (with the template's vision ids
    "Picture N" counts every image, references included, so the number is not the candidate).

    Args:
        text: the answer block or a short answer sentence.
        mentions: when no answer phrase is found, take the one image the text names (right
            inside an `<answer>` block; off for free text, where a lone mention is no verdict).

    Returns:
        "A", "B", or None when no single answer can be read.

    Example:
        >>> parse_answer("image b is better"), parse_answer("Answer: A"), parse_answer("unsure")
        ('B', 'A', None)
    """
    if not isinstance(text, str):
        return None
    text = squeeze_whitespace(normalize_text(text))
    for pattern in (_ANSWER_BOXED, _ANSWER_JSON):
        found = {m.group("L").upper() for m in pattern.finditer(text)}
        if len(found) == 1:
            return found.pop()
    clean = _STRIP_MARKUP.sub("", text).strip()
    if not clean:
        return None
    match = _ANSWER_WHOLE.match(clean)
    if match:
        return match.group("L").upper()
    for pattern in (_ANSWER_EXPLICIT, _ANSWER_LETTER_AFTER_LABEL, _ANSWER_BETTER):
        found = {
            m.group("L").upper()
            for m in pattern.finditer(clean)
            if not _negated(clean, m.start(), m.end() if pattern is _ANSWER_BETTER else m.end("L"))
        }
        if len(found) == 1:
            return found.pop()
    if not mentions or _NEGATION.search(clean) or _AGAINST.search(clean):
        return None
    if re.search(r"\bno\b", clean, re.I):  # "Image A? No."
        return None
    mentioned = list(_MENTION.finditer(clean))
    if len({m.group("L").upper() for m in mentioned}) != 1:
        return None
    # Only a block that starts with the image's name and goes on with a separator, not a
    # sentence about it ("Image B - pixel art" is B; "Image A is too dark", "Dispreferred:
    # Image A" say nothing for A).
    first = mentioned[0]
    if clean[: first.start()].strip(" ,.:;!()[]-") or not re.match(
        r"\s*(?:$|[,.:;!()\[\]-]|(?:because|since|as)\b)", clean[first.end() :], re.I
    ):
        return None
    return first.group("L").upper()


# The authors' evaluation reads exactly this (eval_PreferThinker.py): literal tags, any content.
_AUTHORS_ANSWER_BLOCK = re.compile(r"<answer>(.*?)</answer>", re.S)
_AUTHORS_ANSWERS = {"Image A": "A", "Image B": "B"}


def read_answer(text: Any, protocol: str = "ptgen") -> Optional[str]:
    """THE answer of a model output: what `parse_output`, `ptgen eval` and the GRPO accuracy
    reward all read. The rule, written once:

    - The answer is the LAST `<answer>...</answer>` block of the output (a model that corrects
      itself writes the correction last; the authors' evaluation reads the last block too).
    - protocol "ptgen" (tolerant): any tag case or spacing, an unclosed last block counts, and
      its content is read by `parse_answer` ("B", "**Image B**", "Image B is better", ...).
    - protocol "authors" (their eval script, to compare with the paper): the last block with
      literal `<answer>` / `</answer>` tags, its content stripped, must be exactly "Image A" or
      "Image B" (case-sensitive); anything else is no answer (counted wrong).
    - No block: None. (`parse_output` then looks for an answer sentence and the totals; those
      fallbacks are its own and are recorded in `ParsedOutput.issues`.)

    Args:
        text: the model output.
        protocol: "ptgen" or "authors".

    Returns:
        "A", "B" or None.

    Example:
        >>> out = "<answer>Image A</answer> wait, no: <answer> image b </answer>"
        >>> read_answer(out), read_answer(out, "authors")
        ('B', None)
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    if not isinstance(text, str):
        return None
    if protocol == "authors":
        blocks = _AUTHORS_ANSWER_BLOCK.findall(text)
        return _AUTHORS_ANSWERS.get(blocks[-1].strip()) if blocks else None
    text = squeeze_whitespace(normalize_text(text))
    blocks = answer_blocks(text)
    if not blocks or _format_line(text, blocks):
        return None
    return parse_answer(text[blocks[-1].content_start : blocks[-1].content_end])


def _format_line(text: str, blocks: Sequence[Block]) -> bool:
    """Whether the last two answer blocks are the format line echoed ("`<answer>Image A</answer>`
    or `<answer>Image B</answer>`"): a choice offered, not made."""
    if len(blocks) < 2:
        return False
    between = text[blocks[-2].end : blocks[-1].start]
    return re.fullmatch(r"[\s`'\"*]*or[\s`'\"*]*", between, re.I) is not None


# ---------------------------------------------------------------------------------------------
# Scores and totals

# An assessment header: "1. Artistic style:", "**Color**:", "Detail -" at a line start, or a
# numbered one anywhere (the authors write all five on one line). The name is checked afterwards.
_HEADER_RE = re.compile(
    r"(?:(?:^|\n)[ \t>#*_-]*(?:\d+[ \t]*[.)][ \t]*[*_]*)?"
    r"|(?<![\w.])(?P<num>\d)[ \t]*[.)][ \t]*[*_]*)"
    # No two unbounded runs of the same characters may touch (quadratic backtracking on "____").
    r"(?P<name>[A-Za-z\u4e00-\u9fff][A-Za-z\u4e00-\u9fff _]{0,30}?(?:\(s\))?)[*_]*"
    r"(?:[ \t]*\([^()\n]{0,80}\)[*_]*)?"
    r"\s*(?::|\s-\s|\s–\s)",
)
# A score cell of a markdown table: "2", "2/5", "**4**".
_CELL_SCORE = re.compile(r"[*_\s]*(?P<num>-?\d+(?:\.\d+)?)(?:\s*/\s*(?P<den>\d+(?:\.\d+)?))?")
_TOTAL_RE = re.compile(
    r"(?:(?i:image|img)\s*[AB]\s*(?:'s)?\s*)?(?i:\b(?:total|sum|overall)(?:[ \t_]*scores?)?)"
    r"[*_]*\s*(?:[:=]|\(|is\b)"
)
_SCORE_RE = re.compile(
    r"(?:(?i:\b(?:image|img|picture|candidate)\s*(?P<l1>[ab]))|(?<![A-Za-z])(?P<l2>[AB])(?=\s*[(:=]))"
    r"(?![A-Za-z0-9])[*_]*\s*(?:[(\[:=–]|-(?!\d))*\s*"
    r"(?i:(?:score[sd]?|gets?|receives?|rated|earns?|with|a|of|is|total_score)\s*[:=]?\s*){0,3}"
    r"[(\[]?\s*(?P<num>-?\d+(?:\.\d+)?)(?:\s*(?:/|(?i:out\s+of))\s*(?P<den>\d+(?:\.\d+)?))?"
    r"(?![\d.]*\d)(?![A-Za-z])\s*[)\]]?"
)
_LETTER_MENTION = re.compile(
    r"(?i:\b(?:image|img|picture|candidate)\s*(?P<l1>[ab]))(?![A-Za-z0-9])|(?<![A-Za-z])(?P<l2>[AB])(?![A-Za-z0-9])"
)


def _letter(match: re.Match) -> str:
    return (match.group("l1") or match.group("l2")).upper()


def _score_value(match: re.Match, element: str, letter: str, issues: list[str]) -> int:
    """The score as an int in 0-5; every repair is recorded in `issues` (and `_REPAIRED`)."""
    value = float(match.group("num"))
    den = match.group("den")
    label = f"{ELEMENT_NAMES.get(element, element)} score of Image {letter}"
    if den is not None and float(den) not in (0.0, float(MAX_SCORE)):
        scaled = value * MAX_SCORE / float(den)
        issues.append(
            f"{label} given as {match.group('num')}/{den}; rescaled to 0-{MAX_SCORE}{_REPAIRED}"
        )
        value = scaled
    if value != int(value):
        issues.append(f"{label} {value:g} is not a whole number; rounded{_REPAIRED}")
    score = int(round(value))
    if score < MIN_SCORE or score > MAX_SCORE:
        clamped = min(max(score, MIN_SCORE), MAX_SCORE)
        issues.append(
            f"{label} {score} is outside {MIN_SCORE}-{MAX_SCORE}; clamped to {clamped}{_REPAIRED}"
        )
        score = clamped
    return score


# Suffix of the issues that repaired a score: such an output did not follow the format.
_REPAIRED = " (score repaired)"


_RATIONALE_EDGE = " \t\n-–—:;,|*"
_BRACKETS = {")": "(", "]": "["}


def _clean_rationale(text: str) -> str:
    """The rationale without the separators around it; a closing bracket is kept when the
    rationale opened it ("hue 282 deg (Purple)"), dropped when it closes the score's own
    bracket ("Image A (2) - ...)")."""
    text = re.sub(r"\s+", " ", text).strip(_RATIONALE_EDGE)
    while text and text[-1] in _BRACKETS and text.count(text[-1]) > text.count(_BRACKETS[text[-1]]):
        text = text[:-1].strip(_RATIONALE_EDGE)
    return text.lstrip(")]").strip(_RATIONALE_EDGE)


def _parse_segment(segment: str, element: str, issues: list[str]) -> Optional[ElementScore]:
    """Scores and rationales of one element from its assessment text."""
    first: dict[str, re.Match] = {}
    for match in _SCORE_RE.finditer(segment):
        first.setdefault(_letter(match), match)
    if not first:
        return None
    result = ElementScore(element=element)
    ordered = sorted(first.items(), key=lambda kv: kv[1].start())
    for i, (letter, match) in enumerate(ordered):
        end = ordered[i + 1][1].start() if i + 1 < len(ordered) else len(segment)
        rationale = _clean_rationale(segment[match.end() : end])
        score = _score_value(match, element, letter, issues)
        if letter == "A":
            result.score_a, result.rationale_a = score, rationale
        else:
            result.score_b, result.rationale_b = score, rationale
    return result


def _stated_total(part: str) -> Optional[int]:
    """The total in "Image A: total_score=2+1+2+3+3=11" / "A = 11" / "Image A: 2+1+2" parts."""
    part = re.sub(r"/\s*\d+", "", part)
    if "=" in part:
        after = re.search(r"-?\d+", part.rsplit("=", 1)[1])
        if after:
            return int(after.group())
    expression = re.search(r"\d+(?:\s*\+\s*\d+)+", part)
    if expression:
        return sum(int(n) for n in re.findall(r"\d+", expression.group()))
    number = re.search(r"-?\d+(?:\.\d+)?", part)
    return int(round(float(number.group()))) if number else None


def _parse_totals(region: str) -> dict[str, int]:
    mentions = [m for m in _LETTER_MENTION.finditer(region)]
    totals: dict[str, int] = {}
    for i, match in enumerate(mentions):
        letter = _letter(match)
        if letter in totals:
            continue
        end = mentions[i + 1].start() if i + 1 < len(mentions) else len(region)
        value = _stated_total(region[match.end() : end])
        if value is not None:
            totals[letter] = value
    return totals


def _parse_assessment(region: str, issues: list[str]) -> tuple[list[ElementScore], dict[str, int]]:
    """Per-element scores (in the order written) and the stated totals from the reasoning text."""
    headers = [m for m in _HEADER_RE.finditer(region) if normalize_element_key(m.group("name"))]
    total_from = headers[-1].end() if headers else 0
    total = _TOTAL_RE.search(region, total_from)
    total_start = total.start() if total else len(region)
    headers = [h for h in headers if h.start() < total_start]
    # An in-line number that is not the element's position ("Image B gets a 5. Color: ...") is a
    # score of the previous element, not the header's numbering: leave it in that segment.
    starts = [
        h.start("name") if h.group("num") and int(h.group("num")) != i + 1 else h.start()
        for i, h in enumerate(headers)
    ]
    scores: list[ElementScore] = []
    seen: set[str] = set()
    for i, header in enumerate(headers):
        element = normalize_element_key(header.group("name"))
        end = starts[i + 1] if i + 1 < len(headers) else total_start
        if element in seen:
            issues.append(f"{ELEMENT_NAMES[element]} assessed twice; the first one is kept")
            continue
        score = _parse_segment(region[header.end() : end], element, issues)
        if score is not None:
            seen.add(element)
            scores.append(score)
    totals = _parse_totals(region[total_start:]) if total else {}
    if not scores:
        scores, table_totals = _parse_table(region, issues)
        totals = totals or table_totals
    return scores, totals


def _parse_table(region: str, issues: list[str]) -> tuple[list[ElementScore], dict[str, int]]:
    """Scores written as a markdown table: | Element | Image A | Image B | (rationale columns
    ignored)."""
    columns: dict[str, int] = {}
    scores: list[ElementScore] = []
    totals: dict[str, int] = {}
    for line in region.splitlines():
        if not line.strip().startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not columns:
            for j, cell in enumerate(cells[1:], start=1):
                letter = re.fullmatch(
                    r"[*_ ]*(?:(?:image|img|candidate)\s*)?([ab])\b.*", cell, re.I
                )
                if letter:
                    columns.setdefault(letter.group(1).upper(), j)
            if set(columns) != {"A", "B"}:
                columns = {}
            continue
        label = re.sub(r"\([^)]*\)|[*_]", "", cells[0]).strip()
        element = normalize_element_key(label)
        values = {}
        for letter, j in columns.items():
            match = _CELL_SCORE.match(cells[j]) if j < len(cells) else None
            values[letter] = match
        if element is not None and element not in {s.element for s in scores}:
            score = ElementScore(element=element)
            for letter, match in values.items():
                if match:
                    value = _score_value(match, element, letter, issues)
                    if letter == "A":
                        score.score_a = value
                    else:
                        score.score_b = value
            if score.score_a is not None or score.score_b is not None:
                scores.append(score)
        elif re.match(r"(?i)(?:total|sum|overall)", label):
            totals = {k: int(round(float(m.group("num")))) for k, m in values.items() if m}
    return scores, totals


# ---------------------------------------------------------------------------------------------
# The whole output


def _winner(total_a: Optional[int], total_b: Optional[int]) -> Optional[str]:
    if total_a is None or total_b is None or total_a == total_b:
        return None
    return "A" if total_a > total_b else "B"


def _strip_spans(text: str, spans: Sequence[tuple[int, int]]) -> str:
    pieces, last = [], 0
    for start, end in sorted(spans):
        if start >= last:
            pieces.append(text[last:start])
            pieces.append("\n")
            last = end
    pieces.append(text[last:])
    return "".join(pieces)


def parse_output(text: str, expect_profile: bool = True) -> ParsedOutput:
    """Parse one predict-then-assess output (or an assessment-only one) into a `ParsedOutput`.

    Args:
        text: the model's output.
        expect_profile: True for full predict-then-assess output (the profiles are part of a
            complete answer); False for assess-with-a-known-profile output, which is complete
            without profiles (any profile present is still read).

    Returns:
        The recovered parts, the final `answer` (see the module docstring for the rules),
        `issues` (each repair or inconsistency, in words) and `complete`.

    Raises:
        ParseError: when the output holds no profile, no score, no total and no answer.

    Example:
        >>> parse_output("<think>...</think><answer>Image B</answer>", expect_profile=False).answer
        'B'
    """
    if not isinstance(text, str):
        raise ParseError(f"expected model output text, got {type(text).__name__}", str(text)[:200])
    if not text.strip():
        raise ParseError("empty model output", text)
    try:
        return _parse_output(text, expect_profile)
    except ParseError:
        raise
    except Exception as error:  # the contract: malformed text never escapes as another type
        raise ParseError(
            f"unparseable model output ({type(error).__name__}: {error})", text
        ) from error


def _think_blocks(text: str, issues: list[str]) -> list[Block]:
    """Every `<think>` block, in order (a leading empty one, then the real one, is common)."""
    blocks: list[Block] = []
    for match in THINK_OPEN.finditer(text):
        if blocks and match.start() < blocks[-1].end:
            continue
        # Profiles written inside <think> do not end it; only </think> or <answer> do.
        block = block_after(text, match, THINK_CLOSE, THINK_STOP)
        if not block.closed:
            issues.append("the <think> block is not closed")
        blocks.append(block)
    return blocks


def _parse_output(text: str, expect_profile: bool) -> ParsedOutput:
    issues: list[str] = []
    consistent = True
    original, text = text, squeeze_whitespace(normalize_text(text))

    # 1. Profiles.
    profile, profile_blocks = find_profiles(text, issues)
    if profile is not None and profile.liked.is_empty() and profile.disliked.is_empty():
        issues.append("the profile blocks hold no recognisable element")
        profile = None

    # 2. The answer: the last <answer> block (the rule of `read_answer`).
    stated: Optional[str] = None
    blocks = answer_blocks(text)
    answer_block = blocks[-1] if blocks else None
    if answer_block is not None:
        if not answer_block.closed:
            issues.append("the <answer> block is not closed")
        if len(blocks) > 1:
            issues.append(f"{len(blocks)} <answer> blocks; the last one is read")
        answer_text = text[answer_block.content_start : answer_block.content_end]
        stated = None if _format_line(text, blocks) else parse_answer(answer_text)
        if stated is None:
            issues.append(f"no A/B answer in the <answer> block: {answer_text.strip()[:60]!r}")

    # 3. The reasoning: the <think> blocks, else (or when they hold no scores, e.g. a leading
    #    <think> of a reasoning model before the format) everything that is not a profile or
    #    an answer.
    profile_spans = [(b.start, b.end) for b in profile_blocks]
    answer_spans = [(b.start, b.end) for b in blocks]
    thinks = _think_blocks(text, issues)
    scores: list[ElementScore] = []
    stated_totals: dict[str, int] = {}
    tail_start: Optional[int] = None
    if thinks:
        pieces = []
        for think in thinks:
            inner = [
                (
                    max(a, think.content_start) - think.content_start,
                    min(b, think.content_end) - think.content_start,
                )
                for a, b in profile_spans
                if a < think.content_end and b > think.content_start
            ]
            pieces.append(_strip_spans(text[think.content_start : think.content_end], inner))
        region = "\n".join(pieces)
        tail_start = thinks[-1].end
        think_issues: list[str] = []
        scores, stated_totals = _parse_assessment(region, think_issues)
        if scores or stated_totals:
            issues.extend(think_issues)
    if not scores and not stated_totals:
        region = _strip_spans(text, profile_spans + answer_spans)
        region = THINK_OPEN.sub("\n", THINK_CLOSE.sub("\n", region))
        scores, stated_totals = _parse_assessment(region, issues)
        if scores or stated_totals:
            tail_start = None
    # 4. No answer block: a clear answer sentence after the reasoning (or anywhere when there is
    #    no reasoning to confuse it with).
    if answer_block is None:
        if tail_start is not None:
            tail = text[tail_start:]
        elif scores or stated_totals:
            tail = _after_last_score(region)
        else:
            tail = _strip_spans(text, [(b.start, b.end) for b in profile_blocks])
        stated = parse_answer(tail[-2000:], mentions=False) if tail.strip() else None
        if stated is not None:
            issues.append("no <answer> block; the answer was read from the text")

    # 5. Totals: per-element sums win when all five elements are scored.
    full = len(scores) == len(ELEMENTS) and all(
        s.score_a is not None and s.score_b is not None for s in scores
    )
    total_a = total_b = None
    sums = {
        "A": sum(s.score_a for s in scores if s.score_a is not None),
        "B": sum(s.score_b for s in scores if s.score_b is not None),
    }
    if full:
        total_a, total_b = sums["A"], sums["B"]
        if not stated_totals:
            issues.append("no stated totals; the per-element sums are used")
        for letter, total in (("A", total_a), ("B", total_b)):
            if letter in stated_totals and stated_totals[letter] != total:
                consistent = False
                issues.append(
                    f"stated total of Image {letter} ({stated_totals[letter]}) disagrees with the "
                    f"per-element sum ({total}); the sum is used"
                )
    elif stated_totals:
        total_a, total_b = stated_totals.get("A"), stated_totals.get("B")
    elif scores:
        total_a, total_b = sums["A"], sums["B"]
        issues.append(f"no stated totals; summed the {len(scores)} scored element(s)")
    if scores and not full:
        missing = [ELEMENT_NAMES[e] for e in ELEMENTS if e not in {s.element for s in scores}]
        partial = [
            ELEMENT_NAMES[s.element] for s in scores if s.score_a is None or s.score_b is None
        ]
        if missing:
            issues.append(f"no scores for: {', '.join(missing)}")
        if partial:
            issues.append(f"only one image scored for: {', '.join(partial)}")

    # 6. The answer: the explicit one wins; a contradiction with the totals is recorded.
    by_totals = _winner(total_a, total_b)
    answer = stated
    if stated is not None and by_totals is not None and stated != by_totals:
        consistent = False
        issues.append(
            f"the stated answer Image {stated} contradicts the totals "
            f"(A {total_a} vs B {total_b}); the stated answer is kept"
        )
    if stated is None and by_totals is not None:
        answer = by_totals
        issues.append(f"no readable answer; Image {by_totals} taken from the totals")
    elif stated is None and total_a is not None and total_a == total_b:
        issues.append(f"no readable answer and the totals tie ({total_a}); undecided")

    if profile is None and not scores and not stated_totals and answer is None:
        raise ParseError(
            "no profile, scores, totals or answer found in the model output (expected "
            "<visual preference profile>, <think> with per-element scores, "
            "<answer>Image A|B</answer>)",
            original,
        )

    has_profile = profile is not None and not profile.liked.is_empty()
    complete = (
        (has_profile or not expect_profile)
        and full
        and set(stated_totals) == {"A", "B"}
        and stated is not None
        and consistent
        and not any(issue.endswith((_REPAIRED, DROPPED_FIELD)) for issue in issues)
    )
    return ParsedOutput(
        profile=profile,
        scores=scores,
        total_a=total_a,
        total_b=total_b,
        answer=answer,
        stated_answer=stated,
        issues=issues,
        complete=complete,
    )


def _after_last_score(region: str) -> str:
    """The text after the totals / last score, where an answer sentence would follow."""
    totals = list(_TOTAL_RE.finditer(region))
    total = totals[-1] if totals else None
    start = total.end() if total else 0
    # Skip past the totals' own line so "Image A: 11 Image B: 22" is not read as an answer.
    newline = region.find("\n", start)
    scores = list(_SCORE_RE.finditer(region, start))
    last_score = scores[-1] if scores else None
    cut = max(newline if newline >= 0 else len(region), last_score.end() if last_score else 0)
    return region[cut:]


# ---------------------------------------------------------------------------------------------
# Writing the canonical format


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", str(text or "")).strip()


def format_output(
    profile: Optional[UserProfile],
    scores: Sequence[ElementScore],
    answer: Optional[str] = None,
) -> str:
    """Write the canonical predict-then-assess text (the authors' format).

    Used for CoT training targets, the analytic engine, the system prompt's examples and tests;
    `parse_output(format_output(...))` gives the same profile, scores, totals and answer back.

    Args:
        profile: the user profile; None writes the assessment only (known-profile output).
        scores: one `ElementScore` per element, in the order to write, each with both scores 0-5.
            Rationales are written on one line.
        answer: "A"/"B" (or "Image A"/"Image B"); None takes the higher total.

    Returns:
        The text, ending with `<answer>Image X</answer>`.

    Raises:
        ValueError: for an unknown element, a missing or out-of-range score, a bad answer, or
            answer None with tied totals.

    Example:
        >>> s = [ElementScore("color", 1, 4, "grey", "pink")]
        >>> format_output(None, s, "B").splitlines()[-1]
        '<answer>Image B</answer>'
    """
    lines: list[str] = []
    if profile is not None:
        lines.append(profile.to_tag_text())
    steps, values_a, values_b = [], [], []
    for number, score in enumerate(scores, start=1):
        element = normalize_element_key(score.element) or score.element
        if element not in ELEMENTS:
            raise ValueError(
                f"ElementScore.element must be one of {', '.join(ELEMENTS)}, got {score.element!r}"
            )
        parts = []
        for letter, value, rationale in (
            ("A", score.score_a, score.rationale_a),
            ("B", score.score_b, score.rationale_b),
        ):
            if (
                not isinstance(value, int)
                or isinstance(value, bool)
                or not MIN_SCORE <= value <= MAX_SCORE
            ):
                raise ValueError(
                    f"score_{letter.lower()} of {element} must be an int in "
                    f"{MIN_SCORE}-{MAX_SCORE}, got {value!r}"
                )
            rationale = _one_line(rationale)
            parts.append(f"Image {letter}({value})" + (f" - {rationale}" if rationale else ""))
        values_a.append(score.score_a)
        values_b.append(score.score_b)
        steps.append(f"{number}. {ELEMENT_NAMES[element]}: {'; '.join(parts)}")
    total_a, total_b = sum(values_a), sum(values_b)
    if answer is None:
        answer = _winner(total_a, total_b)
        if answer is None:
            raise ValueError(
                f"answer is None and the totals tie ({total_a}); pass answer='A' or 'B'"
            )
    letter = parse_answer(answer) if isinstance(answer, str) else None
    if letter is None:
        raise ValueError(f"answer must be 'A' or 'B' (or 'Image A'/'Image B'), got {answer!r}")
    if steps:
        expr_a = "+".join(map(str, values_a))
        expr_b = "+".join(map(str, values_b))
        steps.append(
            f"Total: Image A: total_score={expr_a}={total_a}  "
            f"Image B: total_score={expr_b}={total_b}"
        )
    lines.append("<think>\n" + "\n".join(steps) + "\n</think>")
    lines.append(f"<answer>Image {letter}</answer>")
    return "\n".join(lines)


__all__ = [
    "EMPTY_TERMS",
    "MAX_SCORE",
    "MIN_SCORE",
    "PROTOCOLS",
    "format_output",
    "normalize_element_key",
    "parse_answer",
    "parse_output",
    "parse_profiles",
    "read_answer",
]
