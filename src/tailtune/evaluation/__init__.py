"""tailtune.evaluation"""
