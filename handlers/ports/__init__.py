"""The small ports handlers talk to, as `typing.Protocol`s with domain names, one module per domain.

Handlers never see a concrete client: `bot/` builds adapters (SQLAlchemy store, PyGithub
reporter, git checkout, local or Cloud Build builder, kfp.local or Vertex AI runner) and hands
them over in a `HandlerContext`. Swapping the embedded defaults for Google Cloud changes the
adapters, never the handlers.

- `store`: what survives a restart (`Store`, `StoredPull`, `Then`).
- `events`: how events come and go (`Bus`, `NotificationDecoder`, `Ignored`) and the `Clock`.
- `code_host`: the code host (`Source`, `Reporter`, `Permissions`, `PullRequests`).
- `build`: images and compiled pipelines (`Builder`, `Compiler`, `CompiledPackage`, `PipelineDiffs`).
- `run`: runs and deploys (`Runner`, `RunRequest`, `RunSubmission`, `CollectedResults`,
  `TemplateStore`, `Schedules`).
- `chat`: the chat service notifications are posted to (`Chat`, `ChatMessage`).
"""
