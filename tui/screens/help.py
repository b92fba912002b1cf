"""The help screen: what the monitor shows and its keys."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

HELP = """\
# edgenas monitor

Reads the run store (`runs/NAME/run.sqlite`) once a second; it never writes to it.
A search can run in another terminal (or under `edgenas search --tui`).

| key | where | does |
|---|---|---|
| `1`..`5` | dashboard | Plots, Candidates, Search (ATS), Events, Device |
| `r` | dashboard | plots against parameters / MACs / latency |
| `b` | dashboard | open the best candidate |
| `l` | dashboard | loss curve of the final training (and the best's proxy training) |
| `s` / `S` | candidates | next sort column / reverse (or click a header) |
| `f` | candidates | all / searched / trained / pool-only candidates |
| `]` / `[` | candidates | next / previous page (100 rows a page) |
| `enter` | candidates, runs | open the candidate / run |
| `x` | candidate | export its ONNX file (background `edgenas export`) |
| `p` | candidate | profile it on the run's device, per layer |
| `c` | candidate | copy the genotype (system clipboard, tmux buffer or OSC 52) |
| `l` | candidate | its loss curve (and its parent's) on the whole screen |
| arrows, `PgUp` `PgDn` `Home` `End` | candidate | scroll |
| `escape` | anywhere | back |
| `?` | anywhere | this help |
| `q` | anywhere | quit |

**Plots** follow the LDP paper's Fig. 9: accuracy A, the resource and the grade
G = a·A + (1-a)·compactness against the training iteration, and the Pareto plane
(accuracy vs resource; green: the front, red x: the best G).
Latencies in the table end in `m` (measured on the device) or `p` (predicted
from the lookup table). The status column `st`: `✓` trained, `·` scored (pool),
`?` proposed (a child not trained), `✗` failed. The genotype column shows a child by
the blocks in which it differs from its parent (`enc2a:k5_res`: block enc2a now has
kernel 5 and a residual), a pool candidate by the op of each block; the candidate
screen shows the whole string. The mouse works: click tabs, rows and column headers.

**Big runs** (a paper-scale pool is 60,000 networks): the table shows a page at a time,
sorted and filtered by the store; the Search tab shows the pool as a histogram of its
scores (steps/s by default, or NASWOT with `--score naswot`; ▲: where the chosen parents fall);
the header shows the pool's scoring progress while it lasts.
"""


class HelpScreen(ModalScreen):
    """Key bindings and what the panels mean."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Close"),
        Binding("question_mark", "app.pop_screen", "Close", show=False),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Markdown(HELP)
