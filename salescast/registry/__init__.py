"""Model registry: artifact stores (local folder or S3) for versioned model artifacts."""

from salescast.registry.artifacts import (
    ArtifactRef,
    ArtifactStore,
    LocalArtifactStore,
    S3ArtifactStore,
    artifact_store,
)

__all__ = ["ArtifactRef", "ArtifactStore", "LocalArtifactStore", "S3ArtifactStore", "artifact_store"]
