"""Load the demo data idempotently and print how to log in."""

from django.core.management.base import BaseCommand

from coupons.demo import demo_load


class Command(BaseCommand):
    help = "Load demo data (idempotent) and print the admin login and a demo API key."

    def handle(self, *args, **options):
        result = demo_load()
        username, password = result["admin"]
        self.stdout.write(f"Demo data ready: {result['coupons']} coupons.")
        self.stdout.write(f"{'Admin login:':<24}{username} / {password}")
        for role_username, role_password, role in result["role_users"]:
            self.stdout.write(f"{role + ' login:':<24}{role_username} / {role_password}")
        self.stdout.write(f"{'Reveal page:':<24}{result['reveal_path']}")
        self.stdout.write(f"{'Demo API key:':<24}{result['api_key']}")
