"""Bench spec parsing (pure): defaults, overrides, paths, and one-line errors."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from edgenas.bench.spec import BenchProtocol, load_spec, parse_spec, parse_threshold
from edgenas.errors import UserError

SPEC = """
threshold = "12%"
alpha = 0.01
devices = ["cpu"]

[protocol]
runs = 7
sessions = 6
threads = 1

[[case]]
name = "depth-onnx"
onnx = "models/depth.onnx"

[[case]]
name = "seg.gen_1"
genotype = "  S2:abc  "
task = "seg"
input = "120x160"
num_classes = 11
devices = ["cpu", "openvino-cpu", "cpu"]
threshold = 0.2
protocol = { sessions = 12, cooldown = 0.5 }
"""


def parse(text: str, base_dir: Path | None = None):
    return parse_spec(tomllib.loads(text), base_dir=base_dir)


def test_defaults_overrides_and_relative_paths(tmp_path):
    spec = parse(SPEC, tmp_path)
    assert (spec.threshold, spec.alpha) == (0.12, 0.01)
    onnx, gen = spec.cases
    assert onnx.onnx == tmp_path / "models" / "depth.onnx"
    assert onnx.devices == ("cpu",)
    assert onnx.threshold is None  # the spec's, or `check --threshold`
    assert onnx.protocol == BenchProtocol(runs=7, sessions=6, threads=1)
    assert gen.genotype == "S2:abc"
    assert gen.input == (1, 3, 120, 160)
    assert gen.devices == ("cpu", "openvino-cpu")  # duplicates dropped, order kept
    assert gen.threshold == pytest.approx(0.2)
    # the case's protocol table overlays the spec's, field by field
    assert gen.protocol == BenchProtocol(runs=7, sessions=12, threads=1, cooldown=0.5)
    assert gen.source() == {
        "genotype": "S2:abc",
        "task": "seg",
        "input": [1, 3, 120, 160],
        "num_classes": 11,
    }
    assert spec.case("seg.gen_1") is gen and spec.case("nope") is None


def test_minimal_spec_gets_defaults():
    spec = parse('[[case]]\nname = "a"\nonnx = "/abs/a.onnx"\n')
    assert spec.threshold == pytest.approx(0.10) and spec.alpha == 0.05
    assert spec.cases[0].devices == ("cpu",)
    assert spec.cases[0].onnx == Path("/abs/a.onnx")
    assert spec.cases[0].protocol.sessions == 10


@pytest.mark.parametrize(
    ("text", "value"),
    [("10%", 0.10), (" 2.5% ", 0.025), ("0.15", 0.15), (0.3, 0.3), ("150%", 1.5)],
)
def test_threshold_forms(text, value):
    assert parse_threshold(text) == pytest.approx(value)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [("10", "ambiguous"), (10, "ambiguous"), ("ten%", "bad threshold"), ("0%", "above 0%"),
     ("-5%", "above 0%"), (True, "bad threshold")],
)  # fmt: skip
def test_bad_thresholds(text, fragment):
    with pytest.raises(UserError, match=fragment):
        parse_threshold(text)


CASE = '[[case]]\nname = "a"\nonnx = "a.onnx"\n'


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "no cases"),
        ('treshold = "10%"\n' + CASE, "unknown field 'treshold'"),
        ('[[case]]\nname = "a"\n', "either onnx = FILE or genotype"),
        ('[[case]]\nname = "a"\nonnx = "a.onnx"\ngenotype = "S2:x"\n', "either onnx"),
        ('[[case]]\nname = "a b"\nonnx = "a.onnx"\n', "name must be letters"),
        ('[[case]]\nonnx = "a.onnx"\n', "name must be letters"),
        (CASE + CASE, "case name 'a' is used twice"),
        ('[[case]]\nname = "g"\ngenotype = "S2:x"\n', "needs input"),
        ('[[case]]\nname = "a"\nonnx = "a.onnx"\ntask = "seg"\n', "task applies to genotype"),
        ('[[case]]\nname = "a"\nonnx = "a.onnx"\nsize = 3\n', "case 'a': unknown field 'size'"),
        ('[[case]]\nname = "a"\nonnx = "a.onnx"\ninput = "1xfoo"\n', "bad shape"),
        ("[protocol]\nsessions = 3\n" + CASE, "too few for the significance test"),
        ("[protocol]\nruns = 0\n" + CASE, "runs must be a whole number >= 1"),
        ("[protocol]\ncooldown = -1\n" + CASE, "cooldown must be a number"),
        ("[protocol]\nrepeat = 3\n" + CASE, "unknown field 'repeat'"),
        ("devices = []\n" + CASE, "devices must be a list"),
        ("alpha = 1.5\n" + CASE, "alpha must be a number between 0 and 1"),
        ('[[case]]\nname = "a"\nonnx = "a.onnx"\nprotocol = 3\n', "protocol must be a table"),
    ],
)
def test_bad_specs_name_the_problem(text, fragment):
    with pytest.raises(UserError, match=fragment):
        parse(text)


def test_load_spec_names_the_file(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_spec(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[[case]\n")
    with pytest.raises(UserError, match=r"bad\.toml: not valid TOML"):
        load_spec(bad)
    bad.write_text('[[case]]\nname = "a"\n')
    with pytest.raises(UserError, match=r"bad\.toml: case 'a': give either"):
        load_spec(bad)
    good = tmp_path / "good.toml"
    good.write_text(CASE)
    spec = load_spec(good)
    assert spec.path == good and spec.cases[0].onnx == tmp_path / "a.onnx"
