"""Data: readers, id maps, splits, synthetic generators.

Public entry points: :func:`load_ratings` (any source -> :class:`Ratings`),
:func:`make_split` (-> :class:`Split`), :func:`summarize` (a dict for people),
:func:`preview_file` (a look at an uploaded file and a proposed column mapping),
:func:`download_movielens` (public archives into the local cache).

Every reader checks what a source declares it decodes to (file size, zip member sizes,
``.mat`` headers, Parquet metadata) against one cap before reading it:
:mod:`mmf_core.data.limits` (``max_bytes=``, ``$MMF_MAX_DATA_BYTES``, default 2 GB).
"""

from mmf_core.data.ratings import Ratings, Split  # noqa: F401
from mmf_core.data.readers import available_datasets, load_ratings, preview_file  # noqa: F401
from mmf_core.data.summary import summarize  # noqa: F401
from mmf_core.data.cache import cache_dir, download_movielens  # noqa: F401
from mmf_core.data.parsed_cache import load_ratings_cached  # noqa: F401
from mmf_core.data.splits import SPLIT_METHODS, make_split  # noqa: F401
