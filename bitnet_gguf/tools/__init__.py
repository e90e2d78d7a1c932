"""Developer tools: benchmarks, the transformers perplexity reference, and training our tiny-shakespeare model."""
