"""``evopot validate``: physical checks reproduce known properties of Stillinger–Weber."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SI_TEST

from evopot.cli import main
from evopot.inspect.validate import Check, Validation, crystal, cubic_elastic_constants, equation_of_state, validate
from evopot.md.calculator import EvopotCalculator
from evopot.testing.known import stillinger_weber


def test_stillinger_weber_lattice_constant_and_elastic_constants_match_matscipy():
    from matscipy.calculators.manybody import Manybody
    from matscipy.calculators.manybody.explicit_forms import StillingerWeber
    from matscipy.calculators.manybody.explicit_forms.stillinger_weber import Stillinger_Weber_PRB_31_5262_Si

    ours = EvopotCalculator(stillinger_weber())
    _, _, (v0, _, _) = equation_of_state(crystal("Si"), ours)
    a0 = (8 * v0) ** (1 / 3)
    assert a0 == pytest.approx(5.431, abs=5e-4)  # the published SW lattice constant
    evopot = cubic_elastic_constants(crystal("Si", a0), ours)
    matscipy = cubic_elastic_constants(crystal("Si", a0), Manybody(**StillingerWeber(Stillinger_Weber_PRB_31_5262_Si)))
    for name in ("C11", "C12", "C44"):
        assert evopot[name] == pytest.approx(matscipy[name], rel=0.01), name
    assert evopot["C44"] == pytest.approx(56.4, rel=0.02)  # relaxed C44 of SW silicon, not the unrelaxed ~117


def test_validate_writes_a_table_and_figures(tmp_path):
    result = validate(stillinger_weber(), SI_TEST, tmp_path, steps=200)
    names = [c.name for c in result.checks]
    assert names[:2] == ["lattice constant a0", "bulk modulus B"] and any(n.startswith("RDF") for n in names)
    assert any(n.startswith("MD stable at") for n in names) and "NVE energy drift" in names
    for figure in result.figures:
        assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "lattice constant a0" in (tmp_path / "validation.txt").read_text()


def test_validate_refuses_data_with_species_the_potential_lacks(tmp_path, capsys):
    import ase.io
    from ase.build import bulk

    stillinger_weber().save(tmp_path / "sw.json")
    atoms = bulk("Cu", "fcc", 3.61)
    atoms.info["energy"] = -3.0
    atoms.arrays["forces"] = atoms.positions * 0
    ase.io.write(tmp_path / "cu.extxyz", atoms)
    assert (
        main(
            [
                "validate",
                str(tmp_path / "sw.json"),
                "--reference",
                str(tmp_path / "cu.extxyz"),
                "--output",
                str(tmp_path / "v"),
            ]
        )
        == 2
    )
    assert "species ['Cu'] that the potential (Si) does not describe" in capsys.readouterr().err
    assert main(["validate", str(tmp_path / "sw.json"), "--reference", str(tmp_path / "none.extxyz")]) == 2
    assert "none.extxyz" in capsys.readouterr().err


def test_one_failed_check_fails_the_validation():
    """Checks computed with NumPy give numpy.bool_; a false one must still fail."""
    result = Validation([Check("a0", 5.6, 5.4, "Å", np.abs(5.6 / 5.4 - 1) < 0.01), Check("B", 98.0, None, "GPa", None)])
    assert result.checks[0].row()[4] == "FAIL" and not result.passed
    assert Validation([Check("a0", 5.43, 5.43, "Å", np.abs(0.0) < 0.01)]).passed
