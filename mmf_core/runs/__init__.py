"""The run store and the background runner.

>>> store = RunStore()                      # $MMF_STORE or the per-user folder
>>> handle = store.submit("complete", {...})  # returns at once; runs in a worker process
>>> store.events(handle.id, since=0)         # live curves
>>> store.wait(handle.id).status             # 'done'
>>> store.result(handle.id), store.arrays(handle.id)

One module per concern: :mod:`~mmf_core.runs.layout` (the folder layout on disk, run
ids, the store's root), :mod:`~mmf_core.runs.keys` (spec, key, run id),
:mod:`~mmf_core.runs.status` (the statuses and their transitions),
:mod:`~mmf_core.runs.queue` (device queues and slots), :mod:`~mmf_core.runs.process`
(worker processes), :mod:`~mmf_core.runs.store` (:class:`RunStore`, the one door),
:mod:`~mmf_core.runs.worker` (executes one run), :mod:`~mmf_core.runs.files` (atomic
writes, pickle-free reads, locks).
"""

from mmf_core.runs.keys import make_spec, run_id_of, spec_key  # noqa: F401
from mmf_core.runs.layout import default_store_root, is_run_id, resolve_store_root  # noqa: F401
from mmf_core.runs.status import (  # noqa: F401
    ACTIVE,
    CANCELLED,
    DONE,
    FAILED,
    FINISHED,
    INTERRUPTED,
    PRUNABLE,
    QUEUED,
    RUNNING,
    STATUSES,
)
from mmf_core.runs.store import RunHandle, RunInfo, RunStore  # noqa: F401
