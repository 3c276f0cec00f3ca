"""Data: readers, id maps, splits, synthetic generators."""

from mmf_core.data.ratings import Ratings, Split  # noqa: F401
