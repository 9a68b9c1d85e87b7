"""Reading needs any valid key or login; changing events needs an admin key or the Django permission."""
from rest_framework import permissions

from notifications.api.auth import CHANGE_PERMISSION, auth_disabled


class NotificationAccess(permissions.BasePermission):
    message = (
        "this key or user may only read: creating, marking read and requeueing need an admin key "
        f"(name:key:admin in CERTCTL_API_KEYS_NAMED) or the Django permission {CHANGE_PERMISSION}"
    )

    def has_permission(self, request, view):
        if auth_disabled():
            return True
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if request.method in permissions.SAFE_METHODS:
            return True
        return user.has_perm(CHANGE_PERMISSION)
