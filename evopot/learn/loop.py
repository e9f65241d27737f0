"""``evopot learn CONFIG``: active learning driven by the ensemble's disagreement.

Each iteration searches formulas on the frames labelled so far, trains the correction
ensemble on the recommended member, runs Langevin MD with the hybrid from every start
over the temperature ladder, and labels with the reference the snapshots (spaced in
time) whose largest per-atom force spread exceeds the threshold, most uncertain first.
It stops after ``stop.iterations``, when ``stop.budget`` reference frames are spent, or
when no snapshot exceeds the threshold.

The output folder holds ``train.extxyz`` and ``test.extxyz`` (every labelled frame,
appended as it comes), ``iteration_K/`` (that iteration's training data, its search run
when it searched, ``hybrid.json``, ``metrics.json``), ``learning.csv`` and ``learning_curve.png``.
``--resume`` goes on from the first iteration without ``metrics.json``.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase.calculators.singlepoint import SinglePointCalculator

from evopot.config.generation import FramesSource, LearnConfig, load_learn_config, sampler_name
from evopot.config.schema import CorrectionConfig, load_config
from evopot.data.dataset import read_frames, unlabelled
from evopot.data.store import FrameStore
from evopot.data.structures import sample
from evopot.errors import EvopotError
from evopot.executor import open_executor
from evopot.learn.explore import trajectory
from evopot.learn.generate import Labelling, read_references, write_references
from evopot.learn.reference import check_available
from evopot.neural.correct import correct_potential, frame_uncertainty
from evopot.neural.hybrid import predict
from evopot.search.run import search
from evopot.search.rundir import member_potential, read_csv, write_csv

COLUMNS = [
    "iteration",
    "frames",
    "labelled",
    "test_force_mae_formula",
    "test_force_mae_hybrid",
    "test_energy_mae_formula",
    "test_energy_mae_hybrid",
    "threshold",
    "explored",
    "uncertain",
    "added",
    "stop",
]


@dataclass
class LearnResult:
    folder: Path
    rows: list[dict]


def _source_jobs(source: FramesSource, name: str, species, seed: int, store: FrameStore) -> list:
    """Jobs that label the frames of ``source`` not yet in ``store`` (a data file's frames
    are copied in as they are)."""
    if source.data is not None:
        frames = read_frames(source.data, where=f"{name}.data")
        for k, atoms in enumerate(frames.atoms):
            if f"{name}/{k}" not in store:
                copy = atoms.copy()
                copy.calc = SinglePointCalculator(copy, energy=frames.energies[k], forces=frames.forces[k])
                copy.info["config_type"] = frames.config_types[k]
                store.append(f"{name}/{k}", copy)
        return []
    jobs = []
    for sampler in source.sampling:
        for k in range(sampler.frames):
            key = f"{name}/{sampler_name(sampler)}/{k}"
            if key not in store:
                jobs.append(("frame", key, sample(sampler, species, seed, k)))
    return jobs


def _read_rows(path: Path) -> list[dict]:
    return read_csv(path, "the learning curve of evopot learn") if path.exists() else []


def _isolated_energies(config: LearnConfig, labelling: Labelling, path: Path) -> dict[str, float] | None:
    """The species' isolated-atom energies from the reference (computed once, kept in
    ``path``), or None when the config says not to or the search config gives its own."""
    import yaml

    if not config.isolated_atoms or (yaml.safe_load(config.search.read_text()) or {}).get("reference_energies"):
        return None
    found = read_references(path)
    missing = [s for s in config.species if s not in found]
    if missing:
        labelling.run([("isolated", s, s) for s in missing])
        found.update(labelling.isolated)
        write_references(path, found, config.species, config.reference)
    return {s: float(found[s]) for s in config.species}


def _still_stopped(row: dict, config: LearnConfig, done: int) -> bool:
    """Whether the reason the loop stopped at ``row`` still holds under ``config`` (a
    resumed loop with more iterations or a larger budget goes on)."""
    if not row["stop"]:
        return False
    if row["stop"].startswith("budget"):
        return int(row["labelled"]) >= config.stop.budget
    if row["stop"].endswith("iterations"):
        return done >= config.stop.iterations
    return True  # nothing left above the threshold


def _labelled(*stores: FrameStore) -> int:
    """Frames the reference labelled (sampled start and test frames, "start/NAME/K", and
    the loop's, "iteration_K/…"), not those copied from a data file ("start/K")."""
    return sum(1 for store in stores for key in store.frames if key.count("/") >= 2)


def learning_curve(rows: list[dict], path: Path) -> Path:
    """Test force MAE of the formula and of the hybrid against the labelled frames."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frames = [int(r["frames"]) for r in rows]
    figure, axis = plt.subplots(figsize=(5, 3.5))
    axis.plot(frames, [float(r["test_force_mae_formula"]) for r in rows], "o-", label="formula")
    axis.plot(frames, [float(r["test_force_mae_hybrid"]) for r in rows], "s-", label="hybrid")
    axis.set_xlabel("training frames")
    axis.set_ylabel("test force MAE (eV/Å)")
    axis.set_title("evopot learn")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def _explore(config: LearnConfig, hybrid, iteration: int, threshold: float) -> tuple[int, list, list]:
    """(snapshots explored, candidates, pool). Each MD run is trusted until its ensemble
    first disagrees: the snapshot where the force spread first exceeds ``threshold`` is
    the run's candidate (later ones come from a potential already off its data), and
    the snapshots up to it are the pool random sampling draws from. Candidates are
    ``(uncertainty, key, atoms)``, most uncertain first."""
    e = config.explore
    explored, pool, found = 0, [], []
    for sampler in e.starts:
        for k in range(sampler.frames):
            start = sample(sampler, config.species, config.seed + 1000 * (iteration + 1), k)
            for t, temperature in enumerate(e.temperatures):
                seed = config.seed + 7919 * iteration + 101 * k + t
                snapshots = trajectory(hybrid, start, temperature, e.steps, e.every, e.timestep, seed)
                if not snapshots:
                    continue
                frames = unlabelled(snapshots)
                spread = frame_uncertainty(predict(hybrid, frames), frames)
                above = [n for n, u in enumerate(spread) if u > threshold]
                end = above[0] + 1 if above else len(snapshots)
                explored += end
                for n in range(end):
                    atoms = snapshots[n]
                    atoms.info["config_type"] = f"learn_{sampler_name(sampler)}_{temperature:g}K"
                    item = (float(spread[n]), f"iteration_{iteration}/{sampler_name(sampler)}/{k}/{t}/{n}", atoms)
                    pool.append(item)
                    if above and n == above[0]:
                        found.append(item)
    found.sort(key=lambda item: -item[0])
    return explored, found, pool


def _fit(config: LearnConfig, folder: Path, iteration: int, references, progress: bool):
    """Iteration ``iteration``'s formula (searched on the frames so far, or the last
    search's when this iteration does not search) and its correction ensemble trained on
    those frames: the :class:`~evopot.neural.correct.CorrectionResult`."""
    here = folder / f"iteration_{iteration}"
    searched = iteration - iteration % config.search_every
    here.mkdir(exist_ok=True)
    data = shutil.copyfile(folder / "train.extxyz", here / "train.extxyz")  # the frames this iteration fits
    search_config = load_config(
        config.search,
        {
            "data.train": str(data),
            "data.test": str(folder / "test.extxyz"),
            "output": str(folder / f"iteration_{searched}" / "search"),
            "seed": config.seed + searched,
            **({"reference_energies": references} if references else {}),
        },
    )
    settings = search_config.correction or CorrectionConfig()
    if iteration == searched:
        search(search_config, overwrite=True, progress=progress, config_path=str(config.search))
    number, potential = member_potential(search_config.output, settings.member)
    about = {"run": str(search_config.output), "member": number, "iteration": iteration}
    return correct_potential(potential, search_config, settings, here / "hybrid.json", about, progress)


def learn(
    config: LearnConfig | str | Path, resume: bool = False, overwrite: bool = False, progress: bool = True
) -> LearnResult:
    """Run (or with ``resume`` continue) the loop of ``config``; see the module."""
    if not isinstance(config, LearnConfig):
        config = load_learn_config(config)
    check_available(config.reference)
    folder = Path(config.output)
    table = folder / "learning.csv"
    if folder.exists() and any(folder.iterdir()) and not (resume or overwrite):
        raise EvopotError(f"{folder} exists; pass --resume to continue it or --overwrite to start afresh")
    if overwrite and folder.exists():
        shutil.rmtree(folder)
    rows = _read_rows(table) if resume else []
    if rows and _still_stopped(rows[-1], config, len(rows)):
        return LearnResult(folder, rows)
    train, test = FrameStore(folder / "train.extxyz", writer=True), FrameStore(folder / "test.extxyz", writer=True)
    try:  # the stores' locks go with this call, also when it fails
        test_jobs = _source_jobs(config.test, "test", config.species, config.seed + 10**6, test)
        start_jobs = _source_jobs(config.start, "start", config.species, config.seed, train)
        if _labelled(train, test) + len(test_jobs) + len(start_jobs) > config.stop.budget:
            raise EvopotError(
                f"stop.budget ({config.stop.budget} frames) is spent on the start and test frames alone "
                f"({len(test_jobs) + len(start_jobs) + _labelled(train, test)}); raise it or sample fewer"
            )
        folder.mkdir(parents=True, exist_ok=True)
        with open_executor(config.workers) as executor:
            executor.lost_hint = "the frames labelled so far are kept: continue with evopot learn CONFIG --resume"
            to_train = Labelling(executor, config.reference, train, folder / "failed.txt")
            to_test = Labelling(executor, config.reference, test, folder / "failed.txt")
            to_test.run(test_jobs)
            to_train.run(start_jobs)
            references = _isolated_energies(config, to_train, folder / "references.yaml")
            if not len(test) or not len(train):
                raise EvopotError("no start or test frame could be labelled (see failed.txt in the output folder)")
            labelled = _labelled(train, test)
            for iteration in range(len(rows), config.stop.iterations):
                here = folder / f"iteration_{iteration}"
                corrected = _fit(config, folder, iteration, references, progress)
                hybrid = corrected.hybrid
                threshold = config.explore.threshold or hybrid.correction.info.get("uncertainty_threshold")
                if threshold is None:
                    raise EvopotError(
                        f"{config.search}: the correction needs an ensemble of at least 2 networks for the uncertainty "
                        f"(correction.ensemble), or give explore.threshold"
                    )
                explored, found, pool = _explore(config, hybrid, iteration, threshold)
                room = max(0, min(config.explore.per_iteration, config.stop.budget - labelled))
                if config.explore.select == "random":  # the baseline: as many snapshots, drawn blind
                    draw = np.random.default_rng([config.seed, iteration]).permutation(len(pool))[:room]
                    chosen = [pool[k] for k in sorted(draw)]
                else:
                    chosen = found[:room]
                before = len(train)
                to_train.run([("frame", key, atoms) for _, key, atoms in chosen])
                added = len(train) - before
                labelled += added
                stop = ""
                if not found and config.explore.select == "uncertain":
                    stop = "no snapshot above the threshold"
                elif labelled >= config.stop.budget:
                    stop = f"budget of {config.stop.budget} frames spent"
                elif iteration + 1 == config.stop.iterations:
                    stop = f"{config.stop.iterations} iterations"
                test_errors = corrected.errors["test"]
                row = {
                    "iteration": iteration,
                    "frames": before,
                    "labelled": labelled,
                    "test_force_mae_formula": f"{test_errors['formula']['force_mae']:.6g}",
                    "test_force_mae_hybrid": f"{test_errors['hybrid']['force_mae']:.6g}",
                    "test_energy_mae_formula": f"{test_errors['formula']['energy_mae']:.6g}",
                    "test_energy_mae_hybrid": f"{test_errors['hybrid']['energy_mae']:.6g}",
                    "threshold": f"{threshold:.6g}",
                    "explored": explored,
                    "uncertain": len(found),
                    "added": added,
                    "stop": stop,
                }
                (here / "metrics.json").write_text(json.dumps({**row, "hybrid": str(corrected.path)}, indent=1))
                if progress:
                    print(
                        f"evopot learn: iteration {iteration}: {before} frames, test force MAE formula "
                        f"{row['test_force_mae_formula']}, hybrid {row['test_force_mae_hybrid']} eV/Å; "
                        f"{len(found)} of {explored} snapshots above {threshold:.3g} eV/Å, {added} labelled"
                    )
                rows.append({k: str(v) for k, v in row.items()})
                write_csv(table, COLUMNS, rows)
                learning_curve(rows, folder / "learning_curve.png")
                if stop:
                    break
        return LearnResult(folder, rows)
    finally:
        train.close()
        test.close()
