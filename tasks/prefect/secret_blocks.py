"""Read an API key from a Prefect Secret block, for the model and the sandbox providers alike: the
``SecretReader`` (``tasks/secrets.py``) that the flow and the CLI hand to the domain code.

The value is never logged or put in a message; each caller names its config key and its fix.
"""

from __future__ import annotations

from tasks.secrets import ErrorFactory


def read_secret_block(name: str, *, key: str, fallback: str, error: ErrorFactory) -> str:
    """The string stored in the Secret block ``name``. ``key`` is the config key that named it,
    ``fallback`` the other way to give the key (said in the message when the block is missing)."""
    from prefect.blocks.system import Secret  # noqa: PLC0415 - seconds; `analyst sandboxes` may need no block

    try:
        # _sync=True: a plain call, even when this runs inside an async flow.
        value = Secret.load(name, _sync=True).get()
    except ValueError as exc:  # Prefect's "Unable to find block document named ..."
        raise error(
            f"{key}: no Prefect Secret block named {name!r} ({exc}); create it in the Prefect UI (Blocks > Secret) "
            f"or with Secret(value=...).save({name!r}), or unset {key} and {fallback}", transient=False) from None
    except Exception as exc:  # noqa: BLE001 - the Prefect API is unreachable, ...: worth another try later
        raise error(
            f"{key}: could not load the Prefect Secret block {name!r} ({type(exc).__name__}: {exc}); check that "
            "the Prefect API is reachable (PREFECT_API_URL)", transient=True) from None
    if not isinstance(value, str) or not value.strip():
        kind = "empty" if isinstance(value, str) or value is None else f"a {type(value).__name__}, not a string"
        raise error(f"{key}: the Prefect Secret block {name!r} holds {kind}; store the API key itself as its value",
                    transient=False)
    return value.strip()
