from tools.builtin import calculator, clock, memory, meta, sandboxed, web

__all__ = ["calculator", "clock", "memory", "meta", "sandboxed", "web"]
