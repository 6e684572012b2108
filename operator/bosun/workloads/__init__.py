"""Pure builders: Bosun models in, the Kubernetes manifests a person would write by hand out."""
