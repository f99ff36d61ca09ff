"""Code the scheduler, the worker and the admin share: settings, schema, data access."""
