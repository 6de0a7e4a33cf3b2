"""generation: prompt rewriting, the diffusers generator, reranking, the personalized loop and the `ptgen` CLI."""
