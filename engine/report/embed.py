"""The report's markdown with its chart images inlined, for viewers that cannot fetch files.

The report on disk links its charts by file name (they sit beside it); the Prefect UI renders an
artifact's markdown in the browser, where a relative path points nowhere, so the artifact carries
each chart as a data: URI.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping

MEDIA_TYPES = {".png": "image/png", ".svg": "image/svg+xml"}


def data_uri(file_name: str, content: bytes) -> str:
    suffix = file_name[file_name.rfind(".") :].lower()
    media_type = MEDIA_TYPES.get(suffix)
    if media_type is None:
        raise ValueError(f"cannot inline {file_name!r}: only {sorted(MEDIA_TYPES)} images")
    return f"data:{media_type};base64,{base64.b64encode(content).decode('ascii')}"


def inline_images(markdown: str, images: Mapping[str, bytes]) -> str:
    """Every `![alt](name)` whose name is a key of `images` points at that image's data: URI."""
    for name, content in images.items():
        link = f"]({name})"
        if link not in markdown:
            raise ValueError(f"the report links no image {name!r}: nothing to inline")
        markdown = markdown.replace(link, f"]({data_uri(name, content)})")
    return markdown
