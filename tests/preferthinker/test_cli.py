"""`ptgen profile`, `ptgen assess`, `ptgen make-tiny` end to end on the tiny model, in-process
and over HTTP against a real `transformers serve` (the issue's "done when")."""

from __future__ import annotations

import json

import pytest

from ptgen.cli.main import main

FAST = ["--max-new-tokens", "24"]


def run(capsys, argv):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_profile_json_in_process(capsys, tiny_assessor_path, image_dir):
    code, out, err = run(capsys, ["profile", "--refs", str(image_dir), "--assessor",
                                  str(tiny_assessor_path), "--json", *FAST])
    assert code == 0, err
    data = json.loads(out)
    assert set(data["profile"]) == {"liked", "disliked"}
    assert set(data["profile"]["liked"]) == {"art_style", "color", "art_medium", "saturation", "detail"}
    # random weights write 24 tokens of noise: no profile in it, and it says so
    assert data["status"] == "failed" and data["raw_text"].strip()
    assert all(terms == [] for side in data["profile"].values() for terms in side.values())
    assert data["usage"]["images"] >= 3  # the three usable images of image_dir, per attempt


def test_profile_json_over_http(capsys, tiny_server, tiny_assessor_path, image_dir):
    code, out, err = run(capsys, ["profile", "--refs", str(image_dir), "--assessor", tiny_server,
                                  "--assessor-model", str(tiny_assessor_path), "--json", *FAST])
    assert code == 0, err
    data = json.loads(out)
    assert data["assessor"] == tiny_server
    assert data["status"] == "failed"  # random weights: no profile, as in-process
    assert data["usage"]["calls"] >= 1


def test_assess_with_random_weights_is_undecided_and_says_why(capsys, tiny_assessor_path, image_dir, tmp_path, make_images):
    a, b = make_images(2)
    a.save(tmp_path / "a.png")
    b.save(tmp_path / "b.png")
    code, out, err = run(capsys, ["assess", str(tmp_path / "a.png"), str(tmp_path / "b.png"),
                                  "--refs", str(image_dir), "--assessor", str(tiny_assessor_path),
                                  "--json", *FAST])
    assert code == 0, err
    data = json.loads(out)
    # Full prompt: the 3 usable references plus the 2 candidates in every attempt.
    assert data["usage"]["images"] == 5 * data["usage"]["calls"]
    assert len(data["raw_texts"]) == 1
    # random weights write noise: no decision, and the output says why
    assert data["winner"] is None and data["issues"]


def test_no_usable_image_exits_2_with_one_line(capsys, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no images here")
    code, out, err = run(capsys, ["profile", "--refs", str(empty), "--assessor", "analytic"])
    assert code == 2
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "no usable image" in lines[0]
    assert "Traceback" not in err


def test_missing_model_is_one_line(capsys, image_dir, tmp_path):
    code, out, err = run(capsys, ["profile", "--refs", str(image_dir), "--assessor",
                                  str(tmp_path / "no-such-model")])
    assert code == 3
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if not line.startswith("warning:")]
    assert len(errors) == 1 and errors[0].startswith("error:")
    assert "--assessor" in errors[0]


def test_dead_server_is_one_line(capsys, image_dir):
    code, out, err = run(capsys, ["profile", "--refs", str(image_dir), "--assessor",
                                  "http://127.0.0.1:9/v1", "--assessor-model", "m"])
    assert code == 4
    assert "Traceback" not in err and "127.0.0.1:9" in err


def test_config_file_sets_options_and_flags_override(capsys, tiny_assessor_path, image_dir, tmp_path):
    config = tmp_path / "ptgen.yaml"
    config.write_text(f"assessor: {tiny_assessor_path}\nmax_new_tokens: 8\nmax_retries: 0\n")
    code, out, err = run(capsys, ["profile", "--refs", str(image_dir), "--config", str(config), "--json"])
    assert code == 0, err
    assert json.loads(out)["usage"]["completion_tokens"] <= 8
    code, out, err = run(capsys, ["profile", "--refs", str(image_dir), "--config", str(config),
                                  "--max-new-tokens", "3", "--json"])
    assert json.loads(out)["usage"]["completion_tokens"] <= 3


def test_bad_config_value_names_the_field(capsys, image_dir, tmp_path):
    config = tmp_path / "ptgen.yaml"
    config.write_text("max_new_tokens: 0\n")
    code, out, err = run(capsys, ["profile", "--refs", str(image_dir), "--config", str(config)])
    assert code == 2
    assert "max_new_tokens" in err and "Traceback" not in err


def test_make_tiny_refuses_to_overwrite(capsys, tmp_path):
    target = tmp_path / "t"
    (target / "assessor").mkdir(parents=True)
    (target / "assessor" / "keep.txt").write_text("earlier work")
    code, out, err = run(capsys, ["make-tiny", str(target)])
    assert code == 2
    assert (target / "assessor" / "keep.txt").read_text() == "earlier work"


@pytest.mark.slow
def test_make_tiny_then_profile(capsys, tmp_path, image_dir):
    code, out, err = run(capsys, ["make-tiny", str(tmp_path / "t")])
    assert code == 0, err
    assert (tmp_path / "t" / "assessor" / "config.json").exists()
    assert (tmp_path / "t" / "generator" / "model_index.json").exists()
    # the made assessor loads and answers through the CLI (noise: random weights)
    code, out, err = run(capsys, ["profile", "--refs", str(image_dir), "--assessor",
                                  str(tmp_path / "t" / "assessor"), "--json", "--device", "cpu",
                                  "--max-new-tokens", "8"])
    assert code == 0, err
    data = json.loads(out)
    assert data["status"] == "failed"
    assert data["usage"]["completion_tokens"] == 8 * data["usage"]["calls"]  # 8 tokens per attempt
    assert data["usage"]["images"] >= 3
