"""The smaller command-line items of issue 16: help texts that tell the truth, `space
sample` drawing the search's space, `space describe` with parameters and MACs, `score`
sorted best first, one latency-table file per device and threads, and `--json -`."""

from __future__ import annotations

import argparse
import json
import re

import pytest

from edgenas.cli import build_parser, main
from edgenas.search.config import SearchConfig
from edgenas.space import decode


def _parsers(parser: argparse.ArgumentParser, name: str = "edgenas"):
    """Every parser of the CLI (commands and their actions) with its command line."""
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from _parsers(sub, f"{name} {sub_name}")


def _all_options() -> set[str]:
    return {
        flag
        for _, parser in _parsers(build_parser())
        for action in parser._actions
        for flag in action.option_strings
    }


def test_help_names_only_options_that_exist():
    """`devices emulate --help` named --emulated-runner, which no command has."""
    known = _all_options()
    for name, parser in _parsers(build_parser()):
        texts = [parser.description or "", *(a.help or "" for a in parser._actions)]
        for text in texts:
            for flag in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", text):
                assert flag in known, f"`{name} --help` names {flag}, which no command has"


def test_every_option_shows_one_default():
    """No option's help shows two defaults ("... the default for trained weights
    (default: False)") or a meaningless one ("(default: None)")."""
    for name, parser in _parsers(build_parser()):
        formatter = parser._get_formatter()
        for action in parser._actions:
            if action.help in (None, argparse.SUPPRESS):
                continue
            shown = formatter._get_help_string(action) or ""
            label = f"`{name}` {'/'.join(action.option_strings) or action.dest}"
            assert "(default: None)" not in shown, label
            if shown != action.help:  # "(default: ...)" appended: the help names none
                assert "default" not in action.help, label
            if action.nargs == 0:  # a flag: nothing to default
                assert "(default:" not in shown, label


def _stdout_lines(capsys, *argv: str) -> list[str]:
    assert main(list(argv)) == 0
    return capsys.readouterr().out.splitlines()


@pytest.mark.parametrize("task", ["depth", "sr", "seg"])
def test_space_sample_draws_the_search_space(task, capsys):
    """It drew S2-S5 with every operator; the search draws from SearchConfig's space."""
    space = SearchConfig(task=task).space()
    lines = _stdout_lines(capsys, "space", "sample", "--n", "30", "--seed", "0", "--task", task)
    genotypes = [decode(line) for line in lines]
    assert len(set(lines)) == 30
    assert {g.scales for g in genotypes} <= set(space.scales)
    assert all(space.is_valid(g) for g in genotypes), [space.problems(g) for g in genotypes]


def test_space_sample_scales_and_channels(capsys):
    lines = _stdout_lines(
        capsys, "space", "sample", "--n", "5", "--scales", "4", "--channels", "8,16"
    )
    for genotype in map(decode, lines):
        assert genotype.scales == 4
        assert {block.channels for block in genotype.blocks} <= {8, 16}


def test_space_describe_prints_params_and_macs(capsys):
    from edgenas.models.builder import build_model
    from edgenas.models.complexity import count_macs, count_params

    (text,) = _stdout_lines(capsys, "space", "sample", "--n", "1", "--task", "seg")
    out = "\n".join(_stdout_lines(capsys, "space", "describe", text, "--task", "seg"))
    model = build_model(decode(text), "segmentation")
    h, w = SearchConfig().deploy_input
    assert f"parameters {count_params(model):,}" in out
    assert f"MACs {count_macs(model, (1, 3, h, w)):,} at {h}x{w}" in out
    out = "\n".join(_stdout_lines(capsys, "space", "describe", text, "--input", "32x48"))
    assert f"MACs {count_macs(build_model(decode(text), 'depth'), (1, 3, 32, 48)):,}" in out


def test_score_sorted_best_first_and_json_dash(capsys, monkeypatch):
    """Scores came out in input order; `--json -` was refused as a stray argument."""
    import io

    texts = _stdout_lines(capsys, "space", "sample", "--n", "4", "--seed", "1", "--scales", "2")
    argv = ["score", "--genotype", "-", "--batch", "4", "--input", "16x16"]
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(texts)))
    results = json.loads("\n".join(_stdout_lines(capsys, *argv, "--json", "-")))
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True)
    assert sorted(r["genotype"] for r in results) == sorted(texts)
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(texts)))
    lines = _stdout_lines(capsys, *argv)
    assert [line.split()[-1] for line in lines] == [r["genotype"] for r in results]


@pytest.mark.parametrize(
    "argv",
    [
        ["models", "--no-latency", "--task", "sr", "--json", "-"],
        ["devices", "list", "--json", "-"],
        ["devices", "show", "cpu", "--json", "-"],
        ["devices", "show", "--json", "cpu"],  # the flag takes no value: cpu is the device
    ],
    ids=lambda argv: " ".join(argv[:2]),
)
def test_json_dash_is_standard_output(argv, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EDGENAS_CONFIG_DIR", str(tmp_path / "config"))
    json.loads("\n".join(_stdout_lines(capsys, *argv)))
    assert not (tmp_path / "-").exists()


@pytest.mark.parametrize(("device", "threads"), [("cpu", None), ("cpu", 3), ("pixel3a", 2)])
def test_predict_and_search_use_one_table_file(device, threads, tmp_path, monkeypatch):
    """`edgenas predict` opens the table the search's measurer fills for the same
    device and threads."""
    from edgenas.cli.predict_cmd import _open_table
    from edgenas.latency_table import Measurer

    monkeypatch.setenv("EDGENAS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("EDGENAS_CONFIG_DIR", str(tmp_path / "config"))
    args = build_parser().parse_args(["predict", "--genotype", "x", "--device", device])
    args.threads = threads
    _, predict_table = _open_table(args)
    config = SearchConfig(device=device, threads=threads or 1)
    if threads is None:  # the search always names its threads; predict takes the entry's
        args.threads = None
        config = SearchConfig(device=device, threads=predict_table.threads)
    measurer = Measurer(config.device, threads=config.threads)  # as SearchEvaluator does
    try:
        assert measurer.table.path == predict_table.path
        assert predict_table.path.parent == tmp_path / "cache" / "latency"
    finally:
        measurer.close()
