"""tailtune.reports"""
