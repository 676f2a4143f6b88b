"""tailtune.weighting"""
