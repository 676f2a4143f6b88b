"""tailtune.models"""
