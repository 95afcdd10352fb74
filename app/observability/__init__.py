"""Health endpoints, metrics and logs: everything operators watch."""
