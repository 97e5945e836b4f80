//! Apply permutations and interpolate weights (stub).
