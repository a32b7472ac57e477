"""Load the demo data idempotently and print how to log in."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from coupons.demo import demo_load


class Command(BaseCommand):
    help = "Load demo data (idempotent) and print the admin login and a demo API key."

    def add_arguments(self, parser):
        parser.add_argument(
            "--force", action="store_true", help="Load the demo even with DEBUG off (a known admin password)."
        )

    def handle(self, *args, force=False, **options):
        # The demo's admin/admin login and its key derived from SECRET_KEY would open a production site.
        if not settings.DEBUG and not force:
            raise CommandError(
                "DEBUG is off: the demo data has a known admin password. Add --force to load it anyway."
            )
        result = demo_load()
        username, password = result["admin"]
        self.stdout.write(f"Demo data ready: {result['coupons']} coupons.")
        self.stdout.write(f"{'Admin login:':<24}{username} / {password}")
        for role_username, role_password, role in result["role_users"]:
            self.stdout.write(f"{role + ' login:':<24}{role_username} / {role_password}")
        self.stdout.write(f"{'Reveal page:':<24}{result['reveal_path']}")
        self.stdout.write(f"{'Demo API key:':<24}{result['api_key']}")
