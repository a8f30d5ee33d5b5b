"""The ``nas`` TensorBoard plugin: its loader (entry point ``nas = nas_tb_plugin.plugin:NASLoader``)
and the plugin object that maps routes to the handlers in :mod:`.routes`."""
from __future__ import annotations

from tensorboard.plugins import base_plugin

from nas_logger.format import INDEX_PLUGIN_NAME, PLUGIN_NAME

from . import assets
from .cache import CACHE_BYTES
from .routes import Routes
from .sharing import max_age_for
from .tensorboard_private import parse_samples_per_plugin


class NASPlugin(base_plugin.TBPlugin):
    """Serves the NAS tab: JSON data routes under ``/data/plugin/nas/`` and the frontend's files."""

    plugin_name = PLUGIN_NAME

    def __init__(self, context: base_plugin.TBContext, frontend_dir=None, cache_bytes: int = CACHE_BYTES) -> None:
        # Listings are shared between requests for a fraction of TensorBoard's reload interval (see .sharing).
        self._routes = Routes(context.data_provider, frontend_dir or assets.frontend_dir(),
                              max_age_for(getattr(context.flags, "reload_interval", None)), cache_bytes)

    @property
    def routes(self) -> Routes:
        """The plugin's handlers (what they keep between requests: ``routes.cache``)."""
        return self._routes

    def get_plugin_apps(self):
        return self._routes.apps()

    def is_active(self) -> bool:
        return False  # the tab is enabled by data_plugin_names() through the data provider's list_plugins()

    def data_plugin_names(self):
        return (PLUGIN_NAME,)

    def frontend_metadata(self):
        return base_plugin.FrontendMetadata(es_module_path="/index.js", tab_name="NAS")


class NASLoader(base_plugin.TBLoader):
    """Loads :class:`NASPlugin` and makes TensorBoard keep every ``nas`` record, and of the index records
    (``nas_index``) the last, the only one read (both loaders always keep a series' last point).

    Without it, the Rust data server keeps 100 tensors per series and ``--load_fast=false`` only 10.
    A user's own ``--samples_per_plugin=nas=N`` still wins.
    """

    def fix_flags(self, flags) -> None:
        samples = getattr(flags, "samples_per_plugin", None)
        if isinstance(samples, str):  # e.g. program.TensorBoard().configure(samples_per_plugin="x=1")
            samples = parse_samples_per_plugin(samples)
        samples = dict(samples or {})
        samples.setdefault(PLUGIN_NAME, 0)
        samples.setdefault(INDEX_PLUGIN_NAME, 1)
        flags.samples_per_plugin = samples

    def load(self, context: base_plugin.TBContext) -> NASPlugin:
        return NASPlugin(context)
