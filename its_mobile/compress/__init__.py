"""1.58-bit compression: ternary weights (BitNet b1.58), weight indexing (5 per byte) and
nested all-in-one tiers that share one set of weights."""
