"""genotype_params counts a genotype's parameters without building it; it must agree
exactly with the built network, for every task head and layout."""

import pytest

from edgenas.models.builder import build_model
from edgenas.models.complexity import count_params
from edgenas.models.param_count import genotype_params
from edgenas.space.ldp import LDPSpace


@pytest.mark.parametrize(
    ("task", "options", "space"),
    [
        ("segmentation", {"num_classes": 11}, LDPSpace(ops=("conv", "ds", "ib", "micro", "id"))),
        ("depth", {}, LDPSpace()),
        ("sr", {"scale": 2}, LDPSpace(scales=(2, 3))),
        ("sr", {"scale": 3}, LDPSpace(scales=(2, 3), layout="paper", upscale=3)),
        ("classification", {"num_classes": 5}, LDPSpace(scales=(2,))),
    ],
)
def test_counts_match_the_built_network(task, options, space):
    for genotype in space.sample_unique(12, seed=3):
        built = count_params(build_model(genotype, task, **options))
        assert genotype_params(genotype, task, **options) == built, genotype.encode()


@pytest.mark.parametrize("task", ["segmentation", "sr", "depth"])
def test_counts_match_in_the_spaces_the_search_samples(task):
    from edgenas.search.config import SearchConfig

    options = {"num_classes": 11} if task == "segmentation" else {}
    for genotype in SearchConfig(task=task).space().sample_unique(10, seed=5):
        built = count_params(build_model(genotype, task, **options))
        assert genotype_params(genotype, task, **options) == built, genotype.encode()


def test_string_genotypes_and_other_stems_count_alike():
    genotype = LDPSpace().sample_unique(1, seed=0)[0]
    built = count_params(build_model(genotype, "depth", stem_channels=24, in_channels=1))
    assert genotype_params(genotype.encode(), "depth", stem_channels=24, in_channels=1) == built


def test_options_the_task_does_not_take_are_refused_as_when_building():
    genotype = LDPSpace().sample_unique(1, seed=0)[0]
    with pytest.raises(ValueError, match="takes no option"):
        genotype_params(genotype, "depth", num_classes=3)
