"""Every config mistake gives one line naming the file and the field, and exit code 2."""

from pathlib import Path

import pytest
import yaml
from conftest import ROOT, SI_TEST

from evopot.cli import main

GOOD = {
    "seed": 3,
    "output": "run",
    "data": {"train": str(SI_TEST), "split": {"validation": 0.2}},
    "cutoff": {"radius": 4.5, "onset": 3.5},
    "search_space": "pair",
    "engine": {"population": 8, "generations": 1},
    "fitness": {"frames": 4, "max_evaluations": 5},
}


def write(tmp_path: Path, config: dict, name="config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config))
    return path


def run_cli(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def changed(path: str, value):
    config = yaml.safe_load(yaml.safe_dump(GOOD))
    node = config
    *parents, leaf = path.split(".")
    for key in parents:
        node = node[key]
    node[leaf] = value
    return config


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("cutoff.radius", 0.0, "field 'cutoff.radius': Input should be greater than 0"),
        ("cutoff.radius", -2.0, "field 'cutoff.radius'"),
        ("cutoff.onset", 9.0, "onset (9.0 Å) must be below radius"),
        ("cutoff.function", "sharp", "unknown cutoff function 'sharp'"),
        ("engine.population", 10, "must be a multiple of 4"),
        ("engine.name", "annealing", "engine.name: 'annealing' is unknown; known engines: ['gp', 'guided']"),
        ("species", ["Xx"], "['Xx'] are not element symbols"),
        ("species", ["Ge"], "lists ['Ge'] but the data contains ['Si']"),
        ("data.train", "missing.extxyz", "missing.extxyz: data file not found"),
        ("data.split", {"by": "config_type", "validation": ["Liquid"]}, "empty validation split"),
        ("data.split", {"by": "fraction", "validation": 1.5}, "fraction must be in [0, 1)"),
        ("fitness.forces", -1.0, "field 'fitness.forces'"),
        ("search_space", "nonexistent_space", "search space not found"),
        ("engine.colour", "red", "field 'engine.colour': unknown field"),
    ],
)
def test_config_mistakes_exit_2_with_one_line_naming_file_and_field(tmp_path, capsys, field, value, message):
    path = write(tmp_path, changed(field, value))
    code, out, err = run_cli(["search", path, "--quiet"], capsys)
    assert code == 2
    assert err.startswith("evopot: error: ") and err.count("\n") == 1
    assert message in err
    assert "config.yaml" in err or "extxyz" in err or "search space" in err


def test_malformed_yaml(tmp_path, capsys):
    path = tmp_path / "config.yaml"
    path.write_text("data: [unclosed\n  cutoff: {")
    code, _, err = run_cli(["search", path], capsys)
    assert code == 2 and "config.yaml: malformed YAML" in err and err.count("\n") == 1


def test_missing_config_file(tmp_path, capsys):
    code, _, err = run_cli(["search", tmp_path / "nope.yaml"], capsys)
    assert code == 2 and "nope.yaml: config file not found" in err


def test_unknown_operator_in_search_space(tmp_path, capsys):
    space = yaml.safe_load((ROOT / "search_spaces" / "pair.yaml").read_text())
    space["operators"] = ["add", "mul", "frobnicate"]
    (tmp_path / "space.yaml").write_text(yaml.safe_dump(space))
    path = write(tmp_path, changed("search_space", "space.yaml"))
    code, _, err = run_cli(["search", path], capsys)
    assert code == 2
    assert "space.yaml: field 'operators': unknown operator(s) ['frobnicate']" in err
    assert "known operators" in err


def test_malformed_search_space_yaml(tmp_path, capsys):
    (tmp_path / "space.yaml").write_text("name: x\noperators: [add, mul\n")
    path = write(tmp_path, changed("search_space", "space.yaml"))
    code, _, err = run_cli(["search", path], capsys)
    assert code == 2 and "space.yaml: malformed YAML" in err


def test_existing_run_is_not_overwritten_without_asking(tmp_path, capsys):
    path = write(tmp_path, GOOD)
    assert run_cli(["search", path, "--quiet"], capsys)[0] == 0
    before = (tmp_path / "run" / "front.csv").read_text()
    code, _, err = run_cli(["search", path, "--quiet"], capsys)
    assert code == 2 and "already holds a run" in err and "--resume" in err
    assert (tmp_path / "run" / "front.csv").read_text() == before


def test_search_then_show_prints_the_front(tmp_path, capsys):
    path = write(tmp_path, GOOD)
    code, out, _ = run_cli(["search", path, "--quiet", "--generations", "2"], capsys)
    assert code == 0 and "Pareto front of" in out
    run = tmp_path / "run"
    for name in ("config.yaml", "log.txt", "checkpoint.json", "history.csv", "front.csv", "summary.json"):
        assert (run / name).is_file(), name
    assert list((run / "potentials").glob("member_*.json"))
    code, out, _ = run_cli(["show", run], capsys)
    assert code == 0
    assert "train F-MAE" in out and "valid F-MAE" in out and "formula" in out


def test_show_of_missing_or_corrupt_runs(tmp_path, capsys):
    code, _, err = run_cli(["show", tmp_path / "nowhere"], capsys)
    assert code == 2 and "run directory not found" in err
    (tmp_path / "broken").mkdir()
    code, _, err = run_cli(["show", tmp_path / "broken"], capsys)
    assert code == 2 and "no front file" in err
    (tmp_path / "broken" / "front.csv").write_text("member,complexity\n1,2,3,4\n")
    code, _, err = run_cli(["show", tmp_path / "broken"], capsys)
    assert code == 2 and "corrupt front file" in err
