from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("conversations", "0004_run_heartbeat"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="conversation",
            options={
                "ordering": ["-updated_at", "-id"],
                "permissions": [("view_monitoring", "Can view the monitoring board (runs, agents, memory, tools)")],
            },
        ),
    ]
