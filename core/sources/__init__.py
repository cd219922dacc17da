"""Frame sources: video files, images, image folders, cameras and a real-time video replay.

Every source yields `core.types.Frame` objects (BGR uint8 images). Files are seekable with exact
random access; live sources (camera, replay) deliver the newest frame and drop the ones the
consumer was too slow for. All failures surface as `SourceError` with a user-facing message.

base.py (Source, SourceError), video.py (VideoSource), images.py (ImageSource, FolderSource),
live.py (CameraSource, ReplaySource), probe.py (open_source from a user string, list_cameras).
"""
