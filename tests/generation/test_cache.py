"""The profile cache: content keys, atomic writes, misses."""

from __future__ import annotations

import json

from PIL import Image

from generation.cache import ProfileCache, default_cache_dir
from preferthinker.profile import Profile, UserProfile
from preferthinker.results import ProfilePrediction


def _img(color):
    return Image.new("RGB", (8, 8), color)


def _prediction(status="ok"):
    return ProfilePrediction(UserProfile(liked=Profile(color=["Pink"])), status, "<raw>")


def test_key_depends_on_content_not_order_and_on_assessor(tmp_path):
    cache = ProfileCache(tmp_path)
    a, b, c = _img("red"), _img("blue"), _img("green")
    key = cache.key([a, b], [c], "m", "v1")
    assert key == cache.key([b, a], [c], "m", "v1")
    assert key == cache.key([_img("red"), _img("blue")], [_img("green")], "m", "v1")
    assert key != cache.key([a, b], [c], "other", "v1")
    assert key != cache.key([a, b], [c], "m", "v2")
    assert key != cache.key([a, c], [b], "m", "v1")  # liked and disliked are not interchangeable
    assert key != cache.key([a, b], None, "m", "v1")


def test_put_get_roundtrip_including_failed(tmp_path):
    cache = ProfileCache(tmp_path / "c")
    assert cache.get("k") is None
    cache.put("k", _prediction(), {"assessor": "m"})
    got = cache.get("k")
    assert got.profile.liked.color == ("Pink",) and got.status == "ok" and got.usage.calls == 0
    cache.put("f", _prediction("failed"))
    assert cache.get("f").status == "failed"
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == [
        "f.json",
        "k.json",
    ]  # no temp files left


def test_corrupt_entry_is_a_miss(tmp_path):
    cache = ProfileCache(tmp_path)
    cache.path("k").write_text("{not json")
    assert cache.get("k") is None
    cache.path("k").write_text(json.dumps({"profile": {}}))
    assert cache.get("k") is None
    assert cache.clear() == 1


def test_default_dir_respects_env(monkeypatch, tmp_path):
    monkeypatch.setenv("PTGEN_CACHE_DIR", str(tmp_path))
    assert default_cache_dir() == tmp_path
    monkeypatch.delenv("PTGEN_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", "/x")
    assert str(default_cache_dir()) == "/x/ptgen/profiles"
