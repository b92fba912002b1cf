"""What the monitor shows and its keys (issue 16): genotypes by their differing blocks,
block names per layer, keys without Tab, the clipboard's honest message, loss curves,
the exit message. Driven by Textual's Pilot on the fixture runs of tui_helpers."""

from __future__ import annotations

import json
import os
import stat

from edgenas.tui import clipboard, jobs
from edgenas.tui.genotypes import changes, describe, outline
from edgenas.tui.outputs import exit_lines
from edgenas.tui.screens.candidate import CandidateScreen
from edgenas.tui.screens.loss import LossScreen
from edgenas.tui.widgets.candidates import CandidatesTable
from edgenas.tui.widgets.plot import SpecPlot
from test_tui_app import _header_text, async_test, opened, text_of, wait_until
from tui_helpers import write_ldp_run, write_shrink_run

BLOCKS = [
    "ib3_k5_se0_res_c32_n1", "ib3_k3_se25_nores_c24_n3", "conv_k5_se25_nores_c24_n3",
    "ds_k3_se0_res_c24_n2", "conv_k5_se0_nores_c32_n2", "micro_k5_se0_res_c16_n2",
    "ds_k3_se25_nores_c16_n1", "conv_k3_se25_res_c24_n2", "conv_k5_se0_res_c8_n3",
    "ds_k5_se0_nores_c16_n1", "conv_k5_se0_nores_c32_n3", "micro_k3_se0_nores_c24_n3",
]  # fmt: skip
PARENT = "S2:" + "-".join(BLOCKS)


def _with(index: int, block: str) -> str:
    blocks = list(BLOCKS)
    blocks[index] = block
    return "S2:" + "-".join(blocks)


def test_children_that_share_a_long_prefix_are_told_apart_by_their_blocks():
    # Two children of one parent that differ only in their last blocks: cut to a shared
    # prefix they looked the same; by their changed blocks they do not.
    a = _with(11, "micro_k5_se0_nores_c24_n3")
    b = _with(10, "ds_k5_se0_nores_c32_n3")
    assert describe(a, PARENT) == "ref1:k5" and describe(b, PARENT) == "dec1b:ds"
    swapped = _with(3, "conv_k5_se0_nores_c24_n2")
    swapped = swapped.replace("conv_k5_se0_nores_c32_n2", "ds_k3_se0_res_c32_n2")
    assert [c.name for c in changes(swapped, PARENT)] == ["enc2a", "enc2b"]
    assert describe(PARENT, PARENT) == "="
    assert outline(PARENT).startswith("S2 ib3 ib3 conv ds conv micro")  # no parent
    assert describe("S3:x", PARENT) == "S3:x"  # not comparable: shown as it is
    hr_a = "hrnas(w8,b1,d1,r2,t4,ft0,s8,h1):16/16/8/1,32/24/24/0"
    hr_b = "hrnas(w8,b1,d1,r2,t4,ft0,s8,h1):16/16/8/1,32/12/24/0"
    assert describe(hr_b, hr_a, names=("p0", "f0.r01")) == "f0.r01:k5=12"


@async_test
async def test_the_candidates_table_and_the_search_tab_show_the_differing_blocks(tmp_path):
    async with opened(write_ldp_run(tmp_path / "run"), size=(80, 24)) as (app, pilot):
        state = app.screen.state
        rows = {r.id: r for r in state.rows}
        await pilot.press("2")
        table = app.screen.query_one(CandidatesTable)
        await wait_until(pilot, lambda: table.row_count == state.counts.total, "the candidates")
        children = [r for r in state.rows if r.parent_id is not None]
        shown = {r.id: str(table.get_cell(str(r.id), "genotype")) for r in children}
        for child in children:
            parent = rows[child.parent_id].genotype
            diff = changes(child.genotype, parent)
            assert shown[child.id].startswith(diff[0].name + ":")  # the changed block first
        assert len(set(shown.values())) == len(shown)  # no two children look the same
        await pilot.press("3")
        panel = text_of(app.screen.query_one("#search-panel"))
        current = state.ats.current_genotype
        for child in state.ats.children:
            assert describe(child.genotype, current)[:20] in panel


@async_test
async def test_candidate_screen_scrolls_with_keys_at_once_and_names_the_changed_blocks(tmp_path):
    async with opened(write_ldp_run(tmp_path / "run"), size=(80, 24)) as (app, pilot):
        await pilot.press("b")
        await wait_until(pilot, lambda: isinstance(app.screen, CandidateScreen), "detail")
        screen = app.screen
        body = screen.query_one("#detail-body")
        await pilot.pause()
        assert body.max_scroll_y > 0  # 80x24 does not hold it all
        await pilot.press("end")  # no Tab first
        await wait_until(pilot, lambda: body.scroll_y == body.max_scroll_y, "End")
        await pilot.press("home")
        await wait_until(pilot, lambda: body.scroll_y == 0, "Home")
        await pilot.press("pagedown")
        await wait_until(pilot, lambda: body.scroll_y > 0, "Page Down")
        row, parent = screen.row, screen.parent_row
        names = [c.name for c in changes(row.genotype, parent.genotype)]
        title = text_of(screen.query_one("#detail-title"))
        assert f"vs parent #{parent.id}: {names[0]}:" in title
        # The whole genotype string is there, block by block.
        shown = "".join(text_of(screen.query_one("#genotype")).split())
        assert row.genotype in shown


@async_test
async def test_copy_says_how_it_copied_or_that_it_could_not(tmp_path, monkeypatch):
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "TMUX", "WSL_DISTRO_NAME"):
        monkeypatch.delenv(name, raising=False)
    async with opened(write_ldp_run(tmp_path / "run"), size=(80, 24)) as (app, pilot):
        await pilot.press("b")
        await wait_until(pilot, lambda: isinstance(app.screen, CandidateScreen), "detail")
        await pilot.press("c")
        log = app.screen.query_one("#job-log")
        assert "copied via OSC 52: your terminal must allow it" in log.lines[-1].text
        assert app.clipboard == app.screen.row.genotype
    # No terminal to send OSC 52 to and no clipboard tool: it says so.
    copied, message = clipboard.copy(object(), "S2:x", environ={"PATH": str(tmp_path)})
    assert not copied and message.startswith("could not copy")


def test_copy_uses_the_system_clipboard_tool_where_there_is_a_display(tmp_path):
    # A stand-in for xclip that keeps what it was given (the real one needs an X server).
    tool = tmp_path / "xclip"
    tool.write_text(f"#!/bin/sh\ncat > {tmp_path / 'clip.txt'}\n")
    tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    environ = {"DISPLAY": ":0", "PATH": f"{tmp_path}{os.pathsep}/usr/bin:/bin"}
    copied, message = clipboard.copy(object(), "S2:genotype", environ=environ)
    assert copied and message == "copied to the system clipboard (xclip)"
    assert (tmp_path / "clip.txt").read_text() == "S2:genotype"


@async_test
async def test_loss_curves_of_a_candidate_and_of_the_final_training(tmp_path):
    async with opened(write_ldp_run(tmp_path / "run"), size=(80, 24)) as (app, pilot):
        await pilot.press("l")
        await wait_until(pilot, lambda: isinstance(app.screen, LossScreen), "final loss")
        labels = [s.label for s in app.screen.spec.series]
        assert labels[0] == "final training" and len(app.screen.spec.series[0].xs) == 60
        await pilot.press("escape", "b")
        await wait_until(pilot, lambda: isinstance(app.screen, CandidateScreen), "detail")
        screen = app.screen
        inline = screen.query_one("#loss-plot", SpecPlot)._spec
        assert [s.label for s in inline.series] == [
            f"#{screen.row.id}",
            f"parent #{screen.parent_row.id}",
        ]
        await pilot.press("l")
        await wait_until(pilot, lambda: isinstance(app.screen, LossScreen), "loss view")
        assert app.screen.spec.series[0].ys == tuple(p[1] for p in screen.row.loss_history)


def test_the_per_layer_table_names_each_layer_s_block(tmp_path):
    assert jobs.layer_block("/backbone/enc1b/enc1b.1/body/body.2/act/Relu") == (
        "enc1b",
        "1/body/body.2/act/Relu",
    )
    assert jobs.layer_block("/head/Conv") == ("head", "Conv")
    assert jobs.layer_block("Conv_3") == ("-", "Conv_3")
    path = jobs.latency_path(tmp_path, 4)
    path.parent.mkdir(parents=True)
    layers = [
        {"name": "/backbone/up2/block/block.1/body/Conv", "op_type": "Conv", "time_ms": 0.5},
        {"name": "/x/Add", "op_type": "Add", "time_ms": 0.1, "block": "dec1a"},  # given
    ]
    path.write_text(json.dumps({"layers": layers, "timings": {"median_ms": 1.0}}))
    profile = jobs.read_profile(tmp_path, 4)
    assert [layer.block for layer in profile.layers] == ["up2", "dec1a"]


@async_test
async def test_shrink_runs_show_lambda_under_the_shrink_settings(tmp_path):
    async with opened(write_shrink_run(tmp_path / "shrink"), size=(80, 24)) as (app, _):
        header = _header_text(app)
        assert "shrink cost flops λ=0.0001" in header and "targets" not in header


def test_the_exit_message_names_the_model_and_the_report(tmp_path):
    run = write_ldp_run(tmp_path / "run")
    assert exit_lines(run) == []  # finished, but no model written: nothing to point at
    (run / "best.onnx").write_bytes(b"onnx")
    (run / "best.pt").write_bytes(b"pt")
    (run / "report.md").write_text("# report")
    assert exit_lines(run) == [
        f"model:  {run / 'best.onnx'}  (weights {run / 'best.pt'})",
        f"report: {run / 'report.md'}",
    ]
    pool = write_ldp_run(tmp_path / "pool", finished=False)
    assert exit_lines(pool) == []
    (line,) = exit_lines(pool, always=True)
    assert "when it finishes" in line and str(pool / "report.md") in line
