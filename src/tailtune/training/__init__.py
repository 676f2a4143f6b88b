"""tailtune.training"""
