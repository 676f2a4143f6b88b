"""Thin Typer commands: parse, call the library, print. No logic lives here."""
