"""Code shared by the example pipelines and their component images."""
