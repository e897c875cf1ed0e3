"""Shared test support: real git repositories, example monorepos, helpers used across test folders."""
