"""docs/architecture.md shows the code as built: every crate is in its layer diagram, every
module its tables name exists, and every source module of a crate is in that crate's table."""

from __future__ import annotations

import re

from conftest import REPO

DOC = (REPO / "docs" / "architecture.md").read_text()
CRATES = sorted(p.name for p in (REPO / "crates").iterdir() if (p / "Cargo.toml").is_file())


def _sections() -> dict[str, str]:
    """The text of each `## remotemedia-...` section, by crate name."""
    parts = re.split(r"^## (remotemedia-[a-z]+)[^\n]*\n", DOC, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def _table_paths(section: str) -> list[str]:
    """The backticked paths in the first column of the section's module table(s)."""
    paths = []
    for line in section.splitlines():
        m = re.match(r"\|\s*((?:`[^`]+`[ ,]*)+)\|", line)
        if m:
            paths += re.findall(r"`([^`]+)`", m.group(1))
    return paths


def test_every_crate_is_in_the_layer_diagram_and_has_a_section() -> None:
    diagram = DOC.split("```", 2)[1]
    sections = _sections()
    for crate in CRATES:
        assert f"crates/{crate}" in diagram, crate
        assert crate in sections, f"docs/architecture.md has no '## {crate}' section"


def test_module_tables_match_the_sources() -> None:
    for crate, section in _sections().items():
        src = REPO / "crates" / crate / "src"
        listed = _table_paths(section)
        assert listed, f"{crate}: no module table"
        for path in listed:
            assert (src / path.rstrip("/")).exists() or (src / f"{path}.rs").exists(), (
                f"{crate}: the table names {path}, which is not in {src}"
            )
        top = {p.name for p in src.iterdir() if p.name not in ("lib.rs", "main.rs")}
        for entry in sorted(top):
            name = entry.removesuffix(".rs")
            covered = any(re.match(rf"{re.escape(name)}(\.rs|/|$)", p) for p in listed)
            assert covered, f"{crate}: src/{entry} is not in docs/architecture.md's table"
