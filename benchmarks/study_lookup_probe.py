"""Probe: can the learning study's language model learn the score lookup from the target text alone?

In the described compact CoT (`training.study.compact`) every score is a function of tokens
already written on its line ("Orange / Pink; Pink vs Orange; Image A(0); Image B(5)": 5 when the
candidate's term is a liked one, 0 when disliked). This trains the study's random-weight model on
the training targets only (no images, so no vision to learn) and reports, every `--every` steps,
how the score tokens are predicted (teacher-forced, on the batch). It separates "the lookup is slow
to learn" from "the images get in the way", and compares learning rates and score weights cheaply.

With `--teacher-forced`, the first argument is a trained model (e.g. seed<N>/sft/final) instead:
nothing is trained; the score tokens of the first `--samples` training samples, images included,
are predicted teacher-forced and counted the same way. It tells "the model did not learn the
lookup" from "it learned it but its own profile or terms lead it astray at generation", and
(`unhinted_auc`) whether the model reads the candidates at all: a score with no "0" before it is
decided by the images alone.

Run (on a study run's folders; the figures are in docs/results.md):
    python benchmarks/study_lookup_probe.py runs/learning-study/seed0/untrained \\
        runs/learning-study/seed0/data/train --lr 1e-3 --score-weight 5
    python benchmarks/study_lookup_probe.py --teacher-forced runs/learning-study/seed1/sft/final \\
        runs/learning-study/seed1/data/train
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Optional, Sequence

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO))


def probe(
    model_dir: Path,
    train_dir: Path,
    steps: int,
    lr: float,
    score_weight: float,
    batch_size: int,
    every: int,
    seed: int,
) -> list[dict[str, Any]]:
    """Train on the target texts; returns one record per report: step, loss, and counts of
    (true score, predicted token) at the score positions of that step's batch."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from training.sft import score_token_ids, score_token_weights

    torch.manual_seed(seed)
    rng = random.Random(seed)
    tokenizer = AutoProcessor.from_pretrained(model_dir).tokenizer
    model = AutoModelForImageTextToText.from_pretrained(model_dir)
    lines = (train_dir / "train.jsonl").read_text(encoding="utf-8").splitlines()
    targets = [
        tokenizer(json.loads(line)["messages"][-1]["content"][0]["text"])["input_ids"]
        for line in lines
        if line
    ]
    ids = score_token_ids(tokenizer)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    pad = tokenizer.pad_token_id or 0
    reports = []
    for step in range(steps + 1):
        rows = rng.sample(targets, batch_size)
        width = max(map(len, rows))
        tokens = torch.tensor([r + [pad] * (width - len(r)) for r in rows])
        mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
        labels = tokens[:, 1:].masked_fill(mask[:, 1:] == 0, -100)
        logits = model(input_ids=tokens, attention_mask=mask).logits[:, :-1]
        valid = labels != -100
        token_loss = torch.nn.functional.cross_entropy(
            logits.transpose(1, 2), labels.clamp(min=0), reduction="none"
        )
        weights = score_token_weights(labels, *ids, score_weight) * valid
        loss = (token_loss * weights).sum() / weights.sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % every == 0:
            counts = _count(tokenizer, ids, labels, logits.argmax(-1))
            reports.append(
                {"step": step, "loss": round(loss.item(), 3), "score_predictions": counts}
            )
            print(json.dumps(reports[-1]), flush=True)
    return reports


def _count(tokenizer: Any, ids: tuple, labels: Any, predicted: Any) -> dict[str, int]:
    """Counts of "true score->predicted token" at the score positions of next-token `labels`
    (`ids`: `training.sft.score_token_ids(tokenizer)`, computed once by the caller)."""
    from training.sft import score_positions

    at_scores = score_positions(labels, *ids)
    pairs = Counter(zip(labels[at_scores].tolist(), predicted[at_scores].tolist()))
    return {
        f"{tokenizer.decode([t])}->{tokenizer.decode([p]).strip()}": n
        for (t, p), n in sorted(pairs.items())
    }


def auc(positives: Sequence[float], negatives: Sequence[float]) -> Optional[float]:
    """Probability that a random positive scores above a random negative (ties count half).

    Example:
        >>> auc([2.0, 3.0], [1.0, 2.0])
        0.875
    """
    if not positives or not negatives:
        return None
    wins = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    return wins / (len(positives) * len(negatives))


def teacher_forced(
    model_dir: Path, train_dir: Path, samples: int, batch_size: int
) -> dict[str, Any]:
    """Score-token predictions of a trained study model on its first `samples` training samples,
    with their images, through the collator TRL's SFTTrainer uses for vision-language data.

    Returns `score_predictions` (counts as `_count`) and how well the margin log p("0") - log p("5")
    separates the true 0s from the true 5s (AUC, 0.5 = no signal), apart for `unhinted_auc`: the
    scores with no "0" before them in the target, which only the images and the profile can
    decide, and `hinted_auc`: the scores after a "0", where what is already written carries most
    of the answer (a candidate with a 0 is the rejected one, so the other scores 5 throughout).
    """
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor
    from trl.trainer.sft_trainer import DataCollatorForVisionLanguageModeling

    from training.dataset import load_training_split
    from training.sft import score_positions, score_token_ids

    processor = AutoProcessor.from_pretrained(model_dir)
    model = AutoModelForImageTextToText.from_pretrained(model_dir).eval()
    rows = load_training_split(train_dir, "train", mode="sft", max_samples=samples)
    collate = DataCollatorForVisionLanguageModeling(processor, completion_only_loss=True)
    ids = score_token_ids(processor.tokenizer)
    zero, five = (processor.tokenizer.convert_tokens_to_ids(d) for d in ("0", "5"))
    totals: Counter = Counter()
    margins: dict[str, dict[bool, list[float]]] = {
        "unhinted": {True: [], False: []},
        "hinted": {True: [], False: []},
    }
    for start in range(0, len(rows), batch_size):
        batch = collate([rows[i] for i in range(start, min(start + batch_size, len(rows)))])
        with torch.no_grad():
            logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits[:, :-1]
        labels = batch["labels"][:, 1:]
        totals.update(_count(processor.tokenizer, ids, labels, logits.argmax(-1)))
        at_scores = score_positions(labels, *ids)
        log_probs = logits.log_softmax(-1)
        margin = (log_probs[..., zero] - log_probs[..., five])[at_scores]
        zeros = at_scores & (labels == zero)
        hinted = (zeros.long().cumsum(-1) - zeros.long())[
            at_scores
        ] > 0  # a "0" earlier in the target
        for value, target, after_zero in zip(
            margin.tolist(), labels[at_scores].tolist(), hinted.tolist()
        ):
            if target in (zero, five):
                margins["hinted" if after_zero else "unhinted"][target == zero].append(value)
    return {
        "score_predictions": dict(sorted(totals.items())),
        **{f"{kind}_auc": auc(m[True], m[False]) for kind, m in margins.items()},
    }


def main(argv: Optional[Sequence[str]] = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "model_dir",
        type=Path,
        help=(
            "a study run's random-weight model (seed<N>/untrained); "
            "with --teacher-forced a trained one"
        ),
    )
    parser.add_argument("train_dir", type=Path, help="its training set (seed<N>/data/train)")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--score-weight", type=float, default=5.0)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--teacher-forced",
        action="store_true",
        help=(
            "count a trained model's teacher-forced score predictions, images included; no training"
        ),
    )
    parser.add_argument(
        "--samples", type=int, default=64, help="training samples for --teacher-forced"
    )
    parser.add_argument("--out", type=Path, help="also write the reports here as JSON")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    if args.teacher_forced:
        report = teacher_forced(args.model_dir, args.train_dir, args.samples, batch_size=8)
        print(
            json.dumps({"teacher_forced": str(args.model_dir), "samples": args.samples, **report})
        )
        return [report]
    reports = probe(
        args.model_dir,
        args.train_dir,
        args.steps,
        args.lr,
        args.score_weight,
        args.batch_size,
        args.every,
        args.seed,
    )
    if args.out:
        args.out.write_text(
            json.dumps(
                {"args": {k: str(v) for k, v in vars(args).items()}, "reports": reports}, indent=1
            ),
            encoding="utf-8",
        )
    return reports


if __name__ == "__main__":
    main()
