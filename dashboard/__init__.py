"""OpenMesh Pool operations dashboard (Reflex)."""
