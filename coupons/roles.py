"""The admin's built-in roles: which permissions each staff group holds, kept in step by migrations."""

from django.apps import apps as global_apps

ACCOUNT_MANAGER = "Account manager"
CAMPAIGN_MANAGER = "Campaign manager"
SUPPORT = "Support"

# Permissions as {"app.model": actions}; "report" is the custom view_report permission on offers.
ROLES: dict[str, dict[str, tuple[str, ...]]] = {
    # Configures webhook URLs, watches deliveries and replays failures. Viewing offers, merchants,
    # distributors and sites lets a subscription be limited to them (the admin's autocompletes).
    ACCOUNT_MANAGER: {
        "webhooks.subscription": ("view", "add", "change", "delete"),
        "webhooks.delivery": ("view", "change"),
        "webhooks.attempt": ("view",),
        "webhooks.event": ("view",),
        "coupons.offer": ("view",),
        "coupons.merchant": ("view",),
        "coupons.distributor": ("view",),
        "coupons.site": ("view",),
        "audit.auditentry": ("view",),  # who changed a subscription over the API
    },
    # Creates offers, generates, uploads and exports codes, reads reports. Offers are ended or
    # deactivated rather than deleted: their codes and redemptions are the audit trail.
    CAMPAIGN_MANAGER: {
        "coupons.offer": ("view", "add", "change", "report"),
        "coupons.coupon": ("view", "add", "change"),
        "coupons.job": ("view", "add", "change"),
        "coupons.member": ("view", "add", "change"),
        "coupons.memberprofile": ("view", "add", "change"),
        "coupons.redemption": ("view",),
        "coupons.merchant": ("view", "add", "change"),
        "coupons.distributor": ("view", "add", "change"),
        "coupons.site": ("view", "add", "change"),
        "coupons.location": ("view", "add", "change"),
    },
    # Answers shoppers and merchants: sees everything coupon-side and rolls back a redemption
    # when an order is cancelled (a change of the redemption); deletes and edits nothing else.
    SUPPORT: {
        "coupons.offer": ("view", "report"),
        "coupons.coupon": ("view",),
        "coupons.job": ("view",),
        "coupons.member": ("view",),
        "coupons.memberprofile": ("view",),
        "coupons.redemption": ("view", "change"),
        "coupons.merchant": ("view",),
        "coupons.distributor": ("view",),
        "coupons.site": ("view",),
        "coupons.location": ("view",),
        "audit.auditentry": ("view",),  # who rolled back or changed what over the API
    },
}


def role_permissions(role: str) -> list[tuple[str, str, str]]:
    """(app label, model name, codename) of every permission a role holds."""
    return [
        (app_label, model, "view_report" if action == "report" else f"{action}_{model}")
        for app_label, model, actions in (
            (*label.split("."), actions) for label, actions in ROLES[role].items()
        )
        for action in actions
    ]


def roles_ensure(apps=global_apps) -> None:
    """Create the groups and give each exactly its role's permissions.

    Takes a migration's `apps` too: a model not in that state yet (added by a later migration) is
    passed over and picked up when a later migration calls this again; an unknown permission of a
    model that does exist is an error, so a typo never silently leaves a role short.
    """
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role in ROLES:
        wanted = []
        for app_label, model, codename in role_permissions(role):
            try:
                apps.get_model(app_label, model)
            except LookupError:
                continue
            wanted.append(Permission.objects.get(content_type__app_label=app_label, codename=codename))
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.set(wanted)
