"""Benchmark evaluation of MiniGPT-v2: official scorers, eval data readers, sharded resumable runner."""
