"""ComfyUI IMAGE tensors <-> PIL images, both ways, for batches of 1 and 3."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from comfyui_nodes.tensors import fit_cover, pils_to_tensor, select, tensor_to_pils
from preferthinker.errors import InputError


@pytest.mark.parametrize("batch", [1, 3])
def test_round_trip_tensor_pil_tensor(batch):
    generator = torch.Generator().manual_seed(batch)
    # values on the 8-bit grid survive exactly; others to within half a step
    images = torch.randint(0, 256, (batch, 17, 23, 3), generator=generator).float() / 255
    pils = tensor_to_pils(images)
    assert len(pils) == batch
    assert all(p.mode == "RGB" and p.size == (23, 17) for p in pils)  # PIL size is (W, H)
    back = pils_to_tensor(pils)
    assert back.shape == (batch, 17, 23, 3) and back.dtype == torch.float32
    assert torch.equal(back, images)
    noisy = torch.rand(batch, 5, 7, 3, generator=generator)
    assert (pils_to_tensor(tensor_to_pils(noisy)) - noisy).abs().max() <= 0.5 / 255 + 1e-6


@pytest.mark.parametrize("batch", [1, 3])
def test_round_trip_pil_tensor_pil(batch):
    rng = np.random.default_rng(batch)
    pils = [Image.fromarray(rng.integers(0, 256, (9, 13, 3), dtype=np.uint8)) for _ in range(batch)]
    tensor = pils_to_tensor(pils)
    assert tensor.shape == (batch, 9, 13, 3)
    assert 0.0 <= float(tensor.min()) and float(tensor.max()) <= 1.0
    for original, again in zip(pils, tensor_to_pils(tensor)):
        assert np.array_equal(np.asarray(original), np.asarray(again))


def test_pixel_layout_is_height_width_rgb():
    image = torch.zeros(1, 2, 3, 3)
    image[0, 1, 2] = torch.tensor([1.0, 0.5, 0.0])  # row 1, column 2
    (pil,) = tensor_to_pils(image)
    assert pil.getpixel((2, 1)) == (255, 128, 0)
    assert pil.getpixel((0, 0)) == (0, 0, 0)


def test_single_image_gray_rgba_and_out_of_range_values():
    (single,) = tensor_to_pils(torch.full((4, 4, 3), 0.5))  # (H, W, C) without batch
    assert single.getpixel((0, 0)) == (128, 128, 128)
    (gray,) = tensor_to_pils(torch.full((1, 4, 4, 1), 1.0))
    assert gray.getpixel((1, 1)) == (255, 255, 255)
    rgba = torch.zeros(1, 4, 4, 4)
    rgba[..., 0] = 1.0
    (no_alpha,) = tensor_to_pils(rgba)
    assert no_alpha.getpixel((0, 0)) == (255, 0, 0)
    (clamped,) = tensor_to_pils(torch.tensor([[[[-0.5, 2.0, float("nan")]]]]))
    assert clamped.getpixel((0, 0)) == (0, 255, 0)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(InputError, match="shape"):
        tensor_to_pils(torch.zeros(2, 3))
    with pytest.raises(InputError, match="empty"):
        tensor_to_pils(torch.zeros(0, 4, 4, 3))
    with pytest.raises(InputError, match="different sizes"):
        pils_to_tensor([Image.new("RGB", (4, 4)), Image.new("RGB", (5, 4))])


def test_mixed_sizes_fit_a_common_size():
    pils = [Image.new("RGB", (40, 20), "red"), Image.new("RGB", (10, 30), "blue")]
    batch = pils_to_tensor(pils, size=(16, 12))
    assert batch.shape == (2, 12, 16, 3)
    assert fit_cover(pils[0], (16, 12)).size == (16, 12)


def test_select_reorders_a_batch():
    batch = torch.arange(4).float().view(4, 1, 1, 1).expand(4, 2, 2, 3).contiguous()
    picked = select(batch, [2, 0])
    assert picked.shape == (2, 2, 2, 3)
    assert picked[:, 0, 0, 0].tolist() == [2.0, 0.0]
