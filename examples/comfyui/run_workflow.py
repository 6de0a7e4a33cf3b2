"""Queue an API-format workflow on a running ComfyUI and wait for its outputs.

    python examples/comfyui/run_workflow.py rerank_folder_api.json \
        --server http://127.0.0.1:8188 --set 1.assessor=http://127.0.0.1:8000/v1 \
        --set 5.folder=/data/candidates

`--set NODE.INPUT=VALUE` changes a widget value (numbers are parsed as JSON when they can be).
Prints the prompt id, the seconds it took, and each output node's result (images and texts).
Uses only the standard library.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any


def _request(url: str, data: Any = None, timeout: float = 30) -> Any:
    body = json.dumps(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.load(response)


def apply_overrides(workflow: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Set `NODE.INPUT=VALUE` widget values in an API-format workflow."""
    for item in overrides:
        target, _, raw = item.partition("=")
        node_id, _, name = target.partition(".")
        if node_id not in workflow or not name:
            raise SystemExit(f"--set {item}: no node {node_id!r} (nodes: {', '.join(workflow)})")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        workflow[node_id]["inputs"][name] = value
    return workflow


def run(workflow: dict[str, Any], server: str, timeout: float = 1800) -> dict[str, Any]:
    """POST the workflow to `server`/prompt and poll /history until it finishes; returns the
    entry."""
    queued = _request(f"{server}/prompt", {"prompt": workflow, "client_id": uuid.uuid4().hex})
    prompt_id = queued["prompt_id"]
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        history = _request(f"{server}/history/{prompt_id}")
        if (
            prompt_id in history
            and history[prompt_id].get("status", {}).get("completed") is not None
        ):
            entry = history[prompt_id]
            entry["prompt_id"] = prompt_id
            entry["seconds"] = round(time.monotonic() - start, 1)
            return entry
        time.sleep(1)
    raise SystemExit(f"prompt {prompt_id} did not finish in {timeout:.0f}s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workflow", type=Path)
    parser.add_argument("--server", default="http://127.0.0.1:8188")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args(argv)
    workflow = apply_overrides(json.loads(args.workflow.read_text()), args.overrides)
    try:
        entry = run(workflow, args.server.rstrip("/"), args.timeout)
    except urllib.error.HTTPError as error:  # ComfyUI explains validation failures in the body
        print(
            f"ComfyUI refused the workflow ({error.code}): {error.read().decode()[:2000]}",
            file=sys.stderr,
        )
        return 1
    status = entry.get("status", {})
    print(
        json.dumps(
            {
                "prompt_id": entry["prompt_id"],
                "seconds": entry["seconds"],
                "status": status.get("status_str"),
                "outputs": entry.get("outputs", {}),
            },
            indent=2,
        )
    )
    return 0 if status.get("completed") else 1


if __name__ == "__main__":
    sys.exit(main())
