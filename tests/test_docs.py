"""The documentation says what the code does: the config reference is the schemas',
the search spaces in the docs load, and the README stays a page for users."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from evopot.inspect.reference import reference
from evopot.search.engines.space import SearchSpace

ROOT = Path(__file__).resolve().parents[1]


def test_the_config_reference_is_generated_from_the_schemas():
    assert (ROOT / "docs" / "config.md").read_text() == reference(), "docs/config.md is stale: run make docs"


def test_every_search_space_in_the_docs_is_valid():
    blocks = re.findall(r"```yaml\n(.*?)```", (ROOT / "docs" / "search-spaces.md").read_text(), re.S)
    spaces = [yaml.safe_load(b) for b in blocks]
    assert spaces
    for space in spaces:
        SearchSpace.model_validate(space)


def test_the_readme_is_short_and_its_links_resolve():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.encode()) <= 10_000
    for target in re.findall(r"\]\(([^)#]+)", readme):
        if not target.startswith("http"):
            assert (ROOT / target).exists(), f"README links to missing {target}"
    for page in (ROOT / "docs").glob("*.md"):
        for target in re.findall(r"\]\(([^)#]+)", page.read_text()):
            if not target.startswith("http"):
                assert (page.parent / target).exists(), f"{page.name} links to missing {target}"
