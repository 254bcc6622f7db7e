"""Micro-behavior data: canonical events, importers, preprocessing, synthetic generator, batching."""
