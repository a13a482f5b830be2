"""Capabilities: one declaration per unit of the pipeline.

A capability says what it renders once per platform and once per project, which
ServiceAccounts its pods run as (each with exactly its rules), and which WorkflowTemplates
its Sensors may create Workflows from. Tenancy derives ServiceAccounts, Roles and
RoleBindings from these declarations, and the bundle renders every registered capability
in registry order (see argo_delivery/capabilities.py). Adding a flow is one module that
exports a `Capability` plus one line in the registry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from argo_delivery.rbac import Account

if TYPE_CHECKING:
    from argo_delivery.config import PlatformConfig, Project

__all__ = ["Capability", "CapabilityError", "Registry", "SensorTrigger"]

# A rendered resource: a hera object (WorkflowTemplate, CronWorkflow, ...), a hera/pydantic
# model, or a plain manifest dict.
Resource = Any


class CapabilityError(ValueError):
    """A registry or capability declaration that cannot work (a programming error)."""


@dataclass(frozen=True)
class SensorTrigger:
    """A WorkflowTemplate a Sensor (running as `account`) may create Workflows from.

    `parameters` are the only Workflow parameters the Sensor sets; `values` narrows some of
    them to fixed values (parameter -> the values allowed). The declaration is what admission
    policies for Sensor-created Workflows are derived from.
    """

    template: str
    parameters: tuple[str, ...]
    account: Account
    values: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def allowed_values(self) -> dict[str, list[str]]:
        """parameter -> its allowed values ([] = any value)."""
        fixed = dict(self.values)
        return {name: sorted(fixed.get(name, ())) for name in self.parameters}


@dataclass(frozen=True)
class Capability:
    """One unit of the pipeline; see the module docstring."""

    name: str
    description: str
    per_platform: Callable[[PlatformConfig], Iterable[Resource]] | None = None
    per_project: Callable[[Project, PlatformConfig], Iterable[Resource]] | None = None
    accounts: tuple[Account, ...] = ()
    triggers: tuple[SensorTrigger, ...] = ()

    def __post_init__(self) -> None:
        names = [a.name for a in self.accounts]
        if len(names) != len(set(names)):
            raise CapabilityError(f"capability {self.name!r} declares an account twice: {names}")
        for trigger in self.triggers:
            if trigger.account not in self.accounts:
                raise CapabilityError(
                    f"capability {self.name!r}: the Sensor account {trigger.account.name!r} of "
                    f"trigger {trigger.template!r} is not among its accounts")

    def resources(self, config: PlatformConfig) -> Iterator[Resource]:
        """What this capability renders for `config`: platform resources, then per project."""
        if self.per_platform is not None:
            yield from self.per_platform(config)
        if self.per_project is not None:
            for project in config.projects:
                yield from self.per_project(project, config)


class Registry:
    """An ordered set of capabilities that refuses two with one name or one account name."""

    def __init__(self, capabilities: Iterable[Capability] = ()):
        self._capabilities: list[Capability] = []
        for capability in capabilities:
            self.register(capability)

    def register(self, capability: Capability) -> Registry:
        if not isinstance(capability, Capability):
            raise CapabilityError(f"expected a Capability, found {type(capability).__name__}")
        for known in self._capabilities:
            if known.name == capability.name:
                raise CapabilityError(f"capability {capability.name!r} is registered twice")
            clash = {a.name for a in known.accounts} & {a.name for a in capability.accounts}
            if clash:
                raise CapabilityError(f"capabilities {known.name!r} and {capability.name!r} "
                                      f"both declare the account {sorted(clash)[0]!r}")
        self._capabilities.append(capability)
        return self

    def __iter__(self) -> Iterator[Capability]:
        return iter(self._capabilities)

    def __len__(self) -> int:
        return len(self._capabilities)

    def names(self) -> list[str]:
        return [c.name for c in self._capabilities]

    def accounts(self) -> list[Account]:
        return [account for c in self._capabilities for account in c.accounts]

    def triggers(self) -> list[SensorTrigger]:
        return [trigger for c in self._capabilities for trigger in c.triggers]

    def extended(self, extra: Iterable[Capability]) -> Registry:
        """A new registry: these capabilities, then `extra`."""
        return Registry([*self._capabilities, *extra])
