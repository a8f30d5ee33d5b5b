"""The NAS tab on an empty log directory (the two lines to add) and when the server fails, in a real
browser against a real `tensorboard` process."""
from __future__ import annotations

import json
import re

import pytest

from test_frontend_support import TensorBoard, browser


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tb = TensorBoard(tmp_path_factory.mktemp("empty_logdir"))
    yield tb
    tb.close()


@pytest.fixture(scope="module")
def page(server):
    with browser() as b:
        page = b.new_page(viewport={"width": 1100, "height": 700})
        page.errors = []
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        yield page


def open_tab(page, server):
    # With no NAS data TensorBoard lists the tab as inactive, so open the plugin's own page.
    page.goto(server.url + "/data/plugin_entry.html?name=nas")
    page.wait_for_selector(".nas-app[data-state]", state="attached", timeout=30000)


def test_empty_logdir_shows_the_two_lines_to_add(page, server):
    open_tab(page, server)
    assert page.get_attribute(".nas-app", "data-state") == "empty"
    code = page.inner_text(".nas-empty pre.nas-code")
    assert 'monitor = nas_logger.watch(model, "runs/exp")' in code
    assert "monitor.log(epoch, test_loss=test_loss)" in code
    assert page.errors == []


def test_server_error_on_the_run_list_is_a_message_not_a_blank_page(page, server):
    pattern = re.compile(r".*/data/plugin/nas/runs$")
    page.route(pattern, lambda route: route.fulfill(
        status=500, content_type="application/json", body=json.dumps({"error": "cannot read logdir", "parameter": None})))
    try:
        open_tab(page, server)
        assert page.get_attribute(".nas-app", "data-state") == "error"
        message = page.inner_text(".nas-app .nas-error")
        assert "Could not load the list of NAS runs" in message and "500" in message and "cannot read logdir" in message
    finally:
        page.unroute(pattern)


def test_a_real_400_from_the_backend_is_reported_with_its_message(page, server):
    open_tab(page, server)
    # The real server answers a request without run= with 400 and a JSON error; api.js turns it into text.
    message = page.evaluate(
        """async () => {
          const { getJSON } = await import('./static/api.js');
          try { await getJSON('lines'); return 'no error'; } catch (e) { return e.message + ' | ' + e.parameter; }
        }""")
    assert message.startswith("lines: 400") and "run" in message
