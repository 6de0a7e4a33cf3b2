"""`ptgen user ...`, `ptgen like` and `ptgen dislike`: the user store from the command line,
and the helpers `generate --user` / `rerank --user` use to read and update it.

Example:
    ptgen user create ana --refs ./liked --disliked ./disliked
    ptgen generate "a castle" --user ana
    ptgen like ptgen-runs/run-001#3 --user ana
    ptgen user show ana
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Optional

import typer

from preferthinker.errors import InputError, PTGenError

StoreOption = typer.Option(
    None,
    "--store",
    help="User store folder (default: $PTGEN_STORE, "
    "else the platform's user-data folder, e.g. ~/.local/share/ptgen).",
)
UserOption = typer.Option(
    None, "--user", help="Stored user (default: the one set with `ptgen user default NAME`)."
)


def say(text: str, err: bool = False) -> None:
    """One plain line (no wrapping or markup: commands and paths must stay copyable)."""
    typer.echo(text, err=err)


user_app = typer.Typer(
    help="Stored users: their liked/disliked images, profiles and runs.", no_args_is_help=True
)


def open_store(store: Optional[Path]):
    """The `UserStore` at `--store` (None: `$PTGEN_STORE` or the platform default)."""
    from generation.store import UserStore

    return UserStore(store)


# -- like / dislike: what a PATH names ------------------------------------------------------


def resolve_feedback(given: str) -> tuple[Path, Any, Optional[str]]:
    """The image file a `like`/`dislike` argument names, its provenance, and a note (or None).

    `RUN#index` names candidate `index` of the run folder RUN (from its result.json, or its
    journal when the run stopped before writing one); a file
    inside a run folder gets that run's provenance; any other image file is recorded as a
    reference file, with a note.

    Example:
        >>> path, provenance, note = resolve_feedback("ptgen-runs/run-001#3")  # doctest: +SKIP
    """
    from generation.store import Provenance

    if "#" in given and not Path(given).exists():
        run_text, _, index_text = given.rpartition("#")
        run = Path(run_text)
        if not index_text.isdigit():
            raise InputError(f"{given}: after '#' comes a candidate number, e.g. {run_text}#0")
        if not run.is_dir():
            raise InputError(f"{given}: the run folder {run} does not exist (moved or deleted?)")
        data = _result(run)
        if data is None:
            raise InputError(
                f"{given}: {run} has no result.json or journal; it is not a ptgen run folder"
            )
        entry = next(
            (c for c in data.get("candidates", []) if c.get("index") == int(index_text)), None
        )
        if entry is None or not (entry.get("file") or entry.get("source")):
            count = len(data.get("candidates", []))
            raise InputError(
                f"{given}: the run has no candidate {index_text} "
                f"(it has {count}: #0 to #{count - 1})"
            )
        # `ptgen rerank` refers to the user's own files by path and hash instead of copying them.
        path = run / entry["file"] if entry.get("file") else Path(entry["source"])
        if not path.is_file():
            raise InputError(f"{given}: the candidate file {path} is gone")
        if entry.get("sha256") and not entry.get("file"):
            from generation.report import file_sha256

            if file_sha256(path) != entry["sha256"]:
                raise InputError(f"{given}: {path} changed since the run ranked it")
        return path, _provenance(run, data, entry), None
    path = Path(given)
    if not path.exists():
        raise InputError(f"{given}: no such file (give an image file or RUN#index)")
    if path.is_dir():
        raise InputError(f"{given} is a folder; give image files or RUN#index")
    data = _result(path.parent)
    entry = (
        None
        if data is None
        else next((c for c in data.get("candidates", []) if c.get("file") == path.name), None)
    )
    if entry is None:
        return (
            path,
            Provenance(origin=str(path.resolve())),
            (f"note: {given} is not a candidate of a ptgen run; recorded as a reference file"),
        )
    return path, _provenance(path.parent, data, entry), None


def _result(folder: Path) -> Optional[dict]:
    """The run's prompt and candidates: from result.json, else from the run journal (a run
    that stopped before writing its result), else None (not a run folder)."""
    path = folder / "result.json"
    if path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise InputError(f"{path} is not readable JSON ({error})") from None
        candidates = data.get("candidates", []) if isinstance(data, dict) else None
        # A hand-edited or foreign result.json: say so instead of failing on its shape.
        if not isinstance(candidates, list) or not all(
            isinstance(c, dict)
            and all(isinstance(c.get(key), (str, type(None))) for key in ("file", "source"))
            for c in candidates
        ):
            raise InputError(f"{path} is not a ptgen run result (its candidates are malformed)")
        return data
    from generation.journal import JOURNAL_NAME, read_records

    if not (folder / JOURNAL_NAME).is_file():
        return None
    journal = folder / JOURNAL_NAME
    try:
        records = read_records(journal)
        starts = [r for r in records if r["kind"] == "start"]
        if not starts:  # every run's journal opens with one; undecodable lines are skipped
            raise ValueError("no start record")
        rewrites = [r for r in records if r["kind"] == "rewrite"]
        return {
            "prompt": (starts[0].get("settings") or {}).get("prompt") if starts else None,
            "rewritten_prompt": (
                (rewrites[-1].get("rewrite") or {}).get("prompt") if rewrites else None
            ),
            "candidates": [
                {"index": r.get("index"), "file": str(r["file"]), "seed": r.get("seed")}
                for r in records
                if r["kind"] == "candidate" and r.get("file")
            ],
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise InputError(f"{journal} is not a readable ptgen journal ({error!r})") from None


def _provenance(run: Path, data: dict, entry: dict):
    from generation.store import Provenance

    return Provenance(
        run=str(run.resolve()),
        candidate=entry.get("index"),
        prompt=data.get("rewritten_prompt") or data.get("prompt"),
        seed=entry.get("seed"),
    )


def _label(paths: list[str], label: str, user_name: Optional[str], store: Optional[Path]) -> None:
    resolved = [resolve_feedback(given) for given in paths]  # every argument checked first
    with open_store(store).user(user_name) as user:
        changes = user.label(
            [path for path, _, _ in resolved], label, [provenance for _, provenance, _ in resolved]
        )
        for _, _, note in resolved:  # after the store took them: a failure prints one line
            if note:
                say(note, err=True)
        for change in changes:
            say(change.describe())
        counts = user.counts()
        say(f"user {user.name}: {counts['liked']} liked, {counts['disliked']} disliked")


def like(
    paths: list[str] = typer.Argument(..., help="Candidate files or RUN#index references."),
    user: Optional[str] = UserOption,
    store: Optional[Path] = StoreOption,
) -> None:
    """Record that the user likes these images (the later label wins).

    Example: ptgen like ptgen-runs/run-001#3 --user ana
    """
    _label(paths, "liked", user, store)


def dislike(
    paths: list[str] = typer.Argument(..., help="Candidate files or RUN#index references."),
    user: Optional[str] = UserOption,
    store: Optional[Path] = StoreOption,
) -> None:
    """Record that the user dislikes these images (the later label wins).

    Example: ptgen dislike ptgen-runs/run-001#5 --user ana
    """
    _label(paths, "disliked", user, store)


# -- ptgen user ... -------------------------------------------------------------------------


@user_app.command("create")
def create(
    name: str = typer.Argument(..., help="The user's name (letters, digits, _ . -)."),
    refs: Optional[list[Path]] = typer.Option(
        None, "--refs", help="Folder or file of liked images (repeatable)."
    ),
    disliked: Optional[list[Path]] = typer.Option(
        None, "--disliked", help="Folder or file of disliked images (repeatable)."
    ),
    store: Optional[Path] = StoreOption,
) -> None:
    """Create a stored user, optionally with reference images.

    Example: ptgen user create ana --refs ./liked --disliked ./disliked
    """
    the_store = open_store(store)
    with the_store.create(name, liked=refs or [], disliked=disliked or []) as user:
        counts = user.counts()
    say(
        f"created user {name} in {the_store.root}: {counts['liked']} liked, "
        f"{counts['disliked']} disliked"
    )


@user_app.command("list")
def list_users(store: Optional[Path] = StoreOption) -> None:
    """List the stored users (the default one marked with *).

    Example: ptgen user list
    """
    the_store = open_store(store)
    names = the_store.names()
    if not names:
        say(f"no users in {the_store.root}; create one with `ptgen user create NAME`")
        return
    default = the_store.default()
    for name in names:
        mark = "*" if name == default else " "
        try:  # one damaged user must not hide the others
            with the_store.user(name) as user:
                counts = user.counts()
        except PTGenError as error:
            say(f"{mark} {name}: cannot be read ({error})")
            continue
        say(f"{mark} {name}: {counts['liked']} liked, {counts['disliked']} disliked")


@user_app.command("default")
def set_default(name: str = typer.Argument(...), store: Optional[Path] = StoreOption) -> None:
    """Make NAME the user of `--user`-less `like`, `dislike`, `generate --user` commands.

    Example: ptgen user default ana
    """
    open_store(store).set_default(name)
    say(f"default user: {name}")


def _stamp(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(seconds))


@user_app.command("show")
def show(name: Optional[str] = typer.Argument(None), store: Optional[Path] = StoreOption) -> None:
    """The user's profile (with how sure each element is), counts, last runs, and how the
    profile changed.

    Example: ptgen user show ana
    """
    from generation.aggregate import profile_changes
    from preferthinker.profile import ELEMENTS

    with open_store(store).user(name) as user:
        counts = user.counts()
        say(
            f"user {user.name} ({user.folder}): {counts['liked']} liked, "
            f"{counts['disliked']} disliked"
        )
        profiles = user.profiles(2)
        if profiles:
            latest = profiles[0]
            say(
                f"profile ({latest['model']}, prompt {latest['prompt_version']}, "
                f"{_stamp(latest['at'])}):"
            )
            for side in ("liked", "disliked"):
                for element in ELEMENTS:
                    terms = latest["profile"][side].get(element) or []
                    sure = latest["certainty"].get(side, {}).get(element)
                    extra = f"  (certainty {sure:.2f})" if sure is not None else ""
                    say(f"  {side:8} {element:10} {', '.join(terms) or '-'}{extra}")
            before = profiles[1]["profile"] if len(profiles) > 1 else None
            say("changed since the previous profile:")
            for line in profile_changes(before, latest["profile"]):
                say(f"  {line}")
        else:
            say("profile: none yet (made by the first `ptgen generate --user`)")
        for run in user.runs(5):
            say(f"run {_stamp(run['at'])}: {run['prompt']!r} -> {run['folder']}")
        for image in user.images()[:10]:
            where = image.provenance.run and f"{image.provenance.run}#{image.provenance.candidate}"
            say(f"  {image.label:8} {image.hash[:12]} {where or image.provenance.origin or ''}")


@user_app.command("forget")
def forget(
    name: str = typer.Argument(...),
    images: list[str] = typer.Argument(
        ..., help="Image hashes (8+ characters), stored file names or files."
    ),
    store: Optional[Path] = StoreOption,
) -> None:
    """Remove images and all their labels from a user.

    Example: ptgen user forget ana 3f2a9c1b
    """
    with open_store(store).user(name) as user:
        for digest in user.forget(images):
            say(f"forgot {digest[:12]}")


@user_app.command("export")
def export(
    name: str = typer.Argument(...),
    file: Path = typer.Argument(...),
    store: Optional[Path] = StoreOption,
) -> None:
    """Write the user to a portable zip (rows as JSON + images).

    Example: ptgen user export ana ana.zip
    """
    if file.exists():
        raise InputError(f"{file} exists already; choose another file name")
    with open_store(store).user(name) as user:
        say(f"exported user {name} to {user.export(file)}")


@user_app.command("import")
def import_(
    file: Path = typer.Argument(...),
    name: Optional[str] = typer.Option(None, "--name", help="Import under this name."),
    store: Optional[Path] = StoreOption,
) -> None:
    """Create a user from an archive written by `ptgen user export`.

    Example: ptgen user import ana.zip --name ana2
    """
    with open_store(store).import_archive(file, name) as user:
        counts = user.counts()
        say(f"imported user {user.name}: {counts['liked']} liked, {counts['disliked']} disliked")


# -- generate --user / rerank --user --------------------------------------------------------


class StoreRun:
    """What `generate --user` / `rerank --user` need from the store: the aggregated profile
    before the run, and recording the run after it.

    Example:
        >>> run = StoreRun.open("ana", None)
        >>> aggregated = run.predict(assessor, cache)
    """

    def __init__(self, user: Any):
        self.user = user
        self.aggregated: Any = None
        self.previous: Optional[dict] = None

    @classmethod
    def open(cls, name: Optional[str], store: Optional[Path]) -> "StoreRun":
        return cls(open_store(store).user(name))

    def predict(self, assessor: Any, cache: Any) -> Any:
        """The profile aggregated over the user's images (`generation.aggregate`)."""
        from generation.aggregate import predict_user_profile

        earlier = self.user.profiles(1)
        self.previous = earlier[0]["profile"] if earlier else None
        self.aggregated = predict_user_profile(self.user, assessor, cache)
        return self.aggregated

    def changes_html(self) -> str:
        """The report section: how the profile changed since the user's previous run."""
        import html

        from generation.aggregate import profile_changes

        lines = profile_changes(self.previous, self.aggregated.prediction.profile.to_dict())
        items = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
        return (
            f"<h2>Profile of user {html.escape(self.user.name)}</h2>"
            f"<p class='muted'>from {len(self.aggregated.subsets)} subset(s) of the stored "
            f"images; changed since the previous run:</p><ul id='profile-changes'>{items}</ul>"
        )

    def finish(self, folder: Path, prompt: str, assessor_name: str) -> None:
        """Record the profile and the run, and print what changed and how to give feedback."""
        from generation.aggregate import profile_changes
        from generation.cache import prompt_version

        aggregated = self.aggregated
        profile = aggregated.prediction.profile
        profile_id = self.user.record_profile(
            profile,
            assessor_name,
            prompt_version(),
            aggregated.certainty,
            [h for liked, disliked in aggregated.subsets for h in liked + disliked],
        )
        self.user.record_run(str(Path(folder).resolve()), prompt, profile_id)
        say(f"profile of {self.user.name}, changed since the previous run:", err=True)
        for line in profile_changes(self.previous, profile.to_dict()):
            say(f"  {line}", err=True)
        self.user.close()


def register(app: typer.Typer) -> None:
    """Add `user ...`, `like` and `dislike` to the `ptgen` app."""
    app.add_typer(user_app, name="user")
    app.command("like")(like)
    app.command("dislike")(dislike)
