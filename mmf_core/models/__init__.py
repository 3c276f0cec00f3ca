"""Models: MF and its variants, truncated SVD, MMF, the mixture of tastes and the implicit
scorers built from MF and MMF.

See :mod:`mmf_core.models.base` for the shared interface and
:func:`mmf_core.models.factory.build_model` for building any of them by name.
"""

from mmf_core.models.base import FactorModel  # noqa: F401
from mmf_core.models.mf import MF, NMF, BiasedMF, TruncatedSVD  # noqa: F401
from mmf_core.models.mmf import MMF, RUN_SHIFT_MODES, SHIFT_INITS, SHIFT_MODES  # noqa: F401
from mmf_core.models.tastes import MixtureOfTastes  # noqa: F401
from mmf_core.models.implicit import IMPLICIT_MODELS, ImplicitMF, ImplicitMMF  # noqa: F401
from mmf_core.models.factory import MODEL_NAMES, MODEL_TAGS, build_model, build_scorer  # noqa: F401
