"""Every fixed number of the model's input and output, in one place, with its derivation.

Apps, exports and the data generator read these (through the model manifest), never copies.
"""

# Image: grayscale, resized (not letter-boxed) to this size, as ViTSTR does.
IMG_H = 32
IMG_W = 128
# Pixel p in [0, 255] becomes (p / 255 - PIXEL_MEAN) / PIXEL_STD.
PIXEL_MEAN = 0.5
PIXEL_STD = 0.5

# Audio: espeak-ng speaks at 22050 Hz; we resample to 16 kHz, the rate phone ASR and most
# speech tooling expect, which also keeps the vocoder's work 27% smaller.
ESPEAK_RATE = 22050
SAMPLE_RATE = 16000
N_FFT = 1024  # 64 ms analysis window for the mel targets
HOP = 256  # 16 ms per mel frame
N_MELS = 64
MEL_FMIN = 0.0
MEL_FMAX = 8000.0  # Nyquist at 16 kHz
LOG_MEL_FLOOR = 1e-5  # log(1e-5) = -11.5 is silence

# Static shapes for export: the longest word we speak and read.
MAX_FRAMES = 64  # 64 x 16 ms = 1.024 s: espeak-ng says 99.96% of lexicon words in less
MAX_SAMPLES = MAX_FRAMES * HOP  # 16,384 samples
MAX_PHONES = 20  # phoneme slots incl. the end marker; lexicon words have at most 16 phonemes
MAX_WORD_LEN = 14  # letters; longer lexicon words are rare (0.5%) and do not fit 128 px

# The vocoder's inverse STFT runs at twice the mel frame rate with a 4x overlap.
VOC_N_FFT = 512
VOC_HOP = 128
VOC_SUBFRAMES = HOP // VOC_HOP  # 2 vocoder frames per mel frame

# Phoneme vocabulary specials; real phonemes start at N_SPECIAL.
PAD = 0
BLANK = PAD  # the encoder's CTC blank shares PAD's id: neither is ever a phoneme
EOS = 1
N_SPECIAL = 2

VOICE = "en-us"
