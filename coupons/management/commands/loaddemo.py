"""Load the demo data idempotently and print how to log in."""
from django.core.management.base import BaseCommand

from coupons.demo import demo_load


class Command(BaseCommand):
    help = "Load demo data (idempotent) and print the admin login and a demo API key."

    def handle(self, *args, **options):
        result = demo_load()
        username, password = result["admin"]
        self.stdout.write(f"Demo data ready: {result['coupons']} coupons.")
        self.stdout.write(f"Admin login:  {username} / {password}")
        self.stdout.write(f"Demo API key: {result['api_key']}")
