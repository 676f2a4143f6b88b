"""Recipe validation messages: pydantic's errors turned into one :class:`~tailtune.errors.RecipeError`.

Each problem names the dotted field path, the bad value and the fix ("did you mean" for typos);
several problems are listed in one message.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterable, Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ValidationError

from tailtune.errors import RecipeError, did_you_mean
from tailtune.recipe.schema import Recipe

_FIX_BY_TYPE = {
    "missing": "add this field",
    "int_type": "use a whole number",
    "int_parsing": "use a whole number",
    "int_from_float": "use a whole number",
    "float_type": "use a number, e.g. 3.0e-5",
    "float_parsing": "use a number, e.g. 3.0e-5",
    "finite_number": "use a finite number",
    "bool_type": "use true or false",
    "bool_parsing": "use true or false",
    "string_type": "use a text value (quote it)",
    "dict_type": "use a mapping (key: value lines)",
    "model_type": "use a mapping (key: value lines)",
    "model_attributes_type": "use a mapping (key: value lines)",
    "list_type": "use a list, e.g. [a, b]",
}


def _unwrap_model(annotation: Any) -> Any:
    """The BaseModel (or dict value type) inside ``X | None`` / ``Annotated[X, ...]``."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _unwrap_model(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            if arg is not type(None):
                return _unwrap_model(arg)
    return annotation


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The pydantic model class validating the mapping at ``loc`` inside a Recipe."""
    current: Any = Recipe
    for part in loc:
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return None
            current = _unwrap_model(field.annotation)
        elif typing.get_origin(current) is dict:
            current = _unwrap_model(typing.get_args(current)[1])
        else:
            return None
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _dotted(loc: Iterable) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _clean_loc(loc: tuple) -> tuple:
    # pydantic adds the validator/union branch names (e.g. 'function-after[...]', 'float') to locs
    return tuple(p for p in loc if not (isinstance(p, str) and ("[" in p or p in ("float", "int", "str"))))


def _describe(err: dict) -> str:
    loc = _clean_loc(tuple(err.get("loc", ())))
    path = _dotted(loc)
    etype = err.get("type", "")
    value = err.get("input")
    msg = str(err.get("msg", "")).removeprefix("Value error, ")
    ctx = err.get("ctx") or {}
    if etype == "extra_forbidden":
        model = _model_at(loc[:-1])
        choices = sorted(model.model_fields) if model else []
        hint = did_you_mean(str(loc[-1]), choices) if choices else ""
        valid = f" valid keys here: {', '.join(choices)}" if choices else ""
        return f"{path}: unknown key{hint}. Fix: remove or rename it;{valid}"
    # a model-level check (value_error on a whole mapping) names the field in its message
    shown = "" if etype == "missing" or (etype == "value_error" and isinstance(value, Mapping)) else f" = {value!r}"
    if etype == "literal_error":
        expected = str(ctx.get("expected", ""))
        choices = [c.strip("'") for c in expected.replace(" or ", ", ").split(", ")]
        return f"{path}{shown}: not allowed{did_you_mean(str(value), choices)}. Fix: use one of {expected}"
    if etype in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        op = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}[etype]
        bound = next(iter(ctx.values()), "")
        return f"{path}{shown}: {msg}. Fix: use a value {op} {bound}"
    fix = _FIX_BY_TYPE.get(etype)
    return f"{path}{shown}: {msg}" + (f". Fix: {fix}" if fix else "")


def raise_validation(exc: ValidationError, source: str) -> typing.NoReturn:
    problems = [_describe(e) for e in exc.errors(include_url=False)]
    if len(problems) == 1:
        raise RecipeError(f"{source}: {problems[0]}") from None
    listed = "\n".join(f"  - {p}" for p in problems)
    raise RecipeError(f"{source}: {len(problems)} problems:\n{listed}") from None


