"""Storage: models, engine and sessions, migrations, registry import/export, evidence store."""
