"""generation: prompt rewriting, the diffusers generator, reranking and the personalized loop."""
