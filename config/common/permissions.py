"""Named Django permissions at the adapters: a DRF permission class factory for API views and a
decorator for pages. Being staff grants nothing here; only the permission does (a superuser has
every permission)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.contrib.auth.decorators import login_required, permission_required
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

View = TypeVar("View", bound=Callable[..., Any])


def user_has_perm(user: Any, perm: str) -> bool:
    """``user.has_perm(perm)`` for any user object (the stubs type ``request.user`` as a base class
    without ``has_perm``); False for anything that is not a user."""
    check = getattr(user, "has_perm", None)
    return bool(check is not None and check(perm))


def HasPermission(*perms: str) -> type[BasePermission]:  # named like the class it returns
    """``permission_classes = [HasPermission("tools.test_tool")]``: an anonymous caller gets 401
    (DRF's not-authenticated answer), a logged-in one without every permission named gets 403."""
    if not perms:
        raise ValueError("Name at least one permission.")

    class _HasPermission(BasePermission):
        message = f"You need the permission{'s' if len(perms) > 1 else ''} {', '.join(perms)}."

        def has_permission(self, request: Request, view: Any) -> bool:
            user = request.user
            return bool(user and user.is_authenticated and user.has_perms(perms))

    _HasPermission.__name__ = _HasPermission.__qualname__ = f"HasPermission({', '.join(perms)})"
    return _HasPermission


def page_permission_required(*perms: str) -> Callable[[View], View]:
    """For pages: anonymous -> the login page; logged in without the permissions -> 403 (not a
    redirect back to the login, which would loop for a user who is already logged in)."""
    if not perms:
        raise ValueError("Name at least one permission.")

    def decorate(view: View) -> View:
        return login_required(permission_required(perms, raise_exception=True)(view))  # type: ignore[return-value]

    return decorate
