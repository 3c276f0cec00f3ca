"""A study's figures: Optuna's own plotly figures (optimization history, per-epoch
validation RMSE of each trial, parallel coordinates, parameter importance), for the CLI's
users and the dashboard's Tune page."""

from __future__ import annotations

import warnings

from mmf_core.runs import RunStore
from mmf_core.tune.study import load, read_config, study_dir

#: figure name -> (Optuna plot function, completed trials it needs)
FIGURES = {
    "history": ("plot_optimization_history", 1),
    "epochs": ("plot_intermediate_values", 1),
    "parallel": ("plot_parallel_coordinate", 2),
    "importance": ("plot_param_importances", 3),
}


def figures(store_root, name: str, which=tuple(FIGURES)) -> dict:
    """``{figure name: plotly Figure or a one-line reason it cannot be drawn yet}`` of study ``name``."""
    import optuna
    from optuna.trial import TrialState

    path = study_dir(RunStore(store_root).root, name)
    study = load(path, read_config(path))
    done = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    out: dict = {}
    for key in which:
        fn, need = FIGURES[key]
        if done < need:
            out[key] = f"needs {need} finished trial{'s' if need > 1 else ''} ({done} so far)"
            continue
        kwargs = {} if key == "epochs" else {"target_name": "validation RMSE"}
        try:
            with warnings.catch_warnings():  # "few trials per regime": the figure says as much
                warnings.simplefilter("ignore")
                fig = getattr(optuna.visualization, fn)(study, **kwargs)
        except (ValueError, RuntimeError) as exc:  # e.g. importance with a single value of every setting
            out[key] = f"cannot be drawn yet ({exc})"
            continue
        fig.update_layout(width=None, height=420, margin=dict(l=60, r=20, t=50, b=50))
        out[key] = fig
    return out
