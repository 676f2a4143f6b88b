"""tailtune.losses"""
