"""Batch generation: many prompts for one user (`ptgen generate --prompts FILE --out DIR`).

Stages of `run_batch`:

1. check the batch folder (new, or this batch's to resume; another batch's is refused) and
   take its lock (`generation.shards`: one launch at a time);
2. the profile, predicted once for the whole batch by the main process and stored in the
   batch's own profile cache `DIR/profile/` (every run, in every process, reads it from there);
3. this process's prompts (every world_size-th, by index, under `accelerate launch` or
   `torchrun`): each gets its own run folder `DIR/<NNNN>-<slug>-<hash>/` written by the loop
   (`generation.report.write_run`); a folder that already holds a complete result is skipped,
   so running the same command again resumes the batch;
4. the main process waits until every prompt has a result (complete or failed in this launch)
   and writes the summary: `DIR/summary.json` and `DIR/index.html`, which link every run.

The prompts file: one prompt a line (blank lines and `#` comments skipped), or a JSON object a
line with per-prompt options: {"prompt": "a castle", "seed": 7, "n": 4, "negative_prompt": "fog"}.

Example:
    >>> prompts = load_batch_prompts("prompts.txt")
    >>> config = LoopConfig(n=4)
    >>> summary = run_batch(prompts, "./liked/", None, assessor, generator, config, "runs/b1")
    >>> summary["complete"], summary["runs"][0]["report"]
"""

from __future__ import annotations

import dataclasses
import hashlib
import html
import json
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Union

from preferthinker.errors import ConfigError, InputError, OutputExistsError, PTGenError

BATCH_FILE = "batch.json"
SUMMARY_JSON = "summary.json"
SUMMARY_HTML = "index.html"
PROFILE_DIR = "profile"
PROMPT_OPTIONS = {"prompt": str, "seed": int, "n": int, "negative_prompt": str}
BatchProgress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class BatchPrompt:
    """One line of the prompts file.

    Args:
        prompt: what to draw.
        line: its line number in the file (1-based), for messages.
        index: its position among the prompts (0-based): names its run folder, picks its process.
        seed, n, negative_prompt: per-prompt options over the batch's `LoopConfig` (None: the
            batch's).
    """

    prompt: str
    line: int = 0
    index: int = 0
    seed: Optional[int] = None
    n: Optional[int] = None
    negative_prompt: Optional[str] = None

    @property
    def options(self) -> dict[str, Any]:
        """The per-prompt options that are set."""
        return {
            k: v
            for k, v in (
                ("seed", self.seed),
                ("n", self.n),
                ("negative_prompt", self.negative_prompt),
            )
            if v is not None
        }

    @property
    def folder_name(self) -> str:
        """`<NNNN>-<slug>-<hash of prompt and options>`: editing a line gives it a new folder."""
        slug = (
            re.sub(r"[^a-z0-9]+", "-", self.prompt.lower()).strip("-")[:40].rstrip("-") or "prompt"
        )
        digest = hashlib.sha256(
            json.dumps([self.prompt, self.options], sort_keys=True).encode()
        ).hexdigest()[:8]
        return f"{self.index + 1:04d}-{slug}-{digest}"


def _parse_object(text: str, where: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError as error:
        raise InputError(f"{where}: not valid JSON ({error.msg} at column {error.colno})") from None
    if not isinstance(data, dict):
        raise InputError(f'{where}: a JSON line must be an object such as {{"prompt": "a castle"}}')
    unknown = sorted(set(data) - set(PROMPT_OPTIONS))
    if unknown:
        raise InputError(
            f"{where}: unknown option(s) {', '.join(unknown)}; valid: {', '.join(PROMPT_OPTIONS)}"
        )
    for key, kind in PROMPT_OPTIONS.items():
        value = data.get(key)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            raise InputError(
                f"{where}: {key} must be {'an integer' if kind is int else 'a string'}, "
                f"got {value!r}"
            )
    if not (data.get("prompt") or "").strip():
        raise InputError(f'{where}: "prompt" is missing or empty')
    if data.get("seed") is not None and data["seed"] < 0:
        raise InputError(f"{where}: seed must be >= 0, got {data['seed']}")
    if data.get("n") is not None and data["n"] < 1:
        raise InputError(f"{where}: n must be >= 1, got {data['n']}")
    return data


def parse_batch_prompts(text: str, source: str = "prompts") -> list[BatchPrompt]:
    """Prompts from the text of a prompts file: a plain prompt a line, or a JSON object a line
    (lines may mix); blank lines and lines starting with `#` are skipped.

    Raises:
        InputError: a bad line, named by its line number, or no prompts at all.

    Example:
        >>> [p.prompt for p in parse_batch_prompts('a castle\\n{"prompt": "a cat", "seed": 3}')]
        ['a castle', 'a cat']
    """
    prompts: list[BatchPrompt] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{source} line {number}"
        if line.startswith("{"):
            data = _parse_object(line, where)
            prompts.append(
                BatchPrompt(
                    prompt=data["prompt"].strip(),
                    line=number,
                    index=len(prompts),
                    seed=data.get("seed"),
                    n=data.get("n"),
                    negative_prompt=data.get("negative_prompt"),
                )
            )
        else:
            prompts.append(BatchPrompt(prompt=line, line=number, index=len(prompts)))
    if not prompts:
        raise InputError(
            f"{source} holds no prompts; write one prompt a line (or a JSON object a line)"
        )
    return prompts


def load_batch_prompts(path: Union[str, Path]) -> list[BatchPrompt]:
    """`parse_batch_prompts` of a file.

    Example:
        >>> prompts = load_batch_prompts("prompts.jsonl")
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"--prompts {path}: no such file; give a text file with one prompt a line")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"--prompts {path} is not UTF-8 text") from None
    return parse_batch_prompts(text, str(path))


def run_is_complete(folder: Path) -> bool:
    """Whether a run folder holds a complete result (what a resumed batch skips)."""
    try:
        return (
            json.loads((folder / "result.json").read_text(encoding="utf-8")).get("status")
            == "complete"
        )
    except (OSError, ValueError, AttributeError):  # AttributeError: JSON that is no object
        return False


def _fingerprint(config: Any, assessor: Any, generator: Any, liked: Any, disliked: Any) -> str:
    """What a resumed batch must share with the first launch (the prompts may change)."""
    settings = dict(generator.settings()) if hasattr(generator, "settings") else {}
    settings.pop("device", None)  # each process of a launch uses its own GPU
    settings.pop("batch_size", None)  # lowered after an out-of-memory error
    data = {
        "loop": asdict(config),
        "assessor": getattr(assessor, "name", None),
        "generator": getattr(generator, "name", type(generator).__name__),
        "settings": settings,
        "liked": str(liked),
        "disliked": str(disliked),
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _check_folder(out: Path, fingerprint: str) -> None:
    from generation.shards import LOCK_FILE, SHARDS_DIR

    batch = out / BATCH_FILE
    if batch.is_file():
        try:
            data = json.loads(batch.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:  # UnicodeDecodeError is a ValueError
            data = error
        if not isinstance(data, dict):
            raise OutputExistsError(f"{batch} is damaged ({data}); use a new --out")
        found = data.get("fingerprint")
        if found != fingerprint:
            raise ConfigError(
                f"{out} holds a batch with other settings (references, models or options; "
                f"fingerprint {found}, this one {fingerprint}); use a new --out"
            )
        return
    if out.exists() and (
        not out.is_dir() or any(p.name not in (LOCK_FILE, SHARDS_DIR) for p in out.iterdir())
    ):
        raise OutputExistsError(
            f"--out {out} is not empty and holds no {BATCH_FILE}; pick a new folder for the batch"
        )


def _wait_for(path: Path, poll_s: float = 0.5) -> None:
    while not path.is_file():
        time.sleep(poll_s)


def _batch_profile(config: Any, assessor: Any, refs: Any, out: Path, process: Any) -> tuple:
    """(the batch's profile cache, the profile's key): the cache holds the one profile every run
    uses. The main process predicts it (or takes it from the user's profile cache); the others
    wait for its file. `refs` is the batch's `References`, loaded once."""
    from generation.cache import ProfileCache

    batch_cache = ProfileCache(out / PROFILE_DIR)
    key = batch_cache.key(refs, None, assessor.name)
    if not process.is_main:
        _wait_for(batch_cache.path(key))
        return batch_cache, key
    if batch_cache.get(key) is None:
        user_cache = ProfileCache(config.cache_dir) if config.cache else None
        prediction = user_cache.get(key) if user_cache is not None else None
        if prediction is None:
            prediction = assessor.predict_profile(refs)
            if user_cache is not None:
                user_cache.put(key, prediction, {"assessor": assessor.name})
        batch_cache.put(key, prediction, {"assessor": assessor.name})
    return batch_cache, key


def _run_one(item: BatchPrompt, folder: Path, loop: Any, refs: Any) -> dict[str, Any]:
    from generation.report import prepare_run_dir, write_run

    prepare_run_dir(folder, force=True)  # a partial run from before an interruption is redone
    result = loop.run(item.prompt, refs)
    data = write_run(result, folder)
    return {"status": data["status"], "best": (data.get("best") or {}).get("file")}


def _summary_row(item: BatchPrompt, out: Path, failures: dict[str, str]) -> dict[str, Any]:
    folder = out / item.folder_name
    row: dict[str, Any] = {
        "index": item.index,
        "line": item.line,
        "prompt": item.prompt,
        "options": item.options,
        "folder": item.folder_name,
        "report": f"{item.folder_name}/report.html",
    }
    try:
        data = json.loads((folder / "result.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = None
    if isinstance(data, dict) and data.get("status") == "complete":
        best = data.get("best") or {}
        row.update(
            status="complete",
            best=f"{item.folder_name}/{best['file']}" if best.get("file") else None,
            best_seed=best.get("seed"),
            rewritten_prompt=data.get("rewritten_prompt"),
            seconds=(data.get("timings") or {}).get("total"),
        )
    else:
        row.update(
            status="failed", error=failures.get(item.folder_name, "no complete result"), report=None
        )
    return row


def write_summary(
    prompts: Sequence[BatchPrompt],
    out: Union[str, Path],
    failures: Optional[dict[str, str]] = None,
    extra: Optional[dict] = None,
) -> dict[str, Any]:
    """Write `summary.json` and `index.html` for the batch in `out` from its run folders.

    Returns:
        The summary: counts and one row per prompt (status, run folder, report link, best image).

    Example:
        >>> write_summary(load_batch_prompts("prompts.txt"), "runs/b1")["complete"]
    """
    out = Path(out)
    rows = [_summary_row(item, out, failures or {}) for item in prompts]
    summary = {
        "prompts": len(rows),
        "complete": sum(r["status"] == "complete" for r in rows),
        "failed": sum(r["status"] == "failed" for r in rows),
        **(extra or {}),
        "runs": rows,
    }
    from generation.report import _atomic_write

    _atomic_write(out / SUMMARY_JSON, json.dumps(summary, indent=2, ensure_ascii=False))
    _atomic_write(out / SUMMARY_HTML, render_summary_html(summary))
    return summary


def render_summary_html(summary: dict[str, Any]) -> str:
    """The batch's index page: one row per prompt with its best image and a link to its report."""
    from generation.report import CSS

    def esc(value: Any) -> str:
        return html.escape("" if value is None else str(value), quote=True)

    rows = []
    for row in summary["runs"]:
        if row["status"] == "complete":
            image = f"<img src='{esc(row['best'])}' width='96'>" if row.get("best") else ""
            link = f"<a href='{esc(row['report'])}'>report</a>"
            note = esc(row.get("rewritten_prompt"))
        else:
            image, link, note = (
                "",
                "",
                f"<span class='status-partial'>failed</span>: {esc(row.get('error'))}",
            )
        options = ", ".join(f"{k}={v}" for k, v in row["options"].items())
        rows.append(
            f"<tr><td>{row['index'] + 1}</td><td>{image}</td><td>{esc(row['prompt'])}<br>"
            f"<span class='muted'>{esc(options)}</span></td><td>{note}</td><td>{link}</td></tr>"
        )
    profile = summary.get("profile") or {}
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>ptgen batch</title>"
        f"<style>{CSS}</style></head><body><h1>ptgen batch: {summary['complete']} of "
        f"{summary['prompts']} "
        f"prompts complete</h1><p class='muted'>profile predicted once for the batch "
        f"(status {esc(profile.get('status'))}); {summary['failed']} failed. Each row links its "
        "run's report.</p><table><tr><th>#</th><th>best</th><th>prompt</th>"
        "<th>rewritten prompt</th><th>run</th></tr>" + "".join(rows) + "</table></body></html>"
    )


def run_batch(
    prompts: Sequence[BatchPrompt],
    liked: Any,
    disliked: Any,
    assessor: Any,
    generator: Any,
    config: Any,
    out: Union[str, Path],
    process: Any = None,
    progress: Optional[BatchProgress] = None,
    resume_command: Optional[str] = None,
) -> dict[str, Any]:
    """Run the personalized loop for every prompt, one run folder each, the profile predicted
    once; resumable, and shared out over the processes of an `accelerate launch` / `torchrun`.

    Args:
        prompts: from `load_batch_prompts`.
        liked, disliked: the user's references (folders, paths or PIL images), as for `run`.
        assessor: a `preferthinker.assessor.Assessor`; may be None with `config.personalize` False.
        generator: a Generator (e.g. `DiffusersGenerator`), one per process.
        config: the batch's `LoopConfig`; each prompt's seed, n and negative prompt override it.
        out: the batch folder (new, or this batch's to resume).
        process: this process's `generation.shards.LaunchProcess` (default: from the environment).
        progress: called as `progress(done, total, prompt)` after each of this process's prompts.
        resume_command: shown when a process failed (default: rebuilt from argv).

    Returns:
        The summary written to `summary.json` (`"merged": False` and this process's counts in a
        process other than the main one).

    Raises:
        ConfigError / OutputExistsError: `out` holds another batch or other files, or another
            launch is writing to it.
        generation.loop.RunInterrupted: Ctrl-C; the partial run is written, the batch resumes.

    Example:
        >>> prompts = load_batch_prompts("p.txt")
        >>> summary = run_batch(prompts, "./liked/", None, assessor, gen, LoopConfig(), "b1")
    """
    from generation.loop import PersonalizedGenerator, RunInterrupted
    from generation.report import write_run
    from generation.shards import (
        ShardJournal,
        acquire_lock,
        assigned,
        current_process,
        finished_items,
        release_lock,
        wait_for_items,
    )

    started = time.time()
    process = process or current_process()
    out = Path(out)
    if not prompts:
        raise InputError("the batch has no prompts")
    fingerprint = _fingerprint(config, assessor, generator, liked, disliked)
    # 1. The folder and its lock.
    if process.is_main:
        _check_folder(out, fingerprint)
        acquire_lock(out, process)
        if not (out / BATCH_FILE).is_file():
            from generation.report import _atomic_write

            _atomic_write(
                out / BATCH_FILE,
                json.dumps(
                    {
                        "fingerprint": fingerprint,
                        "config": asdict(config),
                        "liked": str(liked),
                        "disliked": str(disliked),
                    },
                    indent=2,
                ),
            )
    else:
        acquire_lock(out, process)
        _check_folder(out, fingerprint)
    # 2. The references, loaded once, and the profile, predicted once for the batch.
    refs = None
    if config.personalize:
        from preferthinker.images import DEFAULT_MAX_PIXELS
        from preferthinker.references import References

        max_pixels = getattr(getattr(assessor, "config", None), "max_pixels", DEFAULT_MAX_PIXELS)
        refs = References.load(liked, disliked, max_pixels=max_pixels, require_liked=True)
    cache, key = (
        _batch_profile(config, assessor, refs, out, process)
        if config.uses_profile
        else (None, None)
    )
    # 3. This process's prompts, each in its own run folder; complete ones are skipped.
    mine = assigned(list(prompts), process)
    journal = ShardJournal(out, process, fingerprint)
    journal.start(len(mine))
    done = resumed = 0
    try:
        for item in mine:
            folder = out / item.folder_name
            if run_is_complete(folder):
                resumed += 1
            else:
                run_config = dataclasses.replace(config, **item.options)
                loop = PersonalizedGenerator(assessor, generator, run_config, cache=cache)
                try:
                    record = _run_one(item, folder, loop, refs)
                except RunInterrupted as interrupted:
                    write_run(interrupted.result, folder)
                    raise
                except PTGenError as error:  # this prompt fails; the batch goes on
                    record = {
                        "status": "failed",
                        "error": str(error).splitlines()[0],
                        "at": time.time(),
                    }
                journal.item(item.folder_name, record)
            done += 1
            if progress:
                progress(done, len(mine), item.prompt)
    except BaseException as error:
        journal.failed(error)
        raise
    journal.done(items=len(mine), resumed=resumed)
    if not process.is_main:
        return {
            "merged": False,
            "rank": process.rank,
            "world_size": process.world_size,
            "prompts": len(mine),
            "resumed": resumed,
        }

    # 4. Wait for every prompt (complete, or failed in this launch), then the summary.
    def failures() -> dict[str, str]:
        return {
            name: record["error"]
            for name, record in finished_items(out, fingerprint).items()
            if isinstance(record, dict)
            and record.get("status") == "failed"
            and record.get("at", 0) >= started - 60
        }

    def finished() -> dict[str, Any]:
        failed = failures()
        return {
            item.folder_name: True
            for item in prompts
            if item.folder_name in failed or run_is_complete(out / item.folder_name)
        }

    wait_for_items(
        out,
        [item.folder_name for item in prompts],
        process,
        fingerprint,
        resume_command=resume_command,
        finished=finished,
        since=started,
    )
    profile = json.loads(cache.path(key).read_text(encoding="utf-8")) if cache is not None else None
    summary = write_summary(
        prompts,
        out,
        failures(),
        {"merged": True, "processes": process.world_size, "resumed": resumed, "profile": profile},
    )
    release_lock(out, process)
    return summary


__all__ = [
    "BatchPrompt",
    "load_batch_prompts",
    "parse_batch_prompts",
    "render_summary_html",
    "run_batch",
    "run_is_complete",
    "write_summary",
]
