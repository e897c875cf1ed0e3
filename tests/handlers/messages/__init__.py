"""Every user-visible message, rendered for fixed runs (`samples`) and compared with tests/golden/messages/.

The golden files are what reviewers and PR authors read; KFP_BOT_UPDATE_GOLDEN=1 rewrites them
(see tests/support/golden.py). The other tests pin the rules the wording must keep whatever it
says: limits GitHub enforces, escaping of what users typed, which run of a pipeline is shown.
One test module per module of `handlers/messages/`.
"""
