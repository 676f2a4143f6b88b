"""tailtune.experiments"""
