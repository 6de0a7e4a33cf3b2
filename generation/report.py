"""Run folders: candidate PNGs with metadata, `result.json`, and a self-contained `report.html`.

A run never overwrites an earlier one: without `out`, each run gets a new numbered folder under
the output root (`ptgen-runs/run-001`, `run-002`, ...); with `out`, the folder must be empty
unless `force` is given. With `force` nothing is deleted: the new run writes into a fresh
staging folder next to `out` (`out.ptgen-new-<time>`), and only when it has finished does
`finish_run_dir` rename the old `out` to `out.ptgen-old-<time>` (every file in it kept) and the
staging folder to `out`. A run that fails leaves `out` as it was and its partial run in the
staging folder.

Example:
    >>> folder = prepare_run_dir(None, "ptgen-runs")
    >>> write_run(result, folder)        # candidate-00-seed0.png ..., result.json, report.html
    >>> folder = finish_run_dir(folder)  # the final folder (a staging folder moves into place)
"""

from __future__ import annotations

import base64
import functools
import html
import io
import json
import os
import platform
import shutil
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Optional, Union

from preferthinker.errors import OutputExistsError
from preferthinker.profile import ELEMENT_LABELS, ELEMENTS

RESULT_FORMAT = 1
RUN_PREFIX = "run-"
STAGING_MARK = ".ptgen-new-"
OLD_MARK = ".ptgen-old-"


def prepare_run_dir(
    out: Optional[Union[str, Path]], out_root: Union[str, Path] = "ptgen-runs", force: bool = False
) -> Path:
    """The folder a run writes to, created.

    Args:
        out: an explicit folder (must be empty or absent unless `force`), or None.
        out_root: where numbered folders go when `out` is None.
        force: allow a non-empty `out`: the run then writes into a fresh staging folder that
            `finish_run_dir` moves into place once the run has finished.

    Raises:
        OutputExistsError: `out` is not empty and `force` is False.

    Example:
        >>> prepare_run_dir(None, "/tmp/runs")
        PosixPath('/tmp/runs/run-001')
    """
    if out is not None:
        folder = Path(out).expanduser()
        if folder.exists() and not folder.is_dir():
            raise OutputExistsError(f"--out {folder} is a file; give a folder")
        if folder.is_dir() and any(folder.iterdir()):
            if not force:
                raise OutputExistsError(
                    f"--out {folder} is not empty; pick a new folder or pass --force to replace it"
                )
            staging = folder.with_name(
                f"{folder.name}{STAGING_MARK}{time.strftime('%Y%m%d-%H%M%S')}"
            )
            staging.mkdir()
            return staging
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    root = Path(out_root).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    numbers = [
        int(p.name[len(RUN_PREFIX) :])
        for p in root.glob(f"{RUN_PREFIX}*")
        if p.name[len(RUN_PREFIX) :].isdigit()
    ]
    number = max(numbers, default=0) + 1
    while True:  # mkdir without exist_ok claims the number even against a concurrent run
        folder = root / f"{RUN_PREFIX}{number:03d}"
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            number += 1


def finish_run_dir(folder: Union[str, Path]) -> Path:
    """Move a finished run from its staging folder into place (see the module docstring).

    A folder that is not a staging folder is returned as it is. The folder it replaces is
    renamed to `out.ptgen-old-<time>`, never deleted.

    Returns:
        The run's final folder.

    Example:
        >>> finish_run_dir("out.ptgen-new-20260101-120000")
        PosixPath('out')
    """
    folder = Path(folder)
    if STAGING_MARK not in folder.name:
        return folder
    target = folder.with_name(folder.name.split(STAGING_MARK)[0])
    if target.exists():
        stamp = time.strftime("%Y%m%d-%H%M%S")
        old = target.with_name(f"{target.name}{OLD_MARK}{stamp}")
        number = 1
        while old.exists():
            number += 1
            old = target.with_name(f"{target.name}{OLD_MARK}{stamp}-{number}")
        target.rename(old)
    folder.rename(target)
    return target


@functools.lru_cache(maxsize=1)
def _versions() -> tuple[tuple[str, Optional[str]], ...]:
    found: dict[str, Optional[str]] = {"python": platform.python_version()}
    for package in ("ptgen", "torch", "diffusers", "transformers", "accelerate", "pillow"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = None
    return tuple(found.items())


def versions() -> dict[str, Optional[str]]:
    """Versions of ptgen and the packages that shape its output (read once per process: package
    metadata lookups cost about 10 ms each)."""
    return dict(_versions())


def candidate_filename(candidate: Any) -> str:
    if candidate.seed is not None:
        return f"candidate-{candidate.index:02d}-seed{candidate.seed}.png"
    return f"candidate-{candidate.index:02d}.png"


def save_candidate(candidate: Any, folder: Path, model: Optional[str], settings: dict) -> Path:
    """Save one candidate as PNG with prompt, seed and model in its text chunks (plus an
    A1111-style `parameters` chunk, which many image tools display)."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    fields = {
        "prompt": candidate.prompt,
        "negative_prompt": candidate.negative_prompt,
        "seed": "" if candidate.seed is None else str(candidate.seed),
        "model": model or "",
        "source": candidate.source or "",
        "software": f"ptgen {versions().get('ptgen') or ''}".strip(),
    }
    for key, value in fields.items():
        if value:
            info.add_itxt(key, value)
    if candidate.seed is not None:
        params = [
            f"Steps: {settings.get('steps')}",
            f"CFG scale: {settings.get('guidance')}",
            f"Seed: {candidate.seed}",
            f"Model: {model}",
        ]
        text = candidate.prompt + (
            f"\nNegative prompt: {candidate.negative_prompt}" if candidate.negative_prompt else ""
        )
        info.add_itxt("parameters", text + "\n" + ", ".join(params))
    path = folder / candidate_filename(candidate)
    candidate.image.save(path, format="PNG", pnginfo=info)
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _atomic_write(path: Path, text: str) -> None:
    """Write via a temporary file and a rename, so readers never see half a file."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes 0600; reports are ordinary files
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def result_to_dict(
    result: Any, files: dict[int, str], hashes: Optional[dict[int, str]] = None
) -> dict[str, Any]:
    """The `result.json` content of a run (complete or partial); `hashes`: the sha256 of each
    candidate referenced by its source path instead of copied."""
    from dataclasses import asdict

    ranking = result.ranking.to_dict() if result.ranking else None
    complete = result.status == "complete"
    unranked = result.unranked
    if ranking is not None and not complete:
        # A partial ranking covers only the comparisons that finished: no winner is claimed.
        ranking.update(
            winner=None,
            partial=True,
            unranked=unranked,
            planned_comparisons=result.planned_comparisons,
        )
    hashes = hashes or {}
    candidates = []
    for candidate in result.candidates:
        entry = {
            "index": candidate.index,
            "file": files.get(candidate.index),
            "seed": candidate.seed,
            "source": candidate.source,
        }
        if candidate.index in hashes:
            entry["sha256"] = hashes[candidate.index]
        if ranking:
            ranked = candidate.index not in unranked
            entry.update(
                rank=result.ranking.ranks[candidate.index] if ranked else None,
                score=round(result.ranking.scores[candidate.index], 4) if ranked else None,
            )
        prefilter = getattr(result, "prefilter", None)
        if prefilter is not None:
            entry.update(
                prefilter_score=round(prefilter.scores[candidate.index], 5),
                kept=candidate.index in prefilter.kept,
            )
        candidates.append(entry)
    best = result.best if complete else None
    return {
        "format": RESULT_FORMAT,
        "status": result.status,
        "reason": result.reason,
        "unranked": unranked,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "prompt": result.prompt,
        "rewritten_prompt": result.rewrite.prompt if result.rewrite else result.prompt,
        "negative_prompt": result.rewrite.negative_prompt
        if result.rewrite
        else result.config.negative_prompt,
        "rewrite": result.rewrite.to_dict() if result.rewrite else None,
        "mode": result.mode,
        "profile": result.profile.to_dict() if result.profile else None,
        "profile_from_cache": result.profile_from_cache,
        "profile_cache_key": result.profile_key,
        "references": (
            result.references.to_dict()
            if getattr(result, "references", None)
            else {"liked": len(result.liked), "disliked": len(result.disliked)}
        ),
        "candidates": candidates,
        "best": None
        if best is None
        else {"index": best.index, "file": files.get(best.index), "seed": best.seed},
        "ranking": ranking,
        "prefilter": result.prefilter.to_dict() if getattr(result, "prefilter", None) else None,
        "explanation": (
            result.explanation.to_dict() if getattr(result, "explanation", None) else None
        ),
        "models": {"assessor": result.assessor, "generator": result.generator},
        "generator_settings": result.generator_settings,
        "config": asdict(result.config),
        "timings": {k: round(v, 4) for k, v in result.timings.items()},
        "model_seconds": {k: round(v, 4) for k, v in result.model_seconds.items()},
        "usage": asdict(result.usage),
        "issues": list(result.issues),
        "style_adapter": getattr(result, "style", None),
        "versions": versions(),
    }


def file_sha256(path: Union[str, Path]) -> str:
    """The sha256 hex digest of a file's bytes (read in 1 MiB blocks)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def feedback_commands(
    folder: Union[str, Path], indices: Any, user: Optional[str] = None
) -> list[tuple[int, str, str]]:
    """The exact `ptgen like` / `ptgen dislike` commands for each candidate of a run folder.

    Example:
        >>> feedback_commands("runs/001", [0], "ana")[0][1]
        "ptgen like 'runs/001#0' --user ana"
    """
    import shlex

    suffix = f" --user {shlex.quote(user)}" if user else ""
    return [
        (
            i,
            f"ptgen like {shlex.quote(f'{folder}#{i}')}{suffix}",
            f"ptgen dislike {shlex.quote(f'{folder}#{i}')}{suffix}",
        )
        for i in indices
    ]


def _feedback_html(folder: Path, result: Any, user: Optional[str]) -> str:
    rows = "".join(
        f"<tr><td>#{i}</td><td><code>{_esc(like)}</code></td>"
        f"<td><code>{_esc(dislike)}</code></td></tr>"
        for i, like, dislike in feedback_commands(folder, [c.index for c in result.ranked], user)
    )
    return (
        (
            "<h2>Feedback</h2><p class='muted'>Teach the user's profile: each label is stored "
            "and used by the next <code>ptgen generate --user</code>.</p>"
            f"<table id='feedback'><tr><th>candidate</th><th>like</th><th>dislike</th></tr>{rows}"
            "</table>"
        )
        if rows
        else ""
    )


def write_run(
    result: Any,
    folder: Union[str, Path],
    extra_html: str = "",
    copy_sources: bool = False,
    user: Optional[str] = None,
) -> dict[str, Any]:
    """Write every candidate PNG, `result.json` and `report.html` into `folder`.

    `extra_html` is a section placed after the run summary (e.g. `ptgen demo`'s comparison);
    `user` names the stored user in the like/dislike commands the report lists.
    Candidates that came from a file (`ptgen rerank`) are referenced by path and content hash,
    not copied, unless `copy_sources` (`--copy`), which copies each file as it is (its bytes,
    its format, its hash).

    Returns:
        The `result.json` content.

    Example:
        >>> data = write_run(result, prepare_run_dir("/tmp/run1"))
        >>> data["status"], data["best"]["file"]
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[int, str] = {}
    hashes: dict[int, str] = {}
    for candidate in result.candidates:
        if candidate.source and Path(candidate.source).is_file():
            hashes[candidate.index] = file_sha256(candidate.source)
            if copy_sources:  # the file as it is (a JPEG stays that JPEG, same hash)
                source = Path(candidate.source)
                name = f"{Path(candidate_filename(candidate)).stem}{source.suffix.lower()}"
                shutil.copyfile(source, folder / name)
                files[candidate.index] = name
            continue
        files[candidate.index] = save_candidate(
            candidate, folder, result.generator, result.generator_settings
        ).name
    data = result_to_dict(result, files, hashes)
    style_off = getattr(result, "style_off", None)
    if style_off is not None and data["style_adapter"] is not None:
        path = folder / f"without-style-adapter-seed{style_off.seed}.png"
        style_off.image.save(path, format="PNG")
        data["style_adapter"] = {**data["style_adapter"], "without_file": path.name}
    _atomic_write(folder / "result.json", json.dumps(data, indent=2, default=str))
    _atomic_write(
        folder / "report.html",
        render_html(result, data, extra_html + _feedback_html(folder, result, user)),
    )
    return data


# -- the HTML report ------------------------------------------------------------------------


def data_url(image: Any, max_side: int, quality: int = 88) -> str:
    """A JPEG data URL of a downscaled copy (the full-size PNGs sit next to the report)."""
    copy = image.convert("RGB")
    copy.thumbnail((max_side, max_side))
    buffer = io.BytesIO()
    copy.save(buffer, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1d1d1f;\
background:#fafafa}
h1{font-size:22px;margin:0 0 4px} \
h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd}
.muted{color:#666;font-size:13px} .status-partial{color:#b3261e;font-weight:600}
table{border-collapse:collapse;font-size:13px;background:#fff} \
td,th{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
.grid{display:flex;flex-wrap:wrap;gap:12px} \
.card{background:#fff;border:1px solid #ddd;border-radius:8px;padding:8px;width:236px}
.card img{width:220px;height:auto;border-radius:4px;display:block} \
.card.best{border:2px solid #1a7f37}
.thumb{width:48px;height:48px;vertical-align:middle;background-size:cover;\
background-position:center;border-radius:4px;display:inline-block;border:1px solid #ccc}
.refs img{width:72px;height:72px;object-fit:cover;border-radius:4px;margin:2px}
details{background:#fff;border:1px solid #ddd;border-radius:6px;margin:6px 0;padding:6px 10px}
summary{cursor:pointer} .win{color:#1a7f37;font-weight:600} \
code{font-size:12px;white-space:pre-wrap}
"""


def _profile_section(result: Any) -> str:
    if result.profile is None:
        return "<p class='muted'>No profile (not personalized).</p>"
    prediction = result.profile
    rows = "".join(
        f"<tr><th>{_esc(ELEMENT_LABELS[e])}</th>"
        f"<td>{_esc(', '.join(prediction.profile.liked.terms(e)))}</td>"
        f"<td>{_esc(', '.join(prediction.profile.disliked.terms(e)))}</td></tr>"
        for e in ELEMENTS
    )
    source = "from the cache" if result.profile_from_cache else "predicted this run"
    issues = "".join(f"<li>{_esc(i)}</li>" for i in prediction.issues)
    return (
        f"<p class='muted'>status: {_esc(prediction.status)}, {source}</p>"
        "<table id='profile'><tr><th>element</th><th>liked</th><th>disliked</th></tr>"
        f"{rows}</table>"
        + (f"<ul class='muted'>{issues}</ul>" if issues else "")
        + "<details><summary>raw model output</summary>"
        f"<code>{_esc(prediction.raw_text)}</code></details>"
    )


def _comparison_html(match: Any, number: int) -> str:
    comparison = match.comparison
    winner = match.winner
    verdict = "undecided" if winner is None else f"#{winner} wins"
    verdict_class = "muted" if winner is None else "win"
    head = (
        f"<summary>round {match.round}: <span class='thumb c{match.a}'></span> #{match.a} (A) vs "
        f"<span class='thumb c{match.b}'></span> #{match.b} (B) &rarr; "
        f"<span class='{verdict_class}'>{verdict}</span></summary>"
    )
    body = []
    for order, parsed in enumerate(comparison.parsed):
        label = "A-B order" if order == 0 else "swapped order (mapped back)"
        rows = "".join(
            f"<tr><td>{_esc(ELEMENT_LABELS.get(s.element, s.element))}</td>"
            f"<td>{_esc(s.score_a)}</td><td>{_esc(s.rationale_a)}</td>"
            f"<td>{_esc(s.score_b)}</td><td>{_esc(s.rationale_b)}</td></tr>"
            for s in parsed.scores
        )
        body.append(
            f"<p class='muted'>{label}: totals A {_esc(parsed.total_a)} / "
            f"B {_esc(parsed.total_b)}, answer {_esc(parsed.answer)}</p>"
            f"<table><tr><th>element</th><th>A #{match.a}</th><th>rationale</th>"
            f"<th>B #{match.b}</th><th>rationale</th></tr>{rows}</table>"
        )
    if comparison.issues:
        body.append(
            "<ul class='muted'>"
            + "".join(f"<li>{_esc(i)}</li>" for i in comparison.issues)
            + "</ul>"
        )
    raw = "".join(f"<code>{_esc(t)}</code><hr>" for t in comparison.raw_texts)
    body.append(f"<details><summary>raw model output</summary>{raw}</details>")
    return f"<details class='comparison' id='cmp{number}'>{head}{''.join(body)}</details>"


def _style_pair_html(result: Any) -> str:
    """--compare-adapter: the first seed with and without the style adapter, side by side."""
    off = getattr(result, "style_off", None)
    if off is None or not result.candidates:
        return ""
    on = result.candidates[0]
    return (
        f"<h2 id='style-pair'>Style adapter: with / without (seed {off.seed})</h2>"
        "<div class='grid'>"
        f"<div class='card'><img alt='with style adapter' src='{data_url(on.image, 512)}'>"
        f"<div>with (candidate #{on.index})</div></div>"
        f"<div class='card'><img alt='without style adapter' src='{data_url(off.image, 512)}'>"
        "<div>without</div></div></div>"
    )


def _explanation_html(result: Any) -> str:
    """The winner's last match with a full verdict (`--explain`), when the run has one."""
    explanation = getattr(result, "explanation", None)
    if explanation is None:
        return ""
    return "<h2>Why the winner won (full verdict)</h2>" + _comparison_html(explanation, 9999)


def render_html(result: Any, data: dict[str, Any], extra_html: str = "") -> str:
    """A self-contained page: profile, ranked candidates with scores, each comparison's
    reasoning."""
    ranking = result.ranking
    complete = data["status"] == "complete"
    unranked = set(data.get("unranked") or [])
    small = "".join(
        f".c{c.index}{{background-image:url({data_url(c.image, 128, 80)})}}"
        for c in result.candidates
    )
    cards = []
    for candidate in result.ranked:
        i = candidate.index
        score = ""
        if i in unranked:
            score = "<b>unranked</b> &middot; no finished comparison"
        elif ranking is not None:
            score = (
                f"<b>rank {ranking.ranks[i]}</b> &middot; "
                f"score {round(ranking.scores[i], 2) + 0.0:+.2f} &middot; "
                f"{ranking.wins[i]:g}/{ranking.games[i]} wins"
            )
        prefilter = getattr(result, "prefilter", None)
        if prefilter is not None:
            state = "kept" if i in prefilter.kept else "not kept"
            score += (
                f"<br><span class='muted'>pre-filter {prefilter.scores[i]:+.3f} ({state})</span>"
            )
        best = " best" if complete and ranking is not None and i == ranking.winner else ""
        caption = f"#{i}" + (
            f" &middot; seed {candidate.seed}" if candidate.seed is not None else ""
        )
        if candidate.source:
            caption += f"<br><span class='muted'>{_esc(Path(candidate.source).name)}</span>"
        cards.append(
            f"<div class='card{best}'>"
            f"<img alt='candidate {i}' src='{data_url(candidate.image, 512)}'>"
            f"<div>{caption}</div><div>{score}</div><div class='muted'>"
            f"{_esc(data['candidates'][i]['file'] if i < len(data['candidates']) else '')}"
            "</div></div>"
        )
    comparisons = (
        "".join(_comparison_html(m, k) for k, m in enumerate(ranking.matches)) if ranking else ""
    )
    refs = "".join(f"<img alt='liked' src='{data_url(im, 96, 75)}'>" for im in result.liked)
    drefs = "".join(f"<img alt='disliked' src='{data_url(im, 96, 75)}'>" for im in result.disliked)
    status = data["status"]
    rewrite = result.rewrite
    banner = ""
    heading = "Candidates, best first" if complete and ranking is not None else "Candidates"
    if not complete:
        finished = len(ranking.matches) if ranking else 0
        planned = f" of {result.planned_comparisons}" if result.planned_comparisons else ""
        unranked_text = ", ".join(f"#{i}" for i in sorted(unranked)) or "none"
        banner = (
            "<p class='status-partial' id='partial'>"
            f"Partial run: {_esc(data.get('reason') or 'stopped early')}. "
            f"{finished}{planned} comparisons finished; no winner is claimed. "
            f"Unranked: {unranked_text}. "
            "Continue it with <code>--resume</code>.</p>"
        )
        if ranking is not None:
            heading = "Candidates, ordered by the finished comparisons only"
    rows = [
        ("prompt", data["prompt"] or "(ranking given images)"),
        ("rewritten prompt", data["rewritten_prompt"]),
        ("negative prompt", data["negative_prompt"]),
        ("assessor", data["models"]["assessor"]),
        ("generator", data["models"]["generator"]),
        ("mode / strategy", f"{data['mode']} / {result.config.strategy}"),
    ]
    style = data.get("style_adapter")
    if style:
        used = ", ".join(f"#{i}" for i in style.get("liked_used", []))
        rows.append(
            (
                "style adapter",
                f"{style['adapter']}, scale {style['scale']}, "
                f"blocks {style['blocks']}; {style['rule']}: liked {used}, "
                f"disliked {len(style.get('disliked_used', []))} as negative image embedding"
                + (f" ({style['note']})" if style.get("note") else ""),
            )
        )
    if getattr(result, "prefilter", None) is not None:
        chosen = result.prefilter
        rows.append(
            (
                "pre-filter",
                f"{chosen.model}: kept {len(chosen.kept)} of {len(chosen.scores)} "
                "by similarity to the references",
            )
        )
    if rewrite is not None and rewrite.cut:
        rows.append(("cut for the token budget", "; ".join(rewrite.cut)))
    usage = data["usage"]
    rows.append(
        (
            "assessor cost",
            f"{usage['calls']} calls, {usage['images']} images, "
            f"{usage['prompt_tokens']}+{usage['completion_tokens']} tokens",
        )
    )
    rows.append(("timings (s)", ", ".join(f"{k} {v:.2f}" for k, v in data["timings"].items())))
    summary = "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in rows)
    issues = "".join(f"<li>{_esc(i)}</li>" for i in data["issues"])
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">\
<title>ptgen report: {_esc(data["prompt"] or "rerank")}</title>
<style>{CSS}{small}</style></head><body>
<h1>ptgen report</h1>
{banner}
<p class="muted">status: <span class="status-{_esc(status)}">{_esc(status)}</span> \
&middot; {_esc(data["created"])}
 &middot; ptgen {_esc(data["versions"].get("ptgen"))}</p>
<table id="summary">{summary}</table>
{f"<ul class='muted'>{issues}</ul>" if issues else ""}
{extra_html}
{_style_pair_html(result)}
<h2>References</h2><div class="refs">liked: {refs or '<span class="muted">none</span>'}</div>
<div class="refs">disliked: {drefs or '<span class="muted">none</span>'}</div>
<h2>Profile</h2>{_profile_section(result)}
<h2>{heading}</h2><div class="grid" id="candidates">{"".join(cards)}</div>
{_explanation_html(result)}
<h2>Comparisons ({len(ranking.matches) if ranking else 0})</h2>\
{comparisons or "<p class='muted'>none</p>"}
</body></html>
"""
