"""The learning study's pieces (see benchmarks/learning_study.py and docs/results.md).

- `compact`: the compact predict-then-assess text the small model learns (parser-compatible);
- `tokenizer`: the small BPE trained offline on the vocabulary and that text;
- `model`: the small random-weight Qwen2.5-VL and its processor;
- `data`: the SynthPref evaluation set and the compact-CoT training set from one seed.
"""
