"""Getting pipelines built and run.

Builders (local container engine, Cloud Build), the compiler (an isolated subprocess with the
repository's own kfp SDK), runners (kfp.local, Vertex AI, KFP endpoints), template upload and
schedules. Adapters that talk to Google Cloud live here and only here.
"""
