"""tailtune.data"""
