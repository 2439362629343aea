"""runtime.app.images.gpu.resize without a GPU: its plan cache is bounded (least recently used
sizes dropped). The kernels themselves: tests/runtime/test_gpu_kernel.py (marker gpu)."""

from __future__ import annotations

import pytest

from runtime.app.images.gpu.resize import MAX_PLANS, LruCache


def test_the_plan_cache_keeps_only_the_most_recently_used_sizes() -> None:
    made: list[tuple[int, int]] = []

    def make(hw: tuple[int, int]) -> str:
        made.append(hw)
        return f"plan {hw}"

    cache: LruCache[tuple[int, int], str] = LruCache(make, limit=3)
    for hw in [(1, 1), (2, 2), (3, 3)]:
        assert cache.get(hw) == f"plan {hw}"
    assert cache.get((1, 1)) == "plan (1, 1)" and len(made) == 3  # a hit: not made again, now most recent
    cache.get((4, 4))  # over the limit: (2, 2), the least recently used, is dropped
    assert len(cache) == 3 and (2, 2) not in cache and all(hw in cache for hw in [(1, 1), (3, 3), (4, 4)])
    cache.get((2, 2))
    assert made == [(1, 1), (2, 2), (3, 3), (4, 4), (2, 2)] and (3, 3) not in cache
    for i in range(1000):  # a run over ever new sizes stays bounded
        cache.get((i + 10, 7))
    assert len(cache) == 3


def test_the_default_bound_and_a_useless_one() -> None:
    cache: LruCache[int, int] = LruCache(lambda k: k)
    for k in range(MAX_PLANS + 50):
        cache.get(k)
    assert len(cache) == MAX_PLANS == cache.limit
    with pytest.raises(ValueError, match="at least 1"):
        LruCache(lambda k: k, limit=0)
