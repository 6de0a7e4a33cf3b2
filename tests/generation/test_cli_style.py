"""`ptgen generate --style-adapter` end to end on the tiny models and the tiny IP-Adapter."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from ptgen.cli.main import main

FAST = ["--max-new-tokens", "16"]


@pytest.fixture(scope="module")
def setup(tiny_assessor_path, tiny_generator_path, tmp_path_factory):
    from generation.tiny import make_tiny_style_adapter

    base = tmp_path_factory.mktemp("style-cli")
    refs, disliked = base / "refs", base / "disliked"
    refs.mkdir()
    disliked.mkdir()
    for k, color in enumerate([(250, 20, 20), (230, 40, 30), (240, 60, 10)]):
        Image.new("RGB", (32, 32), color).save(refs / f"{k}.png")
    Image.new("RGB", (32, 32), (20, 20, 250)).save(disliked / "0.png")
    adapter = make_tiny_style_adapter(base / "ipa", tiny_generator_path)
    common = ["generate", "a castle", "--refs", str(refs), "--disliked", str(disliked),
              "--assessor", str(tiny_assessor_path), "--generator", str(tiny_generator_path),
              "-n", "2", "--cache-dir", str(base / "cache"), "--no-rewrite", *FAST]
    return {"base": base, "adapter": adapter, "common": common}


def test_style_run_records_adapter_and_shows_the_same_seed_pair(setup):
    base = setup["base"]
    styled, plain = base / "styled", base / "plain"
    argv = setup["common"] + ["--out", str(styled), "--style-adapter", str(setup["adapter"]),
                              "--style-scale", "0.7", "--compare-adapter"]
    assert main(argv) == 0
    assert main(setup["common"] + ["--out", str(plain)]) == 0
    data = json.loads((styled / "result.json").read_text())
    style = data["style_adapter"]
    assert style["adapter"].endswith("ip_adapter.safetensors") and style["scale"] == 0.7
    assert style["liked_used"] == [0, 1, 2] and style["disliked_used"] == [0]
    assert [f.rsplit("/", 1)[-1] for f in style["liked_files"]] == ["0.png", "1.png", "2.png"]
    assert data["rewritten_prompt"] == "a castle"  # --no-rewrite: image conditioning alone
    assert data["config"]["rewrite"] is False and data["config"]["compare_adapter"] is True
    html = (styled / "report.html").read_text()
    assert "id='style-pair'" in html and "style adapter" in html
    # The "without" image is exactly what a run without the adapter draws for that seed...
    without = np.asarray(Image.open(styled / style["without_file"])).astype(int)
    no_adapter = np.asarray(Image.open(plain / "candidate-00-seed0.png")).astype(int)
    assert np.abs(without - no_adapter).max() <= 1
    # ...and the adapter changed it.
    with_adapter = np.asarray(Image.open(styled / "candidate-00-seed0.png")).astype(int)
    assert np.abs(with_adapter - without).mean() > 1.0
    assert json.loads((plain / "result.json").read_text())["style_adapter"] is None
    # The embeddings are cached under --cache-dir (3 liked + 1 disliked), not in the home folder.
    assert len(list((base / "cache" / "style_embeds").glob("*.safetensors"))) == 4


def test_wrong_family_adapter_exits_with_one_line(setup, tiny_generator_path, tmp_path, capsys):
    from generation.tiny import make_tiny_style_adapter

    sdxl = make_tiny_style_adapter(tmp_path / "xl", tiny_generator_path, cross_attention_dim=2048)
    argv = setup["common"] + ["--out", str(tmp_path / "o"), "--style-adapter", str(sdxl)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "sdxl (cross-attention 2048)" in err[0] and "sd15" in err[0]


def test_compare_adapter_without_an_adapter_is_a_usage_error(setup, tmp_path, capsys):
    assert main(setup["common"] + ["--out", str(tmp_path / "o"), "--compare-adapter"]) == 2
    assert "need --style-adapter" in capsys.readouterr().err


def test_make_tiny_writes_a_style_adapter_for_its_generator(tmp_path, capsys):
    from generation.generator import DiffusersGenerator, GeneratorConfig
    from generation.style import StyleAdapterConfig

    assert main(["make-tiny", str(tmp_path / "t")]) == 0
    printed = capsys.readouterr()
    assert "tiny style adapter" in printed.out + printed.err
    config = GeneratorConfig(model=str(tmp_path / "t" / "generator"), device="cpu")
    gen = DiffusersGenerator(
        config, style=StyleAdapterConfig(str(tmp_path / "t" / "style_adapter"), cache=False)
    )
    gen.set_style_references([Image.new("RGB", (32, 32), (250, 0, 0))])
    assert len(gen.generate("a castle", seeds=[0])) == 1


def test_resume_with_another_style_scale_is_refused(setup, tmp_path, capsys):
    run = tmp_path / "run"
    style = ["--style-adapter", str(setup["adapter"]), "--style-scale", "0.7"]
    assert main(setup["common"] + ["--out", str(run), *style]) == 0
    journal = (run / "journal.jsonl").read_bytes()
    capsys.readouterr()
    assert main(["generate", "--resume", str(run), "--style-scale", "0.3", *FAST]) == 2
    err = capsys.readouterr().err
    assert "style_adapter" in err and "'scale': 0.7" in err and "'scale': 0.3" in err
    assert (run / "journal.jsonl").read_bytes() == journal
