"""TensorBoard's private APIs that the plugin uses, behind one wall (listed in docs/architecture.md).

Each is looked up once, when a reader is made; where a TensorBoard release lacks one, the plugin uses
TensorBoard's public data-provider API instead (slower, the same answers) and logs that once:

- ``GrpcDataProvider._stub``, ``grpc_provider._populate_rtf`` and ``grpc_provider._translate_grpc_error``:
  calls of the Rust data server read here directly (:class:`GrpcCalls`), so that a listing is compared
  as its response before Python objects are made of it, and a heatmap series' tensors are decoded one at a
  time, when shown.
- ``core_plugin._parse_samples_per_plugin``: ``--samples_per_plugin`` given as a string to
  ``program.TensorBoard().configure()`` (:func:`parse_samples_per_plugin`).
"""
from __future__ import annotations

import logging

from tensorboard.data import grpc_provider
from tensorboard.plugins.core import core_plugin

logger = logging.getLogger(__name__)


class GrpcCalls:
    """Requests of TensorBoard's gRPC data provider made here, as its public methods make them, answered
    as the data server's response protos."""

    def __init__(self, stub, populate_rtf, translate_error) -> None:
        self._stub, self._populate_rtf, self._translate_error = stub, populate_rtf, translate_error

    @classmethod
    def of(cls, data_provider) -> GrpcCalls | None:
        """The calls of ``data_provider`` when it is TensorBoard's gRPC provider and this TensorBoard has the
        private parts they need; None otherwise (the public API serves)."""
        if not isinstance(data_provider, grpc_provider.GrpcDataProvider):
            return None
        parts = (getattr(data_provider, "_stub", None), getattr(grpc_provider, "_populate_rtf", None),
                 getattr(grpc_provider, "_translate_grpc_error", None), getattr(grpc_provider, "data_provider_pb2", None))
        if any(part is None for part in parts):
            missing = [name for name, part in zip(("GrpcDataProvider._stub", "_populate_rtf", "_translate_grpc_error",
                                                   "data_provider_pb2"), parts) if part is None]
            logger.info("nas: this TensorBoard lacks %s; reading through its public data-provider API", ", ".join(missing))
            return None
        return cls(*parts[:3])

    def request(self, name: str, experiment_id: str, plugin_name: str | None = None, run_tag_filter=None):
        """A ``<name>Request`` proto (``ListRuns``, ``ListTensors``, ``ReadTensors``, ...) with these fields set."""
        req = getattr(grpc_provider.data_provider_pb2, f"{name}Request")()
        req.experiment_id = experiment_id
        if plugin_name is not None:
            req.plugin_filter.plugin_name = plugin_name
            self._populate_rtf(run_tag_filter, req.run_tag_filter)
        return req

    def call(self, name: str, request):
        """The data server's response to ``request``; its errors as TensorBoard's public ones."""
        with self._translate_error():
            return getattr(self._stub, name)(request)


def parse_samples_per_plugin(text: str) -> dict[str, int]:
    """``--samples_per_plugin`` as TensorBoard parses it ("images=3,nas=0" -> {"images": 3, "nas": 0})."""
    parse = getattr(core_plugin, "_parse_samples_per_plugin", None)
    if parse is not None:
        return dict(parse(text))
    found = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, value = item.partition("=")
        found[name.strip()] = int(value)
    return found
