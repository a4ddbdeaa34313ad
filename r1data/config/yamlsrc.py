"""Moved to ``r1data.yamlsrc`` (the trainer, a library package, reads YAML too); kept so older imports work."""

from r1data.yamlsrc import YamlPath, YamlSource, format_path, load_yaml_file, load_yaml_text

__all__ = ["YamlPath", "YamlSource", "format_path", "load_yaml_file", "load_yaml_text"]
