"""simnet package."""
