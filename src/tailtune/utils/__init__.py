"""Small helpers shared by every layer (no tailtune imports)."""
