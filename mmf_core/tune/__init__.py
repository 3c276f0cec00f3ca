"""Tuning: an Optuna study over the ``complete`` experiment's settings, its trials runs of
the store, run here, in joblib processes or on a Dask cluster (issue 13).

:mod:`~mmf_core.tune.space`   the search space, from the experiment's declared spec
:mod:`~mmf_core.tune.study`   a study's folder in the store, its Optuna journal, listing
:mod:`~mmf_core.tune.trial`   what a worker runs: one trial, or one plain run
:mod:`~mmf_core.tune.runner`  the driver: ask, run, tell; the test run and the defaults

Optuna and Dask are imported only here (and only when a study runs).
"""
