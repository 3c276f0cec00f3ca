"""Streamlit helpers shared by the pages of the MMF Studio dashboard.

The pages in ``pages/`` stay thin: they read widgets, call these helpers (which call
``mmf_core`` and the run store) and draw. Nothing here trains a model inside a script
run: experiments are submitted to the run store and watched.
"""
