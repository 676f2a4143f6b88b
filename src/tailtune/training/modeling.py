"""The classifier and tokenizer a run trains, with the recipe's model-side speed lever
(``train.length_chunks``) applied. ``train.compile`` is installed by the trainer
(``TailtuneTrainer(speed=...)``, :mod:`tailtune.training.compiled`), not here."""

from __future__ import annotations

from tailtune.errors import RecipeError
from tailtune.models import build_classifier
from tailtune.models.classifier import load_tokenizer
from tailtune.recipe import Recipe

__all__ = ["build_model"]


def build_model(recipe: Recipe, task):
    """``(classifier, tokenizer)`` for ``task`` as ``recipe.model`` says; ``train.length_chunks``
    applied. The caller seeds the random number generators first.

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
    return classifier, tokenizer
