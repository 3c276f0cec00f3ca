"""Models: MF and its variants, truncated SVD, MMF and the mixture of tastes.

See :mod:`mmf_core.models.base` for the shared interface.
"""

from mmf_core.models.base import FactorModel  # noqa: F401
from mmf_core.models.mf import MF, NMF, BiasedMF, TruncatedSVD  # noqa: F401
from mmf_core.models.mmf import MMF, SHIFT_INITS, SHIFT_MODES  # noqa: F401
from mmf_core.models.tastes import MixtureOfTastes  # noqa: F401
