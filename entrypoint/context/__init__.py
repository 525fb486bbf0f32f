"""Context layer: where values come from (environment, env files, --set,
secret files, a simulated Marathon app definition) and their typed views."""
