"""The learning study: does our SFT and GRPO teach a model? The paper's ablation, reproduced small.

From each seed: build a SynthPref evaluation set (held-out users; unseen splits use terms held
out of training) and a compact-CoT training set (`training.study.data`); train the study BPE
tokenizer on the training text; build a small Qwen2.5-VL from random weights
(`training.study.model`); train it with our pipeline: cold-start SFT (`training.sft.train_sft`),
then GRPO from the SFT model (`training.grpo.train_grpo`) twice, once with accuracy + format
rewards only and once adding the prediction reward; evaluate every row with the `ptgen eval`
harness (`preferthinker.evaluation.evaluate` over `Assessor.from_config`, exactly what
`ptgen eval --assessor <folder>` runs): untrained, +SFT, +SFT+GRPO, +SFT+GRPO+prediction reward,
and two references without a trained model, the random baseline and the analytic assessor. Over
all seeds: mean and spread per row and split (`training.study.report`).

Settings are YAML files with sections `study`, `data`, `model`, `sft`, `grpo`, `eval`:
`--setting cpu` (training/configs/study-cpu.yaml, this 2-core machine, under an hour) and
`--setting gpu` (training/configs/study-gpu.yaml, one H100), or a path to any such file.

Run:
    python benchmarks/learning_study.py --setting cpu --out runs/learning-study

Writes `<out>/results.json` (every seed's results, timings, training logs, the summary) and
`<out>/table.md`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO))

logger = logging.getLogger("learning_study")

SETTINGS = {
    "cpu": REPO / "training/configs/study-cpu.yaml",
    "gpu": REPO / "training/configs/study-gpu.yaml",
}
ROWS = ("random", "analytic", "untrained", "sft", "grpo", "grpo_pred")
ROW_LABELS = {
    "random": "random baseline",
    "analytic": "analytic assessor (pixel measurements, no model)",
    "untrained": "untrained (random weights)",
    "sft": "+SFT",
    "grpo": "+SFT+GRPO (accuracy+format)",
    "grpo_pred": "+SFT+GRPO+prediction reward",
}
SECTIONS = ("study", "data", "model", "sft", "grpo", "eval")


@dataclass
class StudyConfig:
    """The `study` section.

    Args:
        seeds: one full run (data, model, training, evaluation) per seed.
        threads: torch CPU threads (on a shared 2-core machine 1 is much faster than 2; see
            docs/results.md).
        device: "cpu", "cuda" or None (cuda when available).
        tokenizer_vocab_size: the most BPE tokens.
        rows: which ablation rows to run (subset of random, analytic, untrained, sft, grpo,
            grpo_pred). GRPO rows without "sft" start from `<out>/seed<N>/sft/final` of an
            earlier run.
        jobs: seeds run at once, each in its own (spawned) process with `threads` torch
            threads; the results do not depend on it, the wall time does.
    """

    seeds: list = field(default_factory=lambda: [0, 1, 2])
    threads: int = 1
    device: Optional[str] = None
    tokenizer_vocab_size: int = 4096
    rows: list = field(default_factory=lambda: list(ROWS))
    jobs: int = 1

    def __post_init__(self) -> None:
        if self.jobs < 1:
            raise ValueError(f"jobs must be >= 1, got {self.jobs}")
        if not self.seeds or not all(isinstance(s, int) for s in self.seeds):
            raise ValueError(f"seeds must be a non-empty list of ints, got {self.seeds!r}")
        if self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")
        unknown = [r for r in self.rows if r not in ROWS]
        if unknown:
            raise ValueError(f"rows has unknown names {unknown}; valid: {', '.join(ROWS)}")


@dataclass
class EvalSettings:
    """The `eval` section: decoding and harness options (AssessorConfig / EvalConfig fields)."""

    max_new_tokens: int = 128
    batch_size: int = 16
    position_bias: bool = False
    similarity: bool = True

    def __post_init__(self) -> None:
        for name in ("max_new_tokens", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


def load_setting(setting: str) -> dict[str, Any]:
    """The raw sections of a setting: "cpu", "gpu" or a YAML path."""
    from preferthinker.config import read_yaml
    from preferthinker.errors import ConfigError

    path = SETTINGS.get(setting, Path(setting))
    data = read_yaml(path)
    unknown = [k for k in data if k not in SECTIONS]
    if unknown:
        raise ConfigError(f"{path}: unknown sections {unknown}; valid: {', '.join(SECTIONS)}")
    return {"path": str(path), **{s: dict(data.get(s) or {}) for s in SECTIONS}}


class LogCollector:
    """A transformers TrainerCallback that keeps every logged dict (losses, rewards)."""

    def __init__(self) -> None:
        from transformers import TrainerCallback

        collector = self

        class _Callback(TrainerCallback):
            def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: D401
                if logs:
                    collector.logs.append(
                        {"step": state.global_step, **{k: v for k, v in logs.items()}}
                    )

        self.logs: list[dict[str, Any]] = []
        self.callback = _Callback()


def _device_fields(device: str) -> dict[str, Any]:
    return {"use_cpu": device == "cpu", "bf16": device != "cpu"}


def sft_config(
    setting: dict, model_dir: Path, data_dir: Path, out: Path, seed: int, device: str
) -> Any:
    """The `training.sft.SFTTrainingConfig` of a seed's SFT row: the setting's `sft` section."""
    from training.sft import SFTTrainingConfig

    return SFTTrainingConfig(
        **{
            "output_dir": str(out),
            "model_name_or_path": str(model_dir),
            "dataset_path": str(data_dir),
            "seed": seed,
            "save_strategy": "no",
            "report_to": "none",
            "eos_token": "<|im_end|>",
            "freeze_vision": False,
            "max_pixels": None,
            **_device_fields(device),
            **setting["sft"],
        }
    )


def grpo_config(
    setting: dict,
    sft_dir: Path,
    data_dir: Path,
    out: Path,
    seed: int,
    device: str,
    prediction: bool,
) -> Any:
    """The `training.grpo.GRPOTrainingConfig` of a seed's GRPO row: the setting's `grpo` section;
    `prediction` False sets the prediction reward's weight to 0 (accuracy + format only)."""
    from training.grpo import GRPOTrainingConfig
    from training.rewards import RewardConfig

    values = {
        "output_dir": str(out),
        "model_name_or_path": str(sft_dir),
        "dataset_path": str(data_dir),
        "seed": seed,
        "save_strategy": "no",
        "report_to": "none",
        "freeze_vision": False,
        "max_pixels": None,
        "use_lora": False,
        **_device_fields(device),
        **setting["grpo"],
    }
    weights = list(values.get("reward_weights") or RewardConfig().weights)
    if not prediction:
        weights[2] = 0.0
    values["reward_weights"] = weights
    return GRPOTrainingConfig(**values)


def train_sft_row(
    setting: dict,
    model_dir: Path,
    data_dir: Path,
    out: Path,
    seed: int,
    device: str,
    callbacks: Sequence[Any] = (),
) -> tuple[Path, list]:
    """Cold-start SFT through `training.sft.train_sft` (`callbacks`: extra TrainerCallbacks)."""
    from training.sft import train_sft

    collector = LogCollector()
    final = train_sft(
        sft_config(setting, model_dir, data_dir, out, seed, device),
        callbacks=[collector.callback, *callbacks],
    )
    return final, collector.logs


def train_grpo_row(
    setting: dict,
    sft_dir: Path,
    data_dir: Path,
    out: Path,
    seed: int,
    device: str,
    prediction: bool,
    components: Optional[dict] = None,
    callbacks: Sequence[Any] = (),
) -> tuple[Path, list]:
    """GRPO through `training.grpo.train_grpo` from the SFT model (`callbacks`: extra ones)."""
    from training.grpo import train_grpo

    collector = LogCollector()
    config = grpo_config(setting, sft_dir, data_dir, out, seed, device, prediction)
    final = train_grpo(
        config, callbacks=[collector.callback, *callbacks], reward_components=components
    )
    return final, collector.logs


def evaluate_row(
    model_dir: Optional[Path | str],
    items: list,
    settings: EvalSettings,
    device: str,
    image_size: int,
    similarity: Any = None,
) -> dict[str, Any]:
    """Evaluate one model folder (or "analytic", or the random baseline when None) with the
    `ptgen eval` harness."""
    from preferthinker.assessor import Assessor, AssessorConfig
    from preferthinker.evaluation import EvalConfig, evaluate

    config = EvalConfig(position_bias=settings.position_bias, similarity=settings.similarity)
    if model_dir is None:
        return evaluate(items, None, config, baseline="random")
    assessor_config = AssessorConfig(
        assessor=str(model_dir),
        device=device,
        max_new_tokens=settings.max_new_tokens,
        repetition_penalty=1.0,  # the compact format repeats its fixed pieces by design
        max_retries=0,
        max_pixels=max(image_size, 64) ** 2,
        batch_size=settings.batch_size,
    )
    with Assessor.from_config(assessor_config) as assessor:
        return evaluate(items, assessor, config, similarity=similarity)


def _strip(result: dict[str, Any]) -> dict[str, Any]:
    """The result without the per-item list (kept in the per-seed file only)."""
    return {k: v for k, v in result.items() if k != "items"}


def _reusable_data(data_dir: Path, config: Any) -> Optional[dict[str, Any]]:
    """The summary of an already built `data_dir` when it was built from exactly `config`."""
    from dataclasses import asdict

    path = data_dir / "study_data.json"
    if not path.is_file():
        return None
    summary = json.loads(path.read_text(encoding="utf-8"))
    return summary if summary.get("config") == asdict(config) else None


def run_seed(
    seed: int,
    setting: dict,
    study: StudyConfig,
    out: Path,
    device: str,
    similarity: Any = None,
    reuse_data: bool = False,
    callbacks: Sequence[Any] = (),
) -> dict[str, Any]:
    """One complete run of the study for `seed`; returns its results, timings and logs.
    `callbacks`: extra TrainerCallbacks for every training row (e.g. a time limit).

    Stages: 1. data (kept when `reuse_data` and `<out>/seed<seed>/data` was built from the same
    data settings); 2. tokenizer and random-weight model; 3. SFT; 4. GRPO without and with the
    prediction reward; 5. evaluation of every row.
    """
    from preferthinker.benchmark import load_benchmark
    from preferthinker.config import config_from_dict
    from training.study.data import (
        EVAL_DIR,
        TRAIN_DIR,
        StudyDataConfig,
        build_study_data,
        training_texts,
    )
    from training.study.model import StudyModelConfig, make_study_model
    from training.study.tokenizer import multi_token_terms, train_study_tokenizer

    root = out / f"seed{seed}"
    timings: dict[str, float] = {}
    logs: dict[str, list] = {}

    def timed(name: str, fn, *args, **kwargs):
        started = time.perf_counter()
        value = fn(*args, **kwargs)
        timings[name] = round(time.perf_counter() - started, 1)
        logger.info("seed %d: %s took %.1f s", seed, name, timings[name])
        return value

    # 1. Data.
    data_config = config_from_dict(
        StudyDataConfig, {**setting["data"], "seed": seed}, "data section"
    )
    data_summary = _reusable_data(root / "data", data_config) if reuse_data else None
    if data_summary is not None:
        logger.info("seed %d: reusing the data in %s (same data settings)", seed, root / "data")
    else:
        data_summary = timed("data", build_study_data, root / "data", data_config)
    train_dir, eval_dir = root / "data" / TRAIN_DIR, root / "data" / EVAL_DIR
    # 2. Tokenizer and the untrained model (only the SFT and untrained rows use them).
    model_config = config_from_dict(
        StudyModelConfig, {**setting["model"], "seed": seed}, "model section"
    )
    # analytic: what pixel measurements of colour, saturation and detail decide on the same pairs.
    models: dict[str, Optional[Path | str]] = {"random": None, "analytic": "analytic"}
    info: dict[str, Any] = {}
    if "sft" in study.rows or "untrained" in study.rows:
        tokenizer = timed(
            "tokenizer",
            train_study_tokenizer,
            training_texts(train_dir),
            vocab_size=study.tokenizer_vocab_size,
        )
        untrained = models["untrained"] = make_study_model(
            root / "untrained", model_config, tokenizer
        )
        info = json.loads((untrained / "study_model.json").read_text())
        info["multi_token_terms"] = multi_token_terms(tokenizer)
    # 3-4. Training.
    if "sft" in study.rows:
        models["sft"], logs["sft"] = timed(
            "sft",
            train_sft_row,
            setting,
            models["untrained"],
            train_dir,
            root / "sft",
            seed,
            device,
            callbacks,
        )
    elif "grpo" in study.rows or "grpo_pred" in study.rows:
        models["sft"] = earlier_sft_model(
            out, seed
        )  # GRPO rows alone start from an earlier run's SFT
    if "grpo" in study.rows:
        models["grpo"], logs["grpo"] = timed(
            "grpo",
            train_grpo_row,
            setting,
            models["sft"],
            train_dir,
            root / "grpo",
            seed,
            device,
            False,
            {"similarity": similarity} if similarity is not None else None,
            callbacks,
        )
    if "grpo_pred" in study.rows:
        models["grpo_pred"], logs["grpo_pred"] = timed(
            "grpo_pred",
            train_grpo_row,
            setting,
            models["sft"],
            train_dir,
            root / "grpo_pred",
            seed,
            device,
            True,
            {"similarity": similarity} if similarity is not None else None,
            callbacks,
        )
    # 5. Evaluation with the ptgen eval harness.
    items = load_benchmark(eval_dir)
    eval_settings = config_from_dict(EvalSettings, setting["eval"], "eval section")
    results: dict[str, Any] = {}
    for row in study.rows:
        result = timed(
            f"eval_{row}",
            evaluate_row,
            models[row],
            items,
            eval_settings,
            device,
            model_config.image_size,
            similarity,
        )
        (root / f"eval_{row}.json").write_text(
            json.dumps(result, indent=1, default=str), encoding="utf-8"
        )
        results[row] = _strip(result)
    return {
        "seed": seed,
        "data": {k: v for k, v in data_summary.items() if k != "term_split"},
        "held_out_terms": data_summary["term_split"]["unseen"],
        "model": info,
        "timings": timings,
        "logs": logs,
        "results": results,
    }


def earlier_sft_model(out: Path, seed: int) -> Path:
    """`<out>/seed<seed>/sft/final`, the SFT model that GRPO rows start from when `study.rows`
    has no "sft" (e.g. longer GRPO from the models of an earlier run, copied there)."""
    from preferthinker.errors import ConfigError

    final = out / f"seed{seed}" / "sft" / "final"
    if not (final / "config.json").is_file():
        raise ConfigError(
            f"the GRPO rows need an SFT model: add 'sft' to study.rows, or put one in {final}"
        )
    return final


def _similarity(setting: dict) -> Any:
    """One SBERT model for the rewards and the evaluation (None when the eval skips similarity)."""
    if not setting["eval"].get("similarity", True):
        return None
    from preferthinker.similarity import ProfileSimilarity

    return ProfileSimilarity()


def _run_seed_in_worker(
    seed: int, setting: dict, study: "StudyConfig", out: Path, device: str, reuse_data: bool
) -> dict[str, Any]:
    """`run_seed` in a worker process (`study.jobs` > 1): its own threads, logging and SBERT."""
    import torch

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s seed{seed} %(name)s %(message)s")
    torch.set_num_threads(study.threads)
    return run_seed(seed, setting, study, out, device, _similarity(setting), reuse_data)


def machine() -> str:
    """A one-line description of this machine."""
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, {gpu}, "
        f"torch {torch.__version__}"
    )


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--setting", default="cpu", help="cpu, gpu, or a YAML file with the study sections"
    )
    parser.add_argument(
        "--out", type=Path, default=Path("runs/learning-study"), help="output folder"
    )
    parser.add_argument("--seeds", type=int, nargs="+", help="override the setting's seeds")
    parser.add_argument("--threads", type=int, help="override the setting's torch threads")
    parser.add_argument(
        "--reuse-data",
        action="store_true",
        help="keep <out>/seed<N>/data when it was built from the same data settings",
    )
    parser.add_argument(
        "--device", help="cpu or cuda (default: the setting's, else cuda when available)"
    )
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> dict[str, Any]:
    """Run the study; returns the summary written to `<out>/results.json`.

    Example:
        >>> main(["--setting", "cpu", "--out", "runs/learning-study"])  # doctest: +SKIP
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    args.command = "python benchmarks/learning_study.py " + " ".join(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything is local; skip the hub probe
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    import torch

    from preferthinker.config import config_from_dict

    setting = load_setting(args.setting)
    overrides = {
        k: v
        for k, v in (("seeds", args.seeds), ("threads", args.threads), ("device", args.device))
        if v
    }
    study = config_from_dict(StudyConfig, {**setting["study"], **overrides}, "study section")
    torch.set_num_threads(study.threads)
    device = study.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if "sft" not in study.rows and {"grpo", "grpo_pred"} & set(study.rows):
        for seed in study.seeds:  # before hours of work, not after
            earlier_sft_model(args.out, seed)
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    runs: list[dict[str, Any]] = []
    if study.jobs == 1:
        similarity = _similarity(setting)
        for seed in study.seeds:
            runs.append(
                run_seed(seed, setting, study, args.out, device, similarity, args.reuse_data)
            )
            _write(args, setting, study, device, runs, started)
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(
            study.jobs, mp_context=multiprocessing.get_context("spawn")
        ) as pool:
            futures = [
                pool.submit(
                    _run_seed_in_worker, seed, setting, study, args.out, device, args.reuse_data
                )
                for seed in study.seeds
            ]
            for future in as_completed(futures):
                runs.append(future.result())
                runs.sort(key=lambda run: study.seeds.index(run["seed"]))
                _write(args, setting, study, device, runs, started)
    summary = _write(args, setting, study, device, runs, started)
    print(summary["table"])
    return summary


def _write(args, setting, study, device, runs, started) -> dict[str, Any]:
    from training.study.report import aggregate, markdown_summary

    per_seed = {run["seed"]: run["results"] for run in runs}
    summary_rows = aggregate(per_seed, rows=[r for r in ROWS if r in study.rows])
    table = markdown_summary(summary_rows, ROW_LABELS)
    summary = {
        "command": args.command,
        "setting": setting,
        "device": device,
        "machine": machine(),
        "threads": study.threads,
        "seeds": [run["seed"] for run in runs],
        "wall_seconds": round(time.perf_counter() - started, 1),
        "summary": summary_rows,
        "table": table,
        "runs": runs,
    }
    (args.out / "results.json").write_text(
        json.dumps(summary, indent=1, default=str), encoding="utf-8"
    )
    (args.out / "table.md").write_text(table + "\n", encoding="utf-8")
    return summary


if __name__ == "__main__":
    from preferthinker.errors import ConfigError

    try:
        main()
    except ConfigError as error:
        raise SystemExit(f"error: {error}") from None
