"""The two user-store nodes, called the way ComfyUI's V1 executor calls them, on a real store."""

from __future__ import annotations

import pytest

from comfyui_nodes import NODE_CLASS_MAPPINGS
from generation.store import UserStore
from preferthinker.errors import InputError


def run_node(key: str, **inputs):
    cls = NODE_CLASS_MAPPINGS[key]
    return getattr(cls(), cls.FUNCTION)(**inputs)


def test_record_feedback_then_load_user(tmp_path, scripted_assessor, red_batch):
    store = str(tmp_path / "store")
    UserStore(store).create("ana").close()
    (result,) = run_node(
        "PTGenRecordFeedback",
        images=red_batch,
        user="ana",
        label="liked",
        indices="3, 4",
        store=store,
    )
    assert result.splitlines()[-1] == "user ana: 2 liked, 0 disliked"
    (again,) = run_node(
        "PTGenRecordFeedback",
        images=red_batch,
        user="ana",
        label="disliked",
        indices="4,0",
        store=store,
    )
    assert "was liked, now disliked" in again and again.endswith("1 liked, 2 disliked")
    before = NODE_CLASS_MAPPINGS["PTGenLoadUser"].IS_CHANGED(user="ana", store=store)
    liked, disliked, profile, text, summary = run_node(
        "PTGenLoadUser", user="ana", store=store, assessor=scripted_assessor
    )
    assert tuple(liked.shape) == (1, 24, 32, 3) and abs(float(liked[0, 0, 0, 0]) - 0.9) < 0.01
    assert tuple(disliked.shape) == (2, 24, 32, 3)
    assert profile.liked.color == ("Crimson",) and "<visual preference profile>" in text
    assert summary == "ana: 1 liked, 2 disliked"
    # Recorded: without an assessor the node reads the profile back from the store.
    _, _, recorded, _, _ = run_node("PTGenLoadUser", user="ana", store=store)
    assert recorded == profile
    run_node(
        "PTGenRecordFeedback", images=red_batch, user="ana", label="liked", indices="1", store=store
    )
    assert NODE_CLASS_MAPPINGS["PTGenLoadUser"].IS_CHANGED(user="ana", store=store) != before


def test_user_nodes_bad_input(tmp_path, red_batch):
    store = str(tmp_path / "store")
    with pytest.raises(InputError, match="unknown user 'bob'"):
        run_node("PTGenRecordFeedback", images=red_batch, user="bob", store=store)
    UserStore(store).create("ana").close()
    with pytest.raises(InputError, match="outside the batch of 5"):
        run_node("PTGenRecordFeedback", images=red_batch, user="ana", indices="7", store=store)
    with pytest.raises(InputError, match="has no profile yet"):
        run_node("PTGenLoadUser", user="ana", store=store)
    assert UserStore(store).user("ana").counts() == {"liked": 0, "disliked": 0}
