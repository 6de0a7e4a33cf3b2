"""The PreferThinker-7B recipe (`training/recipes/preferthinker-7b/`): every YAML loads through the
config class its command uses (a misspelt key fails), it holds the authors' GRPO settings, the
README's commands name files that exist, and the files ship with the package."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

import pytest

from preferthinker.assessor import AssessorConfig
from preferthinker.errors import ConfigError
from ptgen.cli.data_cmds import load_strict
from training.grpo import GRPOTrainingConfig
from training.sft import SFTTrainingConfig

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "training" / "recipes" / "preferthinker-7b"
# This machine has no GPU: TrainingArguments refuses bf16 without one, so the check runs the
# configs on CPU. Every key of the file is still checked by name (load_strict reads the file first).
CPU = {"bf16": False, "use_cpu": True}
CONFIGS = {
    "sft.yaml": (SFTTrainingConfig, CPU),
    "grpo.yaml": (GRPOTrainingConfig, CPU),
    "eval.yaml": (AssessorConfig, {}),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_recipe_config_loads_through_its_class(name):
    cls, overrides = CONFIGS[name]
    assert isinstance(load_strict(cls, RECIPE / name, overrides), cls)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_a_misspelt_key_fails(name, tmp_path):
    cls, overrides = CONFIGS[name]
    text = (RECIPE / name).read_text()
    first_key = re.search(r"^([a-z_]+):", text, re.M).group(1)
    broken = tmp_path / name
    broken.write_text(text.replace(f"{first_key}:", f"{first_key}x:", 1))
    with pytest.raises(ConfigError, match=f"{first_key}x"):
        load_strict(cls, broken, overrides)


def test_the_authors_grpo_settings_and_the_imported_splits():
    sft = load_strict(SFTTrainingConfig, RECIPE / "sft.yaml", CPU)
    grpo = load_strict(GRPOTrainingConfig, RECIPE / "grpo.yaml", CPU)
    assert (grpo.num_generations, grpo.beta, grpo.max_completion_length) == (2, 0.04, 2048)
    assert grpo.reward_weights == [1.0, 0.3, 0.7]
    assert (sft.dataset_split, grpo.dataset_split) == ("sft", "grpo")
    assert (
        sft.dataset_path == grpo.dataset_path
        and grpo.model_name_or_path == f"{sft.output_dir}/final"
    )
    assert (
        sft.max_pixels
        == grpo.max_pixels
        == load_strict(AssessorConfig, RECIPE / "eval.yaml", {}).max_pixels
    )
    evaluation = load_strict(AssessorConfig, RECIPE / "eval.yaml", {})
    assert (evaluation.temperature, evaluation.repetition_penalty, evaluation.max_new_tokens) == (
        0.0,
        1.15,
        4096,
    )


def test_readme_commands_name_files_that_exist():
    readme = (RECIPE / "README.md").read_text()
    paths = set(re.findall(r"(training/(?:configs|recipes)/[\w./-]+\.(?:yaml|json))", readme))
    assert {
        "training/recipes/preferthinker-7b/sft.yaml",
        "training/recipes/preferthinker-7b/grpo.yaml",
        "training/recipes/preferthinker-7b/eval.yaml",
        "training/configs/accelerate-zero3.yaml",
    } <= paths
    assert all((ROOT / p).is_file() for p in paths), [p for p in paths if not (ROOT / p).is_file()]
    for stage in (
        "ptgen data import",
        "train sft",
        "train grpo",
        "ptgen serve",
        "--protocol authors",
    ):
        assert stage in readme
    assert "96.6 | 92.0 | 96.4 | 92.8 | 65.7 | 88.7" in readme


def test_recipe_files_ship_as_package_data():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["training"]
    for path in RECIPE.iterdir():
        relative = path.relative_to(ROOT / "training").as_posix()
        assert any(fnmatch.fnmatch(relative, g) for g in globs), relative
