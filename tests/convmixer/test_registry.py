"""The variant registry: each variant's preprocessing is typed, and a twin of the runtime's."""

from __future__ import annotations

import dataclasses

import pytest

import convmixer
from runtime.core.preprocess import Preprocessing


@pytest.mark.parametrize("name", convmixer.list_models())
def test_every_variant_has_typed_preprocessing_the_runtime_accepts(name: str) -> None:
    cfg = convmixer.get_variant(name).preprocessing
    assert isinstance(cfg, convmixer.PreprocessingCfg)
    assert isinstance(cfg.input_size, int) and cfg.input_size > 0
    runtime_cfg = Preprocessing.from_dict(cfg.to_dict())  # validates interpolation, crop_pct, std
    assert (runtime_cfg.input_size, runtime_cfg.crop_pct, runtime_cfg.interpolation) == (
        cfg.input_size,
        cfg.crop_pct,
        cfg.interpolation,
    )
    assert runtime_cfg.mean == tuple(cfg.mean) and runtime_cfg.std == tuple(cfg.std)


def test_the_twin_has_every_field_of_the_runtime_config_but_the_runtime_only_ones() -> None:
    twin = {f.name for f in dataclasses.fields(convmixer.PreprocessingCfg)}
    runtime_fields = {f.name for f in dataclasses.fields(Preprocessing)}
    assert twin == runtime_fields - {"exif_transpose"}  # a decode option, chosen at export


def test_preprocessing_is_frozen_and_variants_are_keyword_built() -> None:
    cfg = convmixer.get_variant("convmixer_digits").preprocessing
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.input_size = 64  # type: ignore[misc]
    assert (cfg.input_size, cfg.interpolation) == (32, "bilinear")
    assert convmixer.get_variant("convmixer_768_32").preprocessing.input_size == 224


def test_imagenet_variants_ship_their_wordnet_ids() -> None:
    """The ImageNet-1k WNID list (sorted, as every ImageNet class folder tree is) sits beside
    the labels, one per class, in the labels' order; other label sets have none."""
    from convmixer.registry import label_names, wnid_names

    for name in ("convmixer_1536_20", "convmixer_768_32", "convmixer_1024_20_ks9_p14"):
        label_set = convmixer.get_variant(name).labels
        wnids, labels = wnid_names(label_set), label_names(label_set)
        assert wnids is not None and labels is not None
        assert len(wnids) == len(set(wnids)) == len(labels) == 1000 and wnids == sorted(wnids)
        assert (wnids[0], labels[0]) == ("n01440764", "tench") and (wnids[2], labels[2]) == ("n01484850", "great white shark")
    assert wnid_names(convmixer.get_variant("convmixer_digits").labels) is None
