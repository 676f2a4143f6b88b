"""tailtune.losses: functional losses + thin nn.Module wrappers, a registry, composition.

Every loss follows one reduction contract (see :mod:`tailtune.losses._base`):
``"none"`` -> ``(N,)``, ``"mean"`` divides by the summed weight of the counted targets exactly as
``F.cross_entropy`` does, ``"sum"``; anything else raises ``ValueError``.
"""

from tailtune.losses._base import REDUCTIONS, LossModule
from tailtune.losses.asymmetric import AsymmetricLoss, asymmetric_loss
from tailtune.losses.composite import CompositeLoss
from tailtune.losses.contrastive import SupConLoss, positive_weights, supervised_contrastive_loss
from tailtune.losses.cross_entropy import (
    BinaryCrossEntropyLoss,
    CrossEntropyLoss,
    binary_cross_entropy,
    cross_entropy,
)
from tailtune.losses.dice import SoftDiceLoss, TverskyLoss, soft_dice_loss, tversky_loss
from tailtune.losses.distribution_balanced import DistributionBalancedLoss, distribution_balanced_loss
from tailtune.losses.focal import (
    GammaSchedule,
    SigmoidFocalLoss,
    SoftmaxFocalLoss,
    sigmoid_focal_loss,
    softmax_focal_loss,
)
from tailtune.losses.hierarchy import HierarchyPenalty, hierarchy_penalty, parent_index
from tailtune.losses.ldam import LDAMLoss, ldam_loss, ldam_margins
from tailtune.losses.logit_adjust import LogitAdjustedLoss, logit_adjusted_cross_entropy
from tailtune.losses.registry import available, get, register, resolve
from tailtune.losses.weighted import SentimentFocalLoss, WeightedLoss

__all__ = [
    "REDUCTIONS",
    "AsymmetricLoss",
    "BinaryCrossEntropyLoss",
    "CompositeLoss",
    "CrossEntropyLoss",
    "DistributionBalancedLoss",
    "GammaSchedule",
    "HierarchyPenalty",
    "LDAMLoss",
    "LogitAdjustedLoss",
    "LossModule",
    "SentimentFocalLoss",
    "SigmoidFocalLoss",
    "SoftDiceLoss",
    "SoftmaxFocalLoss",
    "SupConLoss",
    "TverskyLoss",
    "WeightedLoss",
    "asymmetric_loss",
    "available",
    "binary_cross_entropy",
    "cross_entropy",
    "distribution_balanced_loss",
    "get",
    "hierarchy_penalty",
    "ldam_loss",
    "ldam_margins",
    "logit_adjusted_cross_entropy",
    "parent_index",
    "positive_weights",
    "register",
    "resolve",
    "sigmoid_focal_loss",
    "soft_dice_loss",
    "softmax_focal_loss",
    "supervised_contrastive_loss",
    "tversky_loss",
]
