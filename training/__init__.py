"""Reproduction of Huesmann et al. (2021): the paper's models, datasets and training protocol, logged with
``nas_logger``. Run ``python -m training --help`` in a checkout (the package is not installed)."""
