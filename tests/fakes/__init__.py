"""Local stand-ins for remote services (GitHub REST, ...), served over real sockets so the real
client libraries talk to them."""
