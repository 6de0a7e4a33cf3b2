"""Sharded `ptgen data build`: real launches of 2 processes (`accelerate launch`, `torchrun`, gloo
on CPU) give the dataset of a 1-process build; a launch killed with SIGKILL and launched again
gives it too; a failed or missing process is named at merge with the command to resume it; shards
of another config and a second launch on the same folder are one-line errors that change nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from generation.shards import LOCK_FILE, LaunchProcess, ShardError, assigned, relaunch_command
from preferthinker.errors import ConfigError
from training.data import DataConfig, build_dataset

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CONFIG = dict(
    seed=3,
    train_users=12,
    eval_users=1,
    eval_splits=["seen-SP", "unseen-MP"],
    refs=2,
    pairs=2,
    size=64,
)


def write_config(path: Path, out: Path, **overrides) -> Path:
    lines = [f"output_dir: {out}"] + [
        f"{k}: {json.dumps(v)}" for k, v in {**CONFIG, **overrides}.items()
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def content(root: Path) -> dict:
    """What must not depend on the number of processes: records, manifest entries, image bytes."""
    images = {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((root / "images").rglob("*.png"))
    }
    return {
        "files": {
            name: (root / name).read_text()
            for name in ("train.jsonl", "test.jsonl", "benchmark.jsonl")
        },
        "users": json.loads((root / "manifest.json").read_text())["users"],
        "images": images,
    }


def snapshot(root: Path) -> dict[str, tuple[int, str]]:
    return {
        str(p.relative_to(root)): (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def torchrun(*args: str) -> list[str]:
    return [str(BIN / "torchrun"), "--standalone", "--nproc_per_node", "2", "-m", "ptgen", *args]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The 1-process build of CONFIG."""
    out = tmp_path_factory.mktemp("one") / "data"
    report = build_dataset(DataConfig(output_dir=str(out), **CONFIG))
    assert report["merged"] and report["kept"] == 28 and report["generator"] == "procedural"
    return out


def test_assignment_is_by_index_and_covers_every_item_once():
    items = list(range(11))
    shares = [assigned(items, LaunchProcess(rank=r, world_size=3)) for r in range(3)]
    assert shares == [[0, 3, 6, 9], [1, 4, 7, 10], [2, 5, 8]]


def test_accelerate_launch_of_two_processes_equals_one_process(reference, tmp_path):
    out = tmp_path / "data"
    config = write_config(tmp_path / "data.yaml", out)
    # On a CPU-only machine `--multi_gpu` is what makes accelerate start several processes
    # (through torch's launcher, gloo); `--cpu` with --num_processes > 1 needs mpirun.
    command = [
        str(BIN / "accelerate"),
        "launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        str(free_port()),
        "-m",
        "ptgen",
        "data",
        "build",
        "--config",
        str(config),
    ]
    done = subprocess.run(command, env=env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "process 1/2: 7 users done" in done.stdout + done.stderr
    assert content(out) == content(reference)
    # Each process built its own share: users by index, two different processes.
    logs = {
        p.stem: [json.loads(line) for line in p.read_text().splitlines()]
        for p in (out / "shards").glob("*.jsonl")
    }
    assert sorted(logs) == ["00000-of-00002", "00001-of-00002"]
    users = list(json.loads((reference / "manifest.json").read_text())["users"])
    for rank, name in enumerate(sorted(logs)):
        assert [e["id"] for e in logs[name] if e["event"] == "item"] == users[rank::2]
    assert logs["00000-of-00002"][0]["pid"] != logs["00001-of-00002"][0]["pid"]
    assert not (out / LOCK_FILE).exists()  # released after the merge


def test_killed_launch_resumes_to_the_same_dataset(reference, tmp_path):
    out = tmp_path / "data"
    config = write_config(tmp_path / "data.yaml", out)
    command = torchrun("data", "build", "--config", str(config))
    launch = subprocess.Popen(
        command,
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    # torchrun starts each worker in its own session: kill the workers by the pids in their
    # journals, then the launcher, once a few users are recorded.
    deadline = time.monotonic() + 120
    starts: dict[str, int] = {}
    recorded = 0
    while (len(starts) < 2 or recorded < 2) and time.monotonic() < deadline:
        assert launch.poll() is None, "the launch ended before the kill"
        time.sleep(0.02)
        events = [
            json.loads(line)
            for p in out.glob("shards/*.jsonl")
            for line in p.read_text().splitlines()
            if line.endswith("}")
        ]
        starts = {e["rank"]: e["pid"] for e in events if e["event"] == "start"}
        recorded = sum(e["event"] == "item" for e in events)
    for pid in starts.values():
        os.kill(pid, signal.SIGKILL)
    os.killpg(launch.pid, signal.SIGKILL)
    launch.wait(timeout=30)
    from generation.shards import _alive

    deadline = time.monotonic() + 10  # SIGKILL is delivered asynchronously
    while any(_alive(pid) for pid in starts.values()) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(starts) == 2 and recorded >= 2, "the launch did not start both processes"
    users = len(json.loads((reference / "manifest.json").read_text())["users"])
    assert recorded < users and not (out / "train.jsonl").exists(), "finished before the kill"
    assert (out / LOCK_FILE).exists()  # left by the killed main process
    done = subprocess.run(command, env=env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert content(out) == content(reference)


def test_missing_process_is_named_with_the_resume_command_and_merge_waits(reference, tmp_path):
    config = DataConfig(output_dir=str(tmp_path / "data"), **CONFIG)
    main = LaunchProcess(rank=0, world_size=2, launch_id="test-launch")
    with pytest.raises(ShardError) as raised:
        build_dataset(config, process=main, merge_timeout_s=0.5, resume_command="RESUME-ME")
    message = str(raised.value)
    assert "\n" not in message
    assert "14 of 14 items unfinished" not in message and "7 of 14 items unfinished" in message
    assert "process 1 (shard 00001-of-00002) never started (no journal)" in message
    assert message.endswith("resume with: RESUME-ME")
    assert not (tmp_path / "data" / "train.jsonl").exists()
    # The missing process runs; then the main process merges what both wrote.
    report = build_dataset(
        config, process=LaunchProcess(rank=1, world_size=2, launch_id="test-launch")
    )
    assert report == {
        "merged": False,
        "rank": 1,
        "world_size": 2,
        "users": 7,
        "resumed_users": 0,
        "output_dir": str(tmp_path / "data"),
        "generator": "procedural",
    }
    report = build_dataset(config, process=main, merge_timeout_s=0.5)
    assert report["merged"] and report["resumed_users"] == 7  # the main process's own users
    assert content(tmp_path / "data") == content(reference)


def test_failed_process_is_reported_by_the_cli_in_one_line(tmp_path, monkeypatch, capsys):
    from ptgen.cli.main import main
    from synthpref.renderer import ProceduralGenerator, ProceduralRenderer

    out = tmp_path / "data"
    config_file = write_config(tmp_path / "data.yaml", out)
    launch = {
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": "4242",
        "TORCHELASTIC_RUN_ID": "t1",
        "WORLD_SIZE": "2",
    }

    class Breaks(ProceduralRenderer):
        """Fails on the 10th image, in the second user (stands in for a GPU out of memory)."""

        calls = 0

        def render(self, *args, **kwargs):
            Breaks.calls += 1
            if Breaks.calls == 10:
                raise RuntimeError("CUDA error: out of memory")
            return super().render(*args, **kwargs)

    for key, value in {**launch, "RANK": "0"}.items():
        monkeypatch.setenv(key, value)
    # Process 1 starts once process 0 holds the lock: hold it as process 0 would, then run 1.
    from generation.shards import acquire_lock, current_process

    out.mkdir()
    (out / "manifest.json").write_text(
        json.dumps(
            {
                "fingerprint": DataConfig(output_dir=str(out), **CONFIG).fingerprint(),
                "config": {},
                "users": {},
            }
        )
    )
    acquire_lock(out, current_process())
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    with pytest.raises(RuntimeError):
        build_dataset(
            DataConfig(output_dir=str(out), **CONFIG),
            generator=ProceduralGenerator(renderer=Breaks(size=64)),
        )
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setattr(
        sys,
        "argv",
        [str(ROOT / "ptgen" / "__main__.py"), "data", "build", "--config", str(config_file)],
    )
    code = main(["data", "build", "--config", str(config_file)])
    lines = capsys.readouterr().err.strip().splitlines()  # the progress bar, then the error
    err = lines[-1]
    assert code == 5, lines
    assert (
        err.startswith("error: cannot merge")
        and sum(line.startswith("error") for line in lines) == 1
    )
    assert "process 1 (shard 00001-of-00002) failed (host" in err
    assert "RuntimeError: CUDA error: out of memory" in err
    assert err.endswith(
        f"resume with: torchrun --nproc_per_node 2 -m ptgen data build --config {config_file}"
    )
    assert not (out / "train.jsonl").exists()


def test_relaunch_command_names_the_launcher(monkeypatch):
    argv = ["/x/ptgen/__main__.py", "data", "build", "--config", "my data.yaml"]
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert (
        relaunch_command(LaunchProcess(), argv)
        == "python -m ptgen data build --config 'my data.yaml'"
    )
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "no")
    assert relaunch_command(LaunchProcess(rank=3, world_size=8), argv).startswith(
        "accelerate launch --multi_gpu --num_processes 8 -m ptgen data build"
    )


def test_shards_of_another_config_are_refused_and_nothing_changes(reference, tmp_path):
    out = tmp_path / "data"
    build_dataset(DataConfig(output_dir=str(out), **CONFIG))
    # A journal of another config (seed 4) copied in, as from a mixed-up launch.
    other = tmp_path / "other"
    with pytest.raises(ShardError):
        build_dataset(
            DataConfig(output_dir=str(other), **{**CONFIG, "seed": 4}),
            process=LaunchProcess(rank=0, world_size=2, launch_id="x"),
            merge_timeout_s=0.1,
        )
    stray = out / "shards" / "00000-of-00003.jsonl"
    stray.write_bytes((other / "shards" / "00000-of-00002.jsonl").read_bytes())
    before = snapshot(out)
    with pytest.raises(ConfigError, match=r"00000-of-00003.jsonl is a shard of another config"):
        build_dataset(DataConfig(output_dir=str(out), **CONFIG))
    # The interrupted build of seed 4 refuses this config as a whole.
    other_before = snapshot(other)
    with pytest.raises(ConfigError, match="another config"):
        build_dataset(DataConfig(output_dir=str(other), **CONFIG))
    assert snapshot(out) == before and snapshot(other) == other_before


def test_second_launch_on_the_same_folder_is_refused(reference, tmp_path):
    out = tmp_path / "data"
    config = write_config(tmp_path / "data.yaml", out, size=256, train_users=16)
    command = [sys.executable, "-m", "ptgen", "data", "build", "--config", str(config)]
    first = subprocess.Popen(
        command, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 120
    while not list(out.glob("shards/*.jsonl")):
        assert time.monotonic() < deadline and first.poll() is None, "the first build did not start"
        time.sleep(0.05)
    before = (out / "manifest.json").read_bytes()
    second = subprocess.run(command, env=env(), capture_output=True, text=True, timeout=120)
    still_running = first.poll() is None
    assert second.returncode == 2, second.stderr
    lines = [line for line in second.stderr.strip().splitlines() if line.startswith("error")]
    assert len(lines) == 1 and "is being written by another launch (host" in lines[0]
    assert lines[0].endswith(f"delete {out / LOCK_FILE} if no build is running")
    assert still_running, "the first build ended before the second launch was refused"
    assert (out / "manifest.json").read_bytes() == before
    assert first.wait(timeout=300) == 0, first.stderr.read()[-3000:]
    assert len(json.loads((out / "manifest.json").read_text())["users"]) == 18


def test_journal_line_torn_by_a_kill_is_skipped(tmp_path):
    from generation.shards import ShardJournal, finished_items

    journal = ShardJournal(tmp_path, LaunchProcess(rank=1, world_size=2, launch_id="x"), "f1")
    journal.start(3)
    journal.item("user-a", {"kept": ["user-a-00"]})
    with open(journal.path, "a") as file:
        file.write('{"event": "item", "id": "user-b", "rec')  # the process died mid-write
    assert finished_items(tmp_path, "f1") == {"user-a": {"kept": ["user-a-00"]}}
    with pytest.raises(ConfigError, match="00001-of-00002.jsonl is a shard of another config"):
        finished_items(tmp_path, "f2")


def test_a_killed_but_unreaped_lock_holder_counts_as_dead():
    # A SIGKILLed process stays a zombie until its parent reaps it (in a container whose PID 1
    # does not reap, forever): its lock must not block a resume.
    from generation.shards import _alive

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert _alive(child.pid)
        os.kill(child.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while "Z" not in Path(f"/proc/{child.pid}/stat").read_text().split()[2]:
            assert time.monotonic() < deadline, "the child did not become a zombie"
            time.sleep(0.01)
        assert not _alive(child.pid)
    finally:
        child.kill()
        child.wait()
    assert not _alive(child.pid)


@pytest.mark.parametrize("text", ["{bad", "[1]", "\udcff"])
def test_a_damaged_manifest_is_one_error_and_is_kept(tmp_path, text):
    from preferthinker.errors import OutputExistsError

    out = tmp_path / "data"
    out.mkdir()
    (out / "manifest.json").write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(OutputExistsError, match="manifest.json is damaged"):
        build_dataset(DataConfig(output_dir=str(out), **CONFIG))
    assert (out / "manifest.json").read_bytes() == text.encode("utf-8", "surrogateescape")
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json"]
