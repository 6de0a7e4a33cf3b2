"""Style adapter (IP-Adapter): condition generation on the liked images, away from the disliked.

Words carry a palette, a brush texture or a medium only roughly; an IP-Adapter feeds the reference
images' CLIP embeddings into extra cross-attention layers of the UNet. `StyleAdapter` loads one
through diffusers' own `pipeline.load_ip_adapter(...)` and prepares `ip_adapter_image_embeds`:

- Liked references -> one embedding. Rule: each liked image is embedded once; the K most typical
  of them (highest cosine similarity to the mean of all liked embeddings; K = `top_k`, None: all)
  are averaged. Averaging is what "several references, one style" tools do (ComfyUI_IPAdapter_plus'
  "average" combine); picking the most typical first keeps one odd reference from pulling the mean.
- Disliked references -> the negative image embedding (their average). Under classifier-free
  guidance diffusers takes each adapter's tensor as `[negative half; positive half]`
  (`prepare_ip_adapter_image_embeds` splits it with `chunk(2)`), so the unconditional branch sees
  the disliked images and guidance pushes away from them. Without disliked references the
  negative half is what diffusers itself uses: zeros (or the encoder's features of a black image
  for "plus" adapters that read hidden states). Without CFG (turbo models, guidance <= 1) there is
  no negative branch: the disliked images are then unused, and `describe()` says so.
- Style-only scale (InstantStyle): `set_ip_adapter_scale` with a block dict puts the image into
  the style blocks only, so the reference's content (its objects, its layout) does not leak.
- Embeddings are cached per image (content hash, like the profile cache) in memory and on disk,
  so a second run over the same references does not run the image encoder again.

Supported: UNet pipelines with diffusers' `IPAdapterMixin` (SD 1.5, SDXL and their fine-tunes).
FLUX: diffusers 0.42 has `FluxIPAdapterMixin` (XLabs-AI/flux-ip-adapter), but its negative image
embeddings only act under true CFG, which ptgen leaves off, and no offline test covers it yet, so
ptgen refuses FLUX with a clear error instead of shipping an untested path.

Example:
    >>> sd15 = "stable-diffusion-v1-5/stable-diffusion-v1-5"
    >>> gen = DiffusersGenerator(GeneratorConfig(model=sd15),
    ...                          style=StyleAdapterConfig())
    >>> gen.set_style_references(liked_images, disliked_images)
    >>> images = gen.generate("a castle", seeds=[0, 1])
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

from preferthinker.errors import InputError, ModelNotFoundError

logger = logging.getLogger(__name__)

WEIGHT_SUFFIXES = (".safetensors", ".bin")
EMBED_CACHE_FORMAT = 1


@dataclass(frozen=True)
class StyleAdapterDefaults:
    """Where a family's IP-Adapter lives and how to apply it.

    Args:
        repo, subfolder, weight_name, image_encoder_folder: what `load_ip_adapter` is given.
        scale: the adapter scale the model card / InstantStyle recommend.
        style_blocks: InstantStyle block scales (layer-name prefixes -> weight per transformer),
            the value 1.0 meaning "the scale"; None: the family has no published style-only block.
        source: the model card or docs the values come from.
    """

    family: str
    repo: str
    subfolder: str
    weight_name: str
    image_encoder_folder: str
    scale: float
    style_blocks: Optional[dict] = None
    source: str = ""


# h94/IP-Adapter model card: SD 1.5 adapter in models/ with its ViT-H image encoder in
# models/image_encoder; SDXL adapter in sdxl_models/ with ViT-bigG in sdxl_models/image_encoder.
# Scales: 0.6 for SD 1.5 is the value diffusers' IP-Adapter guide uses in its examples (1.0 copies
# the reference closely); 1.0 on SDXL's style block only is InstantStyle's setting.
# Style-only blocks: InstantStyle (arXiv 2404.02733, README) and diffusers' IP-Adapter guide find
# SDXL's style in up_blocks.0.attentions.1 -> {"up": {"block_0": [0, 1, 0]}}. For SD 1.5 neither
# publishes a style-only block, so ptgen applies the plain scale there (and says so).
STYLE_ADAPTERS: dict[str, StyleAdapterDefaults] = {
    "sd15": StyleAdapterDefaults(
        "sd15",
        "h94/IP-Adapter",
        "models",
        "ip-adapter_sd15.safetensors",
        "image_encoder",
        0.6,
        None,
        "https://huggingface.co/h94/IP-Adapter",
    ),
    "sdxl": StyleAdapterDefaults(
        "sdxl",
        "h94/IP-Adapter",
        "sdxl_models",
        "ip-adapter_sdxl.safetensors",
        "image_encoder",
        1.0,
        {"up": {"block_0": [0.0, 1.0, 0.0]}},
        "https://huggingface.co/h94/IP-Adapter; "
        "InstantStyle https://github.com/instantX-research/InstantStyle",
    ),
}
# Distilled variants share the base family's UNet, hence its adapter.
FAMILY_BASE = {"sd15": "sd15", "sdxl": "sdxl", "sdxl-turbo": "sdxl", "sdxl-lightning": "sdxl"}
# The UNet cross-attention width each family's text encoder gives (what an adapter's to_k_ip reads).
CROSS_ATTENTION_FAMILY = {768: "sd15", 1024: "sd2", 2048: "sdxl"}


class StyleAdapterError(InputError):
    """An IP-Adapter that cannot be used with this generator (wrong family, missing file)."""


@dataclass
class StyleAdapterConfig:
    """Which IP-Adapter to load and how to use the references.

    Args:
        adapter: "auto" (the generator family's default, see `STYLE_ADAPTERS`), a hub repo id
            ("h94/IP-Adapter" with the family's subfolder and file), "REPO/SUBFOLDER/FILE", a local
            weight file (`*.safetensors`/`*.bin`, image encoder in `image_encoder/` beside it), or a
            local folder holding exactly one such file.
        scale: adapter strength (None: the family default); 0 turns the adapter off.
        style_only: apply the scale to the style blocks only (InstantStyle) where known.
        blocks: your own block scales (overrides the family's style blocks; 1.0 = the scale).
        top_k: average the K most typical liked references (None: all of them).
        image_encoder: the image encoder folder, relative to the adapter's folder (None: default).
        cache: keep image embeddings on disk; cache_dir: where (None:
            `default_embed_cache_dir()`, `style_embeds/` in the profile cache folder).
    """

    adapter: str = "auto"
    scale: Optional[float] = None
    style_only: bool = True
    blocks: Optional[dict] = None
    top_k: Optional[int] = None
    image_encoder: Optional[str] = None
    cache: bool = True
    cache_dir: Optional[str] = None

    def __post_init__(self) -> None:
        if not self.adapter or not isinstance(self.adapter, str):
            raise ValueError(f"adapter must be 'auto', a hub id or a path, got {self.adapter!r}")
        if self.scale is not None and not 0 <= self.scale < float("inf"):  # nan too
            raise ValueError(f"style scale must be a finite number >= 0, got {self.scale}")
        if self.top_k is not None and self.top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {self.top_k}")


@dataclass
class ResolvedAdapter:
    """What `load_ip_adapter` is called with."""

    source: str  # hub repo id or local root folder
    subfolder: str
    weight_name: str
    image_encoder_folder: str
    label: str  # how reports name it
    local_file: Optional[Path] = None


def resolve_adapter(config: StyleAdapterConfig, family: str) -> ResolvedAdapter:
    """Turn `config.adapter` into the arguments of `load_ip_adapter`.

    Example:
        >>> resolve_adapter(StyleAdapterConfig(), "sdxl").weight_name
        'ip-adapter_sdxl.safetensors'
    """
    base = FAMILY_BASE.get(family)
    defaults = STYLE_ADAPTERS.get(base) if base else None
    encoder = config.image_encoder
    spec = config.adapter
    path = Path(spec).expanduser()
    if spec == "auto" or (defaults is not None and spec == defaults.repo):
        if defaults is None:
            raise StyleAdapterError(
                f"no default style adapter for generator family {family}; defaults exist for "
                f"{', '.join(sorted(STYLE_ADAPTERS))}: pass --style-adapter PATH_OR_ID "
                f"of an IP-Adapter for {family}"
            )
        return ResolvedAdapter(
            defaults.repo,
            defaults.subfolder,
            defaults.weight_name,
            encoder or defaults.image_encoder_folder,
            f"{defaults.repo}/{defaults.subfolder}/{defaults.weight_name}",
        )
    if path.is_file():
        if not path.name.endswith(WEIGHT_SUFFIXES):
            raise StyleAdapterError(
                f"style adapter {spec} is not a .safetensors or .bin weight file"
            )
        return ResolvedAdapter(
            str(path.parent), "", path.name, encoder or "image_encoder", str(path), path
        )
    if path.is_dir():
        files = sorted(
            p for p in path.iterdir() if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES)
        )
        if len(files) != 1:
            found = ", ".join(p.name for p in files) or "none"
            raise StyleAdapterError(
                f"style adapter folder {spec} must hold exactly one IP-Adapter weight file "
                f"(.safetensors/.bin), found {found}; pass the file itself"
            )
        return ResolvedAdapter(
            str(path), "", files[0].name, encoder or "image_encoder", str(files[0]), files[0]
        )
    if spec.startswith((".", "/", "~")) or (spec.endswith(WEIGHT_SUFFIXES) and spec.count("/") < 2):
        raise StyleAdapterError(f"style adapter {spec} does not exist")
    parts = spec.split("/")
    if len(parts) >= 3 and parts[-1].endswith(WEIGHT_SUFFIXES):
        return ResolvedAdapter(
            "/".join(parts[:2]), "/".join(parts[2:-1]), parts[-1], encoder or "image_encoder", spec
        )
    raise StyleAdapterError(
        f"style adapter {spec!r}: give 'auto', a local weight file or folder, "
        "or REPO/SUBFOLDER/FILE "
        "(e.g. h94/IP-Adapter/sdxl_models/ip-adapter_sdxl.safetensors)"
    )


def _adapter_cross_attention_dim(file: Path) -> Optional[int]:
    """The text-embedding width the adapter's first `to_k_ip` reads, from the weight file."""
    key = "1.to_k_ip.weight"
    try:
        if file.name.endswith(".safetensors"):
            from safetensors import safe_open

            with safe_open(str(file), framework="pt", device="cpu") as handle:
                name = "ip_adapter." + key
                if name not in handle.keys():
                    return None
                return int(handle.get_slice(name).get_shape()[1])
        import torch

        state = torch.load(str(file), map_location="cpu", weights_only=True)
        weight = state.get("ip_adapter", {}).get(key)
        return int(weight.shape[1]) if weight is not None else None
    except Exception as error:  # noqa: BLE001 - any unreadable file is reported the same way
        raise StyleAdapterError(
            f"cannot read style adapter {file}: {str(error).splitlines()[0]}"
        ) from None


def _family_of_dim(dim: int) -> str:
    name = CROSS_ATTENTION_FAMILY.get(dim)
    return f"{name} (cross-attention {dim})" if name else f"a UNet with cross-attention {dim}"


def check_family(
    pipeline: Any, family: str, model: str, resolved: Optional[ResolvedAdapter]
) -> None:
    """Raise a one-line `StyleAdapterError` naming both when the adapter does not fit the pipeline
    (`resolved` None: only whether the pipeline can take an IP-Adapter at all).

    Example:
        >>> wrong = resolve_adapter(StyleAdapterConfig("sdxl_ip.bin"), "sd15")
        >>> check_family(pipe, "sd15", "my-sd15", wrong)
        Traceback (most recent call last):
        StyleAdapterError: style adapter sdxl_ip.bin is for sdxl (cross-attention 2048), ...
    """
    if family.startswith("flux"):
        raise StyleAdapterError(
            f"generator {model} is {family}: ptgen wires IP-Adapters for SD 1.5/SDXL UNets only "
            "(FLUX's negative image embeddings need true CFG, which ptgen leaves off); "
            "drop --style-adapter"
        )
    unet = getattr(pipeline, "unet", None)
    if unet is None or not hasattr(pipeline, "load_ip_adapter"):
        raise StyleAdapterError(
            f"generator {model} ({type(pipeline).__name__}, family {family}) "
            "cannot load IP-Adapters; "
            "use an SD 1.5 or SDXL pipeline, or drop --style-adapter"
        )
    if resolved is None:
        return
    label = resolved.label.lower()
    named = "sdxl" if "sdxl" in label or "_xl" in label else ("flux" if "flux" in label else None)
    dim = _adapter_cross_attention_dim(resolved.local_file) if resolved.local_file else None
    want = int(unet.config.cross_attention_dim)
    if dim is not None and dim != want:
        raise StyleAdapterError(
            f"style adapter {resolved.label} is for {_family_of_dim(dim)}, "
            f"but generator {model} is "
            f"{family} (cross-attention {want}); use an adapter made for {family}"
        )
    base = FAMILY_BASE.get(family, family)
    if (
        dim is None
        and named is not None
        and named != base
        and not (named == "sdxl" and want == 2048)
    ):
        raise StyleAdapterError(
            f"style adapter {resolved.label} is for {named}, but generator {model} is {family}; "
            f"use an adapter made for {family}"
        )


def default_embed_cache_dir(profile_dir: Optional[str] = None) -> Path:
    """`style_embeds/` inside the profile cache folder (`profile_dir`, else `default_cache_dir()`:
    `$PTGEN_CACHE_DIR` or `~/.cache/ptgen/profiles`), so one folder holds a user's cached work."""
    from generation.cache import default_cache_dir

    base = Path(profile_dir).expanduser() if profile_dir else default_cache_dir()
    return base / "style_embeds"


def _image_key(image: Any, encoder_id: str, hidden: bool) -> str:
    from preferthinker.images import image_fingerprint

    digest = hashlib.sha256()
    for part in (
        f"format={EMBED_CACHE_FORMAT}",
        f"encoder={encoder_id}",
        f"hidden={hidden}",
        "image=" + image_fingerprint([image]),
    ):
        digest.update(part.encode("utf-8") + b"\n")
    return digest.hexdigest()


class EmbeddingCache:
    """Image embeddings keyed by image content + image encoder, in memory and as safetensors files.

    Example:
        >>> cache = EmbeddingCache("/tmp/embeds")
        >>> cache.get(key) is None
        True
    """

    def __init__(self, directory: Optional[Path]):
        self.directory = Path(directory).expanduser() if directory else None
        self.memory: dict[str, Any] = {}

    def get(self, key: str) -> Any:
        if key in self.memory:
            return self.memory[key]
        if self.directory is None:
            return None
        path = self.directory / f"{key}.safetensors"
        if not path.is_file():
            return None
        try:
            from safetensors.torch import load_file

            tensor = load_file(str(path))["embedding"]
        except Exception as error:  # noqa: BLE001 - an unreadable entry is a miss
            logger.warning("ignoring unreadable style embedding %s: %s", path, error)
            return None
        self.memory[key] = tensor
        return tensor

    def put(self, key: str, tensor: Any) -> None:
        self.memory[key] = tensor
        if self.directory is None:
            return
        from safetensors.torch import save_file

        self.directory.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(
            prefix=f".{key[:12]}-", suffix=".tmp", dir=self.directory
        )
        os.close(handle)
        try:
            save_file({"embedding": tensor.detach().to("cpu").contiguous()}, temporary)
            os.replace(temporary, self.directory / f"{key}.safetensors")
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


@dataclass
class StyleReferences:
    """The embeddings a run is conditioned on, and which references made them."""

    positive: Any  # [1, D] or [1, T, D]
    negative: Any
    liked_used: list[int] = field(default_factory=list)  # indices into the liked references
    disliked_used: list[int] = field(default_factory=list)
    encoded: int = 0  # images run through the image encoder (the rest came from the cache)
    cached: int = 0


class StyleAdapter:
    """An IP-Adapter loaded onto a diffusers pipeline, with the references' embeddings.

    Args:
        pipeline: a diffusers pipeline with `load_ip_adapter` (SD 1.5, SDXL).
        family: the pipeline's family (`generation.generator.detect_family`).
        config: which adapter and how to apply it.
        model: the generator's name, for messages.

    Example:
        >>> style = StyleAdapter(pipe, "sd15", StyleAdapterConfig("/tmp/t/ip_adapter"), "tiny")
        >>> style.set_references(liked, disliked)
        >>> pipe("a castle", **style.call_kwargs(batch=1, guidance=True))
    """

    def __init__(self, pipeline: Any, family: str, config: StyleAdapterConfig, model: str = ""):
        self.pipeline = pipeline
        self.family = family
        self.config = config
        self.model = model or type(pipeline).__name__
        check_family(pipeline, family, self.model, None)
        # LCM-LoRA, Hyper-SD, fine-tunes: the base model is what the UNet's text width says.
        width = int(pipeline.unet.config.cross_attention_dim)
        base = FAMILY_BASE.get(family) or CROSS_ATTENTION_FAMILY.get(width) or family
        self.resolved = resolve_adapter(config, base)
        check_family(pipeline, family, self.model, self.resolved)
        self._load()
        defaults = STYLE_ADAPTERS.get(base)
        self.scale = (
            config.scale if config.scale is not None else (defaults.scale if defaults else 1.0)
        )
        blocks = (
            config.blocks
            if config.blocks is not None
            else (defaults.style_blocks if defaults else None)
        )
        self.blocks = blocks if config.style_only or config.blocks is not None else None
        self.apply_scale(self.scale)
        self.references: Optional[StyleReferences] = None
        self.embed_cache = EmbeddingCache(
            None
            if not config.cache
            else (Path(config.cache_dir) if config.cache_dir else default_embed_cache_dir())
        )
        self._encoded = self._cached = 0  # counts of the current set_references call

    def _load(self) -> None:
        resolved = self.resolved
        try:
            self.pipeline.load_ip_adapter(
                resolved.source,
                subfolder=resolved.subfolder,
                weight_name=resolved.weight_name,
                image_encoder_folder=resolved.image_encoder_folder,
            )
        except (OSError, EnvironmentError) as error:
            raise ModelNotFoundError(
                f"cannot load style adapter {resolved.label}: {str(error).splitlines()[0]} "
                "(download it where the hub is reachable, or pass a local weight file)"
            ) from None
        except (RuntimeError, ValueError, KeyError) as error:
            raise StyleAdapterError(
                f"style adapter {resolved.label} does not fit generator {self.model} "
                f"({self.family}): {str(error).splitlines()[0]}"
            ) from None
        if getattr(self.pipeline, "image_encoder", None) is None:
            raise StyleAdapterError(
                f"style adapter {resolved.label} loaded without an image encoder; put it in "
                f"{resolved.image_encoder_folder}/ beside the weights or pass image_encoder"
            )
        unet = self.pipeline.unet
        layer = unet.encoder_hid_proj.image_projection_layers[0]
        from diffusers.models.embeddings import ImageProjection

        # Plain IP-Adapters read CLIP's projected embedding; "plus" ones the penultimate
        # hidden states.
        self.hidden_states = not isinstance(layer, ImageProjection)
        self.encoder_id = f"{resolved.label}|{resolved.image_encoder_folder}"

    def apply_scale(self, scale: float) -> None:
        """Set the adapter strength: on the style blocks only where known, else on every layer."""
        if self.blocks and scale > 0:
            value = _scaled_blocks(self.blocks, scale)
        else:
            value = float(scale)
        self.pipeline.set_ip_adapter_scale(value)

    @contextlib.contextmanager
    def disabled(self) -> Iterator[None]:
        """Run without the adapter (scale 0) inside the block, e.g. for a with/without pair."""
        self.apply_scale(0.0)
        try:
            yield
        finally:
            self.apply_scale(self.scale)

    # -- embeddings ---------------------------------------------------------------------------

    def _encode(self, images: Sequence[Any]) -> list:
        """One embedding per image ([1, D] or [1, T, D]), from the cache where possible."""
        import torch

        encoder = self.pipeline.image_encoder
        out: list = []
        for image in images:
            key = _image_key(image, self.encoder_id, self.hidden_states)
            cached = self.embed_cache.get(key)
            if cached is not None:
                out.append(cached.to(torch.float32))
                self._cached += 1
                continue
            pixels = self.pipeline.feature_extractor(
                image.convert("RGB"), return_tensors="pt"
            ).pixel_values
            param = next(encoder.parameters())
            with torch.no_grad():
                embedding = self._run_encoder(pixels.to(param.device, param.dtype))
            self._encoded += 1
            embedding = embedding.to("cpu", torch.float32)
            self.embed_cache.put(key, embedding)
            out.append(embedding)
        return out

    def _run_encoder(self, pixels: Any) -> Any:
        encoder = self.pipeline.image_encoder
        if self.hidden_states:
            return encoder(pixels, output_hidden_states=True).hidden_states[-2]
        return encoder(pixels).image_embeds

    def _empty_negative(self, like: Any) -> Any:
        """What diffusers uses when no negative image is given (see `encode_image`)."""
        import torch

        if not self.hidden_states:
            return torch.zeros_like(like)
        size = self.pipeline.image_encoder.config.image_size
        encoder = self.pipeline.image_encoder
        param = next(encoder.parameters())
        with torch.no_grad():
            blank = torch.zeros(1, 3, size, size, device=param.device, dtype=param.dtype)
            return self._run_encoder(blank).to("cpu", torch.float32)

    def set_references(
        self, liked: Sequence[Any], disliked: Optional[Sequence[Any]] = None
    ) -> StyleReferences:
        """Embed the references (each once; cached) and keep the result for every later `generate`.

        Args:
            liked: PIL images; the K most typical (`config.top_k`, None: all) are averaged.
            disliked: PIL images; averaged into the negative image embedding (CFG only).

        Returns:
            `StyleReferences`: the embeddings and which references were used.

        Example:
            >>> refs = style.set_references(liked, disliked)
            >>> refs.liked_used
            [0, 1, 2]
        """
        import torch

        if not liked:
            raise InputError("the style adapter needs at least one liked reference image")
        self._encoded = self._cached = 0
        liked_embeds = torch.cat(self._encode(liked))
        used = _most_typical(liked_embeds, self.config.top_k)
        positive = liked_embeds[used].mean(dim=0, keepdim=True)
        disliked = list(disliked or [])
        if disliked:
            negative = torch.cat(self._encode(disliked)).mean(dim=0, keepdim=True)
        else:
            negative = self._empty_negative(positive)
        self.references = StyleReferences(
            positive, negative, used, list(range(len(disliked))), self._encoded, self._cached
        )
        return self.references

    def call_kwargs(self, batch: int, guidance: bool) -> dict[str, Any]:
        """`ip_adapter_image_embeds` for a pipeline call of `batch` prompts.

        Layout (diffusers `prepare_ip_adapter_image_embeds`): one tensor per adapter, shaped
        [batch, 1 image, ...]; under CFG the negative half comes first: [2*batch, 1, ...].
        """
        import torch

        if self.references is None:
            raise InputError(
                "style adapter loaded but no references set; "
                "call set_style_references(liked, disliked)"
            )
        param = next(self.pipeline.unet.parameters())
        positive = self.references.positive.unsqueeze(1).expand(
            batch, *self.references.positive.unsqueeze(1).shape[1:]
        )
        parts = [positive]
        if guidance:
            negative = self.references.negative.unsqueeze(1)
            parts.insert(0, negative.expand(batch, *negative.shape[1:]))
        embeds = torch.cat(parts).to(param.device, param.dtype)
        return {"ip_adapter_image_embeds": [embeds]}

    def describe(self, guidance: Optional[bool] = None) -> dict[str, Any]:
        """What reports and result.json record about the adapter."""
        refs = self.references
        info: dict[str, Any] = {
            "adapter": self.resolved.label,
            "scale": self.scale,
            "blocks": _scaled_blocks(self.blocks, self.scale) if self.blocks else "all layers",
            "rule": f"mean of the {self.config.top_k} most typical liked"
            if self.config.top_k
            else "mean of all liked",
            "image_encoder": self.resolved.image_encoder_folder,
        }
        if refs is not None:
            info.update(
                liked_used=list(refs.liked_used),
                disliked_used=list(refs.disliked_used),
                encoded=refs.encoded,
                from_cache=refs.cached,
            )
            if guidance is False and refs.disliked_used:
                info["note"] = "no classifier-free guidance: the disliked images are not used"
        return info


def _scaled_blocks(blocks: dict, scale: float) -> Any:
    if isinstance(blocks, dict):
        return {key: _scaled_blocks(value, scale) for key, value in blocks.items()}
    if isinstance(blocks, (list, tuple)):
        return [_scaled_blocks(value, scale) for value in blocks]
    return float(blocks) * scale


def _most_typical(embeds: Any, top_k: Optional[int]) -> list[int]:
    """Indices of the `top_k` embeddings closest (cosine) to their mean, most typical first."""
    import torch

    flat = embeds.reshape(embeds.shape[0], -1)
    if top_k is None or top_k >= flat.shape[0]:
        return list(range(flat.shape[0]))
    mean = flat.mean(dim=0, keepdim=True)
    similarity = torch.nn.functional.cosine_similarity(flat, mean)
    return [int(i) for i in torch.argsort(similarity, descending=True)[:top_k]]
