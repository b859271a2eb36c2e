"""PostgreSQL: the models, the engine and session factory, the embedded server, bulk writes."""
