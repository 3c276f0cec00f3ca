"""mmf_core: Masked Mixture Factorization and its baselines, as a library and a CLI.

The engine never imports Streamlit; the dashboard (``dashboard/``, ``pages/``) sits on top.
"""

__version__ = "0.1.0"

from mmf_core.errors import MMFError  # noqa: E402,F401
