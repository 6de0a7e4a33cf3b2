"""Tiny random-weight assessor: a real Qwen2.5-VL architecture, shrunk, saved with
`save_pretrained`.

The output of this model is meaningless; the plumbing is real: it loads through the same
`from_pretrained` code as Qwen/Qwen2.5-VL-7B-Instruct, with a real processor and chat template.
Built fully offline (no hub): the tokenizer is byte-level (256 byte symbols, no merges) plus
Qwen's special tokens, so any text round-trips.
"""

from __future__ import annotations

from pathlib import Path
from typing import Union

# Qwen2.5-VL's chat template, reduced to what ptgen sends (text and image parts), with its
# `add_vision_id` option ("Picture N: " before the N-th image, as the authors render prompts).
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}"
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

TINY_MAX_NEW_TOKENS = 64

SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
]


def _byte_vocab() -> dict[str, int]:
    """GPT-2's byte-to-symbol table: every byte gets a printable unicode symbol."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return {chr(code): index for index, code in enumerate(codes)}


def build_tiny_processor(image_size: int = 56):
    """A Qwen2.5-VL processor with a byte-level tokenizer. Images are resized to about
    `image_size` x `image_size` pixels (56 px = 4 visual tokens after 2x2 merging)."""
    from transformers import Qwen2Tokenizer

    tokenizer = Qwen2Tokenizer(vocab=_byte_vocab(), merges=[])
    tokenizer.add_special_tokens({"additional_special_tokens": SPECIAL_TOKENS[1:]})
    tokenizer.chat_template = CHAT_TEMPLATE
    return processor_for(tokenizer, image_size)


def processor_for(tokenizer, image_size: int = 56, patch_size: int = 14):
    """A Qwen2.5-VL processor around `tokenizer` (its chat template), images resized to about
    `image_size` x `image_size` pixels and cut into `patch_size` patches (the model's). Shared by
    the tiny assessor and the learning study."""
    from transformers import Qwen2_5_VLProcessor, Qwen2VLImageProcessorPil, Qwen2VLVideoProcessor

    pixels = image_size * image_size
    image_processor = Qwen2VLImageProcessorPil(
        min_pixels=pixels,
        max_pixels=pixels,
        patch_size=patch_size,
        merge_size=2,
        temporal_patch_size=2,
    )
    # transformers insists on a video sub-processor (it needs torchvision); ptgen sends no video.
    video_processor = Qwen2VLVideoProcessor(min_pixels=pixels, max_pixels=pixels)
    return Qwen2_5_VLProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        chat_template=tokenizer.chat_template,
    )


def mrope_section(head_dim: int) -> list[int]:
    """Split head_dim/2 rotary frequencies over (time, height, width) like Qwen's [16, 24, 24]."""
    half = head_dim // 2
    time = half // 4
    height = (half - time) // 2
    return [time, height, half - time - height]


def build_tiny_assessor(
    hidden_size: int = 64,
    layers: int = 2,
    vision_depth: int = 2,
    seed: int = 0,
    image_size: int = 56,
):
    """Return (model, processor): a random-weight Qwen2.5-VL small enough for CPU tests."""
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    processor = build_tiny_processor(image_size=image_size)
    tokenizer = processor.tokenizer
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in SPECIAL_TOKENS}
    heads = max(1, hidden_size // 32)
    config = Qwen2_5_VLConfig(
        text_config=dict(
            vocab_size=len(tokenizer),
            hidden_size=hidden_size,
            intermediate_size=hidden_size * 2,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            num_key_value_heads=heads,
            max_position_embeddings=32768,
            rope_scaling={"type": "mrope", "mrope_section": mrope_section(hidden_size // heads)},
            tie_word_embeddings=True,
            bos_token_id=ids["<|endoftext|>"],
            eos_token_id=ids["<|im_end|>"],
            pad_token_id=ids["<|endoftext|>"],
        ),
        vision_config=dict(
            depth=vision_depth,
            hidden_size=hidden_size,
            intermediate_size=hidden_size * 2,
            num_heads=heads,
            out_hidden_size=hidden_size,
            patch_size=14,
            spatial_merge_size=2,
            temporal_patch_size=2,
            window_size=56,
            fullatt_block_indexes=[vision_depth - 1],
        ),
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
    )
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config)
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    # Random weights never close their answer: keep runs on the tiny model short by default.
    model.generation_config.max_new_tokens = TINY_MAX_NEW_TOKENS
    return model, processor


def make_tiny_assessor(directory: Union[str, Path], **kwargs) -> Path:
    """Build the tiny assessor and save model + processor to `directory` (safetensors)."""
    directory = Path(directory)
    model, processor = build_tiny_assessor(**kwargs)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory, safe_serialization=True)
    processor.save_pretrained(directory)
    return directory
