"""The ptgen nodes, each declared once as a `NodeSpec` over a function of
`comfyui_nodes.functions`."""

from __future__ import annotations

from comfyui_nodes import functions as f
from comfyui_nodes.spec import (
    ASSESSOR,
    BOOLEAN,
    COMBO,
    FLOAT,
    IMAGE,
    INT,
    PROFILE,
    STRING,
    NodeSpec,
    Port,
)
from generation.strategies import describe_strategies
from preferthinker.assessor import DEFAULT_ASSESSOR
from preferthinker.engines import describe_specs

ASSESSOR_IN = Port("assessor", ASSESSOR, "From a PTGen Assessor node.")
PROFILE_OUT = Port("profile", PROFILE, "The predicted profile (liked and disliked).")
LIKED = Port("liked", IMAGE, "Images the user likes (a batch; up to 5 are typical).")
DISLIKED_OPT = Port("disliked", IMAGE, "Images the user dislikes (optional).", optional=True)

NODE_SPECS: tuple[NodeSpec, ...] = (
    NodeSpec(
        key="PTGenAssessor",
        display_name="PreferThinker Assessor",
        function=f.load_assessor,
        inputs=(
            Port(
                "assessor", STRING, f"The assessor: {describe_specs()}.", default=DEFAULT_ASSESSOR
            ),
            Port(
                "model_name",
                STRING,
                "Served model name, for URLs (empty: ask the server).",
                default="",
            ),
            Port(
                "device",
                COMBO,
                "Where an in-process model runs.",
                options=f.DEVICES,
                default=f.AUTO,
            ),
            Port(
                "dtype",
                COMBO,
                "Weights dtype of an in-process model.",
                options=f.DTYPES,
                default=f.AUTO,
            ),
            Port(
                "debias",
                BOOLEAN,
                "Judge each pair in both orders (twice the cost, less position bias).",
                default=False,
            ),
            Port(
                "max_retries",
                INT,
                "Extra attempts when an answer cannot be parsed.",
                default=1,
                min=0,
                max=5,
            ),
            Port(
                "max_new_tokens",
                INT,
                "Completion budget per judgement.",
                default=4096,
                min=8,
                max=16384,
                step=8,
            ),
            Port(
                "timeout",
                FLOAT,
                "Seconds per request to a server.",
                default=f.DEFAULT_TIMEOUT,
                min=1.0,
                max=7200.0,
                step=1.0,
            ),
        ),
        outputs=(Port("assessor_out", ASSESSOR, "The assessor, for the other PTGen nodes."),),
    ),
    NodeSpec(
        key="PTGenPredictProfile",
        display_name="PTGen Predict Profile",
        function=f.predict_profile,
        inputs=(ASSESSOR_IN, LIKED, DISLIKED_OPT),
        outputs=(
            PROFILE_OUT,
            Port("profile_text", STRING, "The profile in the authors' tag format."),
            Port("status", STRING, "ok, partial, or failed."),
        ),
    ),
    NodeSpec(
        key="PTGenPersonalizePrompt",
        display_name="PTGen Personalize Prompt",
        function=f.personalize_prompt,
        inputs=(
            Port("profile", PROFILE, "From PTGen Predict Profile."),
            Port("prompt", STRING, "What to depict.", multiline=True, default=""),
            Port("strength", INT, "Profile elements to inject (0-5).", default=5, min=0, max=5),
            Port(
                "negative",
                STRING,
                "Your own negative prompt, kept first.",
                multiline=True,
                default="",
                optional=True,
            ),
            Port(
                "token_limit",
                INT,
                "Tokens the text encoder reads (CLIP: 75).",
                default=75,
                min=8,
                max=512,
                optional=True,
            ),
        ),
        outputs=(
            Port("positive", STRING, "Prompt with the liked terms, for CLIP Text Encode."),
            Port("negative_prompt", STRING, "Disliked terms, for the negative CLIP Text Encode."),
        ),
    ),
    NodeSpec(
        key="PTGenRerankImages",
        display_name="PTGen Rerank Images (best of N)",
        function=f.rerank_images,
        inputs=(
            ASSESSOR_IN,
            Port("images", IMAGE, "The candidates (a batch)."),
            Port(
                "strategy",
                COMBO,
                f"Tournament: {describe_strategies()}.",
                options=f.STRATEGIES,
                default="knockout",
            ),
            Port(
                "top_k",
                INT,
                "How many of the best to keep in the sorted batch (0: all).",
                default=0,
                min=0,
                max=4096,
            ),
            Port(
                "profile",
                PROFILE,
                "Judge from this profile (else from the reference images).",
                optional=True,
            ),
            Port(
                "liked",
                IMAGE,
                "Liked references, used when no profile is connected.",
                optional=True,
            ),
            Port("disliked", IMAGE, "Disliked references (optional).", optional=True),
            Port(
                "prefilter",
                STRING,
                "similarity:MODEL (e.g. similarity:efficientnet-lite0): rank only "
                "the `keep` images most like the liked references; empty: rank all.",
                default="",
                optional=True,
            ),
            Port(
                "keep",
                INT,
                "Images the pre-filter passes to the tournament.",
                default=8,
                min=2,
                max=4096,
                optional=True,
            ),
        ),
        outputs=(
            Port("best", IMAGE, "The best image."),
            Port("ranked", IMAGE, "The batch sorted best first (top_k of it)."),
            Port("scores", STRING, "JSON: order, per-candidate score/rank/wins, every comparison."),
            Port("reasoning", STRING, "The matches and the winner's element-by-element rationale."),
            Port("best_index", INT, "Batch index (0-based) of the best image."),
        ),
    ),
    NodeSpec(
        key="PTGenComparePair",
        display_name="PTGen Compare Pair",
        function=f.compare_pair,
        inputs=(
            ASSESSOR_IN,
            Port("image_a", IMAGE, "Candidate A (first image of the batch)."),
            Port("image_b", IMAGE, "Candidate B (first image of the batch)."),
            Port(
                "profile",
                PROFILE,
                "Judge from this profile (else from the reference images).",
                optional=True,
            ),
            Port(
                "liked",
                IMAGE,
                "Liked references, used when no profile is connected.",
                optional=True,
            ),
            Port("disliked", IMAGE, "Disliked references (optional).", optional=True),
        ),
        outputs=(
            Port("winner", STRING, "A, B, or undecided."),
            Port("winner_image", IMAGE, "The preferred image (A when undecided)."),
            Port("scores", STRING, "JSON: per-element scores of A and B, and the totals."),
            Port("reasoning", STRING, "The element-by-element rationale."),
        ),
    ),
    NodeSpec(
        key="PTGenProfileToText",
        display_name="PTGen Profile to Text",
        function=f.profile_text,
        inputs=(
            Port("profile", PROFILE, "From PTGen Predict Profile."),
            Port(
                "format",
                COMBO,
                "tags (authors' format), json, or prose.",
                options=f.PROFILE_FORMATS,
                default="tags",
            ),
        ),
        outputs=(Port("text", STRING, "The profile as text."),),
    ),
    NodeSpec(
        key="PTGenLoadImageFolder",
        display_name="PTGen Load Image Folder",
        function=f.load_image_folder,
        fingerprint=f.folder_fingerprint,
        inputs=(
            Port(
                "folder",
                STRING,
                "Folder of images (PNG, JPEG, WebP): inside ComfyUI's input folder, "
                "`name [output]` for its output folder, or an absolute path.",
                default="",
            ),
            Port(
                "max_images",
                INT,
                "Keep the first n, by file name (0: all).",
                default=0,
                min=0,
                max=4096,
            ),
            Port(
                "width",
                INT,
                "Batch width (0: the first image's).",
                default=0,
                min=0,
                max=8192,
                step=8,
            ),
            Port(
                "height",
                INT,
                "Batch height (0: the first image's).",
                default=0,
                min=0,
                max=8192,
                step=8,
            ),
        ),
        outputs=(
            Port("images_out", IMAGE, "The images as one batch."),
            Port("count", INT, "How many images were loaded."),
        ),
    ),
)

NODE_SPECS += (
    NodeSpec(
        key="PTGenLoadUser",
        display_name="PTGen Load Stored User",
        function=f.load_user,
        fingerprint=f.user_fingerprint,
        inputs=(
            Port("user", STRING, "Stored user name (empty: the default user).", default=""),
            Port(
                "store",
                STRING,
                "User store folder (empty: PTGEN_STORE or the platform's).",
                default="",
                optional=True,
            ),
            Port(
                "assessor",
                ASSESSOR,
                "Predict the profile from all stored images (else the last recorded profile).",
                optional=True,
            ),
            Port(
                "width",
                INT,
                "Batch width (0: the first image's).",
                default=0,
                min=0,
                max=8192,
                step=8,
                optional=True,
            ),
            Port(
                "height",
                INT,
                "Batch height (0: the first image's).",
                default=0,
                min=0,
                max=8192,
                step=8,
                optional=True,
            ),
        ),
        outputs=(
            Port("liked_out", IMAGE, "The newest 5 liked images."),
            Port("disliked_out", IMAGE, "The newest 5 disliked images (None when there are none)."),
            Port("profile_out", PROFILE, "The user's profile."),
            Port("profile_text", STRING, "The profile in the authors' tag format."),
            Port("summary", STRING, "The user's name and image counts."),
        ),
    ),
    NodeSpec(
        key="PTGenRecordFeedback",
        display_name="PTGen Record Feedback",
        function=f.record_feedback,
        output_node=True,
        not_idempotent=True,
        inputs=(
            Port("images", IMAGE, "The batch to label."),
            Port("user", STRING, "Stored user name (empty: the default user).", default=""),
            Port(
                "label",
                COMBO,
                "liked or disliked (a later label replaces an earlier one).",
                options=f.FEEDBACK_LABELS,
                default="liked",
            ),
            Port("indices", STRING, "0-based batch numbers, e.g. '0, 2' (empty: all).", default=""),
            Port(
                "store",
                STRING,
                "User store folder (empty: PTGEN_STORE or the platform's).",
                default="",
                optional=True,
            ),
        ),
        outputs=(Port("result", STRING, "One line per image: added, already so, relabelled."),),
    ),
)

NODE_SPECS_BY_KEY = {spec.key: spec for spec in NODE_SPECS}
