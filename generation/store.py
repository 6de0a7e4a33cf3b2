"""The user store: each user's liked and disliked images, where they came from, and the profiles
and runs made from them, kept on disk so taste grows with use.

Layout (under `default_store_dir()`, `$PTGEN_STORE` or `--store DIR`):

    <root>/default            the default user's name (`ptgen user default NAME`)
    <root>/users/<name>/store.db          SQLite index (WAL mode, schema in `PRAGMA user_version`)
    <root>/users/<name>/images/<sha256>.<ext>   each image once, named by its content hash

Labels are an append-only log: an image's label is its latest row (liked then disliked: disliked),
so a like is never lost by a later mistake, only superseded. Two processes labelling at once both
land (WAL + a busy timeout; image files are written to a temporary name and renamed). A database
that is not SQLite, or that a newer ptgen wrote, is a one-line `StoreError` and is never written.

Schema versions (migrations run in order inside one transaction):
    1: images, labels
    2: profiles (predicted, with model, prompt version and per-element certainty), runs

Example:
    >>> store = UserStore("/tmp/ptgen-store")
    >>> user = store.create("ana", liked=["refs/liked"], disliked=["refs/disliked"])
    >>> user.label(["ptgen-runs/run-003/candidate-02-seed2.png"], "liked")
    >>> [entry.file for entry in user.images("liked")]
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import sqlite3
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence, Union

from preferthinker.errors import InputError, StoreError

STORE_ENV = "PTGEN_STORE"
SCHEMA_VERSION = 2
LABELS = ("liked", "disliked")
ARCHIVE_FORMAT = 1
BUSY_TIMEOUT_MS = 30_000
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

_SCHEMA_V1 = """
CREATE TABLE images (
    hash TEXT PRIMARY KEY,      -- sha256 of the file bytes
    file TEXT NOT NULL,         -- name inside images/
    width INTEGER, height INTEGER,
    added REAL NOT NULL
);
CREATE TABLE labels (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    hash TEXT NOT NULL REFERENCES images(hash),
    label TEXT NOT NULL CHECK (label IN ('liked', 'disliked')),
    at REAL NOT NULL,
    origin TEXT,                -- the reference folder or file it came from
    run TEXT, candidate INTEGER, prompt TEXT, seed INTEGER
);
CREATE INDEX labels_hash ON labels(hash);
"""

_SCHEMA_V2 = """
CREATE TABLE profiles (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    model TEXT, prompt_version TEXT,
    profile TEXT NOT NULL,      -- UserProfile JSON
    certainty TEXT,             -- {"liked": {element: 0..1}, "disliked": {...}} JSON
    images TEXT                 -- the image hashes the profile was predicted from, JSON
);
CREATE TABLE runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    folder TEXT, prompt TEXT,
    profile_id INTEGER REFERENCES profiles(id)
);
"""

# MIGRATIONS[v] brings a store at version v to v + 1.
MIGRATIONS = {0: _SCHEMA_V1, 1: _SCHEMA_V2}


def default_store_dir() -> Path:
    """`$PTGEN_STORE`, else the platform's user-data folder (`platformdirs` when installed),
    else `$XDG_DATA_HOME/ptgen`, else `~/.local/share/ptgen`.

    Example:
        >>> default_store_dir().name  # doctest: +SKIP
        'ptgen'
    """
    if os.environ.get(STORE_ENV):
        return Path(os.environ[STORE_ENV]).expanduser()
    try:
        import platformdirs
    except ImportError:
        base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
        return Path(base) / "ptgen"
    return Path(platformdirs.user_data_dir("ptgen", appauthor=False))


@dataclass
class Provenance:
    """Where a labelled image came from: a reference `origin`, or a run's candidate."""

    origin: Optional[str] = None
    run: Optional[str] = None
    candidate: Optional[int] = None
    prompt: Optional[str] = None
    seed: Optional[int] = None


@dataclass
class StoredImage:
    """One image of a user with its current label and where that label came from."""

    hash: str
    path: Path
    label: str
    at: float
    provenance: Provenance = field(default_factory=Provenance)


@dataclass
class Change:
    """What one `label` call did to one image: "added", "unchanged" (same label again) or
    "relabelled" (the later label wins; `previous` says what it was)."""

    hash: str
    label: str
    outcome: str
    previous: Optional[str] = None
    source: str = ""

    def describe(self) -> str:
        """One line for the user, e.g. "liked a1b2c3d4 (candidate-02.png)"."""
        what = f"{self.hash[:8]} ({self.source})" if self.source else self.hash[:8]
        if self.outcome == "unchanged":
            return f"note: {what} was already {self.label}; nothing changed"
        if self.outcome == "relabelled":
            return f"note: {what} was {self.previous}, now {self.label} (the later label wins)"
        return f"{self.label} {what}"


def check_name(name: str) -> str:
    """`name` if it is a usable user name (letters, digits, `_ . -`, at most 64), else InputError.

    Example:
        >>> check_name("ana")
        'ana'
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise InputError(
            f"user name {name!r} is not usable; use letters, digits, '_', '.', '-' "
            "(at most 64, starting with a letter or digit)"
        )
    return name


def _image_bytes(source: Any) -> tuple[bytes, str, int, int]:
    """The bytes to store, their extension, and the size, for a path or a PIL image.
    Files are checked to be readable images and kept byte for byte (the hash is the file's)."""
    from PIL import Image, UnidentifiedImageError

    if isinstance(source, Image.Image):
        from PIL.PngImagePlugin import PngInfo

        info = PngInfo()  # keep text chunks (e.g. the renderer's attributes)
        for key, value in source.info.items():
            if isinstance(value, str):
                info.add_text(key, value)
        buffer = io.BytesIO()
        source.save(buffer, format="PNG", pnginfo=info)
        return buffer.getvalue(), ".png", source.width, source.height
    path = Path(source)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    data = path.read_bytes()
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
            width, height = image.size
            kind = (image.format or "png").lower()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise InputError(
            f"{path} is not a readable image ({error.__class__.__name__}); "
            "give PNG, JPEG or WebP files"
        ) from None
    extension = {"jpeg": ".jpg"}.get(kind, "." + kind)
    return data, extension, width, height


def _atomic_bytes(path: Path, data: bytes) -> None:
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def open_database(path: Path, create: bool) -> sqlite3.Connection:
    """A connection to a store database at the current schema, migrating an older one.

    Raises:
        StoreError: not an SQLite database, written by a newer ptgen, or not writable. The file
            is left exactly as it was.
    """
    if not create and not path.is_file():
        raise StoreError(f"no store database at {path}")
    try:
        connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    except sqlite3.Error as error:
        raise StoreError(f"cannot open the user store {path}: {error}") from None
    try:
        # Read before any write: a corrupt or newer database must stay untouched.
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"the user store {path} has schema version {version}, newer than "
                f"this ptgen's {SCHEMA_VERSION}; upgrade ptgen "
                "(the store is untouched)"
            )
        connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if version < SCHEMA_VERSION:
            _migrate(connection, version)
        connection.execute("PRAGMA journal_mode = WAL").fetchone()
        # WAL + NORMAL never corrupts; a power cut may lose the last label, not the store.
        connection.execute("PRAGMA synchronous = NORMAL")
        connection.execute("PRAGMA foreign_keys = ON")
    except sqlite3.DatabaseError as error:
        connection.close()
        # A WAL database on a read-only disk fails with "unable to open database file" (its
        # -shm file cannot be made): that is the disk, not a corrupt store.
        if (
            "readonly" in str(error)
            or "read-only" in str(error)
            or not os.access(path.parent, os.W_OK)
        ):
            raise StoreError(
                f"the user store {path} is on a read-only disk ({error}); "
                "pass {store} DIR or set PTGEN_STORE to a writable folder",
                settings=("store",),
            ) from None
        raise StoreError(
            f"the user store {path} is not a usable database ({error}); it was "
            "left untouched: move it away or restore it from an export"
        ) from None
    except StoreError:
        connection.close()
        raise
    return connection


def _migrate(connection: sqlite3.Connection, version: int) -> None:
    connection.execute("BEGIN IMMEDIATE")
    try:
        # Re-read under the write lock: another process may have migrated meanwhile.
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        while version < SCHEMA_VERSION:
            for statement in MIGRATIONS[version].split(";"):
                if statement.strip():
                    connection.execute(statement)
            version += 1
            connection.execute(f"PRAGMA user_version = {version}")
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise


class User:
    """One user's images, labels, profiles and runs (open it with `UserStore.user(name)`).

    Args:
        name: the user's name; folder: `<root>/users/<name>`.
    """

    def __init__(self, name: str, folder: Path, create: bool = False):
        self.name = name
        self.folder = folder
        self.images_dir = folder / "images"
        try:
            if create:
                self.images_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StoreError(
                f"cannot create the user folder {folder}: {error.strerror}; "
                "pass {store} DIR or set PTGEN_STORE to a writable folder",
                settings=("store",),
            ) from None
        self.db_path = folder / "store.db"
        self.db = open_database(self.db_path, create)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "User":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _write(self, statements: Iterable[tuple[str, Sequence[Any]]]) -> None:
        try:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                for sql, args in statements:
                    self.db.execute(sql, args)
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
        except sqlite3.DatabaseError as error:  # locked, read-only, or rows that do not fit
            raise StoreError(f"cannot write the user store {self.db_path}: {error}") from None

    def _store_file(self, data: bytes, extension: str) -> tuple[str, str]:
        digest = hashlib.sha256(data).hexdigest()
        name = digest + extension
        target = self.images_dir / name
        if not target.exists():
            try:
                _atomic_bytes(target, data)
            except OSError as error:
                raise StoreError(
                    f"cannot write {target}: {error.strerror}; pass {{store}} DIR or "
                    "set PTGEN_STORE to a writable folder",
                    settings=("store",),
                ) from None
        return digest, name

    def current_label(self, digest: str) -> Optional[str]:
        row = self.db.execute(
            "SELECT label FROM labels WHERE hash = ? ORDER BY id DESC LIMIT 1", (digest,)
        ).fetchone()
        return row[0] if row else None

    def label(
        self,
        sources: Sequence[Any],
        label: str,
        provenance: Union[None, Provenance, Sequence[Provenance]] = None,
    ) -> list[Change]:
        """Label images (paths or PIL images) `liked` or `disliked`; each is stored once.

        Args:
            sources: image files or PIL images.
            label: "liked" or "disliked".
            provenance: one `Provenance` for all, or one per source (default: the path).

        Returns:
            One `Change` per source: added, unchanged (same label again) or relabelled.

        Raises:
            InputError: a file that is not a readable image (nothing is stored then).

        Example:
            >>> [c.describe() for c in user.label(["a.png"], "liked")]
            ['liked 3f2a9c1b (a.png)']
        """
        if label not in LABELS:
            raise InputError(f"label must be liked or disliked, got {label!r}")
        if provenance is None or isinstance(provenance, Provenance):
            provenances = [provenance] * len(sources)
        else:
            provenances = list(provenance)
        # Read every image first: one bad file stores nothing.
        loaded = [_image_bytes(source) for source in sources]
        changes: list[Change] = []
        now = time.time()
        for source, (data, extension, width, height), given in zip(
            sources, loaded, provenances, strict=True
        ):
            digest, file = self._store_file(data, extension)
            prov = given or Provenance(
                origin=None if not isinstance(source, (str, Path)) else str(source)
            )
            shown = Path(source).name if isinstance(source, (str, Path)) else ""
            self.db.execute("BEGIN IMMEDIATE")
            try:
                previous = self.current_label(digest)
                if previous == label:
                    self.db.execute("COMMIT")
                    changes.append(Change(digest, label, "unchanged", previous, shown))
                    continue
                self.db.execute(
                    "INSERT OR IGNORE INTO images (hash, file, width, height, added) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (digest, file, width, height, now),
                )
                self.db.execute(
                    "INSERT INTO labels (hash, label, at, origin, run, candidate, prompt, seed) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        digest,
                        label,
                        now,
                        prov.origin,
                        prov.run,
                        prov.candidate,
                        prov.prompt,
                        prov.seed,
                    ),
                )
                self.db.execute("COMMIT")
            except sqlite3.OperationalError as error:
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
                raise StoreError(f"cannot write the user store {self.db_path}: {error}") from None
            except BaseException:
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
                raise
            changes.append(
                Change(digest, label, "relabelled" if previous else "added", previous, shown)
            )
        return changes

    def images(self, label: Optional[str] = None) -> list[StoredImage]:
        """The user's images with their current label, most recently labelled first.

        Example:
            >>> [image.path.name for image in user.images("liked")][:2]
        """
        rows = self.db.execute(
            "SELECT l.hash, i.file, l.label, l.at, l.origin, l.run, l.candidate, l.prompt, l.seed "
            "FROM labels l JOIN images i ON i.hash = l.hash "
            "WHERE l.id = (SELECT max(id) FROM labels WHERE hash = l.hash) ORDER BY l.id DESC"
        ).fetchall()
        found = [
            StoredImage(r[0], self.images_dir / r[1], r[2], r[3], Provenance(*r[4:])) for r in rows
        ]
        return [image for image in found if label is None or image.label == label]

    def counts(self) -> dict[str, int]:
        """How many images have each current label, e.g. {"liked": 7, "disliked": 3}."""
        counts = {label: 0 for label in LABELS}
        for image in self.images():
            counts[image.label] += 1
        return counts

    def resolve(self, given: str) -> str:
        """The hash of a stored image named by a hash (or its first 8+ characters), a stored file
        name, or a file whose content is stored. Raises InputError when none matches."""
        if Path(given).is_file():
            digest = hashlib.sha256(Path(given).read_bytes()).hexdigest()
        else:
            digest = Path(given).name.split(".")[0].lower()
        rows = (
            self.db.execute("SELECT hash FROM images WHERE hash LIKE ?", (digest + "%",)).fetchall()
            if len(digest) >= 8
            else []
        )
        if len(rows) != 1:
            raise InputError(
                f"{given}: not an image of user {self.name} "
                f"({'ambiguous' if rows else 'not found'}); see `ptgen user show`"
            )
        return rows[0][0]

    def forget(self, given: Sequence[str]) -> list[str]:
        """Remove images (hash, hash prefix, stored file or a file with the same content) with
        all their labels and the file; returns the hashes removed."""
        digests = [self.resolve(item) for item in given]
        files = []
        for digest in digests:
            row = self.db.execute("SELECT file FROM images WHERE hash = ?", (digest,)).fetchone()
            files.append(self.images_dir / row[0])
        self._write(
            [
                (sql, (digest,))
                for digest in digests
                for sql in (
                    "DELETE FROM labels WHERE hash = ?",
                    "DELETE FROM images WHERE hash = ?",
                )
            ]
        )
        for path in files:
            path.unlink(missing_ok=True)
        return digests

    # -- profiles and runs ------------------------------------------------------------------

    def record_profile(
        self,
        profile: Any,
        model: str,
        prompt_version: str,
        certainty: Optional[dict] = None,
        images: Sequence[str] = (),
    ) -> int:
        """Record a predicted `UserProfile`; returns its id. Example: see `profiles`."""
        cursor = self.db.execute(
            "INSERT INTO profiles (at, model, prompt_version, profile, certainty, images) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (
                time.time(),
                model,
                prompt_version,
                json.dumps(profile.to_dict()),
                json.dumps(certainty or {}),
                json.dumps(list(images)),
            ),
        )
        return int(cursor.lastrowid)

    def profiles(self, limit: int = 10) -> list[dict[str, Any]]:
        """The latest recorded profiles, newest first, as dicts (profile, certainty, model...).

        Example:
            >>> user.profiles(1)[0]["profile"]["liked"]["color"]
        """
        rows = self.db.execute(
            "SELECT id, at, model, prompt_version, profile, certainty, images FROM profiles "
            "ORDER BY id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [
            {
                "id": r[0],
                "at": r[1],
                "model": r[2],
                "prompt_version": r[3],
                "profile": json.loads(r[4]),
                "certainty": json.loads(r[5] or "{}"),
                "images": json.loads(r[6] or "[]"),
            }
            for r in rows
        ]

    def record_run(self, folder: str, prompt: str, profile_id: Optional[int]) -> int:
        """Record a run made for this user; returns its id."""
        cursor = self.db.execute(
            "INSERT INTO runs (at, folder, prompt, profile_id) VALUES (?, ?, ?, ?)",
            (time.time(), folder, prompt, profile_id),
        )
        return int(cursor.lastrowid)

    def runs(self, limit: int = 5) -> list[dict[str, Any]]:
        """The latest runs, newest first: folder, prompt, when, profile id."""
        rows = self.db.execute(
            "SELECT id, at, folder, prompt, profile_id FROM runs ORDER BY id DESC LIMIT ?", (limit,)
        ).fetchall()
        return [
            {"id": r[0], "at": r[1], "folder": r[2], "prompt": r[3], "profile_id": r[4]}
            for r in rows
        ]

    # -- export -----------------------------------------------------------------------------

    def export(self, file: Union[str, Path]) -> Path:
        """Write a portable zip: `user.json` (every row of every table) and `images/`.

        Example:
            >>> user.export("ana.zip")
        """
        tables = {}
        for table in ("images", "labels", "profiles", "runs"):
            cursor = self.db.execute(f"SELECT * FROM {table} ORDER BY rowid")
            names = [column[0] for column in cursor.description]
            tables[table] = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        manifest = {
            "format": ARCHIVE_FORMAT,
            "schema": SCHEMA_VERSION,
            "user": self.name,
            "tables": tables,
        }
        file = Path(file)
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(prefix=f".{file.name}-", dir=file.parent)
        except OSError as error:
            raise InputError(f"cannot write the archive {file}: {error.strerror}") from None
        os.close(handle)
        try:
            with zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED) as archive:
                archive.writestr("user.json", json.dumps(manifest, indent=1))
                for row in tables["images"]:
                    archive.write(self.images_dir / row["file"], "images/" + row["file"])
            os.replace(temporary, file)
        except OSError as error:  # a full disk, or a stored image someone deleted
            Path(temporary).unlink(missing_ok=True)
            raise StoreError(
                f"cannot write the archive {file}: {error.strerror} ({error.filename})"
            ) from None
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return file


class UserStore:
    """All users under one root folder.

    Args:
        root: the store folder (None: `default_store_dir()`).

    Example:
        >>> store = UserStore()
        >>> store.names()
        ['ana']
    """

    def __init__(self, root: Union[None, str, Path] = None):
        self.root = Path(root).expanduser() if root else default_store_dir()

    def folder(self, name: str) -> Path:
        return self.root / "users" / check_name(name)

    def names(self) -> list[str]:
        users = self.root / "users"
        if not users.is_dir():
            return []
        return sorted(p.name for p in users.iterdir() if (p / "store.db").is_file())

    def exists(self, name: str) -> bool:
        return (self.folder(name) / "store.db").is_file()

    def create(self, name: str, liked: Sequence[Any] = (), disliked: Sequence[Any] = ()) -> User:
        """Create a user, optionally with reference images (files, folders or PIL images).

        Raises:
            InputError: the user exists already, or a reference is not a readable image.
        """
        if self.exists(name):
            raise InputError(f"user {name} exists already; add images with `ptgen like`")
        paths = {side: _expand(given) for side, given in (("liked", liked), ("disliked", disliked))}
        for side in paths.values():  # check every file before creating anything
            for item in side:
                _image_bytes(item)
        user = User(name, self.folder(name), create=True)
        for side, items in paths.items():
            if items:
                user.label(items, side)
        return user

    def user(self, name: Optional[str] = None) -> User:
        """Open a user (None: the default user). Raises InputError for an unknown user."""
        name = name or self.default()
        if name is None:
            raise InputError(
                "no user given and no default user set; pass --user NAME "
                "or run `ptgen user default NAME`"
            )
        if not self.exists(name):
            known = ", ".join(self.names()) or "none yet"
            raise InputError(
                f"unknown user {name!r} in {self.root} (users: {known}); "
                f"create it with `ptgen user create {name}`"
            )
        return User(name, self.folder(name))

    def default(self) -> Optional[str]:
        """The default user's name, or None."""
        path = self.root / "default"
        if not path.is_file():
            return None
        return path.read_text(encoding="utf-8").strip() or None

    def set_default(self, name: str) -> None:
        """Make `name` (an existing user) the default for `--user`."""
        if not self.exists(name):
            raise InputError(f"unknown user {name!r}; create it with `ptgen user create {name}`")
        try:
            _atomic_bytes(self.root / "default", name.encode("utf-8"))
        except OSError as error:
            raise StoreError(
                f"cannot write {self.root / 'default'}: {error.strerror}; pass --store DIR or "
                "set PTGEN_STORE to a writable folder"
            ) from None

    def import_archive(self, file: Union[str, Path], name: Optional[str] = None) -> User:
        """Create a user from an archive written by `User.export` (under `name`, default the
        archived name). Raises InputError for a bad archive or an existing user.

        Example:
            >>> UserStore("/tmp/other").import_archive("ana.zip").counts()
        """
        try:
            archive = zipfile.ZipFile(file)
        except (OSError, zipfile.BadZipFile) as error:
            raise InputError(f"{file} is not a ptgen user archive ({error})") from None
        with archive:
            try:
                manifest = json.loads(archive.read("user.json"))
                tables = manifest["tables"]
                if manifest.get("format") != ARCHIVE_FORMAT:
                    raise ValueError(f"archive format {manifest.get('format')}")
                name = check_name(name or manifest["user"])
                # Read and check every image before the user exists: a bad archive adds nothing.
                images = {}
                for row in tables["images"]:
                    if Path(row["file"]).name != row["file"]:
                        raise InputError(f"{file}: image name {row['file']!r} is a path")
                    data = archive.read("images/" + row["file"])
                    if hashlib.sha256(data).hexdigest() != row["hash"]:
                        raise InputError(f"{file}: image {row['file']} does not match its hash")
                    images[row["file"]] = data
            except (KeyError, ValueError, TypeError, AttributeError) as error:
                raise InputError(f"{file} is not a ptgen user archive ({error})") from None
            if self.exists(name):
                raise InputError(f"user {name} exists already; import under another name")
            user = User(name, self.folder(name), create=True)
            for image_name, data in images.items():
                _atomic_bytes(user.images_dir / image_name, data)
            statements = []
            for table in ("images", "labels", "profiles", "runs"):
                for row in tables.get(table, []):
                    columns = ", ".join(row)
                    marks = ", ".join("?" * len(row))
                    statements.append(
                        (f"INSERT INTO {table} ({columns}) VALUES ({marks})", tuple(row.values()))
                    )
            try:
                user._write(statements)
            except StoreError as error:
                # Rows the archive's tables do not fit: drop the user this call just made.
                user.close()
                shutil.rmtree(self.folder(name), ignore_errors=True)
                raise InputError(f"{file} is not a ptgen user archive ({error})") from None
        return user


def _expand(given: Any) -> list[Any]:
    """Files and PIL images from a path, a folder (its images, in name order) or a list."""
    from preferthinker.images import IMAGE_EXTENSIONS

    if given is None:
        return []
    entries = [given] if isinstance(given, (str, Path)) or hasattr(given, "save") else list(given)
    out: list[Any] = []
    for entry in entries:
        if isinstance(entry, (str, Path)) and Path(entry).is_dir():
            out += sorted(p for p in Path(entry).iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        elif isinstance(entry, (str, Path)) and not Path(entry).exists():
            raise InputError(f"{entry}: no such file or folder")
        else:
            out.append(entry)
    return out


__all__ = [
    "Change",
    "LABELS",
    "Provenance",
    "SCHEMA_VERSION",
    "STORE_ENV",
    "StoredImage",
    "User",
    "UserStore",
    "check_name",
    "default_store_dir",
    "open_database",
]
