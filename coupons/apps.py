"""App config for offers, coupons, members and redemptions."""

from django.apps import AppConfig


class CouponsConfig(AppConfig):
    name = "coupons"
    verbose_name = "Coupons"
    default_auto_field = "django.db.models.BigAutoField"
