"""The artifact's markdown carries its charts as data: URIs (the Prefect UI cannot fetch files)."""

from __future__ import annotations

import base64

import pytest

from engine.report.embed import inline_images
from engine.report.png import bar_chart


def test_each_linked_chart_becomes_a_data_uri_of_its_bytes() -> None:
    png = bar_chart([(1, 2)])
    markdown = "# r\n\n![Channels by local share](balance.png)\n\nbalance.png stays as text\n"
    out = inline_images(markdown, {"balance.png": png})
    uri = "data:image/png;base64," + base64.b64encode(png).decode()
    assert out == markdown.replace("](balance.png)", f"]({uri})")
    assert "balance.png stays as text" in out


def test_an_image_the_report_does_not_link_is_an_error_not_a_silent_skip() -> None:
    with pytest.raises(ValueError, match=r"links no image 'pnl.png'"):
        inline_images("no images here", {"pnl.png": b"\x89PNG"})


def test_only_known_image_types_are_inlined() -> None:
    with pytest.raises(ValueError, match=r"cannot inline 'x\.gif'"):
        inline_images("![a](x.gif)", {"x.gif": b"GIF89a"})
