"""Every bad input a clean error (issue 33): exit status 2, one line naming the file
and the field, no traceback, no hang, nothing written.

Each case builds a small valid config and data file, spoils one thing, runs the
command in-process (under an alarm, so a hang fails the test rather than the suite)
and checks what came back and that no run directory or output file was left behind.
"""

from __future__ import annotations

import json
from pathlib import Path

import ase.io
import numpy as np
import pytest
import yaml
from conftest import SI_TEST, within

from evopot.cli import main

#: seconds a bad input may take before it counts as a hang
LIMIT = 60


def good_config(data: Path) -> dict:
    return {
        "seed": 3,
        "output": "run",
        "data": {"train": str(data), "split": {"validation": 0.25}},
        "cutoff": {"radius": 4.5, "onset": 3.5},
        "search_space": "pair",
        "engine": {"population": 8, "generations": 1},
        "fitness": {"frames": 4, "max_evaluations": 5},
    }


@pytest.fixture(scope="module")
def frames():
    return ase.io.read(SI_TEST, ":8")


@pytest.fixture
def folder(tmp_path, frames):
    ase.io.write(tmp_path / "data.extxyz", frames)
    return tmp_path


def run(args, capsys) -> tuple[int, str]:
    """Exit code and stderr of ``evopot ARGS``, failing on a hang."""
    with within(LIMIT, f"evopot {' '.join(map(str, args))}"):
        code = main([str(a) for a in args])
    _, err = capsys.readouterr()
    return code, err


def refused(args, capsys, message: str, *names: str) -> str:
    """Run; assert exit 2, one line starting 'evopot: error: ' with ``message`` and
    each of ``names`` (the file, the field) in it."""
    code, err = run(args, capsys)
    assert code == 2, err
    assert err.startswith("evopot: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    assert message in err, err
    for name in names:
        assert name in err, err
    return err


def write_config(folder: Path, config: dict | str | bytes, name: str = "config.yaml") -> Path:
    path = folder / name
    if isinstance(config, bytes):
        path.write_bytes(config)
    else:
        path.write_text(config if isinstance(config, str) else yaml.safe_dump(config))
    return path


def set_field(config: dict, field: str, value) -> dict:
    node = config
    *parents, leaf = field.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = value
    return config


# --- config files -------------------------------------------------------------------

RAW_CONFIGS = {
    "binary": (b"\x00\x01\x02\xff\xfe" * 40, "not a text file"),
    "latin-1": ("seed: 1\n# caf\xe9\n".encode("latin-1"), "not UTF-8"),
    "nested lists": ("a: " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
    "nested maps": ("a: " + "{b: " * 3000 + "1" + "}" * 3000 + "\n", "nested too deeply"),
    "int tag": ("seed: !!int abc\n", "malformed YAML"),
    "python tag": ("seed: !!python/object/apply:os.system ['true']\n", "malformed YAML"),
    "duplicate keys": ("seed: 1\nseed: 2\n", "duplicate key 'seed'"),
    "not a mapping": ("- 1\n- 2\n", "must be a mapping"),
    "empty": ("", "is empty"),
}


@pytest.mark.parametrize("case", RAW_CONFIGS, ids=list(RAW_CONFIGS))
def test_unreadable_configs(folder, capsys, case):
    content, message = RAW_CONFIGS[case]
    path = write_config(folder, content)
    refused(["search", path, "--quiet"], capsys, message, "config.yaml")
    assert not (folder / "run").exists()


def test_duplicate_keys_inside_a_section_name_the_section(folder, capsys):
    text = yaml.safe_dump(good_config(folder / "data.extxyz")) + ""
    text = text.replace("cutoff:\n", "cutoff:\n  radius: 4.0\n", 1)
    refused(["search", write_config(folder, text), "--quiet"], capsys, "duplicate key 'radius'", "config.yaml")


FIELDS = {
    "nan cutoff": ("cutoff.radius", float("nan"), "cutoff.radius"),
    "inf cutoff": ("cutoff.radius", float("inf"), "cutoff.radius"),
    "huge cutoff": ("cutoff.radius", 1e6, "cutoff.radius"),
    "nan onset": ("cutoff.onset", float("nan"), "cutoff.onset"),
    "huge population": ("engine.population", 10**30, "engine.population"),
    "float population": ("engine.population", 1e30, "engine.population"),
    "huge generations": ("engine.generations", 10**12, "engine.generations"),
    "negative generations": ("engine.generations", -1, "engine.generations"),
    "negative seed": ("seed", -1, "seed"),
    "huge seed": ("seed", 2**70, "seed"),
    "string weight": ("fitness.forces", "heavy", "fitness.forces"),
    "nan weight": ("fitness.energies", float("nan"), "fitness.energies"),
    "inf weight": ("fitness.forces", float("inf"), "fitness.forces"),
    "huge frames": ("fitness.frames", 10**15, "fitness.frames"),
    "negative evaluations": ("fitness.max_evaluations", -3, "fitness.max_evaluations"),
    "species not a list": ("species", "Si", "species"),
    "data as number": ("data.train", 7, "data.train"),
    "split as string": ("data.split", "half", "data.split"),
    "time budget nan": ("engine.time_limit", float("nan"), "engine.time_limit"),
}


@pytest.mark.parametrize("case", FIELDS, ids=list(FIELDS))
def test_bad_values_name_their_field(folder, capsys, case):
    field, value, name = FIELDS[case]
    config = set_field(good_config(folder / "data.extxyz"), field, value)
    refused(["search", write_config(folder, config), "--quiet"], capsys, "", "config.yaml", name)
    assert not (folder / "run").exists()


# --- data files ---------------------------------------------------------------------


def spoil_data(folder: Path, frames, how: str) -> Path:
    path = folder / "data.extxyz"
    text = path.read_text()
    lines = text.splitlines()
    if how == "binary":
        path.write_bytes(b"\x89PNG\x00\x00" + bytes(range(256)) * 4)
    elif how == "latin-1":
        path.write_bytes(text.replace("Si ", "S\xed ", 1).encode("latin-1"))
    elif how == "nan position":
        lines[2] = lines[2].replace(lines[2].split()[1], "nan", 1)
        path.write_text("\n".join(lines) + "\n")
    elif how == "text energy":
        path.write_text(text.replace("energy=", "energy=abc", 1).replace("energy=abc-", "energy=abc", 1))
    elif how == "extra column":
        lines[3] = lines[3] + "  1.0"
        path.write_text("\n".join(lines) + "\n")
    elif how == "truncated":
        path.write_text("\n".join(lines[: len(lines) // 3 + 1]) + "\n")
    elif how in ("coincident", "isolated", "nan energy", "no forces"):
        atoms = [a.copy() for a in frames]
        for a, original in zip(atoms, frames):
            a.calc = original.calc
        first = atoms[0]
        energy, forces = first.get_potential_energy(), first.get_forces()
        if how == "coincident":
            first.positions[1] = first.positions[0]
        elif how == "isolated":  # every frame: no atom has a neighbour within the cutoff
            for a in atoms:
                a.set_cell(np.eye(3) * 12.0 * (len(a) + 1))
                a.positions = np.arange(len(a))[:, None] * np.array([12.0, 12.0, 12.0])
        elif how == "nan energy":
            energy = float("nan")
        from ase.calculators.singlepoint import SinglePointCalculator

        if how == "no forces":
            first.calc = SinglePointCalculator(first, energy=energy)
        elif how == "isolated":
            for a, original in zip(atoms, frames):
                a.calc = SinglePointCalculator(a, energy=original.get_potential_energy(), forces=original.get_forces())
        else:
            first.calc = SinglePointCalculator(first, energy=energy, forces=forces)
        ase.io.write(path, atoms)
    elif how == "directory":
        path.unlink()
        path.mkdir()
    elif how == "empty":
        path.write_text("")
    return path


DATA = {
    "binary": "data.extxyz",
    "latin-1": "data.extxyz",
    "nan position": "not finite",
    "text energy": "data.extxyz",
    "extra column": "data.extxyz",
    "truncated": "data.extxyz",
    "coincident": "closer than",
    "isolated": "has a neighbour within cutoff.radius",
    "nan energy": "not finite",
    "no forces": "forces",
    "directory": "is a directory",
    "empty": "data.extxyz",
}


@pytest.mark.parametrize("how", DATA, ids=list(DATA))
def test_bad_data_files(folder, frames, capsys, how):
    path = spoil_data(folder, frames, how)
    config = write_config(folder, good_config(path))
    refused(["search", config, "--quiet"], capsys, DATA[how], "data.extxyz", "data.train")
    assert not (folder / "run").exists()


# --- search spaces ------------------------------------------------------------------

SPACES = {
    "infinite constants": ({"constants": {"low": -1.0, "high": float("inf")}}, "constants"),
    "reversed constants": ({"constants": {"low": 3.0, "high": -3.0}}, "constants"),
    "heights out of order": ({"limits": {"init_min_height": 4, "init_max_height": 2}}, "init_min_height"),
    "initial height beyond the limit": ({"limits": {"init_max_height": 9, "max_height": 7}}, "max_height"),
    "huge height": ({"limits": {"max_height": 10**6}}, "max_height"),
    "huge size": ({"limits": {"max_nodes": 10**9}}, "max_nodes"),
    "unknown operator": ({"operators": ["add", "frobnicate"]}, "operators"),
}


@pytest.mark.parametrize("case", SPACES, ids=list(SPACES))
def test_bad_search_spaces(folder, capsys, case):
    from conftest import ROOT

    change, field = SPACES[case]
    space = yaml.safe_load((ROOT / "search_spaces" / "pair.yaml").read_text())
    for key, value in change.items():
        if isinstance(value, dict) and isinstance(space.get(key), dict):
            space[key].update(value)
        else:
            space[key] = value
    (folder / "space.yaml").write_text(yaml.safe_dump(space))
    config = set_field(good_config(folder / "data.extxyz"), "search_space", "space.yaml")
    refused(["search", write_config(folder, config), "--quiet"], capsys, "", "space.yaml", field)
    assert not (folder / "run").exists()


# --- output paths -------------------------------------------------------------------


def test_an_output_path_that_is_a_file(folder, capsys):
    (folder / "run").write_text("precious")
    refused(["search", write_config(folder, good_config(folder / "data.extxyz")), "--quiet"], capsys, "not a folder")
    assert (folder / "run").read_text() == "precious"


def test_an_output_inside_a_file(folder, capsys):
    (folder / "file").write_text("precious")
    config = set_field(good_config(folder / "data.extxyz"), "output", "file/run")
    refused(["search", write_config(folder, config), "--quiet"], capsys, "not a folder", "output")


# --- an existing run ----------------------------------------------------------------


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, frames):
    folder = tmp_path_factory.mktemp("finished")
    ase.io.write(folder / "data.extxyz", frames)
    config = write_config(folder, good_config(folder / "data.extxyz"))
    assert main(["search", str(config), "--quiet", "--generations", "2"]) == 0
    return folder, config


def copy_run(finished_run, tmp_path) -> tuple[Path, Path]:
    import shutil

    folder, _ = finished_run
    shutil.copytree(folder, tmp_path / "copy")
    for path in (tmp_path / "copy" / "config.yaml", tmp_path / "copy" / "run" / "config.yaml"):  # paths moved too
        path.write_text(path.read_text().replace(str(folder), str(tmp_path / "copy")))
    config = tmp_path / "copy" / "config.yaml"
    return tmp_path / "copy" / "run", config


CHECKPOINTS = {
    "empty object": "{}",
    "list": "[]",
    "number": "3",
    "wrong types": None,  # generation as a string
    "bad rng": None,
    "bad archive": None,
    "binary": b"\x00\xff" * 20,
}


@pytest.mark.parametrize("case", CHECKPOINTS, ids=list(CHECKPOINTS))
def test_malformed_checkpoints_refuse_to_resume(finished_run, tmp_path, capsys, case):
    run_dir, config = copy_run(finished_run, tmp_path)
    checkpoint = run_dir / "checkpoint.json"
    content = CHECKPOINTS[case]
    if content is None:
        data = json.loads(checkpoint.read_text())
        if case == "wrong types":
            data["generation"] = "two"
        elif case == "bad rng":
            data["random_state"] = [1, 2, 3]
        else:
            data["archive"] = [{"trees": 5}]
        content = json.dumps(data)
    if isinstance(content, bytes):
        checkpoint.write_bytes(content)
    else:
        checkpoint.write_text(content)
    front = (run_dir / "front.csv").read_text()
    refused(["search", config, "--quiet", "--resume", "--generations", "3"], capsys, "checkpoint", "checkpoint.json")
    assert (run_dir / "front.csv").read_text() == front


@pytest.mark.parametrize("name", ["front.csv", "history.csv", "summary.json"])
def test_binary_run_files(finished_run, tmp_path, capsys, name):
    run_dir, _ = copy_run(finished_run, tmp_path)
    (run_dir / name).write_bytes(b"\x00\xff\xfe" * 30)
    if name == "front.csv":
        refused(["show", run_dir], capsys, "", name)
    code, err = run(["report", run_dir, "--output", tmp_path / "report"], capsys)
    assert code in (0, 2) and "Traceback" not in err
    if code == 2:
        assert name in err and err.count("\n") == 1
        assert not (tmp_path / "report").exists() or not list((tmp_path / "report").glob("*.png"))


# --- md -----------------------------------------------------------------------------


def test_md_inputs(finished_run, tmp_path, capsys):
    folder, _ = finished_run
    run_dir = folder / "run"
    structure = tmp_path / "si.extxyz"
    from ase.build import bulk

    ase.io.write(structure, bulk("Si", "diamond", 5.43, cubic=True))
    base = ["md", run_dir, structure, "--steps", "2", "--quiet"]
    refused([*base, "--device", "bogus"], capsys, "--device", "bogus")
    refused([*base, "--repeat", "0", "0", "0"], capsys, "--repeat")
    refused([*base, "--repeat", "100000", "100000", "100000"], capsys, "--repeat")
    refused([*base, "--thermostat", "langevin", "--friction", "-1"], capsys, "--friction")
    refused([*base, "--dt", "nan"], capsys, "--dt")
    refused([*base, "--temperature", "-5"], capsys, "--temperature")
    refused([*base, "--steps", "-1"], capsys, "--steps")
    refused([*base, "--trajectory", tmp_path / "missing" / "traj.extxyz"], capsys, "--trajectory", "missing")
    refused(["md", run_dir, tmp_path / "nope.extxyz", "--steps", "2"], capsys, "nope.extxyz")
    (tmp_path / "junk.extxyz").write_bytes(b"\x00\xff" * 50)
    refused(["md", run_dir, tmp_path / "junk.extxyz", "--steps", "2"], capsys, "junk.extxyz")


def test_a_potential_that_divides_by_zero(finished_run, tmp_path, capsys):
    folder, _ = finished_run
    member = sorted((folder / "run" / "potentials").glob("member_*.json"))[0]
    data = json.loads(member.read_text())
    data["terms"][0]["expression"] = "1/(r - r)"
    (tmp_path / "zero.json").write_text(json.dumps(data))
    refused(["show", tmp_path / "zero.json"], capsys, "", "zero.json")


def test_a_potential_whose_term_names_another_species(finished_run, tmp_path, capsys):
    folder, _ = finished_run
    member = sorted((folder / "run" / "potentials").glob("member_*.json"))[0]
    data = json.loads(member.read_text())
    data["terms"][0]["species"] = ["Ge", "Ge"]
    (tmp_path / "ge.json").write_text(json.dumps(data))
    refused(["show", tmp_path / "ge.json"], capsys, "not among the potential's species", "ge.json", "terms[0].species")


def test_a_hybrid_whose_weights_lie_outside_its_folder(finished_run, tmp_path, capsys):
    folder, _ = finished_run
    member = sorted((folder / "run" / "potentials").glob("member_*.json"))[0]
    data = json.loads(member.read_text())
    data["metadata"]["correction"] = {"weights": "../../etc/passwd", "ensemble": 1, "hidden": [4]}
    (tmp_path / "h.json").write_text(json.dumps(data))
    refused(["show", tmp_path / "h.json"], capsys, "own folder", "h.json", "correction.weights")


@pytest.mark.parametrize(
    "content, message",
    [
        ("[" * 100_000 + "]" * 100_000, "not a valid JSON potential"),
        (b"\x89PNG\x00\xff" * 20, "not a valid JSON potential"),
        ('{"format": "evopot-potential"}', "format_version"),
        ("[]", "not an evopot potential"),
    ],
    ids=["nested", "binary", "no version", "a list"],
)
def test_unreadable_potential_files(tmp_path, capsys, content, message):
    path = tmp_path / "p.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    refused(["show", path], capsys, message, "p.json")
