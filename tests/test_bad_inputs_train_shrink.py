"""`edgenas train` and `edgenas shrink` refuse bad input in one line and write nothing.

Most cases are refused before torch loads (numbers by the parser, sizes, names, files
that cannot be checkpoints, the output folder); the few that need a checkpoint read
(another program's file, a network of another shape, a full disk) load it. The files
they need (checkpoints of every kind, shrink runs, a file where a folder belongs) are
built once in a module fixture; see tests/bad_inputs.py for the contract.

Ctrl-C in `train` and SIGTERM in `shrink` are tested here too, through the console
script: what is saved, the exit code, and the one line that says how to continue.
"""

from __future__ import annotations

import os
import resource
import shlex
import signal
import subprocess
import sys

import pytest
from bad_inputs import case, check_rejected
from cli_helpers import edgenas_command

TINY = "S2:" + "-".join(["ds_k3_se0_nores_c8_n1"] * 12)
WIDER = "S2:" + "-".join(["ds_k3_se0_nores_c16_n1"] * 12)
SHRINK_TINY = ("--widths", "4,8", "--branches", "1,2", "--tokens", "2", "--input", "32x40")


class Opaque:
    """A Python object in a checkpoint: weights_only loading refuses it."""


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """Checkpoints (a real one, one whose weights do not fit its network, weights only,
    another program's, random bytes, empty, one holding Python objects), shrink runs
    that cannot be resumed, and a file where a folder belongs."""
    import torch

    from edgenas.data.demo import DemoScenes
    from edgenas.store import RunStore
    from edgenas.tasks import get_task
    from edgenas.training import Budget, TrainConfig, train

    root = tmp_path_factory.mktemp("train-shrink-bad")
    (root / "a-file").write_text("not a folder\n")
    ckpts = root / "ckpts"
    ckpts.mkdir()
    (ckpts / "random.pt").write_bytes(os.urandom(4096))
    (ckpts / "empty.pt").write_bytes(b"")
    torch.save({"weights": torch.zeros(3)}, ckpts / "plain.pt")
    torch.save({"format": "edgenas-checkpoint-v1", "x": Opaque()}, ckpts / "objects.pt")

    task = get_task("seg")
    data = DemoScenes("segmentation", "train", size=(32, 40), length=4)
    model = task.build_model(TINY, data.info)
    trained = root / "prev" / "checkpoint.pt"
    train(model, task, data, None, Budget(steps=1), TrainConfig(batch_size=2),
          checkpoint=trained)  # fmt: skip
    ckpt = torch.load(trained, weights_only=True)
    torch.save({**ckpt, "model_spec": {**ckpt["model_spec"], "genotype": WIDER}},
               ckpts / "other-shape.pt")  # fmt: skip
    torch.save({k: v for k, v in ckpt.items() if k != "optimizer"}, ckpts / "weights-only.pt")

    runs = root / "runs"
    RunStore.create(runs / "paused", name="paused", kind="hrnas-shrink", config={}).close()
    done = RunStore.create(runs / "done", name="done", kind="hrnas-shrink", config={})
    done.set_status("finished")
    done.close()
    RunStore.create(runs / "search", name="search", kind="ldp-search", config={}).close()
    return root


TRAIN = ("train", "--task", "seg")
DEPTH = ("train", "--task", "depth")
# The first weight of another shape, with both shapes (TINY has 8 channels, WIDER 16).
SHAPES = "is 8x16x1x1 in the checkpoint but 16x16x1x1 in the network"
SHRINK = ("shrink", "--task", "seg")

CASES = [
    # train: every number range-checked by the parser
    case(*TRAIN, "--lr", "nan", says="--lr"),
    case(*TRAIN, "--lr", "-1", says="positive"),
    case(*TRAIN, "--epochs", "0", says="--epochs"),
    case(*TRAIN, "--seconds", "inf", says="--seconds"),
    case(*TRAIN, "--batch-size", "2.5", says="integer"),
    case(*TRAIN, "--workers", "-1", says="--workers"),
    case(*TRAIN, "--torch-threads", "0", says="--torch-threads"),
    case(*TRAIN, "--threads", "0", says="--threads"),
    case(*TRAIN, "--seed", "-1", says="--seed"),
    case(*TRAIN, "--seed", str(2**40), says="4294967295"),
    # train: scale, sizes, accelerator, genotype
    case("train", "--task", "sr", "--scale", "7", says="2, 3 or 4"),
    case(*TRAIN, "--scale", "3", says="--task sr only"),
    case(*TRAIN, "--input", "99999x99999", says="--input"),
    case("train", "--task", "sr", "--input", "24x32", says="square"),
    case(*TRAIN, "--deploy-input", "99999x99999", says="--deploy-input"),
    case(*TRAIN, "--no-export", "--deploy-input", "64x64", says="--no-export"),
    case(*TRAIN, "--accelerator", "cpu:x", says="unknown accelerator"),
    case(*TRAIN, "--genotype", "S2:bogus", says="bad"),
    # train: the output folder
    case(*TRAIN, "-o", "a-file", says=("a-file is a file", "choose a folder")),
    case(*TRAIN, "-o", "a-file/run", says="a-file is a file, not a folder"),
    case(*TRAIN, "-o", "prev", says=("holds an earlier training", "--resume", "--overwrite")),
    # train: checkpoints that cannot be resumed (the last ones load torch)
    case(*TRAIN, "--resume", "missing.pt", says="does not exist"),
    case(*TRAIN, "--resume", "ckpts", says="is a folder"),
    case(*TRAIN, "--resume", "ckpts/random.pt", says="not an edgenas checkpoint (not a PyTorch"),
    case(*TRAIN, "--resume", "ckpts/empty.pt", says="the file is empty"),
    case(*TRAIN, "--resume", "prev/checkpoint.pt", "--genotype", TINY, says="drop --genotype"),
    case(*TRAIN, "--resume", "ckpts/plain.pt", says="a PyTorch file of another program"),
    case(*TRAIN, "--resume", "ckpts/objects.pt", says="holds Python objects"),
    case(*TRAIN, "--resume", "ckpts/weights-only.pt", says="trained weights only"),
    case(*DEPTH, "--resume", "prev/checkpoint.pt", says="for task segmentation, not depth"),
    case(*TRAIN, "--resume", "ckpts/other-shape.pt", says=("does not fit", SHAPES)),
    case("eval", "--task", "seg", "--checkpoint", "ckpts/other-shape.pt", says=SHAPES),
    # shrink: numbers, scale, sizes, names
    case("shrink", "--task", "sr", "--scale", "7", says="2, 3 or 4"),
    case(*SHRINK, "--scale", "3", says="--task sr only"),
    case(*SHRINK, "--lr", "-1", says="--lr"),
    case(*SHRINK, "--lambda", "nan", says="--lambda"),
    case(*SHRINK, "--warmup", "-1", says="--warmup"),
    case(*SHRINK, "--epsilon", "inf", says="--epsilon"),
    case(*SHRINK, "--expansion", "nan", says="--expansion"),
    case(*SHRINK, "--tokens", "-1", says="--tokens"),
    case(*SHRINK, "--seconds", "0", says="--seconds"),
    case(*SHRINK, "--seed", "-3", says="--seed"),
    case(*SHRINK, "--input", "99999x99999", says="--input"),
    case(*SHRINK, "--deploy-input", "99999x99999", says="--deploy-input"),
    case("shrink", "--task", "sr", "--input", "48x64", says="square"),
    case(*SHRINK, "--name", "../escape", says="plain folder name"),
    case(*SHRINK, "--runs-dir", "a-file", says="is a file"),
    case(*SHRINK, "--accelerator", "tpu", says="unknown accelerator 'tpu'"),
    # shrink to a budget: malformed, both, unreachable, already met (checked on the
    # tiny supernet before the run folder exists)
    case(*SHRINK, "--target-latency", "fast", says=("--target-latency", "30ms")),
    case(*SHRINK, "--target-flops", "-3M", says="--target-flops"),
    case(*SHRINK, "--target-flops", "1M", "--target-latency", "5ms", says="not allowed with"),
    case(*SHRINK, *SHRINK_TINY, "--target-flops", "1k", says=("cannot be reached", "smallest")),
    case(*SHRINK, *SHRINK_TINY, "--target-flops", "1G", says="already met by the unshrunk"),
    # shrink --resume: other settings are refused, not ignored
    case("shrink", "--resume", "runs/paused", "--task", "seg", says="drop --task"),
    case("shrink", "--resume", "runs/paused", "--scale", "3", says="drop --scale"),
    case("shrink", "--resume", "runs/paused", "--lambda", "1", says="drop --lambda"),
    case("shrink", "--resume", "runs/paused", says="no saved state"),
    case("shrink", "--resume", "runs/done", says="has finished"),
    case("shrink", "--resume", "runs/search", says="not a shrink run"),
]


@pytest.mark.parametrize("bad", CASES, ids=lambda c: c.id)
def test_train_and_shrink_refuse_in_one_line_and_write_nothing(bad, workspace):
    check_rejected(bad, workspace)


def test_a_full_disk_is_one_line_before_training(workspace):
    """The checkpoint would not fit (a file size limit stands in for a full disk): one
    line naming the limit, before any training, and nothing written."""
    limit = 20_000  # bytes: less than the TINY network's checkpoint

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    bad = case(*TRAIN, "--genotype", TINY, "--input", "32x40", "-o", "full",
               says=("full/checkpoint.pt", "file size limit"))  # fmt: skip
    check_rejected(bad, workspace, preexec=small_files)


def test_an_interrupted_write_leaves_no_partial_checkpoint(tmp_path):
    """torch.save failing half-way (the file size limit, as on a full disk) is one
    line naming the file, and neither it, a temporary file nor the folder it made is
    left."""
    script = (
        "import resource, torch\n"
        "from edgenas.checkpoint import atomic_save\n"
        "from edgenas.errors import UserError\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))\n"
        "try:\n"
        "    atomic_save({'w': torch.zeros(100_000)}, 'out/model.pt')\n"
        "except UserError as err:\n"
        "    print(err)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("cannot write out/model.pt: the file size limit")
    assert not (tmp_path / "out").exists()  # the folder the write made goes with it


def _start(args, cwd):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HOME": str(cwd)}
    return subprocess.Popen(
        [*edgenas_command(), *args], cwd=cwd, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def _wait_for(process, prefix: str) -> str:
    """Read stdout until a line starting with ``prefix`` (the command says it is there)."""
    for line in process.stdout:
        if line.startswith(prefix):
            return line
    process.wait(timeout=60)
    raise AssertionError(f"no line {prefix!r}; exit {process.returncode}: {process.stderr.read()}")


def test_ctrl_c_in_train_saves_a_checkpoint_and_prints_the_command_that_continues(tmp_path):
    from edgenas.checkpoint import load_checkpoint

    train = _start(
        ["train", "--task", "seg", "--genotype", TINY, "--input", "32x40", "--seconds", "600",
         "--batch-size", "4", "--no-export", "--quiet", "--torch-threads", "1", "-o", "out"],
        tmp_path,
    )  # fmt: skip
    _wait_for(train, "training started")
    train.send_signal(signal.SIGINT)
    _, err = train.communicate(timeout=120)
    assert train.returncode == 130, err
    (line,) = err.strip().splitlines()
    assert line.startswith("edgenas: interrupted; saved out/checkpoint.pt; continue with: ")
    saved = load_checkpoint(tmp_path / "out" / "checkpoint.pt")
    assert saved["budget"] == {"epochs": None, "seconds": 600.0, "steps": None}
    assert not [p.name for p in (tmp_path / "out").iterdir() if p.name != "checkpoint.pt"]

    command = shlex.split(line.split("continue with: ", 1)[1])
    assert command[:2] == ["edgenas", "train"] and "--resume" in command
    # The printed command, with a budget just past what was trained: it continues.
    budget = f"{saved['seconds'] + 0.5:.3f}"
    resumed = subprocess.run(
        [*edgenas_command(), *command[1:], "--seconds", budget], cwd=tmp_path,
        capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "OMP_NUM_THREADS": "1", "HOME": str(tmp_path)},
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert f"training started at step {saved['step']} " in resumed.stdout
    after = load_checkpoint(tmp_path / "out" / "checkpoint.pt")
    assert after["step"] >= saved["step"] and after["seconds"] > saved["seconds"]
    assert (tmp_path / "out" / "metrics.json").is_file()


def test_sigterm_marks_a_shrink_run_interrupted_and_prints_how_to_resume(tmp_path):
    from edgenas.hrnas.session import STATE_FILE
    from edgenas.store import RunStore

    shrink = _start(
        ["shrink", "--task", "seg", *SHRINK_TINY, "--epochs", "50", "--baselines", "none",
         "--runs-dir", "runs", "--name", "r", "--quiet"],
        tmp_path,
    )  # fmt: skip
    _wait_for(shrink, "step 0 (epoch 0)")  # the state is saved before the step is logged
    shrink.send_signal(signal.SIGTERM)
    _, err = shrink.communicate(timeout=120)
    assert shrink.returncode == 143, err
    assert err.strip().splitlines() == [
        "edgenas: interrupted; continue with `edgenas shrink --resume runs/r`"
    ]
    with RunStore.open_readonly(tmp_path / "runs" / "r") as store:
        assert store.run_info().status == "interrupted"
    assert (tmp_path / "runs" / "r" / STATE_FILE).is_file()
