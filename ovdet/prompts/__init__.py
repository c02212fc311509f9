"""Prompts: what the user asks for (vocabularies, their YAML) turned into class embeddings (text encoders, the
class table, the cache). Imports only the foundation (ovdet.core)."""
