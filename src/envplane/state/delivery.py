"""Delivery: releases, their rollouts into environments, what is live, promotions and the
decisions on them, and validation results.

The store records; it does not decide. Who may approve (four eyes), when a promotion is
approved and what a rollout does next are the delivery layer's: here a promotion takes one
decision per actor, and nothing more is enforced.
"""

from envplane.state.promotions import PROMOTION_ID, PromotionsMixin, check_promotion_id
from envplane.state.releases import RELEASE_ID, ReleasesMixin, check_release_id
from envplane.state.rollouts import ROLLOUT_ID, RolloutsMixin, check_rollout_id

__all__ = [
    "PROMOTION_ID",
    "RELEASE_ID",
    "ROLLOUT_ID",
    "DeliveryMixin",
    "check_promotion_id",
    "check_release_id",
    "check_rollout_id",
]


class DeliveryMixin(ReleasesMixin, RolloutsMixin, PromotionsMixin):
    """Everything the store knows of delivery, as the one mixin StateStore takes."""
