"""File machinery: model files (save / load), the stored ZIP reader and writer, atomic writes."""
