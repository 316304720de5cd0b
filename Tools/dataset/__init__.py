"""soundloc data-set builder: MUSIC-Synthetic-style scenes from instrument
pictures and sounds shipped in Debian and PyPI packages (see README.md)."""

BUILDER_VERSION = "1.2.0"

# MUSIC class order (SPEC section 2); category_id = index into this list.
CLASSES = [
    "accordion", "acoustic_guitar", "cello", "clarinet", "erhu", "flute",
    "saxophone", "trumpet", "tuba", "violin", "xylophone",
]

SAMPLE_RATE = 16000
CLIP_SAMPLES = 16000
IMAGE_SIZE = 224
SPLITS = ("train", "val", "test")
