"""API scopes, their presets, and what a staff session needs to hold each one."""

from pms_backend.plurals import noun

CATALOG_READ = "catalog:read"
CATALOG_WRITE = "catalog:write"
INVENTORY_READ = "inventory:read"
INVENTORY_WRITE = "inventory:write"
ORDERS_READ = "orders:read"
ORDERS_WRITE = "orders:write"
ORDERS_MANAGE = "orders:manage"
WEBHOOKS_MANAGE = "webhooks:manage"
AUDIT_READ = "audit:read"
SETTINGS_MANAGE = "settings:manage"

ALL_SCOPES = (
    CATALOG_READ,
    CATALOG_WRITE,
    INVENTORY_READ,
    INVENTORY_WRITE,
    ORDERS_READ,
    ORDERS_WRITE,
    ORDERS_MANAGE,
    WEBHOOKS_MANAGE,
    AUDIT_READ,
    SETTINGS_MANAGE,
)

PRESETS = {
    "storefront": (CATALOG_READ, INVENTORY_READ, ORDERS_READ, ORDERS_WRITE),
    "admin": ALL_SCOPES,
}

# A staff session holds a scope when the user has every one of these Django permissions
# (superusers hold them all): the ones the admin asks for the same data. As in the admin, a
# "change" permission includes "view". A view may ask other model permissions for some of
# its actions (``staff_permissions``, see pms_backend/api/permissions.py).
STAFF_PERMISSIONS = {
    CATALOG_READ: ("catalog.view_product",),
    CATALOG_WRITE: ("catalog.change_product",),
    INVENTORY_READ: ("inventory.view_inventorymovement",),
    INVENTORY_WRITE: ("inventory.add_inventorymovement",),
    ORDERS_READ: ("orders.view_order",),
    ORDERS_WRITE: ("orders.add_order",),
    ORDERS_MANAGE: ("orders.change_order",),
    WEBHOOKS_MANAGE: ("webhooks.change_webhookendpoint",),
    AUDIT_READ: ("audit.view_auditlog",),
    SETTINGS_MANAGE: ("settings.change_setting",),
}


def expand_scopes(names: list[str] | tuple[str, ...]) -> list[str]:
    """Return the sorted scopes named by ``names`` (scopes or presets).

    Raise ``ValueError`` naming every unknown entry.
    """
    scopes: set[str] = set()
    unknown = []
    for raw in names:
        name = raw.strip()
        if not name:
            continue
        if name in PRESETS:
            scopes.update(PRESETS[name])
        elif name in ALL_SCOPES:
            scopes.add(name)
        else:
            unknown.append(name)
    if unknown:
        raise ValueError(
            f"unknown {noun(unknown, 'scope')}: {', '.join(unknown)}; "
            f"known: {', '.join(ALL_SCOPES)} "
            f"and presets {', '.join(PRESETS)}"
        )
    if not scopes:
        raise ValueError("at least one scope is required")
    return sorted(scopes)


def staff_has_scope(user, scope: str) -> bool:
    """Return whether an active staff ``user`` holds ``scope`` through Django permissions."""
    if not (user and user.is_authenticated and user.is_active and user.is_staff):
        return False
    if scope not in STAFF_PERMISSIONS:
        return False
    return staff_has_permissions(user, STAFF_PERMISSIONS[scope])


def staff_has_permissions(user, perms: tuple[str, ...]) -> bool:
    """Return whether an active staff ``user`` holds every one of ``perms`` as the admin
    reads them: ``app.view_model`` is also held through ``app.change_model``."""
    if not (user and user.is_authenticated and user.is_active and user.is_staff):
        return False
    return all(
        user.has_perm(perm)
        or (".view_" in perm and user.has_perm(perm.replace(".view_", ".change_", 1)))
        for perm in perms
    )
