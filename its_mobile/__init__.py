"""its-mobile: train, compress, export and bundle a compact image-to-speech model for phones."""

__version__ = "0.1.0"
