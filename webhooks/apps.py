"""App config for webhook subscriptions, events and deliveries."""

from django.apps import AppConfig
from django.db.models.signals import m2m_changed, post_delete, post_save


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Webhooks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from webhooks.models import Subscription
        from webhooks.retries import retention_check
        from webhooks.routing import routes_forget

        retention_check()

        # Not a business side effect: whatever path changes a subscription (service, admin, shell),
        # this process must stop routing events with its cached copy of the old one.
        post_save.connect(routes_forget, sender=Subscription, dispatch_uid="webhooks_routes_saved")
        post_delete.connect(routes_forget, sender=Subscription, dispatch_uid="webhooks_routes_deleted")
        m2m_changed.connect(
            routes_forget, sender=Subscription.offers.through, dispatch_uid="webhooks_routes_offers"
        )
