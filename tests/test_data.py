"""Datasets: reading, splits and every way a data file can be wrong."""

import ase.io
import numpy as np
import pytest
from ase.build import bulk
from conftest import SI_TEST, SI_TRAIN

from evopot.data.dataset import load_dataset, read_frames
from evopot.data.geometry import build_geometry
from evopot.errors import EvopotError


def test_bundled_silicon_data_reads_with_energies_forces_and_config_types():
    frames = read_frames(SI_TRAIN)
    summary = frames.summary()
    assert summary["frames"] == 214 and summary["atoms"] == 13233
    assert summary["config_types"] == {"AIMD-NVT": 90, "Elastic": 55, "Surface": 12, "Vacancy": 57}
    assert len(read_frames(SI_TEST)) == 25


def test_fraction_split_is_reproducible_from_the_seed_and_disjoint():
    a = load_dataset(SI_TRAIN, validation_part=0.2, test_part=0.1, seed=7)
    b = load_dataset(SI_TRAIN, validation_part=0.2, test_part=0.1, seed=7)
    c = load_dataset(SI_TRAIN, validation_part=0.2, test_part=0.1, seed=8)
    assert np.array_equal(a.validation.energies, b.validation.energies)
    assert not np.array_equal(a.validation.energies, c.validation.energies)
    assert len(a.train) + len(a.validation) + len(a.test) == 214
    assert not {id(x) for x in a.train.atoms} & {id(x) for x in a.validation.atoms}


def test_config_type_split_holds_out_the_named_types():
    d = load_dataset(SI_TRAIN, by="config_type", validation_part=["Surface"], test_part=["Vacancy"])
    assert set(d.validation.config_types) == {"Surface"}
    assert set(d.test.config_types) == {"Vacancy"}
    assert set(d.train.config_types) == {"AIMD-NVT", "Elastic"}


def test_missing_file_is_named(tmp_path):
    with pytest.raises(EvopotError, match="nope.extxyz: data file not found"):
        read_frames(tmp_path / "nope.extxyz")


def test_file_without_forces_names_the_frame(tmp_path):
    atoms = bulk("Si", "diamond", 5.43)
    atoms.info["energy"] = -10.0
    path = tmp_path / "noforces.extxyz"
    ase.io.write(path, [atoms, atoms], format="extxyz")
    with pytest.raises(EvopotError, match="noforces.extxyz: frame 0 has no forces"):
        read_frames(path)


def test_file_without_energy_names_the_frame(tmp_path):
    atoms = bulk("Si", "diamond", 5.43)
    atoms.arrays["forces"] = np.zeros((len(atoms), 3))
    path = tmp_path / "noenergy.extxyz"
    ase.io.write(path, atoms, format="extxyz")
    with pytest.raises(EvopotError, match="frame 0 has no energy"):
        read_frames(path)


def test_unreadable_file_is_reported(tmp_path):
    path = tmp_path / "garbage.extxyz"
    path.write_text("this is not\nan xyz file at all\n")
    with pytest.raises(EvopotError, match="garbage.extxyz: ASE could not read"):
        read_frames(path)


def test_unknown_species_is_refused():
    with pytest.raises(EvopotError, match=r"lists \['Ge'\] but the data contains \['Si'\]"):
        load_dataset(SI_TRAIN, species=["Ge"])
    frames = read_frames(SI_TEST)
    with pytest.raises(EvopotError, match=r"species \['Si'\] that are not among"):
        build_geometry(frames, 5.0, ("Ge",))


def test_empty_split_is_refused():
    with pytest.raises(EvopotError, match="empty validation split"):
        load_dataset(SI_TRAIN, by="config_type", validation_part=["Liquid"], where="cfg.yaml")


def test_cutoff_must_be_positive():
    with pytest.raises(EvopotError, match="cutoff radius must be > 0"):
        build_geometry(read_frames(SI_TEST), 0.0)
