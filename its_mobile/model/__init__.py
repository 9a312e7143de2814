"""The image-to-speech network: encoder -> phonemes -> acoustic model -> vocoder -> waveform."""
