"""``evopot data``: the samplers keep their promises (minimum distance, density,
strain), frames are labelled by the reference calculator and appended one by one, a
run killed with SIGKILL and run again ends with the frames of a clean run (none lost,
none twice), and every input a user can get wrong is one clear line."""

from __future__ import annotations

import csv
import io
import json
import signal
import subprocess
import sys
import time

import ase.io
import numpy as np
import pytest
import yaml
from ase.calculators.emt import EMT
from ase.geometry import get_distances

from evopot.cli import main
from evopot.config.generation import RandomSampler, load_generation_config
from evopot.data.store import FrameStore
from evopot.data.structures import sample
from evopot.errors import EvopotError
from evopot.learn.generate import generate

CU = {
    "output": "cu.extxyz",
    "species": ["Cu"],
    "reference": {"calculator": "emt"},
    "workers": 1,
    "sampling": [
        {"kind": "crystal", "structure": "fcc", "a": 3.6, "frames": 6, "rattle": 0.1, "strain": 0.04},
        {"kind": "random", "atoms": [6, 12], "density": [0.06, 0.08], "min_distance": 2.0, "frames": 6},
        {"kind": "vacancy", "structure": "fcc", "a": 3.6, "frames": 2},
        {"kind": "surface", "structure": "fcc", "a": 3.6, "miller": [1, 1, 1], "frames": 2},
    ],
}


def write_config(folder, **changes):
    config = {**CU, **changes}
    path = folder / "data.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def by_key(path) -> dict:
    return {a.info["evopot_key"]: a for a in ase.io.read(path, ":")}


def test_random_cells_keep_their_distance_density_and_composition():
    sampler = RandomSampler(
        kind="random", atoms=(5, 20), density=(0.05, 0.07), min_distance=2.0, frames=30, composition={"Cu": 3, "Al": 1}
    )
    for k in range(30):
        atoms = sample(sampler, ["Cu", "Al"], seed=3, k=k)
        assert 5 <= len(atoms) <= 20
        assert 0.05 - 1e-9 <= len(atoms) / atoms.get_volume() <= 0.07 + 1e-9
        _, d = get_distances(atoms.positions, cell=atoms.cell, pbc=True)
        assert d[~np.eye(len(atoms), dtype=bool)].min() >= 2.0 - 1e-9
        cu = atoms.get_chemical_symbols().count("Cu")
        assert abs(cu - 0.75 * len(atoms)) <= 1
        edges = atoms.cell.lengths()
        assert edges.max() / edges.min() <= sampler.aspect + 1e-9
    # the same seed and frame number give the same structure; another seed another one
    a, b = sample(sampler, ["Cu", "Al"], 3, 7), sample(sampler, ["Cu", "Al"], 3, 7)
    assert np.array_equal(a.positions, b.positions) and np.array_equal(a.cell, b.cell)
    assert not np.allclose(sample(sampler, ["Cu", "Al"], 4, 7).cell, a.cell)


def test_evopot_data_labels_every_sampler_with_the_reference(tmp_path, capsys):
    config = write_config(tmp_path)
    assert main(["data", str(config), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "16 frames (16 labelled now" in out and "Cu:" in out
    frames = by_key(tmp_path / "cu.extxyz")
    assert sorted(frames) == sorted(
        [f"crystal_fcc/{k}" for k in range(6)]
        + [f"random/{k}" for k in range(6)]
        + [f"vacancy_fcc/{k}" for k in range(2)]
        + [f"surface_fcc/{k}" for k in range(2)]
    )
    for key, atoms in frames.items():
        assert atoms.info["config_type"] == key.split("/")[0]
        assert atoms.info["calculator"] == "emt"
        fresh = atoms.copy()
        fresh.calc = EMT()  # on the positions as written (8 decimals in Å)
        assert atoms.get_potential_energy() == pytest.approx(fresh.get_potential_energy(), abs=1e-6)
        np.testing.assert_allclose(atoms.get_forces(), fresh.get_forces(), atol=1e-6)
        np.testing.assert_allclose(atoms.get_stress(), fresh.get_stress(), atol=1e-8)
    # crystal frames: strained within ±4 % per axis, vacancies one atom short
    ideal = 4 * 8
    volumes = [frames[f"crystal_fcc/{k}"].get_volume() / (2 * 3.6) ** 3 for k in range(6)]
    assert all(0.96**3 * 0.95 < v < 1.04**3 * 1.05 for v in volumes) and np.std(volumes) > 0.005
    assert all(len(frames[f"vacancy_fcc/{k}"]) == ideal - 1 for k in range(2))
    # the isolated atom's energy, as a search config's reference_energies
    references = yaml.safe_load((tmp_path / "cu.references.yaml").read_text())["reference_energies"]
    lone = ase.Atoms("Cu", cell=[12, 12.3, 12.6], pbc=True)
    lone.calc = EMT()
    assert references["Cu"] == pytest.approx(lone.get_potential_energy())
    # a rerun has nothing to do; more frames in a sampler label only the new ones
    assert main(["data", str(config), "--quiet"]) == 0
    assert "16 frames (0 labelled now" in capsys.readouterr().out
    sampling = [dict(CU["sampling"][0], frames=8), *CU["sampling"][1:]]
    assert main(["data", str(write_config(tmp_path, sampling=sampling)), "--quiet"]) == 0
    assert "18 frames (2 labelled now" in capsys.readouterr().out
    again = by_key(tmp_path / "cu.extxyz")
    assert all(np.array_equal(again[k].positions, frames[k].positions) for k in frames)


def test_sigkill_mid_run_then_rerun_gives_the_frames_of_a_clean_run(tmp_path):
    sampling = [{"kind": "crystal", "structure": "fcc", "a": 3.6, "repeat": [3, 3, 3], "frames": 300, "strain": 0.03}]
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    for folder in (clean, killed):
        folder.mkdir()
        write_config(folder, sampling=sampling, isolated_atoms=False)
    assert main(["data", str(clean / "data.yaml"), "--quiet"]) == 0
    expected = by_key(clean / "cu.extxyz")
    output, kills = killed / "cu.extxyz", 0
    for _ in range(3):  # killed three times at different moments, then run to the end
        before = len(FrameStore(output)) if output.exists() else 0
        process = subprocess.Popen(
            [sys.executable, "-m", "evopot.cli", "data", str(killed / "data.yaml"), "--quiet"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.time() + 120
        while time.time() < deadline and process.poll() is None:
            if output.exists() and output.stat().st_size > 0 and len(FrameStore(output)) >= before + 20:
                break
            time.sleep(0.02)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.wait()
    assert kills >= 2
    assert 0 < len(FrameStore(output)) < 300
    assert main(["data", str(killed / "data.yaml"), "--quiet"]) == 0
    keys = [a.info["evopot_key"] for a in ase.io.read(output, ":")]
    assert len(keys) == len(set(keys)) == 300  # none lost, none twice
    got = by_key(output)
    for key, atoms in expected.items():
        np.testing.assert_array_equal(got[key].positions, atoms.positions)
        assert got[key].get_potential_energy() == atoms.get_potential_energy()


def test_a_frame_cut_short_is_dropped_and_labelled_again(tmp_path):
    config = write_config(tmp_path, isolated_atoms=False)
    generate(config, progress=False)
    output = tmp_path / "cu.extxyz"
    whole = output.read_bytes()
    lines = whole.splitlines(keepends=True)
    output.write_bytes(b"".join(lines[:-3]))  # the last frame lost its last three atom lines
    with pytest.warns(UserWarning, match="cut short"):
        result = generate(config, progress=False)
    assert result.labelled == 1 and output.read_bytes() == whole


def test_labelling_on_two_dask_workers_gives_the_frames_of_one(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    for folder, workers in ((one, 1), (two, 2)):
        folder.mkdir()
        generate(write_config(folder, workers=workers), progress=False)
    a, b = by_key(one / "cu.extxyz"), by_key(two / "cu.extxyz")
    assert sorted(a) == sorted(b)
    for key in a:
        np.testing.assert_array_equal(a[key].positions, b[key].positions)
        np.testing.assert_allclose(a[key].get_forces(), b[key].get_forces(), atol=1e-12)
    assert (one / "cu.references.yaml").read_text() == (two / "cu.references.yaml").read_text()


def test_a_failing_frame_is_logged_and_skipped_not_fatal(tmp_path, monkeypatch):
    import evopot.learn.reference as reference

    original = reference.calculator

    def flaky(settings, atoms, isolated=False):
        if len(atoms) == 31 and not isolated:  # the vacancy frames
            raise RuntimeError("KohnShamConvergenceError-like failure")
        return original(settings, atoms, isolated)

    monkeypatch.setattr(reference, "calculator", flaky)
    config = write_config(tmp_path)
    result = generate(config, progress=False)
    assert sorted(result.failed) == ["vacancy_fcc/0", "vacancy_fcc/1"] and result.frames == 14
    assert "vacancy_fcc/0\tRuntimeError" in (tmp_path / "cu.failed.txt").read_text()
    assert generate(config, progress=False).labelled == 0  # skipped on a rerun too
    monkeypatch.setattr(reference, "calculator", original)
    retried = generate(config, progress=False, retry_failed=True)
    assert retried.labelled == 2 and retried.frames == 16 and not retried.failed


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"reference": {"calculator": "vasp"}},
            "field 'reference': Input tag 'vasp' found using 'calculator' does not match any of the expected tags: "
            "'emt', 'gpaw'",
        ),
        ({"sampling": []}, "field 'sampling'"),
        ({"sampling": [dict(CU["sampling"][0], frames=0)]}, "sampling.0.crystal.frames"),
        (
            {
                "sampling": [
                    {"kind": "random", "atoms": [8, 8], "density": [0.1, 0.2], "min_distance": 2.5, "frames": 1}
                ]
            },
            "random placement jams above 35 %: lower the density",
        ),
        ({"sampling": [dict(CU["sampling"][0], element="Al")]}, "['Al'] not in species ['Cu']"),
        ({"species": ["Xx"]}, "'Xx' is not an element symbol"),
        ({"sampling": [CU["sampling"][0], CU["sampling"][0]]}, "two samplers make frames named ['crystal_fcc']"),
    ],
)
def test_bad_data_configs_are_one_line_naming_the_file_and_field(tmp_path, capsys, change, message):
    config = write_config(tmp_path, **change)
    assert main(["data", str(config), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"evopot: error: {config}") and message in err and err.count("\n") == 1
    assert not (tmp_path / "cu.extxyz").exists()


def test_gpaw_missing_and_changed_settings_are_clear(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "gpaw", None)  # import gpaw raises ImportError
    config = write_config(tmp_path, reference={"calculator": "gpaw"})
    assert main(["data", str(config), "--quiet"]) == 2
    assert "GPAW is not installed; install it with make dft" in capsys.readouterr().err
    assert not (tmp_path / "cu.extxyz").exists()
    generate(write_config(tmp_path), progress=False)
    changed = [dict(CU["sampling"][0], rattle=0.2), *CU["sampling"][1:]]
    with pytest.raises(EvopotError, match=r"made with other settings \(sampling \(crystal_fcc\) differs"):
        generate(write_config(tmp_path, sampling=changed), progress=False)
    assert generate(write_config(tmp_path, sampling=changed), progress=False, overwrite=True).labelled == 16


def test_random_placement_that_runs_out_of_attempts_fails_clearly(tmp_path, monkeypatch):
    import evopot.data.structures as structures

    monkeypatch.setattr(structures, "ATTEMPTS", 1)  # one try per atom: 40 atoms filling 31 % of space never fit
    config = write_config(
        tmp_path,
        sampling=[{"kind": "random", "atoms": [40, 40], "density": [0.35, 0.35], "min_distance": 1.2, "frames": 1}],
    )
    with pytest.raises(EvopotError, match=r"could not place 40 atoms 1.2 Å apart .* lower density or min_distance"):
        generate(load_generation_config(config), progress=False)
    assert not (tmp_path / "cu.extxyz").exists()


LEARN_SEARCH = {
    "cutoff": {"radius": 4.5},
    "search_space": "pair",
    "engine": {"population": 16, "generations": 2, "workers": 1},
    "correction": {
        "ensemble": 2,
        "epochs": 20,
        "hidden": [8],
        "radial_functions": 4,
        "angular_shells": 0,
        "moment_channels": 0,
    },
}
LEARN = {
    "output": "out",
    "species": ["Cu"],
    "reference": {"calculator": "emt"},
    "workers": 1,
    "search": "search.yaml",
    "search_every": 2,
    "start": {"sampling": [{"kind": "crystal", "structure": "fcc", "a": 3.6, "frames": 6, "strain": 0.03}]},
    "test": {"sampling": [{"kind": "crystal", "structure": "fcc", "a": 3.6, "frames": 3, "rattle": 0.15}]},
    "explore": {
        "starts": [{"kind": "crystal", "structure": "fcc", "a": 3.6, "frames": 1}],
        "temperatures": [300, 1200],
        "steps": 40,
        "every": 10,
        "per_iteration": 3,
    },
    "stop": {"iterations": 2, "budget": 40},
}


def write_learn(folder, **changes):
    (folder / "search.yaml").write_text(yaml.safe_dump(LEARN_SEARCH))
    path = folder / "learn.yaml"
    path.write_text(yaml.safe_dump({**LEARN, **changes}))
    return path


def test_evopot_learn_runs_two_iterations_adding_the_frames_the_ensemble_disagrees_on(tmp_path, capsys):
    from evopot.data.dataset import read_frames
    from evopot.neural.correct import frame_uncertainty
    from evopot.neural.hybrid import load_model, predict

    config = write_learn(tmp_path, stop={"iterations": 1, "budget": 40})
    assert main(["learn", str(config), "--quiet"]) == 0
    config = write_learn(tmp_path)  # one more iteration, continued
    assert main(["learn", str(config), "--quiet", "--resume"]) == 0
    out = capsys.readouterr().out
    assert "stopped: 2 iterations" in out
    folder = tmp_path / "out"
    rows = list(csv.DictReader((folder / "learning.csv").open()))
    assert [int(r["iteration"]) for r in rows] == [0, 1]
    assert int(rows[0]["frames"]) == 6 and int(rows[1]["frames"]) == 6 + int(rows[0]["added"])
    assert int(rows[1]["labelled"]) == 9 + int(rows[0]["added"]) + int(rows[1]["added"])
    assert (folder / "learning_curve.png").stat().st_size > 1000
    added = {k: a for k, a in by_key(folder / "train.extxyz").items() if k.startswith("iteration_0/")}
    assert 0 < len(added) <= 3 and len(added) == int(rows[0]["added"])
    # what was added: EMT's labels, on frames whose spread exceeded iteration 0's threshold
    metrics = json.loads((folder / "iteration_0" / "metrics.json").read_text())
    hybrid = load_model(metrics["hybrid"])
    frames = read_frames(folder / "train.extxyz").subset(
        [k for k, a in enumerate(ase.io.read(folder / "train.extxyz", ":")) if a.info["evopot_key"] in added]
    )
    assert (frame_uncertainty(predict(hybrid, frames), frames) > float(metrics["threshold"])).all()
    for atoms in added.values():
        fresh = atoms.copy()
        fresh.calc = EMT()
        np.testing.assert_allclose(atoms.get_forces(), fresh.get_forces(), atol=1e-6)
    # iteration 1 kept iteration 0's formula (search_every: 2) and trained its correction on the grown data
    assert len(read_frames(folder / "iteration_1" / "train.extxyz")) == 6 + len(added)
    assert not (folder / "iteration_1" / "search").exists()
    later = load_model(folder / "iteration_1" / "hybrid.json")
    assert later.potential.formula() == hybrid.potential.formula()
    assert later.correction.info["errors"]["train"]["hybrid"] != hybrid.correction.info["errors"]["train"]["hybrid"]
    # the searches fitted cohesive energies: the reference's isolated-atom energy, computed once
    lone = ase.Atoms("Cu", cell=[12, 12.3, 12.6], pbc=True)
    lone.calc = EMT()
    searched = yaml.safe_load((folder / "iteration_0" / "search" / "config.yaml").read_text())
    assert searched["reference_energies"]["Cu"] == pytest.approx(lone.get_potential_energy())
    # evopot report on the loop's folder: the learning curve and the table of iterations
    assert main(["report", str(folder)]) == 0
    page = (folder / "report" / "report.html").read_text()
    assert "learning_curve.png" in page and page.count("<tr>") == 3
    assert (folder / "report" / "learning_curve.png").stat().st_size > 1000
    # a finished loop resumed does nothing more
    assert main(["learn", str(config), "--quiet", "--resume"]) == 0
    assert len(list(csv.DictReader((folder / "learning.csv").open()))) == 2


def test_bad_learn_inputs(tmp_path, capsys):
    config = write_learn(tmp_path, stop={"iterations": 2, "budget": 5})
    assert main(["learn", str(config), "--quiet"]) == 2
    assert "stop.budget (5 frames) is spent on the start and test frames alone (9)" in capsys.readouterr().err
    config = write_learn(tmp_path, stop={"iterations": 2, "budget": 0})
    assert main(["learn", str(config), "--quiet"]) == 2
    assert "field 'stop.budget': Input should be greater than or equal to 1" in capsys.readouterr().err
    config = write_learn(tmp_path, search="missing.yaml")
    assert main(["learn", str(config), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"evopot: error: {config}: field 'search'") and "missing.yaml not found" in err
    assert not (tmp_path / "out").exists()


def test_a_lammps_pair_style_labels_frames_like_ase_lennard_jones(tmp_path):
    from ase.calculators.lj import LennardJones

    config = write_config(
        tmp_path,
        species=["Ar"],
        reference={"calculator": "lammps", "pair_style": "lj/cut 6.0", "pair_coeff": ["* * 0.0104 3.4"]},
        sampling=[{"kind": "random", "atoms": [10, 20], "density": [0.015, 0.022], "min_distance": 3.0, "frames": 4}],
    )
    result = generate(config, progress=False)
    assert result.labelled == 4 and result.references["Ar"] == pytest.approx(0.0, abs=1e-12)
    for atoms in by_key(tmp_path / "cu.extxyz").values():
        assert atoms.info["calculator"].startswith("lammps pair_style=lj/cut 6.0")
        fresh = atoms.copy()
        fresh.calc = LennardJones(sigma=3.4, epsilon=0.0104, rc=6.0, smooth=False)
        np.testing.assert_allclose(atoms.get_forces(), fresh.get_forces(), atol=1e-6)


def test_the_reference_files_of_a_learn_config_are_relative_to_the_config(tmp_path, monkeypatch):
    from evopot.config.generation import load_learn_config
    from evopot.learn.reference import check_available

    (tmp_path / "Si.sw").write_text("Si Si Si 2.1683 2.0951 1.80 21.0 1.20 -0.3333 7.0496 0.6022 4 0 0\n")
    (tmp_path / "si.evopot.json").write_text("{}")
    lammps = {"calculator": "lammps", "pair_style": "sw", "pair_coeff": ["* * Si.sw Si"], "files": ["Si.sw"]}
    md = {"kind": "md", "structure": "diamond", "a": 5.43, "frames": 1, "potential": "si.evopot.json"}
    config = write_learn(tmp_path, species=["Si"], reference=lammps, start={"sampling": [md]})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # as a user runs evopot learn ../learn.yaml
    learn = load_learn_config(config)
    assert learn.reference.files == [tmp_path / "Si.sw"]
    assert learn.start.sampling[0].potential == tmp_path / "si.evopot.json"
    check_available(learn.reference)  # finds the file
    potential = write_learn(tmp_path, species=["Si"], reference={"calculator": "potential", "path": "si.evopot.json"})
    assert load_learn_config(potential).reference.path == tmp_path / "si.evopot.json"


def test_the_shipped_data_and_learn_examples_are_valid():
    from pathlib import Path

    from evopot.config.generation import load_learn_config
    from evopot.config.schema import load_config

    examples = Path(__file__).resolve().parents[1] / "examples"
    data = load_generation_config(examples / "copper_data.yaml")
    assert data.reference.calculator == "emt" and sum(s.frames for s in data.sampling) == 48
    learn = load_learn_config(examples / "silicon_from_scratch.yaml")
    assert learn.reference.calculator == "gpaw" and learn.search.is_file()
    search = load_config(learn.search, {"data.train": str(examples / "data" / "Si" / "test.extxyz")})
    assert search.correction.ensemble >= 2


@pytest.mark.slow
def test_gpaw_labels_silicon_cells_on_two_workers_with_forces_that_are_the_energy_gradient(tmp_path):
    """Real DFT (make dft): two rattled 8-atom Si cells labelled by GPAW on 2 Dask workers;
    a force component against a central difference of GPAW's own energy."""
    pytest.importorskip("gpaw")
    from evopot.config.generation import GPAWReference
    from evopot.learn.reference import calculator

    reference = {"calculator": "gpaw", "ecut": 250, "kpoint_density": 1.5, "smearing": 0.05}
    sampling = [{"kind": "crystal", "structure": "diamond", "a": 5.47, "repeat": [1, 1, 1], "frames": 2}]
    config = write_config(tmp_path, species=["Si"], reference=reference, sampling=sampling, workers=2)
    result = generate(config, progress=False)
    assert result.labelled == 2 and not result.failed and result.references["Si"] < 0
    atoms = by_key(tmp_path / "cu.extxyz")["crystal_diamond/0"]
    assert atoms.info["calculator"].startswith("gpaw xc=PBE ecut=250.0")
    assert np.abs(atoms.get_forces()).max() > 0.1 and atoms.get_stress().shape == (6,)
    energies = []
    for step in (-0.01, 0.01):
        moved = atoms.copy()
        moved.positions[0, 0] += step
        moved.calc = calculator(GPAWReference(**reference), moved)
        energies.append(moved.get_potential_energy())
    assert atoms.get_forces()[0, 0] == pytest.approx(-(energies[1] - energies[0]) / 0.02, abs=0.02)


def test_the_random_sampling_baseline_labels_as_many_frames_drawn_blind(tmp_path):
    from evopot.learn.loop import learn

    explore = {**LEARN["explore"], "select": "random", "threshold": 1e6}  # no snapshot is uncertain
    result = learn(write_learn(tmp_path, explore=explore, stop={"iterations": 1, "budget": 40}), progress=False)
    row = result.rows[0]
    assert row["uncertain"] == "0" and row["added"] == "3" and row["stop"] == "1 iterations"
    added = [k for k in by_key(tmp_path / "out" / "train.extxyz") if k.startswith("iteration_0/")]
    assert len(added) == 3
    for key in added:  # iteration_0/START/K/TEMPERATURE/SNAPSHOT: a snapshot of one of the 2 × 4 explored
        _, start, k, t, n = key.split("/")
        assert start == "crystal_fcc" and k == "0" and t in ("0", "1") and 0 <= int(n) < 40 // 10


def test_a_reader_never_changes_the_file_and_a_second_writer_is_refused(tmp_path):
    """Watching a run's output while it is written must not cut the frame being written
    (a reader that truncated a half-written frame once left the writer's rest of it
    misplaced: a file no rerun could read); two writers on one output would interleave."""
    config = write_config(tmp_path, isolated_atoms=False)
    generate(config, progress=False)
    output = tmp_path / "cu.extxyz"
    whole = output.read_bytes()
    output.write_bytes(whole[:-100])  # a writer half-way through its last frame
    reader = FrameStore(output)
    assert output.read_bytes() == whole[:-100]  # untouched
    assert len(reader) == len(ase.io.read(io.StringIO(whole.decode()), ":", format="extxyz")) - 1
    with pytest.raises(EvopotError, match="opened for reading only"):
        reader.append("x", ase.io.read(io.StringIO(whole.decode()), 0, format="extxyz"))
    with pytest.warns(UserWarning, match="cut short"):
        first = FrameStore(output, writer=True)
    with pytest.raises(EvopotError, match="another evopot process is writing this file"):
        generate(config, progress=False)
    first.close()
    result = generate(config, progress=False)
    assert result.labelled == 1 and output.read_bytes() == whole
