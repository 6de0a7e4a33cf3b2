"""Write the example ComfyUI workflows of this folder, in API and UI format.

    python examples/comfyui/make_workflows.py [--assessor ASSESSOR] [--out DIR]

- best_of_n_personalized: liked references -> profile -> personalized prompt -> a batch of 4 from
  CheckpointLoaderSimple + KSampler -> PTGen Rerank Images -> the best image saved.
- rerank_folder: a folder of candidates (PTGen Load Image Folder) ranked for a user given by two
  liked images (LoadImage + ImageBatch); the best saved, the sorted batch and reasoning shown.
- stored_user_rerank: a user from the user store (PTGen Load Stored User: their references and
  profile, aggregated over every stored image), a folder of candidates ranked for them, and
  PTGen Record Feedback storing a like for the best one (edit `indices` to like others), so the
  next run of any workflow or `ptgen generate --user` knows the user a little better.

The assessor defaults to the base model id; pass a `ptgen serve` URL or a local folder instead.
`tests/comfyui/test_workflows.py` checks that these files match what this script writes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from comfyui_nodes.workflow import Graph
from preferthinker.assessor import DEFAULT_ASSESSOR
from preferthinker.engines.openai_engine import DEFAULT_TIMEOUT

HERE = Path(__file__).resolve().parent


def assessor_node(g: Graph, assessor: str, model_name: str = "", pos=(0, 0)):
    return g.add(
        "PTGenAssessor",
        pos=pos,
        assessor=assessor,
        model_name=model_name,
        device="auto",
        dtype="auto",
        debias=False,
        max_retries=1,
        max_new_tokens=4096,
        timeout=DEFAULT_TIMEOUT,
    )


def liked_batch(g: Graph, first: str, second: str, x: int = 0, y: int = 300):
    a = g.add("LoadImage", title="Liked 1", pos=(x, y), image=first)
    b = g.add("LoadImage", title="Liked 2", pos=(x, y + 340), image=second)
    return g.add(
        "ImageBatch", title="Liked references", pos=(x + 340, y + 120), image1=a[0], image2=b[0]
    )


def best_of_n(assessor: str = DEFAULT_ASSESSOR, model_name: str = "") -> Graph:
    g = Graph()
    judge = assessor_node(g, assessor, model_name)
    liked = liked_batch(g, "liked_1.png", "liked_2.png")
    profile = g.add("PTGenPredictProfile", pos=(700, 0), assessor=judge[0], liked=liked[0])
    prompt = g.add(
        "PTGenPersonalizePrompt",
        pos=(1050, 0),
        profile=profile[0],
        prompt="a lighthouse on a cliff at dusk",
        strength=5,
        negative="blurry, watermark",
        token_limit=75,
    )
    checkpoint = g.add(
        "CheckpointLoaderSimple", pos=(700, 400), ckpt_name="v1-5-pruned-emaonly.safetensors"
    )
    positive = g.add(
        "CLIPTextEncode",
        title="Positive (personalized)",
        pos=(1400, 0),
        text=prompt[0],
        clip=checkpoint[1],
    )
    negative = g.add(
        "CLIPTextEncode",
        title="Negative (dislikes)",
        pos=(1400, 250),
        text=prompt[1],
        clip=checkpoint[1],
    )
    latent = g.add("EmptyLatentImage", pos=(1050, 400), width=512, height=512, batch_size=4)
    sampler = g.add(
        "KSampler",
        pos=(1750, 0),
        model=checkpoint[0],
        seed=0,
        steps=25,
        cfg=7.0,
        sampler_name="euler",
        scheduler="normal",
        positive=positive[0],
        negative=negative[0],
        latent_image=latent[0],
        denoise=1.0,
    )
    decoded = g.add("VAEDecode", pos=(2100, 0), samples=sampler[0], vae=checkpoint[2])
    ranked = g.add(
        "PTGenRerankImages",
        pos=(2400, 0),
        assessor=judge[0],
        images=decoded[0],
        strategy="knockout",
        top_k=0,
        profile=profile[0],
        liked=liked[0],
    )
    g.add(
        "SaveImage",
        title="Best of 4",
        pos=(2800, 0),
        images=ranked[0],
        filename_prefix="ptgen_best",
    )
    g.add("PreviewImage", title="All, best first", pos=(2800, 350), images=ranked[1])
    g.add("PreviewAny", title="Why", pos=(2800, 700), source=ranked[3])
    g.add("PreviewAny", title="Profile", pos=(1050, 250), source=profile[1])
    return g


def rerank_folder(
    assessor: str = DEFAULT_ASSESSOR, model_name: str = "", folder: str = "candidates"
) -> Graph:
    g = Graph()
    judge = assessor_node(g, assessor, model_name)
    liked = liked_batch(g, "liked_1.png", "liked_2.png")
    candidates = g.add(
        "PTGenLoadImageFolder", pos=(700, 400), folder=folder, max_images=0, width=0, height=0
    )
    profile = g.add("PTGenPredictProfile", pos=(700, 0), assessor=judge[0], liked=liked[0])
    ranked = g.add(
        "PTGenRerankImages",
        pos=(1100, 0),
        assessor=judge[0],
        images=candidates[0],
        strategy="swiss",
        top_k=3,
        profile=profile[0],
        liked=liked[0],
    )
    g.add(
        "SaveImage", title="Best", pos=(1500, 0), images=ranked[0], filename_prefix="ptgen_rerank"
    )
    g.add("PreviewImage", title="Top 3, best first", pos=(1500, 350), images=ranked[1])
    g.add("PreviewAny", title="Scores", pos=(1500, 700), source=ranked[2])
    g.add("PreviewAny", title="Why", pos=(1500, 950), source=ranked[3])
    return g


def stored_user_rerank(
    assessor: str = DEFAULT_ASSESSOR,
    model_name: str = "",
    folder: str = "candidates",
    user: str = "",
) -> Graph:
    g = Graph()
    judge = assessor_node(g, assessor, model_name)
    stored = g.add("PTGenLoadUser", pos=(0, 400), user=user, assessor=judge[0])
    candidates = g.add(
        "PTGenLoadImageFolder", pos=(350, 400), folder=folder, max_images=0, width=0, height=0
    )
    ranked = g.add(
        "PTGenRerankImages",
        pos=(750, 0),
        assessor=judge[0],
        images=candidates[0],
        strategy="knockout",
        top_k=0,
        profile=stored[2],
        liked=stored[0],
        disliked=stored[1],
    )
    g.add(
        "PTGenRecordFeedback",
        title="Like the best (edit indices to like others)",
        pos=(1150, 0),
        images=ranked[1],
        user=user,
        label="liked",
        indices="0",
    )
    g.add("PreviewImage", title="All, best first", pos=(1150, 350), images=ranked[1])
    g.add("PreviewAny", title="Why", pos=(1150, 700), source=ranked[3])
    g.add("PreviewAny", title="User", pos=(350, 0), source=stored[4])
    return g


EXAMPLES = {
    "best_of_n_personalized": best_of_n,
    "rerank_folder": rerank_folder,
    "stored_user_rerank": stored_user_rerank,
}


def write_all(out: Path = HERE, assessor: str = DEFAULT_ASSESSOR) -> list[Path]:
    """Write `<name>_api.json` and `<name>_ui.json` for every example; returns the paths."""
    written = []
    for name, build in EXAMPLES.items():
        graph = build(assessor)
        for suffix, data in (("api", graph.to_api()), ("ui", graph.to_ui())):
            path = out / f"{name}_{suffix}.json"
            path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
            written.append(path)
    return written


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assessor", default=DEFAULT_ASSESSOR)
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args()
    for path in write_all(args.out, args.assessor):
        print(path)
