"""The run store and the background runner.

>>> store = RunStore()                      # $MMF_STORE or the per-user folder
>>> handle = store.submit("complete", {...})  # returns at once; runs in a worker process
>>> store.events(handle.id, since=0)         # live curves
>>> store.wait(handle.id).status             # 'done'
>>> store.result(handle.id), store.arrays(handle.id)

See :mod:`mmf_core.runs.store` for the layout on disk and the guarantees.
"""

from mmf_core.runs.store import (  # noqa: F401
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
    RunHandle,
    RunInfo,
    RunStore,
    default_store_root,
    make_spec,
    resolve_store_root,
    run_id_of,
    spec_key,
)
