from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("tools", "0003_mcp_server"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="tool",
            options={
                "ordering": ["name"],
                "permissions": [
                    ("approve_tool", "Can approve or disable tools"),
                    ("invoke_tool", "Can invoke tools directly"),
                    ("test_tool", "Can test-run any tool"),
                ],
            },
        ),
    ]
