"""The search side of optuna-search: configs, search space, objective, storage, CLI.

It builds on :mod:`model` (plain PyTorch) and is the only package that imports Optuna.
"""
