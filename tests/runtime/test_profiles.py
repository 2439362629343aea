"""ProfileSet: which shapes an engine takes, and how a batch is cut and padded."""

from __future__ import annotations

import pytest

from runtime.core.backends.profiles import Chunk, ProfileSet
from runtime.core.errors import UserError

STATIC = ((4, 3, 32, 32), (4, 3, 32, 32), (4, 3, 32, 32))
MIN2 = ((2, 3, 16, 16), (3, 3, 24, 24), (3, 3, 48, 48))


def test_static_profile_pads_the_last_chunk() -> None:
    profiles = ProfileSet.from_shapes([STATIC])
    p = profiles.choose((5, 3, 32, 32))
    assert ProfileSet.chunks(5, p) == [Chunk(0, 4, 4), Chunk(4, 5, 4)]
    assert ProfileSet.chunks(1, p) == [Chunk(0, 1, 4)] and ProfileSet.chunks(1, p)[0].padded
    assert ProfileSet.chunks(8, p) == [Chunk(0, 4, 4), Chunk(4, 8, 4)]


def test_min_batch_over_one_and_the_first_profile_that_holds_the_image() -> None:
    profiles = ProfileSet.from_shapes([STATIC, MIN2])
    p = profiles.choose((7, 3, 20, 30))
    assert p.index == 1
    assert ProfileSet.chunks(7, p) == [Chunk(0, 3, 3), Chunk(3, 6, 3), Chunk(6, 7, 2)]
    assert profiles.accepts((1, 3, 32, 32)) and profiles.accepts((100, 3, 48, 16))
    assert profiles.max_batch == 4 and profiles.max_elements == 3 * 3 * 48 * 48


def test_errors_name_the_callers_shape() -> None:
    profiles = ProfileSet.from_shapes([STATIC, MIN2])
    assert not profiles.accepts((5, 3, 64, 64)) and not profiles.accepts((0, 3, 32, 32))
    with pytest.raises(UserError) as err:
        profiles.choose((5, 3, 64, 64))
    assert str(err.value) == (
        "input 'images' | got shape (5, 3, 64, 64) | engine profile allows "
        "(4,3,32,32)..(4,3,32,32), (2,3,16,16)..(3,3,48,48)"
    )
