"""One module per resource kind: observe(env, res), apply(env, action, res), delete(env, res)."""
