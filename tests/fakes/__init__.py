"""Stand-ins for external services, served on loopback so the real client libraries are exercised."""
