# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests of the report rendering (headline, Markdown, HTML with inline SVG) on real traces."""

from __future__ import annotations

import html.parser
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from ansible_collections.vllm_infra.profiling.plugins.module_utils import _report as R
from ansible_collections.vllm_infra.profiling.plugins.module_utils import _trace as T

FIX = Path(__file__).resolve().parents[3] / "fixtures" / "traces"


@pytest.fixture(scope="module")
def cpu_result() -> dict:
    return T.analyze(str(FIX / "cpu" / "nostack"))


@pytest.fixture(scope="module")
def gpu_result() -> dict:
    return T.analyze(str(FIX / "gpu"), step_regex=r"^token_step_\d+$")


@pytest.fixture(scope="module")
def fleet_result(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("captures")
    shutil.copytree(FIX / "cpu" / "nostack", root / "node-a")
    shutil.copytree(FIX / "cpu" / "detailed", root / "node-b")
    shutil.copytree(FIX / "nsys" / "cpu-2022.4.2", root / "node-b" / "nsys")
    return T.analyze(str(root))


def test_headline_says_steps_times_layers_and_top_ops(cpu_result: dict) -> None:
    line = R.headline(cpu_result, "/r/report.html")
    assert line.startswith("10 steps (1 prefill / 10 tok, 9 decode / 9 tok, 1 empty)")
    assert re.search(r"prefill \d+\.\d\d ms mean; decode \d\.\d\d ms mean, p50 \d\.\d\d ms, p90 \d\.\d\d ms", line)
    assert "2 layers (estimated)" in line
    assert "top ops: " in line and "onednn_mm" in line
    assert line.endswith("report: /r/report.html")
    assert "\n" not in line


def test_headline_prefers_kernels_when_there_are_any(gpu_result: dict) -> None:
    line = R.headline(gpu_result)
    assert "top kernels: " in line and "GPU busy " in line
    assert line.count("%,") == 2  # three kernels with their shares
    # tests/fixtures/traces/gpu holds three separate captures (eager, graph, stack): never merged,
    # the headline is the latest one's and says how many there are.
    assert "latest of 3 captures" in line and "cudaGraphLaunch" not in line
    graph = next(c for c in gpu_result["hosts"][0]["captures"] if c["files"] == ["gpu_graph.pt.trace.json.gz"])
    assert graph["steps"]["graph_replay_steps"] == 10


def test_headline_of_a_fleet(fleet_result: dict) -> None:
    assert R.headline(fleet_result).startswith("2 hosts: 34 steps")


def test_markdown(cpu_result: dict) -> None:
    md = R.render_markdown(cpu_result)
    assert md.startswith("# Trace summary\n")
    assert "| prefill | 1 |" in md and "| decode | 9 |" in md
    assert "## Host nostack" in md
    assert "| _C::onednn_mm | cpu_op | 90 |" in md
    # every table row has as many cells as its header
    for block in re.findall(r"((?:^\|.*\|\n)+)", md, flags=re.M):
        widths = {line.count(" | ") for line in block.splitlines() if not line.startswith("|---") and "---" not in line}
        assert len(widths) == 1, block


def test_markdown_fleet_and_nsys(fleet_result: dict) -> None:
    md = R.render_markdown(fleet_result)
    assert "## Fleet" in md
    assert re.search(r"^\| node-a \| 10 \|", md, flags=re.M)
    assert re.search(r"^\| node-b \| 24 \|", md, flags=re.M)
    assert "### nsys stats: osrtsum" in md and "| clock_nanosleep | 73.1% |" in md
    assert "### nsys stats: gpukernsum" in md and "empty CSV" in md


class _Checker(html.parser.HTMLParser):
    """Tag balance of the HTML (void elements aside) and the text of every <svg>."""

    VOID = frozenset(("meta", "br", "img", "input", "link", "hr"))

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list) -> None:
        pass

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}> with {self.stack[-3:]}")
        else:
            self.stack.pop()


@pytest.mark.parametrize("which", ["cpu_result", "gpu_result", "fleet_result"])
def test_html_is_balanced_and_svgs_are_xml(which: str, request: pytest.FixtureRequest) -> None:
    result = request.getfixturevalue(which)
    page = R.render_html(result)
    checker = _Checker()
    checker.feed(page)
    assert checker.errors == [] and checker.stack == []
    svgs = re.findall(r"<svg .*?</svg>", page, flags=re.S)
    assert svgs
    for svg in svgs:
        root = ET.fromstring(svg)
        assert root.tag.endswith("svg") and float(root.get("width")) > 0
    assert "<script" not in page and "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert page == R.render_html(result)  # deterministic: changed stays honest


def test_step_pictures_have_one_bar_per_step(cpu_result: dict) -> None:
    timeline = cpu_result["summary"]["timeline"]
    bars = ET.fromstring(R.svg_step_durations(timeline))
    rects = [r for r in bars.iter() if r.tag.endswith("rect") and r.find("{*}title") is not None]
    assert len(rects) == len(timeline) == 11
    heights = [float(r.get("height")) for r in rects]
    assert heights[0] == max(heights)  # the prefill step is the peak
    strip = ET.fromstring(R.svg_step_timeline(timeline))
    fills = [r.get("fill") for r in strip.iter() if r.tag.endswith("rect") and r.find("{*}title") is not None]
    assert fills.count(R.PHASE_COLORS["decode"]) == 9 and fills.count(R.PHASE_COLORS["prefill"]) == 1


def test_category_picture(gpu_result: dict) -> None:
    svg = R.svg_categories(gpu_result["summary"]["kernel_categories"])
    root = ET.fromstring(svg)
    texts = [t.text for t in root.iter() if t.tag.endswith("text")]
    assert "GEMM" in texts and "elementwise" in texts
    assert R.svg_categories([]) == ""


def test_names_are_escaped() -> None:
    result = {
        "input": "/x",
        "fleet": False,
        "errors": ["/x/<bad>.json: not JSON"],
        "nsys_reports": [],
        "summary": {"steps": None, "top_kernels": [], "top_ops": [{"name": "a<b>&c", "self_us": 1.0}]},
        "hosts": [
            {
                "host": "h<1>",
                "summary": {
                    "kind": "trace",
                    "top_ops": [{"name": "op<script>", "cat": "cpu_op", "count": 1, "total_us": 1.0, "self_us": 1.0}],
                    "top_kernels": [],
                    "steps": None,
                    "layers": None,
                },
                "traces": [{"label": "t<1>.json", "kind": "trace", "events": 1, "window_us": 1.0}],
                "frontends": [],
                "nsys": [],
            }
        ],
    }
    page = R.render_html(result)
    assert "<script>" not in page and "op&lt;script&gt;" in page and "h&lt;1&gt;" in page
    assert "&lt;bad&gt;" in page
