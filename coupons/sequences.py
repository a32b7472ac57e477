"""Keeping a table's id sequence ahead of ids that callers chose themselves (PostgreSQL)."""

from django.db import connection
from django.db.models import Model


def sequence_move_past(model: type[Model], given_id: int) -> None:
    """After inserting `given_id` by hand, make sure the sequence will never hand it out.

    PostgreSQL's sequence does not see explicit ids, so the next generated one would collide. Call it in
    the inserting transaction. The advisory lock orders concurrent callers, so a smaller id set late
    never moves the sequence back under a larger one. SQLite picks max(id) + 1 by itself.
    """
    if connection.vendor != "postgresql":
        return
    table, column = model._meta.db_table, model._meta.pk.column
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_serial_sequence(%s, %s)", [table, column])
        (sequence,) = cursor.fetchone()
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [sequence])
        # setval is not transactional: once moved, the sequence stays past the id even if this insert rolls back.
        cursor.execute(
            f"SELECT setval(%s::regclass, GREATEST(%s, last_value)) FROM {sequence}",  # noqa: S608 - the name is PostgreSQL's own
            [sequence, given_id],
        )
