"""What reading a dataset needs from outside the config: credentials as plain values, the query's
rendering, and a folder where fetched data is kept for the run.

The domain never loads a Prefect block itself (it imports without Prefect): the Prefect side
(``tasks/prefect/source_blocks.py``) builds a ``SourceAccess`` whose callables load blocks. Without it,
credentials come from the environment only.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tasks.config.source_schema import CredentialRef


class CredentialUnavailable(Exception):
    """A named credential cannot be had; the message says which and how to provide it, never its value."""


def from_environment(ref: CredentialRef) -> str:
    if ref.block is not None:
        raise CredentialUnavailable(f"the block {ref.block} can only be loaded in a Prefect flow run; run the "
                                    "analysis with `analyst run`, or name an environment variable (env: NAME)")
    value = os.environ.get(ref.env or "")
    if not value:
        raise CredentialUnavailable(f"the environment variable {ref.env} is not set")
    return value


def no_storage_block(slug: str | None) -> dict[str, str]:
    if slug is not None:
        raise CredentialUnavailable(f"the block {slug} can only be loaded in a Prefect flow run")
    return {}


def _identity(text: str) -> str:
    return text


@dataclass
class SourceAccess:
    """``credential`` turns a CredentialRef into its value (a SQLAlchemy URL, a header's token);
    ``storage_options`` turns a storage block's slug (or None: the environment) into obstore's config;
    ``render`` renders a query's text for the run (its window); ``kept`` replaces sources by kept Parquet files."""

    credential: Callable[[CredentialRef], str] = from_environment
    storage_options: Callable[[str | None], dict[str, str]] = no_storage_block
    render: Callable[[str], str] = _identity
    stage: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="analyst-stage-")))
    # Where each dataset's data was fetched from, as recorded: the rendered query, the files of a glob.
    origins: dict[str, dict] = field(default_factory=dict)
    # Kept data standing in for a dataset's source by name (a replay or resume of a run that kept it).
    kept: dict[str, Path] = field(default_factory=dict)

    def __post_init__(self) -> None:
        weakref.finalize(self, shutil.rmtree, self.stage, True)
