"""Create an API key for a merchant and/or a distributor; the key is printed once, alone on the last line."""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from audit.services import audit_record
from coupons import services
from coupons.errors import ApplicationError
from coupons.models import ApiKey, Distributor, Merchant


class Command(BaseCommand):
    help = "Create an API key (creating the merchant or distributor if needed) and print it once."

    def add_arguments(self, parser):
        parser.add_argument("--merchant", help="Merchant name; created if it does not exist.")
        parser.add_argument("--distributor", help="Distributor name; created if it does not exist.")
        parser.add_argument(
            "--scopes",
            default=",".join(ApiKey.SCOPES),
            help=f"Comma-separated, from {','.join(ApiKey.SCOPES)} (default: all).",
        )
        parser.add_argument("--name", default="", help="A label to recognise the key by in the admin.")

    def handle(self, *args, merchant, distributor, scopes, name, **options):
        if not merchant and not distributor:
            raise CommandError("Give --merchant NAME and/or --distributor NAME.")
        wanted = [scope.strip() for scope in scopes.split(",") if scope.strip()]
        try:
            with transaction.atomic():
                key, token = services.api_key_create(
                    merchant=Merchant.objects.get_or_create(name=merchant)[0] if merchant else None,
                    distributor=Distributor.objects.get_or_create(name=distributor)[0]
                    if distributor
                    else None,
                    scopes=wanted,
                    name=name,
                )
                audit_record(
                    api_key=None, actor="manage.py create_api_key", action="api_key.create", obj=key,
                    changes={"scopes": key.scopes, "name": name},
                )  # fmt: skip
        except ApplicationError as error:
            raise CommandError(error.message) from error
        owner = " and ".join(f"{kind} {value!r}" for kind, value in (("merchant", merchant),
                                                                         ("distributor", distributor)) if value)  # fmt: skip
        self.stdout.write(f"API key {key.prefix}… for {owner}, scopes {','.join(key.scopes)}.")
        self.stdout.write("It is shown only now; store it safely:")
        self.stdout.write(token)
