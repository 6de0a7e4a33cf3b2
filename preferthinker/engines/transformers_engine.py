"""In-process engine: any Hugging Face image-text-to-text model, by hub id or local path.

Loads with `AutoProcessor` + `AutoModelForImageTextToText` (Qwen2.5-VL first, but nothing here is
Qwen-specific), safetensors only, never `trust_remote_code` unless asked. Generation is batched
with left padding, greedy by default with the authors' repetition penalty (see `GenerationConfig`).
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

from preferthinker.devices import (
    check_device,
    dtype_name,
    looks_like_local_path,
    resolve_device,
    resolve_dtype,
)
from preferthinker.engines.base import (
    DEFAULT_MAX_NEW_TOKENS,
    Conversation,
    Engine,
    EngineOutput,
    GenerationConfig,
)
from preferthinker.engines.registry import EngineBackend
from preferthinker.errors import EngineError, InputError, ModelNotFoundError

# A hub id: `owner/name` (letters, digits, -, _, .); anything path-like is a local folder.
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")

QUANTIZATIONS = ("none", "8bit", "4bit")


def quantization_config(quantization: Optional[str], device: str, dtype: Any):
    """transformers' `BitsAndBytesConfig` for "8bit" / "4bit" (NF4, computing in `dtype`), or
    None for "none"/None. Quantized weights need CUDA and the bitsandbytes package.

    Raises:
        InputError: an unknown name, no CUDA device, or bitsandbytes not installed.

    Example:
        >>> quantization_config("none", "cpu", None) is None
        True
    """
    if quantization in (None, "", "none"):
        return None
    if quantization not in QUANTIZATIONS:
        raise InputError(f"unknown quantization {quantization!r}; use {', '.join(QUANTIZATIONS)}")
    import importlib.util

    import torch

    if not (device.startswith("cuda") and torch.cuda.is_available()):
        raise InputError(
            f"quantization {quantization!r} needs a CUDA GPU (bitsandbytes), "
            f"but the device is {device!r}; use quantization 'none' here"
        )
    if importlib.util.find_spec("bitsandbytes") is None:
        raise InputError(
            f"quantization {quantization!r} needs the bitsandbytes package: "
            "pip install bitsandbytes, or use quantization 'none'"
        )
    from transformers import BitsAndBytesConfig

    if quantization == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=dtype
    )


def accepts_spec(spec: str) -> bool:
    """Whether `spec` names an in-process model: a local folder or a hub id (`owner/name`).

    Example:
        >>> [accepts_spec(s) for s in ("Qwen/Qwen2.5-VL-7B-Instruct", "./assessor", "analytc")]
        [True, True, False]
    """
    return looks_like_local_path(spec) or bool(_HUB_ID.match(spec))


@dataclass
class TransformersOptions:
    """Settings of the in-process engine.

    Args:
        device: "cuda", "cuda:1", "mps", "cpu"; None or "auto" picks cuda, then mps, then cpu.
        dtype: "auto"/None, "bf16", "fp16", "fp32" or a torch dtype (see `resolve_dtype`).
        batch_size: conversations generated together (left-padded).
        trust_remote_code: run code shipped with the model; off unless you trust the source.
        local_files_only: never contact the hub; None follows HF_HUB_OFFLINE.
        attn_implementation: e.g. "sdpa", "flash_attention_2"; None lets transformers choose.
        quantization: "none", "8bit" or "4bit" weights (bitsandbytes, CUDA only): 1 byte or half
            a byte per weight of the linear layers instead of 2 (README.md: GPU memory table).
    """

    device: Optional[str] = None
    dtype: Any = None
    batch_size: int = 4
    trust_remote_code: bool = False
    local_files_only: Optional[bool] = None
    attn_implementation: Optional[str] = None
    quantization: Optional[str] = None

    def __post_init__(self) -> None:
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size!r}")
        check_device(self.device)
        if not _is_torch_dtype(self.dtype):
            dtype_name(self.dtype)


def _is_torch_dtype(value: Any) -> bool:
    return type(value).__module__ == "torch" and type(value).__name__ == "dtype"


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face hub answers a TCP connection within `timeout` seconds.

    Without this probe an unreachable hub costs minutes: huggingface_hub retries every file with
    backoff. Behind an HTTP(S) proxy a direct connection proves nothing, so the hub is assumed
    reachable there.

    Example:
        >>> hub_reachable(timeout=0.5) in (True, False)
        True
    """
    import socket
    from urllib.parse import urlsplit

    if any(
        os.environ.get(name) for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")
    ):
        return True
    endpoint = urlsplit(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        with socket.create_connection(
            (endpoint.hostname or "huggingface.co", port), timeout=timeout
        ):
            return True
    except OSError:
        return False


def _not_found_message(model: str, error: BaseException, offline_reason: str = "") -> str:
    """One line that says why a model could not be loaded and how to fix it."""
    from huggingface_hub.errors import (
        GatedRepoError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    hint = (
        "set {assessor} to /path/to/local/model (a folder saved with save_pretrained), "
        "or to an http://host:port/v1 server URL"
    )
    if isinstance(error, GatedRepoError):
        return (
            f"model {model!r} is gated on the Hugging Face hub; "
            f"log in with `hf auth login` and accept its terms, or {hint}"
        )
    if isinstance(error, (RepositoryNotFoundError, RevisionNotFoundError)):
        return f"model {model!r} does not exist on the Hugging Face hub; check the id, or {hint}"
    text = str(error)
    if "safetensors" in text.lower() or "use_safetensors" in text:
        return (
            f"model {model!r} has no safetensors weights (ptgen loads safetensors only); "
            f"convert it, or {hint}"
        )
    if Path(model).expanduser().is_dir():  # there, but not a whole saved model
        first = text.strip().splitlines()[0] if text.strip() else type(error).__name__
        return (
            f"model folder {model!r} could not be loaded ({first}); it needs what "
            "save_pretrained writes: config.json, *.safetensors weights and the processor files"
        )
    return (
        f"model {model!r} could not be found locally and the Hugging Face hub is unreachable"
        f"{offline_reason}; {hint}"
    )


class TransformersEngine(Engine):
    """Runs a Hugging Face image-text-to-text model in this process.

    Args:
        model: hub id (e.g. "Qwen/Qwen2.5-VL-7B-Instruct") or local folder.
        options: a `TransformersOptions`; or give its fields as keywords (device, dtype,
            batch_size, trust_remote_code, local_files_only, attn_implementation, quantization).

    Raises:
        ModelNotFoundError: the model is neither a local folder nor reachable on the hub.

    Example:
        >>> engine = TransformersEngine("/tmp/t/assessor", device="cpu")  # doctest: +SKIP
        >>> engine.generate(  # doctest: +SKIP
        ...     [[{"role": "user", "content": [{"type": "text", "text": "hi"}]}]]
        ... )[0].text
    """

    concurrent = False

    def __init__(
        self,
        model: Union[str, Path],
        options: Optional[TransformersOptions] = None,
        **settings: Any,
    ):
        options = options or TransformersOptions(**settings)
        self.name = str(model)
        self.batch_size = options.batch_size
        self.device = resolve_device(options.device)
        self.dtype = resolve_dtype(options.dtype, self.device)
        self.quantization = options.quantization or "none"
        # Checked before any loading: a missing package should not cost a 15 GB read first.
        self._quantization_config = quantization_config(
            options.quantization, self.device, self.dtype
        )
        self.model, self.processor = self._load(
            str(model),
            options.trust_remote_code,
            options.local_files_only,
            options.attn_implementation,
        )
        self.resident = True  # on `device`; False after `release()`
        # Decoder-only generation needs the padding on the left so every row ends at its prompt.
        tokenizer = getattr(self.processor, "tokenizer", self.processor)
        tokenizer.padding_side = "left"
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self._tokenizer = tokenizer

    # -- loading -----------------------------------------------------------------------------
    def _load(
        self,
        model: str,
        trust_remote_code: bool,
        local_files_only: Optional[bool],
        attn_implementation: Optional[str],
    ):
        from transformers import AutoModelForImageTextToText, AutoProcessor

        local = Path(model).expanduser()
        if local.exists():
            if not (local / "config.json").is_file():
                raise ModelNotFoundError(
                    f"{local} is not a model folder (no config.json); "
                    "give a folder saved with save_pretrained or a hub id"
                )
            model = str(local)
        elif looks_like_local_path(model):
            raise ModelNotFoundError(
                f"model folder not found: {model}; check the path given to {{assessor}}",
                settings=("assessor",),
            )
        offline_reason = " (local_files_only is set)" if local_files_only else ""
        if local_files_only is None:
            if _hub_offline():
                local_files_only, offline_reason = True, " (HF_HUB_OFFLINE is set)"
            elif not hub_reachable():
                # Use the local cache only: a model downloaded earlier still loads, a missing one
                # fails fast.
                local_files_only = True
        common: dict[str, Any] = dict(
            trust_remote_code=trust_remote_code, local_files_only=local_files_only
        )
        model_kwargs: dict[str, Any] = dict(common, dtype=self.dtype, use_safetensors=True)
        if attn_implementation:
            model_kwargs["attn_implementation"] = attn_implementation
        if self._quantization_config is not None:
            model_kwargs["quantization_config"] = self._quantization_config
        if self.device != "cpu":
            # Load straight onto the accelerator: a 7B model staged in CPU memory first costs
            # ~15 GB of RAM and a slow copy.
            model_kwargs["device_map"] = self.device
        try:
            processor = AutoProcessor.from_pretrained(model, **common)
            network = AutoModelForImageTextToText.from_pretrained(model, **model_kwargs)
        except ModelNotFoundError:
            raise
        except ValueError as error:
            # transformers raises ValueError for an architecture it has no image-text-to-text
            # class for.
            first = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise ModelNotFoundError(
                f"model {model!r} cannot be loaded as an image-text-to-text model: {first}"
            ) from None
        except OSError as error:  # not found, offline, no safetensors (hub errors are OSErrors)
            message = _not_found_message(model, error, offline_reason)
            raise ModelNotFoundError(message, settings=("assessor",)) from None
        except (
            Exception
        ) as error:  # network libraries' own errors (httpx/requests) when not offline
            if type(error).__module__.split(".")[0] in (
                "httpx",
                "requests",
                "urllib3",
                "huggingface_hub",
            ):
                message = _not_found_message(model, error, offline_reason)
                raise ModelNotFoundError(message, settings=("assessor",)) from None
            raise
        template = getattr(processor, "chat_template", None) or getattr(
            getattr(processor, "tokenizer", None), "chat_template", None
        )
        if not template:
            raise ModelNotFoundError(
                f"model {model!r} has no chat template; use an instruction-tuned (chat) model"
            )
        if self.device == "cpu":
            network.to(self.device)
        network.eval()
        return network, processor

    # -- conversion --------------------------------------------------------------------------
    @staticmethod
    def _split(conversation: Conversation) -> tuple[list[dict], list[Any]]:
        """Our conversation -> (messages for the chat template, images in order).

        The template only needs to know where images go ({"type": "image"}); the pixels go to the
        processor separately, in the same order.
        """
        messages, images = [], []
        for message in conversation:
            content = message.get("content")
            if isinstance(content, str):
                messages.append(
                    {"role": message["role"], "content": [{"type": "text", "text": content}]}
                )
                continue
            parts = []
            for part in content or []:
                kind = part.get("type")
                if kind == "image":
                    image = part.get("image")
                    if image is None:
                        raise InputError(
                            "an image part has no 'image' (a PIL image) in the conversation"
                        )
                    images.append(
                        image.convert("RGB") if getattr(image, "mode", "RGB") != "RGB" else image
                    )
                    parts.append({"type": "image"})
                elif kind == "text":
                    parts.append({"type": "text", "text": part.get("text", "")})
                else:
                    raise InputError(f"unknown message part type {kind!r}; use 'text' or 'image'")
            messages.append({"role": message["role"], "content": parts})
        return messages, images

    def _generation_kwargs(self, config: GenerationConfig) -> dict[str, Any]:
        kwargs: dict[str, Any] = dict(
            # None: the checkpoint's own limit (e.g. the tiny test model's), else the authors' 4096.
            max_new_tokens=config.max_new_tokens
            or getattr(self.model.generation_config, "max_new_tokens", None)
            or DEFAULT_MAX_NEW_TOKENS,
            repetition_penalty=config.repetition_penalty,
            pad_token_id=self._tokenizer.pad_token_id,
        )
        if config.temperature == 0:
            # Greedy; clear sampling settings a checkpoint's generation_config may carry.
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            # top_k 0 turns the cut off; left unset, the checkpoint's own (Qwen2.5-VL: 1) applies.
            kwargs.update(
                do_sample=True,
                temperature=config.temperature,
                top_p=config.top_p,
                top_k=config.top_k or 0,
            )
        if config.stop:  # generate() matches stop strings with the tokenizer
            kwargs.update(stop_strings=list(config.stop), tokenizer=self._tokenizer)
        return kwargs

    def _eos_ids(self) -> set[int]:
        eos = self.model.generation_config.eos_token_id
        if eos is None:
            eos = self._tokenizer.eos_token_id
        if eos is None:
            return set()
        return set(eos) if isinstance(eos, (list, tuple)) else {int(eos)}

    # -- generation --------------------------------------------------------------------------
    def generate(
        self, conversations: list[Conversation], config: Optional[GenerationConfig] = None
    ) -> list[EngineOutput]:
        """Generate one completion per conversation, `batch_size` conversations at a time.

        Each output's `seconds` is its batch's wall time divided by the batch size, so the sum
        over outputs is the total time spent.

        Example:
            >>> outputs = engine.generate(  # doctest: +SKIP
            ...     conversations, GenerationConfig(max_new_tokens=256)
            ... )
        """
        import torch

        if self.model is None:
            raise EngineError(f"the engine for {self.name} is closed; create a new one")
        self.restore()  # a released model comes back on its own when asked to work
        config = config or GenerationConfig()
        if config.seed is not None:
            torch.manual_seed(config.seed)
        outputs: list[EngineOutput] = []
        for start in range(0, len(conversations), self.batch_size):
            outputs.extend(
                self._generate_batch(conversations[start : start + self.batch_size], config)
            )
        return outputs

    def _generate_batch(
        self, batch: list[Conversation], config: GenerationConfig
    ) -> list[EngineOutput]:
        import torch

        started = time.perf_counter()
        texts, images = [], []
        for conversation in batch:
            messages, conversation_images = self._split(conversation)
            texts.append(
                self.processor.apply_chat_template(
                    messages,
                    tokenize=False,
                    add_generation_prompt=True,
                    **(config.chat_template_kwargs or {}),
                )
            )
            images.append(conversation_images)
        processor_kwargs: dict[str, Any] = dict(text=texts, padding=True, return_tensors="pt")
        if any(images):
            processor_kwargs["images"] = images  # one list per conversation, in order
        try:
            inputs = self.processor(**processor_kwargs).to(self.device)
        except ValueError as error:  # e.g. image placeholders and images that do not match
            first = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise EngineError(f"{self.name} cannot prepare these conversations: {first}") from None
        try:
            if "pixel_values" in inputs and inputs["pixel_values"].is_floating_point():
                inputs["pixel_values"] = inputs["pixel_values"].to(self.dtype)
            with torch.inference_mode():
                sequences = self.model.generate(**inputs, **self._generation_kwargs(config))
        except torch.cuda.OutOfMemoryError:
            raise EngineError(
                f"out of GPU memory generating {len(batch)} conversations with {self.name}; "
                "lower batch_size (--batch-size) or max_pixels"
            ) from None
        prompt_length = inputs["input_ids"].shape[1]
        new_tokens = sequences[:, prompt_length:].cpu()
        eos_ids = self._eos_ids()
        prompt_counts = inputs["attention_mask"].sum(dim=1).tolist()
        texts_out = self.processor.batch_decode(new_tokens, skip_special_tokens=True)
        seconds = (time.perf_counter() - started) / len(batch)
        results = []
        for row, text in enumerate(texts_out):
            tokens = new_tokens[row].tolist()
            # Count up to and including the first end-of-sequence token; the rest is padding.
            count = next(
                (index + 1 for index, token in enumerate(tokens) if token in eos_ids), len(tokens)
            )
            results.append(
                EngineOutput(
                    text=text,
                    prompt_tokens=int(prompt_counts[row]),
                    completion_tokens=count,
                    seconds=seconds,
                )
            )
        return results

    # -- sequential loading (small GPUs) -----------------------------------------------------
    def release(self) -> None:
        """Move the model off the accelerator into CPU memory, so that another model (the
        generator) can use the GPU; `restore()` brings it back. No-op on the CPU and for
        quantized models (bitsandbytes weights cannot move; they are small anyway).

        Example:
            >>> engine.release()  # doctest: +SKIP
            >>> images = generator.generate("a castle")  # doctest: +SKIP
            >>> engine.restore()  # doctest: +SKIP
        """
        if self.model is None or not self.resident:
            return
        self.resident = False
        if self.device == "cpu" or self.quantization != "none":
            return
        self.model.to("cpu")
        _empty_cache()

    def restore(self) -> None:
        """Put a released model back on its device (see `release`)."""
        if self.model is None or self.resident:
            return
        if self.device != "cpu" and self.quantization == "none":
            self.model.to(self.device)
        self.resident = True

    def close(self) -> None:
        """Drop the model and free accelerator memory. Safe to call twice."""
        if getattr(self, "model", None) is None:
            return
        self.model = None
        _empty_cache()


def _empty_cache() -> None:
    """Give cached accelerator memory back to the driver (best effort)."""
    try:
        import gc

        import torch

        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:  # freeing memory is best effort
        pass


BACKEND = EngineBackend(
    name="transformers",
    spec="a model id (owner/name) or local folder (in-process transformers)",
    accepts=accepts_spec,
    engine_class=TransformersEngine,
    options=TransformersOptions,
    build=lambda spec, model, options: TransformersEngine(spec, options),
    config_fields=("device", "dtype", "batch_size", "trust_remote_code", "quantization"),
    catch_all=True,
)
