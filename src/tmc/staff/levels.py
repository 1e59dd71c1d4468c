"""What each staff level may do: the one table every staff page consults.

Levels are cumulative: each level may do everything the levels below it may.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


class Level(IntEnum):
    STANDARD = 1
    ACCOUNTANT = 2
    SUPER_USER = 3
    EXTRA_SUPER_USER = 4

    @property
    def label(self) -> str:
        return {
            1: "Standard user",
            2: "Accountant",
            3: "Super user",
            4: "Extra super user",
        }[self.value]


class Capability(StrEnum):
    FIND_ORGANISATIONS = "find organisations, see status, package and usage"
    ADJUST_CREDITS = "adjust credits (a ledger entry with a reason)"
    CHANGE_PACKAGE = "change an organisation's package"
    MANAGE_PACKAGES = "set packages' prices per country and monthly allowances"
    UNLOCK_USERS = "unlock client users"
    VIEW_FULL_NUMBERS = "see full mobile numbers (each view logged)"
    MANAGE_GATEWAYS = "manage gateway providers"
    SUSPEND_ORGANISATIONS = "suspend and reinstate organisations"
    MANAGE_STAFF = "create staff and set their levels"
    MANAGE_KEYS = "manage keys"


MINIMUM_LEVEL: dict[Capability, Level] = {
    Capability.FIND_ORGANISATIONS: Level.STANDARD,
    Capability.ADJUST_CREDITS: Level.ACCOUNTANT,
    Capability.CHANGE_PACKAGE: Level.ACCOUNTANT,
    Capability.MANAGE_PACKAGES: Level.ACCOUNTANT,
    Capability.UNLOCK_USERS: Level.SUPER_USER,
    Capability.VIEW_FULL_NUMBERS: Level.SUPER_USER,
    Capability.MANAGE_GATEWAYS: Level.SUPER_USER,
    Capability.SUSPEND_ORGANISATIONS: Level.SUPER_USER,
    Capability.MANAGE_STAFF: Level.EXTRA_SUPER_USER,
    Capability.MANAGE_KEYS: Level.EXTRA_SUPER_USER,
}


def may(level: int, capability: Capability) -> bool:
    return level >= MINIMUM_LEVEL[capability]
