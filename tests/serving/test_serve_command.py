"""The vLLM command line `ptgen serve` builds, for each way of serving an assessor."""

from __future__ import annotations

import json
import sys

import pytest

from ptgen.cli.main import main
from preferthinker.serving import (
    ServeConfig,
    VLLMLauncher,
    build_serve_command,
    find_vllm,
    required_model_len,
)

MODEL = "Qwen/Qwen2.5-VL-7B-Instruct"
PLAIN = VLLMLauncher(["vllm", "serve"], True, "test")


def flag(argv: list[str], name: str) -> str:
    assert argv.count(name) == 1, f"{name} appears {argv.count(name)} times in {argv}"
    return argv[argv.index(name) + 1]


def test_one_gpu_has_the_flags_predict_then_assess_needs():
    argv = build_serve_command(ServeConfig(model=MODEL), PLAIN).argv
    assert argv[:3] == ["vllm", "serve", MODEL]
    assert json.loads(flag(argv, "--limit-mm-per-prompt")) == {"image": 12}  # 5 + 5 + 2
    assert json.loads(flag(argv, "--mm-processor-kwargs")) == {"max_pixels": 1024 * 1024}
    assert flag(argv, "--host") == "127.0.0.1"
    assert flag(argv, "--port") == "8000"
    assert flag(argv, "--tensor-parallel-size") == "1"
    assert "--enable-prefix-caching" in argv
    assert int(flag(argv, "--max-model-len")) == 23552  # worked out in the next test
    for absent in ("--enable-lora", "--api-key", "--distributed-executor-backend", "--pipeline-parallel-size"):
        assert absent not in argv


def test_model_len_fits_twelve_images_and_the_completion():
    # Qwen2.5-VL: one token per 28x28 pixels, plus 2 around each image; 3072 prompt-text tokens,
    # the completion, rounded up to a multiple of 1024.
    # 12 x (ceil(1048576 / 784) + 2) + 3072 + 4096 = 12 x 1340 + 7168 = 23248 -> 23552
    assert required_model_len() == 23552
    # 12 x (ceil(262144 / 784) + 2) + 7168 = 12 x 337 + 7168 = 11212 -> 11264
    assert required_model_len(max_pixels=512 * 512) == 11264
    # 20 x 1340 + 7168 = 33968 -> 34816
    assert required_model_len(max_images=20) == 34816
    with pytest.raises(ValueError, match="max_model_len=8192"):
        ServeConfig(model=MODEL, max_model_len=8192)


def test_tensor_parallel_and_data_parallel():
    argv = build_serve_command(
        ServeConfig(model=MODEL, tensor_parallel_size=4, data_parallel_size=2), PLAIN
    ).argv
    assert flag(argv, "--tensor-parallel-size") == "4"
    assert flag(argv, "--data-parallel-size") == "2"


def test_lora_adapter_is_served_without_merge_under_its_name(tmp_path):
    cfg = ServeConfig(model=MODEL, adapter=str(tmp_path / "lora"), adapter_name="pt-lora", max_lora_rank=16)
    argv = build_serve_command(cfg, PLAIN).argv
    assert "--enable-lora" in argv
    assert flag(argv, "--lora-modules") == f"pt-lora={tmp_path / 'lora'}"
    assert flag(argv, "--max-lora-rank") == "16"
    assert argv[2] == MODEL  # the base model is what vLLM loads
    assert cfg.client_model == "pt-lora"


def test_merged_checkpoint_with_served_name():
    cfg = ServeConfig(model="/ckpt/merged", served_model_name="preferthinker-7b")
    argv = build_serve_command(cfg, PLAIN).argv
    assert argv[2] == "/ckpt/merged"
    assert flag(argv, "--served-model-name") == "preferthinker-7b"
    assert cfg.client_model == "preferthinker-7b"


def test_api_key_goes_through_the_environment_not_argv():
    command = build_serve_command(ServeConfig(model=MODEL, api_key="s3cret"), PLAIN)
    assert "s3cret" not in " ".join(command.argv)
    assert command.env == {"VLLM_API_KEY": "s3cret"}
    assert "s3cret" not in command.shell()
    assert command.shell().startswith("VLLM_API_KEY='****' vllm serve")
    assert "VLLM_API_KEY=s3cret" in command.shell(reveal_secrets=True)


def test_multi_node_ray_pipeline_parallel_on_all_interfaces():
    cfg = ServeConfig(model=MODEL, tensor_parallel_size=4, pipeline_parallel_size=2, ray=True,
                      host="0.0.0.0")
    argv = build_serve_command(cfg, PLAIN).argv
    assert flag(argv, "--pipeline-parallel-size") == "2"
    assert flag(argv, "--distributed-executor-backend") == "ray"
    assert flag(argv, "--host") == "0.0.0.0"
    assert cfg.base_url == "http://127.0.0.1:8000/v1"  # clients on this machine use loopback


def test_vllm_python_runs_the_cli_entry_point(tmp_path):
    # `python -m vllm.entrypoints.cli.main serve MODEL` is `vllm serve MODEL`; the old
    # `vllm.entrypoints.openai.api_server --model` module is deprecated.
    launcher = find_vllm(vllm_python=sys.executable)
    assert launcher.prefix == [sys.executable, "-m", "vllm.entrypoints.cli.main", "serve"]
    assert launcher.found is False  # this test environment has no vLLM
    argv = build_serve_command(ServeConfig(model=MODEL), launcher).argv
    assert argv[4] == MODEL and "--model" not in argv


def test_no_prefix_caching_is_said_explicitly(capsys):
    # vLLM enables prefix caching by default: leaving the flag out would not turn it off.
    argv = build_serve_command(ServeConfig(model=MODEL, prefix_caching=False), PLAIN).argv
    assert "--no-enable-prefix-caching" in argv and "--enable-prefix-caching" not in argv
    assert main(["serve", MODEL, "--no-prefix-caching", "--dry-run"]) == 0
    assert "--no-enable-prefix-caching" in capsys.readouterr().out.split()


@pytest.mark.parametrize("tp,ok", [(1, True), (2, True), (4, True), (7, True), (3, False),
                                   (8, False)])
def test_tensor_parallel_must_divide_the_attention_heads(capsys, tp, ok):
    code = main(["serve", MODEL, "--tp", str(tp), "--dry-run"])
    out, err = capsys.readouterr()
    if ok:
        assert code == 0 and f"--tensor-parallel-size {tp}" in out
    else:
        assert code == 2 and out == ""
        assert "28 attention heads" in err and "1, 2, 4, 7, 14, 28" in err
        assert "Traceback" not in err


def test_attention_heads_come_from_the_model_config(tiny_assessor_path):
    from preferthinker.serving import attention_heads, check_tensor_parallel

    config = json.loads((tiny_assessor_path / "config.json").read_text())
    heads = (config.get("text_config") or {}).get("num_attention_heads")
    heads = heads or config["num_attention_heads"]
    model = str(tiny_assessor_path)
    assert attention_heads(model) == heads
    assert check_tensor_parallel(ServeConfig(model=model, tensor_parallel_size=heads)) == heads
    from preferthinker.errors import InputError

    with pytest.raises(InputError, match=f"{heads} attention heads"):
        check_tensor_parallel(ServeConfig(model=model, tensor_parallel_size=heads + 1))
    assert attention_heads("/nowhere/unknown-model") is None


def test_vllm_executable_path(tmp_path):
    exe = tmp_path / "vllm"
    exe.write_text("#!/bin/sh\n")
    assert find_vllm(vllm=str(exe)).found is False  # not executable
    exe.chmod(0o755)
    launcher = find_vllm(vllm=str(exe))
    assert launcher.found and launcher.prefix == [str(exe), "serve"]


@pytest.mark.parametrize(
    "field,value",
    [("port", 0), ("tensor_parallel_size", 0), ("gpu_memory_utilization", 1.5), ("model", " ")],
)
def test_config_rejects_bad_values_by_name(field, value):
    kwargs = {"model": MODEL, field: value}
    with pytest.raises(ValueError, match=field):
        ServeConfig(**kwargs)


def test_cli_dry_run_prints_the_exact_command(capsys, tmp_path):
    exe = tmp_path / "vllm"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    code = main(["serve", MODEL, "--vllm", str(exe), "--tp", "2", "--port", "9001",
                 "--vllm-arg=--seed", "--vllm-arg=0", "--dry-run"])
    out, err = capsys.readouterr()
    assert code == 0
    line = out.strip()
    assert line.startswith(f"{exe} serve {MODEL} --host 127.0.0.1 --port 9001")
    assert "--limit-mm-per-prompt '{\"image\": 12}'" in line
    assert "--tensor-parallel-size 2" in line
    assert line.endswith("--seed 0")
    assert "--assessor http://127.0.0.1:9001/v1 --assessor-model " + MODEL in err


def test_cli_yaml_config_under_flags(capsys, tmp_path):
    config = tmp_path / "serve.yaml"
    config.write_text("port: 8100\ntensor_parallel_size: 2\nhost: 0.0.0.0\n")
    assert main(["serve", MODEL, "--config", str(config), "--port", "8200", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "--port 8200" in out and "--tensor-parallel-size 2" in out and "--host 0.0.0.0" in out


def test_cli_without_vllm_explains_how_to_install(capsys):
    code = main(["serve", MODEL, "--vllm-python", sys.executable])
    err = capsys.readouterr().err
    assert code == 2
    assert "pip install vllm" in err and "--vllm-python" in err
