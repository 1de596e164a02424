from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("memory", "0002_pgvector"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="experience",
            options={
                "ordering": ["-created_at", "-id"],
                "permissions": [
                    ("share_experience", "Can store, change and delete shared memories (seen by every user)")
                ],
            },
        ),
    ]
