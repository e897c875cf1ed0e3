"""Example material shipped with kfp-bot: `kfp-monorepo/`, a monorepo in the seed's layout."""
