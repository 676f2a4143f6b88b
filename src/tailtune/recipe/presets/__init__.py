"""Packaged preset recipes (YAML), loaded by ``tailtune.training.recipe.load_preset(name)``.

A preset is a partial recipe: the loss, weighting and model settings of one remedy. The data, and
usually the task, come from the command line (``tailtune train --preset focal --set data.path=DIR``) or from
screening. ``demo.yaml`` is the embedded demo's recipe.
"""
