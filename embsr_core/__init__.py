"""EMBSR core library: data, store, models, training and inference. Never imports Qt."""

__version__ = "0.1.0"
