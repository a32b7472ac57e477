"""Statements of the hot paths built once per process, on their first call, instead of on every call.

Compiling a SELECT (joins, column lists, lookups) or an INSERT through the ORM costs the web worker more CPU
than running it. A PreparedLookup builds its queryset once with stand-in values, keeps the SQL and the
row-to-object plan, then runs that SQL with each call's values and builds the objects as QuerySet does
(select_related included). The queryset must take each value once, as a parameter, and yield at most one
row. A PreparedInsert and a PreparedRowUpdate write one row as `save()` and `update(n=F("n") + 1)` would,
with SQL made from the model's fields.
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


class _Prepared:
    """A statement built on its first use for each database, then kept for the life of the process."""

    def __init__(self) -> None:
        self._compiled: dict[tuple[str, str], tuple] = {}

    def _compiled_for(self, connection) -> tuple | None:
        key = (connection.alias, connection.vendor)
        if key not in self._compiled:
            self._compiled[key] = self._compile(connection)
        return self._compiled[key]

    def _compile(self, connection) -> tuple | None:
        raise NotImplementedError


class PreparedLookup(_Prepared):
    def __init__(
        self, build: Callable[..., QuerySet], *, texts: tuple[str, ...] = (), numbers: tuple[str, ...] = ()
    ):
        """`build(**values)` returns the queryset; `texts` and `numbers` name its values by kind."""
        super().__init__()
        self._build = build
        self._texts, self._numbers = texts, numbers

    def first(self, **values) -> Model | None:
        connection = connections[DEFAULT_DB_ALIAS]
        compiled = self._compiled_for(connection)
        sql, params, positions, for_update, compiler, converters, model, init_list, start, end, populators = (
            compiled
        )
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
        if converters:
            row = next(iter(compiler.apply_converters([row], converters)))
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
        # What results_iter() would look up again for every row.
        converters = compiler.get_converters([column[0] for column in select[: compiler.col_count]])
        return (
            sql,
            tuple(params),
            tuple(positions),
            for_update,
            compiler,
            converters,
            klass_info["model"],
            init_list,
            start,
            end,
            populators,
        )


class PreparedInsert(_Prepared):
    """`obj.save()` of a new instance of `model`, without signals, for a hot path."""

    def __init__(self, model: type[Model]):
        super().__init__()
        self._model = model

    def save(self, obj: Model) -> Model:
        """Insert `obj` (its pk unset) in the current transaction and set its pk, as save() does."""
        connection = connections[DEFAULT_DB_ALIAS]
        compiled = self._compiled_for(connection)
        if compiled is None:
            obj.save(force_insert=True, using=connection.alias)
            return obj
        sql, fields, returning = compiled
        params = [field.get_db_prep_save(field.pre_save(obj, True), connection) for field in fields]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            (pk,) = cursor.fetchone()
        setattr(obj, returning.attname, pk)
        obj._state.adding, obj._state.db = False, connection.alias
        return obj

    def _compile(self, connection) -> tuple | None:
        meta = self._model._meta
        returning = meta.pk
        fields = [field for field in meta.local_concrete_fields if field is not returning]
        if not returning.db_returning or not connection.features.can_return_columns_from_insert:
            return None  # an SQLite before 3.35: save() finds the new key its own way
        if any(hasattr(field, "get_placeholder") or field.generated for field in fields):
            raise NotImplementedError(f"{meta.label}: a field needs SQL of its own; use save().")
        quote = connection.ops.quote_name
        returning_sql, _ = connection.ops.return_insert_columns([returning])
        sql = (
            f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(field.column) for field in fields)})"
            f" VALUES ({', '.join(['%s'] * len(fields))}) {returning_sql}"
        )
        return sql, fields, returning


class PreparedRowUpdate(_Prepared):
    """`model.objects.filter(pk=pk).update(n=F("n") + 1, field=value, ...)` for a hot path, its SQL built once."""

    def __init__(self, model: type[Model], *, increment: tuple[str, ...] = (), assign: tuple[str, ...] = ()):
        super().__init__()
        self._model, self._increment, self._assign = model, increment, assign

    def run(self, pk, **values) -> int:
        """Add one to each `increment` column and set each `assign` field of row `pk`; returns rows changed."""
        connection = connections[DEFAULT_DB_ALIAS]
        compiled = self._compiled_for(connection)
        sql, assigned = compiled
        params = [field.get_db_prep_save(values[field.name], connection) for field in assigned]
        params.append(self._model._meta.pk.get_db_prep_value(pk, connection))
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.rowcount

    def _compile(self, connection) -> tuple:
        meta, quote = self._model._meta, connection.ops.quote_name
        assigned = [meta.get_field(name) for name in self._assign]
        columns = [quote(meta.get_field(name).column) for name in self._increment]
        changes = [f"{column} = {column} + 1" for column in columns]
        changes += [f"{quote(field.column)} = %s" for field in assigned]
        sql = f"UPDATE {quote(meta.db_table)} SET {', '.join(changes)} WHERE {quote(meta.pk.column)} = %s"
        return sql, assigned
