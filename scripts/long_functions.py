"""List the functions in ``src`` longer than a limit (default 100 lines): the brief's "no function over
about 100 lines". A check to run by hand, not part of CI.

    .venv/bin/python scripts/long_functions.py [--limit 100] [--fail] [paths ...]

Lines are counted from the ``def`` (decorators excluded) to the function's last line, docstring and
comments included; nested functions are listed on their own and also count inside their parent.
``--fail`` exits 1 when one is found.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path


def long_functions(paths: list[Path], limit: int) -> list[tuple[int, str, int, str]]:
    """``(lines, file, first line, qualified name)`` of every function longer than ``limit``, longest first."""
    found = []
    for path in paths:
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for file in files:
            tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(file))
            found += _walk(tree, file, limit, prefix="")
    return sorted(found, key=lambda row: (-row[0], row[1], row[2]))


def _walk(node: ast.AST, file: Path, limit: int, prefix: str) -> list[tuple[int, str, int, str]]:
    out = []
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            name = f"{prefix}{child.name}"
            if not isinstance(child, ast.ClassDef):
                length = child.end_lineno - child.lineno + 1
                if length > limit:
                    out.append((length, str(file), child.lineno, name))
            out += _walk(child, file, limit, prefix=f"{name}.")
        else:
            out += _walk(child, file, limit, prefix)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", type=Path, default=[Path("src")])
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--fail", action="store_true", help="exit 1 when a function is over the limit")
    args = parser.parse_args(argv)
    rows = long_functions(args.paths, args.limit)
    for length, file, line, name in rows:
        print(f"{length:5d}  {file}:{line}  {name}")
    print(f"{len(rows)} function(s) over {args.limit} lines")
    return 1 if rows and args.fail else 0


if __name__ == "__main__":
    sys.exit(main())
