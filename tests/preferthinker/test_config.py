"""Sectioned config files: each section feeds its own dataclass, misplaced and misspelled keys are
one-line errors, flat files warn and still work, flags override the file."""

from __future__ import annotations

import dataclasses
import warnings

import pytest

from generation.generator import GeneratorConfig
from generation.loop import LoopConfig
from preferthinker.assessor import AssessorConfig
from preferthinker.config import (
    SECTIONS,
    ConfigFile,
    FlatConfigWarning,
    config_from_dict,
    convert_flat,
    load_config,
    section_class,
    section_of,
)
from preferthinker.errors import ConfigError
from ptgen.cli.generate_cmds import generator_config, loop_config
from ptgen.cli.main import main
from ptgen.cli.options import assessor_config

SECTIONED = """\
assessor:
  assessor: analytic
  batch_size: 2
  debias: true
generator:
  batch_size: 8
  steps: 3
loop:
  n: 4
  strategy: swiss
"""

FLAT = """\
assessor: analytic
batch_size: 8
debias: true
steps: 3
n: 4
"""


def _write(tmp_path, text, name="ptgen.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_every_section_names_its_dataclass():
    for name in SECTIONS:
        if name in ("sft", "grpo"):
            continue  # imports TRL; covered in tests/training/test_model_fields.py
        assert section_of(section_class(name)) == name


def test_each_section_feeds_only_its_own_config(tmp_path):
    path = _write(tmp_path, SECTIONED)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a sectioned file warns nothing
        assessor = load_config(AssessorConfig, path)
        generator = load_config(GeneratorConfig, path)
        loop = load_config(LoopConfig, path)
    assert (assessor.assessor, assessor.batch_size, assessor.debias) == ("analytic", 2, True)
    assert (generator.batch_size, generator.steps) == (8, 3)
    assert (loop.n, loop.strategy) == (4, "swiss")
    # Everything not in the file keeps the dataclass default.
    assert assessor.max_pixels == AssessorConfig().max_pixels
    assert loop.mode == LoopConfig().mode


def test_flags_override_the_file_and_the_file_overrides_defaults(tmp_path):
    file = ConfigFile.read(_write(tmp_path, SECTIONED))
    assert loop_config(file, n=6, strategy=None).n == 6  # flag given
    assert loop_config(file, n=None, strategy=None).strategy == "swiss"  # flag not given: the file
    assert assessor_config(file, debias=False).debias is False  # an explicit False is a flag too
    assert generator_config(file, steps=None, batch_size=1).batch_size == 1
    assert loop_config(None, n=None).n == LoopConfig().n  # no file: the defaults


def test_a_key_in_the_wrong_section_names_file_section_key_valid_keys_and_its_section(tmp_path):
    path = _write(tmp_path, "assessor:\n  assessor: analytic\n  n: 4\n")
    with pytest.raises(ConfigError) as error:
        load_config(AssessorConfig, path)
    message = str(error.value)
    assert "\n" not in message
    assert str(path) in message and "'n'" in message and "section assessor:" in message
    assert "belongs to section loop:" in message
    assert "valid keys: add_vision_id, assessor, assessor_model, batch_size, debias," in message


def test_a_misspelled_key_suggests_the_right_one(tmp_path):
    path = _write(tmp_path, "loop:\n  strategi: swiss\n")
    expected = (
        r"unknown key 'strategi' in section loop: for LoopConfig; "
        r"did you mean strategy or strength\? valid keys: cache, "
    )
    with pytest.raises(ConfigError, match=expected):
        load_config(LoopConfig, path)


def test_a_key_outside_any_section_and_an_unknown_section_are_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"key 'n' is outside any section; put it under loop:"):
        ConfigFile.read(_write(tmp_path, "loop:\n  seed: 1\nn: 4\n"))
    expected = (
        r"unknown section 'loops' \(did you mean loop:\?\); "
        r"valid sections: assessor, generator, loop, serve, data, sft, grpo"
    )
    with pytest.raises(ConfigError, match=expected):
        ConfigFile.read(_write(tmp_path, "loops:\n  n: 4\n"))
    with pytest.raises(ConfigError, match=r"unknown section 'training'; valid sections: "):
        ConfigFile.read(_write(tmp_path, "loop:\n  n: 4\ntraining:\n  lr: 1\n"))


def test_a_value_the_dataclass_rejects_names_the_file_and_section(tmp_path):
    path = _write(tmp_path, "loop:\n  n: 0\n")
    with pytest.raises(ConfigError, match=rf"{path} \[loop\]: n must be >= 1, got 0"):
        load_config(LoopConfig, path)


def test_a_word_for_a_number_and_a_section_that_is_no_mapping_are_named(tmp_path):
    path = _write(tmp_path, "generator:\n  steps: lots\n")
    expected = rf"{path} \[generator\]: steps must be a number, got 'lots'"
    with pytest.raises(ConfigError, match=expected):
        load_config(GeneratorConfig, path)
    # A field typed by the class itself (a module without `from __future__ import annotations`).
    def positive(self):
        if self.steps < 1:
            raise ValueError("steps must be >= 1")

    plain = dataclasses.make_dataclass(
        "Plain", [("steps", int, 1)], namespace={"__post_init__": positive}
    )
    with pytest.raises(ConfigError, match=r"x \[s\]: steps must be a number, got 'two'"):
        config_from_dict(plain, {"steps": "two"}, "x", "s")
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00 not text")
    with pytest.raises(ConfigError, match=r"binary.yaml is not UTF-8 text \(byte 0\)"):
        ConfigFile.read(binary)
    with pytest.raises(ConfigError, match=r"section loop: must hold option: value lines, got list"):
        ConfigFile.read(_write(tmp_path, "generator:\n  steps: 2\nloop: [1]\n"))


def test_a_flat_file_still_works_as_before_and_warns_once_how_to_convert(tmp_path):
    file = ConfigFile.read(_write(tmp_path, FLAT))
    with pytest.warns(FlatConfigWarning) as caught:
        assessor = assessor_config(file)
        generator = generator_config(file)
        loop = loop_config(file)
    assert len(caught) == 1
    message = str(caught[0].message)
    moves = "assessor: assessor, batch_size, debias; generator: batch_size, steps; loop: n"
    assert moves in message
    assert f"ptgen config convert {file.path}" in message
    # The old behaviour, kept for one release: batch_size fed both configs that have it.
    assert (assessor.assessor, assessor.batch_size, assessor.debias) == ("analytic", 8, True)
    assert (generator.batch_size, generator.steps, loop.n) == (8, 3, 4)


def test_a_flat_file_with_a_key_no_section_has_is_an_error(tmp_path):
    path = _write(tmp_path, "debais: true\n")
    with pytest.raises(ConfigError, match="unknown key 'debais'; no config section has it"):
        load_config(AssessorConfig, path)


def test_convert_gives_a_sectioned_file_that_loads_the_same_configs(tmp_path):
    flat = _write(tmp_path, FLAT, "flat.yaml")
    converted = _write(tmp_path, convert_flat(flat), "sectioned.yaml")
    assert ConfigFile.read(converted).sectioned
    assert "batch_size: 8   # also read by generator" in converted.read_text()
    with pytest.warns(FlatConfigWarning):
        for cls in (AssessorConfig, GeneratorConfig, LoopConfig):
            assert load_config(cls, converted) == load_config(cls, flat)
    with pytest.raises(ConfigError, match="already has sections"):
        convert_flat(converted)


def test_cli_prints_a_warning_line_for_a_flat_file_and_an_error_line_for_a_bad_key(
    tmp_path, capsys, make_images
):
    refs = tmp_path / "refs"
    refs.mkdir()
    for number, image in enumerate(make_images(2)):
        image.save(refs / f"{number}.png")
    flat = _write(tmp_path, FLAT, "flat.yaml")
    for _ in range(2):  # every run warns, not only the first in this process
        assert main(["profile", "--refs", str(refs), "--config", str(flat), "--json"]) == 0
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and err[0].startswith(f"warning: {flat} is a flat config file")

    bad = _write(tmp_path, "assessor:\n  n: 4\n", "bad.yaml")
    assert main(["profile", "--refs", str(refs), "--config", str(bad), "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith(f"error: {bad}: unknown key 'n'")

    assert main(["config", "convert", str(flat)]) == 0
    assert capsys.readouterr().out.startswith("assessor:\n  assessor: analytic\n")
