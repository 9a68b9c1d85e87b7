"""Reading and acknowledging need any valid key or login; creating and requeueing need an admin key or the Django
permission (certctl's model: its read-only role may mark notifications read)."""
from rest_framework import permissions

from notifications.api.auth import CHANGE_PERMISSION, auth_disabled

# View actions that only record an acknowledgement (mark read, dismiss); they never start or stop a delivery.
ACKNOWLEDGE_ACTIONS = frozenset({"read", "bulk_read"})


class NotificationAccess(permissions.BasePermission):
    message = (
        "this key or user may only read and mark read: creating and requeueing need an admin key "
        f"(name:key:admin in CERTCTL_API_KEYS_NAMED) or the Django permission {CHANGE_PERMISSION}"
    )

    def has_permission(self, request, view):
        if auth_disabled():
            return True
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if request.method in permissions.SAFE_METHODS or getattr(view, "action", None) in ACKNOWLEDGE_ACTIONS:
            return True
        return user.has_perm(CHANGE_PERMISSION)
