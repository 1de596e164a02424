"""Tools agents can call. For now, builtin Python tools registered in code; the governed registry
(rows, grants, sandbox, audit log) arrives with its own issue."""
