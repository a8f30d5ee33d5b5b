"""training/figure.py: the NAS tab's own export, from the command line (real TensorBoard, Debian chromium)."""
import io

import numpy as np
import pytest
from PIL import Image

from test_frontend_support import chromium_path, write_logdir
from training import figure


@pytest.fixture(scope="module")
def logdir(tmp_path_factory):
    chromium_path()  # a missing browser fails here, saying how to install it
    root = tmp_path_factory.mktemp("figure")
    write_logdir(root)
    return root


def test_a_group_line_plot_is_written_as_the_tabs_png(logdir, tmp_path, capsys):
    out = tmp_path / "figs" / "vanilla.png"
    assert figure.main(["--logdir", str(logdir), "--select", "group:vanilla", "--view", "lines", "-o", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    image = np.asarray(Image.open(io.BytesIO(out.read_bytes())).convert("RGB")).astype(int)
    height, width, _ = image.shape
    assert width >= 800 and height >= 300  # the tab exports at twice the drawn size
    r, g, b = image[..., 0], image[..., 1], image[..., 2]
    assert ((r > 150) & (g < 90) & (b < 90)).sum() > 200  # the red test-loss curve
    assert ((b > 120) & (r < 100)).sum() > 200  # the blue NAS lines


def test_an_svg_export_and_an_entry_the_tab_does_not_list(logdir, tmp_path, capsys):
    out = tmp_path / "both.svg"
    keys = "group:vanilla,group:vanilla_lowlr"
    assert figure.main(["--logdir", str(logdir), "--select", keys, "--view", "stripes", "-o", str(out)]) == 0
    svg = out.read_text()
    assert svg.startswith("<svg") or svg.startswith("<?xml")
    assert "vanilla_lowlr" in svg and "vanilla" in svg
    assert figure.main(["--logdir", str(logdir), "--select", "group:nope", "-o", str(tmp_path / "x.png")]) == 1
    err = capsys.readouterr().err
    assert "not ['group:nope']" in err and not (tmp_path / "x.png").exists()
    with pytest.raises(SystemExit):
        figure.main(["--logdir", str(logdir), "--select", "vanilla", "-o", str(out)])
    assert "group:NAME or run:NAME" in capsys.readouterr().err
