"""The classifier and tokenizer a run trains, with the recipe's speed levers applied."""

from __future__ import annotations

from tailtune.errors import RecipeError
from tailtune.models import build_classifier
from tailtune.models.classifier import load_tokenizer
from tailtune.recipe import Recipe

__all__ = ["COMPILE_BACKEND", "build_model", "compile_forward"]

#: torch.compile backend for ``train.compile`` (tests switch it to "eager": same tracing, no codegen)
COMPILE_BACKEND = "inductor"


def compile_forward(classifier) -> None:
    """``train.compile``: compile the classifier's forward in place with ``torch.compile``.

    ``dynamic=True`` traces sequence length and batch size as symbols, so the variable-length
    batches of dynamic padding reuse one graph instead of recompiling per shape. ``nn.Module.compile``
    keeps the parameter names (``state_dict`` unchanged), so checkpoints, ``model/`` and resume are
    the same as without it. The first steps pay the compilation (tens of seconds on a GPU).
    """
    classifier.compile(dynamic=True, backend=COMPILE_BACKEND)


def build_model(recipe: Recipe, task):
    """``(classifier, tokenizer)`` for ``task`` as ``recipe.model`` says; ``train.length_chunks`` and
    ``train.compile`` applied. The caller seeds the random number generators first.

    Raises:
        RecipeError: ``length_chunks`` with a tokenizer that pads on the left.
    """
    classifier = build_classifier(recipe.model, task)
    tokenizer = load_tokenizer(recipe.model)
    chunks = recipe.train.length_chunks
    if chunks > 1:
        if getattr(tokenizer, "padding_side", "right") != "right":
            raise RecipeError(
                f"train.length_chunks needs a tokenizer that pads on the right; {recipe.model.name}'s pads on the "
                f"{tokenizer.padding_side}. Fix: set train.length_chunks: 1"
            )
        classifier.length_chunks = int(chunks)
    if recipe.train.compile:
        compile_forward(classifier)
    return classifier, tokenizer
