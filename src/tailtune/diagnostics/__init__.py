"""tailtune.diagnostics"""
