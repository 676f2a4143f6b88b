"""The class-weighting schemes and the weighting defaults, in one torch-free place.

The recipe schema (``tailtune.recipe.schema``) and the weighting functions
(:func:`~tailtune.weighting.class_weights`, :func:`~tailtune.weighting.pos_weight`,
:func:`~tailtune.weighting.length_weights`) read their defaults from here, so each default is
written once.
"""

from __future__ import annotations

#: class-weight schemes (``weighting.scheme``); ``uniform`` means no class weights
SCHEMES: tuple[str, ...] = ("uniform", "inverse", "sqrt_inverse", "effective_number")
#: ``effective_number``'s beta (Cui et al. 2019): at most ``1 / (1 - beta) = 1000`` effective samples
DEFAULT_BETA = 0.999
#: the smallest per-example length weight (``sample_weighting.min_weight``)
DEFAULT_MIN_WEIGHT = 0.1
