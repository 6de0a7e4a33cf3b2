"""Image loading: formats, mode conversions (checked on pixels), budget, skipping, errors."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
from PIL import Image

from preferthinker.errors import InputError
from preferthinker.images import (
    DEFAULT_MAX_PIXELS,
    ImageSkippedWarning,
    fit_pixels,
    image_fingerprint,
    image_paths,
    load_image,
    load_images,
)


def saved(tmp_path, image, name, **kwargs):
    path = tmp_path / name
    image.save(path, **kwargs)
    return path


@pytest.mark.parametrize(
    "name,kwargs",
    [
        ("a.png", {}),
        ("a.jpg", {"quality": 95}),
        ("a.webp", {"lossless": True}),
        ("a.bmp", {}),
        ("a.tiff", {}),
    ],
)
def test_formats_load_as_rgb_with_right_colour(tmp_path, name, kwargs):
    path = saved(tmp_path, Image.new("RGB", (30, 20), (200, 40, 10)), name, **kwargs)
    image = load_image(path)
    assert image.mode == "RGB" and image.size == (30, 20)
    assert np.abs(np.asarray(image)[10, 15].astype(int) - (200, 40, 10)).max() <= 3


def test_rgba_is_composited_on_white(tmp_path):
    rgba = Image.new("RGBA", (4, 1), (0, 0, 0, 0))
    rgba.putpixel((1, 0), (255, 0, 0, 255))
    rgba.putpixel((2, 0), (0, 0, 255, 128))
    image = load_image(saved(tmp_path, rgba, "a.png"))
    assert image.getpixel((0, 0)) == (255, 255, 255)  # transparent -> white, not black
    assert image.getpixel((1, 0)) == (255, 0, 0)
    r, g, b = image.getpixel((2, 0))
    assert 125 <= r <= 129 and 125 <= g <= 129 and b == 255  # half blue over white


def test_la_and_grayscale(tmp_path):
    la = Image.new("LA", (2, 1), (50, 255))
    la.putpixel((1, 0), (0, 0))
    image = load_image(saved(tmp_path, la, "la.png"))
    assert image.getpixel((0, 0)) == (50, 50, 50)
    assert image.getpixel((1, 0)) == (255, 255, 255)
    gray = load_image(saved(tmp_path, Image.new("L", (3, 3), 77), "l.png"))
    assert gray.mode == "RGB" and gray.getpixel((1, 1)) == (77, 77, 77)
    one_bit = load_image(Image.new("1", (2, 2), 1))
    assert one_bit.getpixel((0, 0)) == (255, 255, 255)


def test_palette_with_and_without_transparency(tmp_path):
    palette = Image.new("P", (2, 1))
    palette.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    palette.putpixel((0, 0), 0)
    palette.putpixel((1, 0), 1)
    opaque = load_image(saved(tmp_path, palette, "p.png"))
    assert opaque.getpixel((0, 0)) == (0, 0, 0) and opaque.getpixel((1, 0)) == (10, 200, 30)
    transparent = load_image(saved(tmp_path, palette, "pt.png", transparency=0))
    assert transparent.getpixel((0, 0)) == (255, 255, 255)  # the transparent index shows white
    assert transparent.getpixel((1, 0)) == (10, 200, 30)


def test_sixteen_bit_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 257 * 100, 65535, 32768]], dtype=np.uint16)
    path = saved(tmp_path, Image.fromarray(values), "g16.png")
    assert Image.open(path).mode.startswith("I")
    image = load_image(path)
    assert [image.getpixel((x, 0))[0] for x in range(4)] == [0, 100, 255, 128]
    # Mode I (32-bit ints) holding 16-bit data, and mode I holding 8-bit data.
    wide = load_image(Image.fromarray(values.astype(np.int32)))
    assert [wide.getpixel((x, 0))[0] for x in range(4)] == [0, 100, 255, 128]
    narrow = load_image(Image.fromarray(np.array([[0, 100, 255]], dtype=np.int32)))
    assert [narrow.getpixel((x, 0))[0] for x in range(3)] == [0, 100, 255]
    floats = load_image(Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32)))
    assert [floats.getpixel((x, 0))[0] for x in range(3)] == [0, 128, 255]


def test_cmyk_converts(tmp_path):
    image = load_image(
        saved(tmp_path, Image.new("CMYK", (2, 2), (0, 255, 255, 0)), "c.jpg", quality=100)
    )
    r, g, b = image.getpixel((0, 0))
    assert r > 230 and g < 30 and b < 30


def test_animated_image_uses_its_first_frame(tmp_path):
    frames = [Image.new("RGB", (8, 8), (250, 0, 0)), Image.new("RGB", (8, 8), (0, 0, 250))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100)
    r, g, b = load_image(path).getpixel((4, 4))
    assert r > 200 and b < 50


def test_exif_orientation_is_applied(tmp_path):
    # A 40x20 image whose left half is red, stored with orientation 6 (rotate 90 CW to display).
    raw = Image.new("RGB", (40, 20), (0, 0, 255))
    raw.paste((255, 0, 0), (0, 0, 20, 20))
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "rotated.jpg"
    raw.save(path, exif=exif, quality=95)
    image = load_image(path)
    assert image.size == (20, 40)
    top = image.getpixel((10, 5))
    assert top[0] > 200 and top[2] < 60  # the red half is on top after the rotation


def test_large_images_are_downscaled_keeping_aspect(tmp_path):
    path = saved(tmp_path, Image.new("RGB", (3000, 1500), (10, 20, 30)), "big.png")
    image = load_image(path)
    assert image.width * image.height <= DEFAULT_MAX_PIXELS
    assert abs(image.width / image.height - 2.0) < 0.01
    assert image.width > 1400  # downscaled to the budget, not far below it
    small = load_image(path, max_pixels=10_000)
    assert small.width * small.height <= 10_000 and abs(small.width / small.height - 2.0) < 0.05
    assert load_image(path, max_pixels=None).size == (3000, 1500)
    big_jpeg = saved(tmp_path, Image.new("RGB", (4000, 3000), (200, 0, 0)), "big.jpg")
    image = load_image(big_jpeg)
    assert image.width * image.height <= DEFAULT_MAX_PIXELS and image.width > 1100
    assert fit_pixels(Image.new("RGB", (10, 10)), 100).size == (10, 10)
    with pytest.raises(InputError, match="max_pixels"):
        load_image(path, max_pixels=0)


def test_folder_is_sorted_non_recursive_and_skips_with_warnings(image_dir):
    (image_dir / "sub").mkdir()
    Image.new("RGB", (8, 8)).save(image_dir / "sub" / "00.png")
    assert [p.name for p in image_paths(image_dir)] == [
        "01.png",
        "02.jpg",
        "03.webp",
        "04_corrupt.png",
        "notes.txt",
    ]
    with pytest.warns(ImageSkippedWarning) as record:
        images = load_images(image_dir)
    messages = [str(w.message) for w in record]
    assert any("04_corrupt.png" in m for m in messages) and any("notes.txt" in m for m in messages)
    assert len(images) == 3
    colours = [image.getpixel((5, 5)) for image in images]
    assert colours[0] == (220, 40, 40) and colours[2] == (
        40,
        70,
        220,
    )  # order by name: png, jpg, webp
    assert abs(colours[1][1] - 160) <= 4


def test_truncated_file_is_skipped(tmp_path):
    good = saved(tmp_path, Image.new("RGB", (64, 64), (1, 2, 3)), "good.png")
    data = io.BytesIO()
    Image.effect_noise((256, 256), 64).convert("RGB").save(data, "JPEG")
    (tmp_path / "trunc.jpg").write_bytes(data.getvalue()[: len(data.getvalue()) // 2])
    with pytest.warns(ImageSkippedWarning, match="trunc.jpg"):
        images = load_images([tmp_path / "trunc.jpg", good])
    assert len(images) == 1 and images[0].getpixel((0, 0)) == (1, 2, 3)
    with pytest.raises(InputError, match="trunc.jpg"):
        load_image(tmp_path / "trunc.jpg")


def test_missing_path_is_an_error_naming_it(tmp_path):
    missing = tmp_path / "nope.png"
    with pytest.raises(InputError, match="nope.png"):
        load_image(missing)
    with pytest.raises(InputError, match="nope.png"):
        load_images([missing])
    with pytest.raises(InputError, match="nope"):
        image_paths(tmp_path / "nope")


def test_nothing_usable_is_an_error(tmp_path):
    (tmp_path / "a.txt").write_text("hello")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(InputError, match=r"no usable image in liked images .*"):
            load_images(tmp_path, what="liked images")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no usable image in reference images"):
        load_images(empty)
    with pytest.raises(InputError, match="no usable image"):
        load_images([])


def test_pil_inputs_and_mixed_lists(tmp_path, make_images):
    red, green = make_images(2)
    path = saved(tmp_path, green, "g.png")
    images = load_images([red.convert("RGBA"), path])
    assert [image.getpixel((0, 0)) for image in images] == [
        red.getpixel((0, 0)),
        green.getpixel((0, 0)),
    ]
    with pytest.raises(InputError, match="int"):
        load_images([3])


def test_fingerprint_is_order_and_pixel_sensitive(make_images):
    a, b = make_images(2)
    assert image_fingerprint([a, b]) == image_fingerprint([a.copy(), b.copy()])
    assert image_fingerprint([a, b]) != image_fingerprint([b, a])
    changed = a.copy()
    changed.putpixel((0, 0), (0, 0, 0))
    assert image_fingerprint([changed, b]) != image_fingerprint([a, b])
    assert image_fingerprint([a]) != image_fingerprint([a.resize((32, 128))])
