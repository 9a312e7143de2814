"""Training: acoustic model, vocoder, teacher encoder, and the distilled student encoder."""
