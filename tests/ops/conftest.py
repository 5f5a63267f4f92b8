"""Operations fixtures: free ports, the search fixtures (tiny encoder, private index dirs)."""

from __future__ import annotations

import socket

import pytest

from tests.search.conftest import add_image, search_settings, tiny_checkpoint  # noqa: F401 - fixtures


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def indexed(search_settings, add_image):  # noqa: F811
    """Six public images, embedded and indexed (index version = the build's id)."""
    from search.indexing import index_rebuild

    images = [add_image(slug, skin_type=t) for slug in ("melanoma", "psoriasis") for t in (2, 4, 6)]
    build = index_rebuild(full=True)
    return images, build
