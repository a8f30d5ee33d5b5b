"""TensorBoard plugin ``nas``: serves the Neural Activation Sparsity records written by ``nas_logger``.

Data flow: event files -> TensorBoard data provider -> :mod:`.reading` -> :mod:`.grouping` /
:mod:`.aggregate` / :mod:`.overfit` -> :mod:`.routes` (JSON, CSV, PNG) -> the frontend in ``frontend/``.
"""
