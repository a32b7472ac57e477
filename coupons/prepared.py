"""Queries of the hot paths compiled once per process: the ORM builds their SQL on the first call only.

Compiling a SELECT (joins, column lists, lookups) costs the web worker more CPU than running it. A
PreparedLookup builds its queryset once with stand-in values, keeps the SQL and the row-to-object plan,
then runs that SQL with each call's values and builds the objects as QuerySet does (select_related
included). The queryset must take each value once, as a parameter, and yield at most one row.
"""

from collections.abc import Callable

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Model, QuerySet
from django.db.models.query import get_related_populators
from django.db.transaction import TransactionManagementError


class _Stand:
    """A stand-in value: a string or a number no caller would look up."""

    text = "\x00stand-in-{}\x00"
    number = -7_340_000_000_000_001


class PreparedLookup:
    def __init__(
        self, build: Callable[..., QuerySet], *, texts: tuple[str, ...] = (), numbers: tuple[str, ...] = ()
    ):
        """`build(**values)` returns the queryset; `texts` and `numbers` name its values by kind."""
        self._build = build
        self._texts, self._numbers = texts, numbers
        self._compiled: dict[tuple[str, str], tuple] = {}

    def first(self, **values) -> Model | None:
        connection = connections[DEFAULT_DB_ALIAS]
        key = (connection.alias, connection.vendor)
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self._compiled[key] = self._compile(connection)
        sql, params, positions, for_update, compiler, model, init_list, start, end, populators = compiled
        if for_update and connection.get_autocommit():
            raise TransactionManagementError("select_for_update cannot be used outside of a transaction.")
        params = list(params)
        for name, index in positions:
            params[index] = values[name]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
        if row is None:
            return None
        row = next(iter(compiler.results_iter([[row]])))
        obj = model.from_db(connection.alias, init_list, row[start:end])
        for populator in populators:
            populator.populate(row, obj)
        return obj

    def _compile(self, connection) -> tuple:
        stand_ins = {name: _Stand.text.format(i) for i, name in enumerate(self._texts)}
        stand_ins |= {name: _Stand.number - i for i, name in enumerate(self._numbers)}
        queryset = self._build(**stand_ins).using(connection.alias)
        compiler = queryset.query.get_compiler(connection=connection)
        sql, params = compiler.as_sql()
        positions = []
        for name, stand_in in stand_ins.items():
            (index,) = [
                i for i, value in enumerate(params) if type(value) is type(stand_in) and value == stand_in
            ]
            positions.append((name, index))
        klass_info, select = compiler.klass_info, compiler.select
        fields = klass_info["select_fields"]
        start, end = fields[0], fields[-1] + 1
        init_list = [column[0].target.attname for column in select[start:end]]
        populators = get_related_populators(klass_info, select, connection.alias)
        for_update = queryset.query.select_for_update
        return (
            sql,
            tuple(params),
            tuple(positions),
            for_update,
            compiler,
            klass_info["model"],
            init_list,
            start,
            end,
            populators,
        )
