"""Offline training data: lexicon, espeak-ng speech targets, word-image renders."""
