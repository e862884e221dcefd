"""Every provider kind's resource makes its offline client from the same arguments (a kind whose offline class
took fewer failed only when a placeholder was needed, in the middle of a generation)."""

from __future__ import annotations

import pytest

from movie_assets.domain.blueprint import ProviderKind
from resources.dagster_resources import KIND_RESOURCES


@pytest.mark.parametrize("kind", list(ProviderKind))
@pytest.mark.parametrize("debug_overlay", [False, True])
def test_each_kind_makes_its_offline_client(kind: ProviderKind, debug_overlay: bool) -> None:
    resource = KIND_RESOURCES[kind](debug_overlay=debug_overlay)
    client = resource.offline(None, latency_s=0.0, fail_when="")
    assert client.name == "offline"
