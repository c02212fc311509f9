"""Zones, lines and rules: the zones file, the rule engine, and what they add to each frame's detections. They work
on any detector's detections and never import the prompts."""
