"""Reading and acknowledging need any valid key or login; creating and requeueing need an admin key or the Django
permission (certctl's model: its read-only role may mark notifications read)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from rest_framework import permissions

from notifications.api.auth import CHANGE_PERMISSION, auth_disabled

if TYPE_CHECKING:  # rest_framework.views imports this module through DEFAULT_PERMISSION_CLASSES
    from rest_framework.request import Request
    from rest_framework.views import APIView

# View actions that only record an acknowledgement (mark read, dismiss); they never start or stop a delivery.
ACKNOWLEDGE_ACTIONS = frozenset({"read", "bulk_read"})
# View actions that change nothing although they are POSTs: where an alert would go (POST /routes/test).
PREVIEW_ACTIONS = frozenset({"test_alert"})


class NotificationAccess(permissions.BasePermission):
    message = (
        "this key or user may only read and mark read: creating and requeueing need an admin key "
        f"(name:key:admin in CERTCTL_API_KEYS_NAMED) or the Django permission {CHANGE_PERMISSION}"
    )

    def has_permission(self, request: Request, view: APIView) -> bool:
        if auth_disabled():
            return True
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if request.method in permissions.SAFE_METHODS or getattr(view, "action", None) in (
            ACKNOWLEDGE_ACTIONS | PREVIEW_ACTIONS
        ):
            return True
        return user.has_perm(CHANGE_PERMISSION)
