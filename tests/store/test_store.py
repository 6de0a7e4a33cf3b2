"""The user store on real files and SQLite: labels, provenance, migration, concurrency,
export/import, and databases that must be left untouched."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from generation.store import _SCHEMA_V1, SCHEMA_VERSION, Provenance, UserStore
from preferthinker.errors import InputError, StoreError

ROOT = Path(__file__).resolve().parents[2]


def test_create_stores_each_image_once_by_content(store, pngs, tmp_path):
    liked = pngs("liked", [1, 2, 3])
    copy = tmp_path / "copy.png"
    copy.write_bytes(liked[0].read_bytes())
    user = store.create("ana", liked=[tmp_path / "liked"], disliked=pngs("disliked", [9]))
    user.label([copy], "liked")  # same content under another name: not stored again
    assert user.counts() == {"liked": 3, "disliked": 1}
    assert len(list(user.images_dir.iterdir())) == 4
    assert store.names() == ["ana"]
    newest = user.images("liked")[0]
    assert newest.path.read_bytes() == liked[2].read_bytes()  # most recent first
    assert newest.provenance.origin == str(liked[2])


def test_later_label_wins_and_same_label_is_reported(store, pngs):
    (image,) = pngs("x", [5])
    user = store.create("ana")
    assert [c.outcome for c in user.label([image], "liked")] == ["added"]
    again = user.label([image], "liked")
    assert again[0].outcome == "unchanged" and "already liked" in again[0].describe()
    flipped = user.label(
        [image], "disliked", Provenance(run="run-1", candidate=2, prompt="a castle", seed=7)
    )
    assert flipped[0].outcome == "relabelled" and flipped[0].previous == "liked"
    assert user.counts() == {"liked": 0, "disliked": 1}
    stored = user.images("disliked")[0]
    assert (stored.provenance.run, stored.provenance.candidate, stored.provenance.seed) == (
        "run-1",
        2,
        7,
    )
    # The like is superseded, not lost: the log keeps both rows.
    assert user.db.execute("SELECT count(*) FROM labels").fetchone()[0] == 2


def test_a_non_image_stores_nothing(store, pngs, tmp_path):
    good = pngs("x", [1])
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    user = store.create("ana")
    with pytest.raises(InputError, match="not a readable image"):
        user.label(good + [bad], "liked")
    assert user.counts() == {"liked": 0, "disliked": 0}


def test_forget_removes_labels_and_file(store, pngs):
    images = pngs("x", [1, 2])
    user = store.create("ana", liked=images)
    gone = user.forget([str(images[0])])
    assert len(gone) == 1 and user.counts()["liked"] == 1
    assert len(list(user.images_dir.iterdir())) == 1
    with pytest.raises(InputError, match="not an image of user ana"):
        user.forget(["deadbeefdeadbeef"])


def test_unknown_user_and_default(store):
    with pytest.raises(InputError, match="unknown user 'bob'"):
        store.user("bob")
    with pytest.raises(InputError, match="no default user"):
        store.user(None)
    store.create("ana").close()
    store.set_default("ana")
    assert store.user(None).name == "ana"


def test_migration_from_a_v1_store(store, pngs):
    folder = store.folder("old")
    (folder / "images").mkdir(parents=True)
    (image,) = pngs("x", [3])
    import hashlib

    digest = hashlib.sha256(image.read_bytes()).hexdigest()
    (folder / "images" / f"{digest}.png").write_bytes(image.read_bytes())
    db = sqlite3.connect(folder / "store.db")
    db.executescript(_SCHEMA_V1)
    db.execute("INSERT INTO images VALUES (?, ?, 16, 16, 1.0)", (digest, f"{digest}.png"))
    db.execute(
        "INSERT INTO labels (hash, label, at, origin) VALUES (?, 'liked', 1.0, 'refs')", (digest,)
    )
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    user = store.user("old")
    assert user.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert [i.hash for i in user.images("liked")] == [digest]  # v1 rows kept
    user.record_profile(
        __import__("preferthinker.profile", fromlist=["UserProfile"]).UserProfile(),
        "analytic",
        "v1",
    )
    assert len(user.profiles()) == 1  # v2 table exists


@pytest.mark.parametrize("content", ["garbage", "newer"])
def test_corrupt_or_newer_database_is_an_error_and_untouched(store, content):
    folder = store.folder("ana")
    folder.mkdir(parents=True)
    path = folder / "store.db"
    if content == "garbage":
        path.write_bytes(b"this is not sqlite" * 100)
    else:
        db = sqlite3.connect(path)
        db.execute("CREATE TABLE future (x)")
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
        db.commit()
        db.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match="not a usable database|newer than"):
        store.user("ana")
    assert path.read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == ["store.db"]  # no -wal, no -shm


def test_export_import_round_trip(store, pngs, tmp_path):
    from preferthinker.profile import Profile, UserProfile

    user = store.create("ana", liked=pngs("l", [1, 2]), disliked=pngs("d", [3]))
    user.label(pngs("l2", [1]), "disliked")  # relabel: the log has three rows for two images
    pid = user.record_profile(
        UserProfile(Profile(color=["Red"])), "analytic", "v1", {"liked": {"color": 1.0}}, ["abc"]
    )
    user.record_run("runs/001", "a castle", pid)
    archive = user.export(tmp_path / "ana.zip")
    other = UserStore(tmp_path / "other").import_archive(archive, name="ana2")
    assert other.counts() == user.counts() == {"liked": 1, "disliked": 2}
    assert [(i.hash, i.label, i.path.read_bytes()) for i in other.images()] == [
        (i.hash, i.label, i.path.read_bytes()) for i in user.images()
    ]
    assert other.profiles()[0]["profile"]["liked"]["color"] == ["Red"]
    assert other.runs()[0]["prompt"] == "a castle"
    with pytest.raises(InputError, match="exists already"):
        store.import_archive(archive)
    bad = tmp_path / "bad.zip"
    bad.write_text("nope")
    with pytest.raises(InputError, match="not a ptgen user archive"):
        store.import_archive(bad)


def test_export_that_cannot_be_written_is_a_one_line_error(store, pngs, tmp_path):
    user = store.create("ana", liked=pngs("l", [1, 2]))
    # /proc accepts no new files even for root.
    with pytest.raises(InputError, match="cannot write the archive"):
        user.export("/proc/ana.zip")
    next(user.images_dir.iterdir()).unlink()  # a stored image someone deleted by hand
    with pytest.raises(StoreError, match="cannot write the archive .*images"):
        user.export(tmp_path / "ana.zip")
    assert not (tmp_path / "ana.zip").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".ana.zip")] == []


def _rewritten(archive: Path, target: Path, change, drop_images: bool = False) -> Path:
    """A copy of a user archive with its manifest changed by `change` (a hostile archive)."""
    import json
    import zipfile

    with zipfile.ZipFile(archive) as source, zipfile.ZipFile(target, "w") as out:
        manifest = json.loads(source.read("user.json"))
        out.writestr("user.json", json.dumps(change(manifest)))
        for member in source.namelist():
            if member != "user.json" and not drop_images:
                out.writestr(member, source.read(member))
    return target


def _with_extra_column(manifest):
    manifest["tables"]["images"][0]["bogus"] = 1
    return manifest


def _with_path_name(manifest):
    manifest["tables"]["images"][0]["file"] = "../escape.png"
    return manifest


@pytest.mark.parametrize(
    "change, drop_images",
    [
        (lambda m: m, True),  # images missing from the zip
        (lambda m: [1, 2], False),  # a manifest that is not an object
        (_with_extra_column, False),  # a row the table does not fit
        (_with_path_name, False),  # an image name that leaves the user folder
    ],
)
def test_a_bad_archive_is_an_input_error_and_adds_no_user(store, pngs, tmp_path, change,
                                                          drop_images):
    archive = store.create("ana", liked=pngs("l", [1])).export(tmp_path / "ana.zip")
    other = UserStore(tmp_path / "other")
    bad = _rewritten(archive, tmp_path / "bad.zip", change, drop_images)
    with pytest.raises(InputError, match="not a ptgen user archive|is a path"):
        other.import_archive(bad)
    assert not other.exists("ana")  # no half-made user blocks a later, good import
    assert other.import_archive(archive).counts()["liked"] == 1


def test_two_processes_labelling_at_once_both_land(store, pngs, tmp_path):
    store.create("ana").close()
    script = textwrap.dedent("""
        import sys, time
        from pathlib import Path
        from generation.store import UserStore
        import PIL.Image, PIL.PngImagePlugin  # loaded before the gate: both start writing at once
        root, folder, go = sys.argv[1:4]
        user = UserStore(root).user("ana")
        paths = sorted(Path(folder).iterdir())
        while not Path(go).exists():
            time.sleep(0.001)
        for path in paths:
            user.label([path], "liked")
    """)
    pngs("a", range(0, 80))
    pngs("b", range(100, 180))
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(store.root), str(tmp_path / side), str(go)],
            env=env,
            stderr=subprocess.PIPE,
        )
        for side in ("a", "b")
    ]
    go.touch()
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    assert store.user("ana").counts()["liked"] == 160


def test_read_only_store_is_a_one_line_error(store, pngs):
    if os.geteuid() == 0:
        pytest.skip("root ignores file permissions")
    user = store.create("ana", liked=pngs("x", [1]))
    user.close()
    folder = store.folder("ana")
    modes = {p: p.stat().st_mode for p in [folder, folder / "images", *folder.iterdir()]}
    for path in modes:
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        # "not a usable database" would send the user to move a good store away.
        with pytest.raises(StoreError, match="read-only|cannot write"):
            reopened = store.user("ana")
            reopened.label(pngs("y", [2]), "liked")
    finally:
        for path, mode in modes.items():
            path.chmod(mode)
    assert store.user("ana").counts()["liked"] == 1


def test_default_that_cannot_be_written_is_a_store_error(store):
    store.create("ana").close()
    # A folder where the default file goes fails the write even for root (no permissions needed).
    (store.root / "default").mkdir()
    with pytest.raises(StoreError, match="cannot write .*default"):
        store.set_default("ana")


def test_store_on_a_read_only_file_system_is_a_store_error(tmp_path):
    # /proc accepts no new folders even for root: a real read-only place on every Linux.
    with pytest.raises(StoreError, match="cannot create the user folder"):
        UserStore("/proc/ptgen-store").create("ana")


def test_a_writer_waits_for_another_process_holding_the_lock(store, pngs, tmp_path):
    first, second = pngs("x", [1, 2])
    holder = store.create("ana")
    holder.db.execute("BEGIN IMMEDIATE")  # this process is mid-write
    holder.db.execute("INSERT INTO images VALUES ('h', 'h.png', 1, 1, 0)")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    script = (
        "import sys; from generation.store import UserStore; "
        "UserStore(sys.argv[1]).user('ana').label([sys.argv[2]], 'liked')"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(store.root), str(second)],
        env=env,
        stderr=subprocess.PIPE,
    )
    import time

    time.sleep(2.0)  # the other process is blocked on the lock meanwhile
    holder.db.execute("COMMIT")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    holder.label([first], "liked")
    assert store.user("ana").counts()["liked"] == 2
