"""`python -m bot` is the `kfp-bot` command."""


from bot.cli import run

run()
