"""Deploys to a Kubeflow Pipelines endpoint: pipeline versions and recurring runs, as the seed does.

For pipelines whose target is `kfp`, a deploy uploads the compiled package as a new version
(named after the commit) of the KFP pipeline named after the repository pipeline, creating the
pipeline on its first deploy (`pipeline_store.KfpPipelineStore`, the `TemplateStore` port);
`settings.yaml`'s `schedule:` becomes a recurring run `kfp-bot-<pipeline>` of that version
(`recurring_runs.KfpRecurringRuns`, the `Schedules` port). kfp 2 packages go through the v2beta1
API, Argo workflows (kfp 1.8 v1 compiler) through v1beta1, both as plain REST with the runner's
retries and errors (`endpoint`).

Everything is found again by name, so a redelivered deploy reuses the version it uploaded and
leaves an unchanged recurring run alone. KFP cannot update a recurring run: a changed one is
deleted and created again. The bot picks these adapters for `kfp`-target pipelines through
`handlers.targets.ByTarget`, like every adapter chosen by target.
"""
