"""TMC: a secure, multi-tenant business SMS platform."""
