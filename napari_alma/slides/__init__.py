"""Reading multiscale slide images: files and OME-Zarr folders as lazy pyramids.

``open_slide`` returns a ``Slide`` whose levels are dask arrays; ``fingerprint`` identifies
a slide by content. dask, tifffile, zarr and Pillow are imported only when a slide is
opened.
"""

from napari_alma.slides.reader import Slide, SlideError, fingerprint, open_slide

__all__ = ["Slide", "SlideError", "fingerprint", "open_slide"]
