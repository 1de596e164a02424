from django.apps import AppConfig


class MemoryConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "memory"

    def ready(self) -> None:
        # A typo in the memory backends' settings fails at start-up (check, migrate, Daphne).
        from django.core import checks

        from memory.vector.checks import memory_backend_settings

        checks.register(memory_backend_settings)
