"""App config for offers, coupons, members and redemptions."""

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class CouponsConfig(AppConfig):
    name = "coupons"
    verbose_name = "Coupons"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from config.schedules import schedules_ensure

        post_migrate.connect(schedules_ensure, sender=self, dispatch_uid="schedules_ensure")
