"""The model of a Kubeflow Pipelines monorepo.

Discovery of pipelines and components, `settings.yaml` and `.kfp-bot.yaml`, the dependency
graph, changed files to affected pipelines, image names and content hashes. Pure domain code:
it reads repositories (files and git) and imports no Flask, PyGithub or Google Cloud code.
"""
