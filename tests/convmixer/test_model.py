from __future__ import annotations

import pytest
import torch

import convmixer

PARAMS = {
    "convmixer_1536_20": 51_625_960,
    "convmixer_768_32": 21_110_248,
    "convmixer_1024_20_ks9_p14": 24_383_464,
}


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_parameter_counts_are_exact(name: str) -> None:
    model = convmixer.create_model(name)
    assert sum(p.numel() for p in model.parameters()) == PARAMS[name]


def test_registry_lists_the_contract_variants() -> None:
    assert set(convmixer.list_models()) == {*PARAMS, "convmixer_256_8", "convmixer_digits"}


def test_768_32_uses_relu_everywhere_and_others_gelu() -> None:
    relu = convmixer.create_model("convmixer_768_32")
    acts = {type(m) for m in relu.modules() if isinstance(m, (torch.nn.ReLU, torch.nn.GELU))}
    assert acts == {torch.nn.ReLU}
    gelu = convmixer.create_model("convmixer_256_8")
    assert {type(m) for m in gelu.modules() if isinstance(m, (torch.nn.ReLU, torch.nn.GELU))} == {torch.nn.GELU}


def test_create_model_is_in_eval_mode_and_overrides_apply() -> None:
    model = convmixer.create_model("convmixer_256_8", dim=32, depth=2, num_classes=7)
    assert not model.training
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 7)


@pytest.mark.parametrize("shape", [(1, 3, 32, 32), (2, 3, 33, 47), (1, 3, 2, 2)])
def test_any_input_size_works(shape: tuple[int, ...]) -> None:
    model = convmixer.create_model("convmixer_256_8", dim=16, depth=1)
    with torch.inference_mode():
        assert model(torch.randn(*shape)).shape == (shape[0], 10)


def test_unknown_model_names_the_registered_ones() -> None:
    with pytest.raises(KeyError, match="convmixer_768_32"):
        convmixer.create_model("convmixer_9_9")


def test_digits_model_loads_its_bundled_weights() -> None:
    a = convmixer.create_model("convmixer_digits")
    b = convmixer.create_model("convmixer_digits")
    assert torch.equal(a.head.weight, b.head.weight)  # not a random init
