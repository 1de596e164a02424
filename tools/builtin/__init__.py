from tools.builtin import calculator, clock

__all__ = ["calculator", "clock"]
