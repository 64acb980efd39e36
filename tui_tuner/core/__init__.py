"""The tuning core: spaces, sampling, the study and its store, export, search strategies.

Pure Python + numpy (+ optuna); never textual, never processes.
"""
