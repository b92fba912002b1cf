"""`edgenas search` takes its defaults from SearchConfig; the CLI only maps flags.

The one documented difference: with no target flag the command line targets
DEFAULT_TARGET_LATENCY_MS on --device, while a SearchConfig built in Python has only
the targets it is given.
"""

from __future__ import annotations

import dataclasses

import pytest

from edgenas.cli import build_parser
from edgenas.cli.search_cmd import config_from_args
from edgenas.search.config import (
    DEFAULT_GRID_SUBSAMPLE,
    DEFAULT_PROXY_INPUT,
    DEFAULT_SR_PROXY_INPUT,
    DEFAULT_TARGET_LATENCY_MS,
    SearchConfig,
)


def cli_config(*argv: str) -> SearchConfig:
    """The SearchConfig `edgenas search ARGV` would run with (nothing is run)."""
    return config_from_args(build_parser().parse_args(["search", *argv]))


def test_python_config_has_no_silent_target():
    config = SearchConfig()
    assert config.targets() == {} and config.primary_resource() == "params"
    assert SearchConfig(target_params=3e5).targets() == {"params": 3e5}


def test_cli_without_targets_uses_the_documented_latency_target():
    assert cli_config().targets() == {"latency_ms": DEFAULT_TARGET_LATENCY_MS}
    assert cli_config("--target-params", "300k").targets() == {"params": 3e5}


def test_cli_defaults_equal_the_dataclass_defaults():
    cli = cli_config("--name", "x")
    python = SearchConfig(target_latency_ms=DEFAULT_TARGET_LATENCY_MS, run_name="x")
    differing = {
        f.name: (getattr(cli, f.name), getattr(python, f.name))
        for f in dataclasses.fields(SearchConfig)
        if getattr(cli, f.name) != getattr(python, f.name)
    }
    assert differing == {}


@pytest.mark.parametrize(
    ("argv", "python"),
    [
        (["--task", "sr"], {"task": "sr"}),
        (["--alpha-grid", "0.4,0.6"], {"alpha_grid": (0.4, 0.6)}),
        (["--executor", "process"], {"executor": "process"}),
    ],
)
def test_dependent_defaults_agree(argv, python):
    cli = cli_config(*argv)
    config = SearchConfig(**python)
    assert (cli.proxy_input, cli.subsample, cli.workers, cli.torch_threads) == (
        config.proxy_input,
        config.subsample,
        config.workers,
        config.torch_threads,
    )


def test_dependent_defaults_resolve_to_concrete_values():
    assert SearchConfig().proxy_input == DEFAULT_PROXY_INPUT
    assert SearchConfig(task="sr").proxy_input == DEFAULT_SR_PROXY_INPUT
    assert SearchConfig(task="sr", proxy_input=(32, 32)).proxy_input == (32, 32)
    assert SearchConfig().subsample == 1.0
    assert SearchConfig(alpha_grid=(0.5,)).subsample == DEFAULT_GRID_SUBSAMPLE
    # What the store keeps round-trips unchanged.
    config = SearchConfig(task="sr", alpha_grid=(0.4, 0.6))
    assert SearchConfig.from_dict(config.to_dict()) == config


def test_subsample_applies_only_with_an_alpha_grid():
    assert cli_config("--subsample", "0.5").subsample == 1.0
    assert cli_config("--subsample", "0.5", "--alpha-grid", "0.5").subsample == 0.5


def test_help_says_the_real_defaults(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["search", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert f"--target-latency {DEFAULT_TARGET_LATENCY_MS:g}ms" in text
    assert f"(default: {SearchConfig().workers})" in text
    assert "(default: None)" not in text


def test_budgets_count_cpu_time_by_default_and_stored_runs_keep_their_wall_clock():
    assert cli_config().train_clock == "cpu"
    assert cli_config().train_config().clock == "cpu"
    assert cli_config("--train-clock", "wall").train_config().clock == "wall"
    stored = SearchConfig().to_dict()
    assert SearchConfig.from_dict(stored).train_clock == "cpu"
    del stored["train_clock"]  # a run stored before the clock choice trained on wall time
    assert SearchConfig.from_dict(stored).train_config().clock == "wall"
    with pytest.raises(ValueError, match="train clock must be wall or cpu"):
        SearchConfig(train_clock="gpu").validate()


def test_with_a_budget_the_final_model_and_baselines_train_on_the_wall_clock():
    """A --budget promises wall time, so the final phase it plans counts wall time;
    without one, the final model and the baselines get the candidates' CPU clock."""
    assert SearchConfig().final_train_config().clock == "cpu"
    budgeted = SearchConfig(budget_seconds=1200)
    assert budgeted.train_config().clock == "cpu"  # the candidates
    assert budgeted.final_train_config().clock == "wall"
    assert budgeted.final_train_config() == dataclasses.replace(
        budgeted.train_config(), clock="wall"
    )


def test_the_search_says_what_its_budgets_count(monkeypatch):
    import torch

    from edgenas.search.run import _clock_line

    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    on_cpu = SearchConfig(accelerator="cpu")
    assert _clock_line(on_cpu) == "training budgets count CPU time"
    assert _clock_line(dataclasses.replace(on_cpu, train_clock="wall")) == (
        "training budgets count wall time"
    )
    assert _clock_line(dataclasses.replace(on_cpu, budget_seconds=1200)) == (
        "candidates' training budgets count CPU time; the final model's and the "
        "baselines' wall time (--budget)"
    )
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)  # --torch-threads 2
    assert _clock_line(on_cpu) == (
        "training budgets count wall time (the CPU clock needs one torch thread on the CPU)"
    )


def test_each_task_starts_from_its_default_and_a_space_without_id_from_the_dense_one():
    from edgenas.tasks.defaults import DENSE_GENOTYPE, SEG_GENOTYPE, SR_GENOTYPE

    assert "id" in SearchConfig().ops  # the demo preset searches depth
    assert SearchConfig(task="seg").start_genotypes == (SEG_GENOTYPE,)
    assert SearchConfig(task="depth").start_genotypes == (DENSE_GENOTYPE,)
    assert SearchConfig(task="sr").start_genotypes == (SR_GENOTYPE,)
    # --ops conv,sep,ib cannot hold the segmentation default's id blocks
    narrow = SearchConfig(task="seg", ops=("conv", "sep", "ib"))
    assert narrow.start_genotypes == (DENSE_GENOTYPE,)
    # the paper's ds in place of sep: the same networks built of ds
    paper_ops = SearchConfig(task="seg", ops=("conv", "ds", "ib", "id"))
    assert paper_ops.start_genotypes == (SEG_GENOTYPE.replace("sep_", "ds_"),)
    assert "ds_" in paper_ops.start_genotypes[0] and "sep_" in SEG_GENOTYPE
    narrow_paper = SearchConfig(task="seg", ops=("conv", "ds", "ib"))
    assert narrow_paper.start_genotypes == (DENSE_GENOTYPE.replace("sep_", "ds_"),)
    # a space that holds neither starts from the ranked parents alone
    assert SearchConfig(task="seg", ops=("conv", "ib")).start_genotypes == ()


def test_sr_candidates_train_at_the_proxy_rate_and_the_final_model_at_the_recipes():
    """SR's short proxy trainings run at PROXY_LR (more repeatable at 18 s); the final
    model and the baselines keep the recipe's rate; other tasks and the paper's recipe
    use their recipe's rate throughout."""
    from edgenas.search.evaluation import CandidateEvaluator
    from edgenas.tasks.recipes import PROXY_LR, recipe_config

    sr = SearchConfig(
        task="sr", proxy_input=(32, 32), deploy_input=(32, 32), batch_size=4, accelerator="cpu"
    )
    assert sr.final_train_config().lr == recipe_config("sr").lr != PROXY_LR["sr"]
    evaluator = CandidateEvaluator(sr)  # what trains every candidate
    try:
        assert evaluator.train_config.lr == PROXY_LR["sr"]
    finally:
        evaluator.close()
    for config in (SearchConfig(task="seg"), SearchConfig(task="sr", recipe="ldp")):
        assert config.train_config().lr == config.final_train_config().lr
        assert config.train_config().lr == recipe_config(config.task, config.recipe).lr


def test_speed_is_the_default_score_where_it_times_what_the_proxy_gets(monkeypatch):
    """Training speed by default for a seconds proxy trained on this machine's CPU;
    the paper's NASWOT under a steps budget, on a GPU, on Ray workers, with the paper
    preset. An explicit --score wins, and the resolved score is what a run stores."""
    import torch

    from edgenas.cli.search_cmd import refuse_settings_on_resume
    from edgenas.errors import UserError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert cli_config().score == "speed"
    assert cli_config("--budget", "20m").score == "speed"
    assert cli_config("--accelerator", "cpu").score == "speed"
    assert cli_config("--train-steps", "5").score == "naswot"
    assert cli_config("--preset", "paper").score == "naswot"
    assert cli_config("--executor", "ray").score == "naswot"
    assert cli_config("--train-steps", "5", "--score", "speed").score == "speed"
    assert cli_config("--preset", "paper", "--score", "speed").score == "speed"
    # A machine with a GPU trains there by default: speed would time the wrong device.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert cli_config().score == "naswot"
    assert cli_config("--accelerator", "cpu").score == "speed"
    # What a run stored is kept, whatever today's default would be.
    stored = {**SearchConfig().to_dict(), "score": "speed", "train_steps": 5}
    assert SearchConfig.from_dict(stored).score == "speed"
    resumed = build_parser().parse_args(["search", "--resume", "runs/x", "--score", "naswot"])
    with pytest.raises(UserError, match="drop --score"):
        refuse_settings_on_resume(resumed)
    refuse_settings_on_resume(build_parser().parse_args(["search", "--resume", "runs/x"]))


def test_an_sr_search_trains_candidates_at_the_proxy_rate_and_its_answer_at_the_recipes(
    tmp_path, monkeypatch
):
    """The wiring through a real (tiny) search: every training call is recorded."""
    import edgenas.training
    from edgenas.search.run import run_search
    from edgenas.tasks.recipes import PROXY_LR, recipe_config

    calls: list[tuple[int | None, float]] = []
    real_train = edgenas.training.train

    def recording_train(model, task, train_source, val_data, budget, config, **kwargs):
        calls.append((budget.steps, config.lr))
        return real_train(model, task, train_source, val_data, budget, config, **kwargs)

    monkeypatch.setattr(edgenas.training, "train", recording_train)
    config = SearchConfig(
        task="sr", proxy_input=(32, 32), deploy_input=(32, 32), pool_size=3, parents=1,
        children=2, max_iterations=1, train_steps=2, final_steps=3, batch_size=4,
        target_params=40_000, accelerator="cpu", baselines=(), run_name="rates",
        runs_dir=str(tmp_path),
    )  # fmt: skip
    run_search(config, lambda _message: None)
    candidates = [lr for steps, lr in calls if steps == 2]
    finals = [lr for steps, lr in calls if steps == 3]
    assert candidates and set(candidates) == {PROXY_LR["sr"]}
    assert finals == [recipe_config("sr").lr]
