"""tailtune.metrics"""
