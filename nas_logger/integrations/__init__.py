"""Thin callbacks over :func:`nas_logger.watch` for the trainers people use.

``nas_logger.integrations.lightning.NASCallback`` (extra ``[lightning]``) and
``nas_logger.integrations.huggingface.NASTrainerCallback`` (extra ``[huggingface]``); each module
imports its framework, so import the one you use.
"""
