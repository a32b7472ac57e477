"""Routes of the webhook API under /api/v1/webhooks/."""

from django.urls import path

from webhooks import api

urlpatterns = [
    path("subscriptions/", api.SubscriptionsApi.as_view(), name="webhook-subscriptions"),
    path("subscriptions/<int:subscription_id>/", api.SubscriptionApi.as_view(), name="webhook-subscription"),
    path(
        "subscriptions/<int:subscription_id>/rotate-secret",
        api.SubscriptionRotateSecretApi.as_view(),
        name="webhook-subscription-rotate-secret",
    ),
    path(
        "subscriptions/<int:subscription_id>/test",
        api.SubscriptionTestApi.as_view(),
        name="webhook-subscription-test",
    ),
    path(
        "subscriptions/<int:subscription_id>/recover",
        api.SubscriptionRecoverApi.as_view(),
        name="webhook-subscription-recover",
    ),
    path("deliveries/", api.DeliveriesApi.as_view(), name="webhook-deliveries"),
    path("attempts/", api.AttemptsApi.as_view(), name="webhook-attempts"),
    path("deliveries/<int:delivery_id>/", api.DeliveryApi.as_view(), name="webhook-delivery"),
    path("deliveries/<int:delivery_id>/retry", api.DeliveryRetryApi.as_view(), name="webhook-delivery-retry"),
    path(
        "deliveries/<int:delivery_id>/replay", api.DeliveryReplayApi.as_view(), name="webhook-delivery-replay"
    ),
]
