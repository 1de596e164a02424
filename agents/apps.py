from django.apps import AppConfig


class AgentsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "agents"

    def ready(self) -> None:
        # Memory asks the agent's own model to learn from runs and to consolidate (memory.ports).
        from agents.models import Agent
        from agents.providers import model_client_for
        from memory.ports import ClientMemoryModel, set_memory_model_provider

        def memory_model(agent: Agent) -> ClientMemoryModel:
            return ClientMemoryModel(model_client_for(agent.model_config))

        set_memory_model_provider(memory_model)
