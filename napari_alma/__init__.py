"""napari-alma: review AI-classified bone-marrow smears in napari.

Importing this package loads neither torch nor Qt: the heavy libraries are imported
inside the functions that use them, so napari starts fast with the plugin installed.
"""

__version__ = "0.1.0"
