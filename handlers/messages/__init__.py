"""Every text kfp-bot shows to people, one module per audience, each beside its templates.

The words live in Jinja2 templates (`handlers/templates/`), so wording is changed in one place
and reviewed as text; the modules are data in, text out, and the adapters only deliver what
they are handed:

- `checks`: check runs and commit statuses (a pipeline's check, the aggregate `kfp-bot` check,
  the trusted-settings notice);
- `pull_comment`: the one bot comment of a pull request, and the `/ok-to-run` request;
- `replies`: answers to commands and to the check buttons;
- `slack_blocks`: Slack Block Kit messages;
- `rendering`: the template environment, filters, formatting and run views they share.
"""
