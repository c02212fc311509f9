"""Frames and detections without a model: letterboxing, postprocessing (NMS, masks from prototypes) and tracking.
Imports only the foundation (ovdet.core)."""
