"""Reproduction of Huesmann et al. (2021): the paper's models, datasets and training protocol, logged with
``nas_logger``. Run ``nas-train --help`` or ``python -m training --help``."""
