"""The Prefect automations that announce a crashed run, one per ``notify`` entry that asks for ``crashed``.

A run killed with SIGKILL, or whose machine was lost, cannot send anything: its process is gone. The
Prefect server can. ``flows/crash_detection.py`` has it mark such a run Crashed; the automation here
reacts to that state, for the runs of one deployment, with a SendNotification through the entry's block.
``analyst serve`` and ``analyst deploy`` keep these automations in step with the configs: created,
updated, and deleted when an entry goes away.
"""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

from prefect import get_client
from prefect.blocks.core import Block
from prefect.events.actions import SendNotification
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
from prefect.events.schemas.events import ResourceSpecification

from tasks.config import LoadedConfig
from tasks.errors import ConfigError, Problem
from tasks.notifications import RunNotice, notice_body, notice_subject

from ._register import DeployError, _reason

# Prefect's automation templates: the run's UI page; the server fills it in when it sends.
FLOW_RUN_URL_TEMPLATE = "{{ flow_run|ui_url }}"


def automation_prefix(analysis: str) -> str:
    return f"analyst: notify crashed runs of analyze/{analysis} via "


def sync_crash_notifications(loaded: LoadedConfig, deployment_id: UUID) -> list[str]:
    """Create or update this config's crash automations and delete its stale ones; returns their names."""

    wanted = {automation_prefix(loaded.config.name) + slug: block_id
              for slug, block_id in _crash_blocks(loaded)}
    try:
        with get_client(sync_client=True) as client:
            for existing in client.read_automations():
                if existing.name.startswith(automation_prefix(loaded.config.name)) and existing.name not in wanted:
                    client.delete_automation(existing.id)
            for name, block_id in wanted.items():
                automation = _automation(name, loaded, deployment_id, block_id)
                found = client.read_automations_by_name(name)
                if found:
                    client.update_automation(found[0].id, automation)
                else:
                    client.create_automation(automation)
    except Exception as exc:  # noqa: BLE001 - HTTP and validation errors alike: one line
        raise DeployError(f"could not set up the crash notifications of analyze/{loaded.config.name}: "
                          f"{_reason(exc)}") from exc
    return list(wanted)


def _crash_blocks(loaded: LoadedConfig) -> Iterable[tuple[str, UUID]]:

    for index, entry in enumerate(loaded.config.notify):
        if "crashed" not in entry.on:
            continue
        try:
            block = Block.load(entry.block, _sync=True)
        except Exception as exc:  # noqa: BLE001 - unknown type, missing block, unreachable server: one message
            raise ConfigError([Problem(str(loaded.path), f"notify[{index}].block", (
                f"cannot load the Prefect block '{entry.block}' ({type(exc).__name__}: {exc}); create it on the "
                "server (`prefect block ls` lists them)"))]) from None
        if not hasattr(block, "notify") or block._block_document_id is None:
            raise ConfigError([Problem(str(loaded.path), f"notify[{index}].block", (
                f"'{entry.block}' is not a notification block; crashed runs are announced through "
                "slack-webhook, ms-teams-webhook or custom-webhook blocks"))])
        yield entry.block, block._block_document_id


def _automation(name: str, loaded: LoadedConfig, deployment_id: UUID, block_id: UUID):

    notice = RunNotice(analysis=loaded.config.name, outcome="crashed",
                       detail="the run's process died (killed, or its machine was lost)",
                       flow_run_url=FLOW_RUN_URL_TEMPLATE)
    return AutomationCore(
        name=name,
        description=f"Created by analyst from {loaded.path}: a crashed run of analyze/{loaded.config.name} "
                    "is announced through the config's notify block.",
        trigger=EventTrigger(
            expect={"prefect.flow-run.Crashed"},
            match=ResourceSpecification({"prefect.resource.id": "prefect.flow-run.*"}),
            match_related=ResourceSpecification({"prefect.resource.id": f"prefect.deployment.{deployment_id}"}),
            posture=Posture.Reactive,
            threshold=1,
        ),
        actions=[SendNotification(block_document_id=block_id, subject=notice_subject(notice),
                                  body=notice_body(notice))],
    )
