"""``evopot data CONFIG``: sample structures and label them with the reference
calculator, in parallel on the Dask executor, each frame appended to the output as it
comes (a killed run loses only the frames in flight; a rerun labels only the rest).

Beside the output ``NAME.extxyz``: ``NAME.manifest.json`` (the settings the frames were
made with; a rerun with other settings is refused), ``NAME.failed.txt`` (frames whose
calculation failed, with the reason; a rerun skips them unless asked to retry) and
``NAME.references.yaml`` (each species' isolated-atom energy, the search config's
``reference_energies``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from evopot.config.generation import GenerationConfig, MDSampler, load_generation_config, sampler_name
from evopot.data.store import FrameStore
from evopot.data.structures import sample
from evopot.errors import EvopotError
from evopot.executor import open_executor
from evopot.learn.explore import md_snapshot, sampler_model
from evopot.learn.reference import check_available, describe, isolated_energy, label
from evopot.search.rundir import write_atomic

LOST = "the frames labelled so far are kept: run evopot data CONFIG again to label the rest"


@dataclass
class GenerationResult:
    """What a run of ``evopot data`` did: the output, frames there, labelled now, failed
    (key → reason), mean seconds per frame of this run, isolated-atom energies."""

    path: Path
    frames: int
    labelled: int
    failed: dict[str, str] = field(default_factory=dict)
    seconds_per_frame: float | None = None
    references: dict[str, float] = field(default_factory=dict)


def sidecar(output: Path, suffix: str) -> Path:
    return output.with_name(output.stem + suffix)


def manifest(config: GenerationConfig) -> dict:
    """The settings that decide what frame ``k`` of each sampler is (not how many)."""
    return {
        "seed": config.seed,
        "species": config.species,
        "reference": config.reference.model_dump(mode="json"),
        "sampling": {sampler_name(s): s.model_dump(mode="json", exclude={"frames"}) for s in config.sampling},
    }


def _check_manifest(config: GenerationConfig, path: Path, output: Path) -> None:
    """Refuse to add to ``output`` frames made with other settings than those in
    ``path``; then record this config's settings there."""
    wanted = manifest(config)
    if path.exists():
        try:
            found = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise EvopotError(f"{path}: unreadable ({exc}); pass --overwrite to start afresh") from None
        for key in wanted:
            if found.get(key) == wanted[key]:
                continue
            if key == "sampling":
                before = found.get(key) or {}
                changed = sorted(n for n in set(wanted[key]) | set(before) if wanted[key].get(n) != before.get(n))
                # a new sampler adds frames; a changed one would mix two kinds under one name
                if all(n not in before for n in changed):
                    continue
                key = f"sampling ({', '.join(changed)})"
            raise EvopotError(
                f"{output} was made with other settings ({key} differs; see {path.name}); give another output, "
                f"or pass --overwrite to label everything again"
            )
    elif output.exists() and output.stat().st_size:
        raise EvopotError(
            f"{output} exists but was not written by evopot data (no {path.name}); give another output or "
            f"pass --overwrite"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(wanted, indent=1))


def _read_failed(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    failed = {}
    for line in path.read_text().splitlines():
        key, _, reason = line.partition("\t")
        if key:
            failed[key] = reason
    return failed


def _job(settings, job):
    """On a worker: label one frame, or compute one isolated atom's energy."""
    kind, key, payload = job
    if kind == "isolated":
        return key, isolated_energy(settings, payload)
    return key, label(settings, (key, payload))


def structures(config: GenerationConfig, skip) -> list:
    """``[(key, atoms)]`` of every sampled frame whose key is not in ``skip``."""
    jobs = []
    for sampler in config.sampling:
        name = sampler_name(sampler)
        model = None
        for k in range(sampler.frames):
            key = f"{name}/{k}"
            if key in skip:
                continue
            if isinstance(sampler, MDSampler):
                model = model or sampler_model(sampler)  # loaded once per sampler
                atoms = md_snapshot(sampler, config.species, config.seed, k, model)
            else:
                atoms = sample(sampler, config.species, config.seed, k)
            jobs.append((key, atoms))
    return jobs


class Labelling:
    """Frames labelled on ``executor`` by the reference ``settings`` as they finish, each
    appended to ``store`` at once; failures appended to ``failed_path`` and counted."""

    def __init__(self, executor, settings, store: FrameStore, failed_path: Path, bar=None):
        self.executor, self.store, self.failed_path, self.bar = executor, store, failed_path, bar
        self.shared = executor.share(settings)
        self.labelled, self.seconds = 0, []
        self.failed: dict[str, str] = {}
        self.isolated: dict[str, float] = {}
        #: called with the isolated-atom energies so far as each one comes
        self.on_isolated = None

    def run(self, jobs: list[tuple[str, str, object]]) -> None:
        """Label ``[("frame", key, atoms) | ("isolated", symbol, symbol)]``."""
        bar = self.bar
        for _, (key, done) in self.executor.stream(_job, jobs, self.shared):
            if isinstance(done, float):
                self.isolated[key] = done
                if self.on_isolated is not None:
                    self.on_isolated(self.isolated)
                continue
            if done.atoms is None:
                self.failed[key] = done.error
                with self.failed_path.open("a") as handle:
                    handle.write(f"{key}\t{done.error}\n")
                if bar is not None:
                    bar.write(f"evopot: frame {key} skipped: {done.error}")
            else:
                self.store.append(key, done.atoms)
                self.labelled += 1
                self.seconds.append(done.seconds)
            if bar is not None:
                bar.update(1)
                if self.seconds:
                    bar.set_postfix(s_per_frame=f"{sum(self.seconds) / len(self.seconds):.3g}", failed=len(self.failed))


def generate(
    config: GenerationConfig | str | Path,
    overwrite: bool = False,
    retry_failed: bool = False,
    progress: bool = True,
    workers: int | str | None = None,
) -> GenerationResult:
    """Label every frame of ``config``'s samplers not yet in its output; see the module."""
    if not isinstance(config, GenerationConfig):
        config = load_generation_config(config)
    check_available(config.reference)
    output = Path(config.output)
    paths = {s: sidecar(output, s) for s in (".manifest.json", ".failed.txt", ".references.yaml")}
    if overwrite:
        for path in [output, *paths.values()]:
            path.unlink(missing_ok=True)
    _check_manifest(config, paths[".manifest.json"], output)
    store = FrameStore(output, writer=True)
    try:  # the store's lock goes with this call, also when it fails
        failed = {} if retry_failed else _read_failed(paths[".failed.txt"])
        if retry_failed:
            paths[".failed.txt"].unlink(missing_ok=True)
        references = read_references(paths[".references.yaml"])
        jobs = [("frame", key, atoms) for key, atoms in structures(config, set(store.frames) | set(failed))]
        if config.isolated_atoms:
            jobs += [("isolated", s, s) for s in config.species if s not in references]
        result = GenerationResult(output, len(store), 0, dict(failed), None, dict(references))
        if not jobs:
            return result
        total = sum(s.frames for s in config.sampling)
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(
                total=total, initial=len(store) + len(failed), desc="evopot data", unit="frame", dynamic_ncols=True
            )
        try:
            with open_executor(workers or config.workers, config.scheduler, config.scheduler_file) as executor:
                executor.lost_hint = LOST
                if bar is not None and executor.workers > 1:
                    bar.set_postfix(workers=executor.workers)
                labelling = Labelling(executor, config.reference, store, paths[".failed.txt"], bar)
                labelling.on_isolated = lambda found: write_references(
                    paths[".references.yaml"], {**result.references, **found}, config.species, config.reference
                )
                labelling.run(jobs)
        finally:
            if bar is not None:
                bar.close()
        result.labelled, seconds = labelling.labelled, labelling.seconds
        result.failed.update(labelling.failed)
        result.references.update(labelling.isolated)
        result.frames = len(store)
        result.seconds_per_frame = sum(seconds) / len(seconds) if seconds else None
        return result
    finally:
        store.close()


def read_references(path: Path) -> dict[str, float]:
    """The isolated-atom energies kept in ``path`` (none when it does not exist)."""
    if not path.exists():
        return {}
    return {s: float(e) for s, e in ((yaml.safe_load(path.read_text()) or {}).get("reference_energies") or {}).items()}


def write_references(path: Path, energies: dict[str, float], species: list[str], reference) -> None:
    """``energies`` of ``species`` (those known) as a search config's ``reference_energies``."""
    text = f"# isolated-atom energies (eV) from {describe(reference)}: paste into a search config\n" + yaml.safe_dump(
        {"reference_energies": {s: float(energies[s]) for s in species if s in energies}}
    )
    write_atomic(path, text)
