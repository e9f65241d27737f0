"""``evopot show`` (table, LaTeX, one member, JSON) and ``evopot report`` (HTML + PNGs)."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess

import pytest
from test_config_cli import GOOD, write

from evopot.cli import main

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    config = dict(GOOD, data={**GOOD["data"], "split": {"by": "fraction", "validation": 0.2, "test": 0.2}})
    assert main(["search", str(write(folder, config)), "--quiet", "--generations", "2"]) == 0
    return folder / "run"


def test_show_member_latex_and_json(run_dir, capsys):
    capsys.readouterr()
    assert main(["show", str(run_dir), "--member", "0"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("member 0 of") and "term 0: pair (all species)" in out and "V(r) = " in out
    assert "linear coefficient, solved exactly by least squares" in out
    assert main(["show", str(run_dir), "--latex"]) == 0
    latex = capsys.readouterr().out
    assert "% member 0" in latex and "V(r) = " in latex
    assert main(["show", str(run_dir), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    rows = list(csv.DictReader((run_dir / "front.csv").open()))
    assert [m["member"] for m in data["front"]] == [int(r["member"]) for r in rows]
    assert data["front"][0]["potential_json"]["format"] == "evopot-potential"
    assert main(["show", str(run_dir), "--member", "99"]) == 2
    assert "no member 99" in capsys.readouterr().err


def test_report_writes_html_whose_numbers_are_those_of_front_csv(run_dir, tmp_path, capsys):
    assert main(["report", str(run_dir), "--output", str(tmp_path)]) == 0
    page = (tmp_path / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    images = re.findall(r'<img src="([^"]+)"', page)
    assert {"pareto_front.png", "parity.png", "history.png", "term_0.png"} <= set(images)
    for name in images:
        assert "/" not in name and (tmp_path / name).read_bytes()[:8] == PNG  # local files only: no network needed
    assert not re.search(r"(src|href)=\"(https?:)?//", page)  # nothing fetched at view time
    cells = [c for c in re.findall(r"<tr(?: class=\"chosen\")?>(.*?)</tr>", page) if "<th>" not in c]
    rows = list(csv.DictReader((run_dir / "front.csv").open()))
    assert len(cells) == len(rows)
    for row, html_row in zip(rows, cells):
        numbers = [float(x) for x in re.findall(r"<td>([-+0-9.eE]+)</td>", html_row)]
        expected = [
            float(row[k])
            for k in (
                "member",
                "complexity",
                "operations_per_atom",
                "train_force_mae",
                "validation_force_mae",
                "test_force_mae",
                "train_energy_mae",
                "validation_energy_mae",
                "test_energy_mae",
            )
        ]
        assert numbers == expected


def test_report_of_a_missing_or_corrupt_run_is_one_line(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nowhere")]) == 2
    assert "run directory not found" in capsys.readouterr().err
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "front.csv").write_text("garbage\n")
    assert main(["report", str(tmp_path / "broken")]) == 2
    assert "corrupt front file" in capsys.readouterr().err


@pytest.mark.slow
def test_report_renders_in_headless_chromium(run_dir, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium not installed (make browser, or apt-get install chromium)")
    assert main(["report", str(run_dir), "--output", str(tmp_path)]) == 0
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--screenshot={shot}",
            "--window-size=1200,2400",
            (tmp_path / "report.html").as_uri(),
        ],
        check=True,
        timeout=120,
        capture_output=True,
    )
    assert shot.read_bytes()[:8] == PNG and shot.stat().st_size > 20_000
