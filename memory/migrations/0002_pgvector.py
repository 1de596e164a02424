"""The pgvector store's table and HNSW index (memory/vector/pgvector.py), on PostgreSQL only.

On any other database (SQLite, the embedded default) this migration does nothing.
"""

from django.db import migrations


def create_vector_table(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    from memory.vector.pgvector import schema_statements

    for statement in schema_statements():
        schema_editor.execute(statement)


def drop_vector_table(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    from memory.vector.pgvector import TABLE

    schema_editor.execute(f"DROP TABLE IF EXISTS {TABLE}")


class Migration(migrations.Migration):
    dependencies = [("memory", "0001_initial")]

    operations = [migrations.RunPython(create_vector_table, drop_vector_table, elidable=False)]
