"""``/api/auth/``: the auth API's routes (names used by ``reverse`` in the tests and the schema's paths)."""

from django.urls import path

from .api import LogoutView, RegisterView, TokenObtainPairView, TokenRefreshView, TokenVerifyView

urlpatterns = [
    path("register/", RegisterView.as_view(), name="auth-register"),
    path("token/", TokenObtainPairView.as_view(), name="token-obtain"),
    path("token/refresh/", TokenRefreshView.as_view(), name="token-refresh"),
    path("token/verify/", TokenVerifyView.as_view(), name="token-verify"),
    path("logout/", LogoutView.as_view(), name="auth-logout"),
]
