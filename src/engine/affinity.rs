//! GAMF affinity between two networks' graphs (stub).
