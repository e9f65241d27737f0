"""The Python API and its open extension points: a search on frames in memory, its
result as sympy, LaTeX and an ASE calculator; engines and export formats chosen from
registries by name."""

from __future__ import annotations

import ase.io
import numpy as np
import pytest
import sympy
import yaml

import evopot
from evopot.cli import main
from evopot.errors import EvopotError
from evopot.export.registry import EXPORTERS, Written, register_exporter
from evopot.model.evaluate import evaluate_atoms
from evopot.search.engines.registry import ENGINES, GP, register_engine
from evopot.testing.rediscovery import PROBLEMS, write_problem

SMALL = {"population": 24, "generations": 3}


def test_search_on_frames_in_memory_equals_the_search_on_their_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    problem = PROBLEMS["lennard-jones"]()
    config_path = write_problem(problem, tmp_path / "file", seed=5, engine=SMALL)
    from_file = evopot.search(config_path, progress=False)
    config = yaml.safe_load(config_path.read_text())
    del config["data"]["train"]
    config["output"] = "memory"
    # the frames as the file holds them (extxyz keeps 8 decimals of the positions)
    frames = ase.io.read(tmp_path / "file" / "data.extxyz", ":")
    in_memory = evopot.search(config, progress=False, train=frames)
    assert (in_memory.run_directory / "front.csv").read_text() == (from_file.run_directory / "front.csv").read_text()
    # the frames are kept with the run: it resumes from its own folder
    saved = yaml.safe_load((in_memory.run_directory / "config.yaml").read_text())
    assert saved["data"]["train"] == str(in_memory.run_directory / "data" / "train.extxyz")
    resumed = evopot.search(in_memory.run_directory / "config.yaml", resume=True, progress=False)
    assert [m.formula for m in resumed.front] == [m.formula for m in in_memory.front]

    member = in_memory.recommended()
    (expression,) = in_memory.sympy()
    r = sympy.Symbol("r")
    for x in (2.5, 3.3, 4.1):
        assert float(expression.subs(r, x)) == pytest.approx(float(member.potential.terms[0].numeric().subs(r, x)))
    assert in_memory.latex().startswith("V(r) = ")
    atoms = problem.frames(1).atoms[0].copy()
    atoms.calc = in_memory.calculator()
    energy, forces = evaluate_atoms(member.potential, atoms)
    assert atoms.get_potential_energy() == pytest.approx(energy, abs=1e-9)
    assert np.abs(atoms.get_forces() - forces).max() < 1e-9
    with pytest.raises(EvopotError, match="no front member 99"):
        in_memory.latex(member=99)


def test_frames_without_labels_are_refused_with_the_field(tmp_path):
    from ase.build import bulk

    config = {"cutoff": {"radius": 5.0}, "output": str(tmp_path / "run")}
    with pytest.raises(EvopotError, match=r"config: data.train: frame 0 has no energy"):
        evopot.search(config, progress=False, train=[bulk("Ar", "fcc", 5.26)])
    with pytest.raises(EvopotError, match=r"data.train: no training data"):
        evopot.search(config, progress=False)
    assert not (tmp_path / "run").exists()


def test_an_unknown_engine_is_refused_before_anything_is_written(tmp_path):
    config_path = write_problem(PROBLEMS["lennard-jones"](), tmp_path, seed=1, engine={"name": "annealing"})
    with pytest.raises(EvopotError, match=r"engine.name: 'annealing' is unknown; known engines: \['gp', 'guided'\]"):
        evopot.search(config_path, progress=False)
    assert not (tmp_path / "run_seed1").exists()


def test_a_registered_engine_runs_by_its_name(tmp_path, monkeypatch):
    started = []

    class Recording(GP):
        def start(self, setup):
            started.append(setup.config.engine.name)
            return super().start(setup)

    monkeypatch.setitem(ENGINES, "recording", None)
    register_engine("recording", Recording())
    config_path = write_problem(PROBLEMS["lennard-jones"](), tmp_path, seed=1, engine={**SMALL, "name": "recording"})
    result = evopot.search(config_path, progress=False)
    assert started == ["recording"] and result.front


def test_export_formats_come_from_the_registry(tmp_path, monkeypatch, capsys):
    from conftest import pair_potential

    potential = pair_potential("A/r**12 - B/r**6", {"A": 2000.0, "B": 40.0})
    potential.save(tmp_path / "p.json")
    assert main(["export", "--potential", str(tmp_path / "p.json"), "--format", "gromacs", "--out", "x"]) == 2
    assert "--format gromacs: unknown export format; known formats: ['lammps']" in capsys.readouterr().err

    class Json:
        target = "JSON"

        def write(self, potential, folder, options):
            folder.mkdir(parents=True, exist_ok=True)
            potential.save(folder / "copy.json")
            return Written(folder, ["copy.json"])

    monkeypatch.setitem(EXPORTERS, "json", None)
    register_exporter("json", Json())
    out = tmp_path / "out"
    assert main(["export", "--potential", str(tmp_path / "p.json"), "--format", "json", "--out", str(out)]) == 0
    assert "for JSON" in capsys.readouterr().out
    assert evopot.Potential.load(out / "copy.json") == potential
