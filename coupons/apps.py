"""App config for offers, coupons, members and redemptions."""

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class CouponsConfig(AppConfig):
    name = "coupons"
    verbose_name = "Coupons"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from config.schedules import schedules_ensure

        # The job kinds that live outside the job engine register their chunk handlers when imported.
        from coupons import csv_io  # noqa: F401

        post_migrate.connect(schedules_ensure, sender=self, dispatch_uid="schedules_ensure")

        from django_q.signals import post_execute_in_worker, pre_enqueue, pre_execute

        from config import request_id

        # A task enqueued by a request runs under that request's id (logs, the events it records).
        pre_enqueue.connect(request_id.task_tag, dispatch_uid="request_id_task_tag")
        pre_execute.connect(request_id.task_bind, dispatch_uid="request_id_task_bind")
        post_execute_in_worker.connect(request_id.task_unbind, dispatch_uid="request_id_task_unbind")
