"""Reading rule-set files (SPEC §8): the I/O edge of :func:`detectors.ruleset.load_ruleset`.

The pure loader validates text; this module reads the document and the catalogue it names
(``catalogue = "catalogue.toml"``, relative to the rule-set file or, for a document that
arrives on the ``rules`` topic or ``PUT /v1/rules``, to a given directory, by default the
shipped ``service/data``).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from detectors.ruleset import RuleSet, RuleSetError, load_ruleset

DATA_DIR = Path(__file__).resolve().parent / "data"
DEFAULT_RULES_PATH = DATA_DIR / "rules.toml"


def load_ruleset_file(path: Path | str = DEFAULT_RULES_PATH) -> RuleSet:
    """Load and validate a rule-set file and the catalogue file it names.

    Raises:
        RuleSetError: the file cannot be read or the document is invalid.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RuleSetError([f"{path}: cannot read ({exc.strerror or exc})"]) from None
    return load_ruleset_text(text, base_dir=path.parent)


def load_ruleset_text(text: str, base_dir: Path | str = DATA_DIR) -> RuleSet:
    """Validate a rule-set document, reading a referenced catalogue from ``base_dir``.

    Used for documents received at run time; a document with an inline ``[catalogue]``
    table reads no file.
    """
    base = Path(base_dir)
    catalogue_text = None
    name = _catalogue_name(text)
    if name is not None:
        cat_path = base / name
        try:
            catalogue_text = cat_path.read_text(encoding="utf-8")
        except OSError as exc:
            raise RuleSetError(
                [f"catalogue: cannot read {str(cat_path)!r} ({exc.strerror or exc})"]
            ) from None
    return load_ruleset(text, catalogue_text=catalogue_text)


def default_ruleset_from_data() -> RuleSet:
    """The shipped default rule set (``service/data/rules.toml``)."""
    return load_ruleset_file(DEFAULT_RULES_PATH)


def _catalogue_name(text: str) -> str | None:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return None  # load_ruleset reports the syntax error
    ref = doc.get("catalogue")
    return ref if isinstance(ref, str) else None
